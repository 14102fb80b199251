"""Evaluation: whole videos through the model, then the paper's metrics from ``refdense.metrics``.

Every number this package reports (validation mAP during training, the test table of a run,
``refdense evaluate``, the demo, the ablations) comes from :func:`predict_split` followed by
``refdense.metrics``; RefDense and PAT are scored by the same code.

A video is predicted in full: ``refdense.models.predict_full_videos`` cuts it into the windows
one forward pass takes (``max_len`` in the ``pat`` position mode, 4096 segments in the
``relative`` one, so memory is bounded by the window), never drops the tail, and batches the
windows of many videos together (each video gets the probabilities it would get alone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from refdense.data import DenseActionDataset
from refdense.metrics import PaperTable, frame_map, paper_table, write_predictions
from refdense.models import Detector, architecture, predict_full_videos
from refdense.models.inference import (
    MAX_BATCH_SEGMENTS,
    Readout,
    action_probabilities,
    composed_readout,
    motion_probabilities,
)
from refdense.progress import progress_bar
from refdense.train import distributed
from refdense.train.checkpoint import BEST_FILE, LATEST_FILE, load_checkpoint, restore
from refdense.train.components import Precision, autocast, build_detector, check_signature, open_dataset_dir
from refdense.train.config import TrainConfig, from_dict

#: Videos are loaded and predicted in chunks of about this many segments (bounded memory).
VIDEOS_SEGMENTS = 16 * MAX_BATCH_SEGMENTS


@torch.no_grad()
def predict_split(
    model: Detector,
    dataset: DenseActionDataset,
    context: distributed.Context,
    precision: Precision = "fp32",
    progress: bool | None = False,
    readout: Readout = action_probabilities,
) -> dict[str, np.ndarray] | None:
    """Action probabilities ``{video_id: (T_v, C) float32}`` for every video of ``dataset`` (those of
    ``readout``: the action head's by default, :func:`refdense.models.inference.composed_readout`'s).

    In a distributed run each process predicts every ``world_size``-th video and rank 0 receives
    all of them (other ranks get None). ``dataset`` must serve whole videos (``train=False``).
    Videos are read in chunks of about ``VIDEOS_SEGMENTS`` segments, each predicted by
    ``predict_full_videos`` in batches across its videos. ``progress`` as
    :func:`refdense.progress.progress_bar`'s ``enabled`` (rank 0 only).
    """
    mine: dict[str, np.ndarray] = {}
    indices = range(context.rank, len(dataset), context.world_size)
    chunk, segments = [], 0
    with progress_bar(
        len(indices),
        desc=f"predict {dataset.split}",
        unit="videos",
        leave=False,
        enabled=progress if context.is_main else False,
    ) as bar:
        for position, index in enumerate(indices):
            item = dataset[index]
            chunk.append(item)
            segments += len(item["video"])
            if segments >= VIDEOS_SEGMENTS or position + 1 == len(indices):
                with autocast(context.device, precision):
                    probs = predict_full_videos(
                        model, [(item["video"], item["image"]) for item in chunk], readout=readout
                    )
                mine.update((item["video_id"], p.numpy()) for item, p in zip(chunk, probs))
                bar.update(len(chunk))
                chunk, segments = [], 0
    parts = distributed.gather_to_main(context, mine)
    if parts is None:
        return None
    merged = {k: v for part in parts for k, v in part.items()}
    return {video_id: merged[video_id] for video_id in dataset.video_ids}


def labels_of(dataset: DenseActionDataset, key: str = "labels") -> list[np.ndarray]:
    """Dense labels of every video, in ``dataset.video_ids`` order: the actions ``(T_v, C)`` by default,
    ``entity_labels`` ``(T_v, C_ent)`` or ``motion_labels`` ``(T_v, C_mot)``."""
    return [video[key] for video in dataset.videos]


def validation_map(
    model: Detector,
    dataset: DenseActionDataset,
    context: distributed.Context,
    precision: Precision,
    progress: bool | None = False,
) -> float | None:
    """Per-frame mAP (%) on ``dataset`` (rank 0; None on other ranks): the model-selection metric."""
    scores = predict_split(model, dataset, context, precision, progress)
    if scores is None:
        return None
    return 100.0 * frame_map(list(scores.values()), labels_of(dataset)).map_all


def score_and_save(
    scores: dict[str, np.ndarray], dataset: DenseActionDataset, path: Path, labels_key: str = "labels"
) -> PaperTable:
    """Write ``scores`` and the labels as a predictions file (``refdense metrics`` reads it) and
    return the paper's table computed from them; ``labels_key``: which labels of the videos they are
    scored on (``labels``, the actions; ``motion_labels`` for the motion head)."""
    labels = labels_of(dataset, labels_key)
    write_predictions(path, list(scores.values()), labels, list(scores))
    return paper_table(list(scores.values()), labels)


SPLIT_TAGS = {"training": "train", "validation": "val", "testing": "test"}


def predictions_path(
    run_dir: str | Path,
    split: str,
    checkpoint: str = "best",
    dataset: str | None = None,
    tested: str = "best",
) -> Path:
    """The one name of a run's predictions file: ``predictions-test.npz`` for the test split as
    predicted by the checkpoint the run tests (``tested``, the stem ``run.test_checkpoint`` names:
    ``best``, or ``latest`` with ``last``; what ``refdense train`` writes and ``refdense evaluate``
    writes for that checkpoint by default), ``predictions-val.npz``, ``predictions-train.npz`` for the
    other splits, and ``predictions-test-latest.npz``, ``predictions-test-best.npz`` and the like for
    another checkpoint (``checkpoint`` is its stem). ``dataset``: the name of a dataset other than the
    run's own, ``predictions-test-on-NAME.npz`` (so that it never replaces the file the run's
    ``results.md`` was computed from)."""
    if split not in SPLIT_TAGS:
        raise ValueError(f"split: expected one of {list(SPLIT_TAGS)}, found {split!r}")
    tag = SPLIT_TAGS[split] + ("" if checkpoint == tested else f"-{checkpoint}")
    return Path(run_dir) / f"predictions-{tag}{f'-on-{dataset}' if dataset else ''}.npz"


def default_predictions_path(
    checkpoint: Path, config_dataset: str, dataset: str | None, split: str, tested: str = "best"
) -> Path:
    """Where :func:`evaluate` writes without ``out``: in the run directory of ``checkpoint``
    (``RUN/checkpoints/NAME.pt``), under :func:`predictions_path`'s name (``tested``: the stem of the
    checkpoint the run tests); a ``dataset`` other than the run's own (``config_dataset``) gets a name
    of its own. A checkpoint outside a run's ``checkpoints/`` folder raises ``ValueError``: name the
    file with ``out``."""
    folder = checkpoint.resolve().parent
    if folder.name != "checkpoints" or not (folder.parent / "config.yaml").is_file():
        raise ValueError(
            f"{checkpoint}: is not in the checkpoints/ folder of a run, so it has no default "
            "predictions file; name one with --out FILE.npz"
        )
    own = (
        dataset is None
        or dataset == config_dataset
        or Path(dataset).resolve() == Path(config_dataset).resolve()
    )
    name = None if own else Path(dataset or "").name
    return predictions_path(folder.parent, split, checkpoint.stem, name, tested)


@dataclass(frozen=True)
class AuxiliaryReadout:
    """A readout a run writes beside its action head's predictions (an entry of :data:`READOUTS`)."""

    heads: tuple[str, ...]  # the auxiliary heads it needs (readout_unavailable)
    # its Readout for a dataset's decomposition (DatasetInfo.decomposition)
    readout: Callable[[Sequence[tuple[int | None, int | None]]], Readout]
    labels: str  # the labels it is scored on: a key of the videos' dicts (labels_of)
    title: str  # what the run's log calls it


READOUTS = {
    "composed": AuxiliaryReadout(
        ("entity", "motion"), composed_readout, "labels", "composed readout P_ent * P_mot"
    ),
    "motion": AuxiliaryReadout(("motion",), lambda _: motion_probabilities, "motion_labels", "motion head"),
}
"""The readouts a run writes beside its action head's predictions, each into the file
:func:`readout_path` names after its key: ``composed``, each class scored ``P_ent(its entity) *
P_mot(its motion)`` (:func:`refdense.models.inference.composed_readout`, scored on the action
labels); ``motion``, the motion head's own probabilities scored on the motion labels (the mechanism
check of cross-attention)."""


def readout_path(predictions: str | Path, readout: str) -> Path:
    """The predictions file of ``readout`` (a key of :data:`READOUTS`) beside a run's ``predictions``:
    ``predictions-test.npz`` -> ``predictions-test-composed.npz``, ``predictions-test-motion.npz``."""
    predictions = Path(predictions)
    return predictions.with_name(f"{predictions.stem}-{_known(readout)}{predictions.suffix}")


def readout_unavailable(config: TrainConfig, readout: str) -> str | None:
    """Why a run of ``config`` has no ``readout`` (a key of :data:`READOUTS`), or None when it has one:
    an architecture with the auxiliary heads it needs (``Architecture.auxiliary``, as RefDense), each
    switched on and trained by its labels."""
    model, loss = config.model, config.loss
    heads = architecture(model.arch).auxiliary
    for part in READOUTS[_known(readout)].heads:
        if part not in heads:
            return f"model.arch {model.arch} has no {part} head"
        if not getattr(model, f"{part}_head"):
            return f"the {part} head is off (model.{part}_head: false)"
        if not getattr(loss, f"use_{part}_labels") or getattr(loss, f"{part}_weight") == 0:
            return f"the {part} head is not trained (loss.use_{part}_labels: false or loss.{part}_weight: 0)"
    return None


def _known(readout: str) -> str:
    if readout not in READOUTS:
        raise ValueError(f"readout: expected one of {', '.join(READOUTS)}, found {readout!r}")
    return readout


@dataclass
class Evaluation:
    """What :func:`evaluate` returns."""

    table: PaperTable
    predictions: Path  # the npz written
    checkpoint: Path
    epoch: int  # the checkpoint's epoch (1-based)
    split: str
    dataset: Path
    readouts: dict[str, PaperTable] = field(default_factory=dict)  # by READOUTS key, each beside predictions


def evaluate(
    checkpoint: str | Path,
    out: str | Path | None = None,
    *,
    dataset: str | None = None,
    split: str = "testing",
    device: str = "auto",
    precision: Precision = "auto",
    progress: bool | None = None,
    readouts: Sequence[str] = (),
) -> Evaluation:
    """Evaluate a checkpoint on a dataset split: the paper's table and a predictions npz at ``out``
    (default: :func:`default_predictions_path`, beside the run).

    ``readouts``: keys of :data:`READOUTS` predicted as well, each written beside ``out``
    (:func:`readout_path`) and scored on its labels; one the checkpoint's model lacks
    (:func:`readout_unavailable`) is an error naming the checkpoint.

    ``dataset`` defaults to the one the checkpoint was trained on (a folder or a synthetic
    preset). The dataset's feature widths and its class, entity and motion names must match the
    checkpoint's (a dataset with other classes is refused, not scored against the wrong outputs).
    ``progress``: shown on a terminal as a bar, elsewhere as plain lines; False: silent.
    """
    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    config = from_dict(state["config"], source=f"{checkpoint} (stored config)")
    tested = Path(BEST_FILE if config.run.test_checkpoint == "best" else LATEST_FILE).stem
    out = (
        Path(out)
        if out
        else default_predictions_path(checkpoint, config.data.dataset, dataset, split, tested)
    )
    dataset_dir = open_dataset_dir(dataset or config.data.dataset)
    data = DenseActionDataset(
        dataset_dir,
        split,
        window=config.data.window,
        train=False,
        validation_fraction=config.data.validation_fraction,
        seed=config.run.seed,
    )
    check_signature(state["dataset"], data.info, f"checkpoint {checkpoint}")
    for name in readouts:
        reason = readout_unavailable(config, name)
        if reason is not None:
            raise ValueError(f"checkpoint {checkpoint}: no {READOUTS[name].title} ({reason})")
    model = build_detector(config.model, data.info)
    restore(model, state, "model", checkpoint)
    context = distributed.Context(
        rank=0, world_size=1, device=distributed.resolve_device(device, key="device")
    )
    model.to(context.device)
    scores = predict_split(model, data, context, precision, progress)
    assert scores is not None, "a single process is the main one: it receives the predictions"
    table = score_and_save(scores, data, out)
    tables = {}
    for name in readouts:
        readout = READOUTS[name]
        found = predict_split(
            model, data, context, precision, progress, readout.readout(data.info.decomposition)
        )
        assert found is not None, "a single process is the main one"
        tables[name] = score_and_save(found, data, readout_path(out, name), labels_key=readout.labels)
    return Evaluation(table, out, checkpoint, int(state["epoch"]), split, dataset_dir, tables)
