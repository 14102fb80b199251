"""What a training run returns and how it fails: :class:`TrainResult`, :class:`NonFiniteLossError`.

A module of its own so that the loop, the run's report and the recipes above them share these
names without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from refdense.metrics import PaperTable


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stops and the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainResult:
    """What :func:`refdense.train.loop.train` returns (everything is also in the run directory)."""

    run_dir: Path
    history: list[dict]  # one record per epoch, as in metrics.jsonl
    checkpoint: Path  # the checkpoint evaluated on the test split
    checkpoint_epoch: int  # ... and its epoch (1-based)
    test: PaperTable | None  # None on ranks other than 0
    predictions: Path | None  # predictions-test.npz (None on ranks other than 0)
    # the composed readout P_ent * P_mot of the auxiliary heads, scored like ``test`` and written
    # beside it (evaluate.readout_path); None without one (evaluate.readout_unavailable) and on ranks other than 0
    composed: PaperTable | None = None
    # the motion head's probabilities scored on the motion labels (evaluate.READOUTS["motion"]), written
    # beside ``predictions``; None without a trained motion head and on ranks other than 0
    motion: PaperTable | None = None
