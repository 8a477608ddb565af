"""One predictor for every format: uint8 images [N, 28, 28] -> (probabilities [N, 10], digit_score [N]).

A .keras file (with its no-digit head beside it when there is one), a SavedModel folder (its
serving signature; scanned for untrusted ops before it loads, unless `trust`) or a .tflite from
export (LiteRT: no TensorFlow is imported for it): predict, evaluate, verify, the servers and the
benchmarks all read through load_predictor, so every reader decides "no digit" the same way. A
SavedModel's predictor also answers as the servers do (Predictor.serve: every signature output by
name, for float pixels already scaled to [0, 1]).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import NUM_CLASSES, scale_images
from mnist_keras.errors import InputError, first_line
from mnist_keras.inference import classifiers, litert
from mnist_keras.inference.no_digit import CHECK, SCORE, Head, head_paths, load_head

Outputs = tuple[np.ndarray, np.ndarray]  # probabilities [N, 10], digit_score [N] (NaN: the model has none)
Named = dict[str, np.ndarray]  # every output of a serving signature by name: classes, probabilities, ...
BATCH_SIZE = 1000  # images per signature call when reading many


@dataclasses.dataclass
class Predictor:
    """A loaded model in any format, called as images -> (probabilities, digit_score).

    model: what runs it (the Keras model without its head, the SavedModel's serving signature,
    or the LiteRT interpreter), for a caller that times one call; missing_score: why there is no
    digit score (None when the model has one); serve (a SavedModel's only): float32 images
    [N, 28, 28, 1] in [0, 1] -> every output by name, in one call, as TF Serving answers;
    outputs: those names."""

    path: Path | None
    format: str  # "keras", "savedmodel" or "tflite"
    model: Any
    run: Callable[[np.ndarray], Outputs]
    missing_score: str | None = None
    serve: Callable[[np.ndarray], Named] | None = None
    outputs: tuple[str, ...] = ()

    def __call__(self, images: np.ndarray) -> Outputs:
        return self.run(images)

    def require_score(self) -> Predictor:
        """Itself, or one line saying why the model gives no digit score (and what to run)."""
        if self.missing_score:
            raise InputError(self.missing_score)
        return self


def model_format(path: str | Path) -> str:
    """"savedmodel" (a folder), "keras" (.keras) or "tflite" (any other file), by the path alone."""
    path = Path(path)
    if path.is_dir():
        return "savedmodel"
    return "keras" if path.suffix == ".keras" else "tflite"


def load_predictor(path: str | Path, trust: bool = False, require_score: bool = True) -> Predictor:
    """The model at path behind one call, checked against the contract in one line per fault.

    require_score: a model without the no-digit output (a .keras without its head beside it, an
    export from before the decision) is one line saying what to run; False: its digit_score is NaN."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such model")
    loader = {"keras": _keras, "savedmodel": _saved_model, "tflite": _tflite}[model_format(path)]
    predictor = loader(path, trust)
    return predictor.require_score() if require_score else predictor


# --- Each format ----------------------------------------------------------------------------

def keras_predictor(model: Any, head: Head | None = None, path: Path | None = None) -> Predictor:
    """A loaded Keras model and its head (if any) as one graph."""
    if head is None:
        def read(images: np.ndarray) -> Outputs:
            outputs = model.predict_on_batch(scale_images(images)) if len(images) else np.zeros((0, NUM_CLASSES))
            return classifiers.as_probabilities(np.asarray(outputs)), np.full(len(images), np.nan, np.float32)
        return Predictor(path, "keras", model, read)
    from mnist_keras.inference.no_digit_graph import with_head

    both = with_head(model, head)

    def read_both(images: np.ndarray) -> Outputs:
        if not len(images):
            return np.zeros((0, NUM_CLASSES), np.float32), np.zeros(0, np.float32)
        outputs, score = both.predict_on_batch(scale_images(images))
        return classifiers.as_probabilities(np.asarray(outputs)), np.asarray(score)
    return Predictor(path, "keras", model, read_both)


def _keras(path: Path, trust: bool) -> Predictor:
    """A .keras file (trust does not apply: keras_file loads it in safe mode), with its head when beside it."""
    from mnist_keras.files import sha256_file
    from mnist_keras.training import keras_file

    model = keras_file.load_keras(path)
    if all(p.is_file() for p in head_paths(path)):
        return keras_predictor(model, load_head(path, sha256_file(path)), path)
    predictor = keras_predictor(model, path=path)
    predictor.missing_score = f"{head_paths(path)[0]}: no such no-digit head; run mnist-no-digit --model {path}"
    return predictor


def signature_runner(signature: Any) -> Callable[[np.ndarray], Named]:
    """A serving signature as a function: float images [N, 28, 28, 1] in [0, 1] -> {name: array}, one call."""
    import tensorflow as tf

    def serve(images: np.ndarray) -> Named:
        outputs = signature(images=tf.constant(images, tf.float32))
        return {name: value.numpy() for name, value in outputs.items()}
    return serve


def in_batches(serve: Callable[[np.ndarray], Named], specs: dict[str, Any], images: np.ndarray,
               batch_size: int = BATCH_SIZE) -> Named:
    """Every output by name for uint8 images [N, 28, 28], batch_size images a call (none for no images)."""
    scaled = scale_images(images)
    batches = [serve(scaled[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    if not batches:
        return {name: np.zeros((0, *spec.shape[1:]), spec.dtype.as_numpy_dtype) for name, spec in specs.items()}
    return {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}


def _saved_model(path: Path, trust: bool) -> Predictor:
    """A SavedModel folder's serving signature (classifiers.load_saved_model: scanned unless `trust`)."""
    signature = classifiers.load_saved_model(path, trust)
    specs = signature.structured_outputs
    serve = signature_runner(signature)

    def read(images: np.ndarray) -> Outputs:
        outputs = in_batches(serve, specs, images)
        return outputs["probabilities"], outputs.get(SCORE, np.full(len(images), np.nan, np.float32))
    missing = None if SCORE in specs else (
        f"{path}: the SavedModel has no {SCORE} output (exported before the no-digit decision); export it again")
    return Predictor(path, "savedmodel", signature, read, missing, serve, tuple(sorted(specs)))


def _tflite(path: Path, trust: bool) -> Predictor:
    """A .tflite through LiteRT (trust does not apply: it holds builtin ops only)."""
    interpreter = litert.load(path)

    def read(images: np.ndarray) -> Outputs:
        try:
            return litert.predict_with_check(interpreter, images)
        except RuntimeError as e:  # a damaged model that LiteRT only notices when it runs
            raise InputError(f"{path}: LiteRT cannot run it: {first_line(e)}") from None
    missing = None if litert.output_named(interpreter, CHECK) is not None else (
        f"{path}: the .tflite has no {CHECK} output (exported before the no-digit decision); export it again")
    return Predictor(path, "tflite", interpreter, read, missing)
