"""``dataset.json``: :class:`DatasetInfo`, what a dataset is (names, decomposition, segment rule, streams).

The file holds the class, entity and motion names, the decomposition of each class into at most
one entity and one motion, the seconds-to-segment rule and the feature streams (documented in
``data/README.md``). Its reader validates and raises :class:`DatasetError` (a ``ValueError``)
naming the file, the key and the value; its writer is atomic. :class:`DatasetError` is the error of
every reader of the format (``refdense.data.annotations``, ``refdense.data.features``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from refdense.io import atomic_write, read_json
from refdense.schema import ConfigError, build, check_fields, require

FORMAT = "refdense-dataset/1"
INFO_FILE = "dataset.json"
STREAMS = ("video", "image")
Boundary = Literal["strict", "inclusive"]
BOUNDARIES = get_args(Boundary)


class DatasetError(ValueError):
    """A dataset file is missing, malformed or inconsistent (the message says which and where)."""


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


def read_json_file(path: Path) -> object:
    """A dataset JSON file parsed (:func:`refdense.io.read_json`: a key named twice in one object, such as a
    repeated video id, is refused); :class:`DatasetError` names the file."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        return read_json(path)
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise DatasetError(f"{path}: not valid JSON ({error})") from None


def write_json_file(path: Path, data: object) -> None:
    """Write a dataset JSON file atomically (one space of indent, UTF-8, a final newline)."""
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=1, ensure_ascii=False)
        handle.write("\n")


def read_info(root: str | os.PathLike) -> DatasetInfo:
    """Read and validate ``<root>/dataset.json``."""
    path = Path(root) / INFO_FILE
    return DatasetInfo.from_json(read_json_file(path), where=str(path))


def write_info(root: str | os.PathLike, info: DatasetInfo) -> Path:
    """Write ``<root>/dataset.json`` atomically; returns its path."""
    path = Path(root) / INFO_FILE
    write_json_file(path, info.to_json())
    return path
