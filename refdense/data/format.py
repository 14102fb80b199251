"""The refdense dataset format on disk: ``dataset.json``, ``annotations.json``, ``features.h5``.

A dataset is a folder holding three files (documented in ``data/README.md``):

- ``dataset.json``: the :class:`DatasetInfo` (class, entity and motion names, the decomposition of
  each class into at most one entity and one motion, the segment rule, the feature streams).
- ``annotations.json``: the super-events format used by super-events, PDAN, MS-TCT, PAT and MLAD,
  ``{video_id: {"subset": "training"|"testing", "duration": s, "actions": [[c, start_s, end_s], ...]}}``
  with 0-based class ids and times in seconds.
- ``features.h5``: one HDF5 dataset per stream and video, ``video/<id>`` (T, D_video) and
  ``image/<id>`` (T, D_image), float16 or float32, both streams of equal length T.

Every reader here validates what it reads and raises :class:`DatasetError` (a ``ValueError``) whose
message names the file, the video and what was expected and found. Every writer is atomic, and a
whole dataset is written through :func:`dataset_directory`, which replaces a folder only when it
holds a dataset.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from refdense.io import (
    STAGING_MARKER,
    atomic_directory,
    atomic_path,
    atomic_write,
    clean_leftover,
    dead_leftovers,
    resolve_link,
)
from refdense.schema import ConfigError, build, check_fields, require

if TYPE_CHECKING:
    import h5py

FORMAT = "refdense-dataset/1"
INFO_FILE = "dataset.json"
ANNOTATIONS_FILE = "annotations.json"
FEATURES_FILE = "features.h5"
STREAMS = ("video", "image")
SUBSETS = ("training", "testing")
Boundary = Literal["strict", "inclusive"]
BOUNDARIES = get_args(Boundary)
# HDF5 (2.0 under h5py 3.16) crashes the process (a segfault) when the disk fills up under it,
# instead of raising: write_features checks before each video that its bytes and this margin for
# HDF5's own bookkeeping are free, and raises ENOSPC itself.
HDF5_MARGIN_BYTES = 64 << 20
# What a dataset folder holds: its three files, and what refdense writes beside them (the report
# of `refdense prepare`, the text banks that refdense.text caches).
FOLDER_FILES = (INFO_FILE, ANNOTATIONS_FILE, FEATURES_FILE, "prepare-report.json", "text_bank-*.pt")


class DatasetError(ValueError):
    """A dataset file is missing, malformed or inconsistent (the message says which and where)."""


# The most segments of one video, and values of one array, an HDF5 file may declare: a crafted
# file declaring 10^12 rows is refused before anything is read (100,000 segments is a 2-hour
# video at 1 segment per 0.075 s; the bounds leave two orders of magnitude above that).
MAX_SEGMENTS = 10_000_000
MAX_VALUES = 1 << 31


def h5_member(path: Path, group: h5py.Group, name: str) -> h5py.Dataset:
    """The dataset ``name`` of ``group`` in the HDF5 file ``path``, once it is known to be safe to read.

    Refused with :class:`DatasetError` naming the file and the member: a name that is not a
    plain member (``.``, ``a/b``), a soft or external link (it would read another member or
    another file), a member that is not a dataset, a virtual dataset (it reads other files, or
    zeros for a missing one), external raw storage (it reads any local file as the values), and
    a declared shape over :data:`MAX_SEGMENTS` rows or :data:`MAX_VALUES` values. Compressed
    data is then read chunk by chunk by HDF5, so reading it takes the memory of its declared
    shape, however well it compresses.
    """
    import h5py

    where = f"{path}: member {group.name.rstrip('/')}/{name}"
    if not name or name in (".", "..") or "/" in name:
        raise DatasetError(f"{where}: {name!r} is not a valid video id in HDF5 (no '/', not '.' or '..')")
    link = group.get(name, getlink=True)
    if link is None:
        raise DatasetError(f"{where}: not found")
    if not isinstance(link, h5py.HardLink):
        kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
        raise DatasetError(f"{where}: is {kind}; refdense reads only data stored in the file itself")
    member = group[name]
    if not isinstance(member, h5py.Dataset):
        raise DatasetError(f"{where}: expected a dataset (an array), found a group")
    if member.is_virtual:
        raise DatasetError(
            f"{where}: is a virtual dataset (it reads other files); store the values in the file"
        )
    if member.external:
        raise DatasetError(
            f"{where}: keeps its values in external files ({str(member.external[0][0])[:200]}); "
            "refdense reads only data stored in the file itself"
        )
    rows = member.shape[0] if member.shape else 1
    if rows > MAX_SEGMENTS or member.size > MAX_VALUES:
        raise DatasetError(
            f"{where}: declares shape {member.shape}, over the bound of {MAX_SEGMENTS} segments "
            f"and {MAX_VALUES} values"
        )
    return member


@dataclass(frozen=True)
class StreamInfo:
    """One feature stream: its dimension and the encoder that produced it (e.g. ``"i3d"``)."""

    dim: int
    encoder: str

    def __post_init__(self) -> None:
        check_fields(self)
        require(self, self.dim >= 1, "dim", "a positive integer")


@dataclass(frozen=True)
class DatasetInfo:
    """What ``dataset.json`` holds.

    ``decomposition[c] = (entity_index | None, motion_index | None)`` for each class ``c``.
    ``boundary`` is the seconds-to-segment rule: with ``fps_feat = T / duration``, segment ``t`` is
    positive for an instance ``[s, e]`` iff ``s < t / fps_feat < e`` (``"strict"``, as PAT and
    MS-TCT) or ``s <= t / fps_feat <= e`` (``"inclusive"``, as MLAD).
    ``dials``: synthetic data only, the generator's mechanism dials and the rare class ids
    (``refdense.synth.Dials``); None (no key in the file) for real data and at the default dials.
    """

    name: str
    classes: tuple[str, ...]
    entities: tuple[str, ...]
    motions: tuple[str, ...]
    decomposition: tuple[tuple[int | None, int | None], ...]
    streams: Mapping[str, StreamInfo]
    segment_frames: int = 8
    fps: float = 24.0
    boundary: Boundary = "strict"
    source: str = ""
    dials: Mapping[str, Any] | None = None
    format: str = field(default=FORMAT)

    def __post_init__(self) -> None:
        check_fields(self)
        require(self, self.format == FORMAT, "format", repr(FORMAT))
        for key in ("classes", "entities", "motions"):
            names = getattr(self, key)
            require(self, all(names), key, "non-empty strings")
            duplicates = sorted({n for n in names if names.count(n) > 1})
            require(self, not duplicates, key, f"unique names (duplicates {duplicates})")
        require(self, len(self.classes) > 0, "classes", "at least one class")
        require(
            self,
            len(self.decomposition) == self.num_classes,
            "decomposition",
            f"one [entity, motion] pair per class ({self.num_classes})",
            found=len(self.decomposition),
        )
        for c, pair in enumerate(self.decomposition):
            for index, width, kind in (
                (pair[0], self.num_entities, "entity"),
                (pair[1], self.num_motions, "motion"),
            ):
                require(
                    self,
                    index is None or 0 <= index < width,
                    f"decomposition[{c}]",
                    f"[entity, motion] with the {kind} index in [0, {width}) or null ({self.classes[c]!r})",
                    found=index,
                )
        require(
            self,
            set(self.streams) == set(STREAMS),
            "streams",
            f"exactly the streams {list(STREAMS)}",
            found=sorted(self.streams),
        )
        require(self, self.segment_frames >= 1, "segment_frames", "a positive integer")
        require(self, self.fps > 0, "fps", "a positive number")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_motions(self) -> int:
        return len(self.motions)

    @property
    def video_dim(self) -> int:
        return self.streams["video"].dim

    @property
    def image_dim(self) -> int:
        return self.streams["image"].dim

    @property
    def held_out_classes(self) -> tuple[int, ...]:
        """The class ids the synthetic generator held out of training (``dials.held_out_classes``,
        ``refdense.synth.Dials.held_out``); empty for every other dataset."""
        return tuple((self.dials or {}).get("held_out_classes", ()))

    def entity_matrix(self) -> np.ndarray:
        """A_ent (C, C_ent) float32, 1 where class c involves entity k."""
        return self._matrix(0, self.num_entities)

    def motion_matrix(self) -> np.ndarray:
        """A_mot (C, C_mot) float32, 1 where class c involves motion k."""
        return self._matrix(1, self.num_motions)

    def _matrix(self, part: int, width: int) -> np.ndarray:
        matrix = np.zeros((self.num_classes, width), dtype=np.float32)
        for c, pair in enumerate(self.decomposition):
            if pair[part] is not None:
                matrix[c, pair[part]] = 1.0
        return matrix

    def to_json(self) -> dict:
        return {
            "format": self.format,
            "name": self.name,
            "classes": list(self.classes),
            "entities": list(self.entities),
            "motions": list(self.motions),
            "decomposition": [list(pair) for pair in self.decomposition],
            "segment_frames": self.segment_frames,
            "fps": self.fps,
            "streams": {k: {"dim": self.streams[k].dim, "encoder": self.streams[k].encoder} for k in STREAMS},
            "boundary": self.boundary,
            "source": self.source,
        } | ({} if self.dials is None else {"dials": dict(self.dials)})

    @classmethod
    def from_json(cls, data: object, where: str = "DatasetInfo") -> DatasetInfo:
        """Build from the parsed ``dataset.json``; errors (:class:`DatasetError`) name ``where``, the key and the value."""
        try:
            return build(cls, data, source=where)
        except ConfigError as error:
            raise DatasetError(str(error)) from None


def unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """``json.load``'s ``object_pairs_hook`` that refuses an object naming a key twice (ValueError)."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"the key {twice!r} appears twice in one object (a JSON reader keeps only the last)")
    return dict(pairs)


def parse_json(text: str, start: int = 0) -> tuple[Any, int]:
    """The JSON value in ``text`` from ``start`` on and where it ends (``json.JSONDecoder.raw_decode``),
    refusing an object that names a key twice. Every ``ValueError``: invalid JSON, a repeated key, an
    integer of over 4300 digits, or nesting too deep for Python's recursion limit."""
    try:
        return json.JSONDecoder(object_pairs_hook=unique_keys).raw_decode(text, start)
    except RecursionError:
        raise ValueError("objects or lists nested too deeply (over about 1000 levels)") from None


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value a file holds, all of it (:func:`parse_json`; ``ValueError`` also for text that
    is not UTF-8 or follows the value)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    data, end = parse_json(text, len(text) - len(text.lstrip()))
    if text[end:].strip():
        raise ValueError(f"extra data after the JSON value at character {end}")
    return data


def _read_json(path: Path) -> object:
    """Parse a JSON file, refusing an object that names a key twice (a repeated video id)."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        return read_json(path)
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise DatasetError(f"{path}: not valid JSON ({error})") from None


def _write_json(path: Path, data: object) -> None:
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=1, ensure_ascii=False)
        handle.write("\n")


def read_info(root: str | os.PathLike) -> DatasetInfo:
    """Read and validate ``<root>/dataset.json``."""
    path = Path(root) / INFO_FILE
    return DatasetInfo.from_json(_read_json(path), where=str(path))


def write_info(root: str | os.PathLike, info: DatasetInfo) -> Path:
    """Write ``<root>/dataset.json`` atomically; returns its path."""
    path = Path(root) / INFO_FILE
    _write_json(path, info.to_json())
    return path


# ----------------------------------------------------------------------------------- annotations


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
    return parse_annotations(_read_json(path), num_classes=num_classes, one_based=one_based, where=str(path))


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
    _write_json(path, data)
    return path


# -------------------------------------------------------------------------------------- features


class FeatureWriter:
    """The ``add`` of :func:`feature_writer`: writes one video's two streams into the open file."""

    def __init__(self, path: Path, tmp: Path, groups: dict[str, Any], dtype: str) -> None:
        self.path, self.tmp, self.groups, self.dtype = path, tmp, groups, dtype

    def add(self, video_id: str, video: np.ndarray, image: np.ndarray) -> None:
        """Write ``video`` ``(T, Dv)`` and ``image`` ``(T, Di)`` of ``video_id`` (stored in ``dtype``)."""
        if video.shape[0] != image.shape[0]:
            raise DatasetError(
                f"{self.path}: video {video_id!r}: stream lengths differ, "
                f"video {video.shape[0]} vs image {image.shape[0]} segments"
            )
        needed = np.dtype(self.dtype).itemsize * (video.size + image.size) + HDF5_MARGIN_BYTES
        if shutil.disk_usage(self.tmp.parent).free < needed:
            raise OSError(errno.ENOSPC, f"No space left on device: {needed} bytes needed for {video_id!r}")
        for stream, array in (("video", video), ("image", image)):
            self.groups[stream].create_dataset(
                video_id, data=np.asarray(array, dtype=self.dtype), track_times=False
            )


@contextlib.contextmanager
def feature_writer(path: str | os.PathLike, dtype: str = "float16") -> Iterator[FeatureWriter]:
    """An HDF5 feature file written one video at a time (``writer.add(video_id, video, image)``),
    atomically: the file appears at ``path`` only when the ``with`` block ends without an error.

    The bytes depend only on the videos added (no timestamps, datasets created in the given order),
    so the same videos give the same file. A disk without room for the next video (and
    :data:`HDF5_MARGIN_BYTES`) raises :class:`refdense.io.DiskFullError` before HDF5 runs out of it.
    """
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as handle:
            groups = {stream: handle.create_group(stream, track_order=False) for stream in STREAMS}
            yield FeatureWriter(path, tmp, groups, dtype)


def write_features(
    path: str | os.PathLike,
    items: Iterable[tuple[str, np.ndarray, np.ndarray]],
    dtype: str = "float16",
) -> Path:
    """Write ``(video_id, video (T, Dv), image (T, Di))`` items to an HDF5 file, atomically
    (:func:`feature_writer`, which says what the bytes depend on)."""
    with feature_writer(path, dtype) as writer:
        for video_id, video, image in items:
            writer.add(video_id, video, image)
    return Path(path)


def feature_lengths(path: str | os.PathLike, info: DatasetInfo | None = None) -> dict[str, int]:
    """``{video_id: T}`` from ``features.h5`` without reading the values.

    Checks that both streams hold the same videos with the same length T and (given ``info``) the
    declared dimensions.
    """
    import h5py

    path = Path(path)
    handle = _open_h5(path)
    with handle:
        lengths: dict[str, dict[str, int]] = {}
        for stream in STREAMS:
            link = handle.get(stream, getlink=True)
            if not isinstance(link, h5py.HardLink) or not isinstance(handle[stream], h5py.Group):
                found = (
                    "a link" if link is not None and not isinstance(link, h5py.HardLink) else "no such group"
                )
                raise DatasetError(
                    f"{path}: expected a group {stream!r} stored in the file, found {found} "
                    f"(members: {sorted(handle)[:10]})"
                )
            lengths[stream] = {}
            for video_id in handle[stream]:
                dataset = h5_member(path, handle[stream], video_id)
                if dataset.ndim != 2:
                    raise DatasetError(
                        f"{path}: video {video_id!r}: {stream}/{video_id}: expected a 2-d "
                        f"array (T, D), found {getattr(dataset, 'shape', 'a group')}"
                    )
                if info is not None and dataset.shape[1] != info.streams[stream].dim:
                    raise DatasetError(
                        f"{path}: video {video_id!r}: {stream} dimension: expected "
                        f"{info.streams[stream].dim} (dataset.json), found {dataset.shape[1]}"
                    )
                if dataset.shape[0] < 1:
                    raise DatasetError(
                        f"{path}: video {video_id!r}: {stream}: expected at least one segment, found 0"
                    )
                lengths[stream][video_id] = int(dataset.shape[0])
    video, image = lengths["video"], lengths["image"]
    for only, there, missing in (
        (set(video) - set(image), "video", "image"),
        (set(image) - set(video), "image", "video"),
    ):
        if only:
            raise DatasetError(
                f"{path}: video {sorted(only)[0]!r}: present in {there}/ but not in {missing}/ "
                f"({len(only)} such videos)"
            )
    for video_id, length in video.items():
        if image[video_id] != length:
            raise DatasetError(
                f"{path}: video {video_id!r}: stream lengths differ, video {length} vs "
                f"image {image[video_id]} segments"
            )
    return video


def read_features(
    path: str | os.PathLike, video_ids: Iterable[str], info: DatasetInfo
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read ``{video_id: (video (T, Dv), image (T, Di))}`` in the stored dtype, checking values are finite.

    Call :func:`feature_lengths` first to check the file's structure.
    """
    path = Path(path)
    features = {}
    with _open_h5(path) as handle:
        for video_id in video_ids:
            pair = []
            for stream in STREAMS:
                array = h5_member(path, handle[stream], video_id)[()]
                if array.dtype not in (np.float16, np.float32):
                    raise DatasetError(
                        f"{path}: video {video_id!r}: {stream}: expected float16 or float32, "
                        f"found {array.dtype}"
                    )
                finite = np.isfinite(array)
                if not finite.all():
                    bad = int(np.argwhere(~finite)[0, 0])
                    raise DatasetError(
                        f"{path}: video {video_id!r}: {stream}: expected finite values, found "
                        f"{int((~finite).sum())} NaN/Inf (first at segment {bad})"
                    )
                pair.append(array)
            features[video_id] = (pair[0], pair[1])
    return features


def _open_h5(path: Path) -> h5py.File:
    import h5py

    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DatasetError(f"{path}: not a readable HDF5 file ({error})") from None


# ------------------------------------------------------------------------------ the whole folder


def _foreign_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` that a dataset folder does not hold (a temporary of one of its files,
    ``NAME.tmp-<pid>``, counts as that file)."""
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name != STAGING_MARKER
        and (
            entry.is_dir()
            or not any(
                fnmatch.fnmatchcase(re.sub(r"\.tmp-\d+$", "", entry.name), pattern)
                for pattern in FOLDER_FILES
            )
        )
    )


def _holds_a_dataset(folder: Path) -> bool:
    try:
        with open(folder / INFO_FILE, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("refdense-dataset/")


@contextlib.contextmanager
def dataset_directory(out: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder that becomes the dataset folder ``out`` once the block succeeds.

    The folder is replaced as a whole (:func:`refdense.io.atomic_directory`): a reader, or a process
    killed at any point, sees the previous dataset or the new one, never new features beside an old
    ``dataset.json``. ``out`` may be missing or empty; with ``overwrite`` it may also hold a dataset
    of this project (a ``dataset.json`` of format ``refdense-dataset/...`` and nothing but
    :data:`FOLDER_FILES`). Any other folder raises ``FileExistsError`` before any work: refdense
    never replaces a folder it did not write (``--out .`` with a project in it, a home folder).

    First of all, what dead processes left beside ``out`` while writing datasets (``NAME.tmp-<pid>``,
    ``NAME.old-<pid>`` folders marked as leftovers and holding nothing but dataset files) is cleaned
    up, whatever NAME. A symlinked ``out`` is written at its target; the link stays.
    """
    out = resolve_link(Path(out))
    for leftover in dead_leftovers(out.parent):
        if leftover.is_dir() and not _foreign_entries(leftover):
            clean_leftover(leftover)
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):
        raise FileExistsError(
            f"{out}: is the current folder (or holds it), which is never replaced; "
            "name a new folder for the dataset, e.g. --out data/mine"
        )
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        foreign = _foreign_entries(out)
        if not _holds_a_dataset(out) or foreign:
            found = (
                f"holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}"
                if foreign
                else f"has no readable {INFO_FILE} of a refdense dataset"
            )
            raise FileExistsError(
                f"{out}: is not a refdense dataset folder ({found}); refdense replaces only "
                "a folder it wrote. Name a new or empty folder"
            )
        if not overwrite:
            raise FileExistsError(
                f"{out}: exists and is not empty (pass overwrite=True / --overwrite to replace it)"
            )
    with atomic_directory(out, overwrite=True) as staging:
        yield staging
