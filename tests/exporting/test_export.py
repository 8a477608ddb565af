"""Export to a SavedModel and four .tflite files, each checked against the Keras model."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_keras.data import datasets
from mnist_keras.errors import InputError
from mnist_keras.exporting import app_models, artifacts, steps, verify
from mnist_keras.exporting.folders import PARTIAL, partial_path, publish_version
from mnist_keras.files import sha256_file
from mnist_keras.inference import litert
from mnist_keras.inference.no_digit_graph import Network
from mnist_keras.training import keras_file
from tests.helpers import REPO, assert_no_library_lines, assert_one_line_error, run_module

TFLITE = list(steps.TFLITE_FORMATS)
ARTIFACT = {a.name: a for a in artifacts.ARTIFACTS}

# What export writes beside the versions for TF Serving (tests/serving/test_tf_serving.py reads them).
TF_SERVING_FILES = ["batching.config", "compose.yaml", "models.config", "monitoring.config"]


@pytest.fixture(scope="module")
def small_test_set():
    return datasets.take(datasets.load(), test_examples=500)


def test_export_writes_every_artifact_and_prints_the_table(exported):
    summary = exported.summary
    out = exported.folder
    assert sorted(p.name for p in exported.serving.iterdir()) == ["1", *TF_SERVING_FILES]
    assert (exported.serving / "1" / "saved_model.pb").is_file()
    names = {p.name for p in exported.export.iterdir()}
    for fmt in TFLITE:
        assert {f"mnist_{fmt}.tflite", f"mnist_{fmt}.json"} <= names
    assert (exported.export / "labels.txt").read_text().split() == [str(c) for c in range(10)]
    assert not [p for p in out.rglob("*") if p.name.startswith(PARTIAL)]
    # What the summary says was written is what is there, and nothing else.
    assert sorted(summary.written) == sorted([exported.serving / "1", *exported.export.iterdir()])
    artifacts = 1 + len(TFLITE) + len(app_models.MODELS)  # SavedModel, the .tflite files, the app models
    assert [r.passed for r in summary.results] == [None] + [True] * artifacts and not summary.failed
    table = summary.format()
    for row in ["Keras", "SavedModel", *[f"TFLite {fmt}" for fmt in TFLITE]]:
        line = next(line for line in table.splitlines() if line.startswith(row + " "))
        assert "MB" in line or "kB" in line
        assert row == "Keras" or "ok (" in line, line
    summary = json.loads((exported.export / "export.json").read_text())
    assert [a["artifact"] for a in summary["artifacts"]] == \
        ["Keras", "SavedModel", *[f"TFLite {fmt}" for fmt in TFLITE],
         *[f"MediaPipe {name}" for name in app_models.MODELS]]
    assert all(a["passed"] for a in summary["artifacts"][1:])


def test_full_integer_model_is_a_quarter_of_float32(exported):
    sizes = {fmt: (exported.export / f"mnist_{fmt}.tflite").stat().st_size for fmt in TFLITE}
    assert sizes["int8"] <= 0.27 * sizes["float32"], sizes
    assert sizes["dynamic_int8"] <= 0.27 * sizes["float32"], sizes
    assert sizes["float16"] <= 0.52 * sizes["float32"], sizes


def test_saved_model_serving_signature(exported, mnist, keras_probabilities):
    import tensorflow as tf

    signature = tf.saved_model.load(str(exported.serving / "1")).signatures["serving_default"]
    (inputs,) = signature.structured_input_signature[1].items()
    assert inputs[0] == "images"
    assert inputs[1].dtype == tf.float32 and inputs[1].shape.as_list() == [None, 28, 28, 1]
    outputs = signature.structured_outputs
    assert set(outputs) == {"probabilities", "classes", "digit_score"}  # digit_score: no_digit.py
    assert outputs["probabilities"].dtype == tf.float32
    assert outputs["probabilities"].shape.as_list() == [None, 10]
    assert outputs["classes"].dtype == tf.int64 and outputs["classes"].shape.as_list() == [None]

    images = datasets.scale_images(mnist.x_test[:1000])
    served = signature(images=tf.constant(images))
    np.testing.assert_allclose(served["probabilities"].numpy(), keras_probabilities, atol=1e-5)
    np.testing.assert_array_equal(served["classes"].numpy(), keras_probabilities.argmax(axis=1))


def test_each_export_adds_a_version_and_keeps_the_older_ones(trained, tmp_path, small_test_set):
    serving = tmp_path / "serving"
    (serving / "7").mkdir(parents=True)
    (serving / "7" / "marker").write_text("an older version")
    (serving / "notes").mkdir()
    summary = steps.export_model(trained.model_path, serving, tmp_path / "export", small_test_set,
                                  steps.ExportOptions(formats=["savedmodel"]))
    assert summary.written == [serving / "8"] and not summary.failed
    assert sorted(p.name for p in serving.iterdir()) == ["7", "8", *TF_SERVING_FILES, "notes"]
    assert (serving / "7" / "marker").read_text() == "an older version"
    assert (serving / "8" / "saved_model.pb").is_file()
    assert not list((tmp_path / "export").glob("*.tflite"))


def test_publish_version_never_replaces_a_version(tmp_path):
    for name in ["1", "2"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_text(name)
    partial = partial_path(tmp_path, "savedmodel", is_dir=True)
    (partial / "saved_model.pb").write_text("new")
    assert publish_version(partial, tmp_path) == tmp_path / "3"
    assert [(tmp_path / n / "saved_model.pb").read_text() for n in "123"] == ["1", "2", "new"]
    assert not partial.exists()


@pytest.mark.parametrize("fmt", TFLITE)
def test_tflite_tensors_and_quantization(exported, fmt):
    interpreter = litert.load(exported.export / f"mnist_{fmt}.tflite")
    (inp,), outp = interpreter.get_input_details(), litert.probabilities_output(interpreter)
    assert list(inp["shape_signature"]) == [-1, 28, 28, 1]
    assert list(outp["shape_signature"]) == [-1, 10]
    assert interpreter.get_signature_list() == {  # digit_check: no_digit.py's [no digit, digit]
        "serving_default": {"inputs": ["images"], "outputs": ["digit_check", "probabilities"]}}
    assert list(litert.output_named(interpreter, "digit_check")["shape_signature"]) == [-1, 2]
    tensor_types = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    if fmt == "int8":
        assert inp["dtype"] == np.uint8 and outp["dtype"] == np.uint8
        scale, zero_point = inp["quantization"]
        assert scale == pytest.approx(1 / 255) and zero_point == 0  # raw pixels go in as is
        assert outp["quantization"] == (pytest.approx(1 / 256), 0)
        assert "float32" not in tensor_types and "int8" in tensor_types
    else:
        assert inp["dtype"] == np.float32 and outp["dtype"] == np.float32
        assert inp["quantization"] == (0.0, 0)
        expected_weights = {"float32": "float32", "float16": "float16", "dynamic_int8": "int8"}[fmt]
        assert expected_weights in tensor_types


@pytest.mark.parametrize("fmt, atol, min_agreement", [
    ("float32", 1e-5, 100.0), ("float16", 5e-3, 99.8), ("dynamic_int8", 5e-2, 99.0),
    ("int8", 5e-2, 99.0)])
def test_tflite_agrees_with_keras(exported, mnist, keras_probabilities, fmt, atol, min_agreement):
    probabilities = litert.predict(litert.load(exported.export / f"mnist_{fmt}.tflite"),
                                   mnist.x_test[:1000])
    assert np.abs(probabilities - keras_probabilities).max() <= atol
    agreement = 100 * np.mean(probabilities.argmax(axis=1) == keras_probabilities.argmax(axis=1))
    assert agreement >= min_agreement


def test_json_description_matches_the_file_and_its_accuracy(exported, mnist):
    model_path = exported.model_path
    for fmt in TFLITE:
        path = exported.export / f"mnist_{fmt}.tflite"
        description = json.loads(path.with_suffix(".json").read_text())
        assert description["sha256"] == sha256_file(path)
        assert description["size_bytes"] == path.stat().st_size
        assert description["source_model_sha256"] == sha256_file(model_path)
        assert description["input"]["signature_name"] == "images"
        assert "white digit on black" in description["input"]["pixels"]
        classes = litert.predict(litert.load(path), mnist.x_test[:2000]).argmax(axis=1)
        assert description["test_correct"] == int(np.sum(classes == mnist.y_test[:2000]))
        assert description["test_images"] == 2000
    int8 = json.loads((exported.export / "mnist_int8.json").read_text())
    assert int8["input"]["dtype"] == "uint8" and int8["input"]["quantization"]["zero_point"] == 0


def test_verify_checks_artifacts_against_keras(exported, mnist):
    summary = exported.summary
    model_path = exported.model_path
    dataset = datasets.take(mnist, test_examples=2000)
    results = verify.verify_artifacts(model_path, [exported.export / "mnist_int8.tflite", exported.serving / "1"],
                                      dataset)
    assert [r.artifact for r in results] == ["Keras", "TFLite", "SavedModel"]
    assert [r.passed for r in results] == [None, True, True]
    assert results[1].bar == "drop <= 0.3" and results[2].bar == "within 0.05"
    # The same figures export measured when it kept these files.
    exported_rows = {r.artifact: r for r in summary.results}
    assert results[1].correct == exported_rows["TFLite int8"].correct
    assert results[2].correct == exported_rows["SavedModel"].correct
    rows = [line for line in verify.format_table(results).splitlines() if "ok (" in line]
    assert len(rows) == 2


def test_verify_command_prints_the_table(exported):
    out = exported.folder
    model_path = exported.model_path
    result = run_module("mnist_keras.verify", str(exported.export / "mnist_int8.tflite"),
                        f"--model={model_path}", "--test_examples=300", cwd=out)
    assert result.returncode == 0, result.stderr
    assert_no_library_lines(result)
    assert result.stdout.startswith("On 300 test images of ")
    assert [line.split()[0] for line in result.stdout.splitlines()[1:] if "ok (" in line] == ["TFLite"]
    # Its progress, on stderr: a line per model read, with its time (issue 27).
    assert re.fullmatch(r"  \S+mnist\.keras: read \(\d+ s\)\n  \S+mnist_int8\.tflite: read \(\d+ s\)\n",
                        result.stderr), result.stderr


def test_export_command_prints_its_own_lines_only(trained, tmp_path):
    """The converter's and LiteRT's lines hidden, each artifact's line with its time (issue 27)."""
    result = run_module("mnist_keras.export", f"--model={trained.model_path}", "--serving_dir=serving",
                        "--export_dir=export", "--formats=savedmodel,int8", "--test_examples=300", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert_no_library_lines(result)
    for artifact in ("SavedModel", "TFLite int8"):
        assert re.search(rf"^  {artifact}: ok \(\d+ s\)$", result.stdout, re.M), result.stdout


def test_an_artifact_that_misses_its_bar_is_not_kept(trained, mnist, tmp_path):
    """Calibrated on images 50x too faint, the int8 model saturates: it must be discarded."""
    model = keras_file.load_keras(trained.model_path)
    reference = verify.keras_reference(model, trained.model_path, datasets.take(mnist, test_examples=500),
                                       max_drop=0.3)[0]
    job = artifacts.Export(trained.model_path, Network(model), mnist, None, tmp_path, ["int8"],
                           mnist.x_train[:200] // 50, reference, provenance={}, results=[reference.keras])
    (tmp_path / "mnist_int8.tflite").write_bytes(b"an earlier export's model")
    (tmp_path / "mnist_int8.json").write_text("{}")
    artifacts.publish_artifact(job, ARTIFACT["int8"])
    result = job.results[-1]
    assert result.passed is False and result.change < -0.3
    assert result.path == str(tmp_path / "mnist_int8.tflite")
    assert "misses its bar" in verify.failure_message(result, reference.keras)
    # Neither the rejected model nor an earlier one of that name is left to be mistaken for it.
    assert job.written == [] and [p.name for p in tmp_path.iterdir()] == [job.source.name]
    job.close()  # the source SavedModel the .tflite files are converted from
    assert not list(tmp_path.iterdir())


def test_every_format_is_one_row_of_the_table():
    """Each --formats name is declared once, with its file, runtime and bar (artifacts.ARTIFACTS)."""
    assert [a.name for a in artifacts.ARTIFACTS] == list(steps.FORMATS)
    bars = {a.name: a.bar for a in artifacts.ARTIFACTS}
    assert bars["savedmodel"] is bars["float32"] is bars["float16"] is verify.float_bar
    assert bars["int8"] is bars["dynamic_int8"] is verify.quantized_bar
    assert {a.file for a in artifacts.ARTIFACTS if a.runtime is artifacts.mediapipe} == set(app_models.MODELS)
    assert [a.json for a in artifacts.ARTIFACTS][1:] == [Path(a.file).stem + ".json" for a in artifacts.ARTIFACTS[1:]]


def test_a_killed_export_leaves_nothing_half_written(trained, tmp_path):
    serving, out = tmp_path / "serving", tmp_path / "export"
    args = [f"--model={trained.model_path}", f"--serving_dir={serving}",
            f"--export_dir={out}", "--test_examples=500"]
    process = subprocess.Popen([sys.executable, "-m", "mnist_keras.export", *args], cwd=tmp_path,
                               env=dict(os.environ, PYTHONPATH=str(REPO)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (serving.is_dir() and any(p.name.startswith(PARTIAL) for p in serving.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline, "export never began writing"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not [p for p in serving.iterdir() if p.name.isdigit()]  # no half-made version
    assert not list(out.glob("*.tflite")) and not list(out.glob("*.json"))

    summary = steps.export_model(trained.model_path, serving, out,
                                 datasets.take(datasets.load(), test_examples=500),
                                 steps.ExportOptions(formats=["savedmodel"]))
    assert not summary.failed
    assert sorted(p.name for p in serving.iterdir()) == ["1", *TF_SERVING_FILES]  # the leftover is cleaned up


def _corrupt(path: Path, source: Path, how: str) -> None:
    data = source.read_bytes()
    path.write_bytes({"truncated": data[:len(data) // 3], "garbage": b"\x00not a flatbuffer" * 64,
                      "empty": b""}[how])


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
def test_verify_rejects_a_corrupted_tflite(exported, tmp_path, how):
    model_path = exported.model_path
    bad = tmp_path / "model.tflite"
    _corrupt(bad, exported.export / "mnist_int8.tflite", how)
    with pytest.raises(InputError, match=f"^{bad}: not a valid TFLite model"):
        verify.check_artifacts(model_path, [bad])


def test_verify_command_rejects_a_corrupted_tflite_in_one_line(exported, tmp_path):
    model_path = exported.model_path
    bad = tmp_path / "model.tflite"
    _corrupt(bad, exported.export / "mnist_int8.tflite", "truncated")
    result = run_module("mnist_keras.verify", str(bad), f"--model={model_path}", cwd=tmp_path)
    assert_one_line_error(result, str(bad), "not a valid TFLite model")


def test_verify_rejects_a_tflite_changed_after_export(exported, tmp_path):
    model_path = exported.model_path
    for suffix in [".tflite", ".json"]:
        source = exported.export / f"mnist_int8{suffix}"
        (tmp_path / source.name).write_bytes(source.read_bytes())
    replaced = tmp_path / "mnist_int8.tflite"
    replaced.write_bytes((exported.export / "mnist_dynamic_int8.tflite").read_bytes())
    with pytest.raises(InputError, match=f"^{replaced}: SHA-256 differs"):
        verify.check_artifacts(model_path, [replaced])


BAD_EXPORTS = {
    "missing model": ("nowhere/mnist.keras", "export", ["int8"], "no such model file"),
    "not a model": ("notes.txt", "export", ["int8"], "not a Keras model file"),
    "export dir is a file": (None, "notes.txt", ["int8"], "exists and is not a folder"),
    "export dir cannot be created": (None, "notes.txt/export", ["int8"], "cannot create folder"),
    "unknown format": (None, "export", ["int8", "onnx"], "--formats: unknown onnx"),
    "no format": (None, "export", [], "--formats: empty"),
}


@pytest.mark.parametrize("case", BAD_EXPORTS)
def test_export_bad_input_is_one_clear_error_and_writes_nothing(trained, tmp_path, mnist, case, monkeypatch):
    model, export_dir, formats, fragment = BAD_EXPORTS[case]
    (tmp_path / "notes.txt").write_text("not a model")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as error:
        steps.export_model(model or trained.model_path, "serving", export_dir, mnist,
                           steps.ExportOptions(formats))
    assert fragment in str(error.value) and "\n" not in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written


def test_export_command_bad_input_is_one_line(tmp_path):
    result = run_module("mnist_keras.export", "--model=nowhere/mnist.keras", cwd=tmp_path)
    assert_one_line_error(result, "nowhere/mnist.keras: no such model file")
    assert result.returncode == 2 and not list(tmp_path.iterdir())


def test_verify_rejects_a_folder_that_is_not_a_saved_model(exported, tmp_path):
    model_path = exported.model_path
    result = run_module("mnist_keras.verify", str(tmp_path), f"--model={model_path}", cwd=tmp_path)
    assert_one_line_error(result, str(tmp_path), "not a SavedModel folder")


def test_a_model_that_ends_in_softmax_is_not_given_a_second_one(mnist, tmp_path):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "softmax.keras")
    summary = steps.export_model(tmp_path / "softmax.keras", tmp_path / "serving", tmp_path / "export",
                                  datasets.take(mnist, test_examples=200),
                                  steps.ExportOptions(formats=["savedmodel", "float32"]))
    assert not summary.failed, summary.format()
    expected = model.predict(datasets.scale_images(mnist.x_test[:20]), verbose=0)
    probabilities = litert.predict(litert.load(tmp_path / "export" / "mnist_float32.tflite"),
                                   mnist.x_test[:20])
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_a_file_named_like_a_version_is_skipped_not_replaced(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "2").write_text("not a SavedModel, but the name is taken")
    partial = partial_path(tmp_path, "savedmodel", is_dir=True)
    assert publish_version(partial, tmp_path) == tmp_path / "3"
    assert (tmp_path / "2").read_text().startswith("not a SavedModel")


def test_a_killed_tflite_export_leaves_only_whole_verified_files(trained, tmp_path):
    out = tmp_path / "export"
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_keras.export", f"--model={trained.model_path}",
         f"--export_dir={out}", "--formats=float32,float16,int8", "--test_examples=500"],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any("mnist_float16" in p.name for p in out.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline, "never reached float16"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted(out.glob("*.tflite"))
    assert [p.name for p in finished] in ([], ["mnist_float32.tflite"])
    for model in finished:  # whatever is there under a final name is whole and described
        assert json.loads(model.with_suffix(".json").read_text())["sha256"] == sha256_file(model)
    assert not list(out.glob("mnist_float16.*")) and not list(out.glob("mnist_int8.*"))


@pytest.mark.parametrize("args, fragment", [
    (["--max_drop=nan"], "must be a finite number"),
    (["--max_drop=-1"], "max_drop"),
])
def test_export_bad_flags(trained, tmp_path, args, fragment):
    result = run_module("mnist_keras.export", f"--model={trained.model_path}", *args,
                        cwd=tmp_path)
    assert_one_line_error(result, fragment)
    assert not list(tmp_path.iterdir())


def test_an_output_name_taken_by_a_folder_is_refused_before_any_work(trained, tmp_path):
    (tmp_path / "export" / "mnist_int8.tflite").mkdir(parents=True)
    with pytest.raises(InputError, match="mnist_int8.tflite: is a folder"):
        steps.check_outputs(trained.model_path, tmp_path / "serving", tmp_path / "export", ["int8"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_the_web_page_takes_only_a_model_this_export_wrote(tmp_path, capsys):
    from mnist_keras.exporting import web_page

    older = tmp_path / "mnist_camera.tflite"  # an earlier export's, maybe of another .keras
    older.write_bytes(b"an earlier export's model")
    written = tmp_path / "mnist_int8.tflite"
    written.write_bytes(b"this export's model")
    assert web_page.choose_model(tmp_path, [written]) == written
    assert web_page.choose_model(tmp_path) == older  # `python -m mnist_keras.web_export` takes what is there
    assert web_page.export_web(tmp_path, tmp_path / "no_runtime", candidates=[]) is None  # a skip ...
    line = capsys.readouterr().out.strip()
    assert "web page: not written" in line and "written by this export" in line  # ... said in one line
    assert not (tmp_path / "web").exists()


def _fake_keras_file(path: Path) -> Path:
    """Passes export's checks before the lock (a zip holding config.json); Keras cannot load it."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    return path


def test_a_second_export_fails_at_once_while_another_holds_the_lock(tmp_path):
    """Nothing is read, written or removed before the second export says, in one line, which lock
    and which process hold its folders."""
    serving, out = tmp_path / "serving", tmp_path / "export"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from mnist_keras.exporting import folders\n"
         "with folders.export_lock([Path(sys.argv[1]), Path(sys.argv[2])]):\n"
         "    print('held', flush=True); sys.stdin.read()", str(serving), str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert holder.stdout.readline() == "held\n"
        leftover = out / f"{PARTIAL}elsewhere-1-web.x"  # another host's: the lock's holder may be writing it
        leftover.mkdir()
        started = time.monotonic()
        result = run_module("mnist_keras.export", f"--model={_fake_keras_file(tmp_path / 'm.keras')}",
                            f"--serving_dir={serving}", f"--export_dir={out}", cwd=tmp_path, timeout=60)
        line = assert_one_line_error(result, f"{out / '.export.lock'}: another export is writing in {out}",
                                     f"pid {holder.pid} on ")
        assert "wait for it to finish" in line and time.monotonic() - started < 30
        assert sorted(p.name for p in out.iterdir()) == [".export.lock", leftover.name]
        assert [p.name for p in serving.iterdir()] == [".export.lock"]
    finally:
        holder.communicate("")
    assert not (out / ".export.lock").exists()  # the holder removed it on the way out


def test_the_next_export_removes_what_a_killed_one_left(tmp_path, small_test_set):
    """.web.partial-<pid> (the older name, 17 MB in the issue) and .partial-<host>-<pid>- leftovers
    of a process that is gone are removed as soon as the next export holds the lock; a live one's stay."""
    import socket

    gone = subprocess.Popen(["true"])
    gone.wait()
    serving, out = tmp_path / "serving", tmp_path / "export"
    host = socket.gethostname()
    dead = [out / f".web.partial-{gone.pid}", out / f".web.old-{gone.pid}", out / f"{PARTIAL}{host}-{gone.pid}-web.a",
            serving / f"{PARTIAL}{host}-{gone.pid}-savedmodel.b"]
    alive = [out / f".web.partial-{os.getpid()}", serving / f"{PARTIAL}{host}-{os.getpid()}-savedmodel.c"]
    for folder in dead + alive:
        (folder / "litert").mkdir(parents=True)
        (folder / "litert" / "core.js").write_text("half")
    with pytest.raises(InputError, match="cannot load Keras model"):  # the export itself fails later
        steps.export_model(_fake_keras_file(tmp_path / "m.keras"), serving, out, small_test_set)
    assert not [p for p in dead if p.exists()]
    assert all(p.exists() for p in alive)
    assert not (out / ".export.lock").exists() and not (serving / ".export.lock").exists()
