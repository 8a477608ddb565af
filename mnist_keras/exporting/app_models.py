"""export's models for apps: the camera model and the plain 28x28 RGB model, each with standard
metadata, checked through MediaPipe's ImageClassifier against the Keras model (their rows in
artifacts.ARTIFACTS: the conversion, the runtime, the bar, the JSON beside each)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from mnist_keras.exporting import camera_model, mediapipe_check, tflite_metadata, verify
from mnist_keras.inference.no_digit_graph import Network

MAX_CHANGE = 0.5  # accuracy points from the Keras model that MediaPipe's reading may differ by
# file: (kind, description, pixels)
MODELS = {
    "mnist_camera.tflite": (
        "camera", "int8 weights; float preprocessing inside (MNIST-style: ink, crop, 20 px, centre of mass)",
        f"{camera_model.SIZE}x{camera_model.SIZE} RGB uint8: a crop around one digit, dark ink on light "
        "paper or light on dark, the digit at least a third of the side"),
    "mnist_rgb.tflite": (
        "rgb28", "int8 weights; 28x28 RGB input already MNIST-style",
        "28x28 RGB uint8, white digit on black as in MNIST, 20x20 box centred by its centre of mass"),
}


FORMATS = {"camera": "mnist_camera.tflite", "rgb": "mnist_rgb.tflite"}  # export's --formats names


def app_view(kind: str, images: np.ndarray) -> np.ndarray:
    """Test digits as each model's user hands them over: on paper for the camera, as MNIST for rgb."""
    return camera_model.render(images) if kind == "camera" else np.repeat(images[..., None], 3, axis=-1)


def convert(network: Network, file: str, provenance: dict, color: str = "RGB") -> bytes:
    """The app model's bytes, with its standard metadata (what MediaPipe reads its labels from)."""
    kind, description, pixels = MODELS[file]
    return tflite_metadata.embed(camera_model.convert(network, kind), file, description, pixels, provenance,
                                 color=color)


def mediapipe_measure(path: Path, file: str, reference: verify.Reference) -> verify.Result:
    """The app model at path read through MediaPipe's ImageClassifier on the test digits: its row, not
    yet judged. A model MediaPipe refuses is one line (InputError)."""
    kind, images, labels = MODELS[file][0], reference.images, reference.labels
    start = time.process_time()
    digits = mediapipe_check.classify(path, app_view(kind, images), file)
    seconds = (time.process_time() - start) / len(images)
    return verify.Result(
        artifact=f"MediaPipe {file}", path=str(path), size_bytes=path.stat().st_size,
        correct=int(np.sum(digits == labels)), total=len(labels), seconds_per_image=seconds,
        agreement=100.0 * float(np.mean(digits == reference.probabilities.argmax(axis=1))))


def mediapipe_bar(result: verify.Result, reference: verify.Reference) -> verify.Result:
    """An app model's bar: within MAX_CHANGE points of the Keras model (MediaPipe names a digit, no
    probabilities to compare)."""
    result.change = result.accuracy - reference.keras.accuracy
    result.bar = f"within {MAX_CHANGE:g}"
    result.passed = abs(result.correct - reference.keras.correct) <= MAX_CHANGE / 100 * result.total + 1e-9
    return result


def describe(tflite: bytes, file: str, result: verify.Result, provenance: dict) -> dict:
    """The JSON beside an app model: what it is, what MediaPipe read with it, its metadata."""
    return {"file": file, "description": MODELS[file][1], "size_bytes": len(tflite),
            "sha256": hashlib.sha256(tflite).hexdigest(), "mediapipe_test_accuracy": round(result.accuracy, 4),
            "same_class_as_keras": round(result.agreement, 4), "test_images": result.total,
            "metadata": tflite_metadata.read_metadata(tflite, file), **provenance}
