"""Real distribution on a CPU-only machine: two logical CPUs, and two worker processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from mnist_keras.errors import InputError
from mnist_keras.training import distribute, keras_file, metrics, train
from tests.helpers import REPO, assert_one_line_error, backed_up, run_module

ARGS = ["--epochs=2", "--train_examples=1280", "--validation_examples=500", "--test_examples=500",
        "--progress=none"]


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    """MirroredStrategy over the CPU split in two logical devices."""
    folder = tmp_path_factory.mktemp("mirrored")
    result = run_module("mnist_keras.train", *ARGS, "--cpu_replicas=2", "--model_dir=run", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return result, folder / "run"


def start_workers(folder, count: int = 2, args: list[str] = ARGS) -> list[subprocess.Popen]:
    """`python -m mnist_keras.train --strategy=multi_worker` per worker, TF_CONFIG for each."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    processes = []
    for index in range(count):
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "mnist_keras.train", *args, "--strategy=multi_worker",
             "--model_dir=run"], cwd=folder, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return processes


def finish(processes: list[subprocess.Popen], timeout: float = 300) -> list[str]:
    """Every worker's stdout once all have ended; past the timeout none is left running, and the
    failure shows what each one wrote (a worker that exits early leaves the others waiting for it)."""
    deadline = time.monotonic() + timeout
    try:
        outputs = [p.communicate(timeout=max(1.0, deadline - time.monotonic())) for p in processes]
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        said = [f"worker {n} (exit {p.returncode}): {out[-1500:]}{err[-1500:]}"
                for n, (p, (out, err)) in enumerate(zip(processes, [p.communicate() for p in processes]))]
        pytest.fail(f"the workers had not ended after {timeout:.0f} s:\n" + "\n".join(said))
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, out + err
    return [out for out, _ in outputs]


@pytest.fixture(scope="module")
def multi_worker(tmp_path_factory):
    """Two MultiWorkerMirroredStrategy workers on 127.0.0.1, sharing one folder as a try-out."""
    folder = tmp_path_factory.mktemp("multi_worker")
    return finish(start_workers(folder)), folder / "run"


def fingerprints(stdout: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith("Weights: "))
    assert "identical on" in line, line
    return line.rsplit("fingerprint ", 1)[1].split(", ")


@pytest.mark.slow
def test_mirrored_over_two_cpus_keeps_replicas_identical(mirrored, mnist):
    result, run = mirrored
    assert "Weights: identical on the 2 local replicas" in result.stdout
    assert "Strategy: MirroredStrategy over 2 replica(s)" in result.stdout
    assert "global batch 128 = 64 per replica x 2; learning rate 0.002 = 0.001 x 2" in result.stdout
    history = json.loads((run / train.HISTORY_FILE).read_text())
    assert len(history["weights_fingerprints"]) == 2 and len(set(history["weights_fingerprints"])) == 1
    assert history["written_digits"] == 230  # 18% as many digits in other styles beside the 1,280
    assert history["steps_per_epoch"] == 12  # 1,510 images in global batches of 128
    losses = [e["avg_loss"] for e in history["epochs"]]
    assert losses[1] < losses[0]
    model = keras_file.load_keras(run / train.MODEL_FILE)
    assert metrics.evaluate(model, mnist.x_test[:500], mnist.y_test[:500])["accuracy"] > 60


@pytest.mark.slow
def test_two_workers_train_to_the_same_weights(multi_worker, mnist):
    outputs, run = multi_worker
    chief, worker = outputs
    assert "this is worker 0 (the chief: it writes the outputs)" in chief
    assert "this is worker 1 (the chief writes the outputs)" in worker
    assert fingerprints(chief) == fingerprints(worker)  # every replica ends with the same weights
    assert "Weights: identical on all 2 replicas of the 2 workers" in chief
    # --precision=auto: each worker measures, and both choose from the same mean figures
    chosen = [re.search(r"^Precision: (\S+) \(measured .*; mean of 2 workers\)$", out, re.M) for out in outputs]
    assert all(chosen) and chosen[0].group(1) == chosen[1].group(1), outputs
    history = json.loads((run / train.HISTORY_FILE).read_text())
    assert history["strategy"]["workers"] == 2 and history["strategy"]["replicas"] == 2
    losses = [e["avg_loss"] for e in history["epochs"]]
    assert losses[1] < losses[0]
    model = keras_file.load_keras(run / train.MODEL_FILE)
    assert metrics.evaluate(model, mnist.x_test[:500], mnist.y_test[:500])["accuracy"] > 60
    assert not (run / train.BACKUP_DIR).exists()


@pytest.mark.slow
def test_two_workers_compute_what_two_local_replicas_compute(mirrored, multi_worker):
    """The same global batches, split the same way: the same run, to float rounding."""
    _, mirrored_run = mirrored
    _, worker_run = multi_worker
    ours = json.loads((mirrored_run / train.HISTORY_FILE).read_text())
    theirs = json.loads((worker_run / train.HISTORY_FILE).read_text())
    np.testing.assert_allclose([e["avg_loss"] for e in ours["epochs"]],
                               [e["avg_loss"] for e in theirs["epochs"]], rtol=1e-4)


@pytest.mark.parametrize("tf_config, fragment", [
    ("{not json", "TF_CONFIG: not valid JSON"),
    ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}}', 'TF_CONFIG: no "task"'),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "ps", "index": 0}}',
     "task type 'ps' is unknown"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
     "task index 3 is not one of the cluster's 1 worker task(s)"),
    ('{"cluster": {"worker": "127.0.0.1:1"}, "task": {"type": "worker", "index": 0}}',
     "must be a list of \"host:port\" strings"),
    ('[1, 2]', "must be a JSON object"),
])
def test_a_malformed_tf_config_is_one_line(tf_config, fragment):
    with pytest.raises(InputError) as raised:
        distribute.read_tf_config({"TF_CONFIG": tf_config})
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_a_malformed_tf_config_stops_the_command_before_anything(tmp_path):
    result = run_module("mnist_keras.train", "--epochs=1", "--model_dir=run", cwd=tmp_path,
                        env={"TF_CONFIG": "{not json"})
    assert_one_line_error(result, "TF_CONFIG: not valid JSON")
    assert not (tmp_path / "run").exists()


def test_multi_worker_without_tf_config_is_one_line(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(InputError, match="--strategy=multi_worker: TF_CONFIG is not set"):
        distribute.place("multi_worker")


def test_auto_chooses_by_what_there_is():
    cluster = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert distribute.choose("auto", None, gpus=0, cpu_replicas=1) == "default"
    assert distribute.choose("auto", None, gpus=2, cpu_replicas=1) == "mirrored"
    assert distribute.choose("auto", None, gpus=0, cpu_replicas=2) == "mirrored"
    assert distribute.choose("auto", cluster, gpus=0, cpu_replicas=1) == "multi_worker"
    assert distribute.choose("one_device", None, gpus=2, cpu_replicas=1) == "one_device"
    assert not distribute.is_chief(cluster) and distribute.is_chief(None)
    assert distribute.is_chief({"cluster": {"chief": ["c:1"], "worker": ["a:1"]},
                                "task": {"type": "chief", "index": 0}})


@pytest.mark.slow
def test_killed_workers_resume_from_the_chief_backup(multi_worker, tmp_path):
    """Both workers SIGKILLed after epoch 1 and started again: the run goes on where it was."""
    _, reference = multi_worker
    processes = start_workers(tmp_path)
    history = tmp_path / "run" / train.HISTORY_FILE
    backup = tmp_path / "run" / train.BACKUP_DIR / "training_metadata.json"
    deadline = time.monotonic() + 120
    while not backed_up(backup):  # the chief has backed up epoch 1
        assert all(p.poll() is None for p in processes) and time.monotonic() < deadline
        time.sleep(0.005)
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.wait()
    chief, worker = finish(start_workers(tmp_path))
    assert "Resuming the unfinished run" in chief and "Resuming from the chief's backup: 1 of 2" in worker
    assert fingerprints(chief) == fingerprints(worker)
    resumed = json.loads(history.read_text())
    uninterrupted = json.loads((reference / train.HISTORY_FILE).read_text())
    np.testing.assert_allclose([e["avg_loss"] for e in resumed["epochs"]],
                               [e["avg_loss"] for e in uninterrupted["epochs"]], rtol=1e-4)


@pytest.mark.slow
def test_when_a_worker_dies_the_others_stop_with_one_line(tmp_path):
    processes = start_workers(tmp_path, args=["--epochs=3", "--train_examples=12800",
                                              "--test_examples=500", "--progress=none"])
    backup = tmp_path / "run" / train.BACKUP_DIR / "training_metadata.json"
    deadline = time.monotonic() + 120
    while not backed_up(backup):  # epoch 1 done and backed up
        assert all(p.poll() is None for p in processes) and time.monotonic() < deadline
        time.sleep(0.01)
    processes[1].send_signal(signal.SIGKILL)
    processes[1].wait()
    out, err = processes[0].communicate(timeout=180)
    result = subprocess.CompletedProcess(processes[0].args, processes[0].returncode, out, err)
    assert_one_line_error(result, "a worker of the cluster failed", "start every worker again",
                          only_line=False)
