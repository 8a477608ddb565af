"""The trained model's own file format, .keras: checked before Keras loads, loaded safely, run on images."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import IMAGE_SHAPE, NUM_CLASSES
from mnist_keras.errors import InputError, first_line


def check_keras_file(path: str | Path) -> Path:
    """Rejects a path that cannot be a .keras file before Keras is imported (seconds of start-up)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such model file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a Keras model file (.keras)")
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not a Keras model file (.keras is a zip archive)")
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise InputError(f"{path}: not a Keras model file (no config.json inside)")
    return path


def load_keras(path: str | Path) -> Any:
    """A .keras file's model, loaded with safe_mode=True: no arbitrary code from the file runs."""
    path = check_keras_file(path)
    import keras

    from mnist_keras.training import model as _  # noqa: F401  registers MeanBatchLoss, named by older saved models

    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # a damaged archive fails deep inside Keras or h5py
        raise InputError(f"{path}: cannot load Keras model: {first_line(e)}") from None
    shapes = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if shapes != ((None, *IMAGE_SHAPE, 1), (None, NUM_CLASSES)):
        raise InputError(f"{path}: a Keras model from {shapes[0]} to {shapes[1]}, not a digit "
                         f"classifier from (None, 28, 28, 1) to (None, {NUM_CLASSES})")
    return model


def keras_scores(model: Any, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The model's raw outputs (logits, or probabilities if it ends in a softmax) for uint8 images."""
    from mnist_keras.data.pipeline import eval_dataset

    return model.predict(eval_dataset(images, np.zeros(len(images), np.uint8), batch_size), verbose=0)
