"""Files written so that a reader never sees half of one: atomic publish, and SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "MNIST_KERAS_CACHE_DIR"  # where measurements and generated data are cached


def umask() -> int:
    """The process's umask (os.umask can only be read by setting it): for modes mkstemp would make 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, content: str | bytes) -> None:
    """Writes a temporary file beside `path`, then renames it: never a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp's 0600 would hide results from other users
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(path: str | Path, save: Callable[[Path], None]) -> None:
    """save(temporary path) beside `path`, then a rename: for writers that take a path (model.save)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: str | Path) -> str:
    """The hex SHA-256 of a file, read in chunks (a SavedModel's variables can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """$MNIST_KERAS_CACHE_DIR, else $XDG_CACHE_HOME/mnist_keras, else ~/.cache/mnist_keras."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist_keras"
