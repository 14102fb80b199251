"""Datasets for dense action detection: the format on disk, dense labels, the torch loader.

- :mod:`refdense.data.format`: :class:`DatasetInfo` (``dataset.json``), super-events annotations
  (``annotations.json``), features (``features.h5``); readers validate, writers are atomic.
- :mod:`refdense.data.labels`: the seconds-to-segment rule, the clean-up rules with their
  :class:`CleanupReport`, dense labels and their decomposition ``Y_phi = min(1, Y @ A_phi)``.
- :mod:`refdense.data.dataset`: :class:`DenseActionDataset`, :class:`Batch`, :func:`collate`.
- :mod:`refdense.data.stats`: the statistics that ``refdense inspect`` prints.

The synthetic datasets (generated, cached) come from :func:`refdense.synth.default_dataset`.

The format is documented in ``data/README.md``.
"""

from __future__ import annotations

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
from refdense.data.format import (
    ANNOTATIONS_FILE,
    FEATURES_FILE,
    INFO_FILE,
    Annotations,
    DatasetError,
    DatasetInfo,
    StreamInfo,
    VideoAnnotation,
    feature_lengths,
    parse_annotations,
    read_annotations,
    read_features,
    read_info,
    write_annotations,
    write_features,
    write_info,
)
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
