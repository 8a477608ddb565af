"""Trains the CNN, printing each epoch's average loss and validation accuracy, then the test accuracy.

    mnist-train --epochs 5          (or python -m mnist_keras.train --epochs 5)

Writes into --model_dir (default saved_models/): mnist.keras (the trained model), best.keras
(the epoch with the best validation accuracy), history.json (per-epoch figures, test metrics,
settings), logs/ (TensorBoard) and, while a run is unfinished, backup/ (from which a killed
run resumes); see run_folder.py. The test set is read once, at the end.
"""

from __future__ import annotations

import functools
from pathlib import Path

from absl import flags

from mnist_keras import cli
from mnist_keras.data import datasets as data
from mnist_keras.training import distribute
from mnist_keras.training.config import JIT_COMPILE, LR_SCALINGS, LR_SCHEDULES, PRECISIONS, PROGRESS, Config
from mnist_keras.training.run_folder import MODEL_FILE
from mnist_keras.training.train import Trained, train_and_evaluate

__all__ = ["Config", "Trained", "train_and_evaluate", "cli_main"]

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The flags of Config's fields (their defaults are Config's), then --model_dir and --report."""
    defaults = Config()
    define = functools.partial(cli.define_flag, defaults)
    define("epochs", "Passes over the training set.", lower_bound=1)
    define("batch_size", "Images per training step on each replica (the global batch is this x "
           "the number of replicas).", lower_bound=1)
    define("learning_rate", "Adam's (initial) learning rate.", lower_bound=0)
    define("lr_schedule", "cosine: decay the learning rate to zero over the run (reaches >= 99.0% "
           "in 5 epochs); constant: keep it.", enum_values=list(LR_SCHEDULES))
    define("seed", "Seeds weights and shuffling: the same seed gives the same run.", lower_bound=0)
    flags.DEFINE_string("model_dir", "saved_models",
                        "Where the model, best checkpoint, history.json, TensorBoard logs and "
                        "the resume backup go.")
    define("train_examples", "Train on only the first N training images (0: all those not held out for "
           "validation).", lower_bound=0)
    define("written_share", "With the shipped MNIST, add digits in other styles, this share of the training images "
           "in number: typed in fonts, drawn from stroke templates, MNIST reshaped (docs/training.md); "
           "0: MNIST alone, as the original pipeline.", lower_bound=0, upper_bound=1)
    define("reshape_share", "With digits in other styles (--written_share above 0), turn, shear and zoom this share "
           "of each batch afresh.", lower_bound=0, upper_bound=1)
    define("negative_share", "With digits in other styles, add non-digits (letters, drawn shapes, people's drawings, "
           "clothes, noise, textures), this share of the training images in number, taught to read as no digit in "
           "particular (outlier exposure; docs/no_digit.md).", lower_bound=0, upper_bound=1)
    define("validation_examples", "Hold out the last N of the training images as the validation split, which "
           "the per-epoch figures and best.keras use; the test set is read once, at the "
           "end. 0: no validation split and no best.keras.", lower_bound=0)
    define("jit_compile", "XLA compilation; auto: on for a GPU, off on CPU, where it is slower.",
           enum_values=list(JIT_COMPILE))
    define("strategy", "tf.distribute strategy. auto: MirroredStrategy over several local GPUs "
           "(or --cpu_replicas), MultiWorkerMirroredStrategy when TF_CONFIG names a "
           "cluster, else the one device; one_device; mirrored; multi_worker (cluster "
           "from the TF_CONFIG environment variable).", enum_values=list(distribute.STRATEGIES))
    define("precision", "auto: the faster of float32 and mixed_bfloat16 on this machine, measured with a "
           "few training steps and cached per machine (docs/training.md). The saved "
           "model is float32 either way.", enum_values=list(PRECISIONS))
    define("cpu_replicas", "Split the CPU into this many logical devices and mirror over them: a "
           "try-out of data parallelism without GPUs.", lower_bound=1)
    define("lr_scaling", "How --learning_rate grows with the replicas (the global batch is "
           "--batch_size x replicas): linear, sqrt or none.", enum_values=list(LR_SCALINGS))
    define("progress", "bar: Keras' progress bar while an epoch runs, on a terminal (not into a log file); "
           "none: only the line printed at the end of each epoch.", enum_values=list(PROGRESS))
    define("resume", "Continue an unfinished run found in --model_dir; --noresume starts over.")
    flags.DEFINE_boolean("report", False,
                         "At the end, also write the HTML report of what the network learned "
                         "(mnist-report) into --model_dir.")
    cli.define_data_flags()
    flags.adopt_module_key_flags(cli)  # list them in --help too


def main(argv: list[str]) -> None:
    del argv  # unused
    config = cli.config_from_flags(Config)
    train_and_evaluate(config, FLAGS.model_dir)
    if FLAGS.report and distribute.is_chief(distribute.read_tf_config()):  # the chief has the model
        from mnist_keras.reporting import page as report

        dataset = data.take(data.load(config.data_dir, config.tfds), test_examples=config.test_examples)
        print(f"Report: {report.write_report(Path(FLAGS.model_dir) / MODEL_FILE, dataset)}")


def cli_main() -> None:
    """The `mnist-train` console script and `python -m mnist_keras.train`."""
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
