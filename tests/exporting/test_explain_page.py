"""export/web/explain.html in headless Chromium, offline: every layer it shows equals Keras' own.

It serves the folder the session's export wrote (with mnist_inspect.tflite and .json), blocks every
other origin, draws a 7 (or uploads a test digit) and reads what the page computed (window.mnistExplain).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_keras.exporting import inspect_model
from mnist_keras.training import keras_file
from tests.helpers import SEVEN, Offline, blank, draw, keep, preview, require_browser, static_server

require_browser(runtime=True)

pytestmark = pytest.mark.slow

# What the page computed last (window.mnistExplain.last), as plain JSON.
COMPUTED = """() => { const l = window.mnistExplain.last;
    const plain = (o) => Object.fromEntries(Object.entries(o).map(
        ([k, v]) => [k, { shape: v.shape, values: Array.from(v.values) }]));
    return { input: Array.from(l.input), occlusion: l.occlusion, outputs: plain(l.outputs),
             flattened: plain(l.flattened) }; }"""


@pytest.fixture(scope="module")
def explain_site(exported):
    """The session export's export/web/ on a plain static file server: its address."""
    server = static_server(exported.export / "web")
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def explained(explain_site, browser, tmp_path_factory):
    """The page after drawing a 7 and lifting the pen: (session, what it computed, the screenshot's path)."""
    session = Offline(browser, explain_site + "explain.html")
    try:
        page = session.page
        page.evaluate("window.mnistExplain.ready")
        assert page.evaluate("window.mnistExplain.stats.error") is None
        draw(page, [SEVEN[0]])
        page.wait_for_function("window.mnistExplain.last.occlusion !== null", timeout=20_000)
        computed = page.evaluate(COMPUTED)
        screenshot = tmp_path_factory.mktemp("explain") / "explain-7.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"\nexplain.html after drawing a 7: {keep(screenshot)}")
        yield session, computed, screenshot
    finally:
        session.close()


def assert_views_equal_keras(model, computed) -> np.ndarray:
    """Each layer the page showed, and the flattened pool2, equal Keras' outputs for the page's input;
    returns the probabilities."""
    import keras

    image = np.asarray(computed["input"], np.float32).reshape(1, 28, 28, 1)
    assert image.max() > 0.5  # the digit reached the network
    names = [*inspect_model.LAYERS, "flatten"]
    expected = keras.Model(model.inputs, [model.get_layer(name).output for name in names])([image], training=False)
    shown = {**computed["outputs"], "flatten": computed["flattened"]["pool2"]}  # Keras' Flatten reads pool2
    for name, keras_values in zip(names, expected, strict=True):
        keras_values = np.asarray(keras_values)
        assert tuple(shown[name]["shape"]) == keras_values.shape, name
        gap = np.abs(np.asarray(shown[name]["values"], np.float32).reshape(keras_values.shape) - keras_values).max()
        assert gap <= 1e-4 * max(1.0, float(np.abs(keras_values).max())), (name, gap)
    return np.asarray(computed["outputs"]["probabilities"]["values"])


def test_every_layer_shown_equals_keras_intermediate_outputs(explained, exported):
    session, computed, screenshot = explained
    probabilities = assert_views_equal_keras(keras_file.load_keras(exported.model_path), computed)
    assert probabilities.argmax() == 7 and computed["occlusion"]["digit"] == 7
    assert len(computed["occlusion"]["drops"]) == 49 and max(d["drop"] for d in computed["occlusion"]["drops"]) > 0
    # Each layer labelled with its shapes (channel-last, and channel-first for the maps) and its zero share.
    page = session.page
    conv1 = page.locator('.layer[data-layer="conv1"] h2').text_content()
    assert "(1, 28, 28, 32) channel-last; channel-first (1, 32, 28, 28)" in conv1 and "% zero" in conv1
    assert page.locator('.layer[data-layer="conv2"] .maps canvas').count() == 64
    zero_share = float(page.locator('.layer[data-layer="conv1"]').get_attribute("data-zero-share"))
    assert zero_share == pytest.approx(float(np.mean(np.asarray(computed["outputs"]["conv1"]["values"]) == 0)))
    # the ten bars show the probabilities, the top digit marked
    bars = page.eval_on_selector_all('.layer[data-layer="probabilities"] .bar',
                                     "bars => bars.map(b => Number(b.dataset.probability))")
    assert np.allclose(bars, probabilities) and page.locator(".layer .bar.best").get_attribute("data-digit") == "7"
    assert screenshot.stat().st_size > 10_000
    assert not session.foreign, session.foreign  # fully offline: nothing asked of another origin


def test_the_flattened_values_are_pool2_in_channel_last_order(explained):
    """The view of the 3,136 values the dense layer reads: labelled with its shapes and order, and
    drawn wrapped, one row per 7x7 position, its 64 channels across (value i at row i // 64)."""
    session, computed, _ = explained
    box = session.page.locator('.layer[data-layer="pool2-flattened"]')
    text = box.text_content()
    assert "pool2 flattened: (1, 3136) = 7 x 7 x 64, in channel-last order" in text
    assert "channel-first (1, 64, 7, 7)" in text and "channel i mod 64" in text
    values = np.asarray(computed["flattened"]["pool2"]["values"])
    assert computed["flattened"]["pool2"]["shape"] == [1, 3136]
    pixels = preview(session.page, '.layer[data-layer="pool2-flattened"] canvas')
    assert pixels.shape == (49, 64, 4)
    expected = np.round(255 * np.minimum(1, np.abs(values) / max(1e-6, np.abs(values).max()))).reshape(49, 64)
    assert np.abs(pixels[:, :, 0].astype(int) - expected).max() <= 1


def occlusion_reference(model: bytes, image: np.ndarray, digit: int, patch: int = 4) -> np.ndarray:
    """The drop of `digit`'s probability as each patch x patch square of the 28x28 input is zeroed
    in turn (row by row), by LiteRT in Python on the inspection model."""
    covered = []
    for y in range(0, 28, patch):
        for x in range(0, 28, patch):
            copy = image.copy()
            copy[y:y + patch, x:x + patch] = 0
            covered.append(copy)
    base = inspect_model.run(model, image[None, :, :, None])["probabilities"][0, digit]
    return base - inspect_model.run(model, np.stack(covered)[..., None])["probabilities"][:, digit]


def test_occlusion_for_a_digit_picked_in_the_bars_equals_litert_in_python(explained, exported):
    session, computed, _ = explained
    page = session.page
    probabilities = np.asarray(computed["outputs"]["probabilities"]["values"])
    digit = int(np.argsort(probabilities)[-2])  # the runner-up: not the top digit
    page.locator(f'.layer[data-layer="probabilities"] .bar[data-digit="{digit}"]').click()
    page.wait_for_function(f"window.mnistExplain.last.occlusion.digit === {digit}", timeout=20_000)
    occlusion = page.evaluate("window.mnistExplain.last.occlusion")
    assert occlusion["top"] == 7 and occlusion["patch"] == 4
    image = np.asarray(computed["input"], np.float32).reshape(28, 28)
    model = (exported.export / "web" / inspect_model.MODEL_FILE).read_bytes()
    expected = occlusion_reference(model, image, digit)
    drops = np.asarray([d["drop"] for d in occlusion["drops"]])
    assert [(d["y"], d["x"]) for d in occlusion["drops"]] == [(y, x) for y in range(0, 28, 4) for x in range(0, 28, 4)]
    np.testing.assert_allclose(drops, expected, atol=2e-5)
    assert np.abs(expected).max() > 1e-4  # covering the drawing changes this digit's probability
    # drawn over the input: the square that changes it most the most tinted, red for a drop, blue for a rise
    pixels = preview(page, "#input-view").astype(int)
    strongest = occlusion["drops"][int(np.abs(drops).argmax())]
    square = pixels[strongest["y"]:strongest["y"] + 4, strongest["x"]:strongest["x"] + 4]
    tint = (square[..., 0] - square[..., 1]) if strongest["drop"] > 0 else (square[..., 2] - square[..., 0])
    assert tint.mean() > 100, square
    untouched = occlusion["drops"][int(np.flatnonzero(drops == 0)[0])]  # covering empty background changes nothing
    square = pixels[untouched["y"]:untouched["y"] + 4, untouched["x"]:untouched["x"] + 4]
    assert (square[..., 0] == square[..., 1]).all() and (square[..., 1] == square[..., 2]).all()
    assert page.locator(".layer .bar.chosen").get_attribute("data-digit") == str(digit)
    assert f"Occlusion for {digit} (the top digit is 7)" in page.locator("#occlusion-note").text_content()


def test_a_clicked_pixel_is_written_out_and_equals_the_map(explained):
    session, computed, _ = explained
    page = session.page
    for name, channel in (("conv1", 3), ("conv2", 10)):
        map_ = page.locator(f'.layer[data-layer="{name}"] .maps canvas').nth(channel)
        map_.click()  # scrolled into view, clicked in the middle
        pixel = page.evaluate("window.mnistExplain.last.pixel")
        assert pixel["layer"] == name and pixel["channel"] == channel
        assert len(pixel["products"]) == 9
        assert pixel["relu"] == pytest.approx(pixel["value"], abs=1e-4)  # the hand-made sum is the model's value
        assert sum(pixel["channelSums"]) + pixel["bias"] == pytest.approx(pixel["sum"], abs=1e-5)
        text = page.locator("#explain-pixel").text_content()
        assert f"the model's value: {pixel['value']:.4f}" in text and "+ bias" in text


def test_an_uploaded_picture_updates_every_view(explain_site, browser, exported, mnist, tmp_path):
    """A test digit as a person would have it (dark on white, 112x112), uploaded: the views show
    Keras' outputs for the 28x28 input the page made of it, which is preprocess.py's."""
    from mnist_keras.data.preprocess import preprocess

    session = Offline(browser, explain_site + "explain.html")
    try:
        page = session.page
        page.evaluate("window.mnistExplain.ready")
        assert blank(page, "#input-view")  # nothing drawn yet: light paper and a hint, not black
        path = tmp_path / "two.png"
        Image.fromarray(255 - mnist.x_test[1]).resize((112, 112), Image.Resampling.BILINEAR).save(path)
        page.set_input_files("#upload", str(path))
        page.wait_for_function("window.mnistExplain.last.occlusion !== null", timeout=20_000)
        computed = page.evaluate(COMPUTED)
        probabilities = assert_views_equal_keras(keras_file.load_keras(exported.model_path), computed)
        assert probabilities.argmax() == mnist.y_test[1] == computed["occlusion"]["digit"]
        seen = np.round(255 * np.asarray(computed["input"])).reshape(28, 28)
        assert np.abs(seen - preprocess(path)).mean() < 6  # the shared JavaScript preprocessing, as for drawings
        assert not page.locator("#input-hint").is_visible()
        broken = tmp_path / "notes.png"
        broken.write_text("not an image")
        page.set_input_files("#upload", str(broken))
        page.wait_for_function("document.getElementById('status').textContent !== ''")
        assert "notes.png: not an image file" in page.locator("#status").text_content()
        assert page.evaluate("window.mnistExplain.last.input") is None  # the old picture's views are gone
        assert not session.foreign
    finally:
        session.close()


def test_the_pages_link_to_each_other(explain_site, browser):
    """The drawing page's link opens the explain page, which runs; its link leads back."""
    session = Offline(browser, explain_site)
    try:
        page = session.page
        page.click("#explain-link")
        page.wait_for_url("**/explain.html")
        page.evaluate("window.mnistExplain.ready")
        assert page.evaluate("window.mnistExplain.stats.error") is None
        assert page.locator('.layer[data-layer="conv1"]').count() == 1
        page.click("#drawing-link")
        page.wait_for_url("**/index.html")
        page.evaluate("window.mnistWeb.ready")
        assert page.evaluate("window.mnistWeb.stats.error") is None
        assert not session.foreign
    finally:
        session.close()


def test_other_layer_widths_show_as_the_model_has_them(int8_model, browser, mnist, tmp_path):
    """A model with the seed's layer names but other widths (16 and 24 maps, 48 dense units):
    the page builds its views from the inspection model's shapes, not from the seed's sizes."""
    import keras

    from mnist_keras.data import datasets
    from mnist_keras.exporting import web_page
    from mnist_keras.inference.no_digit_graph import Network
    from tests.helpers import RUNTIME

    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)),
                              layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
                              layers.MaxPooling2D(2, name="pool1"),
                              layers.Conv2D(24, 3, padding="same", activation="relu", name="conv2"),
                              layers.MaxPooling2D(2, name="pool2"), layers.Flatten(name="flatten"),
                              layers.Dense(48, activation="relu", name="dense"), layers.Dense(10, name="logits")])
    extras = inspect_model.files(Network(model), datasets.scale_images(mnist.x_test[:5]))
    server = static_server(web_page.write_web(tmp_path / "web", int8_model, RUNTIME, extras))
    session = Offline(browser, f"http://127.0.0.1:{server.server_address[1]}/explain.html")
    try:
        page = session.page
        page.wait_for_function("window.mnistExplain && window.mnistExplain.stats.loadedMs !== null")
        draw(page, [SEVEN[0]])
        page.wait_for_function("window.mnistExplain.last.outputs.conv2 !== undefined")
        assert page.locator('.layer[data-layer="conv1"] .maps canvas').count() == 16
        assert page.locator('.layer[data-layer="conv2"] .maps canvas').count() == 24
        assert "dense: (1, 48)" in page.locator('.layer[data-layer="dense"] h2').text_content()
        assert "channel-first (1, 24, 7, 7)" in page.locator('.layer[data-layer="pool2"] h2').text_content()
        flattened = page.locator('.layer[data-layer="pool2-flattened"]')
        assert "(1, 1176) = 7 x 7 x 24" in flattened.text_content()
        assert preview(page, '.layer[data-layer="pool2-flattened"] canvas').shape == (49, 24, 4)
        page.locator('.layer[data-layer="conv2"] .maps canvas').nth(20).click()
        pixel = page.evaluate("window.mnistExplain.last.pixel")
        assert len(pixel["channelSums"]) == 16 and pixel["relu"] == pytest.approx(pixel["value"], abs=1e-4)
        assert not session.foreign
    finally:
        session.close()
        server.shutdown()
        server.server_close()
