"""A classifier's outputs (logits or probabilities) and a SavedModel's serving signature.

load_saved_model checks a folder against the contract (images [N, 28, 28, 1] in, probabilities
and classes out) and says in one line what is wrong; predictor.py runs it beside the other
formats, for every reader and the servers alike. TensorFlow is imported only when a SavedModel is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import IMAGE_SHAPE, NUM_CLASSES
from mnist_keras.errors import InputError, first_line
from mnist_keras.inference import saved_model_scan


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits [N, 10], row by row (shifted by the maximum: no overflow)."""
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def are_probabilities(outputs: np.ndarray) -> bool:
    """Outputs of a model that ends in a softmax (rather than logits, as this project's does)."""
    return bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3))


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """A model's outputs as probabilities, whether it ends in a softmax or in logits."""
    return outputs if are_probabilities(outputs) else softmax(outputs)


# --- SavedModel -----------------------------------------------------------------------------

def check_saved_model_dir(path: str | Path) -> Path:
    """Rejects a folder that is not a SavedModel before TensorFlow is imported."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if not (path / "saved_model.pb").is_file():
        raise InputError(f"{path}: not a SavedModel folder (no saved_model.pb)")
    return path


def load_saved_model(path: str | Path, trust: bool = False) -> Any:
    """The serving signature of a SavedModel folder, checked against the documented contract.

    Unless `trust`, its graph is scanned first (saved_model_scan.py): one with file, network or
    process ops is refused before TensorFlow loads or runs any of it."""
    path = check_saved_model_dir(path)
    if not trust:
        saved_model_scan.check_untrusted(path)
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    except KeyError:
        raise InputError(f"{path}: SavedModel has no serving_default signature") from None
    except Exception as e:  # damaged protobuf or variables
        raise InputError(f"{path}: cannot load SavedModel: {first_line(e)}") from None
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    expected_in = {"images": ([None, *IMAGE_SHAPE, 1], tf.float32)}
    expected_out = {"probabilities": ([None, NUM_CLASSES], tf.float32), "classes": ([None], tf.int64)}
    actual_in = {k: (v.shape.as_list(), v.dtype) for k, v in inputs.items()}
    actual_out = {k: (v.shape.as_list(), v.dtype) for k, v in outputs.items()}
    if actual_out.get("digit_score") == ([None], tf.float32):  # no_digit.py's extra output
        expected_out["digit_score"] = ([None], tf.float32)
    if actual_in != expected_in or actual_out != expected_out:
        raise InputError(f"{path}: serving_default maps {actual_in} to {actual_out}, not "
                         "images float32 [N, 28, 28, 1] to probabilities [N, 10] and classes int64 [N]")
    return signature


def signature_defs(path: str | Path) -> Any:
    """A SavedModel's signatures (name -> SignatureDef protobuf), read from saved_model.pb: what the
    servers' metadata calls answer, in JSON (signature_metadata) or as a protobuf (gRPC)."""
    return saved_model_scan.read_saved_model(path).meta_graphs[0].signature_def


def signature_metadata(signatures: Any) -> dict:
    """Signatures (signature_defs) in TF Serving's REST JSON form."""
    from google.protobuf import json_format

    return {"signature_def": {name: json_format.MessageToDict(signatures[name], preserving_proto_field_name=True)
                              for name in signatures}}
