"""The report's figures, each drawn to a PNG of a fixed size; each returns what it drew,
read back from the figure, so tests can check the picture shows what it claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import NUM_CLASSES

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
DIGIT_COLOURS = "tab10"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def _figure(name: str) -> Any:
    return _pyplot().figure(figsize=FIGURES[name], dpi=DPI)


def _save(fig: Any, folder: Path, name: str) -> None:
    fig.savefig(folder / name, dpi=DPI)  # no bbox_inches="tight": the size stays as declared
    _pyplot().close(fig)


def held_out(history: dict) -> tuple[str, str, str]:
    """The per-epoch keys of the held-out figures and what they were measured on.

    Runs now measure each epoch on a validation split (val_avg_loss, val_accuracy); older
    history.json files measured it on the test set (test_avg_loss, test_accuracy).
    """
    epochs = history.get("epochs") or []
    if epochs and all(isinstance(e, dict) and "val_accuracy" in e and "val_avg_loss" in e for e in epochs):
        return "val_avg_loss", "val_accuracy", "validation"
    return "test_avg_loss", "test_accuracy", "test"


def plot_training_curves(history: dict, folder: Path) -> dict:
    """Loss and accuracy per epoch, training against held-out; returns the lines drawn."""
    loss_key, accuracy_key, held = held_out(history)
    epochs = [e["epoch"] for e in history["epochs"]]
    fig = _figure("training_curves.png")
    loss, accuracy = fig.subplots(1, 2)
    loss.plot(epochs, [e["avg_loss"] for e in history["epochs"]], "o-", label="training (during the epoch)")
    loss.plot(epochs, [e[loss_key] for e in history["epochs"]], "s-", label=f"{held} (end of epoch)")
    loss.set(title="Average loss per epoch", xlabel="epoch", ylabel="cross-entropy (mean over batches)")
    accuracy.plot(epochs, [e["accuracy"] for e in history["epochs"]], "o-", label="training (during the epoch)")
    accuracy.plot(epochs, [e[accuracy_key] for e in history["epochs"]], "s-", label=f"{held} (end of epoch)")
    accuracy.set(title="Accuracy per epoch", xlabel="epoch", ylabel="accuracy (%)")
    for axes in (loss, accuracy):
        axes.set_xticks(epochs)
        axes.grid(alpha=0.3)
        axes.legend()
    fig.tight_layout()
    lines = [line for axes in (loss, accuracy) for line in axes.get_lines()]
    drawn = {"lines": [list(line.get_ydata()) for line in lines], "labels": [line.get_label() for line in lines]}
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
