"""Digits as people write and type them, beyond MNIST's own look: the network and the no-digit
head learn from them, and scripts/reading_benchmark.py measures reading by style on them.

Kinds (KINDS), each with three splits held apart by style, not by sample:
- "typed": digits in the machine's fonts, print and handwriting-style families, on paper as
  photographed (size, slant, blur, noise, paper and ink); split by font family (fonts.py).
- "drawn": digits drawn with a round pen from stroke templates of the common ways to write
  each digit (templates.py: 1 with flag and base, crossed 7, open 4, ...), jittered, sheared,
  rotated and elastically distorted, at any stroke width; one template of each style is
  held out (heldout), the others train and choose the threshold.
- "reshaped": MNIST digits rotated, sheared, stretched, thickened or thinned, some elastically.
- "redrawn": MNIST digits as a user hands them over (pencil on paper, any size, off-centre).
The MNIST kinds take their digits from the split's own images (`source`): training images for
"train", the validation images for "validation", the test set (whose writers MNIST keeps apart
from the training set's) for "heldout".

Every picture is made MNIST-style by preprocess.to_mnist, the path `mnist-predict` takes.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import NamedTuple

import numpy as np

from mnist_keras.data import picture_cache
from mnist_keras.errors import InputError

KINDS = ("typed", "drawn", "reshaped", "redrawn")
SPLITS = ("train", "validation", "heldout")
# The kinds training adds to MNIST (train.py's --written_share), and in which shares.
TRAINING_SHARES = {"typed": 0.35, "drawn": 0.35, "reshaped": 0.3}
PAGE = 64


class Written(NamedTuple):
    """One kind's split: MNIST-style images [N, 28, 28] uint8, their labels, and the style of each
    (the font family, the template, or "mnist")."""

    kind: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    styles: np.ndarray
    pages: np.ndarray | None = None  # the 64x64 pages they were made from (typed and drawn)


def seed(kind: str, split: str, salt: int = 0) -> int:
    return int.from_bytes(hashlib.sha256(f"{kind}/{split}/{salt}".encode()).digest()[:4], "little")


def make(kind: str, split: str, count: int, source: tuple[np.ndarray, np.ndarray] | None = None,
         salt: int = 0) -> Written:
    """`count` digits of one kind's split, the same on every run for the same salt."""
    if kind not in KINDS:
        raise InputError(f"unknown kind of digits {kind!r}; choose from {', '.join(KINDS)}")
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    rng = np.random.default_rng(seed(kind, split, salt))
    if kind in ("typed", "drawn"):
        pages, labels, styles = (typed_pages if kind == "typed" else drawn_pages)(split, count, rng)
        return Written(kind, split, *mnist_style(pages, labels, styles))
    if source is None:
        raise InputError(f"{kind} digits are made from MNIST images: pass the split's images and labels")
    chosen = rng.choice(len(source[0]), min(count, len(source[0])), replace=False)
    digits, labels = source[0][chosen], source[1][chosen]
    images = reshaped(digits, rng) if kind == "reshaped" else redrawn_pages(digits, rng)
    return Written(kind, split, images, labels.astype(np.uint8), np.full(len(images), "mnist"))


def mnist_style(pages: np.ndarray, labels: np.ndarray, styles: np.ndarray) -> tuple[np.ndarray, ...]:
    """(images, labels, styles, pages): preprocess.to_mnist on each page; one it finds no ink in is dropped."""
    from mnist_keras.data.negatives import to_mnist_pages

    images, no_ink = to_mnist_pages(pages)
    kept = ~no_ink
    return images[kept], labels[kept].astype(np.uint8), styles[kept], pages[kept]


def typed_pages(split: str, count: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Digits in the split's font families, photographed: size, slant, place, some elastic, paper and ink."""
    from mnist_keras.data import fonts, pen

    paths = fonts.digit_fonts(split)
    if not paths:
        raise InputError(f"no font of the {split} split draws digits (scripts/debian-packages.txt lists "
                         "the font packages)")
    family = {font.path: font.family for font in fonts.fonts()}
    pages = np.empty((count, PAGE, PAGE), np.uint8)
    labels = rng.integers(0, 10, count)
    styles = np.empty(count, object)
    for n in range(count):
        path = paths[int(rng.integers(len(paths)))]
        ink = fonts.glyph_ink(path, str(labels[n]), rng, PAGE)
        if rng.random() < 0.3:
            ink = pen.elastic(ink, rng, alpha=float(rng.uniform(2, 5)), sigma=float(rng.uniform(2.5, 4)))
        pages[n], styles[n] = pen.page(ink, rng), family[path]
    return pages, labels, styles


def drawn_pages(split: str, count: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Digits drawn with a round pen from the split's stroke templates, every digit equally often."""
    from mnist_keras.data import pen, templates

    chosen = templates.digit_templates(split)
    by_digit = {digit: [t for t in chosen if t.label == digit] for digit in range(10)}
    pages = np.empty((count, PAGE, PAGE), np.uint8)
    labels = rng.integers(0, 10, count)
    styles = np.empty(count, object)
    for n in range(count):
        options = by_digit[int(labels[n])]
        template = options[int(rng.integers(len(options)))]
        pages[n], styles[n] = pen.render(template.strokes, rng, PAGE), template.name
    return pages, labels, styles


def redrawn_pages(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MNIST digits as a user hands them over: grey pencil on off-white paper, any size, off-centre,
    then made MNIST-style again by preprocess.to_mnist (scripts/redrawn_digits.py draws them so)."""
    from PIL import Image

    from mnist_keras.data.preprocess import to_mnist

    out = np.zeros_like(digits)
    for n, digit in enumerate(digits):
        side = int(rng.choice([28, 40, 56, 84]))
        big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)) / 255.0
        height, width = side + int(rng.integers(side // 4, side + 1)), side + int(rng.integers(side // 4, side + 1))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        ink = np.zeros((height, width))
        ink[top:top + side, left:left + side] = big
        light_on_dark = rng.random() < 0.3
        page = 20 + 190 * ink if light_on_dark else 235 - 190 * ink
        page = page + rng.normal(0, 4, ink.shape)
        try:
            out[n] = to_mnist(np.clip(page, 0, 255).astype(np.float32))
        except InputError:
            out[n] = digit
    return out


def reshaped(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Digits rotated, sheared, stretched, thickened or thinned, a third elastically distorted, then
    made MNIST-style again: digits as other hands write them."""
    from scipy import ndimage

    from mnist_keras.data import pen
    from mnist_keras.data.preprocess import to_mnist

    out = np.array(digits, copy=True)
    for n, digit in enumerate(digits):
        angle, shear = rng.uniform(-0.35, 0.35), rng.uniform(-0.3, 0.3)
        sx, sy = rng.uniform(0.75, 1.25, 2)
        matrix = np.array([[np.cos(angle) * sy, -np.sin(angle) + shear], [np.sin(angle), np.cos(angle) * sx]])
        big = np.pad(digit.astype(np.float32), 14)
        centre = np.array(big.shape) / 2
        image = ndimage.affine_transform(big, matrix, offset=centre - matrix @ centre, order=1)
        stroke = rng.random()
        if stroke < 0.25:
            image = ndimage.grey_dilation(image, size=(2, 2))
        elif stroke < 0.4:
            image = ndimage.grey_erosion(image, size=(2, 2))
        if rng.random() < 0.33:
            image = 255 * pen.elastic(image / 255.0, rng, alpha=float(rng.uniform(2, 4)), sigma=4.0)
        with contextlib.suppress(InputError):  # thinned away: the digit as it was
            out[n] = to_mnist(image)
    return out


def training_digits(count: int, source: tuple[np.ndarray, np.ndarray], salt: int = 0) -> Written:
    """`count` digits of the train splits, in TRAINING_SHARES, shuffled: what training adds to MNIST."""
    counts = {kind: round(count * share) for kind, share in TRAINING_SHARES.items()}
    counts["reshaped"] += count - sum(counts.values())  # exactly count in all
    parts = [make(kind, "train", n, source if kind == "reshaped" else None, salt) for kind, n in counts.items()]
    order = np.random.default_rng(seed("mixed", "train", salt)).permutation(sum(len(p.images) for p in parts))
    return Written("mixed", "train", *(np.concatenate([getattr(p, f) for p in parts])[order]
                                       for f in ("images", "labels", "styles")))


def cached_training_digits(count: int, source: tuple[np.ndarray, np.ndarray], salt: int = 0) -> Written:
    """training_digits, made once and kept in the cache folder."""
    def build() -> dict[str, np.ndarray]:
        made = training_digits(count, source, salt)
        return {"images": made.images, "labels": made.labels, "styles": made.styles.astype(str)}

    arrays = picture_cache.cached(("training digits", count, salt, source), build)
    return Written("mixed", "train", arrays["images"], arrays["labels"], arrays["styles"])
