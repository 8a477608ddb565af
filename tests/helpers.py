"""What the tests share: running commands, starting servers, driving a browser, the fixtures' records.

The one place for helpers: a test module imports from here (and fixtures come from conftest.py),
never from another test module (tests/test_layout.py checks it).
"""

from __future__ import annotations

import functools
import http.client
import http.server
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from mnist_keras.exporting import web_page

REPO = Path(__file__).resolve().parent.parent

# The trained fixture's settings: 4,000 training images (the first), 2,000 held out for
# validation (the last of the 60,000), the first 2,000 test images.
TRAINED_CONFIG = {"epochs": 3, "train_examples": 4000, "validation_examples": 2000, "test_examples": 2000,
                  "progress": "none"}


# --- The session fixtures' records ---------------------------------------------------------

@dataclass(frozen=True)
class TrainingRun:
    """A training run of the small model (fixtures training_run and trained)."""

    model: Any  # the keras.Model in memory, as train_and_evaluate returned it
    record: dict  # what history.json holds
    workdir: Path

    @property
    def model_path(self) -> Path:
        from mnist_keras.training import train

        return self.workdir / train.MODEL_FILE


@dataclass(frozen=True)
class Exported:
    """export_model's run on the small model (fixture exported)."""

    summary: Any  # steps.export_model's summary
    folder: Path  # holds serving/ and export/
    model_path: Path  # the .keras file it exported

    @property
    def serving(self) -> Path:
        """The SavedModel base path (versions in it), as TF Serving reads it."""
        return self.folder / "serving"

    @property
    def export(self) -> Path:
        """The .tflite files, their descriptions and web/."""
        return self.folder / "export"


# --- Commands ------------------------------------------------------------------------------

def run_module(module: str, *args: str, cwd: Path, timeout: float = 300,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs `python -m module args` as a user would, with this checkout importable."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str,
                          only_line: bool = True) -> str:
    """A user error: non-zero exit, no traceback, and one line naming what is wrong.

    only_line: stderr holds nothing else (the commands hide TensorFlow's own lines); False where
    other processes' words may come first (a worker of a cluster).
    """
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    if only_line:
        assert len(lines) == 1, result.stderr
    last = lines[-1]
    assert last.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last
    return last


# The lines TensorFlow, absl, LiteRT and the TFLite converter print on their own (issue 27).
LIBRARY_LINE = re.compile(r"^([IWE]\d{4} |WARNING: All log messages|fully_quantize|INFO: Created TensorFlow Lite"
                          r"|.*failed call to cuInit)", re.M)


def assert_no_library_lines(result: subprocess.CompletedProcess) -> None:
    """A command's output holds only the project's lines: none of TensorFlow's, LiteRT's or the converter's."""
    found = LIBRARY_LINE.findall(result.stdout + result.stderr)
    assert not found, result.stdout[-2000:] + result.stderr[-3000:]


# --- Servers -------------------------------------------------------------------------------

def free_port() -> int:
    """A port free now (REST's 0 means "no REST", as in TF Serving)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*args: str, cwd: Path, stderr: Any = subprocess.DEVNULL) -> tuple[subprocess.Popen, int]:
    """`python -m mnist_keras.serve --port 0 --rest_api_port P ...`; returns once it listens, with P."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_keras.serve", "--port=0", f"--rest_api_port={free_port()}", *args], cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines = [process.stdout.readline() for _ in range(2)]  # "Serving version 1 ... loaded", then where
    match = re.search(r"at http://127\.0\.0\.1:(\d+)/", lines[-1])
    line = "".join(lines)
    if not match:
        process.kill()
        raise AssertionError(f"server did not start: {line!r}")
    return process, int(match.group(1))


def call(port: int, method: str, path: str, body: bytes | str | None = None) -> tuple[int, dict]:
    """One REST request to 127.0.0.1:port: (status, the JSON answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(method, path, body.encode() if isinstance(body, str) else body)
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, payload


def request(images: np.ndarray, name: str = "mnist", version: int | None = None, dtype=np.float32,
            input_name: str = "images"):
    """A TF Serving gRPC PredictRequest (tensorflow-serving-api's proto) for `images`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    message = predict_pb2.PredictRequest()
    message.model_spec.name = name
    message.model_spec.signature_name = "serving_default"
    if version is not None:
        message.model_spec.version.value = version
    message.inputs[input_name].CopyFrom(tf.make_tensor_proto(np.asarray(images, dtype)))
    return message


def scaled(mnist, n: int, start: int = 0) -> np.ndarray:
    """n test images from `start`, [n, 28, 28, 1] float32 in [0, 1], as the signature takes them."""
    return mnist.x_test[start:start + n, :, :, None].astype(np.float32) / 255.0


def assert_load_script_measures(target: str) -> None:
    """scripts/load.py against `target` (--url=... or --grpc=...): a row per client count, no errors."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "load.py"), target, "--requests=40", "--clients=1,4", "--warmup=5"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r"\s+\d+\s+40\s", line)]
    assert [row[0] for row in rows] == ["1", "4"]
    for row in rows:
        assert row[2] == "0" and float(row[3]) > 0 and 0 < float(row[4]) <= float(row[5])


# --- The browser ---------------------------------------------------------------------------

REQUIRED = bool(os.environ.get("MNIST_KERAS_REQUIRE_BROWSER"))  # CI: a missing browser fails, not skips
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RUNTIME = web_page.default_runtime()  # LiteRT.js, for export/web/


def require_browser(runtime: bool = False) -> None:
    """Skips the calling test module without Debian's chromium (and, with runtime, LiteRT.js)."""
    if not REQUIRED and not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed: apt-get install chromium", allow_module_level=True)
    if runtime and not REQUIRED and not (RUNTIME / web_page.RUNTIME_PACKAGE).is_dir():
        pytest.skip(f"LiteRT.js is not installed: {web_page.SET_UP}", allow_module_level=True)


def launch_chromium():
    """Headless Chromium for a module's tests (a generator, for a fixture to yield from)."""
    from playwright import sync_api as playwright_api  # installed by .[dev]

    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def static_server(folder: Path) -> http.server.ThreadingHTTPServer:
    """A plain static file server for `folder` on 127.0.0.1, in a thread, as any static host would be."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Offline:
    """A browser page whose requests outside its own origin are aborted and recorded."""

    def __init__(self, browser, url: str, init_script: str | None = None):
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        self.foreign: list[str] = []
        self.requests: list[str] = []
        self.context = browser.new_context()
        if init_script:
            self.context.add_init_script(init_script)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.goto(url)

    def _route(self, route):
        url = route.request.url
        self.requests.append(url)
        if url.startswith(("data:", "blob:")) or url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def close(self):
        self.context.close()


def shown(page) -> tuple[str, list[float]]:
    """What export/web/'s page shows once it has answered the last stroke."""
    page.wait_for_function("document.getElementById('prediction').textContent !== ''")
    page.wait_for_timeout(200)  # strokes made during an inference are read after it
    return read(page)


def read(page) -> tuple[str, list[float]]:
    """The digit and the bars' probabilities, as the page shows them now."""
    digit = page.locator("#prediction").text_content()
    probabilities = page.eval_on_selector_all(".bar", "bars => bars.map(b => Number(b.dataset.probability))")
    return digit, probabilities


def upload(page, path: Path) -> None:
    """Gives export/web/'s page a file; returns once it has read it (or said why not)."""
    page.evaluate("window.mnistWeb.stats.lastInput = null")
    page.set_input_files("#upload", str(path))
    page.wait_for_function("window.mnistWeb.stats.lastInput !== null"
                           " || document.getElementById('status').textContent !== ''")


def keep(picture: Path) -> Path:
    """A picture a person should look at (a screenshot): copied into $MNIST_KERAS_TEST_OUTPUT when that
    is set (CI keeps the folder), else left in pytest's folder, which a passing run removes."""
    folder = os.environ.get("MNIST_KERAS_TEST_OUTPUT")
    if not folder:
        return picture
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(picture, Path(folder) / picture.name))


def preview(page, selector: str) -> np.ndarray:
    """The RGBA pixels [H, W, 4] of a canvas on the page, as it holds them now."""
    data = page.locator(selector).evaluate(
        "c => ({ w: c.width, h: c.height,"
        "        rgba: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) })")
    return np.asarray(data["rgba"], np.uint8).reshape(data["h"], data["w"], 4)


BLANK_GRAY = 238  # draw.js's blank preview


def blank(page, selector: str = "#seen") -> bool:
    """The preview shows draw.js's blank paper (light, opaque) and its hint: nothing drawn, not a black square."""
    pixels = preview(page, selector)
    hint = page.locator(selector).locator("xpath=following-sibling::*[contains(@class, 'preview-hint')]")
    return bool((pixels[..., :3] == BLANK_GRAY).all() and (pixels[..., 3] == 255).all() and hint.is_visible())


def draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Mouse strokes in canvas coordinates (0-280), as a person draws them."""
    box = page.locator("#canvas").bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()


# Digits as mouse strokes on the 280x280 canvas.
ZERO = [[(140 + 60 * math.sin(t), 140 - 95 * math.cos(t)) for t in np.linspace(0, 2 * math.pi, 40)]]
ONE = [[(145, 40), (140, 140), (135, 240)]]
SEVEN = [[(70, 50), (210, 50), (170, 130), (120, 240)]]


def backed_up(metadata: Path) -> bool:
    """Keras' training_metadata.json is written whole (Keras writes it in place: a kill the moment it
    appears would test a backup cut short, which run_folder.backed_up_epochs handles on its own)."""
    try:
        return "epoch" in json.loads(metadata.read_text())
    except (OSError, ValueError):
        return False
