"""How well predict reads MNIST test digits redrawn as a person would hand them over.

    python scripts/redrawn_digits.py [--digits 1000] [--model export/mnist_int8.tflite]

Each test digit is drawn dark on light paper (grey pencil on off-white, JPEG or PNG), at
several sizes, off-centre on a larger page, and saved as a file; then
`python -m mnist_keras.predict --json` reads all the files, as a user would run it. For
comparison, the same pages squashed naively to 28x28 go straight into the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image

from mnist_keras.data import datasets
from mnist_keras.inference import litert

FLAGS = flags.FLAGS
flags.DEFINE_integer("digits", 1000, "Test digits per size.", lower_bound=1)
flags.DEFINE_list("sizes", ["28", "56", "140", "400"], "Side of the digit on the page, in pixels.")
flags.DEFINE_string("model", "export/mnist_int8.tflite", "The model predict uses.")


def redraw(digit: np.ndarray, side: int, rng: np.random.Generator) -> Image.Image:
    """Grey pencil on off-white paper, somewhere on a page up to twice the digit's size."""
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)) / 255.0
    height, width = side + int(rng.integers(side // 4, side + 1)), side + int(rng.integers(side // 4, side + 1))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    ink = np.zeros((height, width))
    ink[top:top + side, left:left + side] = big
    paper = 235 + rng.normal(0, 4, ink.shape)  # not quite white, not quite even
    return Image.fromarray(np.clip(paper - 190 * ink, 0, 255).astype(np.uint8))


def main(argv: list[str]) -> None:
    del argv  # unused
    mnist = datasets.load()
    images, labels = mnist.x_test[:FLAGS.digits], mnist.y_test[:FLAGS.digits]
    interpreter = litert.load(FLAGS.model)
    rng = np.random.default_rng(0)
    print(f"{FLAGS.digits} MNIST test digits redrawn dark on light; model {FLAGS.model}")
    print("digit size  predict (MNIST-style)  naive resize to 28x28  rejected as no digit")
    with tempfile.TemporaryDirectory() as folder:
        for side in [int(s) for s in FLAGS.sizes]:
            paths, naive = [], []
            for i, digit in enumerate(images):
                page = redraw(digit, side, rng)
                path = Path(folder) / f"{side}_{i}.{'jpg' if i % 2 else 'png'}"
                page.save(path, quality=90) if path.suffix == ".jpg" else page.save(path)
                paths.append(str(path))
                naive.append(np.asarray(page.resize((28, 28), Image.Resampling.BILINEAR)))
            result = subprocess.run([sys.executable, "-m", "mnist_keras.predict", "--json",
                                     f"--model={FLAGS.model}", *paths],
                                    capture_output=True, text=True, env=dict(os.environ))
            if result.returncode != 0:
                raise SystemExit(f"predict failed: {result.stderr.strip().splitlines()[-1]}")
            records = json.loads(result.stdout)["predictions"]
            digits = [-1 if p["digit"] is None else p["digit"] for p in records]
            read = 100 * np.mean(np.array(digits) == labels)  # a rejection counts as a miss
            rejected = 100 * np.mean([bool(p.get("no_digit")) for p in records])
            squashed = 100 * np.mean(litert.predict(interpreter, np.stack(naive)).argmax(1) == labels)
            print(f"{side:>7} px  {read:>20.1f}%  {squashed:>21.1f}%  {rejected:>19.2f}%", flush=True)


if __name__ == "__main__":
    app.run(main)
