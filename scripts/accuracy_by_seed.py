"""Runs the training command once per seed and tabulates validation and test accuracy, and time.

    python scripts/accuracy_by_seed.py --seeds 0,1,2 --epochs 5

This is how docs/training.md's "Expected results" are measured. Each run is a separate
`python -m mnist_keras.train` process, as a user runs it; its CPU time (user + sys)
is read from the operating system, its per-epoch times from its history.json. These
machines stall now and then, so compare CPU-seconds beside wall time and medians.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds to train with, one run each.")
flags.DEFINE_integer("epochs", 5, "Epochs per run.", lower_bound=1)
flags.DEFINE_integer("train_examples", 0, "First N training images (0: all not held out).", lower_bound=0)
flags.DEFINE_integer("validation_examples", 5000, "Last N training images held out for validation.",
                     lower_bound=0)
flags.DEFINE_integer("test_examples", 0, "First N test images (0: all).", lower_bound=0)
flags.DEFINE_multi_string("train_flag", [], "Another flag for every run, e.g. --train_flag=--lr_schedule=constant.")
FLAGS = flags.FLAGS


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_one(seed: str, workdir: Path) -> dict:
    command = [sys.executable, "-m", "mnist_keras.train", f"--seed={seed}", f"--epochs={FLAGS.epochs}",
               f"--train_examples={FLAGS.train_examples}", f"--validation_examples={FLAGS.validation_examples}",
               f"--test_examples={FLAGS.test_examples}",
               f"--model_dir={workdir}", "--progress=none", "--noresume", *FLAGS.train_flag]
    cpu, wall = children_cpu_seconds(), time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - wall, children_cpu_seconds() - cpu
    if result.returncode != 0:
        sys.exit(f"error: seed {seed}: training failed: {result.stderr.strip().splitlines()[-1]}")
    history = json.loads((workdir / "history.json").read_text())
    epochs = history["epochs"]
    return {
        "seed": seed,
        "first": epochs[0]["val_accuracy"],
        "last": epochs[-1]["val_accuracy"],
        "final": history["test"]["accuracy"],
        "epoch_wall": statistics.median(e["wall_seconds"] for e in epochs),
        "epoch_cpu": statistics.median(e["cpu_seconds"] for e in epochs),
        "run_wall": wall,
        "run_cpu": cpu,
        "device": history["device"],
    }


def percent(value: float | None) -> str:
    return "    - " if value is None else f"{value:6.2f}%"  # None: no validation split


def main(argv: list[str]) -> None:
    del argv  # unused
    rows = []
    with tempfile.TemporaryDirectory(prefix="accuracy_by_seed.") as tmp:
        for seed in FLAGS.seeds:
            rows.append(run_one(seed, Path(tmp) / f"seed{seed}"))
            row = rows[-1]
            print(f"seed {row['seed']:>4}: validation epoch 1 {percent(row['first'])}  "
                  f"last {percent(row['last'])}  final test {row['final']:6.2f}%  "
                  f"epoch {row['epoch_wall']:5.1f} s wall {row['epoch_cpu']:5.1f} CPU-s (median)  "
                  f"run {row['run_wall']:6.1f} s wall {row['run_cpu']:6.1f} CPU-s", flush=True)
    finals = [row["final"] for row in rows]
    print(f"{len(rows)} runs on {rows[0]['device']}, {FLAGS.epochs} epochs: final test accuracy "
          f"min {min(finals):.2f}%, median {statistics.median(finals):.2f}%, max {max(finals):.2f}%; "
          f"median epoch {statistics.median(r['epoch_wall'] for r in rows):.1f} s wall, "
          f"{statistics.median(r['epoch_cpu'] for r in rows):.1f} CPU-s")


if __name__ == "__main__":
    app.run(main)
