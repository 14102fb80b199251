"""Evaluation metrics of dense action detection: per-frame mAP and the action-conditional metrics.

All frames of all videos are pooled (docs/METHOD.md, section 7). Inputs are *probabilities* in [0, 1] and 0/1
labels, given either as lists of per-video arrays ``(T_v, C)`` or as padded arrays ``(V, T, C)``
with ``lengths`` ``(V,)``.

The package, in reading order:

- :mod:`~refdense.metrics.reference`: the definitions as plain loops (AP with the tie rule, per-frame
  mAP, the conditioning mask, the action-conditional metrics); slow, for reading and for checking
  the fast code (the tests) and the course's exercises.
- :mod:`~refdense.metrics.validation`: the input checks; errors name the video and the file.
- :mod:`~refdense.metrics.ap`: the AP kernel (the tie rule; scores as sortable keys) and
  :func:`frame_map`.
- :mod:`~refdense.metrics.conditional`: :func:`action_conditional` (MLAD's definition).
- :mod:`~refdense.metrics.table`: :func:`paper_table`, the papers' table, and :func:`compare_markdown`.
- :mod:`~refdense.metrics.predictions`: :func:`write_predictions` / :func:`read_predictions`, the
  predictions file that ``refdense metrics`` reads.
"""

from refdense.metrics.ap import FrameMAP, frame_map
from refdense.metrics.conditional import ActionConditional, action_conditional
from refdense.metrics.predictions import Predictions, read_predictions, write_predictions
from refdense.metrics.table import PaperTable, compare_markdown, paper_table

__all__ = [
    "FrameMAP",
    "ActionConditional",
    "PaperTable",
    "Predictions",
    "frame_map",
    "action_conditional",
    "paper_table",
    "compare_markdown",
    "write_predictions",
    "read_predictions",
]
