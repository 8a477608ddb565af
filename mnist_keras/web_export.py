"""export/web/: the drawing page as a static folder that runs the .tflite in the browser.

    python -m mnist_keras.web_export [--export_dir export] [--model saved_models/mnist.keras]
                                     [--web_runtime web/node_modules]

(`mnist-export` writes it too, after the .tflite files.) The folder holds
index.html and page.js, the model (model.tflite and model.json, how to feed it), explain.html's
inspection model (mnist_inspect.tflite and mnist_inspect.json, made from --model and checked
against it on 200 test digits; without that model one line says so and the page has no layers), and
LiteRT.js's JavaScript and WebAssembly under litert/, copied from the npm package that
`npm ci --prefix web` installs from web/package-lock.json, each file checked against
exporting/web/runtime.sha256 first. Nothing is fetched from a CDN when the page runs.
"""

from __future__ import annotations

from pathlib import Path

from absl import flags

from mnist_keras import cli
from mnist_keras.errors import InputError
from mnist_keras.exporting.web_page import RUNTIME_PACKAGE, SET_UP, rebuild

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("web_runtime", None,
                        f"node_modules holding {RUNTIME_PACKAGE} (`{SET_UP}`); default: web/node_modules "
                        "here, else in this checkout.")


def main(argv: list[str]) -> None:
    del argv  # unused
    problem = rebuild(Path(FLAGS.export_dir), Path(FLAGS.web_runtime) if FLAGS.web_runtime else None,
                      Path(FLAGS.model))
    if problem:
        raise InputError(problem)


def cli_main() -> None:
    """`python -m mnist_keras.web_export`: rebuilds export/web/ from the .tflite already there."""
    flags.DEFINE_string("export_dir", "export", "Where export wrote the .tflite files; web/ goes inside.")
    flags.DEFINE_string("model", "saved_models/mnist.keras", "The .keras model they were exported from: "
                        "explain.html's inspection model is made from it (skipped, in one line, without it).")
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
