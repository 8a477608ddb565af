"""The training loop: steps on every replica, an evaluation per epoch, multi-worker agreement.

TensorFlow and Keras are imported inside the functions, so that importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

from mnist_keras.data.datasets import NUM_CLASSES
from mnist_keras.training import distribute

# Training steps run per call into TensorFlow (a tf.while_loop): fewer round trips to
# Python; the progress bar and the callbacks' batch hooks see every 50th step.
STEPS_PER_CALL = 50


@dataclasses.dataclass(frozen=True)
class Schedule:
    """What run_epochs runs: where, how many epochs of how many steps, from which epoch, with XLA or not."""

    placement: distribute.Placement
    epochs: int
    steps: int  # per epoch
    first_epoch: int  # 0, or the epochs a resumed run has done
    jit: bool


# Outlier exposure (Hendrycks et al., 2019): a non-digit's loss is how far its softmax is from the
# uniform distribution, weighted so; the network learns features on which non-digits read as no
# digit in particular, which the no-digit head then tells apart better (docs/no_digit.md).
OUTLIER_WEIGHT = 0.5


def from_uniform(logits: Any) -> Any:
    """KL(uniform || softmax(logits)) per example: 0 when the ten logits are equal, more the more one
    stands out. (The cross-entropy from uniform less its least value, log 10: the epoch's loss stays
    comparable to the digits' own.)"""
    import math

    import tensorflow as tf

    return tf.reduce_logsumexp(logits, axis=1) - tf.reduce_mean(logits, axis=1) - math.log(NUM_CLASSES)


def make_train_steps(strategy: Any, model: Any, jit: bool) -> Callable:
    """A tf.function that runs n training steps on every replica; returns their sums.

    The same loop serves every strategy, from one CPU to many machines: each replica
    computes its gradients (XLA-compiled where jit is on) and Keras' optimizer all-reduces
    them; the loss is scaled by the global batch (tf.nn.compute_average_loss), so the
    summed update is one step on the whole batch (up to how a short last batch splits).
    """
    import keras
    import tensorflow as tf

    optimizer = model.optimizer

    def gradients(images, labels):
        digit = labels < NUM_CLASSES  # the others are non-digits (negatives.NO_DIGIT_LABEL)
        with tf.GradientTape() as tape:
            logits = model(images, training=True)  # float32 in every precision (model.py)
            per_digit = keras.losses.sparse_categorical_crossentropy(
                tf.minimum(labels, NUM_CLASSES - 1), logits, from_logits=True)
            loss = tf.nn.compute_average_loss(tf.where(digit, per_digit, OUTLIER_WEIGHT * from_uniform(logits)))
        digits = tf.cast(digit, tf.float32)
        correct = tf.reduce_sum(digits * tf.cast(
            tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32))
        sums = tf.stack([loss, tf.reduce_sum(digits * per_digit), correct, tf.reduce_sum(digits)])
        return tape.gradient(loss, model.trainable_variables), sums

    if jit:  # nested only under XLA, which compiles it; without XLA the nesting costs time (docs/benchmarks.md)
        gradients = tf.function(gradients, jit_compile=True)

    def step(batch):
        grads, sums = gradients(*batch)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return sums

    @tf.function
    def train_steps(iterator, n):
        # [sum of batch-mean losses, sum of per-example losses, correct, examples]
        totals = tf.zeros([4])
        for _ in tf.range(n):
            sums = strategy.run(step, args=(next(iterator),))
            totals += strategy.reduce(tf.distribute.ReduceOp.SUM, sums, axis=None)
        return totals

    return train_steps


def make_evaluate(model: Any, jit: bool) -> Callable[[Any], dict]:
    """Validation loss and accuracy, on this process's device: the weights are the same everywhere."""
    import keras
    import tensorflow as tf

    @tf.function(jit_compile=jit)
    def batch_sums(images, labels):
        logits = model(images, training=False)
        per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        correct = tf.reduce_sum(tf.cast(
            tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32))
        return tf.reduce_sum(per_example), correct

    def evaluate(dataset) -> dict:
        loss = correct = count = 0.0
        for images, labels in dataset:
            batch_loss, batch_correct = batch_sums(images, labels)
            loss, correct, count = loss + float(batch_loss), correct + float(batch_correct), count + len(labels)
        return {"val_avg_loss": loss / count, "val_loss": loss / count, "val_accuracy": correct / count}

    return evaluate


def weights_fingerprints(strategy: Any, model: Any) -> list[str]:
    """A short hash of the trained weights on each local replica: equal when they agree."""
    import numpy as np

    per_variable = [strategy.experimental_local_results(v.value) for v in model.trainable_variables]
    return [hashlib.sha256(b"".join(np.asarray(value).tobytes() for value in replica)).hexdigest()[:16]
            for replica in zip(*per_variable)]


def same_on_all_workers(strategy: Any, fingerprint: str) -> bool:
    """Whether every replica of every worker holds the weights this one does.

    Each contributes its fingerprint as a number, x and x squared; their means across
    replicas agree only if all the numbers are equal (zero variance).
    """
    import tensorflow as tf

    value = float(int(fingerprint[:12], 16))  # 48 bits: exact in float64
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant([value, value * value], tf.float64))
    mean, mean_square = strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None).numpy()
    return bool(mean == value and mean_square - mean * mean <= 1e-6 * max(mean_square, 1.0))


def broadcast_from_chief(strategy: Any, model: Any, first_epoch: int) -> int:
    """Gives every worker the chief's weights, optimizer state and resume point.

    Only the chief keeps a backup (BackupAndRestore restored it in on_train_begin); the
    others, restarted on their own machines, have nothing to restore from, so the chief's
    state is all-reduced to them: the chief's replica 0 contributes it, every other
    replica zeros.
    """
    import numpy as np
    import tensorflow as tf

    def from_chief(value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, np.float64 if value.dtype.kind in "iub" else value.dtype)
        per_replica = strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(value if ctx.replica_id_in_sync_group == 0 else np.zeros_like(value)))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()

    for variable in [*model.variables, *model.optimizer.variables]:
        value = np.asarray(variable.numpy())
        variable.assign(from_chief(value).astype(value.dtype))
    return int(from_chief(np.array(first_epoch)))


def run_epochs(schedule: Schedule, model: Any, make_train_data: Callable[[int], Any],
               validation_data: Any | None, callbacks: list) -> None:
    """The training loop: epochs of steps, the callbacks told as model.fit() would tell them.

    make_train_data(first_epoch): the training stream from that epoch on. validation_data:
    measured after each epoch (val_* logs), or None. The test set is not seen here.
    """
    import keras

    strategy = schedule.placement.strategy
    train_steps = make_train_steps(strategy, model, schedule.jit)
    evaluate = make_evaluate(model, schedule.jit)
    hooks = keras.callbacks.CallbackList(callbacks, model=model, verbose=1, epochs=schedule.epochs,
                                         steps=schedule.steps)
    model.stop_training = False
    # Outside strategy.scope(): there, restoring the backup made the chief alone create a
    # variable, whose broadcast the other workers never joined (the collectives deadlock).
    hooks.on_train_begin()
    first_epoch = agree_on_first_epoch(schedule, model)
    iterator = iter(strategy.experimental_distribute_dataset(make_train_data(first_epoch)))
    logs: dict = {}
    for epoch in range(first_epoch, schedule.epochs):
        hooks.on_epoch_begin(epoch)
        logs = run_epoch(train_steps, iterator, schedule.steps, model, hooks)
        if validation_data is not None:
            logs = {**logs, **evaluate(validation_data)}
        logs = {**logs, "learning_rate": float(
            keras.ops.convert_to_numpy(model.optimizer.learning_rate))}
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end(logs)


def agree_on_first_epoch(schedule: Schedule, model: Any) -> int:
    """The epoch to start from: on several workers, the chief's, with its weights (broadcast_from_chief)."""
    placement = schedule.placement
    if placement.workers == 1:
        return schedule.first_epoch
    chosen = broadcast_from_chief(placement.strategy, model, schedule.first_epoch)
    if chosen and not placement.is_chief:
        print(f"Resuming from the chief's backup: {chosen} of {schedule.epochs} epochs done")
    return chosen


def run_epoch(train_steps: Callable, iterator: Any, steps: int, model: Any, hooks: Any) -> dict:
    """One epoch's steps, STEPS_PER_CALL at a time; its logs (average loss, loss, accuracy)."""
    import tensorflow as tf

    totals, done = 0.0, 0
    logs: dict = {}
    while done < steps and not model.stop_training:
        n = min(STEPS_PER_CALL, steps - done)
        totals = totals + train_steps(iterator, tf.constant(n)).numpy()
        done += n
        logs = {"avg_loss": totals[0] / done, "loss": totals[1] / totals[3],
                "accuracy": totals[2] / totals[3]}
        hooks.on_train_batch_end(done - 1, logs)
    return logs
