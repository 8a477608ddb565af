"""The seed's CNN, layer by layer, and the per-batch average loss it reports."""

from __future__ import annotations

import keras
import numpy as np

from mnist_keras.data import datasets
from mnist_keras.training import model as model_lib

SHAPES = {
    "conv1": (None, 28, 28, 32),
    "pool1": (None, 14, 14, 32),
    "conv2": (None, 14, 14, 64),
    "pool2": (None, 7, 7, 64),
    "flatten": (None, 3136),
    "dense": (None, 128),
    "logits": (None, 10),
}


def test_layers_shapes_and_parameter_count():
    model = model_lib.build_model()
    assert isinstance(model, keras.Sequential)
    assert [layer.name for layer in model.layers] == list(SHAPES)
    assert {layer.name: tuple(layer.output.shape) for layer in model.layers} == SHAPES
    assert model.count_params() == 421_642
    for name in ("conv1", "conv2", "dense"):
        assert model.get_layer(name).activation.__name__ == "relu", name
    assert model.get_layer("logits").activation.__name__ == "linear"  # logits, not softmax


def test_mean_batch_loss_counts_every_batch_once():
    rng = np.random.default_rng(0)
    metric = model_lib.MeanBatchLoss()
    losses, sizes = [], (64, 64, 8)
    for size in sizes:
        labels = rng.integers(0, 10, size)
        logits = rng.normal(size=(size, 10)).astype("float32")
        metric.update_state(labels, logits)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        losses.append(-log_probs[np.arange(size), labels].mean())
    assert np.isclose(float(metric.result()), np.mean(losses), rtol=1e-5)
    weighted = np.average(losses, weights=sizes)  # what Keras' own `loss` reports
    assert not np.isclose(float(metric.result()), weighted, rtol=1e-5)


def test_cosine_schedule_decays_to_zero():
    schedule = model_lib.learning_rate(1e-3, "cosine", total_steps=100)
    assert np.isclose(float(schedule(0)), 1e-3)
    assert np.isclose(float(schedule(50)), 5e-4)
    assert float(schedule(100)) == 0.0
    assert model_lib.learning_rate(1e-3, "constant", 100) == 1e-3


def test_mixed_bfloat16_computes_in_bfloat16_and_saves_as_float32(mnist):
    mixed = model_lib.build_model("mixed_bfloat16")
    assert mixed.count_params() == 421_642
    assert mixed.get_layer("conv2").compute_dtype == "bfloat16"
    assert mixed.get_layer("conv2").kernel.dtype == "float32"  # weights stay float32
    assert mixed.get_layer("logits").compute_dtype == "float32"  # and so do the logits
    images = datasets.scale_images(mnist.x_test[:200])
    copy = model_lib.float32_copy(mixed)
    assert all(layer.compute_dtype == "float32" for layer in copy.layers)
    for ours, theirs in zip(mixed.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    # bfloat16 keeps 8 bits of mantissa: the two agree to a few parts in a hundred.
    np.testing.assert_allclose(mixed.predict(images, verbose=0), copy.predict(images, verbose=0),
                               atol=0.05)
    plain = model_lib.build_model()
    assert model_lib.float32_copy(plain) is plain


def test_a_precision_asked_for_is_not_measured():
    from mnist_keras.training import precision

    assert precision.choose_precision("float32", on_gpu=False) == ("float32", "as asked")
    assert precision.choose_precision("mixed_bfloat16", on_gpu=False) == ("mixed_bfloat16", "as asked")
    assert precision.choose_jit("auto", on_gpu=False) is False and precision.choose_jit("auto", on_gpu=True)


def test_fused_adam_updates_as_keras_adam_does(mnist):
    """The same gradients, step by step, through Keras' Adam and the fused kernel."""
    import tensorflow as tf

    lr = model_lib.learning_rate(1e-3, "cosine", 10)
    models = []
    for fused in (False, True):
        keras.utils.set_random_seed(0)
        model = model_lib.build_model()
        model_lib.compile_model(model, lr, jit_compile=False, fused_adam=fused)
        model.optimizer.build(model.trainable_variables)
        models.append(model)
    keras_adam, fused_adam = models
    initial = fused_adam.get_weights()
    assert keras.optimizers.serialize(fused_adam.optimizer)["class_name"] == "Adam"  # saved as plain Adam
    images = datasets.scale_images(mnist.x_train[:320])
    labels = mnist.y_train[:320]
    for step in range(5):
        with tf.GradientTape() as tape:
            logits = keras_adam(images[step * 64:(step + 1) * 64], training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                labels[step * 64:(step + 1) * 64], logits, from_logits=True))
        grads = tape.gradient(loss, keras_adam.trainable_variables)
        for model in models:
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
    assert int(fused_adam.optimizer.iterations) == 5
    moved = 0
    # TensorFlow's kernel forms 1 - beta_2 in float32 (0.00099999), Keras in float64 (0.001).
    for ours, theirs, start in zip(fused_adam.get_weights(), keras_adam.get_weights(), initial):
        np.testing.assert_allclose(ours, theirs, rtol=5e-5, atol=1e-7)
        moved += int(np.abs(ours - start).max() > 1e-4)
    assert moved == len(fused_adam.get_weights())  # every variable was updated
    for ours, theirs in zip(fused_adam.optimizer.variables, keras_adam.optimizer.variables):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=5e-5, atol=1e-9)

    def kernels(model):  # the ops one traced update runs
        apply = tf.function(lambda: model.optimizer.apply_gradients(zip(grads, model.trainable_variables)))
        return {op.type for op in apply.get_concrete_function().graph.get_operations()}

    assert "ResourceApplyAdam" in kernels(fused_adam)
    assert "ResourceApplyAdam" not in kernels(keras_adam)
    trained = model_lib.build_model("mixed_bfloat16")  # what training compiles: the default
    model_lib.compile_model(trained, lr, jit_compile=False)
    trained.optimizer.build(trained.trainable_variables)
    grads = [tf.zeros_like(v) for v in trained.trainable_variables]
    assert "ResourceApplyAdam" in kernels(trained)


def test_non_digits_are_taught_to_read_as_no_digit_in_particular(mnist):
    """Outlier exposure: a batch of non-digits (negatives.NO_DIGIT_LABEL) moves the logits towards
    equal (cross-entropy to uniform), and counts in neither the digits' loss nor their accuracy."""
    import tensorflow as tf

    from mnist_keras.data import negatives
    from mnist_keras.training import loop

    keras.utils.set_random_seed(0)
    model = model_lib.build_model()
    model_lib.compile_model(model, 1e-3, False)
    model.optimizer.build(model.trainable_variables)
    images = datasets.scale_images(mnist.x_train[:64])
    steps = loop.make_train_steps(tf.distribute.get_strategy(), model, jit=False)

    def train(labels: np.ndarray) -> np.ndarray:
        return steps(iter(tf.data.Dataset.from_tensors((images, labels)).repeat()), tf.constant(20)).numpy()

    def divergence() -> float:  # KL(uniform || softmax), averaged: 0 when all ten logits are equal
        return float(np.mean(loop.from_uniform(model(images, training=False))))

    train(mnist.y_train[:64].astype(np.int32))  # confident on these as digits first
    before = divergence()
    sums = train(np.full(64, negatives.NO_DIGIT_LABEL, np.int32))
    assert before > 1.0 and divergence() < before / 4, (before, divergence())
    assert sums[1:].tolist() == [0.0, 0.0, 0.0]  # no digit's loss, correct answer or count
