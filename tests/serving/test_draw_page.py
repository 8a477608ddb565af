"""The drawing page in a real browser: headless Chromium, driven by Playwright."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ONE, SEVEN, ZERO, blank, draw, require_browser

require_browser()


@pytest.fixture
def page(browser, page_url):
    page = browser.new_page()
    page.goto(page_url)
    yield page
    page.close()


def prediction(page) -> tuple[str, list[float]]:
    page.wait_for_function("document.getElementById('prediction').textContent !== ''")
    page.wait_for_timeout(300)  # strokes sent while a request was in flight go out after it
    page.wait_for_function("document.getElementById('prediction').textContent !== ''")
    digit = page.locator("#prediction").text_content()
    probabilities = [float(bar.get_attribute("data-probability"))
                     for bar in page.locator(".bar").all()]
    return digit, probabilities


@pytest.mark.parametrize("digit, strokes", [("0", ZERO), ("1", ONE), ("7", SEVEN)])
def test_drawing_a_digit_shows_it_and_its_probability_bars(page, digit, strokes):
    draw(page, strokes)
    shown, probabilities = prediction(page)
    assert shown == digit
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-3
    assert max(probabilities) == probabilities[int(digit)]
    assert page.locator(".bar.best").get_attribute("data-digit") == digit
    width = page.locator(f'.bar[data-digit="{digit}"] .fill').evaluate("e => e.style.width")
    assert float(width.rstrip("%")) == pytest.approx(100 * probabilities[int(digit)], abs=0.1)
    seen = page.locator("#seen").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 == 0)")
    assert np.count_nonzero(seen) > 20  # the 28x28 image the network saw is drawn too


def test_the_prediction_updates_while_drawing_and_clear_resets(page):
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 70, box["y"] + 50)
    page.mouse.down()
    page.mouse.move(box["x"] + 210, box["y"] + 50, steps=8)  # the top bar of a 7, button held
    page.wait_for_function("document.getElementById('prediction').textContent !== ''")
    page.mouse.move(box["x"] + 170, box["y"] + 130, steps=8)
    page.mouse.move(box["x"] + 120, box["y"] + 240, steps=8)
    page.wait_for_function("document.getElementById('prediction').textContent === '7'")
    page.mouse.up()
    assert prediction(page)[0] == "7"
    page.click("#clear")
    assert page.locator("#prediction").text_content() == ""
    assert all(bar.get_attribute("class") == "bar" for bar in page.locator(".bar").all())
    blank = page.locator("#canvas").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 280, 280).data).every(v => v === 255)")
    assert blank


def test_uploading_an_image_file_reads_it(page, mnist, tmp_path):
    path = tmp_path / "two.jpg"
    Image.fromarray(255 - mnist.x_test[1]).resize((200, 200)).convert("RGB").save(path)
    page.set_input_files("#upload", str(path))
    shown, _ = prediction(page)
    assert shown == str(mnist.y_test[1])


def test_uploading_something_that_is_not_an_image_says_so(page, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    page.set_input_files("#upload", str(path))
    page.wait_for_function("document.getElementById('status').textContent !== ''")
    assert "not an image file" in page.locator("#status").text_content()
    assert page.locator("#prediction").text_content() == ""


def test_the_preview_is_light_with_a_hint_until_a_digit_is_drawn(page):
    assert blank(page)
    draw(page, SEVEN)
    assert prediction(page)[0] == "7" and not blank(page)
    assert not page.locator("#seen-hint").is_visible()
    page.click("#clear")
    assert blank(page)


def test_the_page_links_to_the_explain_page_that_export_wrote(page):
    """mnist-serve serves export/web/ at /web/ (the fixture's server runs beside an export): the link
    shows once /web/explain.html answers, and opens it, running."""
    link = page.locator("#explain-link")
    link.wait_for(state="visible")
    link.click()
    page.wait_for_url("**/web/explain.html")
    page.evaluate("window.mnistExplain.ready")
    assert page.evaluate("window.mnistExplain.stats.error") is None
    assert page.locator('.layer[data-layer="conv1"] .maps canvas').count() > 0
