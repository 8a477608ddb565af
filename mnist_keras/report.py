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
    values = probe.predict(scaled, batch_size=1000, verbose=0)
    return dict(zip(names, values))


def pca(features: np.ndarray, components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Projection onto the directions of largest variance, and the share each explains."""
    centred = features - features.mean(axis=0)
    _, singular, directions = np.linalg.svd(centred, full_matrices=False)
    explained = singular ** 2 / np.sum(singular ** 2)
    return centred @ directions[:components].T, explained[:components]


# --- Figures ------------------------------------------------------------------------------

def plot_training_curves(history: dict, folder: Path) -> None:
    epochs = [e["epoch"] for e in history["epochs"]]
    fig = _figure("training_curves.png")
    loss, accuracy = fig.subplots(1, 2)
    loss.plot(epochs, [e["avg_loss"] for e in history["epochs"]], "o-", label="training")
    loss.plot(epochs, [e["test_avg_loss"] for e in history["epochs"]], "s-", label="test")
    loss.set(title="Average loss per epoch", xlabel="epoch", ylabel="cross-entropy (mean over batches)")
    accuracy.plot(epochs, [e["accuracy"] for e in history["epochs"]], "o-", label="training")
    accuracy.plot(epochs, [e["test_accuracy"] for e in history["epochs"]], "s-", label="test")
    accuracy.set(title="Accuracy per epoch", xlabel="epoch", ylabel="accuracy (%)")
    for axes in (loss, accuracy):
        axes.set_xticks(epochs)
        axes.grid(alpha=0.3)
        axes.legend()
    fig.tight_layout()
    _save(fig, folder, "training_curves.png")


def plot_confusion(result: dict, folder: Path) -> None:
    confusion = np.array(result["confusion_matrix"])
    fig = _figure("confusion_matrix.png")
    matrix, rates = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    # Log colour scale: the diagonal holds ~1,000 per cell, the mistakes 0-10.
    from matplotlib.colors import LogNorm

    image = matrix.imshow(confusion + 1, cmap="Blues", norm=LogNorm(vmin=1, vmax=confusion.max() + 1))
    for (row, col), count in np.ndenumerate(confusion):
        if count:
            matrix.text(col, row, str(count), ha="center", va="center", fontsize=8,
                        color="white" if row == col else "black")
    matrix.set(title=f"Confusion matrix ({result['total']} test images)", xlabel="predicted digit",
               ylabel="true digit", xticks=range(NUM_CLASSES), yticks=range(NUM_CLASSES))
    fig.colorbar(image, ax=matrix, label="images + 1 (log scale)", fraction=0.046)
    classes = np.arange(NUM_CLASSES)
    precision = [100 * (c["precision"] or 0) for c in result["per_class"]]
    recall = [100 * (c["recall"] or 0) for c in result["per_class"]]
    rates.bar(classes - 0.2, precision, width=0.4, label="precision")
    rates.bar(classes + 0.2, recall, width=0.4, label="recall")
    rates.set(title="Per-class precision and recall", xlabel="digit", ylabel="%",
              xticks=classes, ylim=(min(precision + recall) - 1, 100.2))
    rates.grid(axis="y", alpha=0.3)
    rates.legend(loc="lower right")
    fig.tight_layout()
    _save(fig, folder, "confusion_matrix.png")


def plot_mistakes(images: np.ndarray, shown: list[dict], folder: Path) -> None:
    fig = _figure("mistakes.png")
    grid = fig.subplots(6, 6)
    for axes in grid.flat:
        axes.axis("off")
    for axes, mistake in zip(grid.flat, shown):
        axes.imshow(images[mistake["index"]], cmap="gray_r")
        axes.set_title(f"#{mistake['index']}: {mistake['true']} read as {mistake['predicted']}\n"
                       f"{100 * mistake['confidence']:.0f}% sure", fontsize=8)
    fig.suptitle("The most confident mistakes (true digit, what the model read, its confidence)")
    fig.tight_layout()
    _save(fig, folder, "mistakes.png")


def plot_filters(kernels: np.ndarray, folder: Path) -> None:
    """kernels: conv1's [3, 3, 1, 32]; red excites, blue inhibits."""
    fig = _figure("filters.png")
    limit = np.abs(kernels).max()
    grid = fig.subplots(4, 8)
    for i, axes in enumerate(grid.flat):
        image = axes.imshow(kernels[:, :, 0, i], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes.set_title(f"filter {i}", fontsize=8)
        axes.axis("off")
    fig.suptitle("First layer: the 32 learned 3x3 kernels (red: bright pixel adds, blue: subtracts)")
    fig.colorbar(image, ax=grid.ravel().tolist(), fraction=0.02, label="weight")
    _save(fig, folder, "filters.png")


def plot_feature_maps(image: np.ndarray, label: int, pool1: np.ndarray, pool2: np.ndarray,
                      folder: Path) -> None:
    fig = _figure("feature_maps.png")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 0.9])
    left, first = top.subfigures(1, 2, width_ratios=[1, 3])
    axes = left.subplots()
    axes.imshow(image, cmap="gray")
    axes.set_title(f"input: a {label}, 28x28")
    axes.axis("off")
    for panel, maps, rows, title in [
            (first, pool1, 4, "after conv1 + ReLU + max-pool: 32 maps of 14x14 (edges and strokes)"),
            (bottom, pool2, 4, "after conv2 + ReLU + max-pool: 64 maps of 7x7 (larger parts of the digit)")]:
        grid = panel.subplots(rows, maps.shape[-1] // rows)
        for i, axes in enumerate(grid.flat):
            axes.imshow(maps[:, :, i], cmap="viridis")
            axes.axis("off")
        panel.suptitle(title, fontsize=11)
    _save(fig, folder, "feature_maps.png")


def plot_embedding(points: np.ndarray, labels: np.ndarray, explained: np.ndarray,
                   folder: Path) -> None:
    plt = _pyplot()
    fig = _figure("embedding.png")
    axes = fig.subplots()
    colours = plt.get_cmap(DIGIT_COLOURS)
    for digit in range(NUM_CLASSES):
        chosen = labels == digit
        axes.scatter(points[chosen, 0], points[chosen, 1], s=3, alpha=0.5, color=colours(digit),
                     label=str(digit), rasterized=True)
    axes.set(title=f"The dense layer's 128 features of {len(labels)} test images, projected to 2-D (PCA)",
             xlabel=f"first principal component ({100 * explained[0]:.0f}% of variance)",
             ylabel=f"second principal component ({100 * explained[1]:.0f}% of variance)")
    axes.legend(title="digit", markerscale=4, loc="best")
    axes.title.set_fontsize(10)
    fig.tight_layout()
    _save(fig, folder, "embedding.png")


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
                     f"{a['accuracy']:.2f}%", "" if a["change"] is None else f"{a['change']:+.2f}",
                     f"{a['seconds_per_image'] * 1e6:.0f} us",
                     "" if a["passed"] is None else ("ok" if a["passed"] else "FAILED")])
    return rows


def render_html(record: dict, images: dict[str, str]) -> str:
    result = record["test"]
    sections = [f"<h1>What the network learned</h1><p class=meta>Model <code>{html.escape(record['model'])}</code>, "
                f"{result['accuracy']:.2f}% on {result['total']} test images of "
                f"{html.escape(record['data'])} ({result['correct']} correct). Written "
                f"{html.escape(record['written_at'])}.</p>"]

    def figure(name: str, heading: str, text: str) -> None:
        if name in images:
            sections.append(f"<h2>{heading}</h2><p>{text}</p>"
                            f"<img src=\"{html.escape(name)}\" alt=\"{html.escape(heading)}\">")

    figure("training_curves.png", "Training curves",
           "The average loss (total loss / number of batches) and the accuracy of each epoch: on "
           "the training images, averaged while the network was still learning during the epoch, "
           "and on the test images it never trained on, measured at the epoch's end. Where the "
           "training loss falls below the test loss, the network starts to fit its training set "
           "more closely than new digits.")
    if "training_curves.png" not in images:
        sections.append("<h2>Training curves</h2><p>No <code>history.json</code> beside the model, "
                        "so there are no curves to draw.</p>")
    figure("confusion_matrix.png", "Confusion matrix",
           "Each row is the true digit, each column what the network read. The diagonal is right; "
           "every other count is a mistake, and which digits it confuses says what is hard.")
    sections.append(_table(["digit", "precision", "recall", "test images"], [
        [c["class"], "-" if c["precision"] is None else f"{100 * c['precision']:.2f}%",
         "-" if c["recall"] is None else f"{100 * c['recall']:.2f}%", c["support"]]
        for c in result["per_class"]]))
    figure("mistakes.png", "Mistakes",
           f"The {len(record['mistakes'])} mistakes the network was most sure of, of "
           f"{result['total'] - result['correct']}. Many are digits a person would hesitate over too.")
    figure("filters.png", "What the first layer looks for",
           "Each of the 32 first-layer filters is a 3x3 pattern of weights. Nobody designed them: "
           "training found edge and stroke detectors of different directions by itself.")
    figure("feature_maps.png", "What the filters see",
           f"Test digit #{record['feature_map_digit']} after each convolution stage. The first stage "
           "lights up edges and strokes; the second, after pooling, responds to larger parts of the digit.")
    figure("embedding.png", "How the network arranges digits",
           "The 128 numbers the network computes for each image just before its decision, "
           "squeezed to two dimensions. Digits of one kind gather together: that is what makes "
           "them easy to tell apart for the last layer.")
    if record.get("export"):
        sections.append("<h2>Exported models</h2><p>From <code>export/export.json</code>: each artifact "
                        "checked on the test set against the Keras model.</p>" + _table(
                            ["artifact", "file", "size", "test accuracy", "change", "time/image", "bar"],
                            export_rows(record["export"])))
    style = ("body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;"
             "color:#222}img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;"
             "margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:right}"
             "p.meta{color:#555}code{background:#f3f3f3;padding:0 .2rem}")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>mnist-keras report</title>"
            f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n")


# --- Putting it together ------------------------------------------------------------------

def report_folder(model_path: Path) -> Path:
    return model_path.parent / f"{model_path.stem}_report"


def write_report(model_path: str | Path, dataset, export_json: str | Path | None = "export/export.json",
                 feature_map_digit: int = 0) -> Path:
    """Draws everything into a temporary folder, then swaps it in: never half a report."""
    from mnist_keras import evaluate

    model_path = Path(model_path)
    model = evaluate.load_model(model_path)
    final = report_folder(model_path)
    if final.exists() and not final.is_dir():
        raise InputError(f"{final}: exists and is not a folder")
    images, labels = dataset.x_test, dataset.y_test
    if not 0 <= feature_map_digit < len(images):
        raise InputError(f"--feature_map_digit={feature_map_digit}: there are {len(images)} test images")

    inner = inner_outputs(model, images)
    from mnist_keras.verify import softmax

    probabilities = softmax(inner["logits"])
    result = evaluate.metrics(labels, probabilities.argmax(axis=1))
    shown = mistakes(probabilities, labels)
    points, explained = pca(inner["dense"])
    history_path = model_path.parent / "history.json"
    history = json.loads(history_path.read_text()) if history_path.is_file() else None
    export = None
    if export_json and Path(export_json).is_file():
        export = json.loads(Path(export_json).read_text())

    partial = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=model_path.parent))
    try:
        if history and history.get("epochs"):
            plot_training_curves(history, partial)
        plot_confusion(result, partial)
        plot_mistakes(images, shown, partial)
        plot_filters(model.get_layer("conv1").get_weights()[0], partial)
        digit = feature_map_digit
        plot_feature_maps(images[digit], int(labels[digit]), inner["pool1"][digit],
                          inner["pool2"][digit], partial)
        plot_embedding(points, labels, explained, partial)
        record = {
            "model": str(model_path), "data": dataset.source,
            "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "test": result, "mistakes": shown, "feature_map_digit": digit,
            "feature_map_shapes": {"pool1": list(inner["pool1"].shape[1:]),
                                   "pool2": list(inner["pool2"].shape[1:])},
            "pca_explained_variance": explained.tolist(),
            "figures": sorted(p.name for p in partial.glob("*.png")),
            "export": export,
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
    dataset = data.take(data.load(FLAGS.data_dir, FLAGS.tfds), test_examples=FLAGS.test_examples)
    path = write_report(model_path, dataset, FLAGS.export_json, FLAGS.feature_map_digit)
    print(path)


def define_flags() -> None:
    flags.DEFINE_string("model", "saved_models/mnist.keras", "The trained .keras model to report on.")
    flags.DEFINE_string("export_json", "export/export.json",
                        "The export table to include, if the file exists.")
    flags.DEFINE_integer("feature_map_digit", 0, "Which test image the feature maps show.",
                         lower_bound=0)
    cli.define_data_flags()
    flags.adopt_module_key_flags(cli)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
