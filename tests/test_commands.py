"""Each command's --help lists its flags, without TensorFlow's start-up (the flags are the CLI's only),
as `python -m` and as the installed console script."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from tests.helpers import REPO

FLAGS = {
    "evaluate": ["model", "json", "negatives", "data_dir", "tfds", "test_examples"],
    "export": ["model", "serving_dir", "export_dir", "formats", "max_drop", "calibration_examples", "data_dir"],
    "verify": ["model", "max_drop", "data_dir", "tfds", "test_examples"],
    "predict": ["model", "top_k", "[no]json"],
    "report": ["model", "export_json", "feature_map_index", "data_dir"],
    "no_digit": ["model", "validation_examples", "max_refused", "data_dir"],
    "serve": ["model_base_path", "model_name", "host", "port", "max_instances", "max_body_mb", "[no]access_log"],
}


@pytest.mark.parametrize("command", FLAGS)
def test_help_lists_every_flag_without_loading_tensorflow(command, tmp_path):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", f"mnist_keras.{command}", "--help"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0
    for flag in [*FLAGS[command], "[no]verbose"]:
        assert re.search(rf"^  --{re.escape(flag)}: \S", result.stdout, re.M), (flag, result.stdout)
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "import time:" in line]
    assert "mnist_keras" in imported and not [m for m in imported if m.startswith(("tensorflow", "keras"))]


SCRIPTS = {"mnist-train": ["epochs", "written_share", "model_dir"], "mnist-evaluate": FLAGS["evaluate"],
           "mnist-export": FLAGS["export"], "mnist-verify": FLAGS["verify"], "mnist-predict": FLAGS["predict"],
           "mnist-no-digit": FLAGS["no_digit"], "mnist-serve": FLAGS["serve"], "mnist-report": FLAGS["report"]}


def test_every_console_script_in_pyproject_is_checked():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(declared) == set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_installed_script_lists_its_own_flags(script, tmp_path):
    """absl lists the flags of the module it runs as: for a console script, its wrapper in bin/ (issue 27)."""
    path = shutil.which(script)
    if path is None:
        pytest.skip(f"{script} is not installed (pip install -e .)")
    result = subprocess.run([path, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for flag in SCRIPTS[script]:
        assert re.search(rf"^  --{re.escape(flag)}: \S", result.stdout, re.M), (flag, result.stdout[:2000])


# Lines TensorFlow, absl, LiteRT and the TFLite converter print from C++ (seen on mnist-export's stderr).
LIBRARY_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796374655.056368   23606 port.cc:153] oneDNN custom operations are on.",
    "E0000 00:00:1796374656.744788   23606 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
    "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: UINT8",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]
NOISY_COMMAND = """
import os, sys
from mnist_keras import cli

def main(argv):
    os.write(2, {lines!r})  # as C++ writes: file descriptor 2
    print("the command's own line", file=sys.stderr, flush=True)
    if argv[1:] == ["crash"]:
        raise RuntimeError("a bug")

cli.run(main)
""".replace("{lines!r}", repr("".join(line + "\n" for line in LIBRARY_LINES).encode()))


@pytest.mark.parametrize("args", [[], ["--verbose"], ["crash"]])
def test_library_log_lines_are_hidden_unless_asked_for_or_a_command_fails(args, tmp_path):
    """What C++ writes to stderr never reaches the user, but with --verbose, or after a traceback (issue 27)."""
    script = tmp_path / "noisy.py"
    script.write_text(NOISY_COMMAND)
    result = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    lines = result.stderr.splitlines()
    if not args:
        assert result.returncode == 0 and lines == ["the command's own line"], result.stderr
    elif args == ["--verbose"]:
        assert result.returncode == 0 and lines == [*LIBRARY_LINES, "the command's own line"], result.stderr
    else:
        assert result.returncode == 1 and lines[0] == "the command's own line", result.stderr
        assert lines[-1] == "RuntimeError: a bug", result.stderr  # the traceback last, after the replay
        replay = lines.index("The libraries' log lines, hidden while the command ran (--verbose shows them):")
        assert lines[replay + 1:replay + 1 + len(LIBRARY_LINES)] == LIBRARY_LINES, result.stderr



# command: (its config dataclass, flags given, the fields they set)
CONFIGS = {"train": ("mnist_keras.training.config", "Config", ["--epochs=3", "--precision=float32"],
                     {"epochs": 3, "precision": "float32"}),
           "serve": ("mnist_keras.serving.config", "ServerOptions", ["--port=9000", "--noenable_model_warmup"],
                     {"port": 9000, "enable_model_warmup": False})}


@pytest.mark.parametrize("command", CONFIGS)
def test_the_config_dataclass_gives_every_flag_its_default_and_the_flags_fill_it(command):
    """Defaults are written once, in the command's config dataclass: with no flags the config is the
    dataclass's own defaults, and each flag given lands in its field."""
    module, name, given, expected = CONFIGS[command]
    script = (f"import dataclasses, json\nfrom absl import flags\nfrom mnist_keras import cli, {command}\n"
              f"from {module} import {name}\n{command}.define_flags()\n"
              f"flags.FLAGS(['x'])\nassert cli.config_from_flags({name}) == {name}(), 'defaults differ'\n"
              f"flags.FLAGS.unparse_flags()\nflags.FLAGS(['x', *{given!r}])\n"
              f"print(json.dumps(dataclasses.asdict(cli.config_from_flags({name}))))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    filled = json.loads(result.stdout)
    assert {key: filled[key] for key in expected} == expected
    defaults = json.loads(json.dumps(dataclasses.asdict(getattr(importlib.import_module(module), name)())))
    assert {key: value for key, value in filled.items() if key not in expected} == {
        key: value for key, value in defaults.items() if key not in expected}  # the rest as the dataclass says
