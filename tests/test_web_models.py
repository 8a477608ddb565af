"""export/web/ with other models than the int8 one: the page reads the model's input at
load time and feeds what it asks for (float32 pixels, RGB pictures for the camera model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_draw_page import ONE, SEVEN, ZERO, draw
from test_web_page import RUNTIME, Offline, launch_chromium, read, shown, static_server, upload

from mnist_keras import web_export


@pytest.fixture(scope="module")
def browser():
    yield from launch_chromium()


@pytest.fixture(scope="module")
def int8_model(exported) -> Path:
    _, out, _ = exported
    return out / "export" / "mnist_int8.tflite"


def camera_like_model(keras_path: Path, path: Path, size: int = 96) -> Path:
    """A stand-in with the camera model's interface, [1, S, S, 3] uint8 RGB in, probabilities
    out: grey, inverted (dark ink on paper), resized to 28x28 in the graph, then the CNN."""
    import keras
    import tensorflow as tf

    model = keras.models.load_model(keras_path)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        gray = 1.0 - tf.reduce_mean(tf.cast(images, tf.float32), axis=-1, keepdims=True) / 255.0
        return {"probabilities": tf.nn.softmax(model(tf.image.resize(gray, (28, 28)), training=False))}

    archive.add_endpoint(name="serving_default", fn=serve,
                         input_signature=[tf.TensorSpec([1, size, size, 3], tf.uint8, name="images")])
    archive.write_out(str(path.with_suffix("")), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(path.with_suffix("")))
    path.write_bytes(converter.convert())
    return path


def test_a_model_taking_rgb_gets_the_picture_and_matches_litert(exported, int8_model, browser, tmp_path, mnist):
    """The page reads the input from the model: [1, S, S, 3] uint8 gets the picture as RGB.
    Named as the camera model, so export puts it on the page ahead of the 28x28 files."""
    from ai_edge_litert.interpreter import Interpreter

    _, _, keras_path = exported
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    shutil.copy(int8_model, export_dir)
    camera = camera_like_model(keras_path, export_dir / web_export.MODELS[0])
    assert web_export.export_web(export_dir, RUNTIME) is None
    assert '"source": "mnist_camera.tflite"' in (export_dir / "web" / "model.json").read_text()
    server = static_server(export_dir / "web")
    session = Offline(browser, f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        session.page.evaluate("window.mnistWeb.ready")
        assert session.page.evaluate("window.mnistWeb.stats.inputShape") == [1, 96, 96, 3]
        interpreter = Interpreter(model_path=str(camera))
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        for i in range(5):
            path = tmp_path / f"digit{i}.png"
            Image.fromarray(255 - mnist.x_test[i]).resize((96, 96), Image.Resampling.BILINEAR).save(path)
            upload(session.page, path)
            digit, probabilities = read(session.page)
            given = np.array(session.page.evaluate("window.mnistWeb.stats.lastInput"), np.uint8)
            interpreter.set_tensor(inp["index"], given.reshape(1, 96, 96, 3))
            interpreter.invoke()
            python = interpreter.get_tensor(out["index"])[0]
            assert np.abs(np.array(probabilities) - python).max() < 1e-4
            assert int(digit) == int(python.argmax())
        assert session.page.locator("#seen").evaluate("c => [c.width, c.height]") == [96, 96]
        assert session.foreign == []
    finally:
        session.close()
        server.shutdown()
        server.server_close()


def test_the_float32_model_gets_pixels_over_255_and_matches_litert(exported, browser, mnist, tmp_path):
    _, out, _ = exported
    model = out / "export" / "mnist_float32.tflite"
    server = static_server(web_export.write_web(tmp_path / "web", model, RUNTIME))
    session = Offline(browser, f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        session.page.evaluate("window.mnistWeb.ready")
        assert session.page.evaluate("window.mnistWeb.stats.inputDtype") == "float32"
        from mnist_keras import litert

        interpreter = litert.load(model)
        inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        for i in range(5):
            path = tmp_path / f"digit{i}.png"
            Image.fromarray(255 - mnist.x_test[i]).resize((112, 112), Image.Resampling.BILINEAR).save(path)
            upload(session.page, path)
            given = np.array(session.page.evaluate("window.mnistWeb.stats.lastInput"), np.float32)
            interpreter.set_tensor(inp["index"], given.reshape(1, 28, 28, 1) / 255)
            interpreter.invoke()
            assert np.abs(np.array(read(session.page)[1]) - interpreter.get_tensor(outp["index"])[0]).max() < 1e-5
        assert session.foreign == []
    finally:
        session.close()
        server.shutdown()
        server.server_close()


def test_the_camera_model_reads_drawn_and_uploaded_digits_in_the_browser(exported, int8_model, browser,
                                                                          mnist, tmp_path):
    """The camera model of export (RGB in, the MNIST preprocessing in its graph) on the page."""
    camera_model = pytest.importorskip("mnist_keras.camera_model", reason="the camera model is not built here")
    from ai_edge_litert.interpreter import Interpreter

    from mnist_keras import inference

    _, _, keras_path = exported
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    shutil.copy(int8_model, export_dir)
    camera = export_dir / web_export.MODELS[0]
    camera.write_bytes(camera_model.convert(inference.load_keras(keras_path), False, "camera"))
    assert web_export.export_web(export_dir, RUNTIME) is None
    size = camera_model.SIZE
    server = static_server(export_dir / "web")
    session = Offline(browser, f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        session.page.evaluate("window.mnistWeb.ready")
        assert session.page.evaluate("window.mnistWeb.stats.inputShape") == [1, size, size, 3]
        for digit, strokes in [("0", ZERO), ("1", ONE), ("7", SEVEN)]:
            session.page.click("#clear")
            draw(session.page, strokes)
            assert shown(session.page)[0] == digit
        interpreter = Interpreter(model_path=str(camera))
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        for i in range(10):
            path = tmp_path / f"digit{i}.png"
            Image.fromarray(camera_model.render(mnist.x_test[i:i + 1])[0]).save(path)
            upload(session.page, path)
            shown_digit, probabilities = read(session.page)
            given = np.array(session.page.evaluate("window.mnistWeb.stats.lastInput"), np.uint8)
            interpreter.set_tensor(inp["index"], given.reshape(1, size, size, 3))
            interpreter.invoke()
            python = interpreter.get_tensor(out["index"])[0].astype(np.float64)
            if out["dtype"] == np.uint8:
                python = (python - out["quantization"][1]) * out["quantization"][0]
            assert np.abs(np.array(probabilities) - python).max() < 2e-3
            assert int(shown_digit) == int(python.argmax())
        assert session.foreign == []
    finally:
        session.close()
        server.shutdown()
        server.server_close()
