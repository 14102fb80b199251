"""Ground truth and predictions over the time of one video (as Fig. 4 of the paper)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from refdense.viz import figure_of
from refdense.viz.style import BACKGROUND, CONCEPT_COLOURS, FONT_SIZES, INK, figure_size


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
    kind: str = "action",
) -> Figure:
    """Draw one block of rows per source: the ground truth, then each model's probabilities.

    Every row is in the colour of the concept kind (:data:`refdense.viz.style.CONCEPT_COLOURS`), so a
    colour means the same in every panel and every figure; a white line keeps the rows apart. The
    ground truth is opaque where the class is active, a model row's opacity is its probability, so
    models can be compared with the truth and with each other at a glance.

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
        kind: what the classes are: ``"action"``, ``"entity"`` or ``"motion"`` (their colour).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    if kind not in CONCEPT_COLOURS:
        raise ValueError(f"kind: expected one of {sorted(CONCEPT_COLOURS)}, found {kind!r}")
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
    rows = []
    for scores in sources.values():
        for c in classes:
            rgba = np.zeros((length, 4), dtype=np.float32)
            rgba[:, :3] = to_rgb(CONCEPT_COLOURS[kind])
            rgba[:, 3] = np.clip(scores[:, c], 0.0, 1.0)
            rows.append(rgba)
    image = np.stack(rows) if rows else np.zeros((0, length, 4), dtype=np.float32)

    if ax is None:
        fig, ax = plt.subplots(figsize=figure_size("wide", height=0.9 + 0.22 * max(len(rows), 1)))
    else:
        fig = figure_of(ax)
    right = duration if duration is not None else length
    ax.imshow(image, aspect="auto", interpolation="nearest", extent=(0, right, len(rows), 0))
    per_block = len(classes)
    for row in range(1, len(rows)):  # rows of one colour: a white line keeps each class's row apart
        ax.axhline(row, color=BACKGROUND, linewidth=1.5)
    for b, name in enumerate(sources):
        if b:
            ax.axhline(b * per_block, color=INK, linewidth=1.0)
        ax.text(
            1.01,
            (b + 0.5) * per_block,
            name,
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=FONT_SIZES["small"],
            fontweight="bold" if b == 0 else "normal",
        )
    ax.set_yticks(np.arange(len(rows)) + 0.5)
    ax.set_yticklabels([class_names[c] for _ in sources for c in classes], fontsize=FONT_SIZES["small"])
    ax.set_xlabel("time (s)" if duration is not None else "segment")
    ax.set_ylim(len(rows), 0)
    if title:
        ax.set_title(title)
    return fig
