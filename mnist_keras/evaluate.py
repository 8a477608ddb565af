"""Test accuracy, per-class precision and recall, and the confusion matrix of a model.

    python -m mnist_keras.evaluate --model saved_models/mnist.keras [--json metrics.json]

From Python: evaluate_file(model_path, dataset) -> dict, or evaluate(model, images, labels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from absl import flags

from mnist_keras import cli, inference
from mnist_keras.data import NUM_CLASSES, Data
from mnist_keras.files import write_atomic


def predict_classes(model: Any, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The class each uint8 image [N, 28, 28] is read as by a Keras model."""
    return np.argmax(inference.keras_scores(model, images, batch_size), axis=1)


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


def evaluate_file(model_path: str | Path, dataset: Data, negatives_per_kind: int = 1000) -> dict:
    """A .keras file's metrics on the dataset's test split, with the model's path and the data's source;
    with its no-digit head beside it (no_digit.py), both sides of the decision too (no_digit_metrics)."""
    model = inference.load_keras(model_path)
    result = evaluate(model, dataset.x_test, dataset.y_test)
    out = {"model": str(model_path), "data": dataset.source, **result}
    from mnist_keras import no_digit
    from mnist_keras.files import sha256_file

    if all(p.is_file() for p in no_digit.head_paths(model_path)):
        head = no_digit.load_head(model_path, sha256_file(model_path))
        out["no_digit"] = no_digit_metrics(no_digit.keras_reader(model, head), dataset.x_test, dataset.y_test,
                                           negatives_per_kind, head.threshold)
    else:
        out["no_digit"] = None  # no head beside the model: format_report says how to fit one
    return out


def no_digit_metrics(read: Any, images: np.ndarray, labels: np.ndarray, negatives_per_kind: int,
                     threshold: float | None = None) -> dict:
    """Digits wrongly rejected, accuracy counting a rejection as an error, and each kind of held-out
    non-digit (negatives.py) wrongly accepted, for a no_digit.Reader."""
    from mnist_keras import negatives, no_digit

    probabilities, scores = read(images)
    rejected = no_digit.decide(scores)
    correct = (probabilities.argmax(axis=1) == labels) & ~rejected
    kinds = {}
    for kind in negatives.KINDS if negatives_per_kind else ():
        made = negatives.make(kind, "heldout", negatives_per_kind)
        _, kind_scores = read(made.images)
        kind_rejected = made.no_ink | no_digit.decide(kind_scores)
        kinds[kind] = {"total": len(kind_rejected), "rejected": int(kind_rejected.sum()),
                       "rejected_percent": 100.0 * float(kind_rejected.mean()),
                       "no_ink": int(made.no_ink.sum()), "accepted": int((~kind_rejected).sum())}
    return {"threshold": threshold, "digits_rejected": int(rejected.sum()),
            "digits_rejected_percent": 100.0 * float(rejected.mean()),
            "accuracy_rejections_wrong": 100.0 * float(correct.mean()), "correct_accepted": int(correct.sum()),
            "negatives_heldout": kinds}


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
    if result.get("no_digit"):
        lines += ["", format_no_digit(result["no_digit"], result["total"])]
    elif "no_digit" in result:
        lines += ["", f"No digit: no head beside {result['model']}; python -m mnist_keras.no_digit "
                      f"--model {result['model']} fits one"]
    return "\n".join(lines)


def format_no_digit(found: dict, total: int) -> str:
    """The no-digit decision's two sides, as the command prints them."""
    lines = [f"No digit (threshold {found['threshold']:.4f} on the digit score, chosen on validation data):",
             f"  test digits rejected as no digit: {found['digits_rejected_percent']:.2f}% "
             f"({found['digits_rejected']}/{total})",
             f"  test accuracy counting rejections as errors: {found['accuracy_rejections_wrong']:.2f}% "
             f"({found['correct_accepted']}/{total})"]
    if found["negatives_heldout"]:
        lines += ["  held-out non-digits (negatives.py)   rejected   wrongly accepted"]
        for kind, row in found["negatives_heldout"].items():
            lines.append(f"  {kind:<34} {row['rejected_percent']:>7.1f}%   {row['accepted']:>5}/{row['total']}")
    return "\n".join(lines)


FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv  # unused
    model_path = inference.check_keras_file(FLAGS.model)
    if FLAGS.json:
        cli.check_writable_parent(FLAGS.json)
    from mnist_keras import data

    dataset = data.take(data.load(FLAGS.data_dir, FLAGS.tfds), test_examples=FLAGS.test_examples)
    result = evaluate_file(model_path, dataset, FLAGS.negatives)
    print(format_report(result))
    if FLAGS.json:
        write_atomic(FLAGS.json, json.dumps(result, indent=2) + "\n")
        print(f"\nWrote {FLAGS.json}")


def define_flags() -> None:
    flags.DEFINE_string("model", "saved_models/mnist.keras", "The .keras model file to evaluate.")
    flags.DEFINE_string("json", None, "Also write the metrics to this JSON file.")
    flags.DEFINE_integer("negatives", 1000, "Held-out non-digits of each kind the no-digit decision is measured "
                         "on (negatives.py; 0: none), when the model has its head beside it.", lower_bound=0)
    cli.define_data_flags()
    flags.adopt_module_key_flags(cli)  # list them in --help too


def cli_main() -> None:
    """The `mnist-evaluate` console script and `python -m mnist_keras.evaluate`."""
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
