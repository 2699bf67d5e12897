"""Figures for evaluation reports.

Drawn on a bare `matplotlib.figure.Figure` with the Agg canvas, so plotting works on headless machines and never
changes the global pyplot backend of the process that imports this module.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def row_normalize(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the per-class recall on the diagonal); empty rows stay 0."""
    matrix = np.asarray(matrix, dtype=np.float64)
    row_sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, row_sums, out=np.zeros_like(matrix), where=row_sums > 0)


def plot_confusion_matrix(
    matrix: np.ndarray,
    label_names: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Save a confusion matrix as PNG: label names on both axes, the count in every cell, colours row-normalized.

    Colouring by row share rather than by raw count keeps rare classes readable on imbalanced corpora
    (e.g. 1,180 "cry" clips next to 6 "sigh" clips): a cell's colour is the fraction of the true class
    predicted as that column.

    Args:
        matrix: counts of shape `(num_labels, num_labels)`, rows = true class, columns = predicted class
            (as from `voc2vec.metrics.confusion_matrix`).
        label_names: one name per class, in class-id order.
        path: output file; parent folders are created.
        title: optional figure title.

    Returns:
        The path written.
    """
    matrix = np.asarray(matrix)
    num_labels = len(label_names)
    if matrix.shape != (num_labels, num_labels):
        raise ValueError(f"Confusion matrix of shape {matrix.shape} does not match {num_labels} label names.")
    shares = row_normalize(matrix)

    side = max(4.0, 0.6 * num_labels + 2.0)
    figure = Figure(figsize=(side + 1.0, side))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of true class")

    axes.set_xticks(np.arange(num_labels), labels=label_names, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(np.arange(num_labels), labels=label_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if title:
        axes.set_title(title)

    font_size = 9 if num_labels <= 10 else 7
    for row in range(num_labels):
        for column in range(num_labels):
            # White text on dark cells, black on light ones, so every count stays legible.
            colour = "white" if shares[row, column] > 0.5 else "black"
            axes.text(column, row, str(int(matrix[row, column])), ha="center", va="center", color=colour,
                      fontsize=font_size)

    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def plot_layer_weights(weights: np.ndarray, path: str | Path, title: str | None = None) -> Path:
    """Save a probe's learned layer weights as PNG: one line per fold over the hidden-state index, their mean in black.

    Args:
        weights: `(folds, hidden states)` softmax weights (each row sums to 1); hidden state 0 is the input to the
            first transformer layer.
        path: output file; parent folders are created.
        title: optional figure title.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    layers = np.arange(weights.shape[1])
    figure = Figure(figsize=(max(5.5, 0.45 * len(layers) + 2.0), 3.8))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for fold, row in enumerate(weights):
        axes.plot(layers, row, color="tab:blue", alpha=0.35, linewidth=1, label="folds" if fold == 0 else None)
    axes.plot(layers, weights.mean(axis=0), color="black", linewidth=2, marker="o", label="mean over folds")
    axes.axhline(1.0 / len(layers), color="grey", linestyle=":", linewidth=1, label="uniform")
    axes.set_xticks(layers)
    axes.set_xlabel("hidden state (0: before the first transformer layer)")
    axes.set_ylabel("softmax weight")
    axes.legend(fontsize=8)
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path
