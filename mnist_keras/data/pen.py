"""Strokes drawn with a round pen, as people draw on the drawing pages and on paper.

The drawing pages give a 280x280 canvas and a round pen 20 pixels wide; photographs give any pen
on any paper. Digits, shapes and letters are kept as a few strokes in a unit square (templates.py)
and drawn here with the hand's variety: jitter, slant, aspect, stroke width, size, place, elastic
wobble, then paper, ink, blur, lighting and sensor noise. Pure numpy, scipy and Pillow: fast
enough to draw tens of thousands of pictures (under 1 ms a 64x64 page, the drawing itself 0.1 ms).

Coordinates are (x, y) in the unit square, x to the right and y DOWN, as on a page.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

SUPERSAMPLE = 4  # drawn 4x larger, then averaged down: anti-aliased edges
# Stroke width relative to the glyph's box, by style: the drawing pages' pen on digits of any size,
# a felt marker, a fine pen.
STYLES = {"pen": (0.05, 0.16), "marker": (0.12, 0.22), "fine": (0.03, 0.06)}


def curve(points, samples: int = 12, closed: bool = False) -> np.ndarray:
    """A smooth polyline through the control points (centripetal Catmull-Rom: no cusps nor loops)."""
    p = np.asarray(points, float)
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    p0, p1, p2, p3 = (ext[i:len(ext) - 3 + i, None] for i in range(4))
    t1 = np.linalg.norm(p1 - p0, axis=-1, keepdims=True) ** 0.5 + 1e-6
    t2 = t1 + np.linalg.norm(p2 - p1, axis=-1, keepdims=True) ** 0.5 + 1e-6
    t3 = t2 + np.linalg.norm(p3 - p2, axis=-1, keepdims=True) ** 0.5 + 1e-6
    t = t1 + (t2 - t1) * np.linspace(0, 1, samples, endpoint=False)[None, :, None]
    a1 = ((t1 - t) * p0 + t * p1) / t1
    a2 = ((t2 - t) * p1 + (t - t1) * p2) / (t2 - t1)
    a3 = ((t3 - t) * p2 + (t - t2) * p3) / (t3 - t2)
    b1 = ((t2 - t) * a1 + t * a2) / t2
    b2 = ((t3 - t) * a2 + (t - t1) * a3) / (t3 - t1)
    out = (((t2 - t) * b1 + (t - t1) * b2) / (t2 - t1)).reshape(-1, 2)
    return np.concatenate([out, p[:1] if closed else p[-1:]])


def arc(centre: tuple[float, float], radii: tuple[float, float], start_deg: float, end_deg: float,
        samples: int = 32) -> np.ndarray:
    """An ellipse arc for round parts (loops of 6, 8, 9, 0); 0 degrees is right, 90 is down."""
    angle = np.radians(np.linspace(start_deg, end_deg, samples))
    return np.stack([centre[0] + radii[0] * np.cos(angle), centre[1] + radii[1] * np.sin(angle)], axis=1)


def path(*pieces) -> np.ndarray:
    """One stroke drawn without lifting the pen, from pieces: curves, arcs and single (x, y) corners."""
    return np.concatenate([np.atleast_2d(np.asarray(piece, float)) for piece in pieces])


def draw(strokes, width: float, size: int = 64, rng: np.random.Generator | None = None) -> np.ndarray:
    """Ink in [0, 1] of the strokes drawn with a round pen `width` wide (unit-square units),
    anti-aliased; with an rng each stroke's width varies a little, as pressure does."""
    big = size * SUPERSAMPLE
    image = Image.new("L", (big, big))
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        scale = 1.0 if rng is None else float(rng.uniform(0.9, 1.1))
        radius = max(width * big * scale / 2, 0.5)
        points = [tuple(p) for p in (np.asarray(stroke, float) * big).tolist()]
        if len(points) > 1:
            pen.line(points, fill=255, width=max(round(2 * radius), 1))
        for x, y in points:
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(image.reduce(SUPERSAMPLE), np.float32) / 255.0


def _wobble(strokes: list[np.ndarray], rng: np.random.Generator, amount: float) -> list[np.ndarray]:
    """The strokes moved by a smooth random field: a hand's small unevenness that keeps joins joined."""
    freq = rng.uniform(0.5, 1.8, (3, 2, 2)) * rng.choice([-1, 1], (3, 2, 2))
    phase = rng.uniform(0, 2 * np.pi, (3, 2))
    size = rng.uniform(0.004, 0.012, (3, 2)) * amount
    return [s + sum(size[k] * np.sin(2 * np.pi * s @ freq[k] + phase[k]) for k in range(3)) for s in strokes]


def _fit(strokes: list[np.ndarray], margin: float = 0.1) -> list[np.ndarray]:
    """The strokes scaled (aspect kept) and centred to fill the unit square less a margin."""
    points = np.concatenate(strokes)
    lo, hi = points.min(axis=0), points.max(axis=0)
    scale = (1 - 2 * margin) / max(float((hi - lo).max()), 1e-6)
    offset = 0.5 - (lo + hi) / 2 * scale
    return [s * scale + offset for s in strokes]


def distort(strokes, rng: np.random.Generator, amount: float = 1.0) -> list[np.ndarray]:
    """The glyph as another hand draws it: wobbled, rotated, sheared, stretched, refitted to the square."""
    strokes = _wobble([np.asarray(s, float) for s in strokes], rng, amount)
    angle = np.radians(rng.uniform(-15, 15) * amount)
    # Rotation and shear both slant the glyph; hands rarely lean forward past 25 degrees or back past 15
    # (a 1 with a flag leaning further reads as a 7 or a V), so the shear gives way where the two add up.
    forward, back = np.radians(25) * amount, np.radians(15) * amount
    shear = np.tan(np.clip(np.arctan(rng.uniform(-0.3, 0.3) * amount) - angle, -forward, back) + angle)
    aspect = np.exp(rng.uniform(np.log(0.75), np.log(1.3)) * amount)
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = rotate @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([aspect, 1.0])
    centre = np.concatenate(strokes).mean(axis=0)
    return _fit([(s - centre) @ matrix.T for s in strokes])


def elastic(image: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """The image bent by a smooth random field (Simard et al. 2003): the wobble of a real hand.
    alpha: the largest displacement, in pixels; sigma: the field's smoothness, in pixels."""
    field = ndimage.gaussian_filter(rng.uniform(-1, 1, (2, *image.shape)), (0, sigma, sigma), mode="constant",
                                    truncate=3)
    field *= alpha / max(float(np.abs(field).max()), 1e-9)
    return ndimage.map_coordinates(image, np.indices(image.shape) + field, order=1, mode="nearest")


def _lighting(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A soft linear fall-off of light across the page, in a random direction, as in photographs."""
    direction = rng.normal(size=2)
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    ramp = (rows * direction[0] + cols * direction[1]).astype(float)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-9)
    return 1 - rng.uniform(0.05, 0.25) * ramp


def page(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink in [0, 1] as a photographed page: dark ink on light paper (or 30% light on dark), some
    blur, sometimes uneven light, sensor noise."""
    paper, pen = float(rng.uniform(190, 250)), float(rng.uniform(0, 90))
    if rng.random() < 0.3:
        paper, pen = pen, paper
    if rng.random() < 0.5:
        ink = ndimage.gaussian_filter(ink, rng.uniform(0, 1.2) * ink.shape[0] / 64)
    image = paper + (pen - paper) * ink
    if rng.random() < 0.2:
        image = image * _lighting(ink.shape, rng)
    image = image + rng.normal(0, rng.uniform(0, 4), ink.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def render(strokes, rng: np.random.Generator, size: int = 64, style: str = "pen") -> np.ndarray:
    """One glyph as a user's canvas or photo: distorted, any stroke width, size and place on the
    page, sometimes bent elastically; a uint8 page [size, size]."""
    glyph = distort(strokes, rng)
    points = np.concatenate(glyph)
    lo, extent = points.min(axis=0), np.ptp(points, axis=0)
    low, high = STYLES[style]
    width = float(np.exp(rng.uniform(np.log(low), np.log(high)))) * float(extent.max())
    box = extent + width
    scale = rng.uniform(0.45, 0.9) / float(box.max())
    corner = rng.uniform(0, 1 - box * scale)
    ink = draw([(s - lo + width / 2) * scale + corner for s in glyph], width * scale, size, rng)
    if rng.random() < 0.5:
        ink = elastic(ink, rng, alpha=rng.uniform(1, 2.5) * size / 64, sigma=rng.uniform(4, 6) * size / 64)
    return page(ink, rng)
