"""Checkpoints: tensors and plain types only, written atomically, read back without running code.

A checkpoint is one ``torch.save`` file holding a dict; its keys are the constants of this module
(named in capitals below), shared by the writer (``TrainingRun.save_checkpoint`` in
:mod:`refdense.train.loop`) and the reader (:func:`load_checkpoint`)::

    format      FORMAT_KEY  "refdense-checkpoint/2"
    config      CONFIG      the run's TrainConfig as a plain dict
    dataset     DATASET     the dataset's signature: {"video_dim", "image_dim", "classes", "entities",
                            "motions"} (the names in output order; ``components.dataset_signature``)
    epoch       EPOCH       number of completed epochs (training resumes at this epoch)
    model       MODEL       state_dict of the detection model
    criterion   CRITERION   state_dict of the loss module (CoLV projections, learnable temperature)
    history     HISTORY     the per-epoch records written so far to metrics.jsonl (``epoch`` of them)
    best        BEST        {"epoch": int, "val_map": float} of the best validation epoch so far (:class:`Best`)
    optimizer   OPTIMIZER   state_dict of the optimizer            (``latest.pt`` only: what resuming needs)
    scheduler   SCHEDULER   state_dict of the learning-rate scheduler  (``latest.pt`` only)

A run directory keeps two: ``checkpoints/latest.pt`` (:data:`LATEST_FILE`, to resume) and
``checkpoints/best.pt`` (:data:`BEST_FILE`, the epoch with the best validation mAP, to evaluate).

Nothing else is stored (no random-number states: an epoch's randomness is derived from the seed
and the epoch number), so every checkpoint loads with ``torch.load(weights_only=True)``, which
never runs code: a checkpoint from someone else is safe to open. A file holding anything else (a
crafted pickle) is refused with :class:`CheckpointError`, as is a file of another kind (missing
parts, parts of the wrong type, weights that do not fit the model).

A checkpoint is never half-written: the file is written under a temporary name and moved over
the old one only when complete (``refdense.io.atomic_torch_save``), so the previous checkpoint
survives an interruption or a full disk.

Format 1 (before the class names were recorded) is refused with the command that upgrades it:
:func:`upgrade_checkpoints`.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, TypedDict

import torch

from refdense.io import atomic_torch_save

FORMAT = "refdense-checkpoint/2"
FORMAT_1 = "refdense-checkpoint/1"

# The keys of a checkpoint (module docstring).
FORMAT_KEY = "format"
CONFIG = "config"
DATASET = "dataset"
EPOCH = "epoch"
MODEL = "model"
CRITERION = "criterion"
HISTORY = "history"
BEST = "best"
OPTIMIZER = "optimizer"
SCHEDULER = "scheduler"

# The parts of every checkpoint and their types; resuming also needs RESUME_PARTS.
PARTS = {CONFIG: dict, DATASET: dict, EPOCH: int, MODEL: dict, CRITERION: dict, BEST: dict, HISTORY: list}
RESUME_PARTS = {OPTIMIZER: dict, SCHEDULER: dict}

# The two checkpoints of a run directory, in its ``checkpoints/`` folder.
LATEST_FILE = "latest.pt"
BEST_FILE = "best.pt"


class Best(TypedDict):
    """The ``best`` part: the best validation epoch so far (1-based; 0 and ``-inf`` before any)."""

    epoch: int
    val_map: float


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit what it is loaded into."""


def write_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (see the module docstring) to ``path`` atomically.

    A full disk raises :class:`refdense.io.DiskFullError`; the previous file at ``path`` is kept.
    """
    atomic_torch_save({FORMAT_KEY: FORMAT, **state}, path)


def _read(path: Path) -> dict[str, Any]:
    """The dict stored in ``path``, read with ``weights_only=True`` (no code runs)."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        named = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        detail = re.search(r"WeightsUnpickler error: ([^\n]{0,200})", str(error))
        reason = f"it refers to {named[1]}" if named else detail[1] if detail else str(error)[:200]
        raise CheckpointError(
            f"{path}: refused: it holds Python objects other than tensors and plain values ({reason}). "
            "refdense checkpoints never do; loading this file could run code, so it is not loaded."
        ) from None
    except Exception as error:  # noqa: BLE001 -- torch raises several types for corrupt files
        raise CheckpointError(
            f"checkpoint {path} cannot be read (is it a checkpoint?): "
            f"{type(error).__name__}: {str(error)[:200]}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} is not a refdense checkpoint (a {type(state).__name__}, expected a dict "
            f"of format {FORMAT!r})"
        )
    return state


def load_checkpoint(path: str | Path, resume: bool = False) -> dict[str, Any]:
    """Read a checkpoint to CPU memory and check its parts (``resume``: also what resuming needs).

    Raises :class:`CheckpointError` for a missing, foreign, crafted or old-format file.
    """
    path = Path(path)
    state = _read(path)
    found = state.get(FORMAT_KEY)
    if found == FORMAT_1:
        config = state.get(CONFIG)
        data = config.get("data") if isinstance(config, dict) else None
        dataset = data.get("dataset", "DATASET") if isinstance(data, dict) else "DATASET"
        raise CheckpointError(
            f"{path} was written by an earlier refdense (format {FORMAT_1!r}, which does not record the class "
            "names). Upgrade the checkpoints of its run once (this reads them without running code):\n"
            f'  python -c "from refdense.train.checkpoint import upgrade_checkpoints; '
            f'upgrade_checkpoints({str(path.parent)!r}, {str(dataset)!r})"\n'
            "naming the dataset folder (or synthetic preset) the run was trained on."
        )
    if found != FORMAT:
        raise CheckpointError(
            f"{path} is not a refdense checkpoint (expected format {FORMAT!r}, found {found!r}); "
            "give a file written by `refdense train`, e.g. RUN/checkpoints/best.pt"
        )
    expected = PARTS | (RESUME_PARTS if resume else {})
    missing = [key for key in expected if key not in state]
    if missing:
        kind = "a resumable checkpoint (latest.pt)" if resume else "a refdense checkpoint"
        raise CheckpointError(f"{path}: missing {', '.join(missing)}; not {kind}")
    wrong = [
        f"{key}: expected {kind.__name__}, found {type(state[key]).__name__}"
        for key, kind in expected.items()
        if not isinstance(state[key], kind) or isinstance(state[key], bool)
    ]
    for part in (MODEL, CRITERION):
        if isinstance(state[part], dict) and not all(
            isinstance(v, torch.Tensor) for v in state[part].values()
        ):
            wrong.append(f"{part} holds values that are not tensors")
    if not wrong:
        best, history = state[BEST], state[HISTORY]
        if not (isinstance(best.get("epoch"), int) and isinstance(best.get("val_map"), (int, float))):
            wrong.append(f"best is {best!r}, expected {{'epoch': int, 'val_map': float}}")
        if len(history) != state[EPOCH] or not all(
            isinstance(r, dict) and isinstance(r.get("epoch"), int) and isinstance(r.get("train"), dict)
            for r in history
        ):
            wrong.append(f"history is not {state[EPOCH]} records of metrics.jsonl")
    if wrong:
        raise CheckpointError(f"{path}: not a valid refdense checkpoint: {'; '.join(wrong)}")
    return state


def restore(target: Any, state: dict[str, Any], part: str, path: str | Path) -> None:
    """``target.load_state_dict(state[part])`` (a module, optimizer or scheduler), raising
    :class:`CheckpointError` that names the file and the mismatch when the saved part does not fit."""
    saved = state[part]
    unknown = sorted(set(saved) - set(target.state_dict()))
    if unknown and not isinstance(target, torch.nn.Module):  # modules report these themselves
        raise CheckpointError(f"{path}: {part} does not fit: unexpected entries {unknown[:5]}")
    try:
        target.load_state_dict(saved)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
        details = " ".join(str(error).split())
        raise CheckpointError(
            f"{path}: {part} does not fit the {part} built from its config: "
            f"{details[:400]}{' ...' if len(details) > 400 else ''}"
        ) from None


def upgrade_checkpoints(path: str | Path, dataset: str) -> list[Path]:
    """Rewrite checkpoints of format 1 as format 2, in place; returns the files rewritten.

    Args:
        path: a checkpoint file, or a folder of them (a run's ``checkpoints/``).
        dataset: the dataset folder or synthetic preset the run was trained on; format 1 lacks the
            class, entity and motion names, which are taken from it (its feature widths and class
            counts must match the checkpoint's).
    """
    from refdense.data import read_info
    from refdense.train.components import dataset_signature, open_dataset_dir

    path = Path(path)
    files = sorted(path.glob("*.pt")) if path.is_dir() else [path]
    info = read_info(open_dataset_dir(dataset))
    signature = dataset_signature(info)
    upgraded = []
    for file in files:
        state = _read(file)
        if state.get(FORMAT_KEY) != FORMAT_1:
            continue
        old = state.get(DATASET, {})
        counts = {
            "video_dim": info.video_dim,
            "image_dim": info.image_dim,
            "num_classes": info.num_classes,
            "num_entities": info.num_entities,
            "num_motions": info.num_motions,
        }
        wrong = [
            f"{key} {old.get(key)!r} in the checkpoint, {value} in {dataset!r}"
            for key, value in counts.items()
            if old.get(key) != value
        ]
        if wrong:
            raise CheckpointError(f"{file} was not trained on {dataset!r}: {'; '.join(wrong)}")
        write_checkpoint(file, {**state, DATASET: signature, FORMAT_KEY: FORMAT})
        upgraded.append(file)
    return upgraded
