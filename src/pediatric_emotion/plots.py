"""Figure helpers shared by the stages. Figures are made without pyplot (no global figure state,
no GUI backend) on matplotlib's Agg canvas, so they draw the same in a worker process, a test or a
notebook, and are rendered only when saved."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(width_in: float, height_in: float) -> Figure:
    """An empty figure of that size (inches), constrained layout, on an Agg canvas."""
    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_confusion(
    matrix: np.ndarray, emotions: Sequence[str], title: str, balanced_accuracy: float
) -> Figure:
    """A confusion matrix (rows true, columns predicted): counts in each cell, colour by the share
    of the true class (row)."""
    figure = new_figure(5.6, 4.8)
    axis = figure.subplots()
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if shares[i, j] > 0.5 else "black"
        axis.text(j, i, str(count), ha="center", va="center", color=colour)
    axis.set_xticks(range(len(emotions)), emotions, rotation=45, ha="right")
    axis.set_yticks(range(len(emotions)), emotions)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{title}\nbalanced accuracy {balanced_accuracy:.3f}", fontsize=9)
    figure.colorbar(image, ax=axis, label="share of the true class")
    return figure
