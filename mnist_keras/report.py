"""What the network learned, as pictures: an HTML report beside the model.

    python -m mnist_keras.report [--model saved_models/mnist.keras]

Writes <model folder>/<model name>_report/ (e.g. saved_models/mnist_report/) holding
report.html, the PNGs it shows and report.json (the numbers behind them), and prints the
path of report.html. It opens offline: the images sit beside it.

- training curves: average loss and accuracy per epoch, training against test (history.json)
- the confusion matrix over the test set, and per-class precision and recall
- the most confident mistakes
- the 32 first-layer kernels, and the feature maps of one digit after each conv stage
- the 128-dimensional features of the test set projected to 2-D (PCA), by digit
- the export table, if python -m mnist_keras.export has run
"""

from __future__ import annotations

import datetime
import html
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from absl import flags

from mnist_keras import cli
from mnist_keras.data import NUM_CLASSES
from mnist_keras.errors import InputError

DPI = 100
# file: (width, height) in inches; at DPI, the PNG's size in pixels
FIGURES = {
    "training_curves.png": (11, 4),
    "confusion_matrix.png": (13, 5.5),
    "mistakes.png": (9, 10),
    "filters.png": (8, 4.6),
    "feature_maps.png": (13, 7.5),
    "embedding.png": (8, 7),
}
MISTAKES_SHOWN = 36
DIGIT_COLOURS = "tab10"
FASHION = ["T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle boot"]
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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def _figure(name: str):
    return _pyplot().figure(figsize=FIGURES[name], dpi=DPI)


def _save(fig, folder: Path, name: str) -> None:
    fig.savefig(folder / name, dpi=DPI)  # no bbox_inches="tight": the size stays as declared
    _pyplot().close(fig)


# --- Numbers ----------------------------------------------------------------------------

def mistakes(probabilities: np.ndarray, labels: np.ndarray, limit: int = MISTAKES_SHOWN) -> list[dict]:
    """The misclassified test images, most confident first: the ones worth looking at."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:limit]
    return [{"index": int(i), "true": int(labels[i]), "predicted": int(predicted[i]),
             "confidence": float(probabilities[i, predicted[i]])} for i in order]


def inner_outputs(model, images: np.ndarray) -> dict[str, np.ndarray]:
    """pool1 [N, 14, 14, 32], pool2 [N, 7, 7, 64], dense [N, 128] and logits, in one pass."""
    import keras

    names = ["pool1", "pool2", "dense", "logits"]
    try:
        outputs = [model.get_layer(name).output for name in names]
    except ValueError as e:
        raise InputError(f"the model lacks a layer this report draws ({e}); it needs this "
                         "project's CNN (conv1, pool1, conv2, pool2, dense, logits)") from None
    probe = keras.Model(model.inputs, outputs)
    scaled = images[..., None].astype(np.float32) / 255.0
    values = dict(zip(names, probe.predict(scaled, batch_size=1000, verbose=0)))
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


# --- Figures ------------------------------------------------------------------------------

def plot_training_curves(history: dict, folder: Path) -> dict:
    epochs = [e["epoch"] for e in history["epochs"]]
    fig = _figure("training_curves.png")
    loss, accuracy = fig.subplots(1, 2)
    loss.plot(epochs, [e["avg_loss"] for e in history["epochs"]], "o-", label="training (during the epoch)")
    loss.plot(epochs, [e["test_avg_loss"] for e in history["epochs"]], "s-", label="test (end of epoch)")
    loss.set(title="Average loss per epoch", xlabel="epoch", ylabel="cross-entropy (mean over batches)")
    accuracy.plot(epochs, [e["accuracy"] for e in history["epochs"]], "o-", label="training (during the epoch)")
    accuracy.plot(epochs, [e["test_accuracy"] for e in history["epochs"]], "s-", label="test (end of epoch)")
    accuracy.set(title="Accuracy per epoch", xlabel="epoch", ylabel="accuracy (%)")
    for axes in (loss, accuracy):
        axes.set_xticks(epochs)
        axes.grid(alpha=0.3)
        axes.legend()
    fig.tight_layout()
    drawn = {"lines": [list(line.get_ydata()) for axes in (loss, accuracy) for line in axes.get_lines()]}
    _save(fig, folder, "training_curves.png")
    return drawn


def plot_confusion(result: dict, noun: str, names: list[str], folder: Path) -> dict:
    """Returns the counts written in the cells, read back from the figure."""
    from matplotlib.colors import LogNorm

    confusion = np.array(result["confusion_matrix"])
    fig = _figure("confusion_matrix.png")
    matrix, rates = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    # Log colour scale: the diagonal holds ~1,000 per cell, the mistakes 0-10.
    norm = LogNorm(vmin=1, vmax=confusion.max() + 1)
    image = matrix.imshow(confusion + 1, cmap="Blues", norm=norm)
    for (row, col), count in np.ndenumerate(confusion):
        if count:
            dark = norm(count + 1) > 0.6
            matrix.text(col, row, str(count), ha="center", va="center", fontsize=9,
                        color="white" if dark else "black")
    matrix.set(title=f"Confusion matrix ({result['total']} test images)", xlabel=f"predicted {noun}",
               ylabel=f"true {noun}", xticks=range(NUM_CLASSES), yticks=range(NUM_CLASSES))
    matrix.set_xticklabels(names, rotation=45 if noun == "class" else 0, ha="right" if noun == "class" else "center")
    matrix.set_yticklabels(names)
    fig.colorbar(image, ax=matrix, label="number of images (log scale)", fraction=0.046)
    classes = np.arange(NUM_CLASSES)
    precision = [100 * (c["precision"] or 0) for c in result["per_class"]]
    recall = [100 * (c["recall"] or 0) for c in result["per_class"]]
    # Dots on an axis that fits them: bars from 0 would hide 98% against 99.5%.
    rates.plot(classes, precision, "o", markersize=8, label="precision: of those read as it, right")
    rates.plot(classes, recall, "s", markersize=7, label="recall: of those it is, found")
    low = min(precision + recall)
    rates.set(title=f"Per-{noun} precision and recall", xlabel=noun, ylabel="%", xticks=classes,
              ylim=(max(0.0, low - (100 - low) * 0.15 - 0.1), 100.05))
    rates.set_xticklabels(names, rotation=45 if noun == "class" else 0, ha="right" if noun == "class" else "center")
    rates.grid(alpha=0.3)
    rates.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14 if noun == "digit" else -0.3), ncol=1,
                 fontsize=9)
    fig.tight_layout()
    cells = {(int(round(t.get_position()[1])), int(round(t.get_position()[0]))): int(t.get_text())
             for t in matrix.texts}
    _save(fig, folder, "confusion_matrix.png")
    return {"cells": cells}


def plot_mistakes(images: np.ndarray, shown: list[dict], names: list[str], folder: Path) -> dict:
    """Returns the images drawn in the tiles, in order, read back from the figure."""
    fig = _figure("mistakes.png")
    grid = fig.subplots(6, 6)
    for axes in grid.flat:
        axes.axis("off")
    for axes, mistake in zip(grid.flat, shown):
        axes.imshow(images[mistake["index"]], cmap="gray_r")
        axes.set_title(f"#{mistake['index']}: {names[mistake['true']]}, read as\n"
                       f"{names[mistake['predicted']]} ({100 * mistake['confidence']:.1f}% sure)", fontsize=8)
    fig.suptitle("The most confident mistakes (true label, what the model read, its confidence)")
    fig.tight_layout()
    tiles = [np.asarray(axes.images[0].get_array()) for axes in grid.flat if axes.images]
    _save(fig, folder, "mistakes.png")
    return {"tiles": tiles}


def plot_filters(kernels: np.ndarray, folder: Path) -> dict:
    """kernels: conv1's [3, 3, 1, 32]; red excites, blue inhibits."""
    fig = _figure("filters.png")
    limit = np.abs(kernels).max()
    grid = fig.subplots(4, 8)
    for i, axes in enumerate(grid.flat):
        image = axes.imshow(kernels[:, :, 0, i], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes.set_title(f"filter {i}", fontsize=8)
        axes.axis("off")
    fig.suptitle("First layer: the 32 learned 3x3 kernels (red: a bright pixel there adds, blue: subtracts)")
    fig.colorbar(image, ax=grid.ravel().tolist(), fraction=0.02, label="weight")
    drawn = {"kernels": [np.asarray(axes.images[0].get_array()) for axes in grid.flat]}
    _save(fig, folder, "filters.png")
    return drawn


def plot_feature_maps(image: np.ndarray, label: str, pool1: np.ndarray, pool2: np.ndarray,
                      folder: Path) -> dict:
    """Returns the shape of each map drawn, per stage, read back from the figure."""
    fig = _figure("feature_maps.png")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 0.9])
    left, first = top.subfigures(1, 2, width_ratios=[1, 3])
    axes = left.subplots()
    axes.imshow(image, cmap="gray")
    axes.set_title(f"input: {label}, 28x28")
    axes.axis("off")
    drawn = {}
    for stage, panel, maps, title in [
            ("pool1", first, pool1, "after conv1 + ReLU + max-pool: 32 maps of 14x14 (edges and strokes)"),
            ("pool2", bottom, pool2, "after conv2 + ReLU + max-pool: 64 maps of 7x7 (larger parts)")]:
        grid = panel.subplots(4, maps.shape[-1] // 4)
        top_value = float(maps.max()) or 1.0  # one scale per stage: a weak map looks weak
        for i, axes in enumerate(grid.flat):
            shown = axes.imshow(maps[:, :, i], cmap="viridis", vmin=0, vmax=top_value)
            axes.axis("off")
        panel.colorbar(shown, ax=grid.ravel().tolist(), fraction=0.015, label="activation")
        panel.suptitle(title, fontsize=11)
        drawn[stage] = [np.asarray(a.images[0].get_array()).shape for a in grid.flat]
    _save(fig, folder, "feature_maps.png")
    return drawn


def plot_embedding(points: np.ndarray, labels: np.ndarray, explained: np.ndarray, noun: str,
                   names: list[str], folder: Path) -> dict:
    plt = _pyplot()
    fig = _figure("embedding.png")
    axes = fig.subplots()
    colours = plt.get_cmap(DIGIT_COLOURS)
    size = float(np.clip(30_000 / len(labels), 3, 40))  # small sets get bigger dots
    for c in range(NUM_CLASSES):
        chosen = labels == c
        axes.scatter(points[chosen, 0], points[chosen, 1], s=size, alpha=0.5, color=colours(c),
                     label=names[c], rasterized=True)
    axes.set(title=f"The dense layer's 128 features of {len(labels)} test images, projected to 2-D (PCA)",
             xlabel=f"first principal component ({100 * explained[0]:.0f}% of variance)",
             ylabel=f"second principal component ({100 * explained[1]:.0f}% of variance)")
    axes.legend(title=noun, markerscale=max(1.0, 12 / size), loc="best")
    axes.title.set_fontsize(10)
    fig.tight_layout()
    drawn = {"points": sum(len(c.get_offsets()) for c in axes.collections)}
    _save(fig, folder, "embedding.png")
    return drawn


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
        figure("training_curves.png", "Training curves",
               "The average loss (total loss / number of batches) and the accuracy of each epoch: on "
               "the training images, averaged while the network was still learning during the epoch, "
               "and on the test images it never trained on, measured at the epoch's end. Where the "
               "training loss falls below the test loss, the network starts to fit its training set "
               "more closely than new images.")
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
           f"Test image #{record['feature_map_digit']} after each convolution stage, on one colour "
           "scale per stage. The first stage lights up edges and strokes; the second, after "
           "pooling, responds to larger parts of the shape.")
    figure("embedding.png", f"How the network arranges {noun}s",
           "The 128 numbers the network computes for each image just before its decision, "
           "squeezed to two dimensions (PCA). Images of one class gather together: that is what "
           "makes them easy to tell apart for the last layer.")
    if record.get("export"):
        sections.append(f"<h2>Exported models</h2><p>From <code>{html.escape(record['export_path'])}"
                        "</code>: each artifact checked on the test set against this Keras model.</p>"
                        + _table(["artifact", "file", "size", "test accuracy", "change", "time/image", "bar"],
                                 export_rows(record["export"])))
    elif record.get("export_note"):
        sections.append(f"<h2>Exported models</h2><p>{html.escape(record['export_note'])}</p>")
    style = ("body{font-family:system-ui,sans-serif;max-width:84rem;margin:2rem auto;padding:0 1rem;"
             "color:#222}img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;"
             "margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:right}"
             "p.meta{color:#555}code{background:#f3f3f3;padding:0 .2rem}")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>mnist-keras report</title>"
            f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n")


# --- Putting it together ------------------------------------------------------------------

def report_folder(model_path: Path) -> Path:
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
    for entry in history["epochs"]:
        if not isinstance(entry, dict) or any(k not in entry for k in (
                "epoch", "avg_loss", "test_avg_loss", "accuracy", "test_accuracy")):
            raise InputError(f"{path}: an epoch entry lacks the figures the curves need")
    if sha256_file(model_path) not in history.get("files_sha256", {}).values():
        return None, ("The history.json beside the model comes from another or an unfinished run, "
                      "so its curves are not drawn here.")
    return history, ""


def sha256_file(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export_for(model_path: Path, export_json: Path | None) -> tuple[dict | None, str]:
    if export_json is None or not export_json.is_file():
        return None, ""
    summary = read_json(export_json, "export table (export.json)", ("artifacts",))
    for artifact in summary["artifacts"]:
        if not isinstance(artifact, dict) or any(k not in artifact for k in (
                "artifact", "path", "size_bytes", "accuracy", "seconds_per_image")):
            raise InputError(f"{export_json}: an artifact entry lacks the table's figures")
    if summary.get("source_model_sha256") != sha256_file(model_path):
        return None, (f"{export_json} describes the export of another model, so its table is not "
                      "shown here; run python -m mnist_keras.export --model with this model.")
    return summary, ""


def write_report(model_path: str | Path, dataset, export_json: str | Path | None = "export/export.json",
                 feature_map_digit: int = 0) -> Path:
    """Draws everything into a temporary folder, then swaps it in: never half a report."""
    from mnist_keras import evaluate
    from mnist_keras.verify import are_probabilities, softmax

    model_path = Path(model_path)
    final = report_folder(model_path)
    if final.exists() and not final.is_dir():
        raise InputError(f"{final}: exists and is not a folder")
    images, labels = dataset.x_test, dataset.y_test
    if not 0 <= feature_map_digit < len(images):
        raise InputError(f"--feature_map_digit={feature_map_digit}: there are {len(images)} test images")
    history, curves_note = history_for(model_path)  # bad JSON fails here, before the model loads
    export_json = Path(export_json) if export_json else None
    export, export_note = export_for(model_path, export_json)

    model = evaluate.load_model(model_path)
    inner = inner_outputs(model, images)
    logits = inner["logits"]
    probabilities = logits if are_probabilities(logits) else softmax(logits)
    result = evaluate.metrics(labels, probabilities.argmax(axis=1))
    shown = mistakes(probabilities, labels)
    points, explained = pca(inner["dense"])
    noun, names = class_names(dataset.source)

    partial = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=model_path.parent))
    try:
        if history and history["epochs"]:
            plot_training_curves(history, partial)
        plot_confusion(result, noun, names, partial)
        if shown:
            plot_mistakes(images, shown, names, partial)
        plot_filters(inner["conv1"], partial)
        digit = feature_map_digit
        plot_feature_maps(
            images[digit], f"a {names[int(labels[digit])]}" if noun == "digit" else names[int(labels[digit])],
            inner["pool1"][digit], inner["pool2"][digit], partial)
        plot_embedding(points, labels, explained, noun, names, partial)
        record = {
            "model": str(model_path), "data": dataset.source, "noun": noun, "names": names,
            "written_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "test": result, "mistakes": shown, "feature_map_digit": digit,
            "feature_map_shapes": {"pool1": list(inner["pool1"].shape[1:]),
                                   "pool2": list(inner["pool2"].shape[1:])},
            "pca_explained_variance": explained.tolist(),
            "figures": sorted(p.name for p in partial.glob("*.png")),
            "curves_note": curves_note, "export": export, "export_note": export_note,
            "export_path": str(export_json) if export_json else "",
        }
        (partial / "report.json").write_text(json.dumps(record, indent=2) + "\n")
        (partial / "report.html").write_text(render_html(record, {n: n for n in record["figures"]}))
        os.chmod(partial, 0o777 & ~_umask())
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=model_path.parent))
            os.rename(final, old / final.name)
            os.rename(partial, final)
            shutil.rmtree(old)
        else:
            os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final / "report.html"


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv  # unused
    from mnist_keras import data, evaluate

    model_path = evaluate.check_keras_file(FLAGS.model)
    if not os.access(model_path.parent, os.W_OK | os.X_OK):
        raise InputError(f"{model_path.parent}: folder is not writable; the report goes beside the model")
    if FLAGS["export_json"].present and not Path(FLAGS.export_json).is_file():
        raise InputError(f"--export_json={FLAGS.export_json}: no such file")
    data_dir, tfds_name = FLAGS.data_dir, FLAGS.tfds
    history, _ = history_for(model_path)
    if history and not (data_dir or tfds_name):  # the data the model was trained on
        data_dir, tfds_name = history["settings"].get("data_dir"), history["settings"].get("tfds")
    dataset = data.take(data.load(data_dir, tfds_name), test_examples=FLAGS.test_examples)
    path = write_report(model_path, dataset, FLAGS.export_json, FLAGS.feature_map_digit)
    print(path)


def define_flags() -> None:
    flags.DEFINE_string("model", "saved_models/mnist.keras", "The trained .keras model to report on.")
    flags.DEFINE_string("export_json", "export/export.json",
                        "The export table to include, if it describes this model.")
    flags.DEFINE_integer("feature_map_digit", 0, "Which test image the feature maps show.",
                         lower_bound=0)
    cli.define_data_flags()
    flags.adopt_module_key_flags(cli)


def cli_main() -> None:
    """The `mnist-report` console script and `python -m mnist_keras.report`."""
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
