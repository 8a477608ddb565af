"""The "no digit" decision: a small head on the frozen network gives a digit score, and every
reader decides `digit_score >= 0.5`. This module holds the rule, the head and where it is stored.

The head reads what the network computes anyway: pool2 (7x7x64) max-pooled once more to
4x4x64 (1,024 values), the Dense 128 features and the ten logits, standardized, then
Dense HIDDEN (ReLU), dropout, Dense 1 and a sigmoid (no_digit_graph.py builds it into the graph).
It is fitted on digits of every style against non-digits of every kind (no_digit_fit.py); the
threshold, chosen on validation data only, is folded into the last bias, so 0.5 is the rule
everywhere, and recorded too. The trunk is frozen: the logits and probabilities are
bit-identical to the network's.

The head is stored beside the .keras model (<model>.no_digit.keras, and <model>.no_digit.json
with the threshold and the model's SHA-256); export puts it inside every artifact as one more
output (the SavedModel's `digit_score` [N], each .tflite's `digit_check` [N, 2] = [no digit,
digit]) and copies the record beside them. A picture in which preprocessing finds no ink
(blank, one colour, almost no contrast) is "no digit" before the network runs (errors.NoInk).
See docs/no_digit.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.errors import InputError, first_line

HEAD_SUFFIX = ".no_digit"  # <model>.no_digit.keras (the head) and <model>.no_digit.json (its record)
# What the head reads, with the logits: pool2's 7x7x64 max-pooled once more to 4x4x64, and Dense 128.
# Pooled again, the first layer has a third of the inputs, so the head adds a sixth of the
# model's size instead of doubling it, and rejected more letters (docs/no_digit.md).
TAPS = ("pool2", "dense")
POOLED = 4 * 4 * 64
INPUTS = POOLED + 128 + 10
# 256 units: with people's drawings among the kinds, 128 refused 5 points fewer typed letters
HIDDEN, DROPOUT, EPOCHS = 256, 0.3, 30
TARGET_REJECTED = 0.0025  # of the MNIST-style validation digits, at most this share is rejected (aim: 0.3% on test)
DIGIT, NO_DIGIT = "digit", "no digit"
CHECK_LABELS = [NO_DIGIT, DIGIT]  # the .tflite's digit_check output [N, 2], in order
NO_INK = "no ink: the picture is blank or has almost no contrast"  # why, when preprocessing finds none
SCORE, CHECK = "digit_score", "digit_check"  # the SavedModel's extra output; each .tflite's


@dataclasses.dataclass
class Head:
    """The head (a Keras model from the tapped features to the digit score's logit, threshold
    folded into its last bias) and its record: threshold, model SHA-256, what it was fitted on."""

    model: Any
    threshold: float  # the unfolded score's threshold chosen on validation data
    model_sha256: str = ""
    fitted: dict = dataclasses.field(default_factory=dict)

    def score(self, tapped: np.ndarray) -> np.ndarray:
        """digit_score [N] from tapped features [N, INPUTS]."""
        z = np.asarray(self.model.predict(tapped, batch_size=4096, verbose=0))[:, 0].astype(np.float64)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

    def record(self) -> dict:
        return {"score": f"{SCORE} = sigmoid(head([pool2 max-pooled 2x2 ({POOLED}), dense (128), logits (10)]))",
                "decision": f"digit if {SCORE} >= 0.5, else no digit (the threshold is folded into the head)",
                "threshold": self.threshold, "outputs": {"savedmodel": f"{SCORE} [N]",
                                                         "tflite": f"{CHECK} [N, 2]: {CHECK_LABELS}"},
                "model_sha256": self.model_sha256, "fitted": self.fitted}


def head_paths(model_path: str | Path) -> tuple[Path, Path]:
    """saved_models/mnist.keras -> saved_models/mnist.no_digit.keras and .no_digit.json"""
    model_path = Path(model_path)
    stem = model_path.stem + HEAD_SUFFIX
    return model_path.with_name(stem + ".keras"), model_path.with_name(stem + ".json")


def save_head(head: Head, model_path: str | Path) -> tuple[Path, Path]:
    """The head and its record beside the model."""
    keras_path, json_path = head_paths(model_path)
    partial = keras_path.with_name(f".{keras_path.name}.partial.keras")
    head.model.save(partial)
    os.replace(partial, keras_path)
    write_record(head, json_path)
    return keras_path, json_path


def write_record(head: Head, path: str | Path) -> None:
    """The head's record (threshold, decision, what it was fitted on) as JSON, e.g. beside an export."""
    from mnist_keras.files import write_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(head.record(), indent=2) + "\n")


def load_head(model_path: str | Path, model_sha256: str | None = None) -> Head:
    """The head beside a model, or one line saying why not (missing, damaged, fitted to another model)."""
    keras_path, json_path = head_paths(model_path)
    hint = f"run mnist-no-digit --model {model_path}"
    if not keras_path.is_file() or not json_path.is_file():
        raise InputError(f"{keras_path}: no such no-digit head; {hint}")
    try:
        record = json.loads(json_path.read_text())
        threshold = float(record["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{json_path}: not a no-digit head's record: {type(e).__name__}: {e}") from None
    if model_sha256 and record.get("model_sha256") not in ("", None, model_sha256):
        raise InputError(f"{json_path}: fitted to another model (SHA-256 {record['model_sha256'][:12]}...); {hint}")
    import keras

    try:
        model = keras.saving.load_model(keras_path, safe_mode=True)
    except Exception as e:  # a damaged archive fails deep inside Keras
        raise InputError(f"{keras_path}: cannot load the no-digit head: {first_line(e)}") from None
    if tuple(model.inputs[0].shape) != (None, INPUTS) or tuple(model.outputs[0].shape) != (None, 1):
        raise InputError(f"{keras_path}: not a no-digit head of this version ([N, {INPUTS}] to [N, 1]); {hint}")
    return Head(model, threshold, record.get("model_sha256", ""), record.get("fitted", {}))


def decide(scores: np.ndarray) -> np.ndarray:
    """True where the picture holds no digit: the one rule every reader applies."""
    return np.asarray(scores) < 0.5
