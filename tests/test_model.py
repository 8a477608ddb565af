"""The seed's CNN, layer by layer, and the per-batch average loss it reports."""

from __future__ import annotations

import keras
import numpy as np

from mnist_keras import model as model_lib

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
