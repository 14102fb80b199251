"""Plots. Every function takes ``ax=None`` (or a Figure where it draws several panels), draws,
and returns the ``matplotlib.figure.Figure``; nothing here calls ``plt.show()``.

- ``refdense.viz.timeline``: ground truth and predictions over time for one video.
- ``refdense.viz.metrics``: per-class AP bars, pairwise action-conditional matrices.
- ``refdense.viz.training``: loss curves and metrics per epoch of a run.
- ``refdense.viz.model``: attention maps and position biases.
- ``refdense.viz.losses``: the BCE explorer's curves and the CoLV explorer's geometry (a segment feature
  among the prompt embeddings, -dL/df, descent on the sphere).
- ``refdense.viz.evaluation``: action-conditional metrics against the threshold, for the evaluation explorer.
- ``refdense.viz.pipeline``: the RefDense pipeline (the paper's Fig. 2) with shapes, notebooks and equations.
- ``refdense.viz.style``: the course's visual language, which every plot here takes: what each colour means
  (concept kinds, model families, losses, outcomes, greys), font sizes, figure sizes, the rc defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refdense.extras import require_extra

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

require_extra("matplotlib", "refdense.viz (plots)")  # every module of the unit draws with it


def figure_of(ax: Axes) -> Figure:
    """The Figure that holds ``ax`` (the whole Figure when ``ax`` is in a SubFigure): what a plot returns."""
    from matplotlib.figure import Figure

    figure = ax.figure
    return figure if isinstance(figure, Figure) else figure.figure
