"""Reads the digit in each image file: photos, scans, drawings, any size or colour.

    python -m mnist_keras.predict digit.png [more.jpg ...] [--top_k 3] [--json]
        [--model export/mnist_int8.tflite | model.keras | saved_models/mnist/1]

Each image is made MNIST-style first (preprocess.py). The default model is the exported
full-integer .tflite, run by LiteRT without importing TensorFlow, so the command starts
in a fraction of a second. A file that cannot be read is reported on one line, the
others are still read, and the exit status is 1 if any failed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from absl import flags

from mnist_keras import cli
from mnist_keras.errors import InputError

DEFAULT_MODEL = "export/mnist_int8.tflite"

Classifier = Callable[[np.ndarray], np.ndarray]  # uint8 [N, 28, 28] -> probabilities [N, 10]


def load_classifier(path: str | Path) -> Classifier:
    """A .tflite (LiteRT), a .keras file, or a SavedModel folder, behind one signature."""
    path = Path(path)
    if not path.exists():
        hint = "; run python -m mnist_keras.export first" if str(path) == DEFAULT_MODEL else ""
        raise InputError(f"{path}: no such model{hint}")
    if path.is_dir():
        from mnist_keras.verify import load_saved_model

        signature = load_saved_model(path)

        def classify(images: np.ndarray) -> np.ndarray:
            import tensorflow as tf

            scaled = tf.constant(images[..., None].astype(np.float32) / 255.0)
            return signature(images=scaled)["probabilities"].numpy()
        return classify
    if path.suffix == ".keras":
        from mnist_keras.evaluate import load_model

        model = load_model(path)

        def classify(images: np.ndarray) -> np.ndarray:
            logits = model.predict_on_batch(images[..., None].astype(np.float32) / 255.0)
            exp = np.exp(logits - logits.max(axis=1, keepdims=True))
            return exp / exp.sum(axis=1, keepdims=True)
        return classify
    from mnist_keras import litert

    interpreter = litert.load(path)
    return lambda images: litert.predict(interpreter, images)


def top_k(probabilities: np.ndarray, k: int) -> list[dict]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"digit": int(d), "probability": round(float(probabilities[d]), 6)} for d in order]


def predict_files(paths: list[str], classify: Classifier, k: int) -> list[dict]:
    """One record per file, in order: the top k digits, or the error that file gave."""
    from mnist_keras.preprocess import preprocess

    records, images = [], []
    for path in paths:
        try:
            images.append(preprocess(path))
            records.append({"file": path})
        except InputError as e:
            records.append({"file": path, "error": str(e)})
    if images:
        probabilities = iter(classify(np.stack(images)))
        for record in records:
            if "error" not in record:
                best = top_k(next(probabilities), k)
                record.update(digit=best[0]["digit"], probability=best[0]["probability"], top_k=best)
    return records


def format_record(record: dict) -> str:
    return f"{record['file']}: " + ", ".join(
        f"{p['digit']} ({100 * p['probability']:.1f}%)" for p in record["top_k"])


FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    paths = argv[1:]
    if not paths:
        raise InputError("name at least one image file: python -m mnist_keras.predict digit.png")
    classify = load_classifier(FLAGS.model)
    records = predict_files(paths, classify, FLAGS.top_k)
    for record in records:
        if "error" in record:
            print(f"error: {record['error']}", file=sys.stderr)
        elif not FLAGS.json:
            print(format_record(record))
    if FLAGS.json:
        print(json.dumps({"model": FLAGS.model, "predictions": records}, indent=2))
    if any("error" in r for r in records):
        sys.exit(1)


def define_flags() -> None:
    flags.DEFINE_string("model", DEFAULT_MODEL,
                        "A .tflite file (LiteRT, fast start), a .keras file or a SavedModel folder.")
    flags.DEFINE_integer("top_k", 1, "Show the k most likely digits.", lower_bound=1, upper_bound=10)
    flags.DEFINE_bool("json", False, "Print JSON: per file, the digit, its probability and the top k.")


def cli_main() -> None:
    """The `mnist-predict` console script and `python -m mnist_keras.predict`."""
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
