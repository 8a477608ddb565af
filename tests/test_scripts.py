"""The measuring scripts behind the README's figures run and print every row."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, assert_one_line_error

# torch in a venv of its own (docs/benchmarks.md); where there is none, the benchmark skips the row.
TORCH_VENV = Path("/opt/torchenv/bin/python")
TORCH_PIPELINE = REPO.parent / "shared" / "peer" / "torch_pipeline.py"


@pytest.mark.slow
def test_accuracy_by_seed_reports_each_run(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "accuracy_by_seed.py"), "--seeds=0,1", "--epochs=1",
         "--train_examples=500", "--validation_examples=300", "--test_examples=200"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^seed +(\d): validation epoch 1 +([\d.]+)%  last +([\d.]+)%  final test +([\d.]+)%",
                      result.stdout, re.M)
    assert [row[0] for row in rows] == ["0", "1"]
    assert all(row[1] == row[2] for row in rows)  # one epoch: the first epoch is the last
    rows = [(seed, first, test) for seed, first, _, test in rows]
    summary = re.search(r"^2 runs on CPU .*, 1 epochs: final test accuracy min ([\d.]+)%", result.stdout, re.M)
    assert summary and float(summary.group(1)) == min(float(row[2]) for row in rows)


def run_script(name: str, *args: str, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python scripts/<name> args` with this checkout's mnist_keras importable."""
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True,
                          timeout=timeout)


def test_benchmark_prints_every_row(exported, tmp_path):
    """A tiny setting, no timing asserted: each row is there, with a number in it."""
    out = exported.folder
    model_path = exported.model_path
    torch_python = TORCH_VENV if TORCH_VENV.exists() else Path(sys.executable)  # the project's: no torch
    has_torch = subprocess.run([torch_python, "-c", "import torch"], capture_output=True).returncode == 0
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "benchmark.py"), "--quick", f"--model={model_path}",
         f"--saved_model={exported.serving}", f"--export_dir={out / 'export'}",
         f"--torch_pipeline={TORCH_PIPELINE}", f"--torch_python={torch_python}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^Machine: \d+ CPU cores", result.stdout, re.M)
    assert re.search(r"^Versions: .*TensorFlow 2\.21", result.stdout, re.M)
    expected = [r"training +epoch of 640 images, batch 64, (float32|mixed_bfloat16) .* s wall +[\d.]+ CPU-s",
                r"training +images per second +[\d,]+",
                r"floor .*float32 matmul speed \(\d+ GFLOP/s\) +[\d.]+ s +epoch = [\d.]+x floor",
                r"floor .*bfloat16 matmul speed",
                r"ratio +epoch / floor of the chosen precision \((float32|mixed_bfloat16); aim <= 1\.6\) +"
                r"[\d.]+ s / [\d.]+ s += [\d.]+",
                *([r"torch +PyTorch version \(torch 2[\d.]+\S*\), an epoch of the same images, alternated +"
                   r"[\d.]+ s wall +[\d.]+ CPU-s",
                   r"ratio +epoch CPU-s / the PyTorch version's \(aim <= 0\.45\) +[\d.]+ / [\d.]+ CPU-s +"
                   r"(= [\d.]+|\(PyTorch)"]
                  if has_torch and TORCH_PIPELINE.exists() else
                  [r"ratio +epoch CPU-s / the PyTorch version's: skipped: no (torch in|\S*torch_pipeline\.py)"]),
                *[rf"inference +mnist_{fmt}\.tflite: one image, 1 thread.* +[\d.]+ us"
                  for fmt in ("dynamic_int8", "float16", "float32", "int8")],
                *[rf"inference +mnist_{fmt}\.tflite: batches of 1000.* +\d+ img/s"
                  for fmt in ("dynamic_int8", "float16", "float32", "int8")],
                r"inference +a one-ReLU int8 model: the fixed cost of an invoke.* +[\d.]+ us",
                r"inference +mnist_camera\.tflite: \d+x\d+ RGB, preprocessing \+ CNN.* +[\d.]+ us.* +0\.\d\d MB",
                r"inference +  its preprocessing alone \(float32 \.tflite: \d+ ops, [123] XNNPACK partitions\)"
                r" +[\d.]+ us.* +\d+% of the camera model",
                r"inference +  the CNN alone \(mnist_rgb\.tflite.* +[\d.]+ us.* +preprocessing = [\d.]+x the CNN",
                r"ratio +camera preprocessing / the CNN alone \(aim <= 1\.0\) +[\d.]+ / [\d.]+ us += [\d.]+",
                r"inference +  mnist_int8\.tflite, the same repeats +[\d.]+ us",
                r"ratio +camera model / mnist_int8\.tflite \(aim <= 2\.0\) +[\d.]+ / [\d.]+ us += [\d.]+",
                r"floor +4\.24 M multiply-adds per image at LiteRT's int8 matmul speed \(\d+ GMAC/s, 1 thread\)"
                r" +[\d.]+ us +int8 \.tflite = [\d.]+x floor",
                r"inference +Keras model: batches of 1000.* \d+ img/s",
                r"inference +SavedModel 1: batches of 1000.* \d+ img/s",
                r"start-up +python -m mnist_keras.predict one.png.* [\d.]+ s"]
    for pattern in expected:
        assert re.search(pattern, result.stdout, re.M), pattern


@pytest.mark.parametrize("missing, fragment", [
    ("model", "mnist.keras: no such model file"),
    ("saved_model", "no such folder; run mnist-export first"),
    ("export_dir", "mnist_int8.tflite: no such model; run mnist-export first"),
])
def test_benchmark_without_a_model_is_one_line(exported, tmp_path, missing, fragment):
    """Checked before the training runs: one line within seconds, not a traceback minutes later."""
    model_path = exported.model_path
    paths = {"model": model_path, "saved_model": exported.serving, "export_dir": exported.export,
             missing: tmp_path / "nowhere" / "mnist.keras"}
    result = run_script("benchmark.py", "--quick", *[f"--{flag}={path}" for flag, path in paths.items()],
                        cwd=tmp_path, timeout=60)
    assert_one_line_error(result, fragment)
    assert result.stdout == ""


def test_benchmark_with_a_bad_model_is_one_line(exported, tmp_path):
    out = exported.folder
    (tmp_path / "bad.keras").write_text("not a model")
    result = run_script("benchmark.py", "--quick", f"--model={tmp_path / 'bad.keras'}",
                        f"--saved_model={exported.serving}", f"--export_dir={out / 'export'}", cwd=tmp_path,
                        timeout=60)
    assert_one_line_error(result, "bad.keras: not a Keras model file")


@pytest.mark.slow
def test_epoch_parts_prints_every_part(tmp_path):
    """A tiny setting, no timing asserted: each part of the step is timed and printed."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "epoch_parts.py"), "--quick", "--precision=float32"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\d+ CPU cores, float32 \(as asked\); batch 64; medians of 2 rounds of 5 steps",
                     result.stdout, re.M)
    for part in ("input pipeline alone", "forward pass", "forward and backward passes",
                 "Adam update alone, fused", "Adam update alone, Keras' ops", "whole training step"):
        assert re.search(rf"^{re.escape(part)}.* +[\d.]+ s wall +[\d.]+ CPU-s$", result.stdout, re.M), part


@pytest.mark.slow
def test_settings_sweep_prints_every_setting(tmp_path):
    """A tiny setting, no timing asserted: each candidate is measured and printed, threads in a child."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "settings_sweep.py"), "--quick", "--precision=float32",
         "--threads=1:1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr
    assert re.search(r"^.*, \d+ CPU cores; float32 \(as asked\); batch 64; medians of 2 interleaved rounds",
                     result.stdout, re.M)
    for name in ("steps per call 2", "steps per call 4", "pipeline: permutation gather, 4 per call",
                 "pipeline: shuffled stream (training's), 4 per call", "threads intra-op 1, inter-op 1"):
        assert re.search(rf"^{re.escape(name)} +[\d.]+ s wall +[\d.]+ CPU-s$", result.stdout, re.M), name
