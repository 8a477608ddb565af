"""The tf.data pipeline: batch count, dtype, range, a new order each epoch, resumable."""

from __future__ import annotations

import keras
import numpy as np

from mnist_keras.data import datasets, pipeline


def epochs_of_labels(x, y, batch_size, seed, epochs, first_epoch=0):
    """The label sequence of each epoch, read off the real pipeline."""
    keras.utils.set_random_seed(seed)
    steps = pipeline.steps_per_epoch(len(x), batch_size)
    stream = iter(pipeline.train_dataset(x, y, batch_size, seed, first_epoch))
    return [np.concatenate([next(stream)[1].numpy() for _ in range(steps)]) for _ in range(epochs)]


def test_full_epoch_has_938_batches_of_scaled_float32(mnist):
    steps = pipeline.steps_per_epoch(len(mnist.x_train), 64)
    assert steps == 938
    stream = iter(pipeline.train_dataset(mnist.x_train, mnist.y_train, 64, seed=0))
    batches = [next(stream) for _ in range(steps)]
    sizes = [len(labels) for _, labels in batches]
    assert sizes[:-1] == [64] * 937 and sizes[-1] == 60000 - 937 * 64
    images, labels = batches[0]
    assert images.dtype == "float32" and images.shape == (64, 28, 28, 1)
    assert labels.dtype == "int32"
    pixels = np.concatenate([b[0].numpy().ravel() for b in batches[:50]])
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    # Every training label exactly once per epoch: a shuffle, not a sample.
    seen = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(np.bincount(seen), np.bincount(mnist.y_train))


def test_each_epoch_has_a_new_order_and_a_seed_fixes_them(mnist):
    x, y = mnist.x_train[:250], np.arange(250, dtype=np.uint8)  # labels = ids, to see the order
    first, second, third = epochs_of_labels(x, y, 64, seed=3, epochs=3)
    assert sorted(first.tolist()) == sorted(second.tolist()) == sorted(y.tolist())
    assert not np.array_equal(first, second) and not np.array_equal(second, third)
    again = epochs_of_labels(x, y, 64, seed=3, epochs=3)
    for ours, theirs in zip((first, second, third), again):
        np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(first, epochs_of_labels(x, y, 64, seed=4, epochs=1)[0])


def test_resumed_stream_continues_where_the_uninterrupted_one_is(mnist):
    x, y = mnist.x_train[:500], mnist.y_train[:500]
    whole = epochs_of_labels(x, y, 64, seed=7, epochs=3)
    resumed = epochs_of_labels(x, y, 64, seed=7, epochs=2, first_epoch=1)
    np.testing.assert_array_equal(whole[1], resumed[0])
    np.testing.assert_array_equal(whole[2], resumed[1])


def test_eval_dataset_keeps_order_and_all_examples(mnist):
    batches = list(pipeline.eval_dataset(mnist.x_test[:250], mnist.y_test[:250], 100))
    assert [len(b[1]) for b in batches] == [100, 100, 50]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), mnist.y_test[:250])
    np.testing.assert_allclose(batches[0][0][3], datasets.scale_images(mnist.x_test[3:4])[0], rtol=1e-6)


def test_scale_images_is_what_the_pipeline_feeds(mnist):
    """The one numpy scaling for callers outside tf.data: same shape, dtype and values as a batch."""
    scaled = datasets.scale_images(mnist.x_test[:100])
    assert scaled.shape == (100, 28, 28, 1) and scaled.dtype == np.float32
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    images, _ = next(iter(pipeline.eval_dataset(mnist.x_test[:100], mnist.y_test[:100], 100)))
    np.testing.assert_array_equal(images.numpy(), scaled)


def test_reshape_turns_the_chosen_share_and_a_resumed_run_sees_the_same(mnist):
    x, y = mnist.x_train[:512], mnist.y_train[:512]
    plain = next(iter(pipeline.train_dataset(x, y, 256, seed=5)))
    every = next(iter(pipeline.train_dataset(x, y, 256, seed=5, reshape_share=1.0)))
    half = next(iter(pipeline.train_dataset(x, y, 256, seed=5, reshape_share=0.5)))
    np.testing.assert_array_equal(every[1], plain[1])  # the same digits, in the same order
    changed = [np.abs(b[0].numpy() - plain[0].numpy()).reshape(256, -1).max(axis=1) > 0.1 for b in (every, half)]
    assert changed[0].mean() > 0.95 and 0.3 < changed[1].mean() < 0.7
    ink = [b[0].numpy().reshape(256, -1).sum(axis=1) for b in (plain, every)]
    assert np.all((ink[1] > 0.5 * ink[0]) & (ink[1] < 1.6 * ink[0]))  # turned and zoomed, still whole
    whole = list(pipeline.train_dataset(x, y, 64, seed=5, reshape_share=0.5).take(12))
    resumed = list(pipeline.train_dataset(x, y, 64, seed=5, first_epoch=1, reshape_share=0.5).take(4))
    for ours, theirs in zip(whole[8:], resumed):
        np.testing.assert_array_equal(ours[0], theirs[0])
