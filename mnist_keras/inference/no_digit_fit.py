"""Fitting the no-digit head: digits of every style against non-digits of every kind, through
the frozen network; the threshold chosen on validation data only and folded into the last bias.

The positives are written.py's digit styles (MNIST, redrawn, reshaped, typed in fonts, drawn
from templates), the negatives negatives.py's kinds, each from its "train" split; the
threshold is chosen on their "validation" splits. Their "heldout" splits are never used here:
scripts/reading_benchmark.py measures on them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.errors import InputError
from mnist_keras.inference.no_digit import (
    DROPOUT,
    EPOCHS,
    HIDDEN,
    TARGET_REJECTED,
    Head,
    head_paths,
    load_head,
    save_head,
)
from mnist_keras.inference.no_digit_graph import feature_reader, supports


def calibration_negatives(count: int) -> np.ndarray:
    """Non-digits of every kind (their "train" split, as preprocessing makes them) for the
    full-integer model's calibration: [count, 28, 28] uint8."""
    from mnist_keras.data import negatives

    kinds = negatives.available()
    each = -(-count // len(kinds))  # rounded up, then cut to count
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


POSITIVE = ("digits", "redrawn", "reshaped", "typed", "drawn")  # the sets of digits; the rest are non-digits
# Of each validation set of digits at most this share is rejected. The MNIST-style ones, MNIST's own and
# the same redrawn on paper, are held to TARGET_REJECTED together: 7,500 pictures put the cut less by
# chance than 5,000 (where 12 pictures decide it, two heads landed at 0.11% and 0.26% of MNIST's test digits).
MNIST_STYLE = ("digits", "redrawn")
TARGETS = {MNIST_STYLE: TARGET_REJECTED, ("typed",): 2 * TARGET_REJECTED, ("drawn",): 2 * TARGET_REJECTED}


BATCH = 256  # pictures per step when fitting the head


def picture_job(job: tuple) -> tuple[np.ndarray, np.ndarray]:
    """One set of pictures: ("digits", kind, split, count, source) or ("negatives", kind, split, count, None)
    -> (MNIST-style images, which pictures had no ink); made once and kept in the cache folder."""
    from mnist_keras.data import negatives, picture_cache, written

    family, kind, split, count, source = job

    def build() -> dict[str, np.ndarray]:
        images = written.make(kind, split, count, source).images
        return {"images": images, "no_ink": np.zeros(len(images), bool)}

    if family == "negatives":
        return negatives.cached(kind, split, count)
    arrays = picture_cache.cached(job, build)
    return arrays["images"], arrays["no_ink"]


def make_pictures(jobs: dict[str, tuple]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every job's pictures, on every core: numpy and Pillow work, in processes of their own
    (spawned: TensorFlow's threads do not survive a fork), largest jobs first."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    workers = min(len(jobs), len(os.sched_getaffinity(0)))
    if workers > 1:
        order = sorted(jobs, key=lambda name: -jobs[name][3])
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                made = dict(zip(order, pool.map(picture_job, [jobs[name] for name in order])))
            return {name: made[name] for name in jobs}
        except BrokenProcessPool:  # a __main__ without a __name__ guard: spawn cannot re-import it
            pass
    return {name: picture_job(job) for name, job in jobs.items()}


def picture_jobs(x_train: np.ndarray, x_validation: np.ndarray, digits_count: int,
                 negatives_count: int | None) -> dict[str, tuple]:
    """What the head is fitted on ("train/<kind>") and its threshold chosen on ("validation/<kind>")."""
    from mnist_keras.data import negatives

    source = (x_train, np.zeros(len(x_train), np.uint8))  # the head needs no labels
    held = (x_validation, np.zeros(len(x_validation), np.uint8))
    sizes = {"redrawn": digits_count // 3, "reshaped": digits_count // 2, "typed": digits_count // 3,
             "drawn": digits_count // 3}
    jobs = {f"train/{kind}": ("digits", kind, "train", count, source) for kind, count in sizes.items()}
    for kind in (kind for kinds in TARGETS for kind in kinds):
        if kind != "digits":
            count = len(x_validation) // 2 if kind == "redrawn" else max(digits_count // 6, 100)
            jobs[f"validation/{kind}"] = ("digits", kind, "validation", count, held)
    for kind in negatives.available():
        train = (negatives_count or negatives.COUNTS["train"]) * negatives.MORE.get(kind, 1)
        validation = max(1, negatives_count // 3) if negatives_count else negatives.COUNTS["validation"]
        jobs[f"train/{kind}"] = ("negatives", kind, "train", train, None)
        jobs[f"validation/{kind}"] = ("negatives", kind, "validation", validation, None)
    return jobs


def build_sets(model: Any, x_train: np.ndarray, x_validation: np.ndarray, negatives_count: int | None = None,
               digits_count: int = 12000, progress: Callable[[str], None] = lambda line: None) -> Sets:
    """Digits of every style (written.py) and every kind of non-digit (negatives.py), through the frozen network.

    x_train: MNIST digits the head is fitted on (and redrawn and reshaped); x_validation: the
    MNIST digits the threshold is chosen on. negatives_count: pictures per kind for fitting (a
    third of it for validation); None: negatives.COUNTS.
    """
    from mnist_keras.data import negatives

    for kind, why in negatives.missing().items():
        progress(f"  {kind}: left out, {why}")
    start = time.monotonic()
    made = make_pictures(picture_jobs(x_train, x_validation, digits_count, negatives_count))
    progress(f"  pictures made: {sum(len(images) for images, _ in made.values()):,} in "
             f"{time.monotonic() - start:.0f} s")
    start = time.monotonic()
    chosen = np.random.default_rng(20).choice(len(x_train), min(digits_count, len(x_train)), replace=False)
    read = feature_reader(model)
    sets = Sets({"digits": read(x_train[chosen])}, {"digits": read(x_validation)}, {})
    for name, (images, no_ink) in made.items():
        split, kind = name.split("/")
        # Pictures without ink stay in as all-zero images: what a model that is handed one
        # (the camera model's in-graph preprocessing makes one of a blank frame) must reject.
        getattr(sets, split)[kind] = read(images)
        if split == "validation" and kind not in POSITIVE:
            sets.no_ink[kind] = float(no_ink.mean())
    progress(f"  read by the network: {time.monotonic() - start:.0f} s")
    for split in ("train", "validation"):
        parts = []
        for kind, (tapped, _) in getattr(sets, split).items():
            blank = int(made.get(f"{split}/{kind}", (None, np.zeros(0, bool)))[1].sum())
            parts.append(f"{kind} {len(tapped)}" + (f" ({blank} without ink)" if blank else ""))
        progress(f"  {split}: {', '.join(parts)}")
    return sets


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How a head is fitted: its size and epochs, the features it reads, its threshold's target, and
    how many pictures (validation_examples: the last training images, on which the threshold is chosen)."""

    hidden: int = HIDDEN  # 0: logistic regression
    dropout: float = DROPOUT
    epochs: int = EPOCHS
    seed: int = 0
    target: float = TARGET_REJECTED  # of the validation digits at most this share rejected
    columns: slice | None = None  # which tapped features it reads (None: all; the alternatives measured read fewer)
    validation_examples: int = 5000
    negatives_count: int | None = None  # pictures per kind of non-digit; None: negatives.COUNTS
    digits_count: int = 12000


def train_head(x: np.ndarray, y: np.ndarray, weight: np.ndarray, settings: FitSettings = FitSettings()) -> Any:
    """A Keras model [N, d] -> the digit score's logit [N, 1]: standardize, Dense(hidden, ReLU), dropout,
    Dense(1) (hidden 0: logistic regression), fitted with Adam on weighted binary cross-entropy."""
    import keras

    hidden, epochs = settings.hidden, settings.epochs
    keras.utils.set_random_seed(settings.seed)
    mean, std = x.mean(axis=0), x.std(axis=0)
    # Features that hardly vary on the training pictures are switched off (their weights could
    # only learn noise), and none is scaled up by more than 10: a full-integer .tflite keeps
    # each standardized tensor in one int8 range.
    mean, std = np.where(std < 1e-2, 0.0, mean), np.where(std < 1e-2, 1e6, np.maximum(std, 0.1))
    layers = [keras.Input((x.shape[1],), name="tapped"),
              keras.layers.Normalization(mean=mean, variance=std ** 2, name="standardize")]
    if hidden:
        layers += [keras.layers.Dense(hidden, activation="relu", name="hidden"), keras.layers.Dropout(settings.dropout)]
    layers.append(keras.layers.Dense(1, name="score_logit"))
    head = keras.Sequential(layers, name="no_digit_head")
    fit_epochs(head, x, y, weight / weight.mean(), epochs, settings.seed)
    return head


def fit_epochs(head: Any, x: np.ndarray, y: np.ndarray, weight: np.ndarray, epochs: int, seed: int) -> None:
    """Adam on weighted binary cross-entropy, BATCH pictures a step, shuffled each epoch.

    Each epoch is one traced loop over the features held as tensors: on 2 cores 0.93 s an epoch
    against 2.53 s for Model.fit on the same arrays (docs/benchmarks.md), which keeps the head's
    fit under the 2 minutes export may spend on it.
    """
    import keras
    import tensorflow as tf

    features, labels, weights = (tf.constant(a, tf.float32) for a in (x, y.reshape(-1, 1), weight))
    steps = -(-len(x) // BATCH)
    # The learning rate decays to zero: the last steps settle the head, so a refit lands near the same decision.
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, epochs * steps))
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    optimizer.build(head.trainable_variables)

    @tf.function
    def epoch(order: tf.Tensor) -> None:
        for step in tf.range(steps):
            chosen = order[step * BATCH:(step + 1) * BATCH]
            with tf.GradientTape() as tape:
                value = loss(tf.gather(labels, chosen), head(tf.gather(features, chosen), training=True),
                             sample_weight=tf.gather(weights, chosen))
            optimizer.apply_gradients(zip(tape.gradient(value, head.trainable_variables), head.trainable_variables))

    shuffle = np.random.default_rng(seed)
    for _ in range(epochs):
        epoch(tf.constant(shuffle.permutation(len(x)), tf.int32))


def fold_threshold(head: Any, cut: float) -> None:
    """Moves the decision from logit >= cut to logit >= 0: the last bias minus cut."""
    kernel, bias = head.get_layer("score_logit").get_weights()
    head.get_layer("score_logit").set_weights([kernel, bias - np.float32(cut)])


def fit(sets: Sets, model_sha256: str = "", settings: FitSettings = FitSettings(),
        progress: Callable[[str], None] = lambda line: None) -> Head:
    """The head fitted on sets.train, its threshold chosen on sets.validation's digits and folded in."""
    columns, target = settings.columns or slice(None), settings.target
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
    progress(f"  fitting the head: {settings.epochs} epochs on {sum(len(x) for x in xs):,} pictures")
    start = time.monotonic()
    model = train_head(np.concatenate(xs), np.concatenate(ys), np.concatenate(ws), settings)
    progress(f"  head fitted: {time.monotonic() - start:.0f} s")
    head = Head(model, 0.5, model_sha256)
    margins = {name: np.asarray(model.predict(tapped[:, columns], batch_size=4096, verbose=0))[:, 0]
               for name, (tapped, _) in sets.validation.items()}
    cut = min(choose_threshold(np.concatenate([margins[kind] for kind in kinds if kind in margins]),
                               kind_target * target / TARGET_REJECTED)
              for kinds, kind_target in TARGETS.items() if any(kind in margins for kind in kinds))
    fold_threshold(model, cut)
    head.threshold = float(1.0 / (1.0 + np.exp(-cut)))
    head.fitted = {
        "head": {"hidden": settings.hidden, "dropout": settings.dropout, "epochs": settings.epochs,
                 "inputs": int(xs[0].shape[1])},
        "target_rejected_validation_digits": target,
        "train": {name: len(f) for name, (f, _) in sets.train.items()},
        "validation": {name: len(f) for name, (f, _) in sets.validation.items()},
        "validation_rejected": {name: round(float(np.mean(m < cut)), 5) for name, m in margins.items()},
        "validation_no_ink": sets.no_ink,
    }
    return head


def fit_head(model: Any, x_train: np.ndarray, model_sha256: str = "", settings: FitSettings = FitSettings(),
             progress: Callable[[str], None] = lambda line: None) -> Head:
    """The head for a trained model: fitted on x_train but its last settings.validation_examples
    (which training holds out by default), the threshold chosen on those."""
    held = settings.validation_examples
    if not 0 < settings.target < 1:  # NaN fails this too
        raise InputError(f"target={settings.target}: the share of validation digits refused must be between 0 and 1")
    if len(x_train) <= held:
        raise InputError(f"{len(x_train)} training images: the no-digit head needs more than the "
                         f"{held} it chooses its threshold on")
    sets = build_sets(model, x_train[:-held], x_train[-held:], settings.negatives_count, settings.digits_count,
                      progress)
    return fit(sets, model_sha256, settings, progress)


def logit_scores(logits: np.ndarray, temperature: float = 1000.0) -> dict[str, np.ndarray]:
    """Higher = more digit-like: max softmax probability, max logit, -energy, temperature softmax."""
    top = logits.max(axis=1, keepdims=True)
    shifted = logits - top
    msp = 1.0 / np.exp(shifted).sum(axis=1)
    energy = top[:, 0] + np.log(np.exp(shifted).sum(axis=1))  # logsumexp: -energy
    tempered = 1.0 / np.exp(shifted / temperature).sum(axis=1)
    return {"max softmax": msp, "max logit": top[:, 0], "energy (logsumexp)": energy,
            f"softmax at T={temperature:g}": tempered}


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
    progress(f"No no-digit head for {model_path} beside it: fitting one (as mnist-no-digit does)")
    head = fit_head(model, x_train, sha, progress=progress)
    save_head(head, model_path)
    return head
