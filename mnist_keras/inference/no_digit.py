"""The "no digit" decision: a small head on the frozen network says whether a picture holds a digit.

The CNN always names one of ten digits. The head reads what the network computes anyway, the
flattened second pooling layer (3,136 values), the Dense 128 features and the ten logits, and
gives a digit score in [0, 1]:

    digit_score = sigmoid(Dense 1(dropout(ReLU(Dense 128(standardized features)))))
    the picture holds a digit if digit_score >= 0.5

It is fitted (Adam, 40 epochs) on MNIST training digits, some redrawn on paper and some
reshaped, each made MNIST-style as `mnist-predict` does, against non-digits of every kind in
negatives.py (their "train" split). The trunk is frozen: the ten logits and probabilities are
bit-identical to the network's. The threshold is chosen on validation data only (the last
5,000 MNIST training images, which training holds out, and the same redrawn): the lowest that
rejects at most TARGET_REJECTED of them. It is folded into the last bias, so every reader
decides `digit_score >= 0.5` and nothing else; the threshold itself is recorded too.

The head is stored beside the .keras model (<model>.no_digit.keras, and <model>.no_digit.json
with the threshold and the model's SHA-256); export puts it inside every artifact as one more
output (the SavedModel's `digit_score` [N], each .tflite's `digit_check` [N, 2] = [no digit,
digit]) and copies the record beside them. A picture in which preprocessing finds no ink
(blank, one colour, almost no contrast) is "no digit" before the network runs (errors.NoInk).

The alternatives measured (docs/no_digit.md, scripts/no_digit_benchmark.py --compare): max
softmax probability, max logit, energy and temperature-scaled softmax from the logits alone,
logistic and smaller heads on fewer of the features.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable
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
HIDDEN, DROPOUT, EPOCHS = 64, 0.3, 40
TARGET_REJECTED = 0.002  # of the validation digits, at most this share is rejected (issue 20: 0.5% on test)
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


def supports(model: Any) -> bool:
    """The model is the seed's CNN (its tapped layers as wide as the head reads)."""
    try:
        widths = [int(tap.shape[-1]) for tap in tapped(model)]
    except (ValueError, AttributeError):
        return False
    return sum(widths) == INPUTS and widths[-1] == 10


def load_or_fit(model_path: str | Path, model: Any, x_train: np.ndarray,
                progress: Callable[[str], None] = lambda line: None) -> Head | None:
    """The head beside the model; fitted and saved there first if there is none for this model.
    None for a model that is not the seed's CNN (it is exported without the no-digit output)."""
    from mnist_keras.files import sha256_file

    if not supports(model):
        progress(f"No no-digit head: {model_path} is not this project's CNN (no flatten and dense layers of "
                 "3,136 and 128 values before 10 logits); exported without the no-digit output")
        return None

    sha = sha256_file(model_path)
    keras_path, json_path = head_paths(model_path)
    try:
        recorded = json.loads(json_path.read_text()).get("model_sha256") if json_path.is_file() else None
    except (OSError, ValueError, AttributeError):
        recorded = None
    if keras_path.is_file() and recorded == sha:
        return load_head(model_path, sha)
    progress(f"No no-digit head for {model_path} beside it: fitting one (as python -m mnist_keras.no_digit does)")
    head = fit_head(model, x_train, sha, progress=progress)
    save_head(head, model_path)
    return head


def load_head(model_path: str | Path, model_sha256: str | None = None) -> Head:
    """The head beside a model, or one line saying why not (missing, damaged, fitted to another model)."""
    keras_path, json_path = head_paths(model_path)
    hint = f"run python -m mnist_keras.no_digit --model {model_path}"
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


# --- Features: what the network computes anyway ----------------------------------------------

def tapped(model: Any) -> list[Any]:
    """The network's tensors the head reads: pool2 max-pooled 2x2 and flattened, Dense 128, the logits."""
    import keras

    pool2, dense = (model.get_layer(name).output for name in TAPS)
    pooled = keras.layers.MaxPooling2D(2, padding="same", name="no_digit_pool")(pool2)
    return [keras.layers.Flatten(name="no_digit_pooled")(pooled), dense, model.outputs[0]]


def feature_model(model: Any) -> Any:
    """A Keras model from images to (tapped [N, INPUTS], logits [N, 10]), sharing the network's weights."""
    import keras

    outputs = tapped(model)
    return keras.Model(model.inputs, [keras.ops.concatenate(outputs, axis=1), model.outputs[0]])


def features(model: Any, images: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(tapped [N, INPUTS], logits [N, 10]) of uint8 images [N, 28, 28]."""
    from mnist_keras.data.datasets import scale_images

    both = feature_model(model)
    parts = [both([scale_images(images[i:i + batch_size])], training=False)
             for i in range(0, len(images), batch_size)]
    if not parts:
        return np.zeros((0, INPUTS), np.float32), np.zeros((0, 10), np.float32)
    return (np.concatenate([np.asarray(p[0]) for p in parts]).astype(np.float32),
            np.concatenate([np.asarray(p[1]) for p in parts]).astype(np.float32))


def with_head(model: Any, head: Head) -> Any:
    """One Keras model: images -> (the network's own outputs, unchanged; digit_score [N]).

    The head's first layer is split into one standardization and Dense per tapped layer, summed:
    each tapped tensor keeps its own range, so a full-integer .tflite does not squeeze the pooled
    features and the logits into one int8 scale (which moved the decision).
    """
    import keras

    taps = tapped(model)
    norm, hidden, last = (head.model.get_layer(n) for n in ("standardize", "hidden", "score_logit"))
    mean = np.asarray(norm.mean, np.float32).reshape(-1)
    std = np.sqrt(np.asarray(norm.variance, np.float32).reshape(-1))
    kernel, bias = hidden.get_weights()
    parts, start = [], 0
    for n, tap in enumerate(taps):
        width = int(tap.shape[-1])
        part = slice(start, start + width)
        standardized = (tap - keras.ops.convert_to_tensor(mean[part])) * keras.ops.convert_to_tensor(1.0 / std[part])
        name = ("pooled", "dense", "logits")[n]
        dense = keras.layers.Dense(kernel.shape[1], use_bias=n == 0, name=f"no_digit_from_{name}")
        dense.build((None, width))
        dense.set_weights([kernel[part]] + ([bias] if n == 0 else []))
        parts.append(dense(standardized))
        start += width
    out = keras.layers.Dense(1, name="no_digit_score_logit")
    out.build((None, kernel.shape[1]))
    out.set_weights(last.get_weights())
    score = keras.ops.sigmoid(out(keras.ops.relu(keras.layers.Add()(parts))))[:, 0]
    return keras.Model(model.inputs, [model.outputs[0], score], name="mnist_cnn_with_no_digit")


# --- Scores from the logits alone (the alternatives measured) --------------------------------

def logit_scores(logits: np.ndarray, temperature: float = 1000.0) -> dict[str, np.ndarray]:
    """Higher = more digit-like: max softmax probability, max logit, -energy, temperature softmax."""
    top = logits.max(axis=1, keepdims=True)
    shifted = logits - top
    msp = 1.0 / np.exp(shifted).sum(axis=1)
    energy = top[:, 0] + np.log(np.exp(shifted).sum(axis=1))  # logsumexp: -energy
    tempered = 1.0 / np.exp(shifted / temperature).sum(axis=1)
    return {"max softmax": msp, "max logit": top[:, 0], "energy (logsumexp)": energy,
            f"softmax at T={temperature:g}": tempered}


# --- Fitting ---------------------------------------------------------------------------------

def redrawn_pages(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MNIST digits as a user hands them over: grey pencil on off-white paper, any size, off-centre,
    then made MNIST-style again by preprocess.to_mnist (scripts/redrawn_digits.py draws them so)."""
    from PIL import Image

    from mnist_keras.inference.preprocess import to_mnist

    out = np.zeros_like(digits)
    for n, digit in enumerate(digits):
        side = int(rng.choice([28, 40, 56, 84]))
        big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)) / 255.0
        height, width = side + int(rng.integers(side // 4, side + 1)), side + int(rng.integers(side // 4, side + 1))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        ink = np.zeros((height, width))
        ink[top:top + side, left:left + side] = big
        light_on_dark = rng.random() < 0.3
        page = 20 + 190 * ink if light_on_dark else 235 - 190 * ink
        page = page + rng.normal(0, 4, ink.shape)
        try:
            out[n] = to_mnist(np.clip(page, 0, 255).astype(np.float32))
        except InputError:
            out[n] = digit
    return out


def augmented(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Digits rotated, sheared, stretched, thickened or thinned, then made MNIST-style again:
    digits as other hands write them, so the head does not learn the training digits' own look."""
    from scipy import ndimage

    from mnist_keras.inference.preprocess import to_mnist

    out = np.array(digits, copy=True)
    for n, digit in enumerate(digits):
        angle, shear = rng.uniform(-0.35, 0.35), rng.uniform(-0.3, 0.3)
        sx, sy = rng.uniform(0.75, 1.25, 2)
        matrix = np.array([[np.cos(angle) * sy, -np.sin(angle) + shear], [np.sin(angle), np.cos(angle) * sx]])
        big = np.pad(digit.astype(np.float32), 14)
        centre = np.array(big.shape) / 2
        image = ndimage.affine_transform(big, matrix, offset=centre - matrix @ centre, order=1)
        stroke = rng.random()
        if stroke < 0.25:
            image = ndimage.grey_dilation(image, size=(2, 2))
        elif stroke < 0.4:
            image = ndimage.grey_erosion(image, size=(2, 2))
        with contextlib.suppress(InputError):  # thinned away: the digit as it was
            out[n] = to_mnist(image)
    return out


def calibration_negatives(count: int) -> np.ndarray:
    """Non-digits of every kind (their "train" split, as preprocessing makes them) for the
    full-integer model's calibration: [count, 28, 28] uint8."""
    from mnist_keras.inference import negatives

    kinds = negatives.available()
    each = max(1, count // len(kinds))
    return np.concatenate([negatives.make(kind, "train", each).images for kind in kinds])[:count]


def choose_threshold(digit_scores: np.ndarray, target: float = TARGET_REJECTED) -> float:
    """The score below which at most `target` of the validation digits fall."""
    return float(np.quantile(digit_scores, target, method="lower"))


@dataclasses.dataclass
class Sets:
    """Tapped features and logits of the fitting and validation sets, by name."""

    train: dict[str, tuple[np.ndarray, np.ndarray]]
    validation: dict[str, tuple[np.ndarray, np.ndarray]]
    no_ink: dict[str, float]  # share of each kind's validation pages preprocessing finds no ink in


POSITIVE = ("digits", "redrawn digits", "reshaped digits")


def build_sets(model: Any, x_train: np.ndarray, x_validation: np.ndarray, negatives_count: int | None = None,
               digits_count: int = 12000, progress: Callable[[str], None] = lambda line: None) -> Sets:
    """Digits (as MNIST, redrawn on paper, reshaped) and every kind of negative, through the frozen network.

    x_train: digits the head is fitted on; x_validation: digits the threshold is chosen on.
    negatives_count: pictures per kind for fitting (a third of it for validation); None: negatives.COUNTS.
    """
    from mnist_keras.inference import negatives

    rng = np.random.default_rng(20)
    chosen = rng.choice(len(x_train), min(2 * digits_count, len(x_train)), replace=False)
    digits, others = x_train[chosen[:digits_count]], x_train[chosen[digits_count:]]
    train = {"digits": features(model, digits),
             "redrawn digits": features(model, redrawn_pages(digits[:digits_count // 3], rng)),
             "reshaped digits": features(model, augmented(others[:digits_count * 5 // 6], rng))}
    validation = {"digits": features(model, x_validation),
                  "redrawn digits": features(model, redrawn_pages(x_validation, np.random.default_rng(21)))}
    progress(f"  digits: {len(digits)} to fit, a third of them also redrawn, and {len(others[:digits_count * 5 // 6])} "
             f"others reshaped; {len(x_validation)} to choose the threshold (and the same redrawn)")
    no_ink = {}
    for kind, why in negatives.missing().items():
        progress(f"  {kind}: left out, {why}")
    for split, into in (("train", train), ("validation", validation)):
        count = None if negatives_count is None else (negatives_count if split == "train"
                                                     else max(1, negatives_count // 3))
        for kind in negatives.available():
            made = negatives.make(kind, split, count)
            # Pictures without ink stay in as all-zero images: what a model that is handed one
            # (the camera model's in-graph preprocessing makes one of a blank frame) must reject.
            into[kind] = features(model, made.images)
            if split == "validation":
                no_ink[kind] = float(made.no_ink.mean())
            progress(f"  {kind} ({split}): {len(made.images)} pictures, {int(made.no_ink.sum())} without ink")
    return Sets(train, validation, no_ink)


def train_head(x: np.ndarray, y: np.ndarray, weight: np.ndarray, hidden: int = HIDDEN, dropout: float = DROPOUT,
               epochs: int = EPOCHS, seed: int = 0) -> Any:
    """A Keras model [N, d] -> the digit score's logit [N, 1]: standardize, Dense(hidden, ReLU), dropout,
    Dense(1) (hidden 0: logistic regression), fitted with Adam on weighted binary cross-entropy."""
    import keras

    keras.utils.set_random_seed(seed)
    mean, std = x.mean(axis=0), x.std(axis=0)
    # Features that hardly vary on the training pictures are switched off (their weights could
    # only learn noise), and none is scaled up by more than 10: a full-integer .tflite keeps
    # each standardized tensor in one int8 range.
    mean, std = np.where(std < 1e-2, 0.0, mean), np.where(std < 1e-2, 1e6, np.maximum(std, 0.1))
    layers = [keras.Input((x.shape[1],), name="tapped"),
              keras.layers.Normalization(mean=mean, variance=std ** 2, name="standardize")]
    if hidden:
        layers += [keras.layers.Dense(hidden, activation="relu", name="hidden"), keras.layers.Dropout(dropout)]
    layers.append(keras.layers.Dense(1, name="score_logit"))
    head = keras.Sequential(layers, name="no_digit_head")
    head.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True))
    head.fit(x, y, sample_weight=weight / weight.mean(), batch_size=256, epochs=epochs, verbose=0, shuffle=True)
    return head


def fold_threshold(head: Any, cut: float) -> None:
    """Moves the decision from logit >= cut to logit >= 0: the last bias minus cut."""
    kernel, bias = head.get_layer("score_logit").get_weights()
    head.get_layer("score_logit").set_weights([kernel, bias - np.float32(cut)])


def fit(sets: Sets, model_sha256: str = "", target: float = TARGET_REJECTED, columns: slice = slice(None),
        hidden: int = HIDDEN, epochs: int = EPOCHS) -> Head:
    """The head fitted on sets.train, its threshold chosen on sets.validation's digits and folded in.

    columns: which tapped features it reads (all; the alternatives measured read fewer).
    """
    xs, ys, ws = [], [], []
    kinds = [k for k in sets.train if k not in POSITIVE]
    positives = [k for k in sets.train if k in POSITIVE]
    for name, (tapped, _) in sets.train.items():
        positive = name in POSITIVE
        xs.append(tapped[:, columns])
        ys.append(np.full(len(tapped), 1.0 if positive else 0.0, np.float32))
        # Digits and non-digits weigh the same in total, each set of digits and each kind of non-digit alike.
        share = 0.5 / (len(positives) if positive else len(kinds))
        ws.append(np.full(len(tapped), share / max(len(tapped), 1), np.float32))
    model = train_head(np.concatenate(xs), np.concatenate(ys), np.concatenate(ws), hidden, epochs=epochs)
    head = Head(model, 0.5, model_sha256)
    margins = {name: np.asarray(model.predict(tapped[:, columns], batch_size=4096, verbose=0))[:, 0]
               for name, (tapped, _) in sets.validation.items()}
    cut = min(choose_threshold(margins["digits"], target), choose_threshold(margins["redrawn digits"], 2 * target))
    fold_threshold(model, cut)
    head.threshold = float(1.0 / (1.0 + np.exp(-cut)))
    head.fitted = {
        "head": {"hidden": hidden, "dropout": DROPOUT, "epochs": epochs, "inputs": int(xs[0].shape[1])},
        "target_rejected_validation_digits": target,
        "train": {name: len(f) for name, (f, _) in sets.train.items()},
        "validation": {name: len(f) for name, (f, _) in sets.validation.items()},
        "validation_rejected": {name: round(float(np.mean(m < cut)), 5) for name, m in margins.items()},
        "validation_no_ink": sets.no_ink,
    }
    return head


def fit_head(model: Any, x_train: np.ndarray, model_sha256: str = "", validation_examples: int = 5000,
             negatives_count: int | None = None, digits_count: int = 12000, epochs: int = EPOCHS,
             progress: Callable[[str], None] = lambda line: None) -> Head:
    """The head for a trained model: fitted on x_train but its last validation_examples (which
    training holds out by default), the threshold chosen on those."""
    if len(x_train) <= validation_examples:
        raise InputError(f"{len(x_train)} training images: the no-digit head needs more than the "
                         f"{validation_examples} it chooses its threshold on")
    sets = build_sets(model, x_train[:-validation_examples], x_train[-validation_examples:], negatives_count,
                      digits_count, progress)
    return fit(sets, model_sha256, epochs=epochs)


def check_output(digit_score: Any) -> Any:
    """digit_check [N, 2] for the .tflite files, in CHECK_LABELS' order: [1 - score, score]."""
    import tensorflow as tf

    return tf.stack([1.0 - digit_score, digit_score], axis=1)


def decide(scores: np.ndarray) -> np.ndarray:
    """True where the picture holds no digit: the one rule every reader applies."""
    return np.asarray(scores) < 0.5


# --- Reading: every format gives the same decision --------------------------------------------

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


def load_reader(path: str | Path) -> Reader:
    """A .keras file (with its head beside it), a SavedModel folder or a .tflite from export,
    behind one signature: probabilities [N, 10] and digit_score [N]."""
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
        signature = classifiers.load_saved_model(path)
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


# --- The command ---------------------------------------------------------------------------------
