"""The training loop: steps on every replica, an evaluation per epoch, multi-worker agreement.

TensorFlow and Keras are passed in (tf, keras) rather than imported here, so that importing
this module stays cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from mnist_keras.training import distribute
from mnist_keras.training.config import Config

# Training steps run per call into TensorFlow (a tf.while_loop): fewer round trips to
# Python; the progress bar and the callbacks' batch hooks see every 50th step.
STEPS_PER_CALL = 50


def make_train_steps(tf: ModuleType, keras: ModuleType, strategy: Any, model: Any, jit: bool) -> Callable:
    """A tf.function that runs n training steps on every replica; returns their sums.

    The same loop serves every strategy, from one CPU to many machines: each replica
    computes its gradients (XLA-compiled where jit is on) and Keras' optimizer all-reduces
    them; the loss is scaled by the global batch (tf.nn.compute_average_loss), so the
    summed update is one step on the whole batch (up to how a short last batch splits).
    """
    optimizer = model.optimizer

    def gradients(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            loss = tf.nn.compute_average_loss(per_example)
        correct = tf.reduce_sum(tf.cast(
            tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32))
        sums = tf.stack([loss, tf.reduce_sum(per_example), correct, tf.cast(tf.size(labels), tf.float32)])
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


def make_evaluate(tf: ModuleType, keras: ModuleType, model: Any, jit: bool) -> Callable[[Any], dict]:
    """Validation loss and accuracy, on this process's device: the weights are the same everywhere."""

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


def same_on_all_workers(tf: ModuleType, strategy: Any, fingerprint: str) -> bool:
    """Whether every replica of every worker holds the weights this one does.

    Each contributes its fingerprint as a number, x and x squared; their means across
    replicas agree only if all the numbers are equal (zero variance).
    """
    value = float(int(fingerprint[:12], 16))  # 48 bits: exact in float64
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant([value, value * value], tf.float64))
    mean, mean_square = strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None).numpy()
    return bool(mean == value and mean_square - mean * mean <= 1e-6 * max(mean_square, 1.0))


def broadcast_from_chief(tf: ModuleType, strategy: Any, model: Any, first_epoch: int) -> int:
    """Gives every worker the chief's weights, optimizer state and resume point.

    Only the chief keeps a backup (BackupAndRestore restored it in on_train_begin); the
    others, restarted on their own machines, have nothing to restore from, so the chief's
    state is all-reduced to them: the chief's replica 0 contributes it, every other
    replica zeros.
    """
    import numpy as np

    def from_chief(value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, np.float64 if value.dtype.kind in "iub" else value.dtype)
        per_replica = strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(value if ctx.replica_id_in_sync_group == 0 else np.zeros_like(value)))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()

    for variable in [*model.variables, *model.optimizer.variables]:
        value = np.asarray(variable.numpy())
        variable.assign(from_chief(value).astype(value.dtype))
    return int(from_chief(np.array(first_epoch)))


def run_epochs(tf: ModuleType, keras: ModuleType, placement: distribute.Placement, model: Any,
               make_train_data: Callable[[int], Any], validation_data: Any | None,
               callbacks: list, config: Config, steps: int, first_epoch: int, jit: bool) -> None:
    """The training loop: epochs of steps, the callbacks told as model.fit() would tell them.

    make_train_data(first_epoch): the training stream from that epoch on. validation_data:
    measured after each epoch (val_* logs), or None. The test set is not seen here.
    """
    strategy = placement.strategy
    train_steps = make_train_steps(tf, keras, strategy, model, jit)
    evaluate = make_evaluate(tf, keras, model, jit)
    hooks = keras.callbacks.CallbackList(callbacks, model=model, verbose=1, epochs=config.epochs,
                                         steps=steps)
    model.stop_training = False
    # Outside strategy.scope(): there, restoring the backup made the chief alone create a
    # variable, whose broadcast the other workers never joined (the collectives deadlock).
    hooks.on_train_begin()
    if placement.workers > 1:
        chosen = broadcast_from_chief(tf, strategy, model, first_epoch)
        if chosen and not placement.is_chief:
            print(f"Resuming from the chief's backup: {chosen} of {config.epochs} epochs done")
        first_epoch = chosen
    iterator = iter(strategy.experimental_distribute_dataset(make_train_data(first_epoch)))
    logs: dict = {}
    for epoch in range(first_epoch, config.epochs):
        hooks.on_epoch_begin(epoch)
        totals, done = 0.0, 0
        while done < steps and not model.stop_training:
            n = min(STEPS_PER_CALL, steps - done)
            totals = totals + train_steps(iterator, tf.constant(n)).numpy()
            done += n
            logs = {"avg_loss": totals[0] / done, "loss": totals[1] / totals[3],
                    "accuracy": totals[2] / totals[3]}
            hooks.on_train_batch_end(done - 1, logs)
        if validation_data is not None:
            logs = {**logs, **evaluate(validation_data)}
        logs = {**logs, "learning_rate": float(
            keras.ops.convert_to_numpy(model.optimizer.learning_rate))}
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end(logs)


