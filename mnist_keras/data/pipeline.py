"""tf.data input pipelines: uint8 arrays in, float32 [0, 1] batches out."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Batches per epoch, the last one partial: 938 for 60,000 images at 64."""
    return math.ceil(num_examples / batch_size)


def scale(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 [0, 255] (B, 28, 28) -> float32 [0, 1] (B, 28, 28, 1); per batch, so it is cheap."""
    return tf.cast(images, tf.float32)[..., tf.newaxis] / 255.0, tf.cast(labels, tf.int32)


# How far reshape() turns (radians), shears and zooms a digit at most.
TURN, SHEAR, ZOOM = 0.35, 0.3, 0.2


def reshape(images: tf.Tensor, share: float, seed: tf.Tensor) -> tf.Tensor:
    """About `share` of a batch's [B, 28, 28, 1] images turned, sheared and zoomed about their centre,
    in one projective transform per image (the rest get the identity): digits in more hands than
    MNIST's. Stateless randomness from `seed` ([2] int64), so a resumed run sees the same batches."""
    count = tf.shape(images)[0]
    draws = tf.random.stateless_uniform([5, count], seed, minval=-1.0, maxval=1.0)
    chosen = tf.cast(draws[0] * 0.5 + 0.5 < share, tf.float32)
    angle, shear = chosen * TURN * draws[1], chosen * SHEAR * draws[2]
    zoom_x, zoom_y = 1 + chosen * ZOOM * draws[3], 1 + chosen * ZOOM * draws[4]
    # Output pixel (x, y) reads input M @ ((x, y) - c) + c: M = rotation @ shear / zoom.
    cos, sin = tf.cos(angle), tf.sin(angle)
    m00, m01 = cos / zoom_x, (cos * shear - sin) / zoom_y
    m10, m11 = sin / zoom_x, (sin * shear + cos) / zoom_y
    centre = 13.5
    transforms = tf.stack([m00, m01, centre - centre * (m00 + m01), m10, m11, centre - centre * (m10 + m11),
                           tf.zeros_like(m00), tf.zeros_like(m00)], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


def train_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                  first_epoch: int = 0, reshape_share: float = 0.0) -> tf.data.Dataset:
    """An endless stream of epochs, each a fresh shuffle of all examples, batched; with
    reshape_share, that share of each batch reshaped afresh (reshape()).

    The orders depend only on `seed`, so a run resumed at epoch k skips the batches of
    epochs 0..k-1 (unscaled, cheap) and then sees exactly what an uninterrupted run
    would have; the training loop takes steps_per_epoch batches from it per epoch.
    """
    batches = (tf.data.Dataset.from_tensor_slices((images, labels))
               .cache()
               .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
               .batch(batch_size)
               .repeat())
    if first_epoch:
        batches = batches.skip(first_epoch * steps_per_epoch(len(images), batch_size))
    scaled = batches.map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    if reshape_share:
        first = first_epoch * steps_per_epoch(len(images), batch_size)
        scaled = scaled.enumerate(start=first).map(
            lambda step, batch: (reshape(batch[0], reshape_share, tf.stack([tf.cast(seed, tf.int64), step])),
                                 batch[1]), num_parallel_calls=tf.data.AUTOTUNE)
    return scaled.prefetch(tf.data.AUTOTUNE)


def eval_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """All examples once, in order."""
    return (tf.data.Dataset.from_tensor_slices((images, labels)).cache()
            .batch(batch_size)
            .map(scale, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))
