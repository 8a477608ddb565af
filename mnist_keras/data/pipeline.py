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


def train_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                  first_epoch: int = 0) -> tf.data.Dataset:
    """An endless stream of epochs, each a fresh shuffle of all examples, batched.

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
    return batches.map(scale, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def eval_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """All examples once, in order."""
    return (tf.data.Dataset.from_tensor_slices((images, labels)).cache()
            .batch(batch_size)
            .map(scale, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))
