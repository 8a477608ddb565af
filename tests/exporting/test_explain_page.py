"""export/web/explain.html in headless Chromium, offline: every layer it shows equals Keras' own.

It serves the folder the session's export wrote (with mnist_inspect.tflite and .json), blocks every
other origin, draws a 7 and reads what the page computed (window.mnistExplain).
"""

from __future__ import annotations

import numpy as np
import pytest

from mnist_keras.exporting import inspect_model
from mnist_keras.training import keras_file
from tests.helpers import SEVEN, Offline, draw, require_browser, static_server

require_browser(runtime=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def explained(exported, browser, tmp_path_factory):
    """The page after drawing a 7 and lifting the pen: (session, what it computed, the screenshot's path)."""
    server = static_server(exported.export / "web")
    session = Offline(browser, f"http://127.0.0.1:{server.server_address[1]}/explain.html")
    try:
        page = session.page
        page.evaluate("window.mnistExplain.ready")
        assert page.evaluate("window.mnistExplain.stats.error") is None
        draw(page, [SEVEN[0]])
        page.wait_for_function("window.mnistExplain.last.occlusion !== null", timeout=20_000)
        computed = page.evaluate("""() => { const l = window.mnistExplain.last;
            return { input: Array.from(l.input), occlusion: l.occlusion,
                     outputs: Object.fromEntries(Object.entries(l.outputs).map(
                        ([k, v]) => [k, { shape: v.shape, values: Array.from(v.values) }])) }; }""")
        screenshot = tmp_path_factory.mktemp("explain") / "explain-7.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"\nexplain.html after drawing a 7: {screenshot}")
        yield session, computed, screenshot
    finally:
        session.close()
        server.shutdown()
        server.server_close()


def test_every_layer_shown_equals_keras_intermediate_outputs(explained, exported):
    import keras

    session, computed, screenshot = explained
    model = keras_file.load_keras(exported.model_path)
    image = np.asarray(computed["input"], np.float32).reshape(1, 28, 28, 1)
    assert image.max() > 0.5  # the 7 reached the network
    for name in inspect_model.LAYERS:
        expected = np.asarray(keras.Model(model.inputs, model.get_layer(name).output)([image], training=False))
        shown = computed["outputs"][name]
        assert tuple(shown["shape"]) == expected.shape, name
        gap = np.abs(np.asarray(shown["values"], np.float32).reshape(expected.shape) - expected).max()
        assert gap <= 1e-4 * max(1.0, float(np.abs(expected).max())), (name, gap)
    probabilities = np.asarray(computed["outputs"]["probabilities"]["values"])
    assert probabilities.argmax() == 7 and computed["occlusion"]["digit"] == 7
    assert len(computed["occlusion"]["drops"]) == 49 and max(d["drop"] for d in computed["occlusion"]["drops"]) > 0
    # Each layer labelled with its shapes (channel-last, and channel-first for the maps) and its zero share.
    page = session.page
    conv1 = page.locator('.layer[data-layer="conv1"] h2').text_content()
    assert "(1, 28, 28, 32) channel-last; channel-first (1, 32, 28, 28)" in conv1 and "% zero" in conv1
    assert page.locator('.layer[data-layer="conv2"] .maps canvas').count() == 64
    zero_share = float(page.locator('.layer[data-layer="conv1"]').get_attribute("data-zero-share"))
    assert zero_share == pytest.approx(float(np.mean(np.asarray(computed["outputs"]["conv1"]["values"]) == 0)))
    assert screenshot.stat().st_size > 10_000
    assert not session.foreign, session.foreign  # fully offline: nothing asked of another origin


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
        assert "(1, 48) channel-last" in page.locator('.layer[data-layer="dense"] h2').text_content()
        assert "channel-first (1, 24, 7, 7)" in page.locator('.layer[data-layer="pool2"] h2').text_content()
        page.locator('.layer[data-layer="conv2"] .maps canvas').nth(20).click()
        pixel = page.evaluate("window.mnistExplain.last.pixel")
        assert len(pixel["channelSums"]) == 16 and pixel["relu"] == pytest.approx(pixel["value"], abs=1e-4)
        assert not session.foreign
    finally:
        session.close()
        server.shutdown()
        server.server_close()
