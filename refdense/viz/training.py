"""Plots of a training run: loss curves and validation metrics per epoch.

Both functions read the run's history: the list of per-epoch records that
``refdense.train`` writes to ``metrics.jsonl`` (one JSON object per line), e.g.::

    {"epoch": 3, "lr": 1e-4, "train": {"loss": 0.41, "bce_action": 0.22, ...},
     "val": {"map": 21.7}, "seconds": 12.5}

``val`` is missing on epochs without validation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from refdense.viz import figure_of
from refdense.viz.style import CONCEPT_COLOURS, INK, LINE_STYLES, figure_size


def plot_loss_curves(
    history: Sequence[Mapping[str, Any]], ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Mean training loss per epoch: the total (bold) and each term of the criterion.

    A term is drawn in the colour of the concept kind it is about (``bce_entity``, ``colv_entity``:
    entities; a term naming neither entities nor motions: actions); terms of one kind differ in line style.
    """
    if ax is None:
        ax = Figure(figsize=figure_size("column"), layout="constrained").add_subplot()
    epochs = [record["epoch"] for record in history]
    terms = list(history[0]["train"]) if history else []
    of_kind: dict[str, int] = {}  # terms drawn so far per kind
    for term in terms:
        values = [record["train"].get(term, float("nan")) for record in history]
        kind = next((k for k in ("entity", "motion") if k in term), "action")
        if term == "loss":
            style: dict[str, Any] = dict(linewidth=2.5, color=INK, zorder=3)
        else:
            of_kind[kind] = of_kind.get(kind, -1) + 1
            line = LINE_STYLES[of_kind[kind] % len(LINE_STYLES)]
            style = dict(linewidth=1.2, color=CONCEPT_COLOURS[kind], linestyle=line)
        ax.plot(epochs, values, marker="o", markersize=3, label="total" if term == "loss" else term, **style)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("mean training loss")
    ax.set_title(title or "Training loss")
    if terms:
        ax.legend(ncol=2)
    ax.grid(alpha=0.3)
    return figure_of(ax)


def plot_metric_per_epoch(
    history: Sequence[Mapping[str, Any]],
    metric: str = "map",
    ax: Axes | None = None,
    label: str | None = None,
    best_epoch: int | None = None,
    colour: str | None = None,
) -> Figure:
    """A validation metric (per-frame mAP by default, in %) per epoch; ``best_epoch`` is marked.

    Call it several times on one ``ax`` with a ``label`` to compare runs, each in its model's
    ``colour`` (:data:`refdense.viz.style.MODEL_COLOURS`; default: the next of the colour cycle).
    """
    if ax is None:
        ax = Figure(figsize=figure_size("column"), layout="constrained").add_subplot()
    points = [(r["epoch"], r["val"][metric]) for r in history if r.get("val") and metric in r["val"]]
    if points:
        epochs, values = zip(*points)
        line = ax.plot(epochs, values, marker="o", markersize=3, label=label, color=colour)[0]
        if best_epoch is not None and best_epoch in epochs:
            value = values[epochs.index(best_epoch)]
            ax.scatter([best_epoch], [value], s=90, facecolors="none", edgecolors=line.get_color(), zorder=4)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"validation {'mAP (%)' if metric == 'map' else metric}")
    ax.set_title("Validation per epoch\n(circle: selected checkpoint)")
    if label:
        ax.legend()
    ax.grid(alpha=0.3)
    return figure_of(ax)
