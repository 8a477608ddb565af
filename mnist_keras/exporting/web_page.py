"""export/web/: the drawing page as a static folder that runs the .tflite in the browser.

The command (its flags) is mnist_keras/web_export.py.

(`mnist-export` writes it too, after the .tflite files.) The folder holds
index.html and page.js, draw.js and draw.css (the pen, the bars and the stylesheet it shares with
mnist-serve's page; the markup both include, panel.html and pad.html, is put in), explain.html and
explain.js (every layer, issue 29), the model (model.tflite and model.json, how to feed it), and
LiteRT.js's JavaScript and WebAssembly under litert/, copied from the npm package that
`npm ci --prefix web` installs from web/package-lock.json, each file checked against
exporting/web/runtime.sha256 first. Nothing is fetched from a CDN when the page runs.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Collection, Mapping
from importlib import resources
from pathlib import Path

from mnist_keras.errors import InputError
from mnist_keras.exporting import inspect_model
from mnist_keras.exporting.folders import export_lock
from mnist_keras.files import Content, node_modules, publish, sha256_file

# The model the page runs: the first of these that export wrote. The camera model (RGB in,
# preprocessing in the graph) is the one meant for it; the 28x28x1 files work meanwhile.
MODELS = ("mnist_camera.tflite", "mnist_int8.tflite", "mnist_float32.tflite")
RUNTIME_PACKAGE = "@litertjs/core"
# npm package path -> where the page loads it from (page.js imports litert/core.js; its
# import map points @litertjs/wasm-utils at litert/wasm-utils.js).
RUNTIME_FILES = {
    "@litertjs/core/dist/index.js": "litert/core.js",
    "@litertjs/wasm-utils/dist/index.js": "litert/wasm-utils.js",
    # Browsers with relaxed SIMD (Chrome, Edge 114+) load these ...
    "@litertjs/core/wasm/litert_wasm_internal.js": "litert/wasm/litert_wasm_internal.js",
    "@litertjs/core/wasm/litert_wasm_internal.wasm": "litert/wasm/litert_wasm_internal.wasm",
    # ... the others (Firefox, Safari) these; LiteRT.js picks one at run time.
    "@litertjs/core/wasm/litert_wasm_compat_internal.js": "litert/wasm/litert_wasm_compat_internal.js",
    "@litertjs/core/wasm/litert_wasm_compat_internal.wasm": "litert/wasm/litert_wasm_compat_internal.wasm",
    "@litertjs/core/package.json": "litert/package.json",
}
# draw.*: shared with mnist-serve's page; preprocess.js: with explain.html (every layer, issue 29)
PAGE_FILES = ("index.html", "page.js", "draw.js", "draw.css", "preprocess.js", "explain.html", "explain.js")
SET_UP = "npm ci --prefix web"
# A line `<!-- include NAME -->` in a page stands for exporting/web/NAME, indented as the line is:
# the markup the drawing pages share (panel.html, pad.html), written once, put in when a page is
# written here or served by mnist-serve (serving/draw.html).
INCLUDE = re.compile(r"^([ \t]*)<!-- include ([\w-]+\.html) -->$", re.M)


def default_runtime() -> Path:
    """web/node_modules with LiteRT.js: in the current folder, else in the checkout this package runs from."""
    return node_modules(RUNTIME_PACKAGE)


def page_text(text: str) -> str:
    """A page's HTML with its includes put in (an included part may include another)."""
    folder = resources.files("mnist_keras.exporting").joinpath("web")
    return INCLUDE.sub(lambda m: textwrap.indent(page_text(folder.joinpath(m.group(2)).read_text()).rstrip("\n"),
                                                 m.group(1)), text)


def checksums() -> dict[str, str]:
    """npm path -> SHA-256, as recorded in exporting/web/runtime.sha256 (sha256sum's format)."""
    text = resources.files("mnist_keras.exporting").joinpath("web/runtime.sha256").read_text()
    return {name: digest for digest, name in (line.split() for line in text.splitlines() if line.strip())}


def check_runtime(runtime: Path) -> None:
    """Every runtime file present and as recorded, or one line saying which is not."""
    if not (runtime / RUNTIME_PACKAGE).is_dir():
        raise FileNotFoundError(f"{runtime / RUNTIME_PACKAGE}: not installed; run `{SET_UP}` once, then export again")
    expected = checksums()
    for name in RUNTIME_FILES:
        path = runtime / name
        if not path.is_file():
            raise InputError(f"{path}: missing from the npm package; run `{SET_UP}` again")
        if sha256_file(path) != expected.get(name):
            raise InputError(f"{path}: SHA-256 differs from mnist_keras/exporting/web/runtime.sha256 "
                             f"(another version of {RUNTIME_PACKAGE}?); run `{SET_UP}` again")


def choose_model(export_dir: Path, candidates: Collection[Path] | None = None) -> Path:
    """The first of MODELS in export_dir; among candidates only (what this export wrote), if given."""
    for name in MODELS:
        path = export_dir / name
        if path.is_file() and (candidates is None or path in candidates):
            return path
    among = "" if candidates is None else " written by this export"
    raise FileNotFoundError(f"{export_dir}: none of {', '.join(MODELS)}{among} to put in it")


def describe_model(model: Path) -> dict:
    """How the page feeds the model and reads it, from the file itself (LiteRT, no TensorFlow)."""
    from ai_edge_litert.interpreter import Interpreter

    from mnist_keras.inference.litert import quiet_stderr

    with quiet_stderr():
        interpreter = Interpreter(model_path=str(model))
    (inp,), outputs = interpreter.get_input_details(), interpreter.get_output_details()
    out = next((d for d in outputs if int(d["shape"][-1]) == 10), outputs[0])
    check = next((d for d in outputs if d["index"] != out["index"]), None)  # no_digit.py's digit_check

    def spec(detail: dict) -> dict:
        scale, zero = detail["quantization"]
        return {"shape": [int(n) for n in detail["shape"]], "dtype": detail["dtype"].__name__,
                **({"scale": float(scale), "zero_point": int(zero)} if scale else {})}

    # Float inputs here take pixel / 255 (the 28x28 models); uint8 inputs the raw pixel.
    normalization = {"mean": 0.0, "std": 255.0} if inp["dtype"].__name__ == "float32" else None
    return {"input": {**spec(inp), **({"normalization": normalization} if normalization else {})},
            "output": spec(out), **({"no_digit_output": spec(check)} if check is not None else {})}


def fixed_batch(model: bytes) -> bytes:
    """The model with its batch size fixed at 1: LiteRT.js refuses inputs whose shape has a -1.

    (A model with no -1 anywhere, like the camera model, is kept byte for byte, metadata included.)
    """
    from ai_edge_litert.tools import flatbuffer_utils

    tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    dynamic = [t for g in tree.subgraphs for t in g.tensors
               if t.shapeSignature is not None and -1 in list(t.shapeSignature)]
    if not dynamic:
        return model
    for tensor in dynamic:
        tensor.shapeSignature = None  # the shape, with 1 for the batch, is what is left
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))


def write_web(folder: Path, model: Path, runtime: Path, extras: Mapping[str, bytes] | None = None) -> Path:
    """Builds the page folder beside `folder` under a partial name, then swaps it in (files.publish):
    a reader never sees half of one.

    Under the export lock of folder's parent (an export's own, or web_export's), so two never
    interleave; the next run removes a killed one's partial folder.
    extras: more files for the folder, by name (export's inspection model for explain.html)."""
    check_runtime(runtime)
    version = json.loads((runtime / RUNTIME_PACKAGE / "package.json").read_text())["version"]
    with export_lock([folder.parent]):
        publish(folder.parent, {folder.name: page_files(model, runtime, version, extras or {})})
    return folder


def page_files(model: Path, runtime: Path, version: str, extras: Mapping[str, bytes]) -> dict[str, Content]:
    """The page folder's files by name: the page, LiteRT.js (copied), the model and its description."""
    page = {name: page_file(name) for name in PAGE_FILES}
    description = {"file": "model.tflite", "source": model.name, "sha256": sha256_file(model),
                   **describe_model(model), "runtime": RUNTIME_PACKAGE, "runtime_version": version}
    return {**page, **{target: runtime / source for source, target in RUNTIME_FILES.items()}, **extras,
            "model.tflite": fixed_batch(model.read_bytes()), "model.json": json.dumps(description, indent=2) + "\n"}


def page_file(name: str) -> bytes:
    """One of PAGE_FILES as written: an .html page with the markup it includes put in."""
    source = resources.files("mnist_keras.exporting").joinpath(f"web/{name}")
    return page_text(source.read_text()).encode() if name.endswith(".html") else source.read_bytes()


def export_web(export_dir: Path, runtime: Path | None = None, candidates: Collection[Path] | None = None,
               extras: Mapping[str, bytes] | None = None) -> str | None:
    """What `export` calls: writes export_dir/web and prints one line; returns an error or None.

    candidates: the model files the page may use (export passes the ones it just wrote, so an
    older export's file never ends up on the page); None: any of MODELS in export_dir.
    A runtime that is not installed is a skip (the page is optional; set-up installs it); one
    whose files differ from the recorded checksums is an error.
    """
    runtime = runtime or default_runtime()
    folder = export_dir / "web"
    try:
        model = choose_model(export_dir, candidates)
        write_web(folder, model, runtime, extras)
    except FileNotFoundError as e:
        print(f"  web page: not written: {e}", flush=True)
        return None
    except InputError as e:
        print(f"  web page: FAILED: {e}", flush=True)
        return f"web page: {e}"
    print(f"  web page: {folder}/ (LiteRT.js, {model.name}); serve the folder, open index.html", flush=True)
    return None


def rebuild(export_dir: Path, runtime: Path | None, model_path: Path, test_images: int = 200) -> str | None:
    """What `python -m mnist_keras.web_export` runs: export_web from the .tflite files already in
    export_dir, with the explain page's inspection model (inspect_model.py) made from model_path and
    verified on test_images shipped test digits, as export writes it. Without that model (none, another
    one, not the seed's layers) one line says so and the page is written without it."""
    runtime = runtime or default_runtime()
    try:
        page_model = choose_model(export_dir)
        check_runtime(runtime)
    except (FileNotFoundError, InputError):
        return export_web(export_dir, runtime)  # says in one line why no page is written
    from mnist_keras.data import datasets

    name = f"web/{inspect_model.MODEL_FILE}"
    try:
        extras = inspect_model.for_keras_file(model_path, page_model, datasets.load().x_test[:test_images])
    except FileNotFoundError as e:
        print(f"  {name}: not written: {e}; the explain page shows no layers", flush=True)
        return export_web(export_dir, runtime)
    except InputError as e:
        print(f"  {name}: FAILED: {e}", flush=True)
        return export_web(export_dir, runtime) or f"{name}: {e}, not kept"
    print(f"  {name}: ok, every layer equals Keras' ({model_path.name})", flush=True)
    return export_web(export_dir, runtime, extras=extras)
