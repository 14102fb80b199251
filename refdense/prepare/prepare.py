"""``refdense prepare``: official annotation and feature files -> a refdense dataset folder.

Steps (each one reports what it did; nothing is dropped or changed silently):

1. read the annotations (:func:`refdense.prepare.formats.read_raw_annotations`), counting what cannot
   be translated (unknown class ids, malformed lines);
2. match videos with features (:func:`match_videos`): annotated videos without features and
   features without annotation are counted and left out;
3. stream the features into ``features.h5`` one video at a time (:class:`VideoFeatures`; float16 by
   default), refusing a video whose array is malformed, empty (shorter than one segment), not
   finite, or whose two streams differ by more than ``length_tolerance`` segments (smaller
   differences are truncated to the shorter stream and counted; see
   :func:`refdense.prepare.features.align_streams`);
4. fill in missing durations (MultiTHUMOS per-class files have none) as ``T * segment_frames / fps``
   (:func:`annotate_video`, as step 5);
5. clean the instances with ``refdense.data``'s rules (clip to the video, drop empty or outside
   instances) and merge overlapping instances of one class, then write ``annotations.json`` and
   ``dataset.json``.

Both feature streams are required: the dataset format (``docs/DESIGN.md``) always holds a
``video`` and an ``image`` stream.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refdense.data.annotations import ANNOTATIONS_FILE, VideoAnnotation, write_annotations
from refdense.data.features import FEATURES_FILE, feature_writer
from refdense.data.folder import dataset_directory
from refdense.data.info import Boundary, DatasetInfo, StreamInfo, write_info
from refdense.data.labels import (
    CleanupReport,
    InstanceFix,
    clean_instances,
    drop_reason,
    instance_span,
    merge_overlaps,
    no_segment_reason,
    segment_times,
    summarize_cleanup,
)
from refdense.io import atomic_write
from refdense.prepare.decompose import Decomposition
from refdense.prepare.features import FeatureError, FeatureSource, align_streams, to_storage
from refdense.prepare.formats import DATASET_NAMES, RawAnnotations, guess_dataset
from refdense.progress import track

REPORT_FILE = "prepare-report.json"
REPORT_FORMAT = "refdense-prepare-report/1"
# Frame rate of the videos the community's features were extracted from (Charades at 24 fps,
# THUMOS videos mostly at 30 fps, TSU at 20 fps); used for dataset.json's fps and, for the
# MultiTHUMOS per-class files only, for the durations.
DEFAULT_FPS = {"charades": 24.0, "multithumos": 30.0, "tsu": 20.0}


@dataclass
class PrepareReport:
    """What :func:`prepare_dataset` found and fixed; ``summary()`` is what the CLI prints."""

    videos_written: dict[str, int] = field(default_factory=dict)  # subset -> count
    reader_problems: dict[str, int] = field(default_factory=dict)
    reader_examples: dict[str, str] = field(default_factory=dict)
    reader_details: dict[str, list[str]] = field(default_factory=dict)
    without_features: list[str] = field(default_factory=list)
    without_annotation: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> video ids
    skipped_examples: dict[str, str] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)
    durations_from_features: int = 0
    dropped_empty_training: list[str] = field(default_factory=list)
    cleanup: CleanupReport = field(default_factory=CleanupReport)

    def skip(self, reason: str, video_id: str, message: str) -> None:
        self.skipped.setdefault(reason, []).append(video_id)
        self.skipped_examples.setdefault(reason, message)

    def add(self, outcome: VideoOutcome) -> None:
        """Count what :func:`prepare_video` did with one video (called in the order of the videos)."""
        if outcome.truncated:
            self.truncated.append(outcome.video_id)
        if outcome.duration_from_features:
            self.durations_from_features += 1
        if outcome.skipped is not None:
            reason, message = outcome.skipped
            self.skip(reason, outcome.video_id, message)
            return
        self.cleanup += outcome.cleanup
        if outcome.annotation is None:
            self.dropped_empty_training.append(outcome.video_id)
            return
        subset = outcome.annotation.subset
        self.videos_written[subset] = self.videos_written.get(subset, 0) + 1

    def to_dict(self) -> dict:
        """What ``prepare-report.json`` holds: the counts, and every fix by video and instance (``fixes``,
        ``annotation_problems``), with the file and line or video it came from."""
        return {
            "format": REPORT_FORMAT,
            "videos_written": self.videos_written,
            "reader_problems": self.reader_problems,
            "reader_examples": self.reader_examples,
            "annotated_without_features": self.without_features,
            "features_without_annotation": self.without_annotation,
            "skipped": self.skipped,
            "skipped_examples": self.skipped_examples,
            "streams_truncated_to_shorter": self.truncated,
            "durations_from_features": self.durations_from_features,
            "dropped_training_videos_without_actions": self.dropped_empty_training,
            "cleanup": self.cleanup.to_dict(),
            "videos_without_actions": self.cleanup.videos_without_actions,
            "annotation_problems": self.reader_details,
            "fixes": [fix.to_dict() for fix in self.cleanup.fixes],
        }

    def summary(self) -> str:
        """A few lines for a person: counts, with one example message per kind of problem."""
        return summarize_prepare_report(self.to_dict())


def summarize_prepare_report(report: dict) -> str:
    """The lines :meth:`PrepareReport.summary` prints, from a report dict (also one read from
    ``prepare-report.json``)."""
    written = ", ".join(f"{n} {subset}" for subset, n in sorted(report["videos_written"].items()))
    lines = [f"written: {sum(report['videos_written'].values())} videos ({written or 'none'})"]
    for kind, count in sorted(report["reader_problems"].items()):
        lines.append(f"annotations: {count} x {kind}, e.g. {report['reader_examples'][kind]}")

    def ids(items: list[str]) -> str:
        return ", ".join(items[:3]) + (" ..." if len(items) > 3 else "")

    if report["annotated_without_features"]:
        lines.append(
            f"left out {len(report['annotated_without_features'])} annotated videos without features: "
            f"{ids(report['annotated_without_features'])}"
        )
    if report["features_without_annotation"]:
        lines.append(
            f"ignored {len(report['features_without_annotation'])} feature files without annotation: "
            f"{ids(report['features_without_annotation'])}"
        )
    for reason, videos in sorted(report["skipped"].items()):
        lines.append(f"left out {len(videos)} videos ({reason}), e.g. {report['skipped_examples'][reason]}")
    if report["streams_truncated_to_shorter"]:
        lines.append(
            f"truncated {len(report['streams_truncated_to_shorter'])} videos to the shorter stream (lengths "
            f"differed within tolerance): {ids(report['streams_truncated_to_shorter'])}"
        )
    if report["durations_from_features"]:
        lines.append(
            f"durations taken from the features for {report['durations_from_features']} videos "
            "(T * segment_frames / fps)"
        )
    if report["dropped_training_videos_without_actions"]:
        lines.append(
            f"dropped {len(report['dropped_training_videos_without_actions'])} training videos without actions"
        )
    lines.append("clean-up: " + summarize_cleanup(report["cleanup"]))
    if report["fixes"]:
        first = report["fixes"][0]
        lines.append(
            f'every fix is listed by video and instance (with where it was read) under "fixes" in '
            f"{REPORT_FILE}; e.g. {first['fix']}: {first['video']}, class {first['class']} "
            f"[{first['start']:g}, {first['end']:g}] s ({first['origin']}): {first['reason']}"
        )
    return "\n".join(lines)


def read_prepare_report(folder: str | Path) -> dict | None:
    """The ``prepare-report.json`` of a dataset folder, or None when it has none (e.g. synthetic data)."""
    path = Path(folder) / REPORT_FILE
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable preparation report ({error})") from None
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        found = report.get("format") if isinstance(report, dict) else type(report).__name__
        raise ValueError(
            f"{path}: expected a preparation report of format {REPORT_FORMAT!r}, found {found!r} "
            "(prepare the dataset again with this version)"
        )
    return report


@dataclass(frozen=True)
class VideoMatch:
    """Which videos have annotations and both feature streams (:func:`match_videos`)."""

    candidates: list[str]  # annotated, with both streams: the videos to prepare (sorted)
    without_features: list[str]  # annotated, missing a stream
    without_annotation: list[str]  # with features, not annotated


def match_videos(raw: RawAnnotations, video_ids: list[str], image_ids: list[str], where: Path) -> VideoMatch:
    """Match the annotated videos with those of the two feature sources (``where``: the video one,
    named in the error); raises :class:`FeatureError` when no video has both."""
    with_features = set(video_ids) & set(image_ids)
    match = VideoMatch(
        candidates=sorted(set(raw.videos) & with_features),
        without_features=sorted(set(raw.videos) - with_features),
        without_annotation=sorted((set(video_ids) | set(image_ids)) - set(raw.videos)),
    )
    if not match.candidates:
        looks = guess_dataset(video_ids)
        hint = (
            f"; the features look like {DATASET_NAMES[looks]}'s videos"
            if looks and looks != guess_dataset(raw.videos)
            else ""
        )
        raise FeatureError(
            f"no video has both annotations and features: {len(raw.videos)} annotated "
            f"(e.g. {sorted(raw.videos)[:2]}), features for e.g. {video_ids[:2]} in {where}{hint}"
        )
    return match


class VideoFeatures:
    """The two feature sources, read one video at a time in the storage dtype, checked and aligned.

    The first video read fixes the width of each stream (``widths``); a later video of another
    width is refused.
    """

    def __init__(
        self, video_source: FeatureSource, image_source: FeatureSource, *, length_tolerance: int, dtype: str
    ) -> None:
        self.video_source, self.image_source = video_source, image_source
        self.length_tolerance, self.dtype = length_tolerance, dtype
        self.widths: dict[str, int] = {}

    def read(self, video_id: str) -> tuple[np.ndarray, np.ndarray, bool]:
        """``video`` ``(T, Dv)``, ``image`` ``(T, Di)`` and whether the streams were truncated to the
        shorter one; raises :class:`FeatureError` (with its ``reason``) for a video left out."""
        where_v = f"{self.video_source.path}: video {video_id!r}"
        video, image = self.video_source.load(video_id), self.image_source.load(video_id)
        for stream, array in (("video", video), ("image", image)):
            if len(array) < 1:
                raise FeatureError(
                    f"{where_v}: {stream} features have 0 segments", "features shorter than one segment"
                )
            expected = self.widths.setdefault(stream, array.shape[1])
            if array.shape[1] != expected:
                raise FeatureError(
                    f"{where_v}: {stream} dimension {array.shape[1]}, expected "
                    f"{expected} like the videos before it",
                    "feature dimension differs",
                )
        truncated = len(video) != len(image)
        video, image = align_streams(video, image, self.length_tolerance, where_v)
        video = to_storage(video, self.dtype, where_v)
        image = to_storage(image, self.dtype, f"{self.image_source.path}: video {video_id!r}")
        return video, image, truncated


@dataclass(frozen=True)
class VideoOutcome:
    """What :func:`prepare_video` made of one video; :meth:`PrepareReport.add` counts it."""

    video_id: str
    annotation: VideoAnnotation | None = None  # what annotations.json holds; None: the video is left out
    video: np.ndarray | None = None  # (T, Dv) and (T, Di) in the storage dtype, when written
    image: np.ndarray | None = None
    skipped: tuple[str, str] | None = None  # (reason, message): left out for its features or its duration
    truncated: bool = False  # the streams were truncated to the shorter one
    duration_from_features: bool = False  # the annotations have no duration: T * segment_frames / fps
    cleanup: CleanupReport = field(default_factory=CleanupReport)  # what the clean-up changed


def annotate_video(
    video_id: str,
    entry: dict,
    length: int,
    *,
    segment_frames: int,
    fps: float,
    boundary: Boundary,
    drop_empty_training: bool,
) -> VideoOutcome:
    """The cleaned annotation of a video of ``length`` segments (``entry``: its raw annotation);
    a video without a positive duration is skipped, one without actions dropped from training
    when ``drop_empty_training``."""
    duration = entry["duration"]
    from_features = duration is None
    if from_features:
        duration = length * segment_frames / fps
    if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
        return VideoOutcome(
            video_id,
            duration_from_features=from_features,
            skipped=(
                "no positive duration",
                f"video {video_id!r}: duration {duration!r} is not a positive number",
            ),
        )
    duration = float(duration)
    kept, cleanup = clean_instances(
        [tuple(a) for a in entry["actions"]], duration, video_id, entry["origins"]
    )
    merged = merge_overlaps(kept)
    # instances covering no segment, counted on what annotations.json holds (as the loader counts)
    times = segment_times(length, duration)
    kept_origins = [
        origin
        for (_, s, e), origin in zip(entry["actions"], entry["origins"])
        if drop_reason(s, e, duration) is None
    ]
    for label, start, end in merged:
        span = instance_span(times, start, end, boundary)
        if span.stop <= span.start:
            cleanup.no_segment += 1
            origins = [
                origin
                for (c, s, e), origin in zip(kept, kept_origins)
                if c == label and start <= s and e <= end
            ]
            cleanup.fixes.append(
                InstanceFix(
                    video_id,
                    label,
                    start,
                    end,
                    "no segment",
                    no_segment_reason(length, duration),
                    "; ".join(origins),
                )
            )
    dropped = not kept and drop_empty_training and entry["subset"] == "training"
    annotation = None if dropped else VideoAnnotation(entry["subset"], duration, tuple(merged))
    return VideoOutcome(
        video_id, annotation=annotation, duration_from_features=from_features, cleanup=cleanup
    )


def prepare_video(
    video_id: str,
    entry: dict,
    features: VideoFeatures,
    *,
    segment_frames: int,
    fps: float,
    boundary: Boundary,
    drop_empty_training: bool,
) -> VideoOutcome:
    """One video: its features read and checked (:class:`VideoFeatures`), then its annotation
    cleaned (:func:`annotate_video`, which takes the keyword arguments)."""
    try:
        video, image, truncated = features.read(video_id)
    except FeatureError as error:
        return VideoOutcome(video_id, skipped=(error.reason, str(error)))
    outcome = annotate_video(
        video_id,
        entry,
        len(video),
        segment_frames=segment_frames,
        fps=fps,
        boundary=boundary,
        drop_empty_training=drop_empty_training,
    )
    if outcome.annotation is None:
        return dataclasses.replace(outcome, truncated=truncated)
    return dataclasses.replace(outcome, truncated=truncated, video=video, image=image)


def prepared_info(
    raw: RawAnnotations,
    decomposition: Decomposition | None,
    widths: dict[str, int],
    *,
    name: str,
    fps: float,
    segment_frames: int,
    boundary: Boundary,
    video_encoder: str,
    image_encoder: str,
    video_features: str | Path,
    image_features: str | Path,
) -> DatasetInfo:
    """``dataset.json`` of the prepared dataset (``widths``: of the video and image streams)."""
    return DatasetInfo(
        name=name,
        classes=tuple(raw.classes),
        entities=decomposition.entities if decomposition else (),
        motions=decomposition.motions if decomposition else (),
        decomposition=decomposition.pairs if decomposition else ((None, None),) * len(raw.classes),
        streams={
            "video": StreamInfo(widths["video"], video_encoder),
            "image": StreamInfo(widths["image"], image_encoder),
        },
        segment_frames=segment_frames,
        fps=float(fps),
        boundary=boundary,
        source=f"refdense prepare: {raw.source}; features {Path(video_features).name} + {Path(image_features).name}"
        + (f"; decomposition {decomposition.name} ({decomposition.source})" if decomposition else ""),
    )


def prepare_dataset(
    raw: RawAnnotations,
    video_features: str | Path,
    image_features: str | Path,
    out: str | Path,
    *,
    decomposition: Decomposition | None,
    name: str,
    fps: float,
    segment_frames: int = 8,
    boundary: Boundary = "strict",
    dtype: str = "float16",
    length_tolerance: int = 2,
    drop_empty_training: bool = False,
    video_encoder: str = "i3d",
    image_encoder: str = "clip-rn50",
    progress: bool | None = None,
) -> PrepareReport:
    """Write ``dataset.json``, ``annotations.json``, ``features.h5`` and ``prepare-report.json`` into ``out``.

    Args:
        raw: the annotations, as read by :func:`refdense.prepare.formats.read_raw_annotations`.
        video_features, image_features: a folder of ``<id>.npy`` or an HDF5 file each
            (:class:`refdense.prepare.features.FeatureSource`); the same HDF5 file may serve both.
        decomposition: the class decomposition (reordered to ``raw.classes``), or None for a
            dataset without entity and motion labels (PAT only).
        name: the dataset's name in ``dataset.json``.
        fps: frame rate of the source videos (``dataset.json``'s ``fps``; also the durations
            of videos whose annotations carry none).
        segment_frames: frames per feature segment (8 for the community's I3D features).
        boundary: the seconds-to-segment rule, ``"strict"`` (PAT, MS-TCT) or ``"inclusive"`` (MLAD).
        dtype: storage dtype of the features, ``"float16"`` or ``"float32"``.
        length_tolerance: largest difference in segments between the two streams of a video that
            is fixed by truncation (larger differences leave the video out).
        drop_empty_training: leave out training videos without actions (PAT does); testing videos
            without actions are always kept for evaluation.

    The steps: :func:`match_videos`; per video :func:`prepare_video` (its features through
    :class:`VideoFeatures`, its annotation through :func:`annotate_video`), counted by
    :meth:`PrepareReport.add` and its features written as they come (one video in memory at a
    time); then :func:`prepared_info` and the three other files.

    ``out`` is replaced as a whole at the end (``refdense.data.folder.dataset_directory``): an error
    or a kill at any point leaves the previous dataset (or none), never a mix of old and new files.
    ``out`` must be missing, empty or a dataset folder of this project; any other folder is refused
    (``FileExistsError``) before any work.
    """
    out = Path(out)
    report = PrepareReport(
        reader_problems=dict(raw.problems),
        reader_examples=dict(raw.examples),
        reader_details={kind: list(messages) for kind, messages in raw.details.items()},
    )
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype: expected 'float16' or 'float32', found {dtype!r}")
    if decomposition is not None:
        decomposition = decomposition.reorder(raw.classes, where=f"decomposition {decomposition.name!r}")

    with (
        dataset_directory(out, overwrite=True) as staging,
        FeatureSource(video_features, "video") as video_source,
        FeatureSource(image_features, "image") as image_source,
    ):
        match = match_videos(raw, video_source.ids, image_source.ids, video_source.path)
        report.without_features, report.without_annotation = match.without_features, match.without_annotation
        features = VideoFeatures(video_source, image_source, length_tolerance=length_tolerance, dtype=dtype)
        annotations: dict[str, VideoAnnotation] = {}
        with feature_writer(staging / FEATURES_FILE, dtype=dtype) as writer:
            for video_id in track(match.candidates, desc="prepare", unit="videos", enabled=progress):
                outcome = prepare_video(
                    video_id,
                    raw.videos[video_id],
                    features,
                    segment_frames=segment_frames,
                    fps=fps,
                    boundary=boundary,
                    drop_empty_training=drop_empty_training,
                )
                report.add(outcome)
                if outcome.annotation is not None:
                    assert outcome.video is not None and outcome.image is not None, "prepare_video keeps them"
                    writer.add(video_id, outcome.video, outcome.image)
                    annotations[video_id] = outcome.annotation
            if not annotations:  # raising here leaves no features.h5 behind (and keeps an older one)
                raise FeatureError(f"every video was left out:\n{report.summary()}")
        info = prepared_info(
            raw,
            decomposition,
            features.widths,
            name=name,
            fps=fps,
            segment_frames=segment_frames,
            boundary=boundary,
            video_encoder=video_encoder,
            image_encoder=image_encoder,
            video_features=video_features,
            image_features=image_features,
        )
        write_annotations(staging / ANNOTATIONS_FILE, annotations)
        with atomic_write(staging / REPORT_FILE) as handle:
            json.dump(report.to_dict(), handle, indent=1)
        write_info(staging, info)
    return report
