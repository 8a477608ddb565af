"""Shared fixtures: the shipped MNIST, a model trained on a slice of it, its export, a browser.

Helpers (running a command, starting a server, driving a page) live in tests/helpers.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import tempfile
from pathlib import Path

import pytest

from mnist_keras.data import datasets
from tests.helpers import RUNTIME, TRAINED_CONFIG, Exported, TrainingRun, launch_chromium, start_server, static_server

# Fixtures that cost tens of seconds or start a browser or a server: a test using one is slow.
SLOW_FIXTURES = {"no_digit_head", "trained", "exported", "browser", "page_url"}


def pytest_collection_modifyitems(items):
    """Marks `slow` every test that pulls in a slow fixture, directly or through another, so that
    -m "not slow" never pays for the no-digit head, the export or a browser."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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


@contextlib.contextmanager
def once_per_session(tmp_path_factory, name: str):
    """(folder, made): the folder shared by every pytest-xdist worker of this run, made by the first
    to arrive (made False) while the others wait on its lock, then found made (True). Without
    xdist, a folder of this process's own (made False)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        yield tmp_path_factory.mktemp(name), False
        return
    folder, done = root.parent / name, root.parent / f"{name}.done"
    with open(root.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        made = done.exists()
        folder.mkdir(exist_ok=True)
        yield folder, made
        done.touch()


@pytest.fixture(scope="session")
def training_run(tmp_path_factory) -> TrainingRun:
    """A real training run on 4,000 images for 3 epochs (a few seconds): model, record, workdir;
    with pytest-xdist, run by the first worker and read from its folder by the others."""
    from mnist_keras.training import keras_file, train

    with once_per_session(tmp_path_factory, "trained") as (workdir, made):
        if made:
            record = json.loads((workdir / train.HISTORY_FILE).read_text())
            return TrainingRun(keras_file.load_keras(workdir / train.MODEL_FILE), record, workdir)
        model, record = train.train_and_evaluate(train.Config(**TRAINED_CONFIG), workdir)
        return TrainingRun(model, record, workdir)


@pytest.fixture(scope="session")
def trained(training_run, no_digit_head) -> TrainingRun:
    """The same run, with its no-digit head beside the model (so that every export of it finds one).
    Fitting the head takes longer than the training: tests that need no head use training_run."""
    return training_run


@pytest.fixture(scope="session")
def no_digit_head(training_run, mnist, tmp_path_factory):
    """The small model's no-digit head (no_digit.py), fitted on fewer pictures and epochs, saved beside it."""
    from mnist_keras.files import sha256_file
    from mnist_keras.inference import no_digit, no_digit_fit
    from mnist_keras.training import keras_file

    model_path = training_run.model_path
    with once_per_session(tmp_path_factory, "no_digit_head") as (_, made):
        if made:
            return no_digit.load_head(model_path, sha256_file(model_path))
        model = keras_file.load_keras(model_path)
        settings = no_digit_fit.FitSettings(validation_examples=2000, negatives_count=300, digits_count=3000,
                                            epochs=10)
        head = no_digit_fit.fit_head(model, mnist.x_train[:-2000], sha256_file(model_path), settings)
        no_digit.save_head(head, model_path)
        return head


@pytest.fixture(scope="session")
def exported(trained, tmp_path_factory) -> Exported:
    """export_model on the small trained model, in-process, to every format: summary, folder, model path."""
    from mnist_keras.exporting import steps

    with once_per_session(tmp_path_factory, "exported") as (out, made):
        kept = out.parent / f"{out.name}.summary.pickle"  # the summary, for the other workers
        if made:
            return Exported(pickle.loads(kept.read_bytes()), out, trained.model_path)
        dataset = datasets.take(datasets.load(), test_examples=2000)
        summary = steps.export_model(trained.model_path, out / "serving", out / "export", dataset)
        assert not summary.failed and not summary.problems, (summary.format(), summary.problems)
        kept.write_bytes(pickle.dumps(summary))
        return Exported(summary, out, trained.model_path)


@pytest.fixture(scope="session")
def keras_probabilities(training_run, mnist):
    """The small trained Keras model's probabilities for the first 1,000 test images (its saved file)."""
    from mnist_keras.inference import classifiers
    from mnist_keras.training import keras_file

    model = keras_file.load_keras(training_run.model_path)
    return classifiers.softmax(model.predict(datasets.scale_images(mnist.x_test[:1000]), verbose=0))


# --- The browser tests' fixtures (the modules call helpers.require_browser first) ----------

@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, one per test module."""
    yield from launch_chromium()


@pytest.fixture(scope="module")
def page_url(exported):
    """mnist-serve on the exported SavedModel: its drawing page's address."""
    process, port = start_server(f"--model_base_path={exported.serving}", cwd=exported.folder)
    yield f"http://127.0.0.1:{port}/"
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def int8_model(exported) -> Path:
    return exported.export / "mnist_int8.tflite"


@pytest.fixture(scope="module")
def web_folder(int8_model, tmp_path_factory) -> Path:
    """export/web/ written for the int8 model."""
    from mnist_keras.exporting import web_page

    return web_page.write_web(tmp_path_factory.mktemp("site") / "web", int8_model, RUNTIME)


@pytest.fixture(scope="module")
def site(web_folder):
    """export/web/ on a plain static file server on 127.0.0.1, as any static host would serve it."""
    server = static_server(web_folder)
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
