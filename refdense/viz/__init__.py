"""Plots. Every function takes ``ax=None`` (or a Figure where it draws several panels), draws,
and returns the ``matplotlib.figure.Figure``; nothing here calls ``plt.show()``.

- ``refdense.viz.timeline``: ground truth and predictions over time for one video.
- ``refdense.viz.metrics``: per-class AP bars, pairwise action-conditional matrices.
- ``refdense.viz.training``: loss curves and metrics per epoch of a run.
- ``refdense.viz.model``: attention maps and position biases.
- ``refdense.viz.losses``: loss and gradient curves for the BCE and CoLV explorers.
- ``refdense.viz.evaluation``: action-conditional metrics against the threshold, for the evaluation explorer.
"""
