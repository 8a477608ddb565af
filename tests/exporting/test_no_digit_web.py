"""The "no digit" decision in the browser (export/web/, LiteRT.js) against LiteRT in Python on the
very input the page gave the model, for uploaded digits and non-digits."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mnist_keras.data import negatives, templates
from mnist_keras.inference import litert, no_digit
from tests.helpers import SEVEN, Offline, draw, require_browser, upload

require_browser(runtime=True)


def test_the_page_decides_as_litert_in_python(browser, site, int8_model, mnist, tmp_path):
    session = Offline(browser, site)
    try:
        session.page.evaluate("window.mnistWeb.ready")
        pages = [np.asarray(Image.fromarray(255 - d).resize((112, 112), Image.Resampling.BILINEAR))
                 for d in mnist.x_test[:20]]
        for kind in ("letters", "textures", "noise"):
            made = negatives.make(kind, "heldout", 40)
            pages += [p for p, empty in zip(made.pages, made.no_ink) if not empty][:10]
        decisions, inputs, shown = [], [], []
        for n, page in enumerate(pages):
            path = tmp_path / f"{n}.png"
            Image.fromarray(page).save(path)
            upload(session.page, path)
            stats = session.page.evaluate("({no: window.mnistWeb.stats.lastNoDigit, "
                                          "score: window.mnistWeb.stats.lastDigitScore, "
                                          "input: window.mnistWeb.stats.lastInput})")
            assert stats["score"] is not None, "the page did not read the digit_check output"
            decisions.append(stats["no"])
            inputs.append(stats["input"])
            shown.append(session.page.locator("#prediction").text_content())
        inputs = np.array(inputs, np.uint8).reshape(-1, 28, 28)
        _, scores = litert.predict_with_check(litert.load(int8_model), inputs)
        python = no_digit.decide(scores)
        assert np.mean(np.array(decisions) == python) >= 0.995
        assert [s == "no digit" for s in shown] == list(python)
        assert not python[:20].all() and python[20:].any()  # both answers occur
    finally:
        session.close()


def test_the_server_backed_page_shows_no_digit(browser, page_url, mnist, tmp_path):
    page = browser.new_page()
    try:
        page.goto(page_url)
        Image.new("RGB", (200, 200), "white").save(tmp_path / "blank.png")
        page.set_input_files("#upload", str(tmp_path / "blank.png"))
        page.wait_for_function("document.getElementById('prediction').textContent === 'no digit'")
        assert page.locator("#prediction").get_attribute("data-no-digit") == "true"
        assert page.locator(".bar.best").count() == 0
        Image.fromarray(255 - mnist.x_test[1]).resize((200, 200)).save(tmp_path / "two.png")
        page.set_input_files("#upload", str(tmp_path / "two.png"))
        page.wait_for_function(f"document.getElementById('prediction').textContent === '{mnist.y_test[1]}'")
        assert page.locator("#prediction").get_attribute("data-no-digit") == "false"
    finally:
        page.close()


def on_canvas(template: templates.Template) -> list[list[tuple[float, float]]]:
    """A stroke template (unit square) as mouse strokes on the 280x280 canvas."""
    return [[(40 + 200 * x, 40 + 200 * y) for x, y in stroke] for stroke in template.strokes]


def test_drawn_letters_and_shapes_are_decided_as_litert_in_python(browser, site, int8_model):
    """An A, an arrow and a tick drawn with the mouse (stroke templates), and a 7: the page decides on
    the very input it gave the model as LiteRT does in Python. (Whether a fully trained model calls
    them no digit: scripts/reading_benchmark.py --page, docs/no_digit.md.)"""
    drawn = {t.name: t for split in ("train", "heldout")
             for t in templates.letter_templates(split) + templates.shape_templates(split)}
    drawings = [on_canvas(drawn[name]) for name in ("letter-A-b", "arrow-a", "tick-c")] + [SEVEN]
    session = Offline(browser, site)
    try:
        session.page.evaluate("window.mnistWeb.ready")
        decisions, inputs = [], []
        for strokes in drawings:
            session.page.evaluate("window.mnistWeb.stats.lastDigitScore = null")
            draw(session.page, strokes)
            session.page.wait_for_function("window.mnistWeb.stats.lastDigitScore != null")
            session.page.wait_for_timeout(300)  # strokes answered while one was in flight are read after it
            stats = session.page.evaluate("({no: window.mnistWeb.stats.lastNoDigit, "
                                          "input: window.mnistWeb.stats.lastInput})")
            decisions.append(stats["no"])
            inputs.append(stats["input"])
            session.page.click("#clear")
        _, scores = litert.predict_with_check(litert.load(int8_model), np.array(inputs, np.uint8).reshape(-1, 28, 28))
        assert decisions == list(no_digit.decide(scores))
    finally:
        session.close()
