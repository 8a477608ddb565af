"""Checks exported models against the Keras model they came from, on the whole test set.

    mnist-verify export/mnist_int8.tflite saved_models/mnist/1 \
        [--model saved_models/mnist.keras] [--max_drop 0.3] [--trust_model]

Each artifact runs through its own runtime (a SavedModel through its serving signature,
a .tflite through LiteRT), so what is measured is what a server or a phone will compute.
Float artifacts must match the Keras model's accuracy within 0.05 points; quantized ones
may lose at most --max_drop points. `mnist-export` runs the same checks
before it keeps a file. From Python: verify_artifacts(model_path, paths, dataset) -> [Result].

A SavedModel from someone else is a program: before any of it runs, its graph is scanned, and
one with ops that reach files, the network or other processes (WriteFile, ReadFile, PyFunc, ...;
inference/saved_model_scan.py) is refused in one line naming the op, unless --trust_model.
"""

from __future__ import annotations

import math
import sys

from absl import flags

from mnist_keras import cli
from mnist_keras.errors import InputError, printable
from mnist_keras.exporting.verify import (
    DEFAULT_MAX_DROP,
    FLOAT_TOLERANCE,
    check_artifacts,
    failure_message,
    format_table,
    verify_artifacts,
)

FLAGS = flags.FLAGS


def define_max_drop_flag() -> None:
    """--max_drop, for export and verify alike; NaN would pass absl's bounds and every bar fail."""
    flags.DEFINE_float("max_drop", DEFAULT_MAX_DROP,
                       "Accuracy points a quantized artifact may lose against the Keras model "
                       f"(float ones must stay within {FLOAT_TOLERANCE}).", lower_bound=0)
    flags.register_validator("max_drop", math.isfinite, message="must be a finite number")


def main(argv: list[str]) -> None:
    check_artifacts(FLAGS.model, argv[1:], FLAGS.trust_model)  # a hostile SavedModel: refused here, unrun
    from mnist_keras.data import datasets as data

    dataset = data.take(data.load(FLAGS.data_dir, FLAGS.tfds), test_examples=FLAGS.test_examples)
    with cli.Progress(sys.stderr) as progress:  # stdout holds the table alone
        results = verify_artifacts(FLAGS.model, argv[1:], dataset, FLAGS.max_drop, FLAGS.trust_model, progress)
    print(f"On {len(dataset.y_test)} test images of {printable(dataset.source)}:")
    print(format_table(results))
    failed = [r for r in results if r.passed is False]
    if failed:
        raise InputError("; ".join(failure_message(r, results[0]) for r in failed))


def define_flags() -> None:
    cli.define_model_flags("The Keras model the artifacts came from.")
    define_max_drop_flag()
    cli.define_trust_flag()


def cli_main() -> None:
    cli.run(main, define_flags)


if __name__ == "__main__":
    cli_main()
