"""Test accuracy, per-class precision and recall, and the confusion matrix of a model.

    mnist-evaluate --model saved_models/mnist.keras [--json metrics.json]

From Python: evaluate_file(model_path, dataset) -> dict, or evaluate(model, images, labels).
"""

from __future__ import annotations

import json
import sys

from absl import flags

from mnist_keras import cli
from mnist_keras.errors import printable
from mnist_keras.files import write_atomic
from mnist_keras.inference.evaluate import evaluate_file, format_report
from mnist_keras.training.keras_file import check_keras_file

FLAGS = flags.FLAGS


def define_flags() -> None:
    cli.define_model_flags("The .keras model file to evaluate.")
    flags.DEFINE_string("json", None, "Also write the metrics to this JSON file.")
    flags.DEFINE_integer("negatives", 1000, "Held-out non-digits of each kind the no-digit decision is measured "
                         "on (0: none), when the model has its head beside it.", lower_bound=0)


def main(argv: list[str]) -> None:
    del argv  # unused
    model_path = check_keras_file(FLAGS.model)
    if FLAGS.json:
        cli.check_writable_parent(FLAGS.json)
    from mnist_keras.data import datasets as data

    dataset = data.take(data.load(FLAGS.data_dir, FLAGS.tfds), test_examples=FLAGS.test_examples)
    with cli.Progress(sys.stderr) as progress:  # stdout holds the figures alone
        result = evaluate_file(model_path, dataset, FLAGS.negatives, progress)
    print(format_report(result))
    if FLAGS.json:
        write_atomic(FLAGS.json, json.dumps(result, indent=2) + "\n")
        print(f"\nWrote {printable(FLAGS.json)}")


def cli_main() -> None:
    cli.run(main, define_flags)


if __name__ == "__main__":
    cli_main()
