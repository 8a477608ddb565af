"""Fits the "no digit" head beside a trained model: the digit score every reader decides by.

    mnist-no-digit [--model saved_models/mnist.keras] [--max_refused 0.25]
    (or python -m mnist_keras.no_digit)

Writes <model>.no_digit.keras (the head) and <model>.no_digit.json (its threshold, chosen on
validation data, and what it was fitted on); export fits one itself when none is there, and
uses this one when it is there. --max_refused trades digits refused for non-digits refused
(docs/no_digit.md#measured: what refusing 95% of each kind would cost).
"""

from __future__ import annotations

import math

from absl import flags

from mnist_keras import cli
from mnist_keras.data import datasets
from mnist_keras.files import sha256_file
from mnist_keras.inference.no_digit import SCORE, TARGET_REJECTED, save_head
from mnist_keras.inference.no_digit_fit import FitSettings, fit_head
from mnist_keras.training.keras_file import check_keras_file, load_keras

FLAGS = flags.FLAGS


def define_flags() -> None:
    cli.define_model_flags("The trained .keras model; the head goes beside it.")
    flags.DEFINE_integer("validation_examples", 5000, "The last N training images (held out by training) on "
                         "which the threshold is chosen.", lower_bound=100)
    flags.DEFINE_float("max_refused", 100 * TARGET_REJECTED, "The threshold refuses at most this % of the "
                       "MNIST-style validation digits (twice as many of the typed and drawn ones): higher refuses "
                       "more non-digits and more real digits (docs/no_digit.md#measured).",
                       lower_bound=0.01, upper_bound=10)
    flags.register_validator("max_refused", math.isfinite, message="must be a finite number")


def main(argv: list[str]) -> None:
    del argv  # unused
    model_path = check_keras_file(FLAGS.model)
    dataset = datasets.load(FLAGS.data_dir, FLAGS.tfds)
    model = load_keras(model_path)
    with cli.Progress() as progress:
        progress(f"Fitting the no-digit head of {model_path}: digits of {dataset.source} and of other styles "
                 "against every kind of non-digit (docs/no_digit.md)")
        settings = FitSettings(validation_examples=FLAGS.validation_examples, target=FLAGS.max_refused / 100)
        head = fit_head(model, dataset.x_train, sha256_file(model_path), settings, progress)
    paths = save_head(head, model_path)
    print(f"Threshold {head.threshold:.4f} on the digit score (chosen on validation data; folded in: "
          f"the decision is {SCORE} >= 0.5). Rejected on validation: {head.fitted['validation_rejected']}")
    print(f"Wrote {paths[0]} and {paths[1]}")


def cli_main() -> None:
    cli.run(main, define_flags)


if __name__ == "__main__":
    cli_main()
