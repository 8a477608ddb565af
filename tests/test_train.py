"""Training for real on slices of the shipped MNIST: in-process, as a command, resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, assert_one_line_error, run_module

from mnist_keras import evaluate, train
from mnist_keras.errors import InputError


def test_training_learns_and_writes_its_outputs(trained, mnist):
    record, workdir = trained
    losses = [e["avg_loss"] for e in record["epochs"]]
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3]
    assert losses[0] > losses[1] > losses[2], losses
    assert record["steps_per_epoch"] == 63  # ceil(4000 / 64)
    assert record["test"]["total"] == 2000 and record["test"]["accuracy"] >= 90.0, record["test"]
    # The final evaluation counts what the validation measured after the last epoch: exactly
    # in float32; in mixed_bfloat16 the epochs are measured in bfloat16 and the saved float32
    # copy may call an image on the edge the other way (1 of 2,000 seen here).
    agree = 1e-3 if record["precision"] == "float32" else 0.1 + 1e-3
    assert record["test"]["accuracy"] == pytest.approx(record["epochs"][-1]["test_accuracy"], abs=agree)
    assert record["epochs"][-1]["learning_rate"] == 0.0  # cosine decay ends at zero
    assert record["device"].startswith("CPU") and record["jit_compile"] is False  # XLA is slower on CPU

    assert json.loads((workdir / train.HISTORY_FILE).read_text()) == record
    saved = evaluate.evaluate(evaluate.load_model(workdir / train.MODEL_FILE),
                              mnist.x_test[:2000], mnist.y_test[:2000])
    assert saved["correct"] == record["test"]["correct"]
    best = evaluate.evaluate(evaluate.load_model(workdir / train.BEST_FILE),
                             mnist.x_test[:2000], mnist.y_test[:2000])
    assert best["accuracy"] == pytest.approx(max(e["test_accuracy"] for e in record["epochs"]), abs=agree)
    for split in ("train", "validation"):
        assert list((workdir / train.LOGS_DIR / split).glob("events.out.tfevents.*")), split
    assert not (workdir / train.BACKUP_DIR).exists()  # removed once the run finished
    assert not list(workdir.glob(".*partial*"))


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    def first_loss(seed, name):
        config = train.Config(epochs=1, train_examples=1000, test_examples=200, seed=seed,
                              progress="none")
        return train.train_and_evaluate(config, tmp_path / name)["epochs"][0]["avg_loss"]

    assert first_loss(5, "a") == first_loss(5, "b")
    assert first_loss(5, "c") != first_loss(6, "d")


def test_whole_training_on_tfds_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    config = train.Config(epochs=1, batch_size=4, tfds="mnist", progress="none")
    with tfds.testing.mock_data(num_examples=8):
        record = train.train_and_evaluate(config, tmp_path)
    assert record["data"] == "tfds:mnist" and record["steps_per_epoch"] == 2
    assert record["test"]["total"] == 8 and np.isfinite(record["epochs"][0]["avg_loss"])
    assert (tmp_path / train.MODEL_FILE).is_file()


def test_command_line_run_prints_epochs_bar_and_accuracy(tmp_path):
    result = run_module("mnist_keras.train", "--epochs=2", "--train_examples=1000",
                        "--test_examples=500", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Device: CPU" in out and "421,642 parameters" in out
    assert "━" in out  # Keras' progress bar
    epochs = re.findall(r"^Epoch (\d)/2: average loss ([\d.]+) \(16 batches\), test accuracy", out, re.M)
    assert [e[0] for e in epochs] == ["1", "2"] and float(epochs[1][1]) < float(epochs[0][1])
    accuracy, correct = re.search(r"^Test accuracy: ([\d.]+)% \((\d+)/500 correct\)$", out, re.M).groups()
    history = json.loads((tmp_path / "saved_models" / "history.json").read_text())
    assert int(correct) == history["test"]["correct"] and float(accuracy) == round(history["test"]["accuracy"], 2)
    assert [round(e["avg_loss"], 4) for e in history["epochs"]] == [float(e[1]) for e in epochs]
    assert (tmp_path / "saved_models" / "mnist.keras").is_file()


@pytest.mark.parametrize("flag, fragment", [
    ("--epochs=0", "flag --epochs=0: 0 is not a positive integer"),
    ("--batch_size=-1", "flag --batch_size=-1: -1 is not a positive integer"),
    ("--learning_rate=-0.1", "flag --learning_rate=-0.1"),
    ("--lr_schedule=linear", "flag --lr_schedule=linear"),
    ("--epoch=5", "Unknown command line flag 'epoch'"),
    ("--learning_rate=nan", "--learning_rate=nan: must be a positive number"),
    ("--learning_rate=0", "--learning_rate=0.0: must be a positive number"),
])
def test_bad_flag_is_one_clear_line(tmp_path, flag, fragment):
    assert_one_line_error(run_module("mnist_keras.train", flag, cwd=tmp_path), fragment)
    assert not (tmp_path / "saved_models").exists()


def test_model_dir_that_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    result = run_module("mnist_keras.train", "--model_dir=taken", cwd=tmp_path)
    assert_one_line_error(result, "--model_dir=taken", "not a folder")
    result = run_module("mnist_keras.train", "--model_dir=taken/sub", cwd=tmp_path)
    assert_one_line_error(result, "--model_dir=taken/sub", "cannot create it")


TINY = {"epochs": 1, "train_examples": 300, "test_examples": 100, "progress": "none"}


def test_fresh_run_deletes_only_what_training_wrote(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "notes.txt").write_text("mine")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "thesis.tex").write_text("mine")
    train.train_and_evaluate(train.Config(**TINY), tmp_path)
    train.train_and_evaluate(train.Config(**TINY), tmp_path)  # a second fresh run clears the first's logs
    assert (tmp_path / "logs" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == ["thesis.tex"]
    assert len(list((tmp_path / "logs" / "train").glob("events.out.tfevents.*"))) == 1


def test_noresume_starts_over(tmp_path, capsys):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    (tmp_path / "history.json").write_text(json.dumps({"settings": {"seed": 99}, "epochs": [{}]}))
    with pytest.raises(InputError, match="unfinished run with other settings"):
        train.train_and_evaluate(train.Config(**TINY), tmp_path)
    record = train.train_and_evaluate(train.Config(**TINY, resume=False), tmp_path)
    assert "Resuming" not in capsys.readouterr().out
    assert [e["epoch"] for e in record["epochs"]] == [1] and record["settings"]["seed"] == 0
    assert not backup.exists()


def test_diverged_run_is_an_error_and_leaves_no_model(tmp_path):
    config = train.Config(**{**TINY, "epochs": 2}, learning_rate=1e6)
    with pytest.raises(InputError, match=r"--learning_rate=1e\+06: training diverged in epoch 1"):
        train.train_and_evaluate(config, tmp_path)
    assert not (tmp_path / "mnist.keras").exists() and not (tmp_path / "best.keras").exists()
    assert not (tmp_path / "backup").exists()  # nothing to resume from
    history = json.loads((tmp_path / "history.json").read_text())  # strict JSON: NaN is null
    assert history["epochs"][0]["avg_loss"] is None


def test_killed_run_resumes_where_it_stopped(tmp_path):
    args = ["--epochs=3", "--train_examples=3000", "--test_examples=500", "--progress=none"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    run = subprocess.Popen([sys.executable, "-m", "mnist_keras.train", *args], cwd=tmp_path,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    metadata = tmp_path / "saved_models" / "backup" / "training_metadata.json"
    try:
        for line in run.stdout:
            if line.startswith("Epoch 1/3:"):
                break
        deadline = time.monotonic() + 60
        while not metadata.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        run.send_signal(signal.SIGKILL)
    finally:
        run.wait()
    assert run.returncode == -signal.SIGKILL
    assert evaluate.load_model(tmp_path / "saved_models" / "best.keras").count_params() == 421_642

    other = run_module("mnist_keras.train", *args[:-1], "--seed=1", "--progress=none", cwd=tmp_path)
    assert_one_line_error(other, "unfinished run", "--seed=0 then, 1 now", only_line=False)

    resumed = run_module("mnist_keras.train", *args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads(metadata.read_text())["epoch"] if metadata.exists() else None
    assert done is None  # the backup is gone once the run finishes
    match = re.search(r"Resuming .*: (\d) of 3 epochs done, continuing with epoch (\d)", resumed.stdout)
    assert match, resumed.stdout
    first = int(match.group(2))
    assert not re.search(rf"^Epoch {first - 1}/3:", resumed.stdout, re.M)
    history = json.loads((tmp_path / "saved_models" / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]

    # The resumed run is the run that was interrupted: same orders, same state, same losses.
    whole = run_module("mnist_keras.train", *args, "--model_dir=whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    uninterrupted = json.loads((tmp_path / "whole" / "history.json").read_text())
    np.testing.assert_allclose([e["avg_loss"] for e in history["epochs"]],
                               [e["avg_loss"] for e in uninterrupted["epochs"]], rtol=1e-4)


def test_help_explains_every_flag(tmp_path):
    result = run_module("mnist_keras.train", "--help", cwd=tmp_path)  # absl exits 1 after help
    for flag in ("epochs", "batch_size", "learning_rate", "lr_schedule", "seed", "data_dir", "tfds",
                 "model_dir", "train_examples", "test_examples", "jit_compile", "strategy", "precision",
                 "cpu_replicas", "lr_scaling", "progress", "[no]resume",
                 "[no]report"):
        assert re.search(rf"^  --{re.escape(flag)}: \S", result.stdout, re.M), flag
    assert "tensorflow" not in result.stderr.lower()  # --help answers without importing TensorFlow
