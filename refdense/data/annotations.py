"""``annotations.json``: the super-events annotations, ``{video_id: VideoAnnotation}``.

The format used by super-events, PDAN, MS-TCT, PAT and MLAD:
``{video_id: {"subset": "training"|"testing", "duration": s, "actions": [[c, start_s, end_s], ...]}}``
with 0-based class ids and times in seconds (``data/README.md``). The reader validates and raises
:class:`refdense.data.info.DatasetError` naming the file, the video and what was expected and
found; the writer is atomic.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from refdense.data.info import DatasetError, read_json_file, write_json_file

ANNOTATIONS_FILE = "annotations.json"
SUBSETS = ("training", "testing")


@dataclass(frozen=True)
class VideoAnnotation:
    """One video of a super-events annotation file; ``actions`` are ``(class, start_s, end_s)``, 0-based."""

    subset: str
    duration: float
    actions: tuple[tuple[int, float, float], ...]


Annotations = dict[str, VideoAnnotation]
"""``{video_id: VideoAnnotation}``, the content of a super-events annotation file."""


def parse_annotations(
    data: object,
    *,
    num_classes: int | None = None,
    one_based: bool = False,
    where: str = "annotations",
) -> Annotations:
    """Validate parsed super-events JSON and return 0-based :data:`Annotations`.

    ``one_based=True`` reads files whose class ids start at 1 (MultiTHUMOS); ids are shifted to 0.
    Class ids outside ``[0, num_classes)`` (after the shift), non-integer ids, unknown subsets,
    non-positive durations and non-finite times raise :class:`DatasetError`. Instances whose times
    are merely dirty (ending after the video, empty) are kept here: the clean-up rules of
    :func:`refdense.data.dense_labels` deal with them and report what they did.
    """
    if not isinstance(data, dict):
        raise DatasetError(
            f"{where}: expected a JSON object {{video_id: {{...}}}}, found {type(data).__name__}"
        )
    offset = 1 if one_based else 0
    annotations: Annotations = {}
    for video_id, entry in data.items():
        here = f"{where}: video {video_id!r}"
        if not isinstance(entry, dict):
            raise DatasetError(
                f"{here}: expected an object with subset, duration, actions, found {type(entry).__name__}"
            )
        missing = [key for key in ("subset", "duration", "actions") if key not in entry]
        if missing:
            raise DatasetError(f"{here}: missing keys {missing}")
        subset, duration, actions = entry["subset"], entry["duration"], entry["actions"]
        if subset not in SUBSETS:
            raise DatasetError(f"{here}: subset: expected one of {list(SUBSETS)}, found {subset!r}")
        if not _is_number(duration) or not _finite(duration) or duration <= 0:
            raise DatasetError(f"{here}: duration: expected a positive number of seconds, found {duration!r}")
        if not isinstance(actions, list):
            raise DatasetError(
                f"{here}: actions: expected a list of [class, start, end], found {type(actions).__name__}"
            )
        parsed = []
        for i, action in enumerate(actions):
            if not isinstance(action, list) or len(action) != 3 or not all(_is_number(v) for v in action):
                raise DatasetError(
                    f"{here}: actions[{i}]: expected [class, start, end] numbers, found {action!r}"
                )
            label, start, end = action
            if not _finite(label) or float(label) != int(label):
                raise DatasetError(f"{here}: actions[{i}]: expected an integer class id, found {label!r}")
            label = int(label) - offset
            if label < 0 or (num_classes is not None and label >= num_classes):
                low, high = offset, (num_classes - 1 + offset) if num_classes is not None else "..."
                raise DatasetError(
                    f"{here}: actions[{i}]: class id {int(action[0])} out of range, expected "
                    f"{low}..{high} ({'1' if one_based else '0'}-based)"
                )
            if not (_finite(start) and _finite(end)):
                raise DatasetError(f"{here}: actions[{i}]: expected finite times, found {action!r}")
            parsed.append((label, float(start), float(end)))
        annotations[str(video_id)] = VideoAnnotation(subset, float(duration), tuple(parsed))
    return annotations


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: int | float) -> bool:
    """True for a number that is a finite float (NaN, infinities and integers beyond the float range
    are not: JSON's ``NaN``, ``Infinity`` and ``1e400`` all parse)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def read_annotations(
    path: str | os.PathLike, *, num_classes: int | None = None, one_based: bool = False
) -> Annotations:
    """Read a super-events annotation file (see :func:`parse_annotations`)."""
    path = Path(path)
    return parse_annotations(
        read_json_file(path), num_classes=num_classes, one_based=one_based, where=str(path)
    )


def write_annotations(path: str | os.PathLike, annotations: Annotations) -> Path:
    """Write :data:`Annotations` atomically in the super-events format (0-based ids, seconds)."""
    path = Path(path)
    data = {
        video_id: {
            "subset": entry.subset,
            "duration": round(entry.duration, 6),
            "actions": [[c, round(s, 6), round(e, 6)] for c, s, e in entry.actions],
        }
        for video_id, entry in annotations.items()
    }
    write_json_file(path, data)
    return path
