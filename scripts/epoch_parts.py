"""Where an epoch's time goes: the input pipeline, the forward pass, the backward pass, Adam.

    python scripts/epoch_parts.py               # ~1.5 minutes
    python scripts/epoch_parts.py --quick       # seconds: every row, tiny setting

Each part is one tf.function looping over --steps batches of the real training stream,
with the project's model, precision (--precision, as in training) and optimizer. The
parts alternate, round after round, in one process, so a stall of the machine hits them
all alike; printed are medians over --rounds, scaled to one epoch of 938 batches. The
Adam rows apply fixed gradients, fused (what training runs) and as Keras' own ops.
For oneDNN's own time per kernel, run a training with ONEDNN_VERBOSE=1 (README, Speed).
"""

from __future__ import annotations

import os
import time

import numpy as np
from absl import app, flags, logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up notices
FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 12, "Rounds; each runs every part once.", lower_bound=1)
flags.DEFINE_integer("steps", 100, "Batches per part per round.", lower_bound=1)
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_bfloat16"], "As training's --precision.")
flags.DEFINE_bool("quick", False, "A tiny setting that still prints every row (for tests).")

STEPS_PER_EPOCH = -(-60_000 // 64)  # 938: batches of 64 over all 60,000 datasets.load() training images


def build(keras, precision: str, fused_adam: bool = True):
    from mnist_keras.training import model as model_lib

    keras.utils.set_random_seed(0)
    model = model_lib.build_model(precision)
    model_lib.compile_model(model, model_lib.learning_rate(1e-3, "cosine", 5 * STEPS_PER_EPOCH),
                            jit_compile=False, fused_adam=fused_adam)
    model.optimizer.build(model.trainable_variables)
    return model


def parts(tf, keras, precision: str) -> dict:
    """name -> a tf.function(iterator, n) running n steps of that part."""
    from mnist_keras.training import loop

    model = build(keras, precision)

    def over_batches(work):
        """n batches from the stream through work(images, labels), its results summed."""
        @tf.function
        def run(iterator, n):
            total = tf.zeros([])
            for _ in tf.range(n):
                total += work(*next(iterator))
            return total
        return run

    def gradients(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        return tf.add_n([tf.cast(tf.reduce_sum(g), tf.float32)
                         for g in tape.gradient(loss, model.trainable_variables)])

    def adam_alone(fused: bool):
        owner = build(keras, precision, fused)
        grads = [tf.fill(v.shape, 1e-3) for v in owner.trainable_variables]

        @tf.function
        def update(iterator, n):
            del iterator  # fixed gradients: the update alone
            for _ in tf.range(n):
                owner.optimizer.apply_gradients(zip(grads, owner.trainable_variables))
            return owner.optimizer.iterations
        return update

    whole = loop.make_train_steps(tf.distribute.get_strategy(), build(keras, precision), False)
    return {
        "input pipeline alone (next batch)": over_batches(lambda images, _: tf.cast(images[0, 0, 0, 0], tf.float32)),
        "forward pass": over_batches(lambda images, _: tf.reduce_sum(model(images, training=True))),
        "forward and backward passes (gradients)": over_batches(gradients),
        "Adam update alone, fused (one kernel per variable)": adam_alone(True),
        "Adam update alone, Keras' ops": adam_alone(False),
        "whole training step (what an epoch runs)": whole,
    }


def main(argv: list[str]) -> None:
    del argv  # unused
    logging.set_verbosity(logging.WARNING)
    rounds, steps = (2, 5) if FLAGS.quick else (FLAGS.rounds, FLAGS.steps)
    import keras
    import tensorflow as tf

    from mnist_keras.data import datasets, pipeline
    from mnist_keras.training.precision import choose_precision

    precision, why = choose_precision(FLAGS.precision, bool(tf.config.list_physical_devices("GPU")))
    mnist = datasets.load()
    runs = parts(tf, keras, precision)
    iterators = {name: iter(pipeline.train_dataset(mnist.x_train, mnist.y_train, 64, 0)) for name in runs}
    for name, run in runs.items():  # traced and warmed before any timing
        run(iterators[name], tf.constant(steps))
    seconds = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            float(np.sum(run(iterators[name], tf.constant(steps))))
            scale = STEPS_PER_EPOCH / steps
            seconds[name].append(((time.perf_counter() - wall) * scale, (time.process_time() - cpu) * scale))
    print(f"{os.cpu_count()} CPU cores, {precision} ({why}); batch 64; medians of {rounds} rounds "
          f"of {steps} steps, scaled to an epoch of {STEPS_PER_EPOCH} steps")
    width = max(len(name) for name in runs)
    for name, values in seconds.items():
        wall, cpu = np.median(np.array(values), axis=0)
        print(f"{name.ljust(width)}  {wall:6.2f} s wall  {cpu:6.2f} CPU-s")


if __name__ == "__main__":
    app.run(main)
