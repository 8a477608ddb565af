"""Test accuracy, per-class precision and recall, and the confusion matrix of a Keras model.

Training reads the test set once, at the end, with evaluate(); mnist-evaluate (inference/evaluate.py)
and the report use metrics() too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnist_keras.data.datasets import NUM_CLASSES
from mnist_keras.training import keras_file


def predict_classes(model: Any, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The class each uint8 image [N, 28, 28] is read as by a Keras model."""
    return np.argmax(keras_file.keras_scores(model, images, batch_size), axis=1)


def metrics(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """Accuracy (correct / total x 100), confusion matrix (rows: true, columns: predicted)."""
    labels = labels.astype(np.int64)
    confusion = np.bincount(labels * NUM_CLASSES + predictions,
                            minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)
    correct = int(np.trace(confusion))
    hits = np.diag(confusion)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    per_class = [
        {
            "class": c,
            "precision": float(hits[c] / predicted[c]) if predicted[c] else None,
            "recall": float(hits[c] / actual[c]) if actual[c] else None,
            "support": int(actual[c]),
        }
        for c in range(NUM_CLASSES)
    ]
    return {
        "accuracy": 100.0 * correct / len(labels),
        "correct": correct,
        "total": int(len(labels)),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def evaluate(model: Any, images: np.ndarray, labels: np.ndarray) -> dict:
    """metrics() of a loaded Keras model on uint8 images [N, 28, 28] and their labels."""
    return metrics(labels, predict_classes(model, images))
