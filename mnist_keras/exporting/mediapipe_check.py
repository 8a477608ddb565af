"""Runs a .tflite through MediaPipe Tasks' ImageClassifier, as an Android, iOS or web app
would (the Python API shares their C++ core), and reads the digits it names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_keras.errors import InputError


def classify(model: str | Path | bytes, images: np.ndarray, name: str = "model") -> np.ndarray:
    """Digits MediaPipe names (category_name) for RGB uint8 [N, H, W, 3]; -1 where it names none.

    A model MediaPipe refuses (no metadata, wrong input) is one line naming it.
    """
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    buffer = Path(model).read_bytes() if isinstance(model, (str, Path)) else model
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_buffer=buffer), max_results=1)
    try:
        classifier = vision.ImageClassifier.create_from_options(options)
    except (ValueError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(f"{name}: MediaPipe's ImageClassifier refuses it: {first}") from None
    digits = np.full(len(images), -1)
    with classifier:
        for n, image in enumerate(images):
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(image)))
            categories = result.classifications[0].categories if result.classifications else []
            if categories and categories[0].category_name.isdigit():
                digits[n] = int(categories[0].category_name)
    return digits
