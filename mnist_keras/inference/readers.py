"""Every format behind one reader: uint8 images -> (probabilities [N, 10], digit_score [N]).

A .keras file with its head beside it, a SavedModel folder or a .tflite from export: every
reader of the project (predict, evaluate, the benchmarks) decides "no digit" the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.errors import InputError
from mnist_keras.inference.no_digit import CHECK, SCORE, Head, load_head
from mnist_keras.inference.no_digit_graph import with_head

Reader = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # uint8 [N, 28, 28] -> (probabilities, digit_score)


def keras_reader(model: Any, head: Head) -> Reader:
    """A Keras model and its head, as one graph."""
    from mnist_keras.data.datasets import scale_images
    from mnist_keras.inference import classifiers

    both = with_head(model, head)

    def read(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(images):
            return np.zeros((0, 10), np.float32), np.zeros(0, np.float32)
        outputs, score = both.predict_on_batch(scale_images(images))
        return classifiers.as_probabilities(np.asarray(outputs)), np.asarray(score)
    return read


def load_reader(path: str | Path, trust: bool = False) -> Reader:
    """A .keras file (with its head beside it), a SavedModel folder (scanned unless `trust`:
    classifiers.load_saved_model) or a .tflite from export, behind one signature: probabilities
    [N, 10] and digit_score [N]."""
    from mnist_keras.inference import classifiers, litert

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such model")
    fmt = classifiers.model_format(path)
    if fmt == "keras":
        from mnist_keras.files import sha256_file
        from mnist_keras.training import keras_file

        model = keras_file.load_keras(path)
        return keras_reader(model, load_head(path, sha256_file(path)))
    if fmt == "savedmodel":
        signature = classifiers.load_saved_model(path, trust)
        if SCORE not in signature.structured_outputs:
            raise InputError(f"{path}: the SavedModel has no {SCORE} output (exported before the no-digit "
                             "decision); export it again")
        return lambda images: saved_model_outputs(signature, images)
    interpreter = litert.load(path)
    if litert.output_named(interpreter, CHECK) is None:
        raise InputError(f"{path}: the .tflite has no {CHECK} output (exported before the no-digit decision); "
                         "export it again")
    return lambda images: litert.predict_with_check(interpreter, images)


def saved_model_outputs(signature: Any, images: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities [N, 10] and digit_score [N] from a serving signature, for uint8 images."""
    from mnist_keras.inference import classifiers

    outputs = classifiers.signature_outputs(signature, images, batch_size)
    return outputs["probabilities"], outputs[SCORE]
