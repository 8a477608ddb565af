"""What every entry point shares: data flags, one-line errors, output checks."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from absl import app, flags, logging

from mnist_keras.errors import InputError, printable


def define_data_flags() -> None:
    """--data_dir, --tfds and --test_examples, shared by every command that reads MNIST."""
    flags.DEFINE_string(
        "data_dir", None,
        "Folder of the four MNIST-format IDX files (train-images-idx3-ubyte[.gz], "
        "train-labels-idx1-ubyte[.gz], t10k-...), e.g. /usr/share/datasets/fashion-mnist. "
        "Default: the MNIST copy shipped in the package, verified by SHA-256.")
    flags.DEFINE_string(
        "tfds", None,
        "Load this TensorFlow Datasets name instead (mnist, fashion_mnist, kmnist, ...); "
        "needs the network or a prepared TFDS cache.")
    flags.DEFINE_integer("test_examples", 0, "Use only the first N test images (0: all).",
                         lower_bound=0)


def define_trust_flag() -> None:
    """--trust_model, for every command that runs a SavedModel someone may have handed over."""
    flags.DEFINE_bool("trust_model", False,
                      "Run a SavedModel even if its graph has ops that reach files, the network or other "
                      "processes (ReadFile, WriteFile, PyFunc, ...; see docs/export.md). Without it, such a "
                      "SavedModel is refused before any of it runs.")


HELP = {"--help", "-help", "-h", "-?", "--helpshort", "--helpfull"}  # absl's help flags


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        sys.exit(f"error: {printable(e)}")
    except SystemExit as e:  # absl exits 1 once it has printed the help: asking for it is no error
        if e.code == 1 and HELP & set(argv[1:]):
            sys.exit(0)
        raise


def run(main: Callable[[list[str]], None]) -> None:
    """absl's app.run, with InputError and bad flags reported as one line, exit status 2/1."""
    # Hides TensorFlow's C++ INFO and WARNING logs once its logging is set up (a user who
    # wants them sets TF_CPP_MIN_LOG_LEVEL=0); set before any command imports TensorFlow.
    # A few notices printed before that (oneDNN, "no CUDA drivers") still reach stderr.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def guarded(argv: list[str]) -> None:
        # SIGTERM (docker stop, timeout) unwinds like Ctrl-C, so temporary files are removed.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        if not flags.FLAGS["verbosity"].present:  # TensorFlow's INFO lines drown the output
            logging.set_verbosity(logging.WARNING)
        try:
            main(argv)
        except InputError as e:
            print(f"error: {printable(e)}", file=sys.stderr)  # a file name in it cannot add a line
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    list_flags_in_help(main.__module__)
    app.run(guarded, flags_parser=_parse_flags)


def list_flags_in_help(command: str) -> None:
    """--help lists the command's own flags and docstring however it was started. absl shows those of
    the module it runs as: for `python -m mnist_keras.train` that is the command, but for the
    `mnist-train` console script it is the wrapper in bin/, which defines none."""
    if command == "__main__":
        return
    for flag in flags.FLAGS.get_key_flags_for_module(command):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    sys.modules["__main__"].__doc__ = sys.modules[command].__doc__


def check_writable_parent(path: str | Path) -> None:
    """Fails before hours of work, not after, when an output cannot be written."""
    parent = Path(path).absolute().parent
    if Path(path).is_dir():
        raise InputError(f"{path}: is a folder; name a file")
    if not parent.is_dir():
        raise InputError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: folder {parent} is not writable")
