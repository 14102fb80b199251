"""Datasets for dense action detection: the format on disk, dense labels, the torch loader.

- :mod:`refdense.data.format`: :class:`DatasetInfo` (``dataset.json``), super-events annotations
  (``annotations.json``), features (``features.h5``); readers validate, writers are atomic.
- :mod:`refdense.data.labels`: the seconds-to-segment rule, the clean-up rules with their
  :class:`CleanupReport`, dense labels and their decomposition ``Y_phi = min(1, Y @ A_phi)``.
- :mod:`refdense.data.dataset`: :class:`DenseActionDataset`, :class:`Batch`, :func:`collate`.
- :mod:`refdense.data.stats`: the statistics that ``refdense inspect`` prints.

The format is documented in ``data/README.md``.
"""

from __future__ import annotations

from pathlib import Path

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


def default_dataset(preset: str = "default", seed: int = 0, dials=None) -> Path:
    """The folder ``refdense.paths.data_root() / "synthetic" / preset``, generated if missing.

    Generation is deterministic (same preset, seed and dials, same bytes) and atomic (a temporary
    folder renamed into place), so an interrupted call leaves nothing that loads. ``seed`` other
    than 0 goes to ``<preset>-seed<seed>``, and mechanism dials (``refdense.synth.Dials``) other
    than the defaults add their names and values (``default-seed3-coupling0.5``). A copy made by
    another version of the generator (its ``dataset.json`` "source" differs) is regenerated, and
    the replacement is announced. Processes asking for the same folder at once (parallel sweeps)
    take turns (a lock on ``<folder>.lock`` beside it): one generates, the others then read it.
    """
    from refdense import synth
    from refdense.io import exclusive_lock
    from refdense.paths import data_root

    dials = (dials or synth.Dials()).for_preset(synth.PRESETS[preset])
    name = (preset if seed == 0 else f"{preset}-seed{seed}") + dials.slug()
    folder = data_root() / "synthetic" / name
    with exclusive_lock(folder.parent / f"{name}.lock", f"dataset {folder}", wait=True):
        if not (folder / INFO_FILE).is_file():
            synth.generate(preset, folder, seed=seed, dials=dials)
        else:
            expected = synth.dataset_info(preset, seed, dials).source
            found = read_info(folder).source
            if found != expected:
                print(f"{folder}: made by another generator version ({found!r}); regenerating it ({expected!r})")
                synth.generate(preset, folder, seed=seed, overwrite=True, dials=dials)
    return folder


__all__ = [
    "ANNOTATIONS_FILE", "FEATURES_FILE", "INFO_FILE", "SPLITS",
    "Annotations", "Batch", "CleanupReport", "DatasetError", "DatasetInfo", "DatasetLabels",
    "DenseActionDataset", "InstanceFix", "SplitStatistics", "StreamInfo", "VideoAnnotation",
    "clean_instances", "collate", "dataset_statistics", "decompose_labels", "default_dataset",
    "dense_labels", "feature_lengths", "format_statistics", "instance_span", "labels_from_annotations",
    "parse_annotations", "read_annotations", "read_features", "read_info", "read_labels", "recompose_labels",
    "segment_times", "split_ids", "split_statistics", "summarize_cleanup", "validation_ids",
    "write_annotations", "write_features", "write_info",
]
