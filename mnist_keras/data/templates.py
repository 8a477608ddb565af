"""Stroke templates: the common ways people in different countries write each digit, and shapes
and letters drawn with the same pen, for pen.render to draw in many hands.

A digit is learned from its styles (1 with flag and base, crossed 7, open 4, ...), not from one
drawing of each: every style has at least two templates drawn differently, and the last of each
(by name) is held out, so the held-out split measures a new drawing of a known style. Shapes and
letters (drawn_shapes.py) are split the same way, and some whole kinds of shape are held out.
Coordinates: the unit square, x to the right and y down; digits about x 0.25..0.75, y 0.1..0.9.
"""

from __future__ import annotations

import string
from typing import NamedTuple

import numpy as np

from mnist_keras.data import drawn_shapes
from mnist_keras.data.pen import arc, curve, path
from mnist_keras.errors import InputError

SPLITS = ("train", "validation", "heldout")
HELDOUT_ONLY_KINDS = {"cloud", "flower", "musical note"}  # shapes only measured, never fitted on
DIGIT_LIKE_LETTERS = set("OIlSZBGqgbDQTosz")  # letters that are digit shapes in some hands


class Template(NamedTuple):
    """One drawing of a glyph: its label (a digit, a shape's kind or a letter), style and strokes."""

    label: int | str
    style: str
    name: str
    strokes: list[np.ndarray]


def _styles(label: int | str, table: dict[str, list[list]]) -> list[Template]:
    """Templates named after their style and their place in it: "1-flag-a", "1-flag-b", ..."""
    return [Template(label, style, f"{style}-{string.ascii_lowercase[n]}", [np.asarray(s, float) for s in strokes])
            for style, drawings in table.items() for n, strokes in enumerate(drawings)]


DIGITS: dict[int, list[Template]] = {
    0: _styles(0, {
        "0-oval": [[arc((0.5, 0.5), (0.22, 0.38), -90, 270, 48)],
                   [curve([(0.52, 0.1), (0.3, 0.28), (0.27, 0.6), (0.45, 0.9), (0.7, 0.72), (0.72, 0.35)],
                          closed=True)],
                   [curve([(0.56, 0.1), (0.72, 0.32), (0.64, 0.74), (0.44, 0.9), (0.28, 0.7), (0.36, 0.26)],
                          closed=True)]],
        "0-narrow": [[arc((0.5, 0.5), (0.12, 0.4), -90, 270, 48)],
                     [curve([(0.55, 0.1), (0.4, 0.3), (0.42, 0.85), (0.58, 0.7), (0.62, 0.3)], closed=True)]],
        "0-open": [[curve([(0.6, 0.14), (0.46, 0.1), (0.3, 0.3), (0.29, 0.66), (0.47, 0.9), (0.67, 0.76),
                           (0.71, 0.4), (0.6, 0.14), (0.44, 0.2)])],
                   [curve([(0.46, 0.11), (0.3, 0.3), (0.3, 0.7), (0.5, 0.9), (0.7, 0.7), (0.7, 0.3), (0.56, 0.1)])]],
        "0-slash": [[arc((0.5, 0.5), (0.2, 0.38), -90, 270, 48), path((0.68, 0.2), (0.32, 0.8))],
                    [arc((0.5, 0.5), (0.15, 0.38), -90, 270, 48), path((0.6, 0.14), (0.4, 0.86))]],
    }),
    1: _styles(1, {
        "1-plain": [[path((0.53, 0.1), (0.47, 0.9))], [curve([(0.56, 0.1), (0.5, 0.5), (0.47, 0.9)])],
                    [path((0.5, 0.08), (0.5, 0.92))]],
        "1-flag": [[path((0.44, 0.28), (0.57, 0.1), (0.52, 0.9))], [path((0.42, 0.32), (0.58, 0.1), (0.55, 0.9))],
                   [path(curve([(0.42, 0.3), (0.5, 0.2), (0.56, 0.1)]), (0.56, 0.9))]],
        "1-flag-base": [[path((0.37, 0.26), (0.53, 0.1), (0.53, 0.9)), path((0.34, 0.9), (0.72, 0.9))],
                        [path(curve([(0.4, 0.32), (0.5, 0.2), (0.56, 0.1)]), (0.52, 0.88)),
                         path((0.4, 0.89), (0.66, 0.87))]],
    }),
    2: _styles(2, {
        "2-plain": [[path(curve([(0.28, 0.28), (0.48, 0.1), (0.7, 0.26), (0.62, 0.52), (0.3, 0.88)]), (0.74, 0.88))],
                    [path(curve([(0.3, 0.22), (0.5, 0.1), (0.68, 0.22), (0.66, 0.44), (0.45, 0.68), (0.28, 0.9)]),
                          (0.72, 0.9))],
                    [path(curve([(0.3, 0.26), (0.46, 0.12), (0.66, 0.2), (0.64, 0.42), (0.3, 0.86)]),
                          curve([(0.3, 0.86), (0.5, 0.82), (0.74, 0.9)]))]],
        "2-loop": [[path(curve([(0.28, 0.26), (0.48, 0.1), (0.7, 0.26), (0.6, 0.5), (0.38, 0.84)]),
                         arc((0.32, 0.8), (0.08, 0.07), 45, 370), curve([(0.4, 0.82), (0.42, 0.9), (0.5, 0.9)]),
                         (0.74, 0.9))],
                   [path(curve([(0.3, 0.22), (0.52, 0.1), (0.68, 0.28), (0.56, 0.56), (0.36, 0.86)]),
                         arc((0.3, 0.82), (0.09, 0.06), 40, 365), curve([(0.39, 0.83), (0.44, 0.9), (0.56, 0.88)]),
                         (0.72, 0.9))]],
        "2-angular": [[path(curve([(0.28, 0.25), (0.46, 0.1), (0.66, 0.18), (0.7, 0.32)]), (0.28, 0.9), (0.74, 0.9))],
                      [path(curve([(0.3, 0.18), (0.5, 0.1), (0.7, 0.16)]), (0.32, 0.88), (0.72, 0.86))]],
    }),
    3: _styles(3, {
        "3-round": [[path(curve([(0.3, 0.2), (0.5, 0.1), (0.68, 0.22), (0.62, 0.42), (0.45, 0.48)]),
                          curve([(0.45, 0.48), (0.66, 0.56), (0.7, 0.74), (0.5, 0.9), (0.28, 0.8)]))],
                    [path(curve([(0.32, 0.16), (0.5, 0.1), (0.64, 0.2), (0.6, 0.32), (0.45, 0.38)]),
                          curve([(0.45, 0.38), (0.68, 0.5), (0.72, 0.72), (0.52, 0.9), (0.3, 0.86), (0.26, 0.76)]))],
                    [path(curve([(0.28, 0.22), (0.48, 0.1), (0.7, 0.24), (0.62, 0.46), (0.4, 0.5)]),
                          curve([(0.4, 0.5), (0.64, 0.58), (0.68, 0.78), (0.48, 0.9), (0.3, 0.84)]))]],
        "3-flat": [[path((0.3, 0.12), (0.7, 0.12), (0.46, 0.42),
                         curve([(0.46, 0.42), (0.66, 0.5), (0.72, 0.7), (0.52, 0.9), (0.28, 0.82)]))],
                   [path((0.32, 0.14), (0.68, 0.1), (0.5, 0.36),
                         curve([(0.5, 0.36), (0.7, 0.52), (0.66, 0.78), (0.46, 0.9), (0.3, 0.84)]))]],
    }),
    4: _styles(4, {
        "4-open": [[path((0.44, 0.1), (0.28, 0.62), (0.74, 0.62)), path((0.62, 0.12), (0.62, 0.9))],
                   [path((0.4, 0.1), (0.3, 0.7), (0.76, 0.68)), path((0.64, 0.3), (0.62, 0.9))],
                   [path((0.36, 0.12), (0.26, 0.58), (0.78, 0.58)), path((0.6, 0.2), (0.58, 0.9))]],
        "4-closed": [[path((0.62, 0.1), (0.27, 0.64), (0.74, 0.64)), path((0.62, 0.1), (0.62, 0.9))],
                     [path((0.76, 0.6), (0.3, 0.6), (0.6, 0.12), (0.6, 0.9))]],
        "4-upright": [[path((0.3, 0.12), (0.3, 0.56), (0.74, 0.56)), path((0.64, 0.12), (0.64, 0.9))],
                      [path((0.32, 0.1), (0.3, 0.48), (0.7, 0.48)), path((0.6, 0.3), (0.6, 0.9))]],
    }),
    5: _styles(5, {
        "5-hat": [[path((0.33, 0.12), curve([(0.3, 0.46), (0.52, 0.4), (0.7, 0.56), (0.66, 0.8), (0.46, 0.9),
                                              (0.28, 0.82)])), path((0.33, 0.12), (0.7, 0.12))],
                  [path((0.36, 0.1), curve([(0.3, 0.4), (0.56, 0.38), (0.72, 0.6), (0.6, 0.86), (0.36, 0.88)])),
                   path((0.38, 0.12), (0.72, 0.1))],
                  [path((0.34, 0.14), curve([(0.28, 0.48), (0.46, 0.42), (0.66, 0.52), (0.7, 0.72), (0.56, 0.88),
                                             (0.3, 0.86)])), path((0.34, 0.14), (0.68, 0.16))]],
        "5-one": [[path((0.7, 0.12), (0.33, 0.12), curve([(0.3, 0.46), (0.52, 0.4), (0.7, 0.56), (0.66, 0.8),
                                                          (0.46, 0.9), (0.28, 0.82)]))],
                  [path((0.68, 0.1), (0.36, 0.14), curve([(0.34, 0.42), (0.6, 0.44), (0.68, 0.66), (0.56, 0.86),
                                                           (0.3, 0.86)]))]],
    }),
    6: _styles(6, {
        "6-curved": [[curve([(0.66, 0.14), (0.45, 0.2), (0.32, 0.45), (0.32, 0.72), (0.46, 0.9), (0.64, 0.82),
                             (0.66, 0.64), (0.5, 0.55), (0.34, 0.64)])],
                     [curve([(0.62, 0.1), (0.4, 0.3), (0.3, 0.6), (0.4, 0.86), (0.6, 0.86), (0.68, 0.7), (0.56, 0.58),
                             (0.4, 0.6), (0.32, 0.7)])],
                     [curve([(0.68, 0.12), (0.5, 0.16), (0.34, 0.36), (0.28, 0.64), (0.42, 0.88), (0.64, 0.86),
                             (0.7, 0.68), (0.56, 0.52), (0.4, 0.54), (0.3, 0.64)])]],
        "6-straight": [[path((0.68, 0.1), curve([(0.33, 0.66), (0.42, 0.9), (0.64, 0.84), (0.66, 0.62), (0.48, 0.54),
                                                 (0.34, 0.64)]))],
                       [path((0.64, 0.1), curve([(0.36, 0.6), (0.36, 0.84), (0.54, 0.9), (0.68, 0.74), (0.56, 0.58),
                                                 (0.38, 0.64)]))]],
    }),
    7: _styles(7, {
        "7-plain": [[path((0.28, 0.14), (0.72, 0.14), (0.42, 0.9))], [path((0.3, 0.12), (0.7, 0.1), (0.5, 0.9))],
                    [path((0.26, 0.18), (0.72, 0.12), (0.38, 0.9))]],
        "7-crossed": [[path((0.28, 0.14), (0.72, 0.14), (0.44, 0.9)), path((0.38, 0.52), (0.7, 0.52))],
                      [path((0.3, 0.12), (0.72, 0.12), (0.5, 0.9)), path((0.44, 0.46), (0.74, 0.46))],
                      [path((0.28, 0.12), (0.74, 0.14), (0.46, 0.9)), path((0.44, 0.5), (0.66, 0.5))]],
        "7-hook": [[path((0.28, 0.14), curve([(0.72, 0.14), (0.58, 0.4), (0.5, 0.65), (0.48, 0.9)]))],
                   [path((0.28, 0.22), (0.3, 0.12), curve([(0.72, 0.12), (0.62, 0.3), (0.52, 0.55), (0.44, 0.9)]))]],
    }),
    8: _styles(8, {
        "8-loops": [[arc((0.5, 0.29), (0.16, 0.19), 90, 450), arc((0.5, 0.69), (0.2, 0.21), -90, 270)],
                    [arc((0.52, 0.3), (0.14, 0.2), 90, -270), arc((0.49, 0.7), (0.18, 0.2), -90, 270)],
                    [arc((0.48, 0.27), (0.14, 0.16), 90, 450), arc((0.5, 0.66), (0.22, 0.24), -90, 270)]],
        "8-eight": [[curve([(0.66, 0.2), (0.5, 0.1), (0.34, 0.24), (0.5, 0.48), (0.68, 0.7), (0.5, 0.9), (0.32, 0.7),
                            (0.5, 0.48), (0.66, 0.28), (0.62, 0.16)])],
                    [curve([(0.5, 0.1), (0.3, 0.26), (0.5, 0.5), (0.7, 0.72), (0.5, 0.9), (0.3, 0.72), (0.5, 0.5),
                            (0.68, 0.26), (0.5, 0.1)])]],
    }),
    9: _styles(9, {
        "9-curved": [[path(arc((0.5, 0.32), (0.18, 0.2), 0, -360),
                           curve([(0.68, 0.32), (0.66, 0.6), (0.56, 0.85), (0.4, 0.9)]))],
                     [path(arc((0.48, 0.3), (0.2, 0.18), 10, -350), curve([(0.68, 0.33), (0.6, 0.62), (0.5, 0.9)]))],
                     [path(arc((0.5, 0.3), (0.2, 0.2), 20, -340), curve([(0.69, 0.37), (0.64, 0.66), (0.52, 0.9)]))]],
        "9-straight": [[path(arc((0.5, 0.32), (0.18, 0.2), 0, -360), (0.68, 0.9))],
                       [path(arc((0.48, 0.28), (0.2, 0.17), 0, -360), (0.6, 0.9))],
                       [path(arc((0.46, 0.28), (0.16, 0.18), 0, -360), (0.62, 0.9))]],
        "9-g": [[path(arc((0.5, 0.3), (0.18, 0.19), 0, -360),
                      curve([(0.68, 0.3), (0.68, 0.75), (0.56, 0.9), (0.38, 0.86)]))],
                [path(arc((0.48, 0.3), (0.18, 0.17), 0, -360),
                      curve([(0.66, 0.3), (0.64, 0.78), (0.48, 0.9), (0.32, 0.8)]))]],
    }),
}


SHAPES: dict[str, list[Template]] = {kind: _styles(kind, {kind: d}) for kind, d in drawn_shapes.SHAPES.items()}
LETTERS: dict[str, list[Template]] = {c: _styles(c, {f"letter-{c}": d}) for c, d in drawn_shapes.LETTERS.items()}


def _split_table() -> dict[str, str]:
    """Every template's split: the last of each style with two or more is held out; whole kinds too."""
    table = {}
    groups: dict[str, list[Template]] = {}
    for template in [t for family in (DIGITS, SHAPES, LETTERS) for ts in family.values() for t in ts]:
        groups.setdefault(template.style, []).append(template)
    for style, group in groups.items():
        names = sorted(t.name for t in group)
        for name in names:
            held = style in HELDOUT_ONLY_KINDS or (len(names) >= 2 and name == names[-1])
            table[name] = "heldout" if held else "train"
    return table


_SPLIT = _split_table()


def split_of(template: Template) -> str:
    """The split whose pictures the template draws: "train" (validation draws these too) or "heldout"."""
    return _SPLIT[template.name]


def _chosen(family: dict, split: str, keep=lambda t: True) -> list[Template]:
    """The family's templates that draw the split (validation: other samples of the train templates)."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    wanted = "heldout" if split == "heldout" else "train"
    return [t for ts in family.values() for t in ts if split_of(t) == wanted and keep(t)]


def digit_templates(split: str) -> list[Template]:
    """The digit templates the split draws."""
    return _chosen(DIGITS, split)


def shape_templates(split: str) -> list[Template]:
    """The shape templates the split draws (the held-out-only kinds only in "heldout")."""
    return _chosen(SHAPES, split)


def letter_templates(split: str, digit_like: bool = False) -> list[Template]:
    """The letter templates the split draws: the non-digit letters, or with digit_like only those
    that are digit shapes in some hands (measured apart, never used as non-digits)."""
    return _chosen(LETTERS, split, lambda t: (t.label in DIGIT_LIKE_LETTERS) == digit_like)
