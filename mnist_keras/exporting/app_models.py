"""export's step for apps: the camera model and the plain 28x28 RGB model, each with standard
metadata and kept only if MediaPipe's ImageClassifier runs it within the bar of Keras."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from mnist_keras.errors import InputError
from mnist_keras.exporting import camera_model, mediapipe_check, tflite_metadata, verify
from mnist_keras.exporting.folders import partial_path
from mnist_keras.files import sha256_file, write_atomic
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


def mediapipe_result(path: Path, file: str, reference: verify.Reference) -> verify.Result:
    """The app model at path read through MediaPipe's ImageClassifier on the test digits, judged
    against the Keras model: within MAX_CHANGE points."""
    kind, images, labels = MODELS[file][0], reference.images, reference.labels
    start = time.process_time()
    digits = mediapipe_check.classify(path, app_view(kind, images), file)
    seconds = (time.process_time() - start) / len(images)
    result = verify.Result(
        artifact=f"MediaPipe {file}", path=str(path), size_bytes=path.stat().st_size,
        correct=int(np.sum(digits == labels)), total=len(labels), seconds_per_image=seconds,
        agreement=100.0 * float(np.mean(digits == reference.probabilities.argmax(axis=1))))
    result.change = result.accuracy - reference.keras.accuracy
    result.bar = f"within {MAX_CHANGE:g}"
    result.passed = abs(result.correct - reference.keras.correct) <= MAX_CHANGE / 100 * result.total + 1e-9
    return result


def export_one(network: Network, folder: Path, file: str, reference: verify.Reference, provenance: dict,
               color: str = "RGB") -> verify.Result:
    """Writes, verifies through MediaPipe and keeps (or removes) one app model with its JSON.

    Metadata that cannot be written or read back, or a model MediaPipe refuses, raises
    InputError after removing the file of that name.
    """
    kind, description, pixels = MODELS[file]
    final, final_json = folder / file, (folder / file).with_suffix(".json")
    partial = partial_path(folder, file)
    try:
        tflite = camera_model.convert(network, kind)
        tflite = tflite_metadata.embed(tflite, file, description, pixels, provenance, color=color)
        partial.write_bytes(tflite)
        result = mediapipe_result(partial, file, reference)
        result.path = str(final)
        if result.passed:
            described = {"file": file, "description": description, "size_bytes": len(tflite),
                         "sha256": sha256_file(partial), "mediapipe_test_accuracy": round(result.accuracy, 4),
                         "same_class_as_keras": round(result.agreement, 4), "test_images": result.total,
                         "metadata": tflite_metadata.read_metadata(tflite, file), **provenance}
            os.replace(partial, final)
            write_atomic(final_json, json.dumps(described, indent=2) + "\n")
        else:
            for path in (final, final_json):
                path.unlink(missing_ok=True)
    except InputError:
        for path in (final, final_json):
            path.unlink(missing_ok=True)
        raise
    finally:
        partial.unlink(missing_ok=True)
    return result
