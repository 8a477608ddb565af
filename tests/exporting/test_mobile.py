"""Issue 13: standard TFLite metadata in every export, the camera model, MediaPipe as the judge."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import tomllib

import numpy as np
import pytest
from PIL import Image

from mnist_keras.data import preprocess
from mnist_keras.errors import InputError
from mnist_keras.exporting import app_models, camera_model, mediapipe_check, tflite_metadata
from mnist_keras.inference.no_digit_graph import Network
from tests.helpers import REPO

FILES = ["mnist_float32.tflite", "mnist_float16.tflite", "mnist_dynamic_int8.tflite", "mnist_int8.tflite",
         "mnist_camera.tflite", "mnist_rgb.tflite"]
SQUARE = (camera_model.SIZE, camera_model.SIZE)


@pytest.fixture(scope="session")
def small_model(trained):
    from mnist_keras.training import keras_file

    return keras_file.load_keras(trained.model_path)


@pytest.mark.parametrize("file", FILES)
def test_every_exported_tflite_carries_standard_metadata(exported, file):
    path = exported.export / file
    found = tflite_metadata.read_metadata(path.read_bytes(), file)
    assert found["output"]["labels"] == [str(d) for d in range(10)]
    assert found["output"]["labels_file"] == "labels.txt"
    assert found["name"] and found["description"] and found["version"]
    assert found["author"] == tflite_metadata.AUTHOR and found["license"] == tflite_metadata.LICENSE
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    assert found["license"].startswith(project) and "CC BY-SA 3.0" in found["license"]  # project's and data's
    described = json.loads(path.with_suffix(".json").read_text())
    assert described["metadata"] == found  # the JSON beside it comes from the same metadata
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    input_type = interpreter.get_input_details()[0]["dtype"]
    # (pixel - mean) / std is what the model takes: [0, 1] for float inputs, the raw pixel for uint8
    expected = [255.0] if input_type == np.float32 else [1.0]
    assert found["input"]["normalization"] == {"mean": [0.0], "std": expected}
    assert found["input"]["color_space"] == ("RGB" if file in app_models.MODELS else "GRAYSCALE")


def test_existing_files_keep_their_28x28x1_tensors(exported):
    from mnist_keras.inference import litert

    interpreter = litert.load(exported.export / "mnist_int8.tflite")  # refuses anything but [N, 28, 28, 1]
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8


def test_mediapipe_reads_the_camera_model_within_half_a_point_of_keras(exported, mnist, small_model):
    images, labels = mnist.x_test[:1000], mnist.y_test[:1000]
    keras = small_model.predict(images[..., None] / 255.0, verbose=0).argmax(1)
    digits = mediapipe_check.classify(exported.export / "mnist_camera.tflite", camera_model.render(images))
    assert abs(np.mean(digits == labels) - np.mean(keras == labels)) <= 0.005
    rgb = mediapipe_check.classify(exported.export / "mnist_rgb.tflite", np.repeat(images[..., None], 3, -1))
    assert abs(np.mean(rgb == labels) - np.mean(keras == labels)) <= 0.005


def test_category_name_is_the_digit(exported, mnist):
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(exported.export / "mnist_camera.tflite")), max_results=10)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        image = camera_model.render(mnist.x_test[:1])[0]
        result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
    names = sorted(c.category_name for c in result.classifications[0].categories)
    assert names == [str(d) for d in range(10)]
    assert result.classifications[0].categories[0].category_name == str(mnist.y_test[0])


def test_in_graph_preprocessing_matches_preprocess_py(mnist, small_model):
    rng = np.random.default_rng(1)
    pages = [_redraw_square(d, rng) for d in mnist.x_test[:300]]
    rgb = np.stack([np.asarray(Image.fromarray(p).convert("RGB").resize(SQUARE, Image.Resampling.BILINEAR))
                    for p in pages])
    ours = camera_model.preprocess_only(rgb)
    theirs = np.stack([preprocess.to_mnist(image[..., 0].astype(np.float32)) for image in rgb])
    a = small_model.predict(ours[..., None] / 255.0, verbose=0).argmax(1)
    b = small_model.predict(theirs[..., None] / 255.0, verbose=0).argmax(1)
    assert np.mean(a == b) >= 0.995


def test_a_page_in_shade_is_flattened_in_the_graph_as_preprocess_py_does(mnist, small_model):
    """Faint ink on a page whose light falls off by 30% corner to corner: left in, the shading is
    taken for ink (the dark corner cropped with the digit) and few digits are read right."""
    rows, cols = np.mgrid[:camera_model.SIZE, :camera_model.SIZE]
    shade = 1 - 0.3 * (rows + cols) / (2 * camera_model.SIZE - 2)
    side, at = camera_model.SIZE // 2, camera_model.SIZE // 4
    frames = []
    for digit in mnist.x_test[:100]:
        ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)) / 255.0
        page = np.full(SQUARE, 235.0)
        page[at:at + side, at:at + side] -= 120 * ink
        frames.append(np.clip(page * shade, 0, 255).astype(np.uint8))
    ours = camera_model.preprocess_only(np.repeat(np.stack(frames)[..., None], 3, -1))
    theirs = np.stack([preprocess.to_mnist(frame.astype(np.float32)) for frame in frames])
    a, b = (small_model.predict(x[..., None] / 255.0, verbose=0).argmax(1) for x in (ours, theirs))
    assert np.mean(a == b) >= 0.95
    assert np.mean(a == mnist.y_test[:100]) >= 0.9


def test_the_preprocessing_runs_in_xnnpack_as_the_graph_computes_it(mnist):
    """The in-graph preprocessing as its own .tflite: LiteRT's XNNPACK delegate takes all of it but
    the uint8 cast and the 5th strongest pixel (top-k, gather), and its answers are the graph's."""
    from ai_edge_litert.interpreter import Interpreter

    from mnist_keras.inference import litert

    with litert.quiet_stderr():
        interpreter = Interpreter(model_content=camera_model.convert_preprocessing(), num_threads=1)
        interpreter.allocate_tensors()
    nodes = [op["op_name"] for op in interpreter._get_ops_details()]
    assert 1 <= nodes.count("DELEGATE") <= 3, nodes
    assert not {"LESS", "GREATER", "SELECT", "SELECT_V2", "WHERE"} & set(nodes), nodes
    assert nodes.count("CAST") == 1 and nodes.count("TOPK_V2") <= 2 and nodes.count("GATHER") <= 1
    rng = np.random.default_rng(2)
    pages = [_redraw_square(d, rng) for d in mnist.x_test[:20]]
    rgb = np.stack([np.asarray(Image.fromarray(p).convert("RGB").resize(SQUARE, Image.Resampling.BILINEAR))
                    for p in pages] + list(camera_model.render(mnist.x_test[20:30])))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    lite = []
    for image in rgb:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        lite.append(np.round(interpreter.get_tensor(out["index"])[0, :, :, 0] * 255).astype(int))
    graph = camera_model.preprocess_only(rgb).astype(int)
    assert np.abs(np.array(lite) - graph).max() <= 1  # float rounding at most
    assert np.mean(np.array(lite) == graph) >= 0.999


def test_redrawn_pages_read_as_predict_reads_them(exported, mnist, small_model, tmp_path):
    """Pages as scripts/redrawn_digits.py draws them, squared with paper round the digit."""
    rng = np.random.default_rng(0)
    paths = []
    for i, digit in enumerate(mnist.x_test[:400]):
        path = tmp_path / f"{i}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(_redraw_square(digit, rng)).save(path)
        paths.append(path)
    labels = mnist.y_test[:400]
    read = small_model.predict(np.stack([preprocess.preprocess(p) for p in paths])[..., None] / 255.0,
                               verbose=0).argmax(1)
    rgb = np.stack([np.asarray(Image.open(p).convert("RGB").resize(SQUARE, Image.Resampling.BILINEAR))
                    for p in paths])
    digits = mediapipe_check.classify(exported.export / "mnist_camera.tflite", rgb)
    assert abs(np.mean(digits == labels) - np.mean(read == labels)) <= 0.01


def test_a_model_mediapipe_refuses_is_not_kept(trained, small_model, mnist, tmp_path):
    """Grayscale metadata on an RGB model: MediaPipe refuses it, and nothing stays."""
    from mnist_keras.exporting import artifacts, verify

    (tmp_path / "mnist_rgb.tflite").write_bytes(b"an earlier export's model")
    keras = verify.Result("Keras", "m", 0, 95, 100, 0.0)
    reference = verify.Reference(mnist.x_test[:100], mnist.y_test[:100], np.zeros((100, 10)), keras)
    job = artifacts.Export(trained.model_path, Network(small_model), mnist, None, tmp_path, ["rgb"],
                           mnist.x_train[:10], reference, provenance={}, results=[keras])
    rgb = next(a for a in artifacts.ARTIFACTS if a.name == "rgb")
    grayscale = dataclasses.replace(rgb, convert=lambda job, a: app_models.convert(job.network, a.file, {},
                                                                                   color="GRAYSCALE"))
    artifacts.publish_artifact(job, grayscale)
    assert len(job.problems) == 1, job.problems
    assert re.fullmatch(r"mnist_rgb.tflite: MediaPipe's ImageClassifier refuses it: .*, not kept", job.problems[0])
    assert job.results == [keras] and job.written == [] and not list(tmp_path.iterdir())


def test_metadata_that_cannot_be_written_or_read_is_one_line(exported, tmp_path):
    with pytest.raises(InputError, match=r"^bad: cannot write TFLite metadata"):
        tflite_metadata.add_metadata(b"not a model at all, just some bytes", "bad", "d", "1", "p")
    plain = (exported.export / "mnist_float32.tflite").read_bytes()
    with pytest.raises(InputError, match=r"^m.tflite: (no TFLITE_METADATA|cannot read TFLite metadata)"):
        tflite_metadata.read_metadata(plain[:len(plain) // 2], "m.tflite")


def test_an_artifact_whose_metadata_or_mediapipe_check_fails_is_dropped_and_the_rest_exported(
        trained, mnist, tmp_path, monkeypatch):
    from mnist_keras.data import datasets
    from mnist_keras.exporting import steps

    embed = tflite_metadata.embed

    def refuse_float16(model, name, *args, **kwargs):
        if name == "mnist_float16.tflite":
            raise InputError(f"{name}: cannot write TFLite metadata: refused for the test")
        return embed(model, name, *args, **kwargs)

    def refuse_all(model, images, name="model"):
        raise InputError(f"{name}: MediaPipe cannot run it: refused for the test")

    monkeypatch.setattr(tflite_metadata, "embed", refuse_float16)
    monkeypatch.setattr(mediapipe_check, "classify", refuse_all)
    out = tmp_path / "export"
    out.mkdir()
    for name in ("mnist_float16.tflite", "mnist_float16.json", "mnist_rgb.tflite", "mnist_rgb.json"):
        (out / name).write_bytes(b"an earlier export's file")
    summary = steps.export_model(trained.model_path, None, out, datasets.take(mnist, test_examples=500),
                                  steps.ExportOptions(["float32", "float16", "rgb"],
                                                      web_runtime=tmp_path / "no_runtime"))
    assert (out / "mnist_float32.tflite").is_file() and (out / "mnist_float32.json").is_file()
    assert out / "mnist_float32.tflite" in summary.written
    recorded = json.loads((out / "export.json").read_text())
    assert [r["artifact"] for r in recorded["artifacts"]] == ["Keras", "TFLite float32"]
    assert (out / "labels.txt").is_file()
    assert sorted(p.name for p in out.glob("mnist_*")) == ["mnist_float32.json", "mnist_float32.tflite"]
    assert not summary.failed
    assert summary.problems == [
        "mnist_float16.tflite: cannot write TFLite metadata: refused for the test, not kept",
        "mnist_rgb.tflite: MediaPipe cannot run it: refused for the test, not kept"]
    assert summary.failure_message() == "; ".join(summary.problems)  # the command's one error: line


@functools.cache
def _redrawn_digits():
    """scripts/redrawn_digits.py, loaded once (it defines absl flags)."""
    import importlib.util


    spec = importlib.util.spec_from_file_location("redrawn_digits", REPO / "scripts" / "redrawn_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _redraw_square(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """scripts/redrawn_digits.py's page (grey pencil on off-white, off-centre), padded square with paper."""
    page = np.asarray(_redrawn_digits().redraw(digit, int(rng.choice([56, 140])), rng))
    side = max(page.shape)
    square = np.clip(235 + rng.normal(0, 4, (side, side)), 0, 255).astype(np.uint8)
    square[:page.shape[0], :page.shape[1]] = page
    return square
