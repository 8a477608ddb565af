"""How well the readers read what people write, per kind, on sets held out from training by style.

    python scripts/reading_benchmark.py [--model saved_models/mnist.keras] [--count 2000]

Digits: the MNIST test set; typed in font families never used in training (print and
handwriting-style apart); drawn from stroke templates never used in training, per style;
MNIST test digits reshaped and redrawn (MNIST keeps the test set's writers out of its training
set); and real handwriting from 43 writers outside MNIST (scikit-learn's 8x8 digits, if
installed). For each: % read right (a refusal counts as wrong) and % refused, by the network
alone (its argmax, no head), by `mnist-predict`'s reader (the int8 .tflite) and by the camera
.tflite (preprocessing in its graph) on the pictures as frames. Non-digits: % refused of each
held-out kind (negatives.py), and under each kind that names its pictures the items, glyphs,
templates or things refused least, with the digit they pass as; drawn letters that are digit
shapes in some hands (O, I, S, Z, ...) are reported apart, with no bar. A picture without ink
counts as refused, as every reader refuses it. The last column says whether issue 25's aim for
the row is met by every reader. Last, for each kind of non-digit with an aim, what refusing 95%
of it would cost: the share of MNIST's test digits and of the held-out style digits Keras' head
would refuse with its cut moved there.
"""

from __future__ import annotations

import datetime
import math
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from mnist_keras.data import datasets, negatives, written
from mnist_keras.inference import no_digit
from mnist_keras.inference.predictor import Predictor, load_predictor
from mnist_keras.training import autotune

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "saved_models/mnist.keras", "The trained .keras model (with its no-digit head beside it).")
flags.DEFINE_string("predict_model", "export/mnist_int8.tflite", "mnist-predict's default model.")
flags.DEFINE_string("camera", "export/mnist_camera.tflite", "The camera model, run on 64x64 frames.")
flags.DEFINE_integer("count", 2000, "Pictures per kind of digit.", lower_bound=10)
flags.DEFINE_integer("negatives", 1000, "Pictures per kind of non-digit.", lower_bound=10)
flags.DEFINE_integer("mnist", 10000, "MNIST test images read (the first N).", lower_bound=10, upper_bound=10000)
flags.DEFINE_string("page", None, "Also draw letters, arrows, ticks and a 7 with the mouse on this drawing page "
                    "folder (export/web) in Debian's Chromium, and print what the page answers.")
# Issue 25's aims, met when every reader meets them: MNIST test (network right, right with the head,
# refused at most); digits in held-out styles (right, refused at most); each kind of non-digit (refused).
MNIST_AIM, STYLE_AIM, REFUSED_AIM = (99.2, 99.1, 0.3), (98.0, 1.0), 95.0
NO_AIM = ("real handwriting (UCI, 43 writers)", negatives.DIGIT_LIKE)  # measured, no bar (digit-like: apart)
PAGE_DRAWINGS = ("letter-A-a", "letter-A-b", "arrow-a", "arrow-b", "arrow-c", "arrow-d", "arrow-e", "tick-a",
                 "tick-b", "tick-c", "7-plain-a", "7-crossed-a")


class Set:
    """One kind of held-out pictures: MNIST-style images, labels (-1: not a digit), frames for the camera,
    and where known what each picture is (its style, template, glyph, item or thing)."""

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray, frames: np.ndarray | None = None,
                 no_ink: np.ndarray | None = None, styles: np.ndarray | None = None):
        self.name, self.images, self.labels, self.styles = name, images, labels, styles
        self.frames = frames if frames is not None else render_frames(images)
        self.no_ink = no_ink if no_ink is not None else np.zeros(len(images), bool)


def render_frames(images: np.ndarray) -> np.ndarray:
    """28x28 MNIST-style images as the camera sees a digit on paper: 64x64 RGB, dark on light."""
    from mnist_keras.exporting import camera_model

    return camera_model.render(images)


def as_frames(pages: np.ndarray) -> np.ndarray:
    """Grayscale 64x64 pages as RGB frames."""
    return np.repeat(pages[..., None], 3, axis=-1)


def digit_sets(mnist: datasets.Data, count: int) -> list[Set]:
    """Every kind of held-out digits."""
    from mnist_keras.data import fonts

    test = (mnist.x_test[:FLAGS.mnist], mnist.y_test[:FLAGS.mnist])
    sets = [Set("MNIST test", test[0], test[1].astype(int))]
    typed = written.make("typed", "heldout", count)
    hand = {font.family for font in fonts.fonts() if font.handwriting}
    in_hand = np.array([style in hand for style in typed.styles])
    for name, chosen in (("typed, print fonts", ~in_hand), ("typed, handwriting fonts", in_hand)):
        sets.append(Set(name, typed.images[chosen], typed.labels[chosen].astype(int), as_frames(typed.pages[chosen])))
    drawn = written.make("drawn", "heldout", count)
    sets.append(Set("drawn, held-out templates", drawn.images, drawn.labels.astype(int), as_frames(drawn.pages),
                    styles=drawn.styles))
    for kind in ("reshaped", "redrawn"):
        made = written.make(kind, "heldout", count, test)
        sets.append(Set(f"MNIST test {kind}", made.images, made.labels.astype(int)))
    real = real_handwriting()
    if real is not None:
        sets.append(real)
    return sets


def real_handwriting() -> Set | None:
    """scikit-learn's digits: 1,797 handwritten digits by 43 writers outside MNIST, 8x8, made MNIST-style."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("scikit-learn is not installed: no real handwriting outside MNIST (pip install scikit-learn)")
        return None
    from PIL import Image

    from mnist_keras.data.preprocess import to_mnist

    digits = load_digits()
    pages = np.stack([np.asarray(Image.fromarray((255 - image * 255 / 16).astype(np.uint8)).resize(
        (64, 64), Image.Resampling.BICUBIC)) for image in digits.images])
    images = np.stack([to_mnist(page.astype(np.float32)) for page in pages])
    return Set("real handwriting (UCI, 43 writers)", images, digits.target.astype(int), as_frames(pages))


def negative_sets(count: int) -> list[Set]:
    """Every held-out kind of non-digit this machine can make (and the digit-like drawn letters apart)."""
    sets = []
    for kind in negatives.available() + ("digit-like letters",):
        made = negatives.make(kind, "heldout", count)
        sets.append(Set(kind, made.images, np.full(len(made.images), -1), as_frames(made.pages), made.no_ink,
                        made.sources))
    return sets


def camera_reader(path: str):
    """The camera .tflite on RGB frames: (probabilities, digit score)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner()

    def read(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = [runner(image=frame[None]) for frame in frames]
        return (np.concatenate([o["probabilities"] for o in outputs]),
                np.concatenate([o[no_digit.CHECK][:, 1] for o in outputs]))
    return read


def digits_aim(name: str, cells: list[float]) -> str:
    """"met" or "missed" for one row of digits (cells: network right, then right and refused of each reader)."""
    if name in NO_AIM:
        return ""
    right, refused = cells[1::2], cells[2::2]
    if name == "MNIST test":
        network, with_head, most = MNIST_AIM
        met = cells[0] >= network and min(right) >= with_head and max(refused) <= most
    else:
        met = min(right) >= STYLE_AIM[0] and max(refused) <= STYLE_AIM[1]
    return "met" if met else "missed"


def measure(answer: tuple[np.ndarray, np.ndarray], data: Set) -> tuple[float, float]:
    """(% read right, a refusal counting wrong; % refused) of one reader on one set."""
    probabilities, scores = answer
    refused = data.no_ink | no_digit.decide(scores)
    right = (probabilities.argmax(axis=1) == data.labels) & ~refused
    return 100 * right.mean(), 100 * refused.mean()


def main(argv: list[str]) -> None:
    del argv  # unused
    start = time.time()
    mnist = datasets.load()
    cpu = autotune.cpu_description()
    now = datetime.datetime.now(datetime.UTC)
    print(f"{FLAGS.model}; CPU: {cpu['cpu']}, {cpu['cores']} cores; {now:%Y-%m-%d %H:%M} UTC")
    keras_read = load_predictor(FLAGS.model)
    others = {"mnist-predict": (load_predictor(FLAGS.predict_model), "images")} \
        if Path(FLAGS.predict_model).is_file() else {}
    if Path(FLAGS.camera).is_file():
        others["camera .tflite"] = (camera_reader(FLAGS.camera), "frames")
    print(f"Readers: the network alone (argmax), Keras with its head, {', '.join(others) or 'no exported model'}")
    digit_scores = digits_table(digit_sets(mnist, FLAGS.count), keras_read, others)
    non_digits_table(negative_sets(FLAGS.negatives), keras_read, others, digit_scores)
    if FLAGS.page:
        page_answers(FLAGS.page)
    print(f"\nAims (issue 25): digits in held-out styles >= 98% right, <= 1% refused; MNIST test >= 99.2% right by the "
          f"network, <= 0.3% refused and >= 99.1% right with the head; each kind of non-digit >= 95% refused "
          f"(digit-like letters apart). ({time.time() - start:.0f} s)")


def digits_table(digits: list[Set], keras_read: Predictor, others: dict) -> dict[str, np.ndarray]:
    """One row per kind of digit; returns Keras' digit scores of MNIST's test digits and of the held-out
    styles (the rows with an aim), for the trade-off."""
    columns = ["network right", "Keras right", "refused"] + [f"{n} {c}" for n in others for c in ("right", "refused")]
    widths = [max(16, len(column) + 2) for column in columns]  # a column as wide as its name
    print(f"\nDigits held out by style (% read right counting a refusal wrong; % refused)\n{'kind':<36} {'n':>5}"
          + "".join(f"{c:>{width}}" for c, width in zip(columns, widths)) + "  aim (every reader)")
    scores = {"MNIST test": [], "held-out styles": []}
    for data in digits:
        network = 100 * np.mean(keras_read.model.predict(datasets.scale_images(data.images), verbose=0,
                                                         batch_size=1000).argmax(axis=1) == data.labels)
        keras_answer = keras_read(data.images)
        if data.name not in NO_AIM:
            scores["MNIST test" if data.name == "MNIST test" else "held-out styles"].append(keras_answer[1])
        cells = [network, *measure(keras_answer, data)]
        for read, feed in others.values():
            cells += measure(read(getattr(data, feed)), data)
        figures = "".join(f"{c:>{width - 1}.2f}%" for c, width in zip(cells, widths))
        print(f"{data.name:<36} {len(data.images):>5}{figures}  {digits_aim(data.name, cells)}".rstrip())
        if data.styles is not None:
            per_style(data, keras_read)
    return {name: np.concatenate(kept) for name, kept in scores.items()}


def non_digits_table(non_digits: list[Set], keras_read: Predictor, others: dict,
                     digit_scores: dict[str, np.ndarray]) -> None:
    """One row per kind of non-digit, then what refusing 95% of each kind would cost in digits refused."""
    print(f"\nNon-digits held out (% refused)\n{'kind':<36} {'n':>5}{'Keras':>16}"
          + "".join(f"{n:>16}" for n in others) + "  aim (every reader)")
    trade_offs = []
    for data in non_digits:
        keras_answer = keras_read(data.images)
        cells = [measure(keras_answer, data)[1]]
        cells += [measure(read(getattr(data, feed)), data)[1] for read, feed in others.values()]
        aim = "" if data.name in NO_AIM else "met" if min(cells) >= REFUSED_AIM else "missed"
        print((f"{data.name:<36} {len(data.images):>5}" + "".join(f"{c:>15.1f}%" for c in cells) + f"  {aim}").rstrip())
        if data.styles is not None:
            least_refused(data, keras_answer)
        if aim:
            trade_offs.append(trade_off(data, keras_answer[1], digit_scores))
    print("\nWhat refusing 95% of a kind would cost (Keras with its head, its cut moved until 95% of the kind is "
          "refused): % of MNIST's test digits and of the held-out style digits refused then\n" + "\n".join(trade_offs))


def trade_off(data: Set, scores: np.ndarray, digit_scores: dict[str, np.ndarray]) -> str:
    """One kind's line: the digits the head would refuse if its cut refused 95% of this kind."""
    ordered = np.sort(np.where(data.no_ink, -1.0, scores))  # without ink: refused at any cut
    cut = float(ordered[math.ceil(0.95 * len(ordered)) - 1])  # the lowest with 95% at or under it
    cells = [f"{name} {100 * np.mean(kept <= cut):.1f}%" for name, kept in digit_scores.items()]
    return f"  {data.name:<34} cut {cut:.8g}: " + ", ".join(cells)


def page_answers(folder: str) -> None:
    """What the drawing page says for each of PAGE_DRAWINGS drawn with the mouse, as a person draws."""
    import functools
    import http.server
    import threading

    from playwright.sync_api import sync_playwright

    from mnist_keras.data import templates

    quiet = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *args: None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(quiet, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    drawn = {t.name: t for split in ("train", "heldout") for t in
             templates.letter_templates(split) + templates.shape_templates(split) + templates.digit_templates(split)}
    print(f"\nThe drawing page {folder} in Chromium, each drawn with the mouse (template, its split): answer")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        page.evaluate("window.mnistWeb.ready")
        box = page.locator("#canvas").bounding_box()
        for name in PAGE_DRAWINGS:
            page.evaluate("window.mnistWeb.stats.lastDigitScore = null")
            for stroke in drawn[name].strokes:
                points = [(box["x"] + 40 + 200 * x, box["y"] + 40 + 200 * y) for x, y in stroke]
                page.mouse.move(*points[0])
                page.mouse.down()
                for point in points[1:]:
                    page.mouse.move(*point, steps=4)
                page.mouse.up()
            page.wait_for_function("window.mnistWeb.stats.lastDigitScore != null")
            page.wait_for_timeout(300)
            print(f"  {name} ({templates.split_of(drawn[name])}): {page.locator('#prediction').text_content()}")
            page.click("#clear")
        browser.close()
    server.shutdown()


def per_style(data: Set, read: Predictor) -> None:
    """The drawn templates' styles one by one: which ways of writing a digit are read worst."""
    probabilities, scores = read(data.images)
    refused = no_digit.decide(scores)
    right = (probabilities.argmax(axis=1) == data.labels) & ~refused
    style = np.array([name.rsplit("-", 1)[0] for name in data.styles])
    cells = [f"{s} {100 * right[style == s].mean():.0f}%/{100 * refused[style == s].mean():.0f}%"
             for s in sorted(set(style))]
    print("    per style (right/refused, Keras): " + ", ".join(cells))


def least_refused(data: Set, answer: tuple[np.ndarray, np.ndarray], shown: int = 12) -> None:
    """The items, glyphs, templates or things of a kind refused least, and the digit they pass as: where it fails.
    answer: Keras' (probabilities, digit scores) for data.images."""
    probabilities, scores = answer
    refused = no_digit.decide(scores) | data.no_ink
    digits = probabilities.argmax(axis=1)
    cells = []
    for source in sorted(set(data.styles), key=lambda name: (refused[data.styles == name].mean(), name))[:shown]:
        here = data.styles == source
        passed = np.bincount(digits[here & ~refused], minlength=10)
        cells.append(f"{source} {100 * refused[here].mean():.0f}% of {here.sum()}"
                     + (f" (as {passed.argmax()})" if passed.any() else ""))
    more = len(set(data.styles)) - len(cells)
    print("    refused least (Keras): " + ", ".join(cells) + (f"; {more} more" if more > 0 else ""))


if __name__ == "__main__":
    app.run(main)
