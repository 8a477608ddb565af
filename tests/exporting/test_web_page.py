"""export/web/ in a real browser: headless Chromium on a plain static file server, offline.

Every request to another origin is blocked and recorded; the model runs in the page with
LiteRT.js, and its answers are checked against LiteRT's in Python on the same input.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_keras.data.preprocess import preprocess
from mnist_keras.exporting import inspect_model, web_page
from mnist_keras.files import sha256_file
from tests.helpers import (
    ONE,
    REPO,
    RUNTIME,
    SEVEN,
    ZERO,
    Offline,
    assert_one_line_error,
    blank,
    draw,
    preview,
    read,
    require_browser,
    run_module,
    shown,
    start_server,
    upload,
)

require_browser(runtime=True)


@pytest.fixture
def offline(browser, site):
    session = Offline(browser, site)
    session.page.evaluate("window.mnistWeb.ready")
    yield session
    assert session.foreign == [], f"requests left the page's origin: {session.foreign}"
    session.close()


def litert_probabilities(model: Path, inputs: np.ndarray) -> np.ndarray:
    """LiteRT in Python on [N, 28, 28] uint8 inputs, dequantized as the page does."""
    from mnist_keras.inference import litert

    interpreter = litert.load(model)
    inp, out = interpreter.get_input_details()[0], litert.probabilities_output(interpreter)
    scale, zero = out["quantization"]
    result = []
    for image in inputs:
        interpreter.set_tensor(inp["index"], image[None, ..., None].astype(inp["dtype"]))
        interpreter.invoke()
        result.append((interpreter.get_tensor(out["index"])[0].astype(np.float64) - zero) * scale)
    return np.array(result)


@pytest.mark.parametrize("digit, strokes", [("0", ZERO), ("1", ONE), ("7", SEVEN)])
def test_drawn_digits_are_read_in_the_browser_with_no_other_origin(offline, digit, strokes):
    draw(offline.page, strokes)
    prediction, probabilities = shown(offline.page)
    assert prediction == digit
    assert abs(sum(probabilities) - 1) < 0.02 and max(probabilities) == probabilities[int(digit)]
    assert offline.page.locator(".bar.best").get_attribute("data-digit") == digit
    seen = offline.page.locator("#seen").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 == 0)")
    assert np.count_nonzero(seen) > 20  # what the network saw is drawn
    origin = offline.origin + "/"
    # only the build this browser runs (relaxed SIMD: Chromium), fetched once
    assert [r for r in offline.requests if r.endswith(".wasm")] == [origin + "litert/wasm/litert_wasm_internal.wasm"]
    assert all(r.startswith(origin) for r in offline.requests)
    offline.page.click("#clear")
    assert offline.page.locator("#prediction").text_content() == ""


def test_the_preview_is_light_with_a_hint_until_a_digit_is_drawn(offline):
    """'What the network sees' is not a black square before anything is drawn, nor after Clear."""
    page = offline.page
    assert blank(page)
    draw(page, SEVEN)
    assert shown(page)[0] == "7" and not blank(page)
    assert not page.locator("#seen-hint").is_visible()
    assert (preview(page, "#seen")[..., 0] == 0).mean() > 0.5  # the digit, white on black as MNIST
    page.click("#clear")
    assert blank(page)


def test_probabilities_for_50_test_digits_match_litert_in_python(offline, mnist, int8_model, tmp_path):
    """Each test digit uploaded as an image a person would have: dark ink on white paper, 112x112,
    so that both preprocessings have to find, crop and scale it."""
    pages, inputs, labels = [], [], []
    for i in range(50):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(255 - mnist.x_test[i]).resize((112, 112), Image.Resampling.BILINEAR).save(path)
        upload(offline.page, path)  # returns once the page has shown the answer
        _, probabilities = read(offline.page)
        pages.append(probabilities)
        inputs.append(offline.page.evaluate("window.mnistWeb.stats.lastInput"))
        labels.append(int(mnist.y_test[i]))
    pages, inputs = np.array(pages), np.array(inputs, np.uint8).reshape(-1, 28, 28)
    # The runtime: LiteRT in Python on the very input the page gave the model (the exported
    # file itself, not the page's batch-1 copy) says the same, to the output's quantum.
    python = litert_probabilities(int8_model, inputs)
    assert np.abs(pages - python).max() <= 1 / 256 + 1e-6
    # The page's MNIST preprocessing (JavaScript) against preprocess.py on the same files.
    reference = np.array([preprocess(tmp_path / f"digit{i}.png") for i in range(50)])
    assert np.abs(inputs.astype(int) - reference).mean() < 6  # grey levels of 255; 2.7 measured
    same = (pages.argmax(1) == litert_probabilities(int8_model, reference).argmax(1)).mean()
    assert same >= 0.94, same
    assert (pages.argmax(1) == np.array(labels)).mean() >= 0.9


def test_a_photographed_page_in_shade_is_flattened_as_preprocess_py_does(offline, mnist, int8_model, tmp_path):
    """Faint ink on a page whose light falls off by 30% corner to corner: left in, the shading is
    taken for ink and cropped with the digit (the page's inputs were 27 grey levels from these)."""
    inputs, reference = [], []
    rows, cols = np.mgrid[:112, :112]
    shade = 1 - 0.3 * (rows + cols) / 222
    for i in range(20):
        path = tmp_path / f"shaded{i}.png"
        ink = np.asarray(Image.fromarray(mnist.x_test[i]).resize((56, 56), Image.Resampling.BICUBIC)) / 255.0
        page = np.full((112, 112), 235.0)
        page[28:84, 28:84] -= 120 * ink
        Image.fromarray(np.clip(page * shade, 0, 255).astype(np.uint8)).save(path)
        upload(offline.page, path)
        inputs.append(offline.page.evaluate("window.mnistWeb.stats.lastInput"))
        reference.append(preprocess(path))
    inputs, reference = np.array(inputs, np.uint8).reshape(-1, 28, 28), np.array(reference)
    assert np.abs(inputs.astype(int) - reference).mean() < 6
    assert (litert_probabilities(int8_model, inputs).argmax(1) == mnist.y_test[:20]).mean() >= 0.9


# Records how the page's WebAssembly is compiled (the page must compile it as it streams in).
STREAMING = """
window.compiledFrom = [];
const compileStreaming = WebAssembly.compileStreaming;
WebAssembly.compileStreaming = function (source, ...rest) {
  window.compiledFrom.push("stream");
  return compileStreaming.call(this, source, ...rest);
};
const compile = WebAssembly.compile;
WebAssembly.compile = function (source, ...rest) {
  window.compiledFrom.push("bytes");
  return compile.call(this, source, ...rest);
};
"""


def test_the_runtime_and_model_are_fetched_at_once_and_compiled_as_they_stream(browser, site):
    """index.html starts the model and the one WebAssembly build on its own, before page.js and
    before LiteRT.js's JavaScript has run, and compiles the build from the stream."""
    session = Offline(browser, site, init_script=STREAMING)
    try:
        session.page.evaluate("window.mnistWeb.ready")
        page = session.page
        stats = page.evaluate("window.mnistWeb.stats")
        assert stats["error"] is None and stats["loadedMs"] is not None
        assert page.evaluate("window.compiledFrom") == ["stream"]
        timing = page.evaluate("""() => Object.fromEntries(performance.getEntriesByType('resource').map(
            (e) => [e.name.split('/').pop(), {start: e.startTime, end: e.responseEnd}]))""")
        phases = stats["phases"]
        # the model was requested while the page was still being parsed, before page.js ran ...
        assert timing["model.tflite"]["start"] < phases["script"]
        # ... and the WebAssembly before LiteRT.js's own JavaScript had even arrived (LiteRT.js alone
        # fetches it only once that script has run)
        assert timing["litert_wasm_internal.wasm"]["start"] < timing["litert_wasm_internal.js"]["end"]
        assert phases["started"] < phases["script"] < phases["runtime"] < phases["model"]
        assert phases["compiled"] <= phases["runtime"] and phases["modelFetched"] <= phases["model"]
        # one request per file: the preloaded script and the fetched model are not fetched twice
        names = [r.rsplit("/", 1)[-1] for r in session.requests]
        for name in ("litert_wasm_internal.js", "litert_wasm_internal.wasm", "model.tflite", "model.json"):
            assert names.count(name) == 1, names
        assert session.foreign == []
    finally:
        session.close()


def test_a_digit_drawn_before_page_js_runs_is_kept_and_read(browser, site):
    """page.js is held back on its way; the digit drawn meanwhile (the canvas is there from the
    first bytes of the page) is drawn and read once it runs."""
    held = []

    def route(route):
        if route.request.url.endswith("/page.js"):
            held.append(route)  # answered below, once the digit is drawn
        elif route.request.url.startswith(site):
            route.continue_()
        else:
            route.abort()

    context = browser.new_context()
    try:
        context.route("**/*", route)
        page = context.new_page()
        page.goto(site, wait_until="commit")
        page.wait_for_selector("#canvas")
        draw(page, SEVEN)
        assert held and page.evaluate("window.mnistWeb") is None  # page.js has not run
        for request in held:
            request.continue_()
        assert shown(page)[0] == "7"
        stats = page.evaluate("window.mnistWeb.stats")
        assert stats["firstInputMs"] < stats["phases"]["script"]  # the stroke came before page.js
    finally:
        context.close()


def test_web_benchmark_prints_every_row(web_folder):
    """scripts/web_benchmark.py on the page, one cold load and one digit: every row, no timing asserted."""
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "web_benchmark.py"), f"--web_dir={web_folder}",
                             "--loads=1", "--strokes=1"], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr
    for pattern in [r"^size: .* holds [\d.]+ MB; one page load fetches [\d.]+ MB",
                    r"^start-up, navigation to model ready: +median \d+ ms",
                    r"^start-up, navigation to first prediction: +median \d+ ms",
                    r"of which \(medians, from navigation\): start-up script running at \d+ ms, page\.js running at "
                    r"\d+ ms, model fetched at \d+ ms, WebAssembly compiled at \d+ ms, LiteRT\.js ready at \d+ ms, "
                    r"model compiled at \d+ ms",
                    r"WebAssembly fetched by each load: litert_wasm_internal\.wasm$",
                    r"^per stroke, event to bars updated: +median [\d.]+ ms, p95 [\d.]+ ms",
                    r"^browser CPU: [\d.]+ s user\+sys over [\d.]+ s wall",
                    r"^aim: first prediction, median of 1 cold loads < 1000 ms: \d+ ms, (met|missed)$",
                    r"^aim: per-stroke update p95 < 20 ms: [\d.]+ ms, (met|missed)$"]:
        assert re.search(pattern, result.stdout, re.M), (pattern, result.stdout)


def test_a_blank_picture_or_an_unreadable_file_shows_a_message_not_a_digit(offline, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), "white").save(blank)
    upload(offline.page, blank)
    assert "No digit found" in offline.page.locator("#status").text_content()
    assert offline.page.locator("#prediction").text_content() == "no digit"  # no_digit.py's answer
    broken = tmp_path / "notes.png"
    broken.write_text("not an image")
    upload(offline.page, broken)
    assert "notes.png: not an image file" in offline.page.locator("#status").text_content()
    assert offline.page.locator("#prediction").text_content() == ""


def test_a_browser_without_webassembly_simd_is_told_so(browser, site):
    # Chromium cannot turn SIMD off any more; the page's check is what such a browser fails.
    session = Offline(browser, site, init_script="WebAssembly.validate = () => false;")
    try:
        session.page.evaluate("window.mnistWeb.ready")
        draw(session.page, ONE)
        assert "lacks WebAssembly SIMD" in session.page.locator("#status").text_content()
        assert session.page.locator("#prediction").text_content() == ""
        assert not any(r.endswith(".wasm") for r in session.requests)
    finally:
        session.close()


def test_serve_shows_the_page_at_web(exported, web_folder, browser):
    out = exported.folder
    process, port = start_server(f"--model_base_path={exported.serving}", f"--web_dir={web_folder}", cwd=out)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/web/model.tflite")
        response = connection.getresponse()
        assert response.status == 200 and response.read() == (web_folder / "model.tflite").read_bytes()
        session = Offline(browser, f"http://127.0.0.1:{port}/web/")
        try:
            session.page.evaluate("window.mnistWeb.ready")
            draw(session.page, SEVEN)
            assert shown(session.page)[0] == "7"
            assert session.foreign == []
        finally:
            session.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_export_wrote_the_page_with_the_model_meant_for_it(exported):
    """export_model (the fixture) builds export/web/ from what it exported:
    the camera model where export writes one, else the int8 model."""
    summary = exported.summary
    web = exported.export / "web"
    assert web in summary.written and not summary.problems
    expected = next(name for name in web_page.MODELS if (exported.export / name).is_file())
    description = json.loads((web / "model.json").read_text())
    assert description["source"] == expected
    assert description["sha256"] == sha256_file(exported.export / expected)
    expected = web_page.checksums()
    for source, target in web_page.RUNTIME_FILES.items():
        assert sha256_file(web / target) == expected[source]
    # The explain page's inspection model and conv weights, beside it (verified by export against Keras).
    weights = json.loads((web / inspect_model.WEIGHTS_FILE).read_text())["weights"]
    assert weights["conv1"]["kernel_shape"] == [3, 3, 1, 32] and len(weights["conv2"]["bias"]) == 64
    assert (web / inspect_model.MODEL_FILE).stat().st_size > 100_000


def test_a_runtime_that_differs_from_the_checksums_is_refused(int8_model, tmp_path, capsys):
    runtime = tmp_path / "node_modules"
    shutil.copytree(RUNTIME / "@litertjs", runtime / "@litertjs")
    (runtime / "@litertjs/core/dist/index.js").write_text("// something else\n")
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    shutil.copy(int8_model, export_dir)
    problem = web_page.export_web(export_dir, runtime)
    assert problem and "core/dist/index.js: SHA-256 differs" in problem
    assert not (export_dir / "web").exists()  # nothing half-written
    assert web_page.export_web(export_dir, tmp_path / "missing") is None  # not installed: a skip ...
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "not written" in line and web_page.SET_UP in line  # ... in one line saying how
    assert not (export_dir / "web").exists()


def test_the_command_says_in_one_line_when_the_runtime_differs(int8_model, tmp_path):
    runtime = tmp_path / "node_modules"
    shutil.copytree(RUNTIME / "@litertjs", runtime / "@litertjs")
    (runtime / "@litertjs/core/wasm/litert_wasm_internal.wasm").write_bytes(b"\0asm")
    shutil.copy(int8_model, tmp_path)
    result = run_module("mnist_keras.web_export", f"--export_dir={tmp_path}", f"--web_runtime={runtime}",
                        cwd=tmp_path)
    assert_one_line_error(result, "litert_wasm_internal.wasm: SHA-256 differs", web_page.SET_UP)
    assert not (tmp_path / "web").exists()


def test_the_page_model_has_batch_one_and_the_same_answers(int8_model, web_folder, mnist):
    from mnist_keras.inference import litert

    interpreter = litert.load(web_folder / "model.tflite")
    assert list(interpreter.get_input_details()[0]["shape_signature"]) == [1, 28, 28, 1]
    images = mnist.x_test[:20]
    assert np.array_equal(litert_probabilities(web_folder / "model.tflite", images),
                          litert_probabilities(int8_model, images))


# What a browser without relaxed SIMD (Firefox, Safari) answers to LiteRT.js's feature probe;
# Chromium cannot turn relaxed SIMD off, so the probe module alone is refused.
NO_RELAXED_SIMD = """
const probe = [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15,
               65, 2, 253, 15, 253, 128, 2, 11].join();
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = function (source, ...rest) {
  if (source instanceof Uint8Array && source.join() === probe) {
    return Promise.reject(new WebAssembly.CompileError("relaxed SIMD is not supported"));
  }
  return instantiate.call(this, source, ...rest);
};
"""


def test_browsers_without_relaxed_simd_get_the_compatible_build_with_the_same_answers(
        browser, site, mnist, int8_model, tmp_path):
    session = Offline(browser, site, init_script=NO_RELAXED_SIMD)
    try:
        session.page.evaluate("window.mnistWeb.ready")
        wasm = [r.rsplit("/", 1)[-1] for r in session.requests if r.endswith(".wasm")]
        assert wasm == ["litert_wasm_compat_internal.wasm"]
        pages, inputs = [], []
        for i in range(10):
            path = tmp_path / f"digit{i}.png"
            Image.fromarray(255 - mnist.x_test[i]).resize((112, 112), Image.Resampling.BILINEAR).save(path)
            upload(session.page, path)
            pages.append(read(session.page)[1])
            inputs.append(session.page.evaluate("window.mnistWeb.stats.lastInput"))
        python = litert_probabilities(int8_model, np.array(inputs, np.uint8).reshape(-1, 28, 28))
        assert np.abs(np.array(pages) - python).max() <= 1 / 256 + 1e-6
        assert session.foreign == []
    finally:
        session.close()
