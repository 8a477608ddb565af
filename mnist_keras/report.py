"""What the network learned, as pictures: an HTML report beside the model.

    mnist-report [--model saved_models/mnist.keras]     (or python -m mnist_keras.report)

Writes <model folder>/<model name>_report/ (e.g. saved_models/mnist_report/) holding
report.html, the PNGs it shows and report.json (the numbers behind them), and prints the
path of report.html. It opens offline: the images sit beside it.

- training curves: average loss and accuracy per epoch, training against validation
  (history.json; older runs measured each epoch on the test set, and are labelled so)
- the confusion matrix over the test set, and per-class precision and recall
- the most confident mistakes
- the 32 first-layer kernels, and the feature maps of one digit after each conv stage
- the 128-dimensional features of the test set projected to 2-D (PCA), by digit
- the export table, if mnist-export has run, and a link to export's explain page (every layer live)

From Python: mnist_keras.reporting.page.write_report(model_path, dataset) -> the path of report.html.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from absl import flags

from mnist_keras import cli
from mnist_keras.errors import InputError
from mnist_keras.reporting.page import history_for, write_report
from mnist_keras.training.keras_file import check_keras_file

FLAGS = flags.FLAGS


def define_flags() -> None:
    cli.define_model_flags("The trained .keras model to report on.")
    flags.DEFINE_string("export_json", "export/export.json",
                        "The export table to include, if it describes this model.")
    flags.DEFINE_integer("feature_map_index", 0, "Which test image the feature maps show: its index in the "
                         "test set (0: the first).", lower_bound=0)


def training_data(model_path: str | Path) -> tuple[str | None, str | None]:
    """(data_dir, tfds name) the model was trained on, from its run's history; (None, None) if unknown."""
    history, _ = history_for(Path(model_path))
    if not history:
        return None, None
    return history["settings"].get("data_dir"), history["settings"].get("tfds")


def main(argv: list[str]) -> None:
    del argv  # unused
    from mnist_keras.data import datasets as data

    model_path = check_keras_file(FLAGS.model)
    if not os.access(model_path.parent, os.W_OK | os.X_OK):
        raise InputError(f"{model_path.parent}: folder is not writable; the report goes beside the model")
    if FLAGS["export_json"].present and not Path(FLAGS.export_json).is_file():
        raise InputError(f"--export_json={FLAGS.export_json}: no such file")
    data_dir, tfds_name = FLAGS.data_dir, FLAGS.tfds
    if not (data_dir or tfds_name):  # the data the model was trained on, if its history says
        data_dir, tfds_name = training_data(model_path)
    dataset = data.take(data.load(data_dir, tfds_name), test_examples=FLAGS.test_examples)
    with cli.Progress(sys.stderr) as progress:  # stdout holds the report's path alone
        path = write_report(model_path, dataset, FLAGS.export_json, FLAGS.feature_map_index, progress)
    print(path)


def cli_main() -> None:
    cli.run(main, define_flags)


if __name__ == "__main__":
    cli_main()
