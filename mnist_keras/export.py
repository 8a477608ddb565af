"""Exports the trained model for TF Serving, for phones and for the browser, and verifies every file.

    mnist-export [--model saved_models/mnist.keras] [--formats ...]

Writes
  saved_models/mnist/<version>/    SavedModel for TF Serving, a new version each export, with
                                   warmup requests (assets.extra/tf_serving_warmup_requests)
  saved_models/mnist/*.config      TF Serving's models, batching and monitoring configs;
  saved_models/mnist/compose.yaml  and a compose file that runs TF Serving on them
  export/mnist_float32.tflite      float32
  export/mnist_float16.tflite      float16 weights (half the size, float32 arithmetic)
  export/mnist_dynamic_int8.tflite int8 weights, float activations
  export/mnist_int8.tflite         int8 weights and activations, uint8 input and output
                                   (these four take 28x28x1 MNIST images; each carries standard
                                   TFLite metadata: name, normalization, labels)
  export/mnist_camera.tflite       camera crops (RGB uint8), MNIST preprocessing in the graph
  export/mnist_rgb.tflite          28x28 RGB uint8 already MNIST-style (both verified through
                                   MediaPipe's ImageClassifier, with metadata)
  export/<model>.json              input/output spec, accuracy, size, SHA-256 of each
  export/labels.txt, export/export.json (the table below, as JSON)
  export/web/                      the drawing page running one of these .tflite files (LiteRT.js)
and prints a table of each artifact's size, test accuracy against the Keras model, and time
per image. Every artifact is first written under a temporary name, evaluated on the test
set through its own runtime, and renamed only if it meets its bar (see verify.py); one that
misses it, or whose metadata or runtime check fails, is not kept and the command ends with
one error line. A second export into the same folders meanwhile fails at once, in one line naming
the lock file and the export holding it; the next export removes what a killed one left.

From Python: mnist_keras.exporting.steps.export_model(...), which runs the steps.
"""

from __future__ import annotations

from absl import flags

from mnist_keras import cli, verify, web_export
from mnist_keras.errors import InputError
from mnist_keras.exporting.folders import export_lock
from mnist_keras.exporting.steps import FORMATS, ExportOptions, check_outputs, export_model

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv  # unused
    # Before the data loads: bad input, and another export writing in the same folders.
    _, serving, tflite_dir, _ = check_outputs(FLAGS.model, FLAGS.serving_dir, FLAGS.export_dir, FLAGS.formats)
    with export_lock(filter(None, [serving, tflite_dir])):
        from mnist_keras.data import datasets as data

        dataset = data.take(data.load(FLAGS.data_dir, FLAGS.tfds), test_examples=FLAGS.test_examples)
        with cli.Progress() as progress:
            options = ExportOptions(FLAGS.formats, FLAGS.max_drop, FLAGS.calibration_examples, FLAGS.web_runtime)
            summary = export_model(FLAGS.model, FLAGS.serving_dir, FLAGS.export_dir, dataset, options, progress)
    print()
    print(summary.format())
    if summary.failed or summary.problems:
        raise InputError(summary.failure_message())


def define_flags() -> None:
    flags.DEFINE_string("model", "saved_models/mnist.keras", "The trained .keras model to export.")
    flags.DEFINE_string("serving_dir", "saved_models/mnist",
                        "TF Serving's --model_base_path: each export adds version N+1 here.")
    flags.DEFINE_string("export_dir", "export", "Where the .tflite files and their JSON go.")
    flags.DEFINE_list("formats", list(FORMATS), f"Which artifacts to write: {', '.join(FORMATS)}.")
    verify.define_max_drop_flag()
    flags.DEFINE_integer("calibration_examples", 1000,
                         "Training images that calibrate the full-integer model's ranges.",
                         lower_bound=1)
    web_export.define_flags()
    cli.define_data_flags()
    flags.adopt_module_key_flags(verify)  # --max_drop


def cli_main() -> None:
    cli.run(main, define_flags)


if __name__ == "__main__":
    cli_main()
