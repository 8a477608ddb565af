"""Test accuracy, per-class precision and recall, and the confusion matrix of a model.

The command (its flags) is mnist_keras/evaluate.py.

From Python: evaluate_file(model_path, dataset) -> dict, or evaluate(model, images, labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import NUM_CLASSES, Data
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


def evaluate_file(model_path: str | Path, dataset: Data) -> dict:
    """A .keras file's metrics on the dataset's test split, with the model's path and the data's source."""
    model = keras_file.load_keras(model_path)
    result = evaluate(model, dataset.x_test, dataset.y_test)
    return {"model": str(model_path), "data": dataset.source, **result}


def format_report(result: dict) -> str:
    """The metrics as the command prints them: accuracy, per-class table, confusion matrix."""

    def pct(value: float | None) -> str:
        return "   -  " if value is None else f"{100 * value:6.2f}"

    lines = [f"Test accuracy: {result['accuracy']:.2f}% ({result['correct']}/{result['total']} correct)",
             "", "class  precision  recall  support"]
    for row in result["per_class"]:
        lines.append(f"{row['class']:>5}  {pct(row['precision'])}%   {pct(row['recall'])}%  {row['support']:>7}")
    lines += ["", "Confusion matrix (rows: true digit, columns: predicted digit)",
              "      " + "".join(f"{c:>6}" for c in range(NUM_CLASSES))]
    for c, row in enumerate(result["confusion_matrix"]):
        lines.append(f"{c:>6}" + "".join(f"{n:>6}" for n in row))
    return "\n".join(lines)
