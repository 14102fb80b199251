"""Ground truth and predictions over the time of one video (as Fig. 4 of the paper)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from refdense.viz import figure_of


def plot_timeline(
    labels: np.ndarray,
    class_names: Sequence[str],
    predictions: Mapping[str, np.ndarray] | None = None,
    *,
    classes: Sequence[int] | None = None,
    max_classes: int = 10,
    duration: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    colour: str | None = None,
) -> Figure:
    """Draw one block of rows per source: the ground truth, then each model's probabilities.

    Each block has one row per shown class, in the class's colour; the ground truth is opaque where
    the class is active, a model row's opacity is its probability, so models can be compared with
    the truth and with each other at a glance.

    Args:
        labels: (T, C) 0/1 ground truth of one video.
        class_names: C names.
        predictions: ``{model name: (T, C) probabilities in [0, 1]}``, drawn in the given order.
        classes: class indices to show; default: the classes active in ``labels`` in order of first
            appearance, or (none active) those with the highest predicted probability; at most
            ``max_classes``.
        duration: the video's duration in seconds; the x axis is in seconds when given, in
            segments otherwise.
        title: axes title.
        ax: a matplotlib Axes to draw on (default: a new figure).
        colour: one matplotlib colour for every row (default: one colour per shown class, by its
            place in the list, which means different things on different plots). Give it to keep a
            colour's meaning across panels, e.g. :data:`refdense.viz.style.CONCEPT_COLOURS` per
            concept kind.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    labels = np.asarray(labels, dtype=np.float32)
    if labels.ndim != 2 or labels.shape[1] != len(class_names):
        raise ValueError(f"labels: expected shape (T, {len(class_names)}), found {labels.shape}")
    sources = {"ground truth": labels}
    for name, scores in (predictions or {}).items():
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != labels.shape:
            raise ValueError(
                f"predictions[{name!r}]: expected shape {labels.shape} (as labels), found {scores.shape}"
            )
        if scores.size and (np.nanmin(scores) < 0 or np.nanmax(scores) > 1):
            raise ValueError(
                f"predictions[{name!r}]: expected probabilities in [0, 1], found "
                f"[{np.nanmin(scores):.3g}, {np.nanmax(scores):.3g}] (apply a sigmoid to logits)"
            )
        sources[name] = scores
    if classes is None:
        active = np.flatnonzero(labels.any(axis=0))
        if active.size:
            classes = sorted(active, key=lambda c: int(np.argmax(labels[:, c] > 0)))
        else:
            peak = np.max([s.max(axis=0) for s in sources.values()], axis=0)
            classes = list(np.argsort(-peak, kind="stable"))
    classes = [int(c) for c in classes][:max_classes]
    if any(not 0 <= c < len(class_names) for c in classes):
        raise ValueError(f"classes: expected indices in [0, {len(class_names)}), found {classes}")

    length = labels.shape[0]
    colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    rows = []
    for scores in sources.values():
        for k, c in enumerate(classes):
            rgba = np.zeros((length, 4), dtype=np.float32)
            rgba[:, :3] = to_rgb(colour) if colour is not None else colours(k % colours.N)[:3]
            rgba[:, 3] = np.clip(scores[:, c], 0.0, 1.0)
            rows.append(rgba)
    image = np.stack(rows) if rows else np.zeros((0, length, 4), dtype=np.float32)

    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 0.9 + 0.22 * max(len(rows), 1)))
    else:
        fig = figure_of(ax)
    right = duration if duration is not None else length
    ax.imshow(image, aspect="auto", interpolation="nearest", extent=(0, right, len(rows), 0))
    per_block = len(classes)
    if colour is not None:  # rows of one colour: a white line keeps each class's row apart
        for row in range(1, len(rows)):
            ax.axhline(row, color="white", linewidth=1.5)
    for b, name in enumerate(sources):
        if b:
            ax.axhline(b * per_block, color="0.3", linewidth=0.8)
        ax.text(
            1.01,
            (b + 0.5) * per_block,
            name,
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=9,
            fontweight="bold" if b == 0 else "normal",
        )
    ax.set_yticks(np.arange(len(rows)) + 0.5)
    ax.set_yticklabels([class_names[c] for _ in sources for c in classes], fontsize=8)
    ax.set_xlabel("time (s)" if duration is not None else "segment")
    ax.set_ylim(len(rows), 0)
    if title:
        ax.set_title(title)
    return fig
