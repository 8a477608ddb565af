"""TF Serving's predict requests and answers, checked the same way for REST (serve) and gRPC.

A request the server refuses raises RequestError with TF Serving's wording and HTTP status.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from mnist_keras.data.datasets import IMAGE_SHAPE

BOOLEAN = re.compile(rb"\b(?:true|false)\b")
MAX_INSTANCES = 1024  # per request; about 5 MB of JSON at 28x28x1 floats each
SIGNATURE = "serving_default"
PIXELS = 28 * 28  # values in one image


class RequestError(ValueError):
    """A request the server refuses: (HTTP status, message) as TF Serving would answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def parse_predict(body: bytes, max_instances: int = MAX_INSTANCES) -> tuple[np.ndarray, bool]:
    """A :predict body -> (images float32 [N, 28, 28, 1], row format?), or RequestError."""
    check_body_counts(body, max_instances)
    try:
        request = json.loads(body, parse_constant=_reject_constant)
    except RequestError:
        raise
    except RecursionError:
        raise RequestError("JSON Parse error: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(f"JSON Parse error: {e}") from None
    if not isinstance(request, dict):
        raise RequestError("JSON Value: the request body must be a JSON object")
    signature = request.get("signature_name", SIGNATURE) or SIGNATURE
    if signature != SIGNATURE:
        raise RequestError(f'Serving signature name: "{signature}" not found in signature def')
    if ("instances" in request) == ("inputs" in request):
        raise RequestError("Missing 'inputs' or 'instances' key" if "instances" not in request
                           else "Request can have either 'inputs' or 'instances', not both")
    row = "instances" in request
    values = request["instances" if row else "inputs"]
    if row:
        if not isinstance(values, list):
            raise RequestError("'instances' must be a list, one entry per image")
        if values and all(isinstance(v, dict) for v in values):
            values = [_named_input(v, "instance") for v in values]
    elif isinstance(values, dict):
        values = _named_input(values, "inputs")
    images = to_images(values, "instances" if row else "inputs")
    if BOOLEAN.search(body):  # numpy would have read true as 1.0
        raise RequestError(f"{'instances' if row else 'inputs'}: values must be numbers (got booleans); "
                           "images are float32 pixels in [0, 1]")
    if len(images) > max_instances:
        raise RequestError(f"{len(images)} images in one request; at most {max_instances}")
    return images, row


def check_body_counts(body: bytes, max_instances: int) -> None:
    """Refuses, before decoding, a body holding more values or keys than max_instances images can.

    Decoded JSON takes several times its size in Python objects; counting commas and colons
    (a bound on values and keys) costs one pass over the bytes.
    """
    values = body.count(b",") + 1
    most = max_instances * (PIXELS + 1) + 16  # a comma per pixel and per image, a few for keys
    if values > most:
        raise RequestError(f"request body: {values} or so values, more than {max_instances} images of "
                           f"28x28x1 pixels hold; at most {max_instances} images in one request")
    keys = body.count(b":")
    if keys > max_instances + 16:  # {"images": ...} per image in the row format, a few top-level keys
        raise RequestError(f"request body: {keys} or so keys, more than a request of {max_instances} "
                           f"images has; at most {max_instances} images in one request")


def _reject_constant(name: str) -> None:
    raise RequestError(f"JSON Parse error: {name} is not a number; images hold finite values in [0, 1]")


def _named_input(value: dict, where: str) -> Any:
    if set(value) != {"images"}:
        raise RequestError(f"{where} has inputs {sorted(value)}; the signature has one input: images")
    return value["images"]


def to_images(values: Any, where: str) -> np.ndarray:
    """Nested lists or an array -> float32 [N, 28, 28, 1] in [0, 1], or RequestError saying what is wrong."""
    try:
        array = np.asarray(values)
    except ValueError:  # ragged lists
        raise RequestError(f"{where}: lists of unequal length; each image is [28, 28, 1]") from None
    if array.size == 0:
        raise RequestError(f"{where}: no images")
    if array.dtype.kind not in "iuf":
        raise RequestError(f"{where}: values must be numbers (got {_kind_name(array)}); "
                           "images are float32 pixels in [0, 1]")
    if array.shape[1:] != (*IMAGE_SHAPE, 1):
        raise RequestError(f"{where}: shape {list(array.shape)}, expected [N, 28, 28, 1] "
                           "(N images of 28x28 pixels, 1 channel)")
    if not np.isfinite(array).all():  # NaN compares false with everything: an all-NaN image had a class
        raise RequestError(f"{where}: NaN or infinity among the values; pixels must be finite, "
                           "scaled to [0, 1] (pixel / 255)")
    if array.min() < 0 or array.max() > 1:
        raise RequestError(f"{where}: values from {array.min():g} to {array.max():g}; "
                           "pixels must be scaled to [0, 1] (pixel / 255)")
    return array.astype(np.float32)


def _kind_name(array: np.ndarray) -> str:
    return {"b": "booleans", "U": "strings", "S": "strings"}.get(array.dtype.kind, "mixed values")


def format_predict(outputs: dict[str, np.ndarray], row: bool) -> dict:
    """TF Serving's answer: a list of per-image objects (row) or a dict of arrays (columnar)."""
    if row:
        names = sorted(outputs)
        return {"predictions": [{name: outputs[name][i].tolist() for name in names}
                                for i in range(len(outputs[names[0]]))]}
    return {"outputs": {name: value.tolist() for name, value in sorted(outputs.items())}}
