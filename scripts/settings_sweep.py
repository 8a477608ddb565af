"""Do the other speed settings pay here? Steps per call, the input pipeline's layout, threads.

    python scripts/settings_sweep.py                # ~2 minutes on 2 quiet cores
    python scripts/settings_sweep.py --quick        # seconds: every row, tiny setting

Each candidate runs real training steps of this model (the training loop's step, fused
Adam, the precision --precision=auto would choose), the candidates alternating round after
round in one process, so that a stall hits them alike; printed are the medians per step,
CPU time and wall, scaled to an epoch of 938 steps. Threads can only be set before
TensorFlow starts, so each thread setting is a child process (TF_NUM_INTRAOP_THREADS and
TF_NUM_INTEROP_THREADS), the children alternating, one timed call each per round.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
from absl import app, flags, logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up notices
FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 9, "Interleaved rounds; medians are printed.", lower_bound=1)
flags.DEFINE_integer("steps", 50, "Training steps per timed call (the training loop runs 50).", lower_bound=1)
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_bfloat16"], "As training's --precision.")
flags.DEFINE_list("threads", ["0:0", "1:0", "0:1"],
                  "intra:inter-op thread settings to compare (0: TensorFlow's default); empty: none.")
flags.DEFINE_bool("quick", False, "A tiny setting that still prints every row (for tests).")
flags.DEFINE_bool("child", False, "(internal) time the plain step and print JSON: one thread setting.")

STEPS_PER_EPOCH = -(-60_000 // 64)  # 938: batches of 64 over all 60,000 datasets.load() training images
BATCH = 64


def setup(tf, keras, precision: str):
    """The model, compiled as training does, and its real training step."""
    from mnist_keras.training import model as model_lib
    from mnist_keras.training.loop import make_train_steps

    keras.utils.set_random_seed(0)
    model = model_lib.build_model(precision)
    model_lib.compile_model(model, 1e-3, jit_compile=False)
    model.optimizer.build(model.trainable_variables)
    return make_train_steps(tf.distribute.get_strategy(), model, jit=False)


def permutation_stream(tf, images: np.ndarray, labels: np.ndarray, batch: int, seed: int):
    """The other layout: per epoch a permutation of indices, batches gathered from arrays in memory."""
    from mnist_keras.data import pipeline

    images_t, labels_t = tf.constant(images), tf.constant(labels)
    count = len(images)

    def epoch(e):
        order = tf.random.experimental.stateless_shuffle(tf.range(count), seed=tf.stack([seed, tf.cast(e, tf.int32)]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch)

    return (tf.data.Dataset.range(1 << 30).flat_map(epoch)
            .map(lambda idx: pipeline.scale(tf.gather(images_t, idx), tf.gather(labels_t, idx)),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def per_epoch(figures: dict, name: str) -> str:
    f = figures[name]
    return f"{f['wall'] * STEPS_PER_EPOCH:.2f} s wall  {f['cpu'] * STEPS_PER_EPOCH:.2f} CPU-s"


def child_figures(steps: int, rounds: int, precision: str) -> list[tuple[float, float]]:
    """(CPU, wall) seconds per step of `rounds` calls of the plain step, in this process."""
    import keras
    import tensorflow as tf

    from mnist_keras.data import datasets, pipeline

    mnist = datasets.load()
    train_steps = setup(tf, keras, precision)
    iterator = iter(pipeline.train_dataset(mnist.x_train, mnist.y_train, BATCH, 0))
    train_steps(iterator, tf.constant(steps)).numpy()
    times = []
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        train_steps(iterator, tf.constant(steps)).numpy()
        times.append(((time.process_time() - cpu) / steps, (time.perf_counter() - wall) / steps))
    return times


def threads_rows(settings: list[str], steps: int, rounds: int, precision: str) -> list[str]:
    """One child per setting per round (a call each after its warm-up), the children alternating."""
    times: dict[str, list] = {s: [] for s in settings}
    for _ in range(rounds):
        for setting in settings:
            intra, inter = setting.split(":")
            env = dict(os.environ, TF_NUM_INTRAOP_THREADS=intra, TF_NUM_INTEROP_THREADS=inter)
            result = subprocess.run([sys.executable, __file__, "--child", f"--steps={steps}", "--rounds=1",
                                     f"--precision={precision}"], capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise SystemExit(f"child {setting} failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
            times[setting] += json.loads(result.stdout.strip().splitlines()[-1])
    rows = []
    for setting, ts in times.items():
        intra, inter = setting.split(":")
        name = (f"threads intra-op {intra if intra != '0' else 'default'}, "
                f"inter-op {inter if inter != '0' else 'default'}")
        cpu, wall = float(np.median([t[0] for t in ts])), float(np.median([t[1] for t in ts]))
        rows.append(f"{name:<58}{wall * STEPS_PER_EPOCH:.2f} s wall  {cpu * STEPS_PER_EPOCH:.2f} CPU-s")
    return rows


def main(argv: list[str]) -> None:
    del argv  # unused
    logging.set_verbosity(logging.WARNING)
    rounds, steps = (2, 4) if FLAGS.quick else (FLAGS.rounds, FLAGS.steps)
    import tensorflow as tf

    precision = FLAGS.precision
    if FLAGS.child:  # the parent chose the precision
        print(json.dumps(child_figures(steps, rounds, precision)))
        return
    import keras

    from mnist_keras.data import datasets, pipeline
    from mnist_keras.training import autotune
    from mnist_keras.training.precision import choose_precision

    precision, why = choose_precision(precision, bool(tf.config.list_physical_devices("GPU")),
                                      autotune.Measuring(batch_size=BATCH))
    mnist = datasets.load()
    print(f"{autotune.cpu_description()['cpu']}, {os.cpu_count()} CPU cores; {precision} ({why}); batch {BATCH}; "
          f"medians of {rounds} interleaved rounds, scaled to {STEPS_PER_EPOCH} steps")
    train_steps = setup(tf, keras, precision)
    stream = iter(pipeline.train_dataset(mnist.x_train, mnist.y_train, BATCH, 0))
    gathered = iter(permutation_stream(tf, mnist.x_train, mnist.y_train, BATCH, 0))
    calls = {10: 10, 50: 50, 200: 200} if not FLAGS.quick else {2: 2, 4: 4}
    runs = {f"steps per call {n}": (lambda n=n: train_steps(stream, tf.constant(n)).numpy()) for n in calls}
    runs[f"pipeline: permutation gather, {steps} per call"] = lambda: train_steps(gathered, tf.constant(steps)).numpy()
    per_call = {**{f"steps per call {n}": n for n in calls}, f"pipeline: permutation gather, {steps} per call": steps}
    runs[f"pipeline: shuffled stream (training's), {steps} per call"] = (
        lambda: train_steps(stream, tf.constant(steps)).numpy())
    per_call[f"pipeline: shuffled stream (training's), {steps} per call"] = steps
    for run in runs.values():  # traced and warmed before any timing
        run()
    figures = autotune.interleaved(runs, rounds=rounds, per_call=per_call)
    for name in runs:
        print(f"{name:<58}{per_epoch(figures, name)}")
    if FLAGS.threads:
        for row in threads_rows(FLAGS.threads, steps, 1 if FLAGS.quick else rounds, precision):
            print(row)


if __name__ == "__main__":
    app.run(main)
