"""Running a .tflite model with LiteRT, without importing TensorFlow (so it starts fast).

The exported models take MNIST's convention: a white digit on black, 28x28x1. Float
models take pixels scaled to [0, 1]; the full-integer model takes the raw uint8 pixel
(scale 1/255, zero point 0), so a camera frame goes in as is.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import IMAGE_SHAPE, NUM_CLASSES, scale_images
from mnist_keras.errors import InputError, first_line


def load(path: str | Path, num_threads: int | None = None) -> Any:
    """A LiteRT interpreter for a digit classifier, or one line saying why not."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such .tflite file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a .tflite file")
    from ai_edge_litert.interpreter import Interpreter

    try:
        with quiet_stderr():
            interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:  # LiteRT's words for a damaged flatbuffer
        raise InputError(f"{path}: not a valid TFLite model: {first_line(e)}") from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    extra = [d for d in outputs if tuple(d["shape_signature"][1:]) != (NUM_CLASSES,)]
    if (len(inputs) != 1 or len(outputs) - len(extra) != 1
            or tuple(inputs[0]["shape_signature"][1:]) != (*IMAGE_SHAPE, 1)
            or any(tuple(d["shape_signature"][1:]) != (2,) for d in extra) or len(extra) > 1):
        shapes = [tuple(int(n) for n in d["shape_signature"]) for d in inputs + outputs]
        raise InputError(f"{path}: a TFLite model with tensors {shapes}, not a digit "
                         f"classifier from [N, 28, 28, 1] to [N, {NUM_CLASSES}]")
    return interpreter


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Hides LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate" line, printed from C++."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tensor_spec(detail: dict, signature_name: str) -> dict:
    """What a client must know to feed or read a tensor: name, shape, dtype, quantization."""
    scale, zero_point = detail["quantization"]
    return {
        "signature_name": signature_name,
        "tensor_name": detail["name"],
        "shape": [int(n) for n in detail["shape"]],
        "shape_signature": [int(n) for n in detail["shape_signature"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": ({"scale": float(scale), "zero_point": int(zero_point),
                          "real_value": "scale * (q - zero_point)"} if scale else None),
    }


def to_input(images: np.ndarray, detail: dict) -> np.ndarray:
    """uint8 MNIST pixels [N, 28, 28] -> what the model's input tensor holds."""
    scaled = scale_images(images.reshape(len(images), *IMAGE_SHAPE))
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return scaled
    scale, zero_point = detail["quantization"]
    if not scale:
        raise InputError(f"input tensor {detail['name']}: {dtype.name} without quantization")
    info = np.iinfo(dtype)
    quantized = np.round(scaled / scale) + zero_point
    return np.clip(quantized, info.min, info.max).astype(dtype)


def from_output(values: np.ndarray, detail: dict) -> np.ndarray:
    """The output tensor -> float probabilities (dequantized where the model is integer)."""
    scale, zero_point = detail["quantization"]
    if np.issubdtype(values.dtype, np.integer):
        return (values.astype(np.float32) - zero_point) * scale
    return values.astype(np.float32)


def output_named(interpreter: Any, name: str) -> dict | None:
    """The output tensor of a signature output name (e.g. no_digit.CHECK), or None."""
    signatures = interpreter.get_signature_list()
    if not signatures:
        return None
    runner = next(iter(signatures))
    tensor = interpreter.get_signature_runner(runner).get_output_details().get(name)
    return None if tensor is None else next(
        (d for d in interpreter.get_output_details() if d["index"] == tensor["index"]), None)


def probabilities_output(interpreter: Any) -> dict:
    """The output with one value per digit (a model may also have no_digit's [N, 2] check)."""
    return next(d for d in interpreter.get_output_details() if tuple(d["shape_signature"][1:]) == (NUM_CLASSES,))


def predict(interpreter: Any, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Class probabilities [N, 10] for uint8 images [N, 28, 28], in batches."""
    return predict_with_check(interpreter, images, batch_size)[0]


def predict_with_check(interpreter: Any, images: np.ndarray, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities [N, 10] and the digit score [N] (the "digit" column of the digit_check
    output; NaN for a model without one) for uint8 images [N, 28, 28], in batches."""
    input_detail = interpreter.get_input_details()[0]
    output_detail = probabilities_output(interpreter)
    check_detail = next((d for d in interpreter.get_output_details() if d["index"] != output_detail["index"]), None)
    scores = np.full(len(images), np.nan, np.float32)
    probabilities = np.zeros((len(images), NUM_CLASSES), np.float32)
    current = None
    for start in range(0, len(images), batch_size):
        batch = to_input(images[start:start + batch_size], input_detail)
        if batch.shape != current:
            interpreter.resize_tensor_input(input_detail["index"], batch.shape)
            interpreter.allocate_tensors()
            current = batch.shape
        interpreter.set_tensor(input_detail["index"], batch)
        interpreter.invoke()
        values = interpreter.get_tensor(output_detail["index"])
        probabilities[start:start + len(batch)] = from_output(values, output_detail)
        if check_detail is not None:
            check = from_output(interpreter.get_tensor(check_detail["index"]), check_detail)
            scores[start:start + len(batch)] = check[:, 1]
    return probabilities, scores


def seconds_per_image(interpreter: Any, images: np.ndarray, repeats: int = 1000) -> float:
    """Median time of one single-image invoke (tensor copy in and out included)."""
    input_detail = interpreter.get_input_details()[0]
    output_detail = probabilities_output(interpreter)
    interpreter.resize_tensor_input(input_detail["index"], (1, *IMAGE_SHAPE, 1))
    interpreter.allocate_tensors()
    batch = to_input(images, input_detail)
    times = []
    for i in range(repeats + 10):  # the first few calls warm caches
        start = time.perf_counter()
        interpreter.set_tensor(input_detail["index"], batch[i % len(batch)][None])
        interpreter.invoke()
        interpreter.get_tensor(output_detail["index"])
        times.append(time.perf_counter() - start)
    return float(np.median(times[10:]))
