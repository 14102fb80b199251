"""Label statistics of a dataset, per subset (what ``refdense inspect`` prints).

The quantities are those of docs/METHOD.md, section 6, so that a synthetic preset can be compared with the
real datasets: number of videos and segments, duration mean and median, instances per video,
instance duration percentiles (after clipping), label density (mean number of active classes per
segment, which equals the mean per second since segments are evenly spaced), share of segments
with two or more active classes, class-frequency skew (share of all instances that belong to the
10 most frequent classes; most / least frequent class), and the clean-up report.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from refdense.data.annotations import ANNOTATIONS_FILE, SUBSETS, Annotations, read_annotations
from refdense.data.dataset import labels_from_annotations
from refdense.data.features import FEATURES_FILE, feature_lengths
from refdense.data.info import DatasetInfo, read_info
from refdense.data.labels import CleanupReport, clean_instances, summarize_cleanup


@dataclass
class SplitStatistics:
    """Statistics of one subset; ``cleanup`` is :meth:`CleanupReport.to_dict` of that subset."""

    videos: int
    segments: int
    duration_mean: float
    duration_median: float
    instances_per_video: float
    instance_duration_p10: float
    instance_duration_median: float
    instance_duration_p90: float
    label_density: float
    multi_label_share: float
    top10_share: float
    max_to_min_class_ratio: float
    classes_present: int
    cleanup: dict

    def to_dict(self) -> dict:
        return asdict(self)


def split_statistics(
    annotations: Annotations, lengths: dict[str, int], info: DatasetInfo
) -> dict[str, SplitStatistics]:
    """``{subset: SplitStatistics}`` for each subset present in ``annotations``.

    ``lengths`` maps each annotated video to its number of segments T (the labels are built with
    the dataset's segment rule).
    """
    result = {}
    for subset in SUBSETS:
        part = {v: entry for v, entry in annotations.items() if entry.subset == subset}
        if not part:
            continue
        labels, report = labels_from_annotations(
            part, {v: lengths[v] for v in part if v in lengths}, info, subset
        )
        result[subset] = _statistics(part, labels, report, info.num_classes)
    return result


def _statistics(
    part: Annotations, labels: dict[str, np.ndarray], report: CleanupReport, num_classes: int
) -> SplitStatistics:
    durations = np.array([entry.duration for entry in part.values()])
    instance_durations: list[float] = []
    classes: list[int] = []
    for video_id, entry in part.items():
        kept, _ = clean_instances(entry.actions, entry.duration, video_id)
        instance_durations.extend(end - start for _, start, end in kept)
        classes.extend(label for label, _, _ in kept)
    active = np.concatenate([y.sum(axis=1) for y in labels.values()])
    counts = np.sort(np.bincount(np.asarray(classes, dtype=np.int64), minlength=num_classes))[::-1]
    present = counts[counts > 0]
    p10, p50, p90 = np.percentile(instance_durations, [10, 50, 90]) if instance_durations else (np.nan,) * 3
    return SplitStatistics(
        videos=len(part),
        segments=int(active.size),
        duration_mean=float(durations.mean()),
        duration_median=float(np.median(durations)),
        instances_per_video=len(classes) / len(part),
        instance_duration_p10=float(p10),
        instance_duration_median=float(p50),
        instance_duration_p90=float(p90),
        label_density=float(active.mean()),
        multi_label_share=float((active >= 2).mean()),
        top10_share=float(counts[:10].sum() / max(counts.sum(), 1)),
        max_to_min_class_ratio=float(present[0] / present[-1]) if present.size else float("nan"),
        classes_present=int(present.size),
        cleanup=report.to_dict(),
    )


def dataset_statistics(root: str | os.PathLike) -> dict[str, SplitStatistics]:
    """:func:`split_statistics` of a dataset folder (reads the feature shapes, not the values)."""
    root = Path(root)
    info = read_info(root)
    annotations = read_annotations(root / ANNOTATIONS_FILE, num_classes=info.num_classes)
    lengths = feature_lengths(root / FEATURES_FILE, info)
    labels_from_annotations(
        annotations, lengths, info, f"{root / ANNOTATIONS_FILE} vs {root / FEATURES_FILE}"
    )
    return split_statistics(annotations, lengths, info)


def format_statistics(stats: dict[str, SplitStatistics]) -> str:
    """A readable table, one column per subset."""
    rows = [
        ("videos", "videos", "{:d}"),
        ("segments", "segments", "{:d}"),
        ("duration mean (s)", "duration_mean", "{:.1f}"),
        ("duration median (s)", "duration_median", "{:.1f}"),
        ("instances per video", "instances_per_video", "{:.2f}"),
        ("instance duration p10 (s)", "instance_duration_p10", "{:.2f}"),
        ("instance duration median (s)", "instance_duration_median", "{:.2f}"),
        ("instance duration p90 (s)", "instance_duration_p90", "{:.2f}"),
        ("label density (active/segment)", "label_density", "{:.3f}"),
        ("share of segments with >= 2 active", "multi_label_share", "{:.3f}"),
        ("top-10 classes' share of instances", "top10_share", "{:.3f}"),
        ("most / least frequent class", "max_to_min_class_ratio", "{:.1f}"),
        ("classes present", "classes_present", "{:d}"),
    ]
    subsets = list(stats)
    width = max(len(label) for label, _, _ in rows)
    lines = [" " * width + "".join(f"{s:>12}" for s in subsets)]
    for label, key, fmt in rows:
        lines.append(
            f"{label:<{width}}" + "".join(f"{fmt.format(getattr(stats[s], key)):>12}" for s in subsets)
        )
    lines.append("annotation fixes:")
    for subset in subsets:
        lines.append(f"  {subset}: {summarize_cleanup(stats[subset].cleanup)}")
    return "\n".join(lines)
