"""Turns any picture of one digit into a 28x28 MNIST-style image (numpy and Pillow only).

MNIST was made like this: the digit, light on dark, cropped to its ink, scaled so its
longer side is 20 pixels (aspect kept, anti-aliased), placed in a 28x28 frame with its
centre of mass at the centre. The network only ever saw digits made that way, so a photo
resized naively to 28x28 is read right about 1 time in 10; made the same way, nearly always.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_keras.errors import InputError

SIZE = 28  # the frame
BOX = 20  # the digit's longer side inside it
MAX_PIXELS = 40_000_000  # larger is refused: a 40-megapixel photo is plenty for one digit
MIN_CONTRAST = 40  # grey levels between paper and ink below which there is no digit
INK = 0.25  # share of the ink's full strength that counts as ink when cropping


def load_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decodes a file (path or bytes) to grayscale float [H, W] in [0, 255], with no alpha.

    Errors name the file and say what is wrong: not an image, empty, truncated, zero-size,
    or so large it could be a decompression bomb.
    """
    name = name or str(source)
    if isinstance(source, (str, Path)):
        try:
            data = Path(source).read_bytes()
        except IsADirectoryError:
            raise InputError(f"{name}: is a folder, not an image") from None
        except OSError as e:
            raise InputError(f"{name}: cannot read: {e.strerror}") from None
    else:
        data = source
    if not data:
        raise InputError(f"{name}: empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
        try:
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InputError(f"{name}: {width}x{height} pixels is over the "
                                 f"{MAX_PIXELS // 1_000_000}-megapixel limit")
            image.load()
            image = ImageOps.exif_transpose(image)  # phone photos are often stored rotated
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError(f"{name}: too many pixels: refused as a possible decompression bomb") from None
        except UnidentifiedImageError:
            size = _declared_size(data)
            if size and 0 in size:
                raise InputError(f"{name}: the image has no pixels ({size[0]}x{size[1]})") from None
            raise InputError(f"{name}: not an image file (PNG, JPEG, BMP, GIF, ...)") from None
        except (OSError, ValueError, SyntaxError) as e:  # Pillow's words for damaged data
            raise InputError(f"{name}: damaged image: {e}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    if image.width == 0 or image.height == 0:
        raise InputError(f"{name}: the image has no pixels ({image.width}x{image.height})")
    return _flatten_alpha(image)


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
    if image.mode in ("P", "PA") and "transparency" in image.info or image.mode in ("PA", "LA", "RGBA"):
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
    ink = _light_on_dark(gray)
    background = float(np.median(ink))
    strongest = float(np.percentile(ink, 99.9))
    if strongest - background < MIN_CONTRAST:
        raise InputError(f"{name}: no digit found (the image is blank or has almost no contrast)")
    ink = np.clip((ink - background) / (strongest - background), 0.0, 1.0)
    rows, cols = np.nonzero(ink > INK)
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]

    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    digit = np.asarray(Image.fromarray(ink.astype(np.float32), mode="F")
                       .resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
    digit = np.clip(digit, 0.0, 1.0)
    return _centre_by_mass(digit)


def _light_on_dark(gray: np.ndarray) -> np.ndarray:
    """Inverts dark-on-light images; the paper is what the border mostly shows."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 255.0 - gray if np.median(border) > 127 else gray


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
