"""Training for real on slices of the shipped MNIST: in-process, as a command, resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_keras.data import datasets, pipeline
from mnist_keras.errors import InputError
from mnist_keras.training import keras_file, metrics, train
from tests.helpers import REPO, TRAINED_CONFIG, assert_one_line_error, backed_up, run_module

EPOCH_KEYS = ["epoch", "avg_loss", "loss", "accuracy", "val_avg_loss", "val_accuracy", "learning_rate",
              "wall_seconds", "cpu_seconds"]


def test_training_learns_and_writes_its_outputs(training_run, mnist):
    model = training_run.model
    record = training_run.record
    workdir = training_run.workdir
    losses = [e["avg_loss"] for e in record["epochs"]]
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3]
    assert all(list(e) == EPOCH_KEYS for e in record["epochs"])  # no test_* figures per epoch
    assert losses[0] > losses[1] > losses[2], losses
    assert record["written_digits"] == 720  # 18% as many digits in other styles (written.py) beside them
    assert record["non_digits"] == 0  # none by default (--negative_share)
    assert record["steps_per_epoch"] == 74  # ceil((4000 + 720) / 64)
    assert (record["train_examples"], record["validation_examples"], record["test_examples"]) == (4000, 2000, 2000)
    assert record["test"]["total"] == 2000 and record["test"]["accuracy"] >= 90.0, record["test"]
    assert record["epochs"][-1]["learning_rate"] == 0.0  # cosine decay ends at zero
    assert record["device"].startswith("CPU") and record["jit_compile"] is False  # XLA is slower on CPU
    assert json.loads((workdir / train.HISTORY_FILE).read_text()) == record

    # The returned model is the float32 model saved as mnist.keras, and gave the test figures.
    assert all(layer.compute_dtype == "float32" for layer in model.layers)
    held_out = TRAINED_CONFIG["validation_examples"]  # the last 2,000 training images
    x_val, y_val = mnist.x_train[-held_out:], mnist.y_train[-held_out:]
    saved = keras_file.load_keras(training_run.model_path)
    for ours, theirs in zip(model.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    assert metrics.evaluate(saved, mnist.x_test[:2000], mnist.y_test[:2000])["correct"] == record["test"]["correct"]
    # The per-epoch figures are the validation split's: the last epoch's is the saved model's,
    # best.keras is the epoch with the best of them. Exactly so in float32; in mixed_bfloat16 the
    # epochs are measured in bfloat16 and the float32 copy may call an image on the edge the other
    # way (1 of 2,000 seen here).
    agree = 1e-3 if record["precision"] == "float32" else 0.1 + 1e-3
    assert metrics.evaluate(saved, x_val, y_val)["accuracy"] == pytest.approx(
        record["epochs"][-1]["val_accuracy"], abs=agree)
    best = metrics.evaluate(keras_file.load_keras(workdir / train.BEST_FILE), x_val, y_val)
    assert best["accuracy"] == pytest.approx(max(e["val_accuracy"] for e in record["epochs"]), abs=agree)
    for split in ("train", "validation"):
        assert list((workdir / train.LOGS_DIR / split).glob("events.out.tfevents.*")), split
    assert not (workdir / train.BACKUP_DIR).exists()  # removed once the run finished
    assert not list(workdir.glob(".*partial*"))
    assert set(record["files_sha256"]) == {train.MODEL_FILE, train.BEST_FILE}


def test_the_test_set_is_read_once_at_the_end(tmp_path, monkeypatch):
    """Each epoch is measured on the validation split; the test images go through one evaluation."""
    events = []
    eval_dataset, final_evaluation = pipeline.eval_dataset, metrics.evaluate

    def recording_eval_dataset(images, labels, batch_size):
        events.append(("dataset", len(images)))
        return eval_dataset(images, labels, batch_size)

    def recording_evaluate(model, images, labels, *args, **kwargs):
        events.append(("evaluate", len(images)))
        return final_evaluation(model, images, labels, *args, **kwargs)

    monkeypatch.setattr(pipeline, "eval_dataset", recording_eval_dataset)
    monkeypatch.setattr(metrics, "evaluate", recording_evaluate)
    config = train.Config(epochs=2, train_examples=300, validation_examples=400, test_examples=100,
                          progress="none")
    _, record = train.train_and_evaluate(config, tmp_path)
    assert events[0] == ("dataset", 400)  # the validation split, read by every epoch
    assert events.count(("evaluate", 100)) == 1 and ("evaluate", 400) not in events
    assert ("dataset", 100) not in events[:events.index(("evaluate", 100))]  # no test image before the end
    assert record["test"]["total"] == 100
    assert all(e["val_accuracy"] is not None for e in record["epochs"])


def test_no_validation_split_means_no_best_checkpoint(tmp_path, capsys):
    (tmp_path / train.BEST_FILE).write_text("an earlier run's")
    config = train.Config(epochs=1, train_examples=300, validation_examples=0, test_examples=100,
                          progress="none")
    _, record = train.train_and_evaluate(config, tmp_path)
    out = capsys.readouterr().out
    assert "no validation (--validation_examples=0: no per-epoch validation, no best.keras)" in out
    assert "validation accuracy" not in out and "best.keras" not in out.split("Saved", 1)[1]
    assert record["validation_examples"] == 0 and record["epochs"][0]["val_accuracy"] is None
    assert not (tmp_path / train.BEST_FILE).exists() and list(record["files_sha256"]) == [train.MODEL_FILE]


def test_a_validation_split_as_large_as_the_training_set_is_refused(tmp_path):
    with pytest.raises(InputError, match="--validation_examples=60000: the training split has only 60000"):
        train.train_and_evaluate(train.Config(validation_examples=60000), tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_same_seed_same_run_other_seed_other_run(tmp_path):
    def first_loss(seed, name):
        config = train.Config(epochs=1, train_examples=1000, validation_examples=200, test_examples=200,
                              seed=seed, progress="none")
        return train.train_and_evaluate(config, tmp_path / name).record["epochs"][0]["avg_loss"]

    five = first_loss(5, "a")
    assert five == first_loss(5, "b")
    assert five != first_loss(6, "c")


def test_written_digits_join_the_shipped_mnist_only(tmp_path, capsys, monkeypatch):
    """Digits in other styles are added to the shipped MNIST, and the log says so; another data folder
    (not necessarily digits) trains as it is."""
    fashion = Path("/usr/share/datasets/fashion-mnist")
    if not fashion.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    config = train.Config(epochs=1, data_dir=str(fashion), train_examples=300, validation_examples=100,
                          test_examples=100, progress="none")
    _, record = train.train_and_evaluate(config, tmp_path)
    assert record["written_digits"] == 0 and record["steps_per_epoch"] == 5
    assert "300 training (no digits in other styles with this data)" in capsys.readouterr().out


def test_non_digits_join_with_negative_share_and_the_log_says_so(tmp_path, capsys):
    config = train.Config(epochs=1, train_examples=300, validation_examples=100, test_examples=100,
                          negative_share=0.1, progress="none")
    _, record = train.train_and_evaluate(config, tmp_path)
    assert (record["written_digits"], record["non_digits"], record["train_examples"]) == (54, 30, 300)
    assert record["steps_per_epoch"] == 6  # ceil((300 + 54 + 30) / 64)
    assert "384 training (54 of them digits in other styles: typed, drawn, reshaped; 30 non-digits, taught to " \
           "read as no digit in particular; 50% of each batch reshaped afresh;" in capsys.readouterr().out


def test_whole_training_on_tfds_mock_data(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(datasets, "network_reachable", lambda *_: True)  # the mock stands in for the download
    config = train.Config(epochs=1, batch_size=4, tfds="mnist", validation_examples=4, progress="none")
    with tfds.testing.mock_data(num_examples=12):
        _, record = train.train_and_evaluate(config, tmp_path)
    assert record["data"] == "tfds:mnist" and record["steps_per_epoch"] == 2  # 12 - 4 held out, by 4
    assert record["test"]["total"] == 12 and np.isfinite(record["epochs"][0]["avg_loss"])
    assert (tmp_path / train.MODEL_FILE).is_file()


def test_run_prints_devices_epochs_bar_and_accuracy(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # the bar runs on a terminal only
    config = train.Config(epochs=2, train_examples=1000, validation_examples=500, test_examples=500,
                          written_share=0)
    _, history = train.train_and_evaluate(config, tmp_path)
    out = capsys.readouterr().out
    assert "Device: CPU" in out and "421,642 parameters" in out
    assert "Data: MNIST (shipped copy, SHA-256 verified): 1000 training (MNIST alone), 500 validation (the last " \
           "500 training images) and 500 test images, 16 batches of 64 per epoch" in out
    assert history["written_digits"] == 0
    assert "━" in out  # Keras' progress bar
    epochs = re.findall(r"^Epoch (\d)/2: average loss ([\d.]+) \(16 batches\), validation accuracy ([\d.]+)%",
                        out, re.M)
    assert [e[0] for e in epochs] == ["1", "2"] and float(epochs[1][1]) < float(epochs[0][1])
    accuracy, correct = re.search(r"^Test accuracy: ([\d.]+)% \((\d+)/500 correct\)$", out, re.M).groups()
    assert int(correct) == history["test"]["correct"] and float(accuracy) == round(history["test"]["accuracy"], 2)
    assert [round(e["avg_loss"], 4) for e in history["epochs"]] == [float(e[1]) for e in epochs]
    assert [round(e["val_accuracy"], 2) for e in history["epochs"]] == [float(e[2]) for e in epochs]


@pytest.mark.parametrize("flag, fragment", [
    ("--epochs=0", "flag --epochs=0: 0 is not a positive integer"),
    ("--batch_size=-1", "flag --batch_size=-1: -1 is not a positive integer"),
    ("--learning_rate=-0.1", "flag --learning_rate=-0.1"),
    ("--lr_schedule=linear", "flag --lr_schedule=linear"),
    ("--epoch=5", "Unknown command line flag 'epoch'"),
    ("--learning_rate=nan", "--learning_rate=nan: must be a positive number"),
    ("--learning_rate=0", "--learning_rate=0.0: must be a positive number"),
    ("--written_share=1.5", "flag --written_share=1.5"),
    ("--written_share=nan", "--written_share=nan: must be between 0 and 1"),
    ("--written_share=0 --negative_share=0.1", "--negative_share=0.1: non-digits join only with the digits in "
     "other styles; set --written_share above 0"),
])
def test_bad_flag_is_one_clear_line(tmp_path, flag, fragment):
    assert_one_line_error(run_module("mnist_keras.train", *flag.split(), cwd=tmp_path), fragment)
    assert not (tmp_path / "saved_models").exists()


def test_model_dir_that_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "taken").write_text("not a folder")
    with monkeypatch.context() as patch:  # refused before any data is loaded (or written digits made)
        patch.setattr(train.datasets, "load", lambda *args: pytest.fail("the data was loaded first"))
        with pytest.raises(InputError, match="--model_dir=.*taken: exists and is not a folder"):
            train.train_and_evaluate(train.Config(), tmp_path / "taken")
    with pytest.raises(InputError, match="--model_dir=.*taken/sub: cannot create it"):
        train.train_and_evaluate(train.Config(written_share=0), tmp_path / "taken" / "sub")


TINY = {"epochs": 1, "train_examples": 300, "validation_examples": 100, "test_examples": 100, "progress": "none"}


@pytest.mark.slow
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
    _, record = train.train_and_evaluate(train.Config(**TINY, resume=False), tmp_path)
    assert "Resuming" not in capsys.readouterr().out
    assert [e["epoch"] for e in record["epochs"]] == [1] and record["settings"]["seed"] == 0
    assert not backup.exists()


def test_a_backup_cut_short_by_a_kill_falls_back_to_the_one_before(tmp_path):
    """Keras writes training_metadata.json in place: a kill can leave it empty or cut short."""
    from mnist_keras.training import run_folder

    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "training_metadata.json").write_text('{"epoch": 2, "ba')  # killed while writing epoch 2's
    (backup / "latest.weights.h5").write_bytes(b"epoch 2, whole")
    (backup / "training_metadata.json.bkp").write_text('{"epoch": 1, "batch": 0}')
    (backup / "latest.weights.h5.bkp").write_bytes(b"epoch 1")
    assert run_folder.backed_up_epochs(backup) == 1
    assert (backup / "latest.weights.h5").read_bytes() == b"epoch 1"  # weights and epoch agree again
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    (backup / "training_metadata.json").write_text("")  # the first epoch's, with nothing before it
    for name in ("training_metadata.json.bkp", "latest.weights.h5.bkp"):
        (backup / name).unlink()
    assert run_folder.backed_up_epochs(backup) is None and not backup.exists()  # so the run starts over
    assert run_folder.backed_up_epochs(backup) is None


def test_diverged_run_is_an_error_and_leaves_no_model(tmp_path):
    config = train.Config(**{**TINY, "epochs": 2}, learning_rate=1e6)
    with pytest.raises(InputError, match=r"--learning_rate=1e\+06: training diverged in epoch 1"):
        train.train_and_evaluate(config, tmp_path)
    assert not (tmp_path / "mnist.keras").exists() and not (tmp_path / "best.keras").exists()
    assert not (tmp_path / "backup").exists()  # nothing to resume from
    history = json.loads((tmp_path / "history.json").read_text())  # strict JSON: NaN is null
    assert history["epochs"][0]["avg_loss"] is None


@pytest.mark.slow
def test_killed_run_resumes_where_it_stopped(tmp_path):
    args = ["--epochs=3", "--train_examples=3000", "--validation_examples=500", "--test_examples=500",
            "--progress=none"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    run = subprocess.Popen([sys.executable, "-m", "mnist_keras.train", *args], cwd=tmp_path,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    metadata = tmp_path / "saved_models" / "backup" / "training_metadata.json"
    try:
        for line in run.stdout:
            if line.startswith("Epoch 1/3:"):
                break
        deadline = time.monotonic() + 60
        while not backed_up(metadata) and time.monotonic() < deadline:
            time.sleep(0.01)
        run.send_signal(signal.SIGKILL)
    finally:
        run.wait()
    assert run.returncode == -signal.SIGKILL
    assert keras_file.load_keras(tmp_path / "saved_models" / "best.keras").count_params() == 421_642

    other = run_module("mnist_keras.train", *args[:-1], "--seed=1", "--progress=none", cwd=tmp_path)
    assert_one_line_error(other, "unfinished run", "--seed=0 then, 1 now")

    resumed = run_module("mnist_keras.train", *args[:-1], cwd=tmp_path)  # --progress=bar, into a pipe
    assert resumed.returncode == 0, resumed.stderr
    assert "\x1b" not in resumed.stdout and "━" not in resumed.stdout  # no bar in a log
    done = json.loads(metadata.read_text())["epoch"] if metadata.exists() else None
    assert done is None  # the backup is gone once the run finishes
    match = re.search(r"Resuming .*: (\d) of 3 epochs done, continuing with epoch (\d)", resumed.stdout)
    assert match, resumed.stdout
    first = int(match.group(2))
    assert not re.search(rf"^Epoch {first - 1}/3:", resumed.stdout, re.M)
    history = json.loads((tmp_path / "saved_models" / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]

    # The resumed run is the run that was interrupted: same orders, same state, same losses.
    # The uninterrupted reference needs no process of its own.
    config = train.Config(epochs=3, train_examples=3000, validation_examples=500, test_examples=500,
                          progress="none")
    uninterrupted = train.train_and_evaluate(config, tmp_path / "whole").record
    np.testing.assert_allclose([e["avg_loss"] for e in history["epochs"]],
                               [e["avg_loss"] for e in uninterrupted["epochs"]], rtol=1e-4)


def test_help_explains_every_flag(tmp_path):
    result = run_module("mnist_keras.train", "--help", cwd=tmp_path)
    assert result.returncode == 0  # (absl alone exits 1 after its help)
    for flag in ("epochs", "written_share", "reshape_share", "batch_size", "learning_rate", "lr_schedule", "seed",
                 "data_dir", "tfds",
                 "model_dir", "train_examples", "validation_examples", "test_examples", "jit_compile",
                 "strategy", "precision", "cpu_replicas", "lr_scaling", "progress", "[no]resume", "[no]report"):
        assert re.search(rf"^  --{re.escape(flag)}: \S", result.stdout, re.M), flag
    assert "tensorflow" not in result.stderr.lower()  # --help answers without importing TensorFlow
