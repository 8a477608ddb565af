"""Checks exported models against the Keras model they came from, on the whole test set.

    python -m mnist_keras.verify export/mnist_int8.tflite saved_models/mnist/1 \
        [--model saved_models/mnist.keras] [--max_drop 0.3]

Each artifact runs through its own runtime (a SavedModel through its serving signature,
a .tflite through LiteRT), so what is measured is what a server or a phone will compute.
Float artifacts must match the Keras model's accuracy within 0.05 points; quantized ones
may lose at most --max_drop points. `python -m mnist_keras.export` runs the same checks
before it keeps a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from absl import flags

from mnist_keras import cli, litert
from mnist_keras.data import IMAGE_SHAPE, NUM_CLASSES
from mnist_keras.errors import InputError

FLOAT_TOLERANCE = 0.05  # accuracy points: 5 of 10,000 test images
DEFAULT_MAX_DROP = 0.3


@dataclasses.dataclass
class Result:
    """One artifact's figures, as the table and the JSON files show them."""

    artifact: str
    path: str
    size_bytes: int
    correct: int
    total: int
    seconds_per_image: float
    agreement: float | None = None  # % of test images classified as the Keras model does
    change: float | None = None  # accuracy points against the Keras model
    bar: str = ""
    passed: bool | None = None

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.total

    def as_dict(self) -> dict:
        rounded = {k: round(v, 7) if isinstance(v, float) else v
                   for k, v in dataclasses.asdict(self).items()}
        return {**rounded, "accuracy": round(self.accuracy, 4)}


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def size_bytes(path: str | Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def keras_classes(model, images: np.ndarray) -> tuple[np.ndarray, float]:
    """Predicted classes of uint8 images [N, 28, 28], and the median time of one image."""
    from mnist_keras.evaluate import predict_classes

    classes = predict_classes(model, images)
    one = images[:1, ..., None].astype(np.float32) / 255.0
    return classes, _median_seconds(lambda: model.predict_on_batch(one))


def load_saved_model(path: str | Path):
    """The serving signature of a SavedModel folder, checked against the documented contract."""
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise InputError(f"{path}: not a SavedModel folder (no saved_model.pb)")
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    except KeyError:
        raise InputError(f"{path}: SavedModel has no serving_default signature") from None
    except Exception as e:  # damaged protobuf or variables
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(f"{path}: cannot load SavedModel: {first_line}") from None
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    expected_in = {"images": ([None, *IMAGE_SHAPE, 1], tf.float32)}
    expected_out = {"probabilities": ([None, NUM_CLASSES], tf.float32), "classes": ([None], tf.int64)}
    actual_in = {k: (v.shape.as_list(), v.dtype) for k, v in inputs.items()}
    actual_out = {k: (v.shape.as_list(), v.dtype) for k, v in outputs.items()}
    if actual_in != expected_in or actual_out != expected_out:
        raise InputError(f"{path}: serving_default maps {actual_in} to {actual_out}, not "
                         "images float32 [N, 28, 28, 1] to probabilities [N, 10] and classes int64 [N]")
    return signature


def saved_model_classes(path: str | Path, images: np.ndarray,
                        batch_size: int = 1000) -> tuple[np.ndarray, float]:
    import tensorflow as tf

    signature = load_saved_model(path)
    scaled = images[..., None].astype(np.float32) / 255.0
    classes = np.concatenate([
        signature(images=tf.constant(scaled[i:i + batch_size]))["classes"].numpy()
        for i in range(0, len(images), batch_size)])
    one = tf.constant(scaled[:1])
    return classes, _median_seconds(lambda: signature(images=one))


def tflite_classes(path: str | Path, images: np.ndarray) -> tuple[np.ndarray, float]:
    classes = np.argmax(litert.predict(litert.load(path), images), axis=1)
    # Latency as a phone app sees it: one image at a time, one thread.
    seconds = litert.seconds_per_image(litert.load(path, num_threads=1), images[:100])
    return classes, seconds


def is_quantized(path: str | Path) -> bool:
    """A .tflite holding int8 or uint8 tensors: quantized weights or activations."""
    interpreter = litert.load(path)
    return any(np.dtype(d["dtype"]) in (np.int8, np.uint8) for d in interpreter.get_tensor_details())


def check_recorded_hash(path: Path) -> None:
    """A .tflite whose bytes differ from what export recorded beside it is not the verified one."""
    description = path.with_suffix(".json")
    if not description.is_file():
        return
    try:
        recorded = json.loads(description.read_text()).get("sha256")
    except (OSError, ValueError, AttributeError):
        raise InputError(f"{description}: not a readable JSON description of {path.name}") from None
    if recorded and recorded != sha256(path):
        raise InputError(f"{path}: SHA-256 differs from the one recorded in {description.name} "
                         "(the file changed after export)")


def measure(artifact: str, path: str | Path, images: np.ndarray, labels: np.ndarray,
            reference: np.ndarray | None = None) -> Result:
    """Runs one artifact on the test images; reference: the Keras model's classes."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        classes, seconds = saved_model_classes(path, images)
    else:
        classes, seconds = tflite_classes(path, images)
    return Result(artifact=artifact, path=str(path), size_bytes=size_bytes(path),
                  correct=int(np.sum(classes == labels)), total=len(labels),
                  seconds_per_image=seconds,
                  agreement=None if reference is None else 100.0 * float(np.mean(classes == reference)))


def judge(result: Result, keras: Result, quantized: bool, max_drop: float) -> Result:
    """Sets change, bar and passed. Counted in images, so 0.05 points is exactly 5 of 10,000."""
    result.change = result.accuracy - keras.accuracy
    difference = result.correct - keras.correct
    if quantized:
        result.bar = f"drop <= {max_drop:g}"
        result.passed = -difference <= max_drop / 100 * result.total + 1e-9
    else:
        result.bar = f"within {FLOAT_TOLERANCE:g}"
        result.passed = abs(difference) <= FLOAT_TOLERANCE / 100 * result.total + 1e-9
    return result


def failure_message(result: Result, keras: Result) -> str:
    return (f"{result.path}: test accuracy {result.accuracy:.2f}% against the Keras model's "
            f"{keras.accuracy:.2f}% ({result.change:+.2f} points) misses its bar ({result.bar} points)")


def _median_seconds(call, repeats: int = 50) -> float:
    times = []
    for _ in range(repeats + 5):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times[5:]))


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _time(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def format_table(results: list[Result]) -> str:
    """Artifact, size, accuracy, change against Keras, agreement with it, time per image."""
    header = ["artifact", "file", "size", "test accuracy", "change", "same class", "time/image", "bar"]
    rows = [header]
    for r in results:
        verdict = "" if r.passed is None else f"{'ok' if r.passed else 'FAILED'} ({r.bar})"
        rows.append([
            r.artifact, r.path, _size(r.size_bytes),
            f"{r.accuracy:.2f}% ({r.correct}/{r.total})",
            "" if r.change is None else f"{r.change:+.2f}",
            "" if r.agreement is None else f"{r.agreement:.2f}%",
            _time(r.seconds_per_image), verdict])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    paths = [Path(p) for p in argv[1:]]
    if not paths:
        raise InputError("name at least one artifact: a .tflite file or a SavedModel version folder")
    from mnist_keras import data, evaluate

    model_path = evaluate.check_keras_file(FLAGS.model)
    for path in paths:  # fail fast, before the test set and TensorFlow load
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_dir() and not (path / "saved_model.pb").is_file():
            raise InputError(f"{path}: not a SavedModel folder (no saved_model.pb)")
        if path.is_file():
            check_recorded_hash(path)
            litert.load(path)
    dataset = data.take(data.load(FLAGS.data_dir, FLAGS.tfds), test_examples=FLAGS.test_examples)
    images, labels = dataset.x_test, dataset.y_test
    reference, seconds = keras_classes(evaluate.load_model(model_path), images)
    keras = Result("Keras", str(model_path), size_bytes(model_path),
                   int(np.sum(reference == labels)), len(labels), seconds)
    results = [keras]
    for path in paths:
        result = measure("SavedModel" if path.is_dir() else "TFLite", path, images, labels, reference)
        quantized = path.is_file() and is_quantized(path)
        results.append(judge(result, keras, quantized, FLAGS.max_drop))
    print(f"On {len(labels)} test images of {dataset.source}:")
    print(format_table(results))
    failed = [r for r in results if r.passed is False]
    if failed:
        raise InputError("; ".join(failure_message(r, keras) for r in failed))


def define_flags() -> None:
    flags.DEFINE_string("model", "saved_models/mnist.keras", "The Keras model the artifacts came from.")
    flags.DEFINE_float("max_drop", DEFAULT_MAX_DROP,
                       "Accuracy points a quantized artifact may lose against the Keras model.",
                       lower_bound=0)
    cli.define_data_flags()
    flags.adopt_module_key_flags(cli)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
