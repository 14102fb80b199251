"""``refdense prepare``: official annotation and feature files -> a refdense dataset folder.

Steps (each one reports what it did; nothing is dropped or changed silently):

1. read the annotations (:func:`refdense.prepare.formats.read_annotations`), counting what cannot
   be translated (unknown class ids, malformed lines);
2. match videos with features: annotated videos without features and features without annotation
   are counted and left out;
3. stream the features into ``features.h5`` one video at a time (float16 by default), refusing a
   video whose array is malformed, empty (shorter than one segment), not finite, or whose two
   streams differ by more than ``length_tolerance`` segments (smaller differences are truncated
   to the shorter stream and counted; see :func:`refdense.prepare.features.align_streams`);
4. fill in missing durations (MultiTHUMOS per-class files have none) as ``T * segment_frames / fps``;
5. clean the instances with ``refdense.data``'s rules (clip to the video, drop empty or outside
   instances) and merge overlapping instances of one class, then write ``annotations.json`` and
   ``dataset.json``.

Both feature streams are required: the dataset format (``docs/DESIGN.md``) always holds a
``video`` and an ``image`` stream.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from refdense.data.format import (
    ANNOTATIONS_FILE,
    FEATURES_FILE,
    DatasetInfo,
    StreamInfo,
    VideoAnnotation,
    dataset_directory,
    write_annotations,
    write_features,
    write_info,
)
from refdense.data.labels import (
    CleanupReport,
    InstanceFix,
    clean_instances,
    drop_reason,
    instance_span,
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
        lines.append(f"left out {len(report['annotated_without_features'])} annotated videos without features: "
                     f"{ids(report['annotated_without_features'])}")
    if report["features_without_annotation"]:
        lines.append(f"ignored {len(report['features_without_annotation'])} feature files without annotation: "
                     f"{ids(report['features_without_annotation'])}")
    for reason, videos in sorted(report["skipped"].items()):
        lines.append(f"left out {len(videos)} videos ({reason}), e.g. {report['skipped_examples'][reason]}")
    if report["streams_truncated_to_shorter"]:
        lines.append(f"truncated {len(report['streams_truncated_to_shorter'])} videos to the shorter stream (lengths "
                     f"differed within tolerance): {ids(report['streams_truncated_to_shorter'])}")
    if report["durations_from_features"]:
        lines.append(f"durations taken from the features for {report['durations_from_features']} videos "
                     "(T * segment_frames / fps)")
    if report["dropped_training_videos_without_actions"]:
        lines.append(f"dropped {len(report['dropped_training_videos_without_actions'])} training videos without actions")
    lines.append("clean-up: " + summarize_cleanup(report["cleanup"]))
    if report["fixes"]:
        first = report["fixes"][0]
        lines.append(f"every fix is listed by video and instance (with where it was read) under \"fixes\" in "
                     f"{REPORT_FILE}; e.g. {first['fix']}: {first['video']}, class {first['class']} "
                     f"[{first['start']:g}, {first['end']:g}] s ({first['origin']}): {first['reason']}")
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
        raise ValueError(f"{path}: expected a preparation report of format {REPORT_FORMAT!r}, found {found!r} "
                         "(prepare the dataset again with this version)")
    return report


def merge_overlaps(actions: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """Replace overlapping instances of one class by their union; sorted by (start, class)."""
    merged: list[list] = []
    for label, start, end in sorted(actions, key=lambda a: (a[0], a[1], a[2])):
        if merged and merged[-1][0] == label and start < merged[-1][2]:
            merged[-1][2] = max(merged[-1][2], end)
        else:
            merged.append([label, start, end])
    return sorted(((c, s, e) for c, s, e in merged), key=lambda a: (a[1], a[0]))


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
    boundary: str = "strict",
    dtype: str = "float16",
    length_tolerance: int = 2,
    drop_empty_training: bool = False,
    video_encoder: str = "i3d",
    image_encoder: str = "clip-rn50",
    progress: bool | None = None,
) -> PrepareReport:
    """Write ``dataset.json``, ``annotations.json``, ``features.h5`` and ``prepare-report.json`` into ``out``.

    Args:
        raw: the annotations, as read by :func:`refdense.prepare.formats.read_annotations`.
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

    ``out`` is replaced as a whole at the end (``refdense.data.format.dataset_directory``): an error
    or a kill at any point leaves the previous dataset (or none), never a mix of old and new files.
    ``out`` must be missing, empty or a dataset folder of this project; any other folder is refused
    (``FileExistsError``) before any work.
    """
    out = Path(out)
    report = PrepareReport(reader_problems=dict(raw.problems), reader_examples=dict(raw.examples),
                           reader_details={kind: list(messages) for kind, messages in raw.details.items()})
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype: expected 'float16' or 'float32', found {dtype!r}")
    if decomposition is not None:
        decomposition = decomposition.reorder(raw.classes, where=f"decomposition {decomposition.name!r}")

    with (dataset_directory(out, overwrite=True) as staging, FeatureSource(video_features, "video") as video_source,
          FeatureSource(image_features, "image") as image_source):
        with_features = set(video_source.ids) & set(image_source.ids)
        report.without_features = sorted(set(raw.videos) - with_features)
        report.without_annotation = sorted((set(video_source.ids) | set(image_source.ids)) - set(raw.videos))
        candidates = sorted(set(raw.videos) & with_features)
        annotations: dict[str, VideoAnnotation] = {}
        dims: dict[str, int] = {}

        def _annotate(video_id: str, entry: dict, length: int) -> VideoAnnotation | None:
            duration = entry["duration"]
            if duration is None:
                duration = length * segment_frames / fps
                report.durations_from_features += 1
            if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
                report.skip("no positive duration", video_id,
                            f"video {video_id!r}: duration {duration!r} is not a positive number")
                return None
            duration = float(duration)
            kept, cleanup = clean_instances([tuple(a) for a in entry["actions"]], duration, video_id,
                                            entry["origins"])
            merged = merge_overlaps(kept)
            # instances covering no segment, counted on what annotations.json holds (as the loader counts)
            times = segment_times(length, duration)
            kept_origins = [origin for (_, s, e), origin in zip(entry["actions"], entry["origins"])
                            if drop_reason(s, e, duration) is None]
            for label, start, end in merged:
                span = instance_span(times, start, end, boundary)
                if span.stop <= span.start:
                    cleanup.no_segment += 1
                    origins = [origin for (c, s, e), origin in zip(kept, kept_origins)
                               if c == label and start <= s and e <= end]
                    cleanup.fixes.append(InstanceFix(video_id, label, start, end, "no segment",
                                                     no_segment_reason(length, duration), "; ".join(origins)))
            report.cleanup += cleanup
            if not kept and drop_empty_training and entry["subset"] == "training":
                report.dropped_empty_training.append(video_id)
                return None
            report.videos_written[entry["subset"]] = report.videos_written.get(entry["subset"], 0) + 1
            return VideoAnnotation(entry["subset"], duration, tuple(merged))

        def items():
            for video_id in track(candidates, desc="prepare", unit="videos", enabled=progress):
                where_v = f"{video_source.path}: video {video_id!r}"
                try:
                    video, image = video_source.load(video_id), image_source.load(video_id)
                    for stream, array in (("video", video), ("image", image)):
                        if len(array) < 1:
                            raise FeatureError(f"{where_v}: {stream} features have 0 segments",
                                               "features shorter than one segment")
                        expected = dims.setdefault(stream, array.shape[1])
                        if array.shape[1] != expected:
                            raise FeatureError(f"{where_v}: {stream} dimension {array.shape[1]}, expected "
                                               f"{expected} like the videos before it", "feature dimension differs")
                    differ = len(video) != len(image)
                    video, image = align_streams(video, image, length_tolerance, where_v)
                    video = to_storage(video, dtype, where_v)
                    image = to_storage(image, dtype, f"{image_source.path}: video {video_id!r}")
                except FeatureError as error:
                    report.skip(error.reason, video_id, str(error))
                    continue
                if differ:
                    report.truncated.append(video_id)
                annotation = _annotate(video_id, raw.videos[video_id], len(video))
                if annotation is not None:
                    annotations[video_id] = annotation
                    yield video_id, video, image
            if not annotations:  # raising here leaves no features.h5 behind (and keeps an older one)
                raise FeatureError(f"every video was left out:\n{report.summary()}")

        if not candidates:
            looks = guess_dataset(video_source.ids)
            hint = (f"; the features look like {DATASET_NAMES[looks]}'s videos" if looks and looks != guess_dataset(raw.videos)
                    else "")
            raise FeatureError(f"no video has both annotations and features: {len(raw.videos)} annotated "
                               f"(e.g. {sorted(raw.videos)[:2]}), features for e.g. {video_source.ids[:2]} "
                               f"in {video_source.path}{hint}")
        write_features(staging / FEATURES_FILE, items(), dtype=dtype)
        info = DatasetInfo(
            name=name,
            classes=tuple(raw.classes),
            entities=decomposition.entities if decomposition else (),
            motions=decomposition.motions if decomposition else (),
            decomposition=decomposition.pairs if decomposition else ((None, None),) * len(raw.classes),
            streams={"video": StreamInfo(dims["video"], video_encoder), "image": StreamInfo(dims["image"], image_encoder)},
            segment_frames=segment_frames,
            fps=float(fps),
            boundary=boundary,
            source=f"refdense prepare: {raw.source}; features {Path(video_features).name} + {Path(image_features).name}"
                   + (f"; decomposition {decomposition.name} ({decomposition.source})" if decomposition else ""),
        )
        write_annotations(staging / ANNOTATIONS_FILE, annotations)
        with atomic_write(staging / REPORT_FILE) as handle:
            json.dump(report.to_dict(), handle, indent=1)
        write_info(staging, info)
    return report
