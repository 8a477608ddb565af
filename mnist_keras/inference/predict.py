"""Reads the digit in each image file: photos, scans, drawings, any size or colour.

The command (its flags) is mnist_keras/predict.py.

Each image is made MNIST-style first (preprocess.py). The default model is the exported
full-integer .tflite, run by LiteRT without importing TensorFlow, so the command starts
in a fraction of a second. A file that cannot be read is reported on one line, the
others are still read, and the exit status is 1 if any failed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnist_keras.errors import InputError, NoInk, printable
from mnist_keras.inference import no_digit
from mnist_keras.inference.predictor import Outputs, Predictor, load_predictor

DEFAULT_MODEL = "export/mnist_int8.tflite"


def open_model(path: str | Path, trust: bool = False) -> Predictor:
    """predictor.load_predictor (probabilities and the digit score), with a hint when the default
    model has not been exported yet."""
    if str(path) == DEFAULT_MODEL and not Path(path).exists():
        raise InputError(f"{path}: no such model; run mnist-export first")
    return load_predictor(path, trust)


def top_k(probabilities: np.ndarray, k: int) -> list[dict]:
    """The k most likely digits, most likely first, with their probabilities."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"digit": int(d), "probability": round(float(probabilities[d]), 6)} for d in order]


def predict_files(paths: list[str | Path], read: Callable[[np.ndarray], Outputs], k: int = 1) -> list[dict]:
    """One record per file, in order: the top k digits and whether there is a digit ("digit" is
    None where there is none), or the error that file gave.

    read: a Predictor (or any images -> (probabilities, digit score)). A picture with no ink is
    "no digit" (no_digit true, digit_score None) without running the model.
    """
    from mnist_keras.data.preprocess import preprocess

    records, images = [], []
    for path in paths:
        try:
            images.append(preprocess(path))
            records.append({"file": str(path)})
        except NoInk:
            records.append({"file": str(path), "digit": None, "no_digit": True, "digit_score": None,
                            "reason": no_digit.NO_INK})
        except InputError as e:
            records.append({"file": str(path), "error": str(e)})
    if images:
        probabilities, scores = read(np.stack(images))
        order = iter(range(len(images)))
        for record in records:
            if "error" not in record and "no_digit" not in record:
                n = next(order)
                best = top_k(probabilities[n], k)
                rejected = bool(no_digit.decide(scores[n]))
                record.update(digit=None if rejected else best[0]["digit"], probability=best[0]["probability"],
                              top_k=best, no_digit=rejected, digit_score=round(float(scores[n]), 6))
    return records


def format_record(record: dict) -> str:
    """One prediction as the command prints it: "FILE: 7 (99.6%), 1 (0.2%)", or "FILE: no digit (...)";
    FILE escaped (errors.printable), so a name holding a newline or escape codes stays one plain line."""
    name = printable(record["file"])
    if record.get("no_digit"):
        why = record["reason"] if record["digit_score"] is None else f"digit score {record['digit_score']:.2f}"
        return f"{name}: no digit ({why})"
    return f"{name}: " + ", ".join(
        f"{p['digit']} ({100 * p['probability']:.1f}%)" for p in record["top_k"])
