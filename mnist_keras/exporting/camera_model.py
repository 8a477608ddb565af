"""A .tflite an app feeds a camera crop to: RGB uint8 in, preprocess.py's MNIST-style
preprocessing inside the graph (TFLite builtin ops only), then the trained CNN.

The steps follow preprocess.to_mnist: grayscale, ink is the side away from the paper
(the median; the extremes taken on 4x4 block means), the page's shading taken out (a plane
fitted to the paper's block means, where preprocess.py fits its pixels), contrast stretched
between paper and the 5th strongest pixel, ink above 25% cropped to its box (with 1 pixel of
soft edge, diagonals included, where preprocess.py keeps 2), the longer side resampled to 20 pixels
with a Lanczos-3 filter written as two matrix products, and the centre of mass placed at
the centre of 28x28 by two 0/1 matrix products. Not in the graph: preprocess.py's removal
of specks and of a frame along the border (connected components have no builtin op).

Written for speed on LiteRT's XNNPACK delegate (docs/mobile.md): every op but the uint8 cast
and the 5th strongest pixel's top-k and gather is one XNNPACK runs, so the graph runs as two
large delegate partitions (and a 1-op one between the two top-ks); XNNPACK pays per op, so
there are few: comparisons are clips to [-1, 1] or RELU6 that the converter fuses into the
op computing them (no LESS, SELECT or CAST); the image is worked on flat, its neighbours
read as contiguous windows of a padded copy (no pooling over a 1-channel image, which
XNNPACK runs pixel by pixel); reductions run along the last axis; rows and columns share
each small computation as a leading axis of 2.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

SIZE = 64  # the square RGB input, MediaPipe resizes each frame to it; 96 read no better and cost more
FRAME, BOX, INK, MIN_CONTRAST = 28, 20, 0.25, 40.0
LEVELS = 64  # grey levels the median is found among (a 4-level step): 16 coarse ones, then 4 fine
SHARP = 1e4  # a step's slope: 1/SHARP of a grey level (or of the ink's range) past its edge is all or nothing


def _sign(x):
    """+1.0 where x > 0, -1.0 where x < 0 (by 1/SHARP or more): a comparison that the converter
    fuses, as RELU_N1_TO_1, into the op that computes x, and that XNNPACK runs."""
    import tensorflow as tf

    return tf.clip_by_value(x * SHARP, -1.0, 1.0)


def _windows(flat, pad, offsets, length):
    """Contiguous windows of a 1-D tensor padded with `pad` zeros each side, one per offset."""
    import tensorflow as tf

    padded = tf.pad(flat, [[pad, pad]]) if pad else flat
    return [padded[pad + offset:pad + offset + length] for offset in offsets]


def _blocks(flat):
    """[16, 16] 4x4 block means of the flat image, [column, row]: pooled down the rows with the
    columns as channels, then across them (XNNPACK pools a 1-channel image pixel by pixel)."""
    import tensorflow as tf

    column_first = tf.reshape(flat, [1, SIZE, 1, SIZE])
    flip = lambda t: tf.transpose(t, [0, 3, 2, 1])  # noqa: E731
    blocks = tf.nn.avg_pool2d(flip(tf.nn.avg_pool2d(column_first, [4, 1], [4, 1], "VALID")), [4, 1], [4, 1], "VALID")
    return tf.reshape(blocks, [SIZE // 4, SIZE // 4])  # columns down, rows across: a median or extreme is the same


def _median(blocks):
    """The median of the 256 block means, found among LEVELS grey levels from 0 to 256: which of 16
    coarse levels first holds half the blocks, then which of its 4 fine ones. Counts are sums of
    signs (+1 under a threshold, -1 over it) over the blocks, thresholds down the rows and blocks
    along them (a sum along the last axis, which XNNPACK does fast)."""
    import tensorflow as tf

    blocks = tf.reshape(blocks, [1, -1]) * SHARP  # [1, 256]
    fine = 256.0 / LEVELS

    def levels_under_half(thresholds):
        """How many of the thresholds ([T, 1], times SHARP) have fewer than half the blocks under
        them, as (sum of signs + T) / 2: a threshold's signs sum to (under - over) = 2 under - 256."""
        balance = tf.reduce_sum(tf.clip_by_value(thresholds - blocks, -1.0, 1.0), axis=1)  # [T]
        return tf.reduce_sum(_sign(-1.0 - balance))  # under < half: balance <= -2

    coarse = tf.constant(np.arange(1, 17, dtype=np.float32)[:, None] * 16.0 * SHARP)
    level = 128.0 + 8.0 * levels_under_half(coarse)  # 16 * (16 + sum) / 2
    steps = level * SHARP + tf.constant(np.array([[1.0], [2.0], [3.0]], np.float32) * fine * SHARP)
    return level + (1.5 * fine + fine / 2) + (fine / 2) * levels_under_half(steps)


def _without_shading(flat, blocks, median, sign):
    """The ink's side up (flat * sign) less a plane fitted to the paper: preprocess.py fits it to the
    pixels at or under the median, this to the 4x4 block means at or under the median block. The
    least squares are a few small matrix products: the paper's sums (n, u, v, uu, uv, vv; y, yu, yv,
    u a block's column and v its row), their covariances, the 2x2 system for the slopes."""
    import tensorflow as tf

    count = SIZE // 4
    ink_blocks = tf.reshape(blocks * sign, [1, count * count])
    # At or under the median, give or take its 4-level step (256 / LEVELS), so that no fewer than half are paper
    paper = 0.5 + 0.5 * _sign(sign * (median - tf.reshape(blocks, [1, count * count])) + 256.0 / LEVELS)
    sums = tf.matmul(tf.concat([paper, paper * ink_blocks], axis=0), tf.constant(_Plane.terms))  # [2, 6]
    means = tf.reshape(sums / tf.reduce_sum(paper), [1, 12])  # 1, u, v, uu, uv, vv; y, yu, yv, ...
    times = lambda x, name: tf.matmul(x, tf.constant(getattr(_Plane, name)))  # noqa: E731
    covariances = times(means, "second") - times(means, "left") * times(means, "right")  # [1, 5]: uu, uv, vv, uy, vy
    products = times(covariances, "factor_a") * times(covariances, "factor_b")
    slopes = times(products, "numerators") / times(products, "determinant")  # [1, 2]
    offset = times(means, "mean_y") - tf.reduce_sum(slopes * times(means, "mean_uv"), axis=1, keepdims=True)
    across, down = tf.split(slopes, 2, axis=1)  # [1, 1] each
    plane = (across * tf.constant(_Plane.pixel_column) + offset) + down * tf.constant(_Plane.pixel_row)  # [SIZE, SIZE]
    return flat * sign - tf.reshape(plane, [SIZE * SIZE])


class _Plane:
    """Constants of _without_shading's least squares: which of the 12 means (1, u, v, uu, uv, vv;
    y, yu, yv and three unused) each term takes, and the blocks' and pixels' coordinates."""

    count = SIZE // 4
    column, row = (t.ravel().astype(np.float32) for t in np.meshgrid(np.arange(count), np.arange(count), indexing="ij"))
    terms = np.stack([np.ones_like(column), column, row, column * column, column * row, row * row], axis=1)

    @staticmethod
    def _select(*indices):
        out = np.zeros((12, len(indices)), np.float32)
        out[list(indices), np.arange(len(indices))] = 1.0
        return out

    second, left, right = _select(3, 4, 5, 7, 8), _select(1, 1, 2, 6, 6), _select(1, 2, 2, 1, 2)
    mean_y, mean_uv = _select(6), _select(1, 2)
    # Cramer's rule on [[uu, uv], [uv, vv]] [b, c] = [uy, vy], as products of two covariances each:
    # uu vv, uv uv, vv uy, uv vy, uu vy, uv uy.
    factor_a = np.eye(5, dtype=np.float32)[:, [0, 1, 2, 1, 0, 1]]
    factor_b = np.eye(5, dtype=np.float32)[:, [2, 1, 3, 4, 4, 3]]
    determinant = np.array([[1], [-1], [0], [0], [0], [0]], np.float32)
    numerators = np.array([[0, 0], [0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)
    pixel_column = ((np.arange(SIZE, dtype=np.float32) + 0.5) / 4 - 0.5)[None, :]  # in blocks: [1, SIZE]
    pixel_row = pixel_column.T  # [SIZE, 1]


def _resample_matrices(start, length, out_length, scale):
    """[2, BOX, SIZE], rows then columns: row i averages the source pixels under output pixel i
    (Pillow's Lanczos-3), times scale. start, length, out_length: [2, 1, 1], the box along each axis."""
    import tensorflow as tf

    ratio = length / out_length
    third = 1.0 / (3.0 * tf.maximum(ratio, 1.0))  # downscaling stretches the filter
    i = tf.constant(np.arange(BOX, dtype=np.float32).reshape(1, BOX, 1))
    j = tf.constant(np.arange(SIZE, dtype=np.float32).reshape(1, 1, SIZE))
    # u = x / 3, x = (j + 0.5 - centre_i) / support, from a row and a column: one full-size
    # addition, clipped to [-1, 1] with it (the filter is 0 from |x| = 3 on, and so at +-3: sin(pi) = 0)
    u = tf.clip_by_value(j * third + (0.5 - start - (i + 0.5) * ratio) * third, -1.0, 1.0)
    # sinc(x) sinc(x / 3) = 3 s^2 (3 - 4 s^2) / (pi x)^2 with s = sin(pi u) (sin 3v = 3 sin v - 4 sin^3 v):
    # one sine; constant factors cancel in the normalisation; the tiny terms give the limit at u = 0.
    s2 = tf.square(tf.sin(u * np.pi))
    tiny = 1e-8
    weights = (s2 + tiny * np.pi ** 2) * (0.75 - s2) / (tf.square(u) + tiny)
    inside = (tf.clip_by_value(j - start + 1.0, 0.0, 1.0) * tf.clip_by_value(start + length - j, 0.0, 1.0)
              * tf.clip_by_value(out_length - i, 0.0, 1.0))  # source pixel in the box, output row in use
    weights = weights * inside
    return weights / (tf.maximum(tf.reduce_sum(weights, axis=2, keepdims=True), 1e-30) * (1.0 / scale))


def _placements(offset, scale):
    """[2, FRAME, BOX]: scale where frame row t takes digit row t - offset; offset [2, 1, 1], whole numbers."""
    import tensorflow as tf

    t = tf.constant(np.arange(FRAME, dtype=np.float32).reshape(1, FRAME, 1))
    i = tf.constant(np.arange(BOX, dtype=np.float32).reshape(1, 1, BOX))
    return tf.nn.relu(scale - scale * tf.abs(t - offset - i))


def _grow(mask):
    """The flat [SIZE * SIZE] mask grown by one pixel, diagonals included (a 3x3 square): 3 down,
    then 3 across. A shift along the flat image wraps a row into the next, so those columns are
    zeroed. preprocess.py grows it by two crosses (a diamond of radius 2, 13 pixels, of which
    this keeps 9); the diamond took 27 ops over the image and 4.3 us, this 13 and about 2."""
    import tensorflow as tf

    n = SIZE * SIZE
    column = np.arange(n) % SIZE
    edge = {dx: tf.constant(((column + dx >= 0) & (column + dx < SIZE)).astype(np.float32)) for dx in (-1, 1)}
    up, down = _windows(mask, SIZE, [-SIZE, SIZE], n)
    down3 = tf.maximum(mask, tf.maximum(up, down))
    left, right = _windows(down3, 1, [-1, 1], n)
    return tf.maximum(down3, tf.maximum(left * edge[-1], right * edge[1]))


def _fifth_strongest(ink):
    """The 5th largest of the flat image's values, exactly, from 320 of them instead of 4,096
    (TFLite's top-k, which XNNPACK does not run, costs about 1 us a thousand values): every
    value above the 5th largest row maximum lies in the rows of the 5 largest row maxima, and
    those rows hold at least 5 values at or above it, so their 5th largest is the image's."""
    import tensorflow as tf

    image = tf.reshape(ink, [SIZE, SIZE])
    rows = tf.reshape(tf.math.top_k(tf.reshape(tf.reduce_max(image, axis=1), [1, SIZE]), 5).indices, [5])
    return tf.reduce_min(tf.math.top_k(tf.reshape(tf.gather(image, rows), [1, 5 * SIZE]), 5).values)


def preprocess_graph(rgb: Any) -> Any:
    """[1, SIZE, SIZE, 3] uint8 -> [1, 28, 28, 1] float in [0, 1], as preprocess.to_mnist."""
    import tensorflow as tf

    n = SIZE * SIZE
    pixels = tf.reshape(tf.cast(rgb, tf.float32), [n, 3])
    red, green, blue = tf.split(tf.transpose(pixels), 3, axis=0)  # channels as rows: whole-vector arithmetic
    flat = tf.reshape(red * 0.299 + green * 0.587 + blue * 0.114, [n])  # Pillow's "L"
    # The paper is the median block; the ink is the side whose extreme block lies further from it
    # (preprocess.py takes the extremes of 3x3 means; both keep one odd pixel from deciding).
    blocks = _blocks(flat)
    median, low, high = _median(blocks), tf.reduce_min(blocks), tf.reduce_max(blocks)
    # The ink is darker than the paper (high - median < median - low): sign -1, else +1.
    sign = _sign(high + low - 2.0 * median)
    ink = _without_shading(flat, blocks, median, sign)  # the ink's side up: its strongest is the largest
    paper = 0.0  # the plane taken out was the paper's level
    strongest = _fifth_strongest(ink)
    # (ink - paper) / contrast, clipped to [0, 1]: ink * a + b, two scalars, one pass over the image.
    # Kept as 6x (RELU6, which the converter fuses into the addition); so is the mask (ink > INK).
    contrast = tf.maximum(strongest - paper, MIN_CONTRAST)
    a = 6.0 / contrast
    ink6 = tf.nn.relu6(ink * a - paper * a)
    mask6 = tf.nn.relu6(ink * (a * SHARP) - (paper * a + 6.0 * INK) * SHARP)
    ink = tf.reshape(ink6 * _grow(mask6), [1, SIZE, SIZE])  # the ink a pixel around the mask is kept: 36x

    # The box: the first and last row and column with ink, rows and columns together.
    mask = tf.reshape(mask6, [SIZE, SIZE])
    lines = tf.reshape(tf.concat([tf.reduce_max(mask, axis=1), tf.reduce_max(mask, axis=0)], axis=0), [2, 1, SIZE])
    index = np.arange(SIZE, dtype=np.float32) / 6.0
    ends = tf.reduce_max(lines * tf.constant(np.stack([index, (SIZE - 1.0) / 6.0 - index])[None]), axis=2,
                         keepdims=True)
    last, first = tf.split(ends, 2, axis=1)  # [2, 1, 1] each
    first = SIZE - 1.0 - first
    length = tf.maximum(last - first + 1.0, 1.0)
    out = tf.maximum(tf.round(length * (BOX / tf.reduce_max(length))), 1.0)
    rows, columns = tf.split(_resample_matrices(first, length, out, 1.0 / 6.0), 2, axis=0)
    digit = tf.matmul(tf.matmul(rows, ink), columns, transpose_b=True)
    digit = tf.clip_by_value(digit, 0.0, 1.0)  # [1, BOX, BOX]

    total = tf.maximum(tf.reduce_sum(digit), 1e-6)
    profiles = tf.concat([tf.reduce_sum(digit, axis=2), tf.reduce_sum(digit, axis=1)], axis=0)  # [2, BOX]
    centre = tf.reduce_sum(profiles * tf.constant(np.arange(BOX, dtype=np.float32)), axis=1) / total
    shift = tf.clip_by_value(tf.round(FRAME / 2 - tf.reshape(centre, [2, 1, 1])), 0.0, FRAME - out)
    rows, columns = tf.split(_placements(shift, np.sqrt(255.0)), 2, axis=0)
    frame = tf.matmul(tf.matmul(rows, digit), columns, transpose_b=True)
    return tf.reshape(tf.round(frame) * (1.0 / 255.0), [1, FRAME, FRAME, 1])


def classifier(network: Any, kind: str) -> tuple[Callable[[Any], dict], Any]:
    """(function, input spec) for a no_digit_graph.Network. kind "camera": SIZE x SIZE RGB uint8
    through the preprocessing; "rgb28": 28x28x3 uint8 already MNIST-style (white digit on black),
    its grey fed to the CNN. With a head, one more output: digit_check [1, 2] = [no digit, digit]."""
    import tensorflow as tf

    size = SIZE if kind == "camera" else FRAME
    graph = network.build()

    def classify(image: Any) -> dict:
        if kind == "camera":
            digit = preprocess_graph(image)
        else:
            weights = tf.constant([0.299, 0.587, 0.114])
            digit = tf.reduce_sum(tf.cast(image, tf.float32) * weights, axis=-1, keepdims=True) / 255.0
        return network.signature(graph, digit, serving=False)

    classify.network = graph  # what export must track: every variable used
    return classify, tf.TensorSpec([1, size, size, 3], tf.uint8, name="image")


def convert(network: Any, kind: str) -> bytes:
    """TFLite bytes, builtin ops only, int8 weights (the preprocessing's arithmetic stays float)."""
    import tempfile

    import keras
    import tensorflow as tf

    function, spec = classifier(network, kind)
    archive = keras.export.ExportArchive()  # as formats.write_saved_model: it captures Keras 3's variables
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
