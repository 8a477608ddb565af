"""The "no digit" decision (no_digit.py, negatives.py): the same in every reader and format, the
network's own outputs unchanged, the threshold stored with the model, blank pictures answered."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mnist_keras.data import datasets, fonts, negatives, preprocess, templates
from mnist_keras.errors import InputError, NoInk
from mnist_keras.inference import classifiers, litert, no_digit, no_digit_fit, no_digit_graph, predict
from mnist_keras.inference.predictor import keras_predictor, load_predictor
from mnist_keras.training import keras_file
from tests.helpers import REPO, assert_one_line_error, run_module

# --- The negatives ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", negatives.available())
def test_each_kind_is_made_the_same_every_time_and_its_splits_differ(kind):
    first, again = negatives.make(kind, "validation", 12), negatives.make(kind, "validation", 12)
    np.testing.assert_array_equal(first.pages, again.pages)
    np.testing.assert_array_equal(first.images, again.images)
    held = negatives.make(kind, "heldout", 12)
    assert not any((held.pages == page).all(axis=(1, 2)).any() for page in first.pages if page.std() > 0)
    assert first.images.shape == (12, 28, 28) and first.images.dtype == np.uint8
    assert (first.images[first.no_ink] == 0).all()


def test_letters_are_held_out_by_font_and_digit_shapes_are_not_negatives():
    splits = {split: set(fonts.font_split(split)) for split in negatives.SPLITS}
    assert splits["heldout"] and splits["validation"] and splits["train"]
    assert not splits["heldout"] & splits["train"] and not splits["validation"] & splits["train"]
    assert not splits["heldout"] & splits["validation"]
    for glyph in "OoIl|ZSBgq":
        assert glyph not in negatives.GLYPHS
    assert "x" in negatives.GLYPHS and "#" in negatives.GLYPHS and not set("0123456789") & set(negatives.GLYPHS)
    typed = negatives.make("letters", "heldout", 30)
    assert len(typed.sources) == 30 and set(typed.sources) <= set(negatives.GLYPHS)  # each names its glyph
    if "fashion" in negatives.available():
        items = negatives.make("fashion", "heldout", 30).sources
        assert len(set(items)) > 3 and set(items) <= set(negatives.FASHION_ITEMS)


def test_blank_and_one_colour_pictures_have_no_ink():
    blank = negatives.make("blank", "heldout", 10)
    one_colour = [n for n in range(10) if n % 5 == 0]  # the first style: one colour
    assert blank.no_ink[one_colour].all()
    for level in (0, 128, 255):
        with pytest.raises(NoInk, match="no digit found"):
            preprocess.to_mnist(np.full((40, 60), level, np.float32))


# --- The head ----------------------------------------------------------------------------------

def test_the_head_leaves_the_networks_outputs_bit_identical(trained, no_digit_head, mnist):
    model = keras_file.load_keras(trained.model_path)
    images = datasets.scale_images(mnist.x_test[:64])
    alone = np.asarray(model(images, training=False))
    both, score = no_digit_graph.with_head(model, no_digit_head)([images], training=False)
    np.testing.assert_array_equal(np.asarray(both), alone)
    assert np.asarray(score).shape == (64,) and ((np.asarray(score) >= 0) & (np.asarray(score) <= 1)).all()


def test_the_threshold_is_recorded_beside_the_model_and_folded_in(trained, no_digit_head):
    keras_path, json_path = no_digit.head_paths(trained.model_path)
    assert keras_path.name == "mnist.no_digit.keras" and json_path.name == "mnist.no_digit.json"
    record = json.loads(json_path.read_text())
    assert 0 < record["threshold"] < 1 and record["threshold"] == no_digit_head.threshold
    fitted = record["fitted"]
    assert mnist_style_rejected(fitted) <= no_digit.TARGET_REJECTED + 1e-4
    assert fitted["validation_rejected"]["typed"] <= 2 * no_digit.TARGET_REJECTED + 1e-4
    assert "digit_score >= 0.5" in record["decision"]


def mnist_style_rejected(fitted: dict) -> float:
    """The share of the MNIST-style validation digits (MNIST's and the same redrawn, together) a head refuses."""
    counts = {kind: fitted["validation"][kind] for kind in no_digit_fit.MNIST_STYLE if kind in fitted["validation"]}
    return sum(fitted["validation_rejected"][kind] * count for kind, count in counts.items()) / sum(counts.values())


def test_a_higher_max_refused_refuses_more_digits_and_more_non_digits(trained, no_digit_head, mnist):
    """mnist-no-digit --max_refused: the same fit, its cut moved to the share of validation digits asked for;
    on pictures neither choice saw, the stricter head refuses more MNIST test digits and more non-digits."""
    model = keras_file.load_keras(trained.model_path)
    sets = no_digit_fit.build_sets(model, mnist.x_train[:-2000], mnist.x_train[-2000:], 300, 3000)
    heads = {target: no_digit_fit.fit(sets, settings=no_digit_fit.FitSettings(epochs=10, target=target))
             for target in (0.0025, 0.03)}
    for target, head in heads.items():
        assert head.fitted["target_rejected_validation_digits"] == target
        assert mnist_style_rejected(head.fitted) <= target + 1e-4
    non_digits = np.concatenate([negatives.make(kind, "heldout", 100).images for kind in negatives.available()])
    refused = {target: [float(np.mean(no_digit.decide(keras_predictor(model, head)(images)[1])))
                        for images in (mnist.x_test[:2000], non_digits)] for target, head in heads.items()}
    assert refused[0.03][0] > refused[0.0025][0] and refused[0.03][1] > refused[0.0025][1], refused


@pytest.mark.parametrize("value, fragment", [("nan", "must be a finite number"), ("20", "in the range [0.01, 10]")])
def test_a_bad_max_refused_is_one_line_before_any_work(trained, tmp_path, value, fragment):
    model = tmp_path / "mnist.keras"
    shutil.copy(trained.model_path, model)
    result = run_module("mnist_keras.no_digit", f"--model={model}", f"--max_refused={value}", cwd=tmp_path)
    assert_one_line_error(result, "--max_refused", fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist.keras"]  # no head written


@pytest.mark.parametrize("target", [float("nan"), 0.0, 1.0])
def test_a_bad_target_is_refused_before_any_work(mnist, target):
    """For callers from Python: the check is in fit_head itself, before a picture is made."""
    with pytest.raises(InputError, match=r"target=.*between 0 and 1"):
        no_digit_fit.fit_head(None, mnist.x_train, settings=no_digit_fit.FitSettings(target=target))


def test_a_head_that_is_missing_or_for_another_model_is_one_line(trained, no_digit_head, tmp_path):
    model_path = trained.model_path
    with pytest.raises(InputError, match="no such no-digit head; run mnist-no-digit"):
        no_digit.load_head(tmp_path / "other.keras")
    with pytest.raises(InputError, match="fitted to another model"):
        no_digit.load_head(model_path, "0" * 64)
    # A head of another shape (an earlier version read pool2 whole): the file, the shape, the fix.
    import keras

    other = tmp_path / "old.keras"
    old_keras, old_json = no_digit.head_paths(other)
    keras.Sequential([keras.Input((3274,)), keras.layers.Dense(1)]).save(old_keras)
    old_json.write_text(no_digit.head_paths(model_path)[1].read_text())
    with pytest.raises(InputError, match=r"old.no_digit.keras: not a no-digit head of this version "
                                         r"\(\[N, 1162\] to \[N, 1\]\); run mnist-no-digit"):
        no_digit.load_head(other)


# --- Every format decides the same ----------------------------------------------------------

@pytest.fixture(scope="module")
def probe_images(mnist):
    """Test digits and held-out non-digits that preprocessing finds ink in: what reaches a model."""
    kinds = negatives.available()
    made = [negatives.make(kind, "heldout", 200) for kind in kinds]
    others = np.concatenate([m.images[~m.no_ink] for m in made])
    return np.concatenate([mnist.x_test[:600], others])


def test_every_format_makes_the_same_decision(exported, probe_images):
    model_path = exported.model_path
    reference = no_digit.decide(load_predictor(model_path)(probe_images)[1])
    assert 0.05 < reference.mean() < 0.95  # both answers occur: the agreement below means something
    files = [exported.serving / "1"] + sorted(exported.export.glob("mnist_*.tflite"))
    files = [f for f in files if f.name not in ("mnist_camera.tflite", "mnist_rgb.tflite")]
    assert len(files) == 5
    for path in files:
        probabilities, scores = load_predictor(path)(probe_images)
        agreement = float(np.mean(no_digit.decide(scores) == reference))
        # Full-integer int8 flips 0.5 to 0.65% of this small test model's decisions, the README
        # model's 0.22% (docs/benchmarks.md); a broken quantization of the head flips many more.
        assert agreement >= (0.99 if path.name == "mnist_int8.tflite" else 0.995), (path.name, agreement)
        assert probabilities.shape == (len(probe_images), 10)


def test_the_rgb_model_decides_as_keras(exported, probe_images):
    model_path = exported.model_path
    reference = no_digit.decide(load_predictor(model_path)(probe_images)[1])
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(exported.export / "mnist_rgb.tflite"))
    runner = interpreter.get_signature_runner()
    scores = []
    for image in probe_images:
        check = runner(image=np.repeat(image[None, :, :, None], 3, axis=-1))[no_digit.CHECK]
        detail = litert.output_named(interpreter, no_digit.CHECK)
        scores.append(litert.from_output(check, detail)[0, 1])
    assert float(np.mean(no_digit.decide(np.array(scores)) == reference)) >= 0.995


# --- What export writes ---------------------------------------------------------------------

def test_export_stores_and_prints_the_threshold(exported, no_digit_head):
    export_json = json.loads((exported.export / "export.json").read_text())
    assert export_json["no_digit_threshold"] == no_digit_head.threshold
    beside = json.loads((exported.export / "no_digit.json").read_text())
    assert beside["threshold"] == no_digit_head.threshold
    in_saved_model = json.loads((exported.serving / "1" / "assets.extra" / "no_digit.json").read_text())
    assert in_saved_model["threshold"] == no_digit_head.threshold
    signature = classifiers.load_saved_model(exported.serving / "1")
    outputs = {k: (v.shape.as_list(), v.dtype.name) for k, v in signature.structured_outputs.items()}
    assert outputs == {"probabilities": ([None, 10], "float32"), "classes": ([None], "int64"),
                       "digit_score": ([None], "float32")}


@pytest.mark.parametrize("name", ["mnist_float32", "mnist_int8", "mnist_camera"])
def test_each_tflite_has_the_check_output_with_its_metadata(exported, name):
    path = exported.export / f"{name}.tflite"
    from mnist_keras.exporting import tflite_metadata

    found = tflite_metadata.read_metadata(path.read_bytes(), path.name)
    assert found["output"]["labels"] == tflite_metadata.LABELS
    assert found["no_digit_output"]["labels"] == no_digit.CHECK_LABELS
    description = json.loads(path.with_suffix(".json").read_text())
    if name != "mnist_camera":
        assert description["no_digit_output"]["shape"][-1] == 2
        assert description["output"]["shape"][-1] == 10


def test_mediapipe_reads_both_heads_of_the_camera_model(exported, mnist):
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    from mnist_keras.exporting import camera_model

    options = vision.ImageClassifierOptions(base_options=BaseOptions(
        model_asset_path=str(exported.export / "mnist_camera.tflite")), max_results=1)
    frames = np.concatenate([camera_model.render(mnist.x_test[:5]),
                             np.full((1, camera_model.SIZE, camera_model.SIZE, 3), 230, np.uint8)])
    with vision.ImageClassifier.create_from_options(options) as classifier:
        results = [classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(f)))
                   for f in frames]
    for result, label in zip(results[:5], mnist.y_test[:5]):
        heads = {c.head_name: c.categories[0].category_name for c in result.classifications}
        assert heads["probabilities"] == str(label) and heads[no_digit.CHECK] == no_digit.DIGIT
    blank = {c.head_name: c.categories[0].category_name for c in results[5].classifications}
    assert blank[no_digit.CHECK] == no_digit.NO_DIGIT


# --- The readers ----------------------------------------------------------------------------

def _blank_files(tmp_path):
    Image.new("L", (300, 200), 250).save(tmp_path / "blank.png")
    Image.new("RGB", (64, 64), (30, 120, 200)).save(tmp_path / "blue.jpg")
    noise = np.random.default_rng(0).normal(128, 3, (80, 80)).clip(0, 255).astype(np.uint8)
    Image.fromarray(noise).save(tmp_path / "faint.png")  # paper grain, no ink object
    return ["blank.png", "blue.jpg", "faint.png"]


def test_predict_says_no_digit_for_blank_pictures_and_still_reads_digits(exported, mnist, tmp_path):
    names = _blank_files(tmp_path)
    Image.fromarray(255 - mnist.x_test[0]).resize((100, 100)).save(tmp_path / "seven.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    model = exported.export / "mnist_int8.tflite"
    result = run_module("mnist_keras.predict", *names, "seven.png", "bad.png", f"--model={model}", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["error: bad.png: not an image file (PNG, JPEG, BMP, GIF, ...)"]
    lines = result.stdout.strip().splitlines()
    for name, line in zip(names, lines):
        assert line == f"{name}: no digit (no ink: the picture is blank or has almost no contrast)"
    assert lines[3].startswith(f"seven.png: {mnist.y_test[0]} (")
    result = run_module("mnist_keras.predict", *names, "seven.png", "--json", f"--model={model}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)["predictions"]
    assert [r["no_digit"] for r in records] == [True, True, True, False]
    assert records[0]["digit"] is None and records[0]["digit_score"] is None
    assert records[3]["digit"] == mnist.y_test[0] and records[3]["digit_score"] >= 0.5


def test_predict_reports_the_heads_decision_in_every_format(exported, mnist, tmp_path):
    model_path = exported.model_path
    images = {}
    for i in range(3):
        Image.fromarray(255 - mnist.x_test[i]).resize((100, 100)).save(tmp_path / f"{i}.png")
        images[f"{i}.png"] = mnist.y_test[i]
    texture = negatives.make("textures", "heldout", 1).pages[0]
    Image.fromarray(texture).save(tmp_path / "texture.png")
    paths = [tmp_path / n for n in [*images, "texture.png"]]
    decisions = []
    for model in (model_path, exported.serving / "1", exported.export / "mnist_float32.tflite"):
        records = predict.predict_files(paths, load_predictor(model))
        assert [r["digit"] for r in records[:3]] == list(images.values())
        assert all(isinstance(r["no_digit"], bool) and 0 <= r["digit_score"] <= 1 for r in records)
        decisions.append([r["no_digit"] for r in records])
        text = predict.format_record(records[3])
        assert text.startswith(f"{paths[3]}: ")
        if records[3]["no_digit"]:
            assert text == f"{paths[3]}: no digit (digit score {records[3]['digit_score']:.2f})"
    assert decisions[0] == decisions[1] == decisions[2]


def test_a_model_without_its_head_is_one_line(trained, mnist, keras_probabilities, tmp_path):
    with pytest.raises(InputError, match="no such model"):
        load_predictor(tmp_path / "missing.tflite")
    bare = tmp_path / "bare.keras"
    bare.write_bytes(trained.model_path.read_bytes())
    with pytest.raises(InputError, match="bare.no_digit.keras: no such no-digit head; run mnist-no-digit"):
        load_predictor(bare)
    # Where no score is needed (verify), the same file reads as the network alone: its digit score is NaN.
    probabilities, scores = load_predictor(bare, require_score=False)(mnist.x_test[:5])
    np.testing.assert_allclose(probabilities, keras_probabilities[:5], atol=1e-5)
    assert np.isnan(scores).all()


def test_evaluate_reports_both_sides(trained, no_digit_head):
    """evaluate_file and the lines mnist-evaluate prints from it (the command itself: test_evaluate.py)."""
    from mnist_keras.inference import evaluate

    result = evaluate.evaluate_file(trained.model_path, datasets.take(datasets.load(), test_examples=500), 60)
    printed = evaluate.format_report(result)
    assert "test digits rejected as no digit:" in printed
    assert "test accuracy counting rejections as errors:" in printed
    found = json.loads(json.dumps(result))["no_digit"]  # as --json writes it
    kinds = negatives.available()
    assert set(found["negatives_heldout"]) >= set(kinds)
    for kind in kinds:
        row = found["negatives_heldout"][kind]
        assert row["total"] == 60 and row["rejected"] + row["accepted"] == 60
        assert f"  {kind:<34} {row['rejected_percent']:>7.1f}%" in printed
    assert found["accuracy_rejections_wrong"] <= result["accuracy"]
    assert found["threshold"] == no_digit_head.threshold


def test_rest_grpc_and_draw_give_the_digit_score(exported, mnist):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from mnist_keras.serving import grpc_service, model_manager
    from mnist_keras.serving.config import ServerOptions
    from tests.helpers import call, start_server

    out = exported.folder
    process, port = start_server(f"--model_base_path={out / 'serving'}", cwd=out)
    manager = model_manager.ModelManager("mnist", out / "serving", model_manager.Policy(poll_seconds=0),
                                         log=lambda line: None)
    manager.start()
    server, grpc_port = grpc_service.start_grpc_server(manager, ServerOptions(port=0))
    try:
        blank = io.BytesIO()
        Image.new("RGB", (280, 280), "white").save(blank, "PNG")
        status, answer = call(port, "POST", "/draw", blank.getvalue())
        assert status == 200 and answer["no_digit"] is True and answer["digit"] is None
        seven = io.BytesIO()
        Image.fromarray(255 - mnist.x_test[0]).resize((280, 280)).save(seven, "PNG")
        status, answer = call(port, "POST", "/draw", seven.getvalue())
        assert answer["digit"] == mnist.y_test[0] and answer["no_digit"] is False and answer["digit_score"] >= 0.5
        scaled = datasets.scale_images(mnist.x_test[:2])
        status, rest = call(port, "POST", "/v1/models/mnist:predict", json.dumps({"instances": scaled.tolist()}))
        assert status == 200
        assert [sorted(p) for p in rest["predictions"]] == [["classes", "digit_score", "probabilities"]] * 2
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mnist"
        request.inputs["images"].CopyFrom(grpc_service.array_to_tensor(scaled))
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
        assert sorted(reply.outputs) == ["classes", "digit_score", "probabilities"]
        scores = grpc_service.tensor_to_array(reply.outputs["digit_score"])
        np.testing.assert_allclose(scores, [p["digit_score"] for p in rest["predictions"]], atol=1e-6)
    finally:
        server.stop(0)
        manager.stop()
        process.terminate()
        process.wait(timeout=30)


def test_the_benchmark_prints_every_kind_and_the_bars(trained, no_digit_head, tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "no_digit_benchmark.py"), f"--model={trained.model_path}",
         "--negatives=30", "--redrawn=40"], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert "CPU: " in lines[0]
    row = next(line for line in lines if line.startswith(f"head (MLP {no_digit.HIDDEN}) on all"))
    assert len(row.split()) == 5 + 3 + len(negatives.KINDS)  # the name's words, then a figure per column
    assert any(line.startswith("Bars (issue 20)") for line in lines)


def test_without_fashion_mnist_the_other_kinds_serve_and_the_gap_is_said(trained, no_digit_head, mnist, monkeypatch,
                                                                        tmp_path):
    """A machine without Debian's Fashion-MNIST still fits, calibrates and evaluates on the other kinds."""
    from mnist_keras.inference import evaluate

    monkeypatch.setattr(negatives, "FASHION_DIR", tmp_path / "absent")
    assert "fashion" not in negatives.available() and str(tmp_path / "absent") in negatives.missing()["fashion"]
    calibration = no_digit_fit.calibration_negatives(40)
    assert calibration.shape == (40, 28, 28) and calibration.dtype == np.uint8
    reader = keras_predictor(keras_file.load_keras(trained.model_path), no_digit_head)
    found = evaluate.no_digit_metrics(reader, mnist.x_test[:200], mnist.y_test[:200], 30, no_digit_head.threshold)
    assert "fashion" not in found["negatives_heldout"] and set(found["negatives_heldout"]) == set(negatives.available())
    assert "fashion: not measured" in evaluate.format_no_digit(found, 200)


def test_the_pictures_made_on_every_core_are_those_made_on_one(mnist, monkeypatch):
    """The head's pictures are made in spawned processes; the same as in this one, and every kind is there."""
    jobs = no_digit_fit.picture_jobs(mnist.x_train[:300], mnist.x_train[300:400], digits_count=60, negatives_count=12)
    assert {name.split("/")[1] for name in jobs} >= {"typed", "drawn", "reshaped", "drawn shapes", "drawn letters"}
    assert not any(name.endswith(negatives.DIGIT_LIKE) for name in jobs)  # measured apart, never fitted on
    made = no_digit_fit.make_pictures(jobs)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # one core: made here, in turn
    here = no_digit_fit.make_pictures(jobs)
    assert list(made) == list(jobs) == list(here)
    for name in jobs:
        np.testing.assert_array_equal(made[name][0], here[name][0])
        np.testing.assert_array_equal(made[name][1], here[name][1])


def test_the_reading_benchmark_prints_every_kind_for_every_reader(exported, mnist, tmp_path):
    """Each kind of held-out digit and non-digit, for the network, Keras with its head, mnist-predict's
    reader and the camera model; the network's MNIST figure is the model's test accuracy."""
    from mnist_keras.training import metrics

    model_path = exported.model_path
    export = exported.export
    web = export / "web"
    page = ["--page", str(web)] if shutil.which("chromium") and (web / "index.html").is_file() else []
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "reading_benchmark.py"), f"--model={model_path}",
         f"--predict_model={export / 'mnist_int8.tflite'}",
         f"--camera={export / 'mnist_camera.tflite'}",
         "--count=40", "--negatives=20", "--mnist=1000", *page],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]

    def row(name: str) -> str:
        return next(line for line in result.stdout.splitlines() if line.startswith(name + "  "))

    def figures(name: str) -> list[float]:
        return [float(cell) for cell in re.findall(r"([\d.]+)%", row(name))]

    header = next(line for line in result.stdout.splitlines() if "network right" in line)
    assert re.search(r"Keras right +refused +mnist-predict right +mnist-predict refused +camera \.tflite right "
                     r"+camera \.tflite refused +aim \(every reader\)$", header), header  # every column's name apart
    digits = ["MNIST test", "typed, print fonts", "typed, handwriting fonts", "drawn, held-out templates",
              "MNIST test reshaped", "MNIST test redrawn", "real handwriting (UCI, 43 writers)"]
    for name in digits:
        assert len(figures(name)) == 7, name  # network; Keras right, refused; predict and camera likewise
    for name in (*negatives.available(), negatives.DIGIT_LIKE):
        assert len(figures(name)) == 3, name
    mnist_row = figures("MNIST test")  # issue 25's aim, judged on every reader
    met = mnist_row[0] >= 99.2 and min(mnist_row[1::2]) >= 99.1 and max(mnist_row[2::2]) <= 0.3
    assert row("MNIST test").endswith("%  met" if met else "%  missed")
    assert row("blank").endswith("%  met") and row(negatives.DIGIT_LIKE).endswith("%")  # the last: no bar
    network = metrics.evaluate(keras_file.load_keras(model_path), mnist.x_test[:1000], mnist.y_test[:1000])
    assert figures("MNIST test")[0] == pytest.approx(network["accuracy"], abs=0.006)
    assert re.search(r"per style \(right/refused, Keras\): \d-[a-z-]+ \d+%/\d+%", result.stdout)
    lines = result.stdout.splitlines()
    least = lines[lines.index(next(line for line in lines if line.startswith("drawn shapes  "))) + 1]
    named = re.findall(r"([\w -]+?) \d+% of \d+(?: \(as \d\))?(?:, |;|$)", least.split(": ", 1)[1])
    assert least.startswith("    refused least (Keras): ") and named, least  # which shapes pass, worst first
    assert set(named) <= {t.name for t in templates.shape_templates("heldout")}, least
    # What refusing 95% of each kind with an aim would cost: a kind the head refuses 95% of already needs a cut
    # at or under its own, so no more MNIST digits refused than now; a kind it misses needs one above.
    costs = dict(re.findall(r"^  (.+?) +cut \S+: MNIST test ([\d.]+)%, held-out styles",
                            result.stdout, re.M))
    assert set(costs) == set(negatives.available()), result.stdout[-1500:]
    refused_now = figures("MNIST test")[2]  # Keras with its head, as the trade-off is
    for kind, cost in costs.items():
        assert float(cost) <= refused_now + 0.05 if figures(kind)[0] >= 95 else float(cost) >= refused_now - 0.05, kind
    if page:  # what the drawing page answers for each drawing: a digit or "no digit"
        answers = re.findall(r"^  ([\w-]+) \((train|heldout)\): (no digit|\d)$", result.stdout, re.M)
        assert len(answers) == 12 and {"letter-A-b", "arrow-a", "tick-c", "7-plain-a"} <= {a[0] for a in answers}
