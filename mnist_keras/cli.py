"""What every entry point shares: data flags, one-line errors, output checks."""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from absl import app, flags, logging

from mnist_keras.errors import InputError, printable

Config = TypeVar("Config")
DEFINES = {"bool": flags.DEFINE_bool, "int": flags.DEFINE_integer, "float": flags.DEFINE_float,
           "str": flags.DEFINE_string}


def define_flag(defaults: Any, name: str, help: str, **options: Any) -> None:  # noqa: A002 (absl's word)
    """--name, typed and defaulted by the field of that name in a command's config dataclass, so each
    default is written once, there. options: absl's (lower_bound=..., enum_values=[...] for a choice).
    The flag belongs to the calling module, as if it had called DEFINE_* itself (its --help lists it)."""
    kind = str({f.name: f.type for f in dataclasses.fields(defaults)}[name]).split("|")[0].strip()
    caller = sys._getframe(1).f_globals["__name__"]
    module_name = sys.argv[0] if caller == "__main__" else caller
    default = getattr(defaults, name)
    if "enum_values" in options:
        flags.DEFINE_enum(name, default, options.pop("enum_values"), help, module_name=module_name, **options)
    else:
        DEFINES[kind](name, default, help, module_name=module_name, **options)


def config_from_flags(config_class: type[Config], values: flags.FlagValues = flags.FLAGS) -> Config:
    """A command's config dataclass filled from its parsed flags of the same names."""
    return config_class(**{field.name: getattr(values, field.name)
                           for field in dataclasses.fields(config_class) if field.init})


KERAS_MODEL = "saved_models/mnist.keras"  # where mnist-train writes the model the later commands read


def define_model_flags(help: str) -> None:  # noqa: A002 (absl's word)
    """--model (a trained .keras file, by default where mnist-train writes it) and the data flags: what
    every command that reads a Keras model and MNIST takes. --model belongs to the calling module,
    beside its own flags in its --help."""
    caller = sys._getframe(1).f_globals["__name__"]
    flags.DEFINE_string("model", KERAS_MODEL, help, module_name=sys.argv[0] if caller == "__main__" else caller)
    define_data_flags()


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


flags.DEFINE_bool("verbose", False, "Also print TensorFlow's, LiteRT's and the TFLite converter's own log lines "
                  "(hidden by default; shown anyway when a command fails with a traceback).")


def run(main: Callable[[list[str]], None], define_flags: Callable[[], None] | None = None) -> None:
    """absl's app.run, with InputError and bad flags reported as one line, exit status 2/1, and the
    libraries' log lines hidden (--verbose shows them).

    define_flags: the command's flags, defined first; the shared ones defined here (data, --verbose,
    --trust_model) are listed in its --help beside them."""
    if define_flags is not None:
        define_flags()
        command = sys.argv[0] if main.__module__ == "__main__" else main.__module__  # absl's name for __main__
        for flag in flags.FLAGS.get_key_flags_for_module(__name__):
            flags.FLAGS.register_key_flag_for_module(command, flag)

    def guarded(argv: list[str]) -> None:
        # SIGTERM (docker stop, timeout) unwinds like Ctrl-C, so temporary files are removed.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        hidden = None
        if not flags.FLAGS.verbose:
            # Set before any command imports TensorFlow: its C++ INFO and WARNING lines once its
            # logging is set up; the lines printed before that, and LiteRT's, only the filter stops.
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            if not flags.FLAGS["verbosity"].present:  # TensorFlow's Python INFO lines drown the output
                logging.set_verbosity(logging.WARNING)
            hidden = LibraryLogs.hide()
        clean = False
        try:
            main(argv)
            clean = True
        except InputError as e:
            print(f"error: {printable(e)}", file=sys.stderr)  # a file name in it cannot add a line
            clean = True
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            clean = True
            sys.exit(130)
        except SystemExit as e:
            clean = e.code in (None, 0, 143)
            raise
        finally:
            if hidden is not None:
                hidden.close(replay=not clean)

    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS["verbose"])
    list_flags_in_help(main.__module__)
    app.run(guarded, flags_parser=_parse_flags)


# What TensorFlow, absl, LiteRT and the TFLite converter write from C++ straight to file
# descriptor 2, which no Python setting reaches: absl's log lines ("I0000 00:00:17.3 123
# port.cc:153] ..."; F, fatal, ones pass), its notice before absl::InitializeLog(), LiteRT's
# "INFO: Created TensorFlow Lite XNNPACK delegate", the converter's "fully_quantize: 0, ...".
FOREIGN = re.compile(rb"[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
                     rb"|WARNING: All log messages before absl::InitializeLog\(\)|INFO: \S|fully_quantize: ")
CLEAN_END = b"\x00mnist-keras: clean end\n"  # the command's last write to the filter: nothing to replay


class LibraryLogs:
    """Everything written to stderr (file descriptor 2, C++ included) goes through a filter process
    that drops the libraries' log lines and passes the rest at once. A separate process, so that it
    outlives a crash: the hidden lines are then replayed, as they are after a traceback."""

    def __init__(self, pid: int, stderr: int) -> None:
        self.pid, self.stderr = pid, stderr

    @classmethod
    def hide(cls) -> LibraryLogs:
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()  # before TensorFlow starts any thread
        if pid == 0:
            os.close(write)
            filter_stderr(read)
        os.close(read)
        stderr = os.dup(2)
        os.dup2(write, 2)
        os.close(write)
        return cls(pid, stderr)

    def close(self, replay: bool) -> None:
        """Back to the real stderr; waits (a little) until the filter has written everything."""
        sys.stderr.flush()
        if not replay:
            os.write(2, CLEAN_END)
        os.dup2(self.stderr, 2)  # closes this process's end of the pipe
        os.close(self.stderr)
        deadline = time.monotonic() + 5  # a child process may still hold the pipe open
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.01)


def filter_stderr(read: int) -> None:
    """The filter process: pipe in, real stderr (its fd 2) out, until every writer has closed the pipe.
    A partial line (a prompt, a bar) passes after 0.1 s; dropped lines are kept for a replay."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.close(0)
    os.close(1)
    dropped: collections.deque[bytes] = collections.deque(maxlen=500)
    pending, clean = b"", False
    try:
        while True:
            if pending and not select.select([read], [], [], 0.1)[0]:
                if not FOREIGN.match(pending):
                    os.write(2, pending)
                    pending = b""
                continue
            chunk = os.read(read, 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in (line + b"\n" for line in lines):
                if line == CLEAN_END:
                    clean = True
                elif FOREIGN.match(line):
                    dropped.append(line)
                else:
                    os.write(2, line)
        if pending:
            os.write(2, pending)
        if dropped and not clean:
            os.write(2, b"The libraries' log lines, hidden while the command ran (--verbose shows them):\n")
            os.write(2, b"".join(dropped))
    finally:
        os._exit(0)


def list_flags_in_help(command: str) -> None:
    """--help lists the command's own flags and docstring however it was started. absl shows those of
    the module it runs as: for `python -m mnist_keras.train` that is the command, but for the
    `mnist-train` console script it is the wrapper in bin/, which defines none."""
    if command == "__main__":
        return
    for flag in flags.FLAGS.get_key_flags_for_module(command):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    sys.modules["__main__"].__doc__ = sys.modules[command].__doc__


class Progress:
    """A command's progress lines (the steps time themselves); on a terminal, while no line has
    come for a few seconds, a clock below them says the command is still at work. The clock never
    goes into a log file: there each step is one plain line."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.last = time.monotonic()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.ticking = False
        self.clock = threading.Thread(target=self._tick, daemon=True) if self.stream.isatty() else None

    def __enter__(self) -> Progress:
        if self.clock is not None:
            self.clock.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        with self.lock:
            self._erase()

    def __call__(self, line: str) -> None:
        with self.lock:
            self._erase()
            print(line, file=self.stream, flush=True)
            self.last = time.monotonic()

    def _tick(self) -> None:
        while not self.stopped.wait(1.0):
            with self.lock:
                waited = time.monotonic() - self.last
                if waited >= 3:
                    self.stream.write(f"\r  ... {waited:.0f} s")
                    self.stream.flush()
                    self.ticking = True

    def _erase(self) -> None:
        if self.ticking:
            self.stream.write("\r\x1b[K")
            self.ticking = False


def check_writable_parent(path: str | Path) -> None:
    """Fails before hours of work, not after, when an output cannot be written."""
    parent = Path(path).absolute().parent
    if Path(path).is_dir():
        raise InputError(f"{path}: is a folder; name a file")
    if not parent.is_dir():
        raise InputError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: folder {parent} is not writable")
