"""Exports the trained model for TF Serving and for phones, and verifies every file.

    python -m mnist_keras.export [--model saved_models/mnist.keras]

Writes
  saved_models/mnist/<version>/    SavedModel for TF Serving; a new version each export
  export/mnist_float32.tflite      float32
  export/mnist_float16.tflite      float16 weights (half the size, float32 arithmetic)
  export/mnist_dynamic_int8.tflite int8 weights, float activations
  export/mnist_int8.tflite         int8 weights and activations, uint8 input and output
  export/<model>.json              input/output spec, accuracy, size, SHA-256 of each
  export/labels.txt, export/export.json (the table below, as JSON)
and prints a table of each artifact's size, test accuracy against the Keras model, and time
per image. Every artifact is first written under a temporary name, evaluated on the test
set through its own runtime, and renamed only if it meets its bar (see verify.py).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from absl import flags

from mnist_keras import camera_export, cli, litert, tflite_metadata, verify
from mnist_keras.data import IMAGE_SHAPE, NUM_CLASSES
from mnist_keras.errors import InputError

SAVED_MODEL = "savedmodel"
# name: (description, quantized)
TFLITE_FORMATS = {
    "float32": ("float32 weights and arithmetic", False),
    "float16": ("float16 weights, float32 arithmetic on CPU (float16 on GPU delegates)", False),
    "dynamic_int8": ("int8 weights, float32 input, output and activations", True),
    "int8": ("int8 weights and activations, uint8 input and output (full integer)", True),
}
FORMATS = (SAVED_MODEL, *TFLITE_FORMATS, *camera_export.FORMATS)  # issue 13: camera, rgb
PIXELS = ("28x28x1 grayscale, white digit on black as in MNIST (0 = background, 255 = ink), "
          "the digit's 20x20 box centred by its centre of mass")
PARTIAL = ".partial-"  # prefix of what an unfinished export is writing; never served or read
STALE_SECONDS = 24 * 3600  # a partial this old is a leftover even if its PID is alive again


def tflite_name(fmt: str) -> str:
    return f"mnist_{fmt}.tflite"


# --- Where files go: versions, partial files, stale leftovers ------------------------------

def check_folder(path: Path) -> None:
    """Says in one line why an output folder cannot be written, before anything is."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a folder")
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir():
        raise InputError(f"{path}: cannot create folder: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write in {existing}: permission denied")


def prepare_folder(path: Path) -> Path:
    """Creates a checked output folder and clears what killed exports left in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{path}: cannot create folder: {e.strerror}") from None
    remove_stale_partials(path)
    return path


def remove_stale_partials(folder: Path) -> None:
    """Deletes what killed exports left behind (.partial-<host>-<pid>-...), not a running one's."""
    host = socket.gethostname()
    for leftover in folder.glob(f"{PARTIAL}*"):
        match = re.match(rf"{re.escape(PARTIAL)}(.+)-(\d+)-", leftover.name)
        try:
            age = time.time() - leftover.lstat().st_mtime
        except FileNotFoundError:
            continue
        # Another machine's export (a shared folder) cannot be checked: give it a day.
        running = match and (_alive(int(match.group(2))) if match.group(1) == host else True)
        if running and age < STALE_SECONDS:
            continue
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def partial_path(folder: Path, name: str, is_dir: bool = False) -> Path:
    """A fresh temporary file or folder in `folder`, readable as the umask allows.

    (mkstemp's 0600 would hide a model from a TF Serving container running as another user.)
    """
    prefix = f"{PARTIAL}{socket.gethostname()}-{os.getpid()}-{name}."
    umask = os.umask(0)
    os.umask(umask)
    if is_dir:
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
        path.chmod(0o777 & ~umask)
        return path
    fd, path = tempfile.mkstemp(prefix=prefix, dir=folder)
    os.fchmod(fd, 0o666 & ~umask)
    os.close(fd)
    return Path(path)


def versions(base: Path) -> list[int]:
    """The numbers taken in base: TF Serving's versions, and any file named like one."""
    return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())


def publish_version(partial: Path, base: Path, attempts: int = 100) -> Path:
    """Renames a finished SavedModel to the next version; never replaces an existing one."""
    for _ in range(attempts):
        target = base / str((versions(base) or [0])[-1] + 1)
        try:
            os.rename(partial, target)  # fails if another export took this number first
            return target
        except OSError:
            if not target.exists():
                raise
    raise InputError(f"{base}: could not claim a new version number in {attempts} tries")


# --- Writing the artifacts --------------------------------------------------------------

def write_saved_model(model, path: Path, outputs: str, ends_in_softmax: bool = False) -> None:
    """A SavedModel whose serving_default maps `images` to probabilities (and classes).

    outputs="serving": probabilities and classes, the contract TF Serving clients rely on;
    outputs="probabilities": the single output the TFLite files carry.
    ends_in_softmax: the model outputs probabilities already (this project's outputs logits).
    """
    import keras
    import tensorflow as tf

    def serve(images):
        scores = model(images, training=False)
        result = {"probabilities": scores if ends_in_softmax else tf.nn.softmax(scores)}
        if outputs == "serving":
            result["classes"] = tf.argmax(scores, axis=1, output_type=tf.int64)
        return result

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=[
        tf.TensorSpec([None, *IMAGE_SHAPE, 1], tf.float32, name="images")])
    archive.write_out(str(path), verbose=False)


def convert(source: Path, fmt: str, calibration: np.ndarray | None = None) -> bytes:
    """TFLite bytes from the probabilities SavedModel; calibration: uint8 images for int8."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(source))
    if fmt != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if fmt == "int8":
        scaled = calibration[..., None].astype(np.float32) / 255.0
        # One image per step, as the calibrator expects; the pixel range [0, 1] it sees
        # sets the uint8 input's scale to 1/255, so raw pixels go in unchanged.
        converter.representative_dataset = lambda: ({"images": image[None]} for image in scaled)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    with warnings.catch_warnings():  # the calibrator uses tf.lite.Interpreter internally
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return converter.convert()


def describe_tflite(path: Path, fmt: str, result: verify.Result, source: dict) -> dict:
    """The JSON a mobile engineer reads beside the .tflite: how to feed it and what it scored."""
    interpreter = litert.load(path)
    return {
        "file": path.name,
        "format": fmt,
        "description": TFLITE_FORMATS[fmt][0],
        "size_bytes": result.size_bytes,
        "sha256": verify.sha256(path),
        "input": {**litert.tensor_spec(interpreter.get_input_details()[0], "images"), "pixels": PIXELS,
                  "value": ("raw pixel 0-255" if fmt == "int8" else "pixel / 255, in [0, 1]")},
        "output": {**litert.tensor_spec(interpreter.get_output_details()[0], "probabilities"),
                   "value": "probability of each digit (softmax)", "labels": "labels.txt"},
        "signature": interpreter.get_signature_list(),
        "metadata": tflite_metadata.read_metadata(path.read_bytes(), path.name),  # issue 13: the embedded one
        "test_accuracy": round(result.accuracy, 4),
        "test_correct": result.correct,
        "test_images": result.total,
        "change_against_keras": round(result.change, 4),
        "same_class_as_keras": round(result.agreement, 4),
        "seconds_per_image": round(result.seconds_per_image, 7),
        "bar": result.bar,
        **source,
    }


def export_saved_model(model, base: Path, images, labels, keras: verify.Result,
                       reference: np.ndarray, ends_in_softmax: bool) -> verify.Result:
    partial = partial_path(base, "savedmodel", is_dir=True)
    try:
        write_saved_model(model, partial, outputs="serving", ends_in_softmax=ends_in_softmax)
        result = verify.judge(verify.measure("SavedModel", partial, images, labels, reference),
                              keras, quantized=False, max_drop=0)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if not result.passed:
        shutil.rmtree(partial)
        result.path = f"{base}/(new version)"
        return result
    result.path = str(publish_version(partial, base))
    return result


def export_tflite(source: Path, fmt: str, folder: Path, calibration: np.ndarray, images, labels,
                  keras: verify.Result, reference: np.ndarray, max_drop: float,
                  provenance: dict) -> verify.Result:
    """Converts, verifies on the test set, and keeps the file and its JSON only if it passes.

    One that fails also removes an earlier export's file of that name, so export/ never
    mixes this model's files with another's.
    """
    final = folder / tflite_name(fmt)
    final_json = final.with_suffix(".json")
    partial = partial_path(folder, final.name)
    partial_json = partial_path(folder, final_json.name)
    try:
        model = convert(source, fmt, calibration)
        model = tflite_metadata.embed(model, final.name, TFLITE_FORMATS[fmt][0], PIXELS, provenance)  # issue 13
        partial.write_bytes(model)
        result = verify.measure("TFLite " + fmt, partial, images, labels, reference)
        verify.judge(result, keras, quantized=TFLITE_FORMATS[fmt][1], max_drop=max_drop)
        result.path = str(final)
        if result.passed:
            description = {**describe_tflite(partial, fmt, result, provenance), "file": final.name}
            partial_json.write_text(json.dumps(description, indent=2) + "\n")
            os.replace(partial, final)  # the model and its description, back to back
            os.replace(partial_json, final_json)
        else:
            for path in (final, final_json):
                path.unlink(missing_ok=True)
    except InputError:  # issue 13: metadata not written or not read back: no file of that name stays
        for path in (final, final_json):
            path.unlink(missing_ok=True)
        raise
    finally:
        partial.unlink(missing_ok=True)
        partial_json.unlink(missing_ok=True)
    return result


# --- The command ------------------------------------------------------------------------

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv  # unused
    from mnist_keras import data, evaluate

    model_path = evaluate.check_keras_file(FLAGS.model)
    formats = FLAGS.formats
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InputError(f"--formats: {'unknown ' + ', '.join(unknown) if unknown else 'empty'}; "
                         f"choose from {', '.join(FORMATS)}")
    tflite_formats = [f for f in TFLITE_FORMATS if f in formats]
    app_formats = [f for f in camera_export.FORMATS if f in formats]  # issue 13
    serving_dir = Path(FLAGS.serving_dir) if SAVED_MODEL in formats else None
    export_dir = Path(FLAGS.export_dir) if tflite_formats or app_formats else None
    for folder in filter(None, [serving_dir, export_dir]):
        check_folder(folder)
    if export_dir is not None:
        outputs = [tflite_name(f) for f in tflite_formats] + [
            Path(tflite_name(f)).with_suffix(".json").name for f in tflite_formats] + [
            "labels.txt", "export.json"]
        taken = [name for name in outputs if (export_dir / name).is_dir()]
        if taken:
            raise InputError(f"{export_dir / taken[0]}: is a folder; export writes a file there")
    for folder in filter(None, [serving_dir, export_dir]):
        prepare_folder(folder)

    dataset = data.take(data.load(FLAGS.data_dir, FLAGS.tfds), test_examples=FLAGS.test_examples)
    images, labels = dataset.x_test, dataset.y_test
    rng = np.random.default_rng(0)
    calibration = dataset.x_train[rng.choice(len(dataset.x_train),
                                             min(FLAGS.calibration_examples, len(dataset.x_train)),
                                             replace=False)]
    model = evaluate.load_model(model_path)
    reference, ends_in_softmax, seconds = verify.keras_outputs(model, images)
    keras = verify.keras_result(model_path, reference, labels, seconds)
    print(f"Exporting {model_path}: {keras.accuracy:.2f}% on {len(labels)} test images of "
          f"{dataset.source}; each artifact is checked on the same images", flush=True)
    provenance = {
        "source_model": str(model_path),
        "source_model_sha256": verify.sha256(model_path),
        "keras_test_accuracy": keras.accuracy,
        "test_data": dataset.source,
        "calibration_images": len(calibration),
        "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }

    results = [keras]
    if serving_dir is not None:
        results.append(export_saved_model(model, serving_dir, images, labels, keras, reference,
                                          ends_in_softmax))
        print(f"  {results[-1].artifact}: {'ok' if results[-1].passed else 'FAILED'}", flush=True)
    if tflite_formats or app_formats:
        source = partial_path(export_dir, "tflite-source", is_dir=True)
        try:
            write_saved_model(model, source, outputs="probabilities", ends_in_softmax=ends_in_softmax)
            for fmt in tflite_formats:
                results.append(export_tflite(source, fmt, export_dir, calibration, images, labels,
                                             keras, reference, FLAGS.max_drop, provenance))
                print(f"  {results[-1].artifact}: {'ok' if results[-1].passed else 'FAILED'}",
                      flush=True)
            # issue 13: the camera model and the 28x28 RGB model, verified through MediaPipe
            for result in camera_export.export_app_models(model, ends_in_softmax, export_dir, images, labels,
                                                          keras, reference, provenance, app_formats):
                results.append(result)
                print(f"  {result.artifact}: {'ok' if result.passed else 'FAILED'}", flush=True)
        finally:
            shutil.rmtree(source, ignore_errors=True)
        cli.write_atomic(export_dir / "labels.txt", "".join(f"{c}\n" for c in range(NUM_CLASSES)))
        summary = {**provenance, "artifacts": [r.as_dict() for r in results]}
        cli.write_atomic(export_dir / "export.json", json.dumps(summary, indent=2) + "\n")
    print()
    print(format_summary(results))
    failed = [r for r in results if r.passed is False]
    if failed:
        raise InputError("; ".join(verify.failure_message(r, keras) + ", not kept" for r in failed))


def format_summary(results: list[verify.Result]) -> str:
    lines = [verify.format_table(results), ""]
    kept = [r.path for r in results[1:] if r.passed]
    if kept:
        lines.append("Kept: " + ", ".join(kept))
    lines.append("Time/image: the median of single-image calls on this machine "
                 "(TFLite: LiteRT, one thread).")
    return "\n".join(lines)


def define_flags() -> None:
    flags.DEFINE_string("model", "saved_models/mnist.keras", "The trained .keras model to export.")
    flags.DEFINE_string("serving_dir", "saved_models/mnist",
                        "TF Serving's --model_base_path: each export adds version N+1 here.")
    flags.DEFINE_string("export_dir", "export", "Where the .tflite files and their JSON go.")
    flags.DEFINE_list("formats", list(FORMATS), f"Which artifacts to write: {', '.join(FORMATS)}.")
    verify.define_max_drop_flag()
    flags.DEFINE_integer("calibration_examples", 1000,
                         "Training images that calibrate the full-integer model's ranges.",
                         lower_bound=1)
    cli.define_data_flags()
    flags.adopt_module_key_flags(cli)


def cli_main() -> None:
    """The `mnist-export` console script and `python -m mnist_keras.export`."""
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
