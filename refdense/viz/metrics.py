"""Plots of the evaluation metrics: per-class AP bars and the pairwise action-conditional matrices.

Each function takes ``ax=None`` (a new figure is made) and returns the Figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from refdense.metrics import ActionConditional, FrameMAP
from refdense.viz import figure_of
from refdense.viz.style import COLOUR_MAPS, CONCEPT_COLOURS, FAINT_GREY, FONT_SIZES, INK, figure_size

CONDITIONAL_MATRICES = {"precision": "precision", "recall": "recall", "ap": "AP"}


def _names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return [str(c) for c in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(
            f"class_names: expected {num_classes} names (one per class), found {len(class_names)}"
        )
    return list(class_names)


def _axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its Figure, or a new Figure of ``size`` (inches, from :func:`refdense.viz.style.figure_size`)."""
    if ax is not None:
        return figure_of(ax), ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def plot_class_ap(
    result: FrameMAP,
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
    top: int | None = None,
) -> Figure:
    """Horizontal bars of the per-class AP (percent), best first.

    result: a :class:`refdense.metrics.FrameMAP`; class_names: C names (default: indices);
    top: show only the ``top`` best classes. Classes without a positive frame have no AP and are
    left out (the title says how many). A dashed line marks the mAP over the classes with a
    positive.
    """
    names = _names(class_names, result.per_class.size)
    present = np.flatnonzero(~np.isnan(result.per_class))
    order = present[np.argsort(-result.per_class[present], kind="stable")]
    if top is not None:
        if top < 1:
            raise ValueError(f"top: expected a positive number of classes, found {top}")
        order = order[:top]
    fig, ax = _axes(ax, figure_size("column", height=max(2.5, 0.22 * order.size + 1)))
    values = 100 * result.per_class[order]
    ax.barh(np.arange(order.size), values, color=CONCEPT_COLOURS["action"])
    ax.set_yticks(
        np.arange(order.size),
        [names[c] for c in order],
        fontsize=FONT_SIZES["small" if order.size > 30 else "body"],
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("AP (%)")
    if present.size:
        ax.axvline(
            100 * result.map_present,
            color=INK,
            linestyle="--",
            linewidth=1,
            label=f"mAP {100 * result.map_present:.1f} (classes with a positive)",
        )
        ax.legend(loc="lower right")
    missing = result.per_class.size - present.size
    shown = f"top {order.size} of {present.size}" if order.size < present.size else f"{order.size}"
    ax.set_title(f"Per-class AP, {shown} classes" + (f" ({missing} without positive)" if missing else ""))
    return fig


def plot_conditional_matrix(
    result: ActionConditional,
    class_names: Sequence[str] | None = None,
    which: str = "precision",
    ax: Axes | None = None,
) -> Figure:
    """Heat map of a pairwise action-conditional matrix (percent).

    Row ``i`` is the evaluated class ``c_i``, column ``j`` the conditioning class ``c_j``
    (frames ``F_j``); pairs that are not kept (no positive of ``c_i`` in ``F_j``, or ``i = j``)
    are left blank. which: ``"precision"``, ``"recall"`` or ``"ap"``.
    """
    if which not in CONDITIONAL_MATRICES:
        raise ValueError(f"which: expected one of {sorted(CONDITIONAL_MATRICES)}, found {which!r}")
    matrix = 100 * getattr(result, which)
    names = _names(class_names, matrix.shape[0])
    fig, ax = _axes(ax, figure_size("square", height=min(8.4, 3 + 0.18 * matrix.shape[0])))
    image = ax.imshow(
        np.ma.masked_invalid(matrix),
        vmin=0,
        vmax=100,
        cmap=COLOUR_MAPS["sequential"],
        interpolation="nearest",
    )
    ax.set_facecolor(FAINT_GREY)
    ax.figure.colorbar(image, ax=ax, label=f"{CONDITIONAL_MATRICES[which]} (%)", shrink=0.8)
    if matrix.shape[0] <= 40:
        ticks = np.arange(matrix.shape[0])
        ax.set_xticks(ticks, names, rotation=90, fontsize=FONT_SIZES["small"])
        ax.set_yticks(ticks, names, fontsize=FONT_SIZES["small"])
    ax.set_xlabel("conditioning class c_j (frames F_j)")
    ax.set_ylabel("evaluated class c_i")
    mean = {"precision": result.P_ac, "recall": result.R_ac, "ap": result.mAP_ac}[which]
    ax.set_title(
        f"Action-conditional {CONDITIONAL_MATRICES[which]}, τ={result.tau}:\n"
        f"mean {100 * mean:.1f} over {result.pairs} pairs"
    )
    return fig
