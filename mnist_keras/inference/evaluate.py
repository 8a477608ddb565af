"""mnist-evaluate's figures: a .keras file's test metrics and, with its no-digit head, both sides
of the decision (digits rejected, non-digits accepted per kind).

The command (its flags) is mnist_keras/evaluate.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import NUM_CLASSES, Data
from mnist_keras.errors import printable
from mnist_keras.training import keras_file
from mnist_keras.training.metrics import evaluate


def evaluate_file(model_path: str | Path, dataset: Data, negatives_per_kind: int = 1000,
                  progress: Callable[[str], None] = lambda line: None) -> dict:
    """A .keras file's metrics on the dataset's test split, with the model's path and the data's source;
    with its no-digit head beside it (no_digit.py), both sides of the decision too (no_digit_metrics)."""
    start = time.monotonic()
    model = keras_file.load_keras(model_path)
    result = evaluate(model, dataset.x_test, dataset.y_test)
    progress(f"{model_path} on {len(dataset.y_test)} test images: {time.monotonic() - start:.0f} s")
    out = {"model": str(model_path), "data": dataset.source, **result}
    from mnist_keras.files import sha256_file
    from mnist_keras.inference import no_digit
    from mnist_keras.inference.predictor import keras_predictor

    if all(p.is_file() for p in no_digit.head_paths(model_path)):
        head = no_digit.load_head(model_path, sha256_file(model_path))
        out["no_digit"] = no_digit_metrics(keras_predictor(model, head, Path(model_path)), dataset.x_test,
                                           dataset.y_test, negatives_per_kind, head.threshold, progress)
    else:
        out["no_digit"] = None  # no head beside the model: format_report says how to fit one
    return out


def no_digit_metrics(read: Any, images: np.ndarray, labels: np.ndarray, negatives_per_kind: int,
                     threshold: float | None = None, progress: Callable[[str], None] = lambda line: None) -> dict:
    """Digits wrongly rejected, accuracy counting a rejection as an error, and each kind of held-out
    non-digit (negatives.py) wrongly accepted, for a predictor.Predictor."""
    from mnist_keras.data import negatives
    from mnist_keras.inference import no_digit

    probabilities, scores = read(images)
    rejected = no_digit.decide(scores)
    correct = (probabilities.argmax(axis=1) == labels) & ~rejected
    kinds = {}
    for kind in negatives.available() if negatives_per_kind else ():
        start = time.monotonic()
        made = negatives.make(kind, "heldout", negatives_per_kind)
        _, kind_scores = read(made.images)
        kind_rejected = made.no_ink | no_digit.decide(kind_scores)
        kinds[kind] = {"total": len(kind_rejected), "rejected": int(kind_rejected.sum()),
                       "rejected_percent": 100.0 * float(kind_rejected.mean()),
                       "no_ink": int(made.no_ink.sum()), "accepted": int((~kind_rejected).sum())}
        progress(f"  {len(made.images)} held-out non-digits, {kind}: {time.monotonic() - start:.0f} s")
    return {"threshold": threshold, "digits_rejected": int(rejected.sum()),
            "digits_rejected_percent": 100.0 * float(rejected.mean()),
            "accuracy_rejections_wrong": 100.0 * float(correct.mean()), "correct_accepted": int(correct.sum()),
            "negatives_heldout": kinds, "negatives_not_measured": negatives.missing() if negatives_per_kind else {}}


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
        lines += ["", f"No digit: no head beside {printable(result['model'])}; mnist-no-digit "
                      f"--model {printable(result['model'])} fits one"]
    return "\n".join(lines)


def format_no_digit(found: dict, total: int) -> str:
    """The no-digit decision's two sides, as the command prints them."""
    lines = [f"No digit (threshold {found['threshold']:.4f} on the digit score, chosen on validation data):",
             f"  test digits rejected as no digit: {found['digits_rejected_percent']:.2f}% "
             f"({found['digits_rejected']}/{total})",
             f"  test accuracy counting rejections as errors: {found['accuracy_rejections_wrong']:.2f}% "
             f"({found['correct_accepted']}/{total})"]
    if found["negatives_heldout"]:
        lines += ["  held-out non-digits                  rejected   wrongly accepted"]
        for kind, row in found["negatives_heldout"].items():
            lines.append(f"  {kind:<34} {row['rejected_percent']:>7.1f}%   {row['accepted']:>5}/{row['total']}")
    for kind, why in found.get("negatives_not_measured", {}).items():
        lines.append(f"  {kind}: not measured, {why}")
    return "\n".join(lines)
