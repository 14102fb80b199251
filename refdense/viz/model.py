"""Plots of what a position-aware attention computes: its position bias and its attention map."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from refdense.viz import figure_of
from refdense.viz.style import COLOUR_MAPS, figure_size


def _as_matrix(name: str, matrix: object) -> np.ndarray:
    if hasattr(matrix, "detach"):  # a torch tensor
        matrix = matrix.detach().float().cpu().numpy()
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (queries, keys) matrix, found shape {matrix.shape}")
    return matrix


def _draw(matrix: np.ndarray, ax: Axes | None, title: str, cmap: str, label: str, **imshow: Any) -> Figure:
    if ax is None:
        _, ax = plt.subplots(figsize=figure_size("square"), layout="constrained")
    image = ax.imshow(matrix, cmap=cmap, interpolation="nearest", **imshow)
    ax.set_xlabel("key j")
    ax.set_ylabel("query i")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label=label)
    return figure_of(ax)


def plot_position_bias(bias: object, ax: Axes | None = None, title: str = "position bias S[i, j]") -> Figure:
    """Draw a relative-position bias matrix ``S`` ``(N, N)`` (e.g. one head of
    ``refdense.models.position_bias``), with a diverging colour map centred on zero.

    In ``pat`` mode the diagonal just above the main one (``j = i + 1``) is zero and the upper
    triangle reuses the next query's row; in ``relative`` mode each diagonal is one table row.
    Returns the Figure.
    """
    matrix = _as_matrix("bias", bias)
    limit = float(np.abs(matrix).max()) or 1.0
    return _draw(matrix, ax, title, COLOUR_MAPS["diverging"], "bias", vmin=-limit, vmax=limit)


def plot_attention(weights: object, ax: Axes | None = None, title: str = "attention weights") -> Figure:
    """Draw attention weights ``(N, N)`` (rows are queries and sum to 1; padded keys are 0).
    Returns the Figure."""
    matrix = _as_matrix("weights", weights)
    return _draw(matrix, ax, title, COLOUR_MAPS["sequential"], "weight", vmin=0.0)
