"""export/web/mnist_inspect.tflite: every stage of the seed CNN, by name, equal to Keras' own layers."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from mnist_keras.data import datasets
from mnist_keras.exporting import inspect_model, web_page
from mnist_keras.inference import no_digit
from mnist_keras.inference.no_digit_graph import Network
from mnist_keras.training import keras_file
from tests.helpers import RUNTIME, run_module


@pytest.fixture(scope="module")
def inspection(training_run, mnist):
    """The small trained model, its inspection files (verified on 20 test images) and those images."""
    model = keras_file.load_keras(training_run.model_path)
    images = datasets.scale_images(mnist.x_test[:20])
    return model, inspect_model.files(Network(model), images), images


def test_every_stage_equals_the_keras_layer_of_that_name(inspection):
    import keras

    model, files, images = inspection
    stages = inspect_model.run(files[inspect_model.MODEL_FILE], images)
    assert {"conv1", "pool1", "conv2", "pool2", "dense", "logits", "probabilities"} <= set(stages)
    assert stages["conv1"].shape == (20, 28, 28, 32) and stages["pool2"].shape == (20, 7, 7, 64)
    for name in inspect_model.LAYERS:  # Keras' intermediate output, computed apart from the converter's graph
        expected = np.asarray(keras.Model(model.inputs, model.get_layer(name).output)([images], training=False))
        np.testing.assert_allclose(stages[name], expected, atol=1e-4, rtol=1e-4, err_msg=name)
    logits = np.asarray(model(images, training=False))
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(stages["probabilities"], softmax / softmax.sum(1, keepdims=True), atol=1e-5)
    assert (stages["conv1"] >= 0).all() and (stages["conv1"] == 0).any()  # after ReLU


def test_the_weights_file_rebuilds_a_conv1_value(inspection):
    """The JSON's kernel and bias, summed over a 3x3 window and ReLU'd, give the model's conv1 pixel:
    what the page writes out when a feature-map pixel is clicked."""
    _, files, images = inspection
    conv1 = json.loads(files[inspect_model.WEIGHTS_FILE])["weights"]["conv1"]
    kernel = np.asarray(conv1["kernel"], np.float32).reshape(conv1["kernel_shape"])
    stages = inspect_model.run(files[inspect_model.MODEL_FILE], images[:1])
    padded = np.pad(images[0, :, :, 0], 1)
    row, col, channel = 13, 15, 5
    total = float(np.sum(padded[row:row + 3, col:col + 3] * kernel[:, :, 0, channel])) + conv1["bias"][channel]
    assert max(total, 0.0) == pytest.approx(float(stages["conv1"][0, row, col, channel]), abs=1e-5)


def test_an_inspection_model_of_another_network_is_refused(inspection):
    from mnist_keras.training.model import build_model

    _, files, images = inspection
    other = build_model()
    other.build((None, 28, 28, 1))
    problem = inspect_model.verify(files[inspect_model.MODEL_FILE], Network(other), images)
    assert problem.startswith(f"{inspect_model.MODEL_FILE}: conv1 differs from the Keras model's")


def test_web_export_writes_the_inspection_model_from_the_keras_file(exported, tmp_path, capsys):
    """python -m mnist_keras.web_export puts explain.html's inspection model in web/ as mnist-export
    does, made from --model and checked against it; without that model, one line and the page alone."""
    if not (RUNTIME / web_page.RUNTIME_PACKAGE).is_dir():
        pytest.skip(f"LiteRT.js is not installed: {web_page.SET_UP}")
    export_dir, web = tmp_path / "export", tmp_path / "export" / "web"
    export_dir.mkdir()
    for name in ("mnist_int8.tflite", "mnist_int8.json"):
        shutil.copy(exported.export / name, export_dir)
    result = run_module("mnist_keras.web_export", f"--export_dir={export_dir}", f"--model={exported.model_path}",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^  web/mnist_inspect\.tflite: ok, every layer equals Keras' \(mnist\.keras\)$",
                     result.stdout, re.M), result.stdout
    # The same stages as export's own (the no-digit head's digit_score included), equal to Keras' layers.
    written = json.loads((web / inspect_model.WEIGHTS_FILE).read_text())
    assert written["stages"] == json.loads((exported.export / "web" / inspect_model.WEIGHTS_FILE).read_text())["stages"]
    model = keras_file.load_keras(exported.model_path)
    network = Network(model, head=no_digit.load_head(exported.model_path))
    images = datasets.scale_images(datasets.load().x_test[:5])
    assert inspect_model.verify((web / inspect_model.MODEL_FILE).read_bytes(), network, images) is None

    other = tmp_path / "other.keras"
    other.write_bytes(b"not the model the .tflite came from")
    for model_path, why in [(tmp_path / "nowhere.keras", "nowhere.keras: no such model file (--model)"),
                            (other, "other.keras: not the model mnist_int8.tflite was exported from")]:
        assert web_page.rebuild(export_dir, None, model_path) is None
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("  web/mnist_inspect.tflite: not written: ") and why in lines[0], lines
        assert (web / "index.html").is_file() and not (web / inspect_model.MODEL_FILE).exists()
