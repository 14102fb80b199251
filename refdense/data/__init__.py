"""Datasets for dense action detection: the format on disk, dense labels, the torch loader.

- The format on disk, one module per file; readers validate (:class:`DatasetError` names the file,
  the video, what was expected and found), writers are atomic:
  :mod:`refdense.data.info` (:class:`DatasetInfo`, ``dataset.json``), :mod:`refdense.data.annotations`
  (super-events ``annotations.json``), :mod:`refdense.data.features` (``features.h5``), and
  :mod:`refdense.data.folder` (a whole dataset folder, replaced only when it holds a dataset).
- :mod:`refdense.data.labels`: the seconds-to-segment rule, the clean-up rules with their
  :class:`CleanupReport`, dense labels and their decomposition ``Y_phi = min(1, Y @ A_phi)``.
- :mod:`refdense.data.dataset`: :class:`DenseActionDataset`, :class:`Batch`, :func:`collate`.
- :mod:`refdense.data.stats`: the statistics that ``refdense inspect`` prints.

The synthetic datasets (generated, cached) come from :func:`refdense.synth.default_dataset`.

The format is documented in ``data/README.md``.
"""

from __future__ import annotations

from refdense.data.annotations import (
    ANNOTATIONS_FILE,
    Annotations,
    VideoAnnotation,
    parse_annotations,
    read_annotations,
    write_annotations,
)
from refdense.data.dataset import (
    SPLITS,
    Batch,
    DatasetLabels,
    DenseActionDataset,
    collate,
    labels_from_annotations,
    read_labels,
    split_ids,
    validation_ids,
)
from refdense.data.features import FEATURES_FILE, feature_lengths, read_features, write_features
from refdense.data.info import INFO_FILE, DatasetError, DatasetInfo, StreamInfo, read_info, write_info
from refdense.data.labels import (
    CleanupReport,
    InstanceFix,
    clean_instances,
    decompose_labels,
    dense_labels,
    instance_span,
    recompose_labels,
    segment_times,
    summarize_cleanup,
)
from refdense.data.stats import SplitStatistics, dataset_statistics, format_statistics, split_statistics

__all__ = [
    "ANNOTATIONS_FILE",
    "FEATURES_FILE",
    "INFO_FILE",
    "SPLITS",
    "Annotations",
    "Batch",
    "CleanupReport",
    "DatasetError",
    "DatasetInfo",
    "DatasetLabels",
    "DenseActionDataset",
    "InstanceFix",
    "SplitStatistics",
    "StreamInfo",
    "VideoAnnotation",
    "clean_instances",
    "collate",
    "dataset_statistics",
    "decompose_labels",
    "dense_labels",
    "feature_lengths",
    "format_statistics",
    "instance_span",
    "labels_from_annotations",
    "parse_annotations",
    "read_annotations",
    "read_features",
    "read_info",
    "read_labels",
    "recompose_labels",
    "segment_times",
    "split_ids",
    "split_statistics",
    "summarize_cleanup",
    "validation_ids",
    "write_annotations",
    "write_features",
    "write_info",
]
