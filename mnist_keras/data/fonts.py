"""The machine's fonts, split by family: digits typed in them teach and measure reading, their
letters are non-digits (negatives.py).

A family is held out whole (all its weights and slants), so a held-out font is one whose
style the network and the no-digit head never saw. Handwriting-style families (Debian's
fonts-comic-neue, fonts-bwht, fonts-dkg-handwriting, ...) and print families are split
separately, so each split has both. `scripts/debian-packages.txt` lists the font packages CI
installs; a machine with fewer fonts uses what it has and says so.
"""

from __future__ import annotations

import functools
import glob
import hashlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_keras.errors import InputError

FONT_GLOBS = ("/usr/share/fonts/**/*.ttf", "/usr/share/fonts/**/*.otf")
# Families whose glyphs are not letters and digits (dingbats, symbols, decorative initials).
NOT_TEXT = ("D050000L", "Standard Symbols PS", "Linux Biolinum Keyboard O", "Linux Libertine Initials O")
# Font folders (Debian packages) of handwriting-style families.
HANDWRITING = ("bwht", "breip", "comic-neue", "dancingscript", "fifthhorseman", "ecolier-court", "humor-sans",
               "kaushanscript", "kristi", "leckerli-one", "lobster", "rufscript", "levien", "femkeklaver")
DIGITS = "0123456789"


class Font(NamedTuple):
    """One font file: its family (the unit held out) and whether it imitates handwriting."""

    path: str
    family: str
    handwriting: bool


@functools.cache
def fonts() -> tuple[Font, ...]:
    """The machine's usable text fonts, sorted by path."""
    found = sorted({path for pattern in FONT_GLOBS for path in glob.glob(pattern, recursive=True)})
    usable = []
    for path in found:
        try:
            family = ImageFont.truetype(path, 20).getname()[0] or Path(path).stem
        except OSError:
            continue
        if family not in NOT_TEXT:
            usable.append(Font(path, family, Path(path).parent.name in HANDWRITING))
    return tuple(usable)


def family_split(family: str, families: list[str]) -> str:
    """Every 5th family (from the 3rd) is held out, every 5th from the 5th is validation, the rest train."""
    position = sorted(families).index(family) % 5
    return {2: "heldout", 4: "validation"}.get(position, "train")


def font_split(split: str, minimum: int = 5) -> list[str]:
    """The font files of a split, print and handwriting families each split the same way."""
    every = fonts()
    if len({font.family for font in every}) < minimum:
        raise InputError(f"found {len(every)} fonts under /usr/share/fonts; rendered glyphs need at least "
                         f"{minimum} families (scripts/debian-packages.txt lists the font packages)")
    taken = []
    for handwriting in (False, True):
        families = sorted({font.family for font in every if font.handwriting == handwriting})
        taken += [font.path for font in every if font.handwriting == handwriting
                  and family_split(font.family, families) == split]
    return taken


@functools.cache
def has_digits(path: str) -> bool:
    """The font draws each digit as its own glyph (not a missing-glyph box, not blank)."""
    font = ImageFont.truetype(path, 32)
    missing = glyph_mask(font, "\uffff")
    masks = [glyph_mask(font, digit) for digit in DIGITS]
    return all(mask.any() and not np.array_equal(mask, missing) for mask in masks) and \
        len({hashlib.sha1(mask.tobytes()).digest() for mask in masks}) == len(DIGITS)


def glyph_mask(font: ImageFont.FreeTypeFont, glyph: str) -> np.ndarray:
    canvas = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(canvas).text((32, 32), glyph, fill=255, font=font, anchor="mm")
    return np.asarray(canvas) > 127


def digit_fonts(split: str) -> list[str]:
    """The split's fonts that draw all ten digits."""
    return [path for path in font_split(split) if has_digits(path)]


def glyph_ink(path: str, glyph: str, rng: np.random.Generator, page: int = 64, tilt: float = 12) -> np.ndarray:
    """One glyph as ink in [0, 1] on a page, at a random size, slant and place."""
    font = ImageFont.truetype(path, int(rng.integers(20, 48)))
    canvas = Image.new("L", (page * 2, page * 2), 0)
    ImageDraw.Draw(canvas).text((page, page), glyph, fill=255, font=font, anchor="mm")
    canvas = canvas.rotate(float(rng.uniform(-tilt, tilt)), resample=Image.Resampling.BILINEAR)
    shift = rng.integers(-8, 9, 2)
    box = (page // 2 + shift[0], page // 2 + shift[1], page // 2 + shift[0] + page, page // 2 + shift[1] + page)
    return np.asarray(canvas.crop(box), np.float64) / 255.0
