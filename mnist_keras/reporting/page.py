"""What the network learned, as pictures: an HTML report beside the model.

The command (its flags, and what the page shows) is mnist_keras/report.py.
From Python: write_report(model_path, dataset) -> the path of report.html. The figures are
drawn by figures.py.
"""

from __future__ import annotations

import datetime
import html
import json
import os
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import NUM_CLASSES, Data, scale_images
from mnist_keras.errors import InputError
from mnist_keras.files import publish, sha256_file
from mnist_keras.inference import classifiers
from mnist_keras.reporting.figures import (
    held_out,
    plot_confusion,
    plot_embedding,
    plot_feature_maps,
    plot_filters,
    plot_mistakes,
    plot_training_curves,
)
from mnist_keras.training import keras_file
from mnist_keras.training.metrics import metrics

MISTAKES_SHOWN = 36
FASHION = ["T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle boot"]
# export's page showing every layer live (mnist_keras/exporting/web/explain.html), beside export.json
EXPLAIN_PAGE = Path("web") / "explain.html"
EXPECTED_SHAPES = {"conv1 kernels": (3, 3, 1, 32), "pool1": (14, 14, 32), "pool2": (7, 7, 64),
                   "dense": (128,), "logits": (NUM_CLASSES,)}


def class_names(source: str) -> tuple[str, list[str]]:
    """What the classes are called: digits for MNIST, garments for Fashion-MNIST."""
    lowered = source.lower()
    if "fashion" in lowered:
        return "class", FASHION
    if "mnist" in lowered and "kmnist" not in lowered:
        return "digit", [str(c) for c in range(NUM_CLASSES)]
    return "class", [str(c) for c in range(NUM_CLASSES)]


# --- Numbers ----------------------------------------------------------------------------

def mistakes(probabilities: np.ndarray, labels: np.ndarray, limit: int = MISTAKES_SHOWN) -> list[dict]:
    """The misclassified test images, most confident first: the ones worth looking at."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:limit]
    return [{"index": int(i), "true": int(labels[i]), "predicted": int(predicted[i]),
             "confidence": float(probabilities[i, predicted[i]])} for i in order]


def inner_outputs(model: Any, images: np.ndarray) -> dict[str, np.ndarray]:
    """pool1 [N, 14, 14, 32], pool2 [N, 7, 7, 64], dense [N, 128] and logits, in one pass."""
    import keras

    names = ["pool1", "pool2", "dense", "logits"]
    try:
        outputs = [model.get_layer(name).output for name in names]
    except ValueError as e:
        raise InputError(f"the model lacks a layer this report draws ({e}); it needs this "
                         "project's CNN (conv1, pool1, conv2, pool2, dense, logits)") from None
    probe = keras.Model(model.inputs, outputs)
    values = dict(zip(names, probe.predict(scale_images(images), batch_size=1000, verbose=0)))
    try:
        kernels = model.get_layer("conv1").get_weights()[0]
    except (ValueError, IndexError):
        kernels = np.zeros(0)
    shapes = {"conv1 kernels": kernels.shape, **{n: values[n].shape[1:] for n in names}}
    wrong = [f"{n} {tuple(shapes[n])}" for n in EXPECTED_SHAPES if tuple(shapes[n]) != EXPECTED_SHAPES[n]]
    if wrong:
        raise InputError(f"the model's {', '.join(wrong)} differ from this project's CNN "
                         f"({', '.join(f'{n} {s}' for n, s in EXPECTED_SHAPES.items())}), which the "
                         "report draws")
    return {**values, "conv1": kernels}


def pca(features: np.ndarray, components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Projection onto the directions of largest variance, and the share each explains."""
    centred = features - features.mean(axis=0)
    _, singular, directions = np.linalg.svd(centred, full_matrices=False)
    explained = singular ** 2 / np.sum(singular ** 2)
    return centred @ directions[:components].T, explained[:components]


# --- The page -----------------------------------------------------------------------------

def _table(header: list[str], rows: list[list]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def export_rows(summary: dict) -> list[list]:
    rows = []
    for a in summary.get("artifacts", []):
        rows.append([a["artifact"], a["path"], f"{a['size_bytes'] / 1e6:.2f} MB",
                     f"{a['accuracy']:.2f}%",
                     "" if a.get("change") is None else f"{a['change']:+.2f} points",
                     f"{a['seconds_per_image'] * 1e6:.0f} us",
                     "" if a.get("passed") is None else f"{'ok' if a['passed'] else 'FAILED'} ({a.get('bar', '')})"])
    return rows


def render_html(record: dict, images: dict[str, str]) -> str:
    result, noun = record["test"], record["noun"]
    sections = [f"<h1>What the network learned</h1><p class=meta>Model <code>{html.escape(record['model'])}</code>, "
                f"{result['accuracy']:.2f}% on {result['total']} test images of "
                f"{html.escape(record['data'])} ({result['correct']} correct). Written "
                f"{html.escape(record['written_at'])}.</p>"]

    def figure(name: str, heading: str, text: str) -> None:
        if name in images:
            sections.append(f"<h2>{heading}</h2><p>{text}</p>"
                            f"<img src=\"{html.escape(name)}\" alt=\"{html.escape(heading)}\">")

    if "training_curves.png" in images:
        held = ("validation images, held out of the training set," if record.get("held_out") == "validation"
                else "test images (this run predates the validation split)")
        figure("training_curves.png", "Training curves",
               "The average loss (total loss / number of batches) and the accuracy of each epoch: on "
               "the training images, averaged while the network was still learning during the epoch, "
               f"and on the {held} which it never trained on, measured at the epoch's end. Where the "
               f"training loss falls below the {record.get('held_out') or 'test'} loss, the network "
               "starts to fit its training set more closely than new images.")
    else:
        sections.append(f"<h2>Training curves</h2><p>{html.escape(record['curves_note'])}</p>")
    figure("confusion_matrix.png", "Confusion matrix",
           f"Each row is the true {noun}, each column what the network read. The diagonal is right; "
           "every other count is a mistake, and which classes it confuses says what is hard. "
           "Precision: of the images read as a class, the share that are; recall: of the images of "
           "a class, the share read as it.")
    sections.append(_table([noun, "precision", "recall", "test images"], [
        [record["names"][c["class"]], "-" if c["precision"] is None else f"{100 * c['precision']:.2f}%",
         "-" if c["recall"] is None else f"{100 * c['recall']:.2f}%", c["support"]]
        for c in result["per_class"]]))
    wrong = result["total"] - result["correct"]
    if "mistakes.png" in images:
        figure("mistakes.png", "Mistakes",
               f"The {len(record['mistakes'])} mistakes the network was most sure of, of {wrong}. "
               "Many are images a person would hesitate over too.")
    else:
        sections.append("<h2>Mistakes</h2><p>No test image was misclassified.</p>")
    figure("filters.png", "What the first layer looks for",
           "Each of the 32 first-layer filters is a 3x3 pattern of weights. Nobody designed them: "
           "training found edge and stroke detectors of different directions by itself.")
    figure("feature_maps.png", "What the filters see",
           f"Test image #{record['feature_map_index']} after each convolution stage, on one colour "
           "scale per stage. The first stage lights up edges and strokes; the second, after "
           "pooling, responds to larger parts of the shape.")
    figure("embedding.png", f"How the network arranges {noun}s",
           "The 128 numbers the network computes for each image just before its decision, "
           "squeezed to two dimensions (PCA). Images of one class gather together: that is what "
           "makes them easy to tell apart for the last layer.")
    sections += explain_section(record)
    sections += export_section(record)
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>mnist-keras report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")


STYLE = ("body{font-family:system-ui,sans-serif;max-width:84rem;margin:2rem auto;padding:0 1rem;"
         "color:#222}img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;"
         "margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:right}"
         "p.meta{color:#555}code{background:#f3f3f3;padding:0 .2rem}")


def explain_section(record: dict) -> list[str]:
    """The link to export's explain page, or where it would be."""
    text = ("The same layers for a digit you draw, updated on every stroke, with the weights of each "
            "convolution written out: ")
    if record.get("explain_page"):
        href = html.escape(record["explain_page"])
        text += (f"<a href=\"{href}\" id=explain-link>{html.escape(record['explain_note'])}</a>. It loads its "
                 "model as a web page does: open it through a web server (mnist-serve shows it at "
                 "/web/explain.html; this link works when one server serves a folder holding both this "
                 "report and the export), not as a file.")
    else:
        text += html.escape(record.get("explain_note") or "")
    return [f"<h2>Inside the network, live</h2><p>{text}</p>"]


def explain_page(report_dir: Path, export_json: Path | None, described: bool) -> tuple[str | None, str]:
    """(the explain page's address relative to the report, its path) when export wrote one for this
    model; else (None, where mnist-export writes it)."""
    page = (export_json.parent if export_json else Path("export")) / EXPLAIN_PAGE
    if not (described and page.is_file()):
        return None, (f"mnist-export --model with this model writes it to {page} (with LiteRT.js installed: "
                      "npm ci --prefix web).")
    relative = Path(os.path.relpath(page.resolve(), report_dir.resolve()))
    return urllib.parse.quote(relative.as_posix()), str(page)


def export_section(record: dict) -> list[str]:
    """The export table, when export.json describes this model; else why it is not shown, if known."""
    if record.get("export"):
        return [f"<h2>Exported models</h2><p>From <code>{html.escape(record['export_path'])}"
                "</code>: each artifact checked on the test set against this Keras model.</p>"
                + _table(["artifact", "file", "size", "test accuracy", "change", "time/image", "bar"],
                         export_rows(record["export"]))]
    if record.get("export_note"):
        return [f"<h2>Exported models</h2><p>{html.escape(record['export_note'])}</p>"]
    return []


# --- Putting it together ------------------------------------------------------------------

def report_folder(model_path: Path) -> Path:
    """Where the report on a model goes: beside it, e.g. saved_models/mnist_report/."""
    return model_path.parent / f"{model_path.stem}_report"


def read_json(path: Path, what: str, required: tuple[str, ...]) -> dict:
    """A JSON file this report reads, or one line saying why it cannot."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable {what} ({e})") from None
    if not isinstance(value, dict) or any(key not in value for key in required):
        raise InputError(f"{path}: not a {what} (needs {', '.join(required)})")
    return value


def history_for(model_path: Path) -> tuple[dict | None, str]:
    """The run's history, if it is the run that wrote this model file."""
    path = model_path.parent / "history.json"
    if not path.is_file():
        return None, "No history.json beside the model, so there are no curves to draw."
    history = read_json(path, "training history", ("epochs", "settings"))
    if not isinstance(history["epochs"], list):
        raise InputError(f"{path}: epochs is not a list")
    loss_key, accuracy_key, _ = held_out(history)
    for entry in history["epochs"]:
        if not isinstance(entry, dict) or any(k not in entry for k in (
                "epoch", "avg_loss", loss_key, "accuracy", accuracy_key)):
            raise InputError(f"{path}: an epoch entry lacks the figures the curves need")
    if sha256_file(model_path) not in history.get("files_sha256", {}).values():
        return None, ("The history.json beside the model comes from another or an unfinished run, "
                      "so its curves are not drawn here.")
    return history, ""


def export_for(model_path: Path, export_json: Path | None) -> tuple[dict | None, str]:
    """The export table, if export.json describes this very model file."""
    if export_json is None or not export_json.is_file():
        return None, ""
    summary = read_json(export_json, "export table (export.json)", ("artifacts",))
    for artifact in summary["artifacts"]:
        if not isinstance(artifact, dict) or any(k not in artifact for k in (
                "artifact", "path", "size_bytes", "accuracy", "seconds_per_image")):
            raise InputError(f"{export_json}: an artifact entry lacks the table's figures")
    if summary.get("source_model_sha256") != sha256_file(model_path):
        return None, (f"{export_json} describes the export of another model, so its table is not "
                      "shown here; run mnist-export --model with this model.")
    return summary, ""


def read_model(model_path: Path, dataset: Data) -> dict:
    """What the report shows of the model on the test split: its inner outputs, the metrics,
    the mistakes it is surest of, the 2-D projection of its features, the names of the classes."""
    images, labels = dataset.x_test, dataset.y_test
    inner = inner_outputs(keras_file.load_keras(model_path), images)
    probabilities = classifiers.as_probabilities(inner["logits"])
    points, explained = pca(inner["dense"])
    noun, names = class_names(dataset.source)
    return {"inner": inner, "test": metrics(labels, probabilities.argmax(axis=1)),
            "mistakes": mistakes(probabilities, labels), "points": points, "explained": explained,
            "noun": noun, "names": names}


def draw_figures(folder: Path, seen: dict, history: dict | None, dataset: Data, index: int) -> None:
    """Every figure's PNG into folder (read_model's `seen`; curves only with a history of epochs)."""
    images, labels = dataset.x_test, dataset.y_test
    inner, noun, names = seen["inner"], seen["noun"], seen["names"]
    if history and history["epochs"]:
        plot_training_curves(history, folder)
    plot_confusion(seen["test"], noun, names, folder)
    if seen["mistakes"]:
        plot_mistakes(images, seen["mistakes"], names, folder)
    plot_filters(inner["conv1"], folder)
    plot_feature_maps(
        images[index], f"a {names[int(labels[index])]}" if noun == "digit" else names[int(labels[index])],
        inner["pool1"][index], inner["pool2"][index], folder)
    plot_embedding(seen["points"], labels, seen["explained"], noun, names, folder)


def write_report(model_path: str | Path, dataset: Data, export_json: str | Path | None = "export/export.json",
                 feature_map_index: int = 0, progress: Callable[[str], None] = lambda line: None) -> Path:
    """Draws everything into a temporary folder, then swaps it in: never half a report.

    Returns the path of report.html. dataset: its test split is what the report shows.
    """
    model_path = Path(model_path)
    final = report_folder(model_path)
    if final.exists() and not final.is_dir():
        raise InputError(f"{final}: exists and is not a folder")
    images = dataset.x_test
    if not 0 <= feature_map_index < len(images):
        raise InputError(f"--feature_map_index={feature_map_index}: there are {len(images)} test images")
    history, curves_note = history_for(model_path)  # bad JSON fails here, before the model loads
    export_json = Path(export_json) if export_json else None
    export, export_note = export_for(model_path, export_json)

    start = time.monotonic()
    seen = read_model(model_path, dataset)
    inner, result, shown, explained = seen["inner"], seen["test"], seen["mistakes"], seen["explained"]
    noun, names, index = seen["noun"], seen["names"], feature_map_index
    progress(f"{model_path} on {len(images)} test images: {time.monotonic() - start:.0f} s")
    start = time.monotonic()

    def build(partial: Path) -> None:
        draw_figures(partial, seen, history, dataset, index)
        record = {
            "model": str(model_path), "data": dataset.source, "noun": noun, "names": names,
            "written_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "test": result, "mistakes": shown, "feature_map_index": index,
            "feature_map_shapes": {"pool1": list(inner["pool1"].shape[1:]),
                                   "pool2": list(inner["pool2"].shape[1:])},
            "pca_explained_variance": explained.tolist(),
            "figures": sorted(p.name for p in partial.glob("*.png")),
            "held_out": held_out(history)[2] if history else None,
            "curves_note": curves_note, "export": export, "export_note": export_note,
            "export_path": str(export_json) if export_json else "",
        }
        record["explain_page"], record["explain_note"] = explain_page(final, export_json, export is not None)
        progress(f"figures drawn: {time.monotonic() - start:.0f} s")
        (partial / "report.json").write_text(json.dumps(record, indent=2) + "\n")
        (partial / "report.html").write_text(render_html(record, {n: n for n in record["figures"]}))

    publish(final.parent, {final.name: build})  # drawn under a partial name, then swapped in: never half a report
    return final / "report.html"
