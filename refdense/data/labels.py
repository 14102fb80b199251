"""From annotated instances in seconds to dense per-segment labels, and their decomposition.

The seconds-to-segment rule (docs/METHOD.md, section 6): a video of ``duration`` seconds has ``T`` feature
segments, so ``fps_feat = T / duration`` and segment ``t`` sits at time ``t / fps_feat``. Segment
``t`` is positive for an instance ``[s, e]`` iff ``s < t / fps_feat < e`` under the ``"strict"``
rule (PAT, MS-TCT) or ``s <= t / fps_feat <= e`` under ``"inclusive"`` (MLAD).

Real annotation files are dirty. :func:`dense_labels` applies these clean-up rules and reports
each one in a :class:`CleanupReport` (nothing is changed silently):

- an instance that starts before 0 or ends after the video is clipped to ``[0, duration]``;
- an instance with ``end <= start`` or starting at or after the end of the video is dropped;
- overlapping instances of one class are merged (their union is positive; :func:`overlap_unions`
  states the rule, :func:`merge_overlaps` applies it to a video's instances);
- an instance that is kept but covers no segment (shorter than a segment) is counted.

The decomposition (paper, "Dense Action-Entity & Dense Action-Motion Labels"; docs/METHOD.md, section 5):
``Y_phi = min(1, Y @ A_phi)`` for the 0/1 matrices ``A_ent`` (C, C_ent) and ``A_mot`` (C, C_mot),
which keeps the temporal boundaries of the action labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from refdense.data.info import BOUNDARIES, Boundary


@dataclass
class InstanceFix:
    """One instance the clean-up changed or flagged.

    ``kind`` is ``"clipped"``, ``"dropped"``, ``"merged"`` (overlaps an earlier instance of its class)
    or ``"no segment"`` (kept, but no segment is positive for it); ``reason`` says why and what was
    done; ``origin`` says where the instance was read (``"Charades_v1_train.csv:12"``, ``"Walk.txt:7"``,
    ``"multithumos.json: video 'v', actions[3]"``), when known.
    """

    video_id: str
    label: int
    start: float
    end: float
    kind: str
    reason: str
    origin: str = ""

    def to_dict(self) -> dict:
        return {
            "video": self.video_id,
            "class": self.label,
            "start": self.start,
            "end": self.end,
            "fix": self.kind,
            "reason": self.reason,
            "origin": self.origin,
        }


@dataclass
class CleanupReport:
    """What the clean-up rules changed: counts, and every instance in ``fixes``; add reports with ``+=``."""

    instances: int = 0
    clipped: int = 0
    clipped_seconds: float = 0.0
    merged: int = 0
    no_segment: int = 0
    videos_without_actions: list[str] = field(default_factory=list)
    fixes: list[InstanceFix] = field(default_factory=list)

    def __iadd__(self, other: CleanupReport) -> CleanupReport:
        self.instances += other.instances
        self.clipped += other.clipped
        self.clipped_seconds += other.clipped_seconds
        self.merged += other.merged
        self.no_segment += other.no_segment
        self.videos_without_actions.extend(other.videos_without_actions)
        self.fixes.extend(other.fixes)
        return self

    @property
    def dropped(self) -> list[InstanceFix]:
        return [fix for fix in self.fixes if fix.kind == "dropped"]

    @property
    def changed(self) -> bool:
        return bool(self.clipped or self.dropped or self.merged)

    def to_dict(self) -> dict:
        """The counts (every instance is in :attr:`fixes`)."""
        reasons: dict[str, int] = {}
        for item in self.dropped:
            reasons[item.reason] = reasons.get(item.reason, 0) + 1
        return {
            "instances": self.instances,
            "clipped": self.clipped,
            "clipped_seconds": round(self.clipped_seconds, 3),
            "dropped": len(self.dropped),
            "dropped_reasons": reasons,
            "merged_overlaps": self.merged,
            "covering_no_segment": self.no_segment,
            "videos_without_actions": len(self.videos_without_actions),
        }

    def summary(self) -> str:
        """One line, e.g. ``"1200 instances: clipped 310 (92.4 s), dropped 2 (end <= start: 2), ..."``."""
        return summarize_cleanup(self.to_dict())


def summarize_cleanup(report: dict) -> str:
    """The one-line summary of a :meth:`CleanupReport.to_dict` (also of a stored one)."""
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(report["dropped_reasons"].items()))
    dropped = f"dropped {report['dropped']}" + (f" ({reasons})" if reasons else "")
    return (
        f"{report['instances']} instances: clipped {report['clipped']} ({report['clipped_seconds']:.1f} s), "
        f"{dropped}, merged {report['merged_overlaps']} overlapping, {report['covering_no_segment']} cover "
        f"no segment; {report['videos_without_actions']} videos without actions"
    )


def segment_times(num_segments: int, duration: float) -> np.ndarray:
    """Times in seconds of the segments, ``t / fps_feat = t * duration / T``: (T,) float64."""
    return np.arange(num_segments, dtype=np.float64) * (duration / num_segments)


def instance_span(times: np.ndarray, start: float, end: float, boundary: Boundary = "strict") -> slice:
    """The segments positive for one instance ``[start, end]`` under ``boundary``, as a slice of ``times``.

    ``times`` (T,) are the increasing segment times of :func:`segment_times`.
    """
    if boundary == "strict":
        return slice(int(np.searchsorted(times, start, "right")), int(np.searchsorted(times, end, "left")))
    if boundary == "inclusive":
        return slice(int(np.searchsorted(times, start, "left")), int(np.searchsorted(times, end, "right")))
    raise ValueError(f"boundary: expected one of {list(BOUNDARIES)}, found {boundary!r}")


def drop_reason(start: float, end: float, duration: float) -> str | None:
    """Why an instance ``[start, end]`` of a video of ``duration`` seconds is dropped, or None if it is kept."""
    if end <= start:
        return "end <= start"
    if start >= duration:
        return "starts after the video"
    if end <= 0:
        return "ends before the video"
    return None


def clean_instances(
    actions: Iterable[tuple[int, float, float]],
    duration: float,
    video_id: str = "",
    origins: Sequence[str] | None = None,
) -> tuple[list[tuple[int, float, float]], CleanupReport]:
    """Apply the clip and drop rules (module docstring) to one video's ``(class, start, end)`` instances.

    Returns the kept instances (clipped, in the given order) and the report, which lists every
    clipped, dropped and merged instance with its origin (``origins[i]`` for ``actions[i]``, when
    given). Merging of overlaps is recorded here but happens in :func:`dense_labels` (the union of
    positive segments).
    """
    report = CleanupReport()
    kept, kept_origins = [], []
    for index, (label, start, end) in enumerate(actions):
        origin = origins[index] if origins is not None else ""
        report.instances += 1
        reason = drop_reason(start, end, duration)
        if reason is not None:
            report.fixes.append(InstanceFix(video_id, label, start, end, "dropped", reason, origin))
            continue
        clipped_start, clipped_end = max(start, 0.0), min(end, duration)
        if (clipped_start, clipped_end) != (start, end):
            report.clipped += 1
            report.clipped_seconds += (clipped_start - start) + (end - clipped_end)
            report.fixes.append(
                InstanceFix(
                    video_id,
                    label,
                    start,
                    end,
                    "clipped",
                    f"outside the video [0, {duration:g}] s: clipped to [{clipped_start:g}, {clipped_end:g}]",
                    origin,
                )
            )
        kept.append((label, clipped_start, clipped_end))
        kept_origins.append(origin)
    by_class: dict[int, list[tuple[float, float, str]]] = {}
    for (label, start, end), origin in zip(kept, kept_origins):
        by_class.setdefault(label, []).append((start, end, origin))
    for label, spans in by_class.items():
        for _, _, members in overlap_unions([(start, end) for start, end, _ in spans]):
            reach = spans[members[0]][1]
            for i in members[1:]:
                start, end, origin = spans[i]
                report.merged += 1
                report.fixes.append(
                    InstanceFix(
                        video_id,
                        label,
                        start,
                        end,
                        "merged",
                        f"overlaps an earlier instance of its class (reaching {reach:g} s): "
                        "their union is positive",
                        origin,
                    )
                )
                reach = max(reach, end)
    if not kept:
        report.videos_without_actions.append(video_id)
    return kept, report


def overlap_unions(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float, list[int]]]:
    """The merge rule (module docstring) on the instances ``(start, end)`` of one class: taken in
    order of (start, end), an instance that starts before every earlier one has ended joins their
    union. Returns each union as ``(start, end, indices of its instances in that order)``, by start."""
    unions: list[tuple[float, float, list[int]]] = []
    for i in sorted(range(len(spans)), key=lambda i: spans[i]):
        start, end = spans[i]
        if unions and start < unions[-1][1]:
            first, reach, members = unions[-1]
            unions[-1] = (first, max(reach, end), [*members, i])
        else:
            unions.append((start, end, [i]))
    return unions


def merge_overlaps(actions: Iterable[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """Overlapping instances ``(class, start, end)`` of one class replaced by their union
    (:func:`overlap_unions`); sorted by (start, class)."""
    by_class: dict[int, list[tuple[float, float]]] = {}
    for label, start, end in actions:
        by_class.setdefault(label, []).append((start, end))
    merged = [(label, s, e) for label, spans in by_class.items() for s, e, _ in overlap_unions(spans)]
    return sorted(merged, key=lambda a: (a[1], a[0]))


def dense_labels(
    actions: Iterable[tuple[int, float, float]],
    duration: float,
    num_segments: int,
    num_classes: int,
    boundary: Boundary = "strict",
    video_id: str = "",
) -> tuple[np.ndarray, CleanupReport]:
    """Dense labels of one video from its instances in seconds.

    Args:
        actions: ``(class, start_s, end_s)`` with 0-based classes in ``[0, num_classes)``.
        duration: the video's duration in seconds (> 0).
        num_segments: T, the number of feature segments.
        num_classes: C.
        boundary: ``"strict"`` or ``"inclusive"`` (module docstring).
        video_id: used in the report and in errors.

    Returns:
        ``Y`` (T, C) uint8 in {0, 1} and the :class:`CleanupReport` of this video.
    """
    if num_segments < 1 or duration <= 0:
        raise ValueError(
            f"video {video_id!r}: expected T >= 1 and duration > 0, found T={num_segments}, "
            f"duration={duration}"
        )
    kept, report = clean_instances(actions, duration, video_id)
    times = segment_times(num_segments, duration)
    labels = np.zeros((num_segments, num_classes), dtype=np.uint8)
    for label, start, end in kept:
        if not 0 <= label < num_classes:
            raise ValueError(
                f"video {video_id!r}: class id {label} out of range, expected 0..{num_classes - 1}"
            )
        span = instance_span(times, start, end, boundary)
        if span.stop <= span.start:
            report.no_segment += 1
            report.fixes.append(
                InstanceFix(
                    video_id, label, start, end, "no segment", no_segment_reason(num_segments, duration)
                )
            )
        labels[span, label] = 1
    return labels, report


def no_segment_reason(num_segments: int, duration: float) -> str:
    """Why a kept instance has no positive segment (the :class:`InstanceFix` reason)."""
    return (
        f"shorter than the {duration / num_segments:.3g} s between segments (T={num_segments} over "
        f"{duration:g} s): kept, but no segment is positive"
    )


def decompose_labels(labels: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``Y_phi = min(1, Y @ A_phi)``: (..., C) labels and (C, C_phi) 0/1 matrix -> (..., C_phi), dtype of labels."""
    return np.minimum(labels.astype(np.int64) @ matrix.astype(np.int64), 1).astype(labels.dtype)


def recompose_labels(
    entity_labels: np.ndarray, motion_labels: np.ndarray, entity_matrix: np.ndarray, motion_matrix: np.ndarray
) -> np.ndarray:
    """The action classes the sub-labels fit: class c where each part it has is on.

    ``entity_labels`` (..., C_ent) and ``motion_labels`` (..., C_mot) 0/1, ``entity_matrix`` (C, C_ent)
    and ``motion_matrix`` (C, C_mot) -> (..., C) bool. Every class that is on fits (decomposition
    keeps it), but when several actions are on at once, classes that are off can fit too: their
    entity comes from one action and their motion from another. The sub-labels do not say which
    entity goes with which motion (the binding problem).
    """
    entity_on = entity_labels.astype(np.int64) @ entity_matrix.T.astype(np.int64) > 0
    motion_on = motion_labels.astype(np.int64) @ motion_matrix.T.astype(np.int64) > 0
    return (entity_on | (entity_matrix.sum(1) == 0)) & (motion_on | (motion_matrix.sum(1) == 0))
