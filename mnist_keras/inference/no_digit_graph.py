"""The no-digit head inside the network's graph: the features it reads, and one model with both outputs.

The head reads what the network computes anyway (no_digit.TAPS): pool2 max-pooled once more,
the Dense 128 features and the ten logits. Export builds every artifact from one Network: the
model, whether it ends in a softmax, and its head (with_head puts both in one graph).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from mnist_keras.inference.no_digit import CHECK, INPUTS, SCORE, TAPS, Head


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


def feature_reader(model: Any, batch_size: int = 1000) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """features() for many sets of pictures: the graph traced once, then half the time of eager calls."""
    import tensorflow as tf

    from mnist_keras.data.datasets import scale_images

    both = feature_model(model)
    step = tf.function(lambda images: both(images, training=False), reduce_retracing=True)

    def read(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [step(scale_images(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
        if not parts:
            return np.zeros((0, INPUTS), np.float32), np.zeros((0, 10), np.float32)
        return (np.concatenate([np.asarray(p[0]) for p in parts]).astype(np.float32),
                np.concatenate([np.asarray(p[1]) for p in parts]).astype(np.float32))

    return read


def features(model: Any, images: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(tapped [N, INPUTS], logits [N, 10]) of uint8 images [N, 28, 28]."""
    return feature_reader(model, batch_size)(images)


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


def check_output(digit_score: Any) -> Any:
    """digit_check [N, 2] for the .tflite files, in CHECK_LABELS' order: [1 - score, score]."""
    import tensorflow as tf

    return tf.stack([1.0 - digit_score, digit_score], axis=1)


def supports(model: Any) -> bool:
    """The model is the seed's CNN (its tapped layers as wide as the head reads)."""
    try:
        widths = [int(tap.shape[-1]) for tap in tapped(model)]
    except (ValueError, AttributeError):
        return False
    return sum(widths) == INPUTS and widths[-1] == 10


@dataclasses.dataclass
class Network:
    """The trained model as every exported artifact holds it: probabilities (a softmax added where
    the model ends in logits) and, with a head, its digit score in the same graph."""

    model: Any
    ends_in_softmax: bool = False
    head: Head | None = None

    def build(self) -> Any:
        """The Keras model an export tracks (every variable its signature uses): a new one each call."""
        return self.model if self.head is None else with_head(self.model, self.head)

    def signature(self, graph: Any, images: Any, serving: bool) -> dict:
        """A signature's outputs from graph = build(): probabilities, and with serving=True classes
        [N] and digit_score [N] (TF Serving's contract); else digit_check [N, 2] (the .tflite files')."""
        import tensorflow as tf

        scores, digit_score = (graph(images, training=False), None) if self.head is None else graph(
            images, training=False)
        result = {"probabilities": scores if self.ends_in_softmax else tf.nn.softmax(scores)}
        if serving:
            result["classes"] = tf.argmax(scores, axis=1, output_type=tf.int64)
        if digit_score is not None:
            result.update({SCORE: digit_score} if serving else {CHECK: check_output(digit_score)})
        return result
