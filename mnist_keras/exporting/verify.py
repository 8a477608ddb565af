"""Checks exported models against the Keras model they came from, on the whole test set.

The command (its flags) is mnist_keras/verify.py.

Each artifact runs through its own runtime (a SavedModel through its serving signature,
a .tflite through LiteRT), so what is measured is what a server or a phone will compute.
Float artifacts must match the Keras model's accuracy within 0.05 points; quantized ones
may lose at most --max_drop points. `mnist-export` runs the same checks
before it keeps a file. From Python: verify_artifacts(model_path, paths, dataset) -> [Result]; each artifact is
read through inference/predictor.py, as predict reads it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import Data, scale_images
from mnist_keras.errors import InputError, first_line, printable
from mnist_keras.files import sha256_file
from mnist_keras.inference import classifiers, litert, saved_model_scan
from mnist_keras.inference.predictor import load_predictor
from mnist_keras.training import keras_file

FLOAT_TOLERANCE = 0.05  # accuracy points: 5 of 10,000 test images
# Largest difference from the Keras model's probabilities a float artifact may show:
# float16 weights move them far less; a missing or doubled softmax by 0.5 or more.
PROBABILITY_TOLERANCE = 0.01
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
    probability_gap: float | None = None  # largest |probability - Keras'|, over images and digits
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


def size_bytes(path: str | Path) -> int:
    """A file's size, or the total of a folder's files (a SavedModel)."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def keras_reference(model: Any, path: str | Path, dataset: Data,
                    max_drop: float = DEFAULT_MAX_DROP) -> tuple[Reference, bool]:
    """The Keras model on the test split: the Reference every artifact is measured against (its
    own row timed on one image), and whether the model outputs probabilities itself (a softmax
    last layer) rather than logits."""
    images, labels = dataset.x_test, dataset.y_test
    outputs = keras_file.keras_scores(model, images)
    ends_in_softmax = classifiers.are_probabilities(outputs)
    one = scale_images(images[:1])
    seconds = _median_seconds(lambda: model.predict_on_batch(one))
    probabilities = classifiers.as_probabilities(outputs)
    keras = Result("Keras", str(path), size_bytes(path),
                   int(np.sum(probabilities.argmax(axis=1) == labels)), len(labels), seconds)
    return Reference(images, labels, probabilities, keras, max_drop), ends_in_softmax


def run_artifact(path: Path, images: np.ndarray, trust: bool = False) -> tuple[np.ndarray, float]:
    """Probabilities through the artifact's own runtime (predictor.py), and the time of one image:
    a SavedModel's serving signature; a .tflite on one thread, one image at a time, as a phone app runs it.

    trust: skip the scan for file, network and process ops (classifiers.load_saved_model)."""
    predictor = load_predictor(path, trust, require_score=False)
    probabilities, _ = predictor(images)
    if predictor.format == "savedmodel":
        import tensorflow as tf

        one = tf.constant(scale_images(images[:1]))
        return probabilities, _median_seconds(lambda: predictor.model(images=one))
    try:
        return probabilities, litert.seconds_per_image(litert.load(path, num_threads=1), images[:100])
    except RuntimeError as e:  # a damaged model that LiteRT only notices when it runs
        raise InputError(f"{path}: LiteRT cannot run it: {first_line(e)}") from None


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
    if recorded and recorded != sha256_file(path):
        raise InputError(f"{path}: SHA-256 differs from the one recorded in {description.name} "
                         "(the file changed after export)")


@dataclasses.dataclass
class Reference:
    """What every artifact is measured against: the test images and labels, the Keras model's
    probabilities on them and its row, and how much a quantized artifact may lose."""

    images: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    keras: Result
    max_drop: float = DEFAULT_MAX_DROP

    def measure(self, artifact: str, path: str | Path, trust: bool = False) -> Result:
        """Runs one artifact on the test images: its row, not yet judged.

        A SavedModel is scanned first unless `trust` (export's own are scanned too: it costs milliseconds)."""
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        probabilities, seconds = run_artifact(path, self.images, trust)
        classes = probabilities.argmax(axis=1)
        return Result(artifact=artifact, path=str(path), size_bytes=size_bytes(path),
                      correct=int(np.sum(classes == self.labels)), total=len(self.labels),
                      seconds_per_image=seconds,
                      agreement=100.0 * float(np.mean(classes == self.probabilities.argmax(axis=1))),
                      probability_gap=float(np.abs(probabilities - self.probabilities).max()))

    def check(self, artifact: str, path: str | Path, quantized: bool, trust: bool = False) -> Result:
        """measure, then judge: the artifact's row with its bar and verdict."""
        return judge(self.measure(artifact, path, trust), self.keras, quantized, self.max_drop)


def judge(result: Result, keras: Result, quantized: bool, max_drop: float) -> Result:
    """Sets change, bar and passed. Counted in images, so 0.05 points is exactly 5 of 10,000."""
    result.change = result.accuracy - keras.accuracy
    difference = result.correct - keras.correct
    if quantized:
        result.bar = f"drop <= {max_drop:g}"
        result.passed = -difference <= max_drop / 100 * result.total + 1e-9
    else:
        result.bar = f"within {FLOAT_TOLERANCE:g}"
        result.passed = (abs(difference) <= FLOAT_TOLERANCE / 100 * result.total + 1e-9
                         and result.probability_gap <= PROBABILITY_TOLERANCE)
    return result


def float_bar(result: Result, reference: Reference) -> Result:
    """A float artifact's bar: within FLOAT_TOLERANCE points, probabilities within PROBABILITY_TOLERANCE."""
    return judge(result, reference.keras, False, reference.max_drop)


def quantized_bar(result: Result, reference: Reference) -> Result:
    """A quantized artifact's bar: at most reference.max_drop points lost (--max_drop)."""
    return judge(result, reference.keras, True, reference.max_drop)


def failure_message(result: Result, keras: Result) -> str:
    """One line saying which bar an artifact missed, and by how much."""
    if result.probability_gap is not None and result.probability_gap > PROBABILITY_TOLERANCE \
            and result.bar.startswith("within"):
        return (f"{result.path}: probabilities differ from the Keras model's by up to "
                f"{result.probability_gap:.3f} (a float artifact may differ by {PROBABILITY_TOLERANCE})")
    return (f"{result.path}: test accuracy {result.accuracy:.2f}% against the Keras model's "
            f"{keras.accuracy:.2f}% ({result.change:+.2f} points) misses its bar ({result.bar} points)")


def _median_seconds(call: Callable[[], object], repeats: int = 50) -> float:
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
    """Artifact, size, accuracy, change against Keras, agreement with it, time per image.

    max |dp|: the largest difference from the Keras model's probability for any digit of
    any test image.
    """
    header = ["artifact", "file", "size", "test accuracy", "change", "same class", "max |dp|",
              "time/image", "bar"]
    rows = [header]
    for r in results:
        verdict = "" if r.passed is None else f"{'ok' if r.passed else 'FAILED'} ({r.bar})"
        rows.append([
            r.artifact, printable(r.path), _size(r.size_bytes),
            f"{r.accuracy:.2f}% ({r.correct}/{r.total})",
            "" if r.change is None else f"{r.change:+.2f}",
            "" if r.agreement is None else f"{r.agreement:.2f}%",
            "" if r.probability_gap is None else f"{r.probability_gap:.1e}",
            _time(r.seconds_per_image), verdict])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def check_artifacts(model_path: str | Path, paths: list[str | Path],
                    trust: bool = False) -> tuple[Path, list[Path]]:
    """Fails fast, before the test set and the models load, on paths that cannot be artifacts, and
    (unless `trust`) on a SavedModel with file, network or process ops (saved_model_scan.py)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("name at least one artifact: a .tflite file or a SavedModel version folder")
    model_path = keras_file.check_keras_file(model_path)
    for path in paths:
        if path.is_dir() or not path.exists():
            classifiers.check_saved_model_dir(path)
            if not trust:
                saved_model_scan.check_untrusted(path)
        else:
            check_recorded_hash(path)
            litert.load(path)
    return model_path, paths


def verify_artifacts(model_path: str | Path, paths: list[str | Path], dataset: Data,
                     max_drop: float = DEFAULT_MAX_DROP, trust: bool = False,
                     progress: Callable[[str], None] = lambda line: None) -> list[Result]:
    """The Keras model's row, then each artifact's, judged against it on the test split.

    Nothing is raised for an artifact that misses its bar: its Result says passed=False. A
    SavedModel with file, network or process ops is refused (InputError) before it runs, unless `trust`.
    progress: a line per model read, with its time (reading 10,000 images takes seconds each).
    """
    model_path, paths = check_artifacts(model_path, paths, trust)
    start = time.monotonic()
    reference = keras_reference(keras_file.load_keras(model_path), model_path, dataset, max_drop)[0]
    progress(f"  {printable(model_path)}: read ({time.monotonic() - start:.0f} s)")
    results = [reference.keras]
    for path in paths:
        start = time.monotonic()
        quantized = path.is_file() and is_quantized(path)
        results.append(reference.check("SavedModel" if path.is_dir() else "TFLite", path, quantized, trust))
        progress(f"  {printable(path)}: read ({time.monotonic() - start:.0f} s)")
    return results
