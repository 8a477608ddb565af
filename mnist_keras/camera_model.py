"""A .tflite an app feeds a camera crop to: RGB uint8 in, preprocess.py's MNIST-style
preprocessing inside the graph (TFLite builtin ops only), then the trained CNN.

The steps follow preprocess.to_mnist: grayscale, ink is the side away from the paper
(the median), contrast stretched between paper and the 5th strongest pixel, ink above 25%
cropped to its box (with 2 pixels of soft edge), the longer side resampled to 20 pixels
with a Lanczos-3 filter written as two matrix products, and the centre of mass placed at
the centre of 28x28 by two 0/1 matrix products. Not in the graph: preprocess.py's removal
of specks and of a frame along the border (connected components have no builtin op).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

SIZE = 64  # the square RGB input, MediaPipe resizes each frame to it; 96 read no better and cost more
FRAME, BOX, INK, MIN_CONTRAST = 28, 20, 0.25, 40.0
LEVELS = 64  # grey levels the median is found among (a 4-level step)


def _lanczos(x):
    import tensorflow as tf

    pix = np.pi * x
    safe = tf.where(tf.abs(x) < 1e-4, tf.ones_like(x), pix)
    value = tf.sin(safe) * tf.sin(safe / 3.0) * 3.0 / (safe * safe)
    return tf.where(tf.abs(x) < 1e-4, tf.ones_like(x), tf.where(tf.abs(x) < 3.0, value, tf.zeros_like(x)))


def _resample_matrix(start, length, out_length):
    """[BOX, SIZE]: row i averages the source pixels under output pixel i (Pillow's Lanczos)."""
    import tensorflow as tf

    ratio = length / out_length
    support = tf.maximum(ratio, 1.0)  # downscaling stretches the filter
    i = tf.range(BOX, dtype=tf.float32)[:, None]
    j = tf.range(SIZE, dtype=tf.float32)[None, :]
    centre = start + (i + 0.5) * ratio
    weights = _lanczos((j + 0.5 - centre) / support)
    inside = tf.cast((j >= start) & (j < start + length) & (i < out_length), tf.float32)
    weights = weights * inside
    return weights / tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1e-6)


def _placement(offset):
    """[FRAME, BOX]: 1 where frame row t takes digit row t - offset."""
    import tensorflow as tf

    t = tf.range(FRAME, dtype=tf.float32)[:, None]
    i = tf.range(BOX, dtype=tf.float32)[None, :]
    return tf.cast(tf.equal(t - offset, i), tf.float32)


def preprocess_graph(rgb: Any) -> Any:
    """[1, SIZE, SIZE, 3] uint8 -> [1, 28, 28, 1] float in [0, 1], as preprocess.to_mnist."""
    import tensorflow as tf

    pixels = tf.cast(rgb, tf.float32)
    gray = tf.reduce_sum(pixels * tf.constant([0.299, 0.587, 0.114]), axis=-1)[0]  # Pillow's "L"
    # The paper's level: the median of 4x4 block means (576 values, not 9,216: 16x less work)
    flat = tf.reshape(tf.nn.avg_pool2d(gray[None, :, :, None], 4, 4, "VALID"), [-1])
    levels = tf.range(LEVELS, dtype=tf.float32) * (256.0 / LEVELS)
    below = tf.reduce_sum(tf.cast(flat[:, None] < levels[None, :] + 256.0 / LEVELS, tf.float32), axis=0)
    median = tf.reduce_min(tf.where(below >= (SIZE // 4) ** 2 / 2, levels, 255.0)) + 128.0 / LEVELS
    smooth = tf.nn.avg_pool2d(gray[None, :, :, None], 3, 1, "VALID")
    low, high = tf.reduce_min(smooth), tf.reduce_max(smooth)
    dark_ink = high - median < median - low
    ink = tf.where(dark_ink, 255.0 - gray, gray)
    background = tf.where(dark_ink, 255.0 - median, median)
    strongest = tf.math.top_k(tf.reshape(ink, [1, -1]), 5).values[0, 4]
    ink = tf.clip_by_value((ink - background) / tf.maximum(strongest - background, MIN_CONTRAST), 0.0, 1.0)

    mask = tf.cast(ink > INK, tf.float32)
    grown = mask[None, :, :, None]
    for _ in range(2):  # binary_dilation's default cross, twice
        grown = tf.maximum(tf.nn.max_pool2d(grown, [3, 1], 1, "SAME"), tf.nn.max_pool2d(grown, [1, 3], 1, "SAME"))
    ink = ink * grown[0, :, :, 0]

    index = tf.range(SIZE, dtype=tf.float32)
    rows, cols = tf.reduce_max(mask, axis=1), tf.reduce_max(mask, axis=0)
    top = tf.reduce_min(index + (1.0 - rows) * SIZE)
    left = tf.reduce_min(index + (1.0 - cols) * SIZE)
    height = tf.maximum(tf.reduce_max(index * rows) - top + 1.0, 1.0)
    width = tf.maximum(tf.reduce_max(index * cols) - left + 1.0, 1.0)
    scale = BOX / tf.maximum(height, width)
    out_h = tf.maximum(tf.round(height * scale), 1.0)
    out_w = tf.maximum(tf.round(width * scale), 1.0)
    digit = tf.matmul(tf.matmul(_resample_matrix(top, height, out_h), ink),
                      _resample_matrix(left, width, out_w), transpose_b=True)
    digit = tf.clip_by_value(digit, 0.0, 1.0)

    total = tf.maximum(tf.reduce_sum(digit), 1e-6)
    box = tf.range(BOX, dtype=tf.float32)
    cy = tf.reduce_sum(tf.reduce_sum(digit, axis=1) * box) / total
    cx = tf.reduce_sum(tf.reduce_sum(digit, axis=0) * box) / total
    shift_y = tf.clip_by_value(tf.round(FRAME / 2 - cy), 0.0, FRAME - out_h)
    shift_x = tf.clip_by_value(tf.round(FRAME / 2 - cx), 0.0, FRAME - out_w)
    frame = tf.matmul(tf.matmul(_placement(shift_y), digit), _placement(shift_x), transpose_b=True)
    return tf.round(frame * 255.0)[None, :, :, None] / 255.0


def classifier(model: Any, ends_in_softmax: bool, kind: str, head: Any = None) -> tuple[Callable[[Any], dict], Any]:
    """(function, input spec). kind "camera": SIZE x SIZE RGB uint8 through the preprocessing;
    "rgb28": 28x28x3 uint8 already MNIST-style (white digit on black), its grey fed to the CNN.
    head: a no_digit.Head: one more output, digit_check [1, 2] = [no digit, digit]."""
    import tensorflow as tf

    size = SIZE if kind == "camera" else FRAME
    if head is not None:
        from mnist_keras import no_digit

        network = no_digit.with_head(model, head)

    def classify(image: Any) -> dict:
        if kind == "camera":
            digit = preprocess_graph(image)
        else:
            weights = tf.constant([0.299, 0.587, 0.114])
            digit = tf.reduce_sum(tf.cast(image, tf.float32) * weights, axis=-1, keepdims=True) / 255.0
        if head is None:
            scores = model(digit, training=False)
            return {"probabilities": scores if ends_in_softmax else tf.nn.softmax(scores)}
        scores, digit_score = network(digit, training=False)
        return {"probabilities": scores if ends_in_softmax else tf.nn.softmax(scores),
                no_digit.CHECK: tf.stack([1.0 - digit_score, digit_score], axis=1)}

    classify.network = model if head is None else network  # what export must track: every variable used
    return classify, tf.TensorSpec([1, size, size, 3], tf.uint8, name="image")


def convert(model: Any, ends_in_softmax: bool, kind: str, head: Any = None) -> bytes:
    """TFLite bytes, builtin ops only, int8 weights (the preprocessing's arithmetic stays float)."""
    import tempfile

    import keras
    import tensorflow as tf

    function, spec = classifier(model, ends_in_softmax, kind, head)
    archive = keras.export.ExportArchive()  # as export.write_saved_model: it captures Keras 3's variables
    archive.track(function.network)
    archive.add_endpoint(name="serving_default", fn=function, input_signature=[spec])
    with tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            return converter.convert()


def convert_preprocessing() -> bytes:
    """The camera model's preprocessing alone as a .tflite (float32 out), to time its share."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.uint8, name="image")])
    def prepare(image):
        return {"digit": preprocess_graph(image)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([prepare.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return converter.convert()


def preprocess_only(rgb: np.ndarray) -> np.ndarray:
    """The in-graph preprocessing run eagerly on [N, SIZE, SIZE, 3] uint8: uint8 [N, 28, 28]."""
    return np.stack([np.round(preprocess_graph(image[None]).numpy()[0, :, :, 0] * 255).astype(np.uint8)
                     for image in rgb])


def render(digits: np.ndarray, size: int = SIZE, span: float = 0.6) -> np.ndarray:
    """MNIST digits as an app sees them: dark ink on light paper, RGB uint8, upscaled and padded."""
    from PIL import Image

    side = int(round(size * span))
    out = np.full((len(digits), size, size, 3), 255, np.uint8)
    start = (size - side) // 2
    for n, digit in enumerate(digits):
        big = np.asarray(Image.fromarray(255 - digit).resize((side, side), Image.Resampling.BILINEAR))
        out[n, start:start + side, start:start + side] = big[..., None]
    return out
