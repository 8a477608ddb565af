"""The seed's CNN, its loss and its optimizer."""

from __future__ import annotations

import types
from typing import Any

import keras
from keras import layers

from mnist_keras.data.datasets import IMAGE_SHAPE, NUM_CLASSES


def build_model(dtype: str = "float32") -> keras.Sequential:
    """Conv-Pool-Conv-Pool-Dense-Dense: 421,642 parameters, logits out.

    dtype: "float32", or "mixed_bfloat16": bfloat16 arithmetic on float32 weights, faster on
    hardware with bfloat16 instructions (docs/benchmarks.md); the logits stay float32 either way.
    """
    return keras.Sequential(
        [
            keras.Input(shape=(*IMAGE_SHAPE, 1), name="images"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1", dtype=dtype),
            layers.MaxPooling2D(2, name="pool1", dtype=dtype),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2", dtype=dtype),
            layers.MaxPooling2D(2, name="pool2", dtype=dtype),
            layers.Flatten(name="flatten", dtype=dtype),
            layers.Dense(128, activation="relu", name="dense", dtype=dtype),
            layers.Dense(NUM_CLASSES, name="logits", dtype="float32"),
        ],
        name="mnist_cnn",
    )


def float32_copy(model: keras.Model) -> keras.Model:
    """The same weights in a float32 model: what is saved, exported and served.

    (Mixed-precision weights are float32 already; only the arithmetic changes back.)
    """
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    copy = build_model("float32")
    copy.set_weights(model.get_weights())
    return copy


@keras.saving.register_keras_serializable(package="mnist_keras")
class MeanBatchLoss(keras.metrics.Metric):
    """Total loss / number of batches, the figure the original PyTorch version reported.

    Keras' own `loss` log weights each batch by its size, so the short last batch
    (32 of 60,000 at batch 64) counts half; this counts every batch once. The training
    loop (loop.py) now sums these itself; the class stays registered because models
    saved by model.fit-era versions name it in their compile config.
    """

    def __init__(self, name: str = "avg_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.batches = self.add_variable(shape=(), initializer="zeros", name="batches")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        loss = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        self.total.assign_add(keras.ops.cast(keras.ops.mean(loss), self.dtype))
        self.batches.assign_add(keras.ops.cast(1, self.dtype))

    def result(self) -> Any:
        return keras.ops.divide_no_nan(self.total, self.batches)


def learning_rate(base: float, schedule: str,
                  total_steps: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Adam's learning rate: cosine decay to zero over the run (the default: it ends more
    accurate than a constant rate, docs/training.md), or constant."""
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(base, decay_steps=total_steps, alpha=0.0)
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


def fuse_adam_updates(optimizer: keras.optimizers.Adam) -> keras.optimizers.Adam:
    """Runs each variable's Adam update as one TensorFlow kernel (ResourceApplyAdam).

    Keras' Adam.update_step is ten element-wise ops per variable, each a pass over memory;
    TensorFlow's kernel applies the same formula in one pass: m += (g - m)(1 - b1),
    v += (g^2 - v)(1 - b2), w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps), with
    1 - b formed in float32 (about 1e-5 relative from Keras' figure); the time it saves is in
    docs/benchmarks.md. The optimizer stays Keras' Adam: its config, slots,
    checkpoints and saved form are unchanged, and a reloaded one runs Keras' own update.
    Other backends, and weights that are not float32, keep Keras' update.
    """
    if keras.backend.backend() == "tensorflow" and not optimizer.amsgrad:
        optimizer.update_step = types.MethodType(_fused_adam_update_step, optimizer)
    return optimizer


def _fused_adam_update_step(self: keras.optimizers.Adam, gradient, variable, learning_rate) -> None:
    import tensorflow as tf

    # Adam's own private names, as of Keras 3.15; a Keras that keeps its slots elsewhere,
    # sparse gradients and non-float32 weights take Keras' update.
    slots = ("_get_variable_index", "_momentums", "_velocities")
    if (isinstance(gradient, tf.IndexedSlices) or variable.dtype != tf.float32
            or not all(hasattr(self, name) for name in slots)):
        return keras.optimizers.Adam.update_step(self, gradient, variable, learning_rate)
    index = self._get_variable_index(variable)  # as Adam.update_step finds its slots
    step = tf.cast(self.iterations + 1, tf.float32)
    beta_1, beta_2 = tf.constant(self.beta_1, tf.float32), tf.constant(self.beta_2, tf.float32)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=self._momentums[index].value.handle,
        v=self._velocities[index].value.handle,
        beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
        lr=tf.cast(learning_rate, tf.float32), beta1=beta_1, beta2=beta_2,
        epsilon=tf.constant(self.epsilon, tf.float32), grad=tf.cast(gradient, tf.float32))


def compile_model(model: keras.Model, lr: float | keras.optimizers.schedules.LearningRateSchedule, jit_compile: bool,
                  fused_adam: bool = True) -> None:
    """Attaches Adam (fused updates unless asked not to) and the loss; the training loop
    computes its own figures."""
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    model.compile(
        optimizer=fuse_adam_updates(optimizer) if fused_adam else optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
