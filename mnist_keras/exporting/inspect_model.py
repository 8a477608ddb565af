"""export/web/mnist_inspect.tflite: the model with every stage of the seed CNN as a named output.

The explain page (issue 29) shows what each layer computes as the user draws; it reads them from
one float32 .tflite whose signature returns, by name, conv1 (after ReLU), pool1, conv2 (after
ReLU), pool2, dense, logits, probabilities (and digit_score with a no-digit head), and from
mnist_inspect.json beside it: the conv layers' kernels and biases, so that a clicked pixel's sum
can be written out. convert() returns the bytes; web_page.py writes them into the page folder
after verify() has checked them against the Keras model on the test images (export's own
network, or for `python -m mnist_keras.web_export` the .keras file, for_keras_file).
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import IMAGE_SHAPE
from mnist_keras.errors import InputError
from mnist_keras.inference.no_digit import SCORE
from mnist_keras.inference.no_digit_graph import Network

MODEL_FILE = "mnist_inspect.tflite"
WEIGHTS_FILE = "mnist_inspect.json"
# The seed's layers, by name, in the order the page shows them; CONV: those with 3x3 kernels.
LAYERS = ("conv1", "pool1", "conv2", "pool2", "dense", "logits")
CONV = ("conv1", "conv2")
# Largest |difference| from the Keras model's probabilities the inspection model may show.
TOLERANCE = 1e-4


def supports(model: Any) -> bool:
    """The model has the seed's named layers (a model built otherwise gets no explain page)."""
    names = {layer.name for layer in model.layers}
    return set(LAYERS) <= names


def taps(network: Network) -> Any:
    """A Keras model: images -> [each of LAYERS, the network's own outputs], sharing its weights."""
    import keras

    graph = network.build()
    return keras.Model(graph.inputs, [network.model.get_layer(n).output for n in LAYERS] + list(graph.outputs))


def stages(network: Network, images: Any, model: Any = None) -> dict:
    """Every stage by name for float images [N, 28, 28, 1]: what the .tflite signature returns.
    model: taps(network), built once (building it inside a traced function would fail)."""
    import tensorflow as tf

    values = (model or taps(network))([images], training=False)
    result = dict(zip(LAYERS, values[:len(LAYERS)], strict=True))
    scores = values[len(LAYERS)]
    result["probabilities"] = scores if network.ends_in_softmax else tf.nn.softmax(scores)
    if network.head is not None:
        result[SCORE] = values[len(LAYERS) + 1]
    return result


def convert(network: Network) -> bytes:
    """The float32 .tflite bytes (batch of 1: LiteRT.js refuses a -1 in a shape)."""
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        archive = keras.export.ExportArchive()
        model = taps(network)
        archive.track(model)
        archive.add_endpoint(name="serving_default", fn=lambda images: stages(network, images, model),
                             input_signature=[tf.TensorSpec([1, *IMAGE_SHAPE, 1], tf.float32, name="images")])
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            return converter.convert()


def weights(model: Any) -> dict:
    """The conv layers' kernels [3, 3, in, out] and biases [out], as lists, for the page's written-out sums."""
    result = {}
    for name in CONV:
        kernel, bias = model.get_layer(name).get_weights()
        result[name] = {"kernel_shape": list(kernel.shape), "kernel": kernel.astype(np.float32).ravel().tolist(),
                        "bias": bias.astype(np.float32).tolist(), "padding": model.get_layer(name).padding}
    return result


def run(model: bytes, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of the inspection .tflite, by name, for float images [N, 28, 28, 1] (one call each)."""
    from ai_edge_litert.interpreter import Interpreter

    from mnist_keras.inference.litert import quiet_stderr

    with quiet_stderr():
        runner = Interpreter(model_content=model).get_signature_runner("serving_default")
    parts = [runner(images=image[None].astype(np.float32)) for image in images]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def output_names(model: bytes) -> list[str]:
    """The signature's output names in the order of the model's outputs (how LiteRT.js returns them)."""
    from ai_edge_litert.interpreter import Interpreter

    from mnist_keras.inference.litert import quiet_stderr

    with quiet_stderr():
        interpreter = Interpreter(model_content=model)
    by_index = {index: name for name, index in
                interpreter._get_full_signature_list()["serving_default"]["outputs"].items()}
    return [by_index[d["index"]] for d in interpreter.get_output_details()]


def verify(model: bytes, network: Network, images: np.ndarray) -> str | None:
    """None when every stage of the .tflite equals Keras' on the images (float [N, 28, 28, 1]); else why not."""
    ours = run(model, images)
    keras_stages = {k: np.asarray(v) for k, v in stages(network, images).items()}
    missing = sorted(set(keras_stages) - set(ours))
    if missing:
        return f"{MODEL_FILE}: no output named {', '.join(missing)}"
    for name, expected in keras_stages.items():
        gap = float(np.abs(ours[name].reshape(expected.shape) - expected).max())
        scale = max(1.0, float(np.abs(expected).max()))
        if gap > TOLERANCE * scale:
            return f"{MODEL_FILE}: {name} differs from the Keras model's by {gap:.2g} on the test images"
    return None


def files(network: Network, images: np.ndarray) -> dict[str, bytes]:
    """{file name: bytes} for the page folder, verified on images (float [N, 28, 28, 1]); InputError if not."""
    model = convert(network)
    problem = verify(model, network, images)
    if problem:
        raise InputError(problem)
    order = [*LAYERS, "probabilities", *([SCORE] if network.head is not None else [])]
    description = {"file": MODEL_FILE, "outputs": output_names(model), "stages": order,
                   "weights": weights(network.model)}
    return {MODEL_FILE: model, WEIGHTS_FILE: (json.dumps(description) + "\n").encode()}


def for_keras_file(model_path: Path, page_model: Path, images: np.ndarray) -> dict[str, bytes]:
    """files() for the .keras model the page's .tflite was exported from (web_export has no export
    job to take the network from); images: uint8 test digits it is verified on.

    FileNotFoundError (a skip: the page is written without it) when there is no such model, when
    it is not the one page_model's JSON records, or when it lacks the seed's layers; InputError when
    the inspection model differs from Keras."""
    from mnist_keras.data.datasets import scale_images
    from mnist_keras.files import sha256_file
    from mnist_keras.inference import classifiers, no_digit
    from mnist_keras.training import keras_file

    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: no such model file (--model)")
    sha = sha256_file(model_path)
    description = page_model.with_suffix(".json")
    recorded = json.loads(description.read_text()).get("source_model_sha256") if description.is_file() else None
    if recorded and recorded != sha:
        raise FileNotFoundError(f"{model_path}: not the model {page_model.name} was exported from "
                                f"(its SHA-256 differs from the one in {description.name})")
    model = keras_file.load_keras(model_path)
    if not supports(model):
        raise FileNotFoundError(f"{model_path}: not this project's CNN (no layers named {', '.join(LAYERS)})")
    try:  # the head export folded into the page's model, if it is beside this one
        head = no_digit.load_head(model_path, sha)
    except InputError:
        head = None
    ends_in_softmax = classifiers.are_probabilities(keras_file.keras_scores(model, images[:20]))
    return files(Network(model, ends_in_softmax, head), scale_images(images))
