"""Accuracy, per-class precision and recall, confusion matrix; and models that are not models."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import pytest

from mnist_keras.data import datasets
from mnist_keras.errors import InputError
from mnist_keras.inference import evaluate
from mnist_keras.training import keras_file, metrics
from tests.helpers import assert_no_library_lines, assert_one_line_error, run_module


def test_metrics_count_what_they_say():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    predicted = np.array([0, 0, 1, 1, 1, 2, 2, 2, 0, 3])
    result = metrics.metrics(labels, predicted)
    confusion = np.array(result["confusion_matrix"])
    assert confusion.sum() == 10 and confusion[0, 1] == 1 and confusion[2, 0] == 1
    assert result["correct"] == 8 and result["accuracy"] == 80.0
    zero, one = result["per_class"][0], result["per_class"][1]
    assert zero["precision"] == 2 / 3 and zero["recall"] == 2 / 3 and zero["support"] == 3
    assert one["precision"] == 2 / 3 and one["recall"] == 1.0
    assert result["per_class"][9] == {"class": 9, "precision": None, "recall": None, "support": 0}


def test_evaluate_command_prints_and_writes_json(trained, tmp_path):
    record = trained.record
    result = run_module("mnist_keras.evaluate", f"--model={trained.model_path}",  # its head beside it
                        "--test_examples=2000", "--negatives=20", "--json=metrics.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_no_library_lines(result)
    assert result.stdout.startswith("Test accuracy: ")  # the progress, with times, goes to stderr
    assert re.search(r"^\S*mnist\.keras on 2000 test images: \d+ s$", result.stderr, re.M), result.stderr
    assert f"Test accuracy: {record['test']['accuracy']:.2f}% ({record['test']['correct']}/2000 correct)" \
        in result.stdout
    assert "Confusion matrix" in result.stdout and "precision" in result.stdout
    written = json.loads((tmp_path / "metrics.json").read_text())
    confusion = np.array(written["confusion_matrix"])
    assert confusion.sum() == 2000 and np.trace(confusion) == record["test"]["correct"]
    assert written["confusion_matrix"] == record["test"]["confusion_matrix"]
    recalls = [row["recall"] for row in written["per_class"]]
    np.testing.assert_allclose(recalls, np.diag(confusion) / confusion.sum(axis=1))
    assert {row["total"] for row in written["no_digit"]["negatives_heldout"].values()} == {20}  # --negatives


def test_evaluate_file_returns_the_metrics_of_the_model_file(trained):
    record = trained.record
    dataset = datasets.take(datasets.load(), test_examples=2000)
    result = evaluate.evaluate_file(trained.model_path, dataset, negatives_per_kind=0)
    assert result["model"] == str(trained.model_path) and result["data"] == dataset.source
    assert result["total"] == 2000 and result["correct"] == record["test"]["correct"]
    assert result["confusion_matrix"] == record["test"]["confusion_matrix"]
    assert result["no_digit"]["negatives_heldout"] == {}  # negatives_per_kind=0: none made


def _zip_without_config(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.weights.h5", b"")


def _zip_with_broken_config(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{not json")
        archive.writestr("metadata.json", "{}")


def _truncated_model(path, source):
    path.write_bytes(source.read_bytes()[:200_000])


def _bad_model(case, tmp_path, run):
    path = tmp_path / "model.keras"
    if case == "folder":
        path.mkdir()
    elif case == "text":
        path.write_text("hello")
    elif case == "no config":
        _zip_without_config(path)
    elif case == "truncated":
        _truncated_model(path, run.model_path)
    elif case == "broken config":
        _zip_with_broken_config(path)
    elif case == "other model":
        import keras

        keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)]).save(path)
    return path


BAD_MODELS = {
    "missing": "no such model file",
    "folder": "is a folder, not a Keras model file",
    "text": "not a Keras model file",
    "no config": "no config.json inside",
    "truncated": "not a Keras model file",
    "broken config": "cannot load Keras model",
    "other model": "a Keras model from (None, 5) to (None, 3), not a digit classifier",
}


@pytest.mark.parametrize("case", BAD_MODELS)
def test_bad_model_is_one_clear_error(training_run, tmp_path, case):
    path = _bad_model(case, tmp_path, training_run)
    with pytest.raises(InputError) as error:
        keras_file.load_keras(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and BAD_MODELS[case] in message and "\n" not in message


@pytest.mark.parametrize("case, only_line", [("text", True), ("broken config", False)])
@pytest.mark.slow
def test_bad_model_is_one_line_from_the_command(training_run, tmp_path, case, only_line):
    """Before Keras loads (nothing else on stderr) and after (TensorFlow's notices before it)."""
    path = _bad_model(case, tmp_path, training_run)
    result = run_module("mnist_keras.evaluate", f"--model={path}", cwd=tmp_path)
    assert_one_line_error(result, str(path), BAD_MODELS[case], only_line=only_line)
    assert result.returncode == 2


@pytest.mark.parametrize("target, fragment", [("no/such/dir/m.json", "does not exist"),
                                              (".", "is a folder")])
def test_unwritable_json_fails_before_evaluating(training_run, tmp_path, target, fragment):
    result = run_module("mnist_keras.evaluate", f"--model={training_run.model_path}",
                        f"--json={target}", cwd=tmp_path)
    assert_one_line_error(result, f"{target}: ", fragment)
    assert "Test accuracy" not in result.stdout
