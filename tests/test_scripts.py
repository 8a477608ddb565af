"""The measuring script behind the README's figures runs and reports every seed."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO


def test_accuracy_by_seed_reports_each_run(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "accuracy_by_seed.py"), "--seeds=0,1", "--epochs=1",
         "--train_examples=500", "--test_examples=200"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^seed +(\d): epoch 1 +([\d.]+)%  final +([\d.]+)%", result.stdout, re.M)
    assert [row[0] for row in rows] == ["0", "1"]
    assert all(row[1] == row[2] for row in rows)  # one epoch: first and final are the same model
    summary = re.search(r"^2 runs on CPU .*, 1 epochs: final test accuracy min ([\d.]+)%", result.stdout, re.M)
    assert summary and float(summary.group(1)) == min(float(row[2]) for row in rows)
