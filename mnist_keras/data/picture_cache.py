"""The pictures made for training and fitting (written digits, non-digits), kept in the cache folder:
made once (1 to 2 ms each), not on every run."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

# The code that makes pictures: a change to any of it makes them anew.
PICTURE_CODE = ("written", "pen", "templates", "drawn_shapes", "fonts", "preprocess", "negatives", "quickdraw")


def cached(job: tuple, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """build()'s arrays, kept in the cache folder: pictures are made once (1 to 2 ms each), not on every
    run. The key is the job (arrays in it by their bytes), the picture code and the machine's fonts."""
    import io

    from mnist_keras import files
    from mnist_keras.data import fonts

    key = hashlib.sha256(repr([font.path for font in fonts.fonts()]).encode())
    for module in PICTURE_CODE:
        key.update((Path(__file__).parent / f"{module}.py").read_bytes())
    for part in job:
        for piece in part if isinstance(part, tuple) else (part,):
            key.update(np.ascontiguousarray(piece).tobytes() if isinstance(piece, np.ndarray) else repr(piece).encode())
    path = files.cache_dir() / "pictures" / f"{key.hexdigest()[:32]}.npz"
    with contextlib.suppress(OSError, ValueError), np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}
    arrays = build()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with contextlib.suppress(OSError):  # a read-only cache folder: made again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_atomic(path, buffer.getvalue())
    return arrays
