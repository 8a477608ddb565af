"""Turns any picture of one digit into a 28x28 MNIST-style image (numpy and Pillow only).

MNIST was made like this: the digit, light on dark, cropped to its ink, scaled so its
longer side is 20 pixels (aspect kept, anti-aliased), placed in a 28x28 frame with its
centre of mass at the centre. The network only ever saw digits made that way, so a photo
resized naively to 28x28 is mostly misread; made the same way, it is read as MNIST is
(docs/predict.md). Before the ink is found, shading across the page is taken out.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_keras.errors import InputError, NoInk

SIZE = 28  # the frame
BOX = 20  # the digit's longer side inside it
MAX_PIXELS = 40_000_000  # larger is refused: a 40-megapixel photo is plenty for one digit
MAX_FILE_BYTES = 20_000_000  # larger files are refused unread (a photo of a digit is far less)
MIN_SIDE = 8  # an image smaller than this both ways cannot hold a digit (sklearn's digits are 8x8)
WORK_SIZE = 1024  # larger images are shrunk to this first: ample for a 20-pixel digit
MIN_CONTRAST = 40  # grey levels between paper and ink below which there is no digit
INK = 0.25  # share of the ink's full strength that counts as ink when cropping
SPECK = 0.1  # ink blobs with less than this share of the largest blob's ink are noise


def load_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decodes a file (path or bytes) to grayscale float [H, W] in [0, 255], with no alpha.

    Errors name the file and say what is wrong: not an image, empty, truncated, zero-size,
    or so large it could be a decompression bomb.
    """
    name = name or str(source)
    data = read_file(source, name) if isinstance(source, (str, Path)) else source
    if not data:
        raise InputError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 megapixels and refuses from 179 (its process-wide limit,
            # left as it is); this module's own, smaller limit is checked per image below.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise InputError(f"{name}: {width}x{height} pixels is over the "
                             f"{MAX_PIXELS // 1_000_000}-megapixel limit")
        image.draft(image.mode, (WORK_SIZE, WORK_SIZE))  # JPEG: decode at a reduced scale
        image.load()
        image = ImageOps.exif_transpose(image)  # phone photos are often stored rotated
    except InputError:  # the megapixel limit above (an InputError is a ValueError too)
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{name}: too many pixels: refused as a possible decompression bomb") from None
    except UnidentifiedImageError:
        size = _declared_size(data)
        if size and 0 in size:
            raise InputError(f"{name}: the image has no pixels ({size[0]}x{size[1]})") from None
        raise InputError(f"{name}: not an image file (PNG, JPEG, BMP, GIF, ...)") from None
    except (OSError, ValueError, SyntaxError) as e:  # Pillow's words for damaged data
        raise InputError(f"{name}: damaged image: {e}") from None
    if image.width == 0 or image.height == 0:
        raise InputError(f"{name}: the image has no pixels ({image.width}x{image.height})")
    if max(image.size) < MIN_SIDE:
        raise InputError(f"{name}: {image.width}x{image.height} pixels is too small to hold a digit "
                         f"(at least {MIN_SIDE} pixels one way)")
    image = _eight_bit(image)
    if "transparency" in image.info:  # palette, grayscale or RGB with a tRNS chunk
        image = image.convert("RGBA")
    if max(image.size) > WORK_SIZE:
        image.thumbnail((WORK_SIZE, WORK_SIZE), Image.Resampling.BOX)  # keeps thin strokes' ink
    return _flatten_alpha(image)


def read_file(path: str | Path, name: str | None = None) -> bytes:
    """A regular file's bytes, at most MAX_FILE_BYTES: a device, a FIFO or a huge file is
    refused without being read (or opened: opening a FIFO waits for a writer)."""
    name = name or str(path)
    try:
        info = os.stat(path)
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{name}: is a folder, not an image")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{name}: not a regular file (a device, pipe or socket), not an image")
    limit = f"over the {MAX_FILE_BYTES}-byte limit for an image"
    if info.st_size > MAX_FILE_BYTES:
        raise InputError(f"{name}: {info.st_size} bytes is {limit}")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{name}: {limit}")
    return data


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and float grayscale to 8 bits by their range (convert("L") would clip them)."""
    if image.mode not in ("I", "I;16", "I;16B", "I;16L", "F"):
        return image
    values = np.asarray(image, dtype=np.float64)
    full = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 1.0)
    return Image.fromarray(np.clip(values / full * 255.0, 0, 255).astype(np.uint8), "L")


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF or BMP header, which Pillow will not open at 0x0."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return width, abs(height)
    return None


def _flatten_alpha(image: Image.Image) -> np.ndarray:
    """Grayscale with transparency resolved against a background that contrasts with the ink.

    A digit drawn on a transparent canvas can be dark ink or light ink; laying it on white
    would erase light ink, so the background is whichever the ink is not.
    """
    if image.mode in ("PA", "LA", "RGBA", "RGBa", "La"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        gray = np.asarray(Image.fromarray(rgba[..., :3].astype(np.uint8)).convert("L"), np.float32)
        alpha = rgba[..., 3] / 255.0
        if alpha.min() < 1.0:
            weight = alpha.sum()
            ink = (gray * alpha).sum() / weight if weight else 0.0
            background = 255.0 if ink < 128 else 0.0
            return gray * alpha + background * (1.0 - alpha)
        return gray
    return np.asarray(image.convert("L"), dtype=np.float32)


def to_mnist(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """Grayscale [H, W] in [0, 255] -> uint8 [28, 28]: white digit on black, MNIST-style."""
    from scipy import ndimage

    ink = _without_shading(_light_on_dark(gray))
    background = float(np.median(ink))
    # The strongest ink: the 5th brightest pixel, so a few hot pixels are not it. (A
    # percentile would miss a small digit on a large page, well under 0.1% of a photo.)
    # An image of fewer than 5 pixels has no 5th brightest: its least bright pixel, then.
    rank = min(5, ink.size)
    strongest = float(np.partition(ink.ravel(), -rank)[-rank])
    if strongest - background < MIN_CONTRAST:
        raise NoInk(f"{name}: no digit found (the image is blank or has almost no contrast)")
    ink = np.clip((ink - background) / (strongest - background), 0.0, 1.0)
    mask = _digit_mask(ink > INK, ink)
    ink = np.where(ndimage.binary_dilation(mask, iterations=2), ink, 0.0)  # keep soft edges
    rows, cols = np.nonzero(mask)
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]

    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    digit = np.asarray(Image.fromarray(ink.astype(np.float32), mode="F")
                       .resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
    digit = np.clip(digit, 0.0, 1.0)
    return _centre_by_mass(digit)


def _digit_mask(mask: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The ink that belongs to the digit: without specks of dust, or a frame or desk edge
    running along the border of the picture (when something else is left)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    index = np.arange(1, count + 1)
    mass = ndimage.sum(ink, labels, index)
    boxes = ndimage.find_objects(labels)
    height, width = mask.shape
    edge = np.array([box[0].start == 0 or box[1].start == 0 or box[0].stop == height
                     or box[1].stop == width for box in boxes])
    spans = np.array([(box[0].stop - box[0].start) > 0.9 * height
                      or (box[1].stop - box[1].start) > 0.9 * width for box in boxes])
    frame = edge & spans
    if frame.all():
        frame[:] = False
    keep = ~frame & (mass >= SPECK * mass[~frame].max())
    return np.isin(labels, index[keep])


def _light_on_dark(gray: np.ndarray) -> np.ndarray:
    """Inverts dark-on-light images. The paper is most of the picture, the ink a small
    part (maybe far under 1%), so the median is the paper: nearer the bright end, the
    ink is dark. The extremes are taken 3x3-averaged, so one odd pixel does not decide."""
    from scipy import ndimage

    smooth = ndimage.uniform_filter(gray, size=3)
    low, high, median = float(smooth.min()), float(smooth.max()), float(np.median(gray))
    return 255.0 - gray if high - median < median - low else gray


def _without_shading(ink: np.ndarray) -> np.ndarray:
    """The ink less a plane fitted to the paper (the pixels at or under the median), so light
    falling off across a photographed page is not taken for ink. A plane, not a top-hat: an
    opening by half the page's side hollowed real digits cropped tight to their bold strokes
    (docs/no_digit.md). Least squares from sums along rows and columns: 25 ms for a 1024x1024 photo."""
    paper = (ink <= np.median(ink)).astype(np.float64)
    rows = np.arange(ink.shape[0]) / max(ink.shape)
    cols = np.arange(ink.shape[1]) / max(ink.shape)
    per_row, per_col = paper.sum(axis=1), paper.sum(axis=0)
    level = paper * ink
    cross = rows @ (paper @ cols)
    normal = np.array([[paper.sum(), rows @ per_row, cols @ per_col],
                       [rows @ per_row, rows ** 2 @ per_row, cross],
                       [cols @ per_col, cross, cols ** 2 @ per_col]])
    target = np.array([level.sum(), rows @ level.sum(axis=1), level.sum(axis=0) @ cols])
    a, b, c = np.linalg.lstsq(normal, target, rcond=None)[0]  # one row or column: no slope across it
    return (ink - (a + b * rows[:, None] + c * cols[None, :])).astype(ink.dtype)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Places the digit in the 28x28 frame with its centre of mass at the centre."""
    height, width = digit.shape
    total = digit.sum()
    rows, cols = np.indices(digit.shape)
    centre = ((rows * digit).sum() / total, (cols * digit).sum() / total)
    top = int(np.clip(round(SIZE / 2 - centre[0]), 0, SIZE - height))
    left = int(np.clip(round(SIZE / 2 - centre[1]), 0, SIZE - width))
    frame = np.zeros((SIZE, SIZE), np.float32)
    frame[top:top + height, left:left + width] = digit
    return np.round(frame * 255).astype(np.uint8)


def preprocess(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """A file (path or bytes) -> uint8 [28, 28], MNIST-style; InputError naming the file."""
    name = name or str(source)
    return to_mnist(load_image(source, name), name)
