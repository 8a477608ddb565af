"""The artifacts export writes: a SavedModel with a serving signature, TFLite conversions,
and the JSON that describes each .tflite to the engineer who ships it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import IMAGE_SHAPE, scale_images
from mnist_keras.exporting import tflite_metadata, verify
from mnist_keras.files import sha256_file
from mnist_keras.inference import litert
from mnist_keras.inference.no_digit_graph import Network

SAVED_MODEL = "savedmodel"
# name: (description, quantized)
TFLITE_FORMATS = {
    "float32": ("float32 weights and arithmetic", False),
    "float16": ("float16 weights, float32 arithmetic on CPU (float16 on GPU delegates)", False),
    "dynamic_int8": ("int8 weights, float32 input, output and activations", True),
    "int8": ("int8 weights and activations, uint8 input and output (full integer)", True),
}
# camera, rgb: the 3-channel models for MediaPipe and apps (app_models.py)
APP_FORMATS = ("camera", "rgb")
FORMATS = (SAVED_MODEL, *TFLITE_FORMATS, *APP_FORMATS)
PIXELS = ("28x28x1 grayscale, white digit on black as in MNIST (0 = background, 255 = ink), "
          "the digit's 20x20 box centred by its centre of mass")


def tflite_name(fmt: str) -> str:
    """The file name of one TFLite format, e.g. mnist_int8.tflite."""
    return f"mnist_{fmt}.tflite"


def write_saved_model(network: Network, path: Path, outputs: str) -> None:
    """A SavedModel whose serving_default maps `images` to probabilities (and classes).

    outputs="serving": probabilities and classes, the contract TF Serving clients rely on, and
    digit_score [N] with a no-digit head; outputs="probabilities": the output the TFLite files
    carry, and digit_check [N, 2] = [no digit, digit] with a head (no_digit_graph.Network).
    """
    import keras
    import tensorflow as tf

    graph = network.build()
    archive = keras.export.ExportArchive()
    archive.track(graph)
    archive.add_endpoint(name="serving_default", fn=lambda images: network.signature(
        graph, images, serving=outputs == "serving"), input_signature=[
        tf.TensorSpec([None, *IMAGE_SHAPE, 1], tf.float32, name="images")])
    archive.write_out(str(path), verbose=False)


def convert(source: Path, fmt: str, calibration: np.ndarray | None = None) -> bytes:
    """TFLite bytes from the probabilities SavedModel; calibration: uint8 images for int8."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(source))
    if fmt != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if fmt == "int8":
        scaled = scale_images(calibration)
        # One image per step, as the calibrator expects; the pixel range [0, 1] it sees
        # sets the uint8 input's scale to 1/255, so raw pixels go in unchanged.
        converter.representative_dataset = lambda: ({"images": image[None]} for image in scaled)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    with warnings.catch_warnings():  # the calibrator uses tf.lite.Interpreter internally
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return converter.convert()


def describe_tflite(path: Path, fmt: str, result: verify.Result, source: dict) -> dict:
    """The JSON a mobile engineer reads beside the .tflite: how to feed it and what it scored."""
    interpreter = litert.load(path)
    return {
        "file": path.name,
        "format": fmt,
        "description": TFLITE_FORMATS[fmt][0],
        "size_bytes": result.size_bytes,
        "sha256": sha256_file(path),
        "input": {**litert.tensor_spec(interpreter.get_input_details()[0], "images"), "pixels": PIXELS,
                  "value": ("raw pixel 0-255" if fmt == "int8" else "pixel / 255, in [0, 1]")},
        "output": {**litert.tensor_spec(litert.probabilities_output(interpreter), "probabilities"),
                   "value": "probability of each digit (softmax)", "labels": "labels.txt"},
        **no_digit_spec(interpreter),
        "signature": interpreter.get_signature_list(),
        "metadata": tflite_metadata.read_metadata(path.read_bytes(), path.name),  # what the file embeds
        "test_accuracy": round(result.accuracy, 4),
        "test_correct": result.correct,
        "test_images": result.total,
        "change_against_keras": round(result.change, 4),
        "same_class_as_keras": round(result.agreement, 4),
        "seconds_per_image": round(result.seconds_per_image, 7),
        "bar": result.bar,
        **source,
    }


def no_digit_spec(interpreter: Any) -> dict:
    """The digit_check output of a .tflite (no_digit.py), as its JSON describes it; {} if it has none."""
    from mnist_keras.inference import no_digit

    detail = litert.output_named(interpreter, no_digit.CHECK)
    if detail is None:
        return {}
    return {"no_digit_output": {**litert.tensor_spec(detail, no_digit.CHECK), "labels": no_digit.CHECK_LABELS,
                                "value": "[1 - digit score, digit score]; no digit when digit score < 0.5 "
                                         "(the threshold chosen on validation data is folded in; no_digit.json)"}}
