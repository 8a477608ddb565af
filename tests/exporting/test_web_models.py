"""export/web/ with other models than the int8 one: the page reads the model's input at
load time and feeds what it asks for (float32 pixels, RGB pictures for the camera model)."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from mnist_keras.exporting import web_page
from tests.helpers import ONE, RUNTIME, SEVEN, ZERO, Offline, draw, read, require_browser, shown, static_server, upload

require_browser(runtime=True)


def test_the_float32_model_gets_pixels_over_255_and_matches_litert(exported, browser, mnist, tmp_path):
    model = exported.export / "mnist_float32.tflite"
    server = static_server(web_page.write_web(tmp_path / "web", model, RUNTIME))
    session = Offline(browser, f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        session.page.evaluate("window.mnistWeb.ready")
        assert session.page.evaluate("window.mnistWeb.stats.inputDtype") == "float32"
        from mnist_keras.inference import litert

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
    """The camera model of export (RGB in, the MNIST preprocessing in its graph) on the page, ahead
    of the 28x28 files; the page reads the input from the model and feeds it the picture as RGB."""
    from ai_edge_litert.interpreter import Interpreter

    from mnist_keras.exporting import camera_model
    from mnist_keras.inference.no_digit_graph import Network
    from mnist_keras.training import keras_file

    keras_path = exported.model_path
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    shutil.copy(int8_model, export_dir)
    camera = export_dir / web_page.MODELS[0]
    camera.write_bytes(camera_model.convert(Network(keras_file.load_keras(keras_path)), "camera"))
    assert web_page.export_web(export_dir, RUNTIME) is None
    assert '"source": "mnist_camera.tflite"' in (export_dir / "web" / "model.json").read_text()
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
        assert session.page.locator("#seen").evaluate("c => [c.width, c.height]") == [size, size]
        assert session.foreign == []
    finally:
        session.close()
        server.shutdown()
        server.server_close()
