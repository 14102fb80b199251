"""The evaluation explorer's figure: action-conditional metrics against the window tau and the threshold.

:func:`evaluation_curves` is pure: it evaluates the package's own metrics
(:func:`refdense.metrics.action_conditional`) at one ``(tau, threshold)`` and over a sweep of
thresholds, so what the notebook shows is what ``refdense metrics`` reports.
:func:`plot_evaluation` draws the result and returns the Figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from refdense.metrics import action_conditional
from refdense.metrics.validation import Lengths, Videos
from refdense.viz.metrics import plot_conditional_matrix
from refdense.viz.style import FONT_SIZES, METRIC_COLOURS, REFERENCE_GREY, figure_size

MATRICES = ("ap", "precision", "recall")
"""The pairwise matrices of :class:`refdense.metrics.ActionConditional` that the explorer can show."""


def evaluation_curves(
    scores: Videos,
    labels: Videos,
    lengths: Lengths = None,
    *,
    tau: int = 0,
    threshold: float = 0.5,
    matrix: str = "ap",
    thresholds: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Action-conditional metrics at ``(tau, threshold)`` and P/R/F1 over a sweep of thresholds.

    Args:
        scores, labels, lengths: as :func:`refdense.metrics.action_conditional` (per-video lists of
            (T_v, C) probabilities and 0/1 labels, or padded (V, T, C) arrays with ``lengths``).
        tau: the window in segments (0: co-occurrence in the same segment).
        threshold: a frame is predicted positive iff score >= threshold.
        matrix: which pairwise (C, C) matrix to return: ``"ap"``, ``"precision"`` or ``"recall"``.
        thresholds: the sweep (default: 0.1, 0.2, ..., 0.9).

    Returns:
        ``{"conditional"``: the :class:`~refdense.metrics.ActionConditional` at (tau, threshold),
        ``"matrix"`` (C, C) the chosen pairwise metric ``[i, j]`` (NaN where the pair is not kept),
        ``"matrix_name"``, ``"tau"``, ``"threshold"``, ``"thresholds"`` (K,), and ``"P_ac"``,
        ``"R_ac"``, ``"F1_ac"``, ``"mAP_ac"`` (K,) over the sweep, as fractions``}``.
    """
    if matrix not in MATRICES:
        raise ValueError(f"evaluation_curves: matrix: expected one of {MATRICES}, found {matrix!r}")
    sweep = (
        np.round(np.arange(0.1, 0.91, 0.1), 2) if thresholds is None else np.asarray(thresholds, dtype=float)
    )
    if sweep.ndim != 1 or sweep.size == 0:
        raise ValueError(
            f"evaluation_curves: thresholds: expected a non-empty 1-d sequence, found {thresholds!r}"
        )
    current = action_conditional(scores, labels, lengths, tau=tau, threshold=threshold)
    swept = [action_conditional(scores, labels, lengths, tau=tau, threshold=float(t)) for t in sweep]
    result = {
        "conditional": current,
        "matrix": getattr(current, matrix),
        "matrix_name": matrix,
        "tau": int(tau),
        "threshold": float(threshold),
        "thresholds": sweep,
    }
    for key in ("P_ac", "R_ac", "F1_ac", "mAP_ac"):
        result[key] = np.array([getattr(point, key) for point in swept])
    return result


def plot_evaluation(
    curves: dict,
    class_names: Sequence[str] | None = None,
    fig: Figure | None = None,
    title: str | None = None,
) -> Figure:
    """Three panels: the four metrics at (tau, threshold) and P/R/F1 vs threshold on the left, the
    pairwise matrix on the right, large enough for one readable name per class (up to about 40).

    ``curves`` is what :func:`evaluation_curves` returns. Values are shown in percent; pairs that are
    not kept are left blank in the matrix (:func:`refdense.viz.metrics.plot_conditional_matrix`), whose
    axes carry ``class_names`` (C names; default: the class indices).
    """
    if fig is None:
        fig = plt.figure(figsize=figure_size("wide", height=7.2), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=[1, 1.75])
    bar_ax, sweep_ax, matrix_ax = (
        fig.add_subplot(grid[0, 0]),
        fig.add_subplot(grid[1, 0]),
        fig.add_subplot(grid[:, 1]),
    )
    conditional = curves["conditional"]
    tau, threshold = curves["tau"], curves["threshold"]

    names = ("mAP_ac", "F1_ac", "P_ac", "R_ac")
    values = [100 * getattr(conditional, name) for name in names]
    bars = bar_ax.bar(names, np.nan_to_num(values), color=[METRIC_COLOURS[name] for name in names])
    for bar, value in zip(bars, values):
        bar_ax.annotate(
            "n/a" if np.isnan(value) else f"{value:.1f}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=FONT_SIZES["small"],
        )
    bar_ax.tick_params(axis="x", labelsize=FONT_SIZES["small"])  # four names in a third of the width
    bar_ax.set(
        ylim=(0, 110),
        ylabel="percent",
        title=f"at threshold {threshold:.2f}\n({conditional.pairs} pairs kept)",
    )

    sweep = curves["thresholds"]
    for key in ("P_ac", "R_ac", "F1_ac", "mAP_ac"):
        style = "--" if key == "mAP_ac" else "-"
        sweep_ax.plot(sweep, 100 * curves[key], style, color=METRIC_COLOURS[key], label=key)
    sweep_ax.axvline(threshold, color=REFERENCE_GREY, lw=0.8)
    sweep_ax.set(
        xlabel="threshold", ylabel="percent", ylim=(0, 105), title="against the threshold\n(mAP_ac: flat)"
    )
    sweep_ax.legend(loc="lower left", ncols=2)

    plot_conditional_matrix(conditional, class_names, which=curves["matrix_name"], ax=matrix_ax)
    fig.suptitle(title or f"action-conditional metrics, tau = {tau}")
    return fig
