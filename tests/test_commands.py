"""Each command's --help lists its flags, without TensorFlow's start-up (the flags are the CLI's only)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

FLAGS = {
    "evaluate": ["model", "json", "negatives", "data_dir", "tfds", "test_examples"],
    "export": ["model", "serving_dir", "export_dir", "formats", "max_drop", "calibration_examples", "data_dir"],
    "verify": ["model", "max_drop", "data_dir", "tfds", "test_examples"],
    "predict": ["model", "top_k", "[no]json"],
    "report": ["model", "export_json", "feature_map_digit", "data_dir"],
    "no_digit": ["model", "validation_examples", "data_dir"],
    "serve": ["model_base_path", "model_name", "host", "port", "max_instances", "max_body_mb", "[no]access_log"],
}


@pytest.mark.parametrize("command", FLAGS)
def test_help_lists_every_flag_without_loading_tensorflow(command, tmp_path):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", f"mnist_keras.{command}", "--help"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    for flag in FLAGS[command]:
        assert re.search(rf"^  --{re.escape(flag)}: \S", result.stdout, re.M), (flag, result.stdout)
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "import time:" in line]
    assert "mnist_keras" in imported and not [m for m in imported if m.startswith(("tensorflow", "keras"))]
