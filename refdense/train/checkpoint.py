"""Checkpoints: written atomically, read back with checks.

A checkpoint is one ``torch.save`` file holding a dict::

    format      "refdense-checkpoint/1"
    config      the run's TrainConfig as a plain dict
    dataset     {"name", "video_dim", "image_dim", "num_classes", "num_entities", "num_motions"}
    epoch       number of completed epochs (training resumes at this epoch)
    model       state_dict of the detection model
    criterion   state_dict of the loss module (CoLV projections, learnable temperature)
    optimizer   state_dict of the optimizer
    scheduler   state_dict of the learning-rate scheduler
    best        {"epoch": int, "val_map": float} of the best validation epoch so far
    history     the per-epoch records written so far to metrics.jsonl

A checkpoint is never half-written: the file is written under a temporary name and moved over
the old one only when complete (``refdense.io.atomic_path``), so the previous checkpoint survives
an interruption or a full disk.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import torch

from refdense.io import atomic_path

FORMAT = "refdense-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or does not fit what it is loaded into."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (see the module docstring) to ``path`` atomically."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save({"format": FORMAT, **state}, tmp)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CheckpointError(
                f"no space left for checkpoints in {path.parent}; the previous {path.name} is kept. "
                "Free some space and resume with `refdense train --resume RUN_DIR`."
            ) from error
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint to CPU memory; raises :class:`CheckpointError` for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for corrupt files
        raise CheckpointError(f"checkpoint {path} cannot be read: {error}") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a refdense checkpoint (expected format {FORMAT!r}, found {found!r})")
    return state
