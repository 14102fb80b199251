"""Loading a dataset folder into dense labels and a torch ``Dataset`` for training and evaluation.

:func:`read_labels` reads and cross-checks the three files and turns the annotations into dense
labels (clean-up reported); :class:`DenseActionDataset` adds the features and serves items;
:func:`collate` pads items into a :class:`Batch`.

Splits: ``"testing"`` is the test subset of ``annotations.json``. ``"training"`` and
``"validation"`` split the training subset: a seeded per-video carve-out puts
``round(validation_fraction * N)`` training videos into validation (:func:`validation_ids`), so
model selection never looks at the test subset.

Random windows and reproducibility: in train mode an item is a random window of ``window``
consecutive segments; its offset is drawn with ``torch.randint`` from ``generator`` if one is
given, else from torch's global generator. Nothing else is random, so:

- with ``DataLoader(num_workers=0)``, the offsets follow ``torch.get_rng_state()`` (or the state
  of ``generator``); save and restore that state, together with the state of the loader's
  ``generator`` (which drives the shuffling), to resume bit-exactly;
- with ``num_workers > 0``, leave ``generator=None``: each worker seeds torch's global generator
  from a base seed drawn from the loader's ``generator``, so that generator governs everything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from refdense.data.annotations import ANNOTATIONS_FILE, Annotations, read_annotations
from refdense.data.features import FEATURES_FILE, feature_lengths, read_features
from refdense.data.info import DatasetError, DatasetInfo, read_info
from refdense.data.labels import CleanupReport, decompose_labels, dense_labels

SPLITS = ("training", "validation", "testing")


@dataclass
class DatasetLabels:
    """What :func:`read_labels` returns: everything about a dataset but the feature values."""

    info: DatasetInfo
    annotations: Annotations
    lengths: dict[str, int]  # video_id -> T
    labels: dict[str, np.ndarray]  # video_id -> (T, C) uint8
    report: CleanupReport


def labels_from_annotations(
    annotations: Annotations, lengths: dict[str, int], info: DatasetInfo, where: str = "annotations"
) -> tuple[dict[str, np.ndarray], CleanupReport]:
    """Dense labels ``{video_id: (T, C) uint8}`` for every annotated video, and the summed clean-up report.

    ``lengths`` must hold exactly the annotated videos (a video in one but not the other raises).
    """
    missing = sorted(set(annotations) - set(lengths))
    extra = sorted(set(lengths) - set(annotations))
    if missing:
        raise DatasetError(
            f"{where}: video {missing[0]!r}: annotated but has no features ({len(missing)} such videos)"
        )
    if extra:
        raise DatasetError(
            f"{where}: video {extra[0]!r}: has features but no annotation ({len(extra)} such videos)"
        )
    report = CleanupReport()
    labels = {}
    for video_id, entry in annotations.items():
        labels[video_id], video_report = dense_labels(
            entry.actions, entry.duration, lengths[video_id], info.num_classes, info.boundary, video_id
        )
        report += video_report
    return labels, report


def read_labels(root: str | os.PathLike) -> DatasetLabels:
    """Read ``dataset.json``, ``annotations.json`` and the shapes in ``features.h5``; build dense labels.

    Raises :class:`~refdense.data.info.DatasetError` for a missing or malformed file, a video in
    one file but not the other, stream lengths that differ, or class ids out of range.
    """
    root = Path(root)
    info = read_info(root)
    annotations = read_annotations(root / ANNOTATIONS_FILE, num_classes=info.num_classes)
    lengths = feature_lengths(root / FEATURES_FILE, info)
    where = f"{root / ANNOTATIONS_FILE} vs {root / FEATURES_FILE}"
    labels, report = labels_from_annotations(annotations, lengths, info, where)
    return DatasetLabels(info, annotations, lengths, labels, report)


def validation_ids(training_ids: Sequence[str], fraction: float, seed: int) -> set[str]:
    """The seeded carve-out: ``round(fraction * N)`` of the (sorted) training ids, chosen by ``seed``."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction: expected a number in [0, 1), found {fraction!r}")
    ordered = sorted(training_ids)
    count = int(round(fraction * len(ordered)))
    order = np.random.default_rng(seed).permutation(len(ordered))
    return {ordered[i] for i in order[:count]}


def split_ids(
    annotations: Annotations, split: str, validation_fraction: float = 0.1, seed: int = 0
) -> list[str]:
    """The sorted video ids of ``split`` (``"training"``, ``"validation"`` or ``"testing"``)."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {list(SPLITS)}, found {split!r}")
    if split == "testing":
        return sorted(v for v, entry in annotations.items() if entry.subset == "testing")
    training = [v for v, entry in annotations.items() if entry.subset == "training"]
    held_out = validation_ids(training, validation_fraction, seed)
    if split == "validation":
        return sorted(held_out)
    return sorted(set(training) - held_out)


@dataclass
class Batch:
    """A padded batch. ``mask`` (B, T) is True on real segments, False on padding (where all else is 0).

    video (B, T, Dv), image (B, T, Di), labels (B, T, C), entity_labels (B, T, C_ent),
    motion_labels (B, T, C_mot): float32 tensors; video_ids: list of B ids.
    """

    video: torch.Tensor
    image: torch.Tensor
    labels: torch.Tensor
    entity_labels: torch.Tensor
    motion_labels: torch.Tensor
    mask: torch.Tensor
    video_ids: list[str]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``."""
        moved = {
            f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
            if isinstance(getattr(self, f.name), torch.Tensor)
            else getattr(self, f.name)
            for f in fields(self)
        }
        return Batch(**moved)

    def __len__(self) -> int:
        return len(self.video_ids)


def collate(items: Sequence[dict[str, Any]]) -> Batch:
    """Pad a list of :class:`DenseActionDataset` items to the longest one; returns a :class:`Batch`."""
    if not items:
        raise ValueError("collate: expected at least one item, found none")
    length = max(item["video"].shape[0] for item in items)
    size = len(items)

    def stack(key: str) -> torch.Tensor:
        width = items[0][key].shape[1]
        out = torch.zeros((size, length, width), dtype=torch.float32)
        for b, item in enumerate(items):
            out[b, : item[key].shape[0]] = torch.from_numpy(np.asarray(item[key], dtype=np.float32))
        return out

    mask = torch.zeros((size, length), dtype=torch.bool)
    for b, item in enumerate(items):
        mask[b, : item["video"].shape[0]] = True
    return Batch(
        video=stack("video"),
        image=stack("image"),
        labels=stack("labels"),
        entity_labels=stack("entity_labels"),
        motion_labels=stack("motion_labels"),
        mask=mask,
        video_ids=[item["video_id"] for item in items],
    )


class DenseActionDataset(Dataset):
    """Videos of one split with their features and dense labels, held in memory.

    Args:
        root: the dataset folder.
        split: ``"training"``, ``"validation"`` or ``"testing"`` (module docstring).
        window: T, the number of consecutive segments of a training window.
        train: True: an item is a random window of ``window`` segments (a shorter video whole);
            False: an item is a whole video.
        validation_fraction: share of the training subset carved out as validation.
        seed: seed of that carve-out (not of the windows).
        drop_empty: leave out videos without any positive segment (PAT does so for training);
            their ids are kept in ``dropped_empty``.
        generator: torch generator for the window offsets (default: torch's global one).

    Items are dicts: ``video_id`` str, ``start`` int (offset of the window), ``video`` (T, Dv) and
    ``image`` (T, Di) float32, ``labels`` (T, C), ``entity_labels`` (T, C_ent) and
    ``motion_labels`` (T, C_mot) uint8. Features stay in memory in their stored dtype (float16 for
    the synthetic presets) and are converted to float32 per item.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "training",
        window: int = 256,
        train: bool = True,
        validation_fraction: float = 0.1,
        seed: int = 0,
        drop_empty: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        if window < 1:
            raise ValueError(f"window: expected a positive number of segments, found {window}")
        self.root = Path(root)
        self.split, self.window, self.train, self.generator = split, window, train, generator
        data = read_labels(self.root)
        self.info, self.report = data.info, data.report
        ids = split_ids(data.annotations, split, validation_fraction, seed)
        if not ids:
            raise ValueError(
                f"{self.root}: split {split!r} holds no videos (validation_fraction={validation_fraction})"
            )
        self.dropped_empty = [v for v in ids if drop_empty and not data.labels[v].any()]
        self.video_ids = [v for v in ids if v not in set(self.dropped_empty)]
        features = read_features(self.root / FEATURES_FILE, self.video_ids, self.info)
        entity, motion = self.info.entity_matrix(), self.info.motion_matrix()
        self.videos: list[dict[str, Any]] = []
        for video_id in self.video_ids:
            labels = data.labels[video_id]
            self.videos.append(
                {
                    "video_id": video_id,
                    "video": features[video_id][0],
                    "image": features[video_id][1],
                    "labels": labels,
                    "entity_labels": decompose_labels(labels, entity),
                    "motion_labels": decompose_labels(labels, motion),
                }
            )
        self.durations = {v: data.annotations[v].duration for v in self.video_ids}

    def __len__(self) -> int:
        return len(self.videos)

    def lengths(self) -> list[int]:
        """T of every video, in item order."""
        return [video["labels"].shape[0] for video in self.videos]

    def __getitem__(self, index: int) -> dict[str, Any]:
        video = self.videos[index]
        length = video["labels"].shape[0]
        start, stop = 0, length
        if self.train and length > self.window:
            start = int(torch.randint(0, length - self.window + 1, (1,), generator=self.generator).item())
            stop = start + self.window
        item = {"video_id": video["video_id"], "start": start}
        for key in ("video", "image"):
            item[key] = video[key][start:stop].astype(np.float32)
        for key in ("labels", "entity_labels", "motion_labels"):
            item[key] = video[key][start:stop]
        return item
