"""The in-browser page's start-up and per-stroke latency, in headless Chromium.

    python scripts/web_benchmark.py [--web_dir export/web] [--loads 5] [--strokes 3]

Serves --web_dir (what `python -m mnist_keras.export` writes) from a plain static server on
127.0.0.1, with every other origin blocked, and prints:
- size: the folder, and the bytes one page load fetches;
- start-up: from navigation to the model loaded (`ready`), and to the first prediction of a
  stroke drawn as soon as the canvas is there; each load in a fresh browser context (an
  empty HTTP cache), median and range of --loads; when each step of the start-up ended
  (the model fetched, the WebAssembly compiled, the runtime ready, the model compiled), and
  which WebAssembly files a load fetched;
- per-stroke latency: from a pointer event to the bars updated (preprocessing, the model,
  the page), and the model's run alone, median and 95th percentile over the mouse moves of
  --strokes drawn digits after one to warm up;
- the browser's CPU-seconds (user+sys, all its processes) beside the wall time;
- the aims (docs/benchmarks.md): first prediction under 1,000 ms (median of the cold loads),
  per-stroke update p95 under 20 ms, each with met or missed.
"""

from __future__ import annotations

import functools
import http.server
import math
import os
import platform
import shutil
import threading
import time
from pathlib import Path

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("web_dir", "export/web", "The folder export wrote.")
flags.DEFINE_integer("loads", 5, "Fresh page loads for the start-up figures.", lower_bound=1)
flags.DEFINE_integer("strokes", 3, "Digits drawn for the latency figures.", lower_bound=1)

FIRST_PREDICTION_AIM_MS, STROKE_P95_AIM_MS = 1000, 20
UNANSWERED_MS = 30_000  # a load whose stroke has no answer by then counts as never answered
# The bytes the page's load fetched, as the browser counts them (the document and every resource).
FETCHED_BYTES = """() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
    .reduce((total, entry) => total + entry.encodedBodySize, 0)"""
SEVEN = [(70, 50), (210, 50), (170, 130), (120, 240)]
ZERO = [(140 + 60 * math.sin(t), 140 - 95 * math.cos(t)) for t in np.linspace(0, 2 * math.pi, 40)]


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def browser_cpu_seconds() -> float:
    """user+sys of every process under this one (Playwright's driver and Chromium), from /proc."""
    parents, times = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid], times[pid] = int(fields[1]), int(fields[11]) + int(fields[12])
    mine, total = {os.getpid()}, 0
    for _ in range(len(parents)):  # until no new descendants turn up
        found = {pid for pid, parent in parents.items() if parent in mine} - mine
        if not found:
            break
        mine |= found
        total += sum(times[pid] for pid in found)
    return total / os.sysconf("SC_CLK_TCK")


def draw(page, points, steps: int = 4) -> None:
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=steps)
    page.mouse.up()


def offline_context(browser, origin: str):
    context = browser.new_context()
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(origin)
                  else route.abort())
    return context


def spread(values: list[float]) -> str:
    return f"median {np.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f})"


def main(argv: list[str]) -> None:
    del argv  # unused
    from playwright import sync_api

    folder = Path(FLAGS.web_dir)
    if not (folder / "index.html").is_file():
        raise SystemExit(f"error: {folder}/index.html: not found; run mnist-export first")
    server, url = serve(folder)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    started, cpu_start = time.perf_counter(), None
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                             args=["--no-sandbox"])
        cpu_start = browser_cpu_seconds()
        ready, first, fetched, phases, inputs, wasm = [], [], [], [], [], []
        for _ in range(FLAGS.loads):
            context = offline_context(browser, url)
            page = context.new_page()
            names = []  # (reading each response's body here would hold up the page's own events)
            page.on("request", lambda request, names=names: names.append(request.url.rsplit("/", 1)[-1]))
            page.goto(url, wait_until="commit")
            page.wait_for_selector("#canvas")
            draw(page, SEVEN)  # as soon as there is a canvas: a person who starts drawing at once
            try:
                page.wait_for_function("window.mnistWeb.stats.firstPredictionMs !== null", timeout=UNANSWERED_MS)
            except sync_api.TimeoutError:  # the stroke was lost: counted, and as never answered in the median
                page.evaluate("window.mnistWeb.ready")
            stats = page.evaluate("window.mnistWeb.stats")
            ready.append(stats["loadedMs"])
            phases.append(stats["phases"])
            first.append(stats["firstPredictionMs"] if stats["firstPredictionMs"] is not None else math.inf)
            inputs.append(stats["firstInputMs"] if stats["firstInputMs"] is not None else math.nan)
            fetched.append(page.evaluate(FETCHED_BYTES))
            wasm.append(sorted(name for name in names if name.endswith(".wasm")))
            context.close()
        context = offline_context(browser, url)
        page = context.new_page()
        page.goto(url)
        page.evaluate("window.mnistWeb.ready")
        draw(page, ZERO)  # warm-up: the JavaScript compiler's first passes
        page.wait_for_timeout(300)
        page.evaluate("window.mnistWeb.stats.latenciesMs = []; window.mnistWeb.stats.inferMs = []")
        for i in range(FLAGS.strokes):
            page.click("#clear")
            draw(page, SEVEN if i % 2 else ZERO)
            page.wait_for_timeout(300)
        stats = page.evaluate("window.mnistWeb.stats")
        context.close()
        explain = explain_figures(browser, url) if (folder / "mnist_inspect.tflite").is_file() else []
        cpu = browser_cpu_seconds() - cpu_start
        browser.close()
    wall = time.perf_counter() - started
    server.shutdown()
    latency, model = np.array(stats["latenciesMs"]), np.array(stats["inferMs"])
    print(f"Machine: {platform.processor() or platform.machine()}, {_cpu_name()}; Chromium headless, "
          f"model {stats['inputShape']} {stats['inputDtype']}, {stats['runtime']}")
    print(f"size: {folder} holds {size / 1e6:.2f} MB; one page load fetches "
          f"{np.median(fetched) / 1e6:.2f} MB")
    print(f"start-up, navigation to model ready:       {spread(ready)} over {FLAGS.loads} fresh loads")
    lost = sum(math.isinf(f) for f in first)
    print(f"start-up, navigation to first prediction:  {spread(first)}; the stroke's first event "
          f"at {np.nanmedian(inputs) if lost < len(inputs) else math.nan:.0f} ms (median, its timestamp)"
          + (f"; {lost} load(s) never answered the stroke (counted as infinite)" if lost else ""))
    print("  of which (medians, from navigation): " + ", ".join(
        f"{label} {np.median(values):.0f} ms" for label, values in _phases(phases)))
    print(f"  WebAssembly fetched by each load: {', '.join(sorted({' + '.join(w) or 'none' for w in wasm}))}")
    print(f"per stroke, event to bars updated:         median {np.median(latency):.1f} ms, "
          f"p95 {np.percentile(latency, 95):.1f} ms over {len(latency)} updates")
    print(f"per stroke, the model's run alone:         median {np.median(model):.2f} ms, "
          f"p95 {np.percentile(model, 95):.2f} ms")
    print(f"browser CPU: {cpu:.1f} s user+sys over {wall:.1f} s wall for the whole run")
    p95 = np.percentile(latency, 95)
    print(f"aim: first prediction, median of {FLAGS.loads} cold loads < {FIRST_PREDICTION_AIM_MS} ms: "
          f"{np.median(first):.0f} ms, {'met' if np.median(first) < FIRST_PREDICTION_AIM_MS else 'missed'}")
    print(f"aim: per-stroke update p95 < {STROKE_P95_AIM_MS} ms: {p95:.1f} ms, "
          f"{'met' if p95 < STROKE_P95_AIM_MS else 'missed'}")
    print("\n".join(explain))


EXPLAIN_LOADS, EXPLAIN_STROKE_P95_AIM_MS, EXPLAIN_FIRST_VIEW_AIM_MS, OCCLUSION_AIM_MS = 7, 30, 1500, 300


def explain_figures(browser, url: str) -> list[str]:
    """explain.html (every layer): navigation to the first view of a 7 drawn at once (median of 7
    cold loads), per-stroke update of all views (p95) and the occlusion map's time, against the aims."""
    first, strokes, occlusion = [], [], []
    for _ in range(EXPLAIN_LOADS):
        context = offline_context(browser, url)
        page = context.new_page()
        page.goto(url + "explain.html", wait_until="commit")
        page.wait_for_function("window.mnistExplain && window.mnistExplain.ready")
        page.evaluate("window.mnistExplain.ready")
        draw(page, SEVEN)
        page.wait_for_function("window.mnistExplain.stats.occlusionMs !== null", timeout=UNANSWERED_MS)
        draw(page, ZERO)
        page.wait_for_timeout(500)
        stats = page.evaluate("window.mnistExplain.stats")
        first.append(stats["firstViewMs"])
        strokes += stats["strokeMs"][1:]
        occlusion.append(stats["occlusionMs"])
        context.close()
    p95 = np.percentile(strokes, 95)
    verdict = lambda ok: "met" if ok else "missed"  # noqa: E731
    return [f"explain.html, navigation to first view of a 7: {spread(first)} over {EXPLAIN_LOADS} fresh loads "
            f"(aim < {EXPLAIN_FIRST_VIEW_AIM_MS} ms: {verdict(np.median(first) < EXPLAIN_FIRST_VIEW_AIM_MS)})",
            f"explain.html, per stroke, all views updated: median {np.median(strokes):.1f} ms, p95 {p95:.1f} ms "
            f"over {len(strokes)} updates (aim p95 < {EXPLAIN_STROKE_P95_AIM_MS} ms: "
            f"{verdict(p95 < EXPLAIN_STROKE_P95_AIM_MS)})",
            f"explain.html, occlusion map after the pen lifts: {spread(occlusion)} "
            f"(aim < {OCCLUSION_AIM_MS} ms: {verdict(np.median(occlusion) < OCCLUSION_AIM_MS)})"]


PHASES = [("started", "start-up script running at"), ("script", "page.js running at"),
          ("modelFetched", "model fetched at"), ("compiled", "WebAssembly compiled at"),
          ("runtime", "LiteRT.js ready at"), ("model", "model compiled at")]


def _phases(phases: list[dict]) -> list[tuple[str, list[float]]]:
    """(label, times) for each start-up step the page recorded in every load, in order."""
    return [(label, [p[name] for p in phases]) for name, label in PHASES
            if all(isinstance(p.get(name), (int, float)) for p in phases)]


def _cpu_name() -> str:
    from mnist_keras.training.autotune import cpu_description

    return cpu_description()["cpu"]


if __name__ == "__main__":
    app.run(main)
