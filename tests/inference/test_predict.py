"""MNIST-style preprocessing of real-world images, and the predict command."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from mnist_keras.data import preprocess
from mnist_keras.errors import InputError, NoInk
from mnist_keras.inference import litert, predict
from mnist_keras.inference.predictor import load_predictor
from tests.helpers import REPO, assert_one_line_error, run_module

N = 200  # test digits per variant


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    total = image.astype(np.float64).sum()
    return (rows * image).sum() / total, (cols * image).sum() / total


def _redraw(digit: np.ndarray, variant: str, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit as a person might hand it over: on paper, elsewhere, bigger, in colour."""
    side = int(rng.integers(60, 240))
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
    height, width = side + int(rng.integers(20, 200)), side + int(rng.integers(20, 200))
    top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
    ink = np.zeros((height, width), np.float32)
    ink[top:top + side, left:left + side] = big / 255.0
    if variant == "dark on light":
        return Image.fromarray((255 - 200 * ink).astype(np.uint8))  # grey pencil on white
    if variant == "light on dark":
        return Image.fromarray((30 + 225 * ink).astype(np.uint8))
    if variant == "coloured":  # blue ink on yellowish paper
        paper, pen = np.array([250, 235, 180]), np.array([20, 40, 160])
        return Image.fromarray((paper + (pen - paper) * ink[..., None]).astype(np.uint8), "RGB")
    if variant in ("alpha dark", "alpha light"):  # a drawing on a transparent canvas
        rgba = np.zeros((height, width, 4), np.uint8)
        rgba[..., :3] = 10 if variant == "alpha dark" else 245
        rgba[..., 3] = (255 * ink).astype(np.uint8)
        return Image.fromarray(rgba, "RGBA")
    raise ValueError(variant)


@pytest.fixture(scope="module")
def int8_model(exported):
    return exported.export / "mnist_int8.tflite"


def test_an_mnist_digit_comes_back_as_itself(mnist):
    """MNIST digits are already made this way: preprocessing must leave them as they are."""
    for digit in mnist.x_test[:50]:
        again = preprocess.to_mnist(digit.astype(np.float32)).astype(int)
        # Up to where a centre of mass halfway between two pixels rounds to.
        shifted = [np.abs(np.roll(again, (dy, dx), axis=(0, 1)) - digit).mean()
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        assert min(shifted) < 2.0  # of 255 grey levels


@pytest.mark.parametrize("variant", ["dark on light", "light on dark", "coloured",
                                     "alpha dark", "alpha light"])
def test_preprocessing_makes_any_digit_mnist_style(mnist, int8_model, variant, tmp_path):
    rng = np.random.default_rng(0)
    interpreter = litert.load(int8_model)
    raw_correct = litert.predict(interpreter, mnist.x_test[:N]).argmax(axis=1) == mnist.y_test[:N]
    made = []
    for i, digit in enumerate(mnist.x_test[:N]):
        path = tmp_path / f"{i}.png"
        _redraw(digit, variant, rng).save(path)
        image = preprocess.preprocess(path)
        assert image.shape == (28, 28) and image.dtype == np.uint8
        rows, cols = np.nonzero(image > 0.25 * 255)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in (19, 20, 21)  # the 20-pixel box
        assert np.allclose(_centre_of_mass(image), (14, 14), atol=0.75)
        assert np.median(image) == 0  # white on black: most of the frame is background
        made.append(image)
    correct = litert.predict(interpreter, np.stack(made)).argmax(axis=1) == mnist.y_test[:N]
    # Read as well as the digits MNIST itself holds, within 2 of 200.
    assert correct.sum() >= raw_correct.sum() - 4, (correct.mean(), raw_correct.mean())


def _photo(digit: np.ndarray, case: str, rng: np.random.Generator) -> Image.Image:
    """Harder pages: what phone photos and scans add to a digit."""
    side, height, width = {"small digit, big page": (90, 2400, 1800)}.get(case, (100, 300, 300))
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)) / 255.0
    ink = np.zeros((height, width))
    top, left = (height - side) // 2 + int(rng.integers(-20, 21)), (width - side) // 2 + int(rng.integers(-20, 21))
    ink[top:top + side, left:left + side] = big
    paper, pen = {"dim light": (110.0, 80.0), "faint ink in shade": (235.0, 120.0)}.get(case, (235.0, 190.0))
    page = paper - pen * ink
    if case == "faint ink in shade":  # light falling off by 30% across the page, corner to corner
        rows, cols = np.mgrid[:height, :width]
        page *= 1 - 0.3 * (rows + cols) / (height + width - 2)
    if case == "dark frame":
        page[:6], page[-6:], page[:, :6], page[:, -6:] = 25, 25, 25, 25
    if case == "specks":
        for _ in range(3):
            y, x = rng.integers(5, 40), rng.integers(5, 290)
            page[y:y + 3, x:x + 3] = 20
    if case == "uneven light":
        page -= np.linspace(0, 60, width)[None, :]
    page = np.clip(page, 0, 255)
    if case == "16-bit":
        return Image.fromarray((page * 257).astype(np.uint16))
    if case == "grey with tRNS":  # dark ink, the paper marked transparent by a tRNS chunk
        image = Image.fromarray(page.astype(np.uint8))
        image.info["transparency"] = 235
        return image
    return Image.fromarray(page.astype(np.uint8))


@pytest.mark.parametrize("case", ["small digit, big page", "dim light", "dark frame", "specks",
                                  "uneven light", "faint ink in shade", "16-bit", "grey with tRNS"])
def test_photos_and_scans_are_read_too(mnist, int8_model, case, tmp_path):
    rng = np.random.default_rng(2)
    interpreter = litert.load(int8_model)
    raw_correct = litert.predict(interpreter, mnist.x_test[:50]).argmax(axis=1) == mnist.y_test[:50]
    made = []
    for i, digit in enumerate(mnist.x_test[:50]):
        path = tmp_path / f"{i}.png"
        photo = _photo(digit, case, rng)
        photo.save(path, transparency=photo.info["transparency"]) if "transparency" in photo.info \
            else photo.save(path)
        made.append(preprocess.preprocess(path))
    correct = litert.predict(interpreter, np.stack(made)).argmax(axis=1) == mnist.y_test[:50]
    assert correct.sum() >= raw_correct.sum() - 2, (case, correct.mean(), raw_correct.mean())


def test_a_naive_resize_is_what_preprocessing_fixes(mnist, int8_model):
    """The reason for all of the above: squashing a photo to 28x28 misreads most digits."""
    rng = np.random.default_rng(1)
    interpreter = litert.load(int8_model)
    naive, made = [], []
    for digit in mnist.x_test[:N]:
        photo = _redraw(digit, "dark on light", rng)
        naive.append(np.asarray(photo.resize((28, 28), Image.Resampling.BILINEAR)))
        made.append(preprocess.to_mnist(np.asarray(photo, np.float32)))
    naive_acc = np.mean(litert.predict(interpreter, np.stack(naive)).argmax(1) == mnist.y_test[:N])
    made_acc = np.mean(litert.predict(interpreter, np.stack(made)).argmax(1) == mnist.y_test[:N])
    assert naive_acc < 0.5 and made_acc > 0.9, (naive_acc, made_acc)


def _png_of_size(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def _bad_images(tmp_path):
    good = io.BytesIO()
    _redraw(np.full((28, 28), 255, np.uint8), "dark on light", np.random.default_rng(0)).save(good, "JPEG")
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # 400 megapixels in a 50 kB file
    large = io.BytesIO()
    Image.new("1", (7000, 7000)).save(large, "PNG")  # 49 megapixels: under Pillow's limit, over ours
    tiny = {}
    for width, height in [(1, 1), (2, 1), (3, 3)]:
        tiny[(width, height)] = io.BytesIO()
        Image.new("L", (width, height), 0).save(tiny[(width, height)], "PNG")
    files = {
        "notes.png": (b"these are notes, not pixels\n", "not an image file"),
        "empty.jpg": (b"", "empty file"),
        "truncated.jpg": (good.getvalue()[:len(good.getvalue()) // 2], "damaged image"),
        "zero.png": (_png_of_size(0, 0), "has no pixels (0x0)"),
        "bomb.png": (bomb.getvalue(), "decompression bomb"),
        "large.png": (large.getvalue(), "large.png: 7000x7000 pixels is over the 40-megapixel limit"),
        "dot.png": (tiny[(1, 1)].getvalue(), "1x1 pixels is too small to hold a digit"),
        "pair.png": (tiny[(2, 1)].getvalue(), "2x1 pixels is too small"),
        "three.png": (tiny[(3, 3)].getvalue(), "3x3 pixels is too small"),
    }
    for name, (content, _) in files.items():
        (tmp_path / name).write_bytes(content)
    return {name: fragment for name, (_, fragment) in files.items()}


def test_each_bad_image_is_one_line_and_the_rest_are_read(mnist, int8_model, tmp_path):
    bad = _bad_images(tmp_path)
    Image.fromarray(255 - mnist.x_test[0]).resize((140, 140)).save(tmp_path / "seven.bmp")
    Image.fromarray(255 - mnist.x_test[1]).save(tmp_path / "two.gif")
    names = ["seven.bmp", *bad, "two.gif"]
    result = run_module("mnist_keras.predict", *names, f"--model={int8_model}", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == len(bad)
    for line, (name, fragment) in zip(errors, bad.items()):
        assert line.startswith(f"error: {name}: ") and fragment in line, line
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["seven.bmp", "two.gif"]
    assert [int(line.split(": ")[1].split()[0]) for line in lines] == list(mnist.y_test[:2])


def test_json_and_top_k(mnist, int8_model, tmp_path):
    Image.fromarray(255 - mnist.x_test[2]).resize((90, 90)).convert("RGB").save(tmp_path / "d.jpg")
    (tmp_path / "bad.png").write_bytes(b"nope")
    result = run_module("mnist_keras.predict", "d.jpg", "bad.png", "--top_k=3", "--json",
                        f"--model={int8_model}", cwd=tmp_path)
    assert result.returncode == 1
    output = json.loads(result.stdout)
    first, second = output["predictions"]
    assert first["file"] == "d.jpg" and first["digit"] == mnist.y_test[2]
    assert [p["digit"] for p in first["top_k"]][0] == first["digit"] and len(first["top_k"]) == 3
    probabilities = [p["probability"] for p in first["top_k"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0 + 1e-6
    assert second == {"file": "bad.png", "error": "bad.png: not an image file (PNG, JPEG, BMP, GIF, ...)"}


@pytest.mark.parametrize("backend", ["keras", "savedmodel", "float32"])
def test_every_backend_reads_the_same_digit(exported, mnist, keras_probabilities, tmp_path, backend):
    model_path = exported.model_path
    model = {"keras": model_path, "savedmodel": exported.serving / "1",
             "float32": exported.export / "mnist_float32.tflite"}[backend]
    paths = []
    for i in range(3):
        Image.fromarray(255 - mnist.x_test[i]).resize((100, 100)).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    predictor = load_predictor(model)
    records = predict.predict_files(paths, predictor, k=3)
    assert [r["digit"] for r in records] == list(mnist.y_test[:3])
    assert [r["file"] for r in records] == [str(p) for p in paths]
    # The predictor gives probabilities, as the Keras model does, whatever the format.
    np.testing.assert_allclose(predictor(mnist.x_test[:20])[0], keras_probabilities[:20], atol=1e-5)


def test_the_tflite_backend_does_not_import_tensorflow(int8_model, mnist, tmp_path):
    Image.fromarray(mnist.x_test[0]).save(tmp_path / "d.png")
    code = ("import sys; from absl import flags; from mnist_keras import predict; "
            "predict.define_flags(); flags.FLAGS(['predict', '--model', sys.argv[1]]); "
            "predict.main(['predict', 'd.png']); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'")
    result = subprocess.run([sys.executable, "-c", code, str(int8_model)], cwd=tmp_path,
                            capture_output=True, text=True, env={"PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"d.png: {mnist.y_test[0]} (")


def test_special_and_oversized_files_are_refused_unread(tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "big.png").write_bytes(b"\0" * 2048)
    monkeypatch.setattr(preprocess, "MAX_FILE_BYTES", 1024)
    records = predict.predict_files(["/dev/zero", tmp_path / "fifo.png", tmp_path / "big.png", tmp_path],
                                    lambda images: pytest.fail("nothing to classify"))
    assert [r["error"] for r in records] == [
        "/dev/zero: not a regular file (a device, pipe or socket), not an image",
        f"{tmp_path / 'fifo.png'}: not a regular file (a device, pipe or socket), not an image",
        f"{tmp_path / 'big.png'}: 2048 bytes is over the 1024-byte limit for an image",
        f"{tmp_path}: is a folder, not an image"]


def test_the_command_refuses_dev_zero_and_a_fifo_at_once(int8_model, tmp_path):
    os.mkfifo(tmp_path / "fifo.png")
    result = run_module("mnist_keras.predict", "/dev/zero", "fifo.png", f"--model={int8_model}",
                        cwd=tmp_path, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: /dev/zero: not a regular file (a device, pipe or socket), not an image",
        "error: fifo.png: not a regular file (a device, pipe or socket), not an image"]


def test_a_blank_page_in_uneven_light_holds_no_digit():
    """Light falling off by half across blank paper: its darker corner is no digit."""
    rows, cols = np.mgrid[:200, :300]
    page = 235 * (1 - 0.5 * (rows + cols) / 498) + np.random.default_rng(0).normal(0, 2, rows.shape)
    with pytest.raises(NoInk, match="no digit found"):
        preprocess.to_mnist(page.astype(np.float32))


def test_a_tiny_image_is_a_clear_error_not_a_crash():
    """The root cause: the 5th brightest pixel of an image of fewer than 5 pixels."""
    for shape in [(1, 1), (2, 1), (2, 2)]:
        with pytest.raises(InputError, match="no digit found"):
            preprocess.to_mnist(np.full(shape, 200.0, np.float32))
    line = np.zeros((1, 100), np.float32)
    line[0, 40:60] = 255  # a dash one pixel high still comes out as an image, not an exception
    assert preprocess.to_mnist(line).shape == (28, 28)


def test_the_default_model_missing_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="no such model; run mnist-export first"):
        predict.open_model(predict.DEFAULT_MODEL)


@pytest.mark.parametrize("args, fragment", [
    ([], "name at least one image file"),
    (["d.png", "--model=missing.tflite"], "missing.tflite: no such model"),
    (["d.png", "--model=d.png"], "not a valid TFLite model"),
    (["d.png", "--top_k=11"], "top_k"),
])
def test_predict_bad_arguments(tmp_path, args, fragment):
    (tmp_path / "d.png").write_bytes(b"not a png")
    assert_one_line_error(run_module("mnist_keras.predict", *args, cwd=tmp_path), fragment)


HOSTILE_NAME = "seven\nerror: forged line \x1b[31mred\x1b[0m.png"  # a newline and terminal colour codes


def test_a_file_name_with_a_newline_or_escape_codes_is_printed_escaped(mnist, int8_model, tmp_path):
    """A name cannot break its line, forge an `error:` line or colour the terminal: both the digit's
    line (stdout) and a failing file's error line (stderr) show it with backslash escapes."""
    Image.fromarray(255 - mnist.x_test[0]).save(tmp_path / "seven.png", format="PNG")
    os.rename(tmp_path / "seven.png", tmp_path / HOSTILE_NAME)
    (tmp_path / f"bad {HOSTILE_NAME}").write_bytes(b"not an image")
    result = run_module("mnist_keras.predict", HOSTILE_NAME, f"bad {HOSTILE_NAME}", f"--model={int8_model}",
                        cwd=tmp_path)
    assert result.returncode == 1 and "\x1b" not in result.stdout + result.stderr
    escaped = "seven\\nerror: forged line \\x1b[31mred\\x1b[0m.png"
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{escaped}: {mnist.y_test[0]} ("), line
    assert result.stderr.splitlines() == [f"error: bad {escaped}: not an image file (PNG, JPEG, BMP, GIF, ...)"]


def test_an_error_naming_a_hostile_path_stays_one_line(tmp_path):
    result = run_module("mnist_keras.predict", "d.png", f"--model={HOSTILE_NAME}", cwd=tmp_path)
    assert_one_line_error(result, "seven\\nerror: forged line \\x1b[31mred\\x1b[0m.png: no such model")
