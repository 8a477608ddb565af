"""Shared fixtures: the shipped MNIST, a model trained on a slice of it, a CLI runner."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mnist_keras.data import datasets

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def autotune_cache(tmp_path_factory):
    """--precision=auto's cache in a temporary folder: the tests neither read nor write the user's."""
    folder = tmp_path_factory.mktemp("cache")
    before = os.environ.get("MNIST_KERAS_CACHE_DIR")
    os.environ["MNIST_KERAS_CACHE_DIR"] = str(folder)  # the subprocesses inherit it
    yield folder
    if before is None:
        os.environ.pop("MNIST_KERAS_CACHE_DIR", None)
    else:
        os.environ["MNIST_KERAS_CACHE_DIR"] = before


@pytest.fixture(scope="session", autouse=True)
def temporary_folder(tmp_path_factory):
    """Every temporary file of the session, the subprocesses' too, in a folder of its own that must be
    empty at the end: the suite leaves nothing behind in /tmp (issue 27). pytest's own folders are
    removed after a passing run (tmp_path_retention_policy in pyproject.toml)."""
    folder = tmp_path_factory.mktemp("tmp")
    before = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(folder)
    yield folder
    if before[0] is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before[0]
    tempfile.tempdir = before[1]
    # TensorFlow's autograph removes its generated sources when the process exits, after this check.
    left = sorted(p.name for p in folder.iterdir() if not p.name.startswith("__autograph_generated_file"))
    assert not left, f"the tests left these in the temporary folder: {left}"


@pytest.fixture(scope="session")
def mnist() -> datasets.Data:
    return datasets.load()


# The trained fixture's settings: 4,000 training images (the first), 2,000 held out for
# validation (the last of the 60,000), the first 2,000 test images.
TRAINED_CONFIG = {"epochs": 3, "train_examples": 4000, "validation_examples": 2000, "test_examples": 2000,
                  "progress": "none"}


@pytest.fixture(scope="session")
def training_run(tmp_path_factory):
    """A real training run on 4,000 images for 3 epochs (a few seconds): (train.Trained, workdir)."""
    from mnist_keras.training import train

    workdir = tmp_path_factory.mktemp("trained")
    return train.train_and_evaluate(train.Config(**TRAINED_CONFIG), workdir), workdir


@pytest.fixture(scope="session")
def trained(training_run, no_digit_head):
    """The same run as (record, workdir), its files in workdir, with its no-digit head beside the
    model (so that every export of it finds one); training_run has the model in memory."""
    result, workdir = training_run
    return result.record, workdir


@pytest.fixture(scope="session")
def no_digit_head(training_run, mnist):
    """The small model's no-digit head (no_digit.py), fitted on fewer pictures and epochs, saved beside it."""
    from mnist_keras.files import sha256_file
    from mnist_keras.inference import no_digit, no_digit_fit
    from mnist_keras.training import keras_file, train

    _, workdir = training_run
    model_path = workdir / train.MODEL_FILE
    model = keras_file.load_keras(model_path)
    settings = no_digit_fit.FitSettings(validation_examples=2000, negatives_count=300, digits_count=3000, epochs=10)
    head = no_digit_fit.fit_head(model, mnist.x_train[:-2000], sha256_file(model_path), settings)
    no_digit.save_head(head, model_path)
    return head


@pytest.fixture(scope="session")
def exported(trained, tmp_path_factory):
    """export_model on the small trained model, in-process: (summary, folder, model path)."""
    from mnist_keras.exporting import steps
    from mnist_keras.training import train

    _, workdir = trained
    out = tmp_path_factory.mktemp("exported")
    dataset = datasets.take(datasets.load(), test_examples=2000)
    summary = steps.export_model(workdir / train.MODEL_FILE, out / "serving", out / "export", dataset)
    assert not summary.failed and not summary.problems, (summary.format(), summary.problems)
    return summary, out, workdir / train.MODEL_FILE


@pytest.fixture(scope="session")
def keras_probabilities(trained, mnist):
    """The small trained Keras model's probabilities for the first 1,000 test images."""
    from mnist_keras.inference import classifiers
    from mnist_keras.training import keras_file, train

    _, workdir = trained
    model = keras_file.load_keras(workdir / train.MODEL_FILE)
    return classifiers.softmax(model.predict(datasets.scale_images(mnist.x_test[:1000]), verbose=0))


def run_module(module: str, *args: str, cwd: Path, timeout: float = 300,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs `python -m module args` as a user would, with this checkout importable."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str,
                          only_line: bool = True) -> str:
    """A user error: non-zero exit, no traceback, and one line naming what is wrong.

    only_line: stderr holds nothing else (the commands hide TensorFlow's own lines); False where
    other processes' words may come first (a worker of a cluster).
    """
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    if only_line:
        assert len(lines) == 1, result.stderr
    last = lines[-1]
    assert last.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last
    return last


# The lines TensorFlow, absl, LiteRT and the TFLite converter print on their own (issue 27).
LIBRARY_LINE = re.compile(r"^([IWE]\d{4} |WARNING: All log messages|fully_quantize|INFO: Created TensorFlow Lite"
                          r"|.*failed call to cuInit)", re.M)


def assert_no_library_lines(result: subprocess.CompletedProcess) -> None:
    """A command's output holds only the project's lines: none of TensorFlow's, LiteRT's or the converter's."""
    found = LIBRARY_LINE.findall(result.stdout + result.stderr)
    assert not found, result.stdout[-2000:] + result.stderr[-3000:]
