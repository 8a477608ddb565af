"""Test accuracy, per-class precision and recall, and the confusion matrix of a model.

    python -m mnist_keras.evaluate --model saved_models/mnist.keras [--json metrics.json]
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from absl import flags

from mnist_keras import cli
from mnist_keras.data import IMAGE_SHAPE, NUM_CLASSES
from mnist_keras.errors import InputError


def check_keras_file(path: str | Path) -> Path:
    """Rejects a path that cannot be a .keras file before Keras is imported (2 s of start-up)."""
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


def load_model(path: str | Path):
    """Loads a .keras file with safe_mode=True: no arbitrary code from the file runs."""
    path = check_keras_file(path)
    import keras

    from mnist_keras import model as _  # noqa: F401  registers MeanBatchLoss, named by older saved models

    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # a damaged archive fails deep inside Keras or h5py
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(f"{path}: cannot load Keras model: {first_line}") from None
    shapes = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if shapes != ((None, *IMAGE_SHAPE, 1), (None, NUM_CLASSES)):
        raise InputError(f"{path}: a Keras model from {shapes[0]} to {shapes[1]}, not a digit "
                         f"classifier from (None, 28, 28, 1) to (None, {NUM_CLASSES})")
    return model


def predict_classes(model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    from mnist_keras.pipeline import eval_dataset

    labels = np.zeros(len(images), np.uint8)
    logits = model.predict(eval_dataset(images, labels, batch_size), verbose=0)
    return np.argmax(logits, axis=1)


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


def evaluate(model, images: np.ndarray, labels: np.ndarray) -> dict:
    return metrics(labels, predict_classes(model, images))


def format_report(result: dict) -> str:
    def pct(value):
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


FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv  # unused
    model_path = check_keras_file(FLAGS.model)
    if FLAGS.json:
        cli.check_writable_parent(FLAGS.json)
    from mnist_keras import data

    dataset = data.take(data.load(FLAGS.data_dir, FLAGS.tfds), test_examples=FLAGS.test_examples)
    result = evaluate(load_model(model_path), dataset.x_test, dataset.y_test)
    result = {"model": str(model_path), "data": dataset.source, **result}
    print(format_report(result))
    if FLAGS.json:
        cli.write_atomic(FLAGS.json, json.dumps(result, indent=2) + "\n")
        print(f"\nWrote {FLAGS.json}")


def define_flags() -> None:
    flags.DEFINE_string("model", "saved_models/mnist.keras", "The .keras model file to evaluate.")
    flags.DEFINE_string("json", None, "Also write the metrics to this JSON file.")
    cli.define_data_flags()
    flags.adopt_module_key_flags(cli)  # list them in --help too


def cli_main() -> None:
    """The `mnist-evaluate` console script and `python -m mnist_keras.evaluate`."""
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
