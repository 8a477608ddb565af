"""Reads the digit in each image file: photos, scans, drawings, any size or colour.

    mnist-predict digit.png [more.jpg ...] [--top_k 3] [--json]
        [--model export/mnist_int8.tflite | model.keras | saved_models/mnist/1] [--trust_model]

Each image is made MNIST-style first (preprocess.py). The default model is the exported
full-integer .tflite, run by LiteRT without importing TensorFlow, so the command starts
in a fraction of a second. A file that cannot be read is reported on one line, the
others are still read, and the exit status is 1 if any failed. File names are printed with
control characters escaped (errors.printable). A SavedModel folder is scanned before it runs
(inference/saved_model_scan.py) unless --trust_model.
"""

from __future__ import annotations

import json
import sys

from absl import flags

from mnist_keras import cli
from mnist_keras.errors import InputError, printable
from mnist_keras.inference.predict import DEFAULT_MODEL, format_record, open_model, predict_files

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    paths = argv[1:]
    if not paths:
        raise InputError("name at least one image file: mnist-predict digit.png")
    records = predict_files(paths, open_model(FLAGS.model, FLAGS.trust_model), FLAGS.top_k)
    for record in records:
        if "error" in record:
            print(f"error: {printable(record['error'])}", file=sys.stderr)
        elif not FLAGS.json:
            print(format_record(record))
    if FLAGS.json:
        print(json.dumps({"model": FLAGS.model, "predictions": records}, indent=2))
    if any("error" in r for r in records):
        sys.exit(1)


def define_flags() -> None:
    flags.DEFINE_string("model", DEFAULT_MODEL,
                        "A .tflite file (LiteRT, fast start), a .keras file or a SavedModel folder.")
    flags.DEFINE_integer("top_k", 1, "Show the k most likely digits.", lower_bound=1, upper_bound=10)
    flags.DEFINE_bool("json", False, "Print JSON: per file, the digit (null: no digit), its probability, the top k, "
                      "digit_score and no_digit.")
    cli.define_trust_flag()


def cli_main() -> None:
    cli.run(main, define_flags)


if __name__ == "__main__":
    cli_main()
