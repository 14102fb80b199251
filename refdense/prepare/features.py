"""Feature files as the community distributes them: a folder of ``<video_id>.npy`` or an HDF5 file.

:class:`FeatureSource` lists the videos of one stream and loads them one at a time (a dataset of
the size of Charades never sits in memory at once). Accepted layouts:

- a folder of ``<video_id>.npy``, each ``(T', 1, 1, D)`` (pytorch-i3d's extractor, as distributed
  for Charades, MultiTHUMOS and TSU) or ``(T', D)``;
- an HDF5 file whose root holds one dataset per video (MLAD's layout), or a refdense
  ``features.h5`` / ``refdense extract-features`` output whose group ``video/`` or ``image/``
  does (the group named after the stream is used when present).

:func:`align_streams` is the rule for two streams of one video whose lengths differ (the I3D
and the CLIP extractors round the last partial segment differently): truncate both to the shorter
length when they differ by at most ``tolerance`` segments, refuse the video otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from refdense.data.features import h5_member
from refdense.data.info import DatasetError

if TYPE_CHECKING:
    import h5py


class FeatureError(ValueError):
    """A feature array or file that cannot be used (the message names the file and the video);
    ``reason`` is a short kind under which the preparation report counts it."""

    def __init__(self, message: str, reason: str = "unusable features"):
        super().__init__(message)
        self.reason = reason


def as_segments(array: np.ndarray, where: str) -> np.ndarray:
    """Bring a per-video feature array to (T', D): accepts (T', D), (T', 1, D) and (T', 1, 1, D)."""
    if array.ndim >= 2 and all(size == 1 for size in array.shape[1:-1]):
        return array.reshape(array.shape[0], array.shape[-1])
    raise FeatureError(
        f"{where}: expected features of shape (T', D) or (T', 1, 1, D), found {array.shape}",
        "malformed feature array",
    )


class FeatureSource:
    """The per-video features of one stream, from a folder of ``.npy`` files or an HDF5 file.

    Use as a context manager (it keeps the HDF5 file open). ``ids`` lists the videos found;
    ``load(video_id)`` returns (T', D) float32 or raises :class:`FeatureError` naming the file.
    """

    def __init__(self, path: str | os.PathLike, stream: str):
        self.path = Path(path)
        self.stream = stream
        self._h5 = None
        if self.path.is_dir():
            self._files = {p.stem: p for p in sorted(self.path.glob("*.npy"))}
            if not self._files:
                raise FeatureError(f"{self.path}: no <video_id>.npy files found for the {stream} features")
            self.ids = sorted(self._files)
        elif self.path.is_file():
            import h5py

            try:
                self._h5 = h5py.File(self.path, "r")
            except OSError as error:
                raise FeatureError(
                    f"{self.path}: not a readable HDF5 file ({error}); expected a folder of "
                    "<video_id>.npy or an HDF5 file"
                ) from None
            group = self._h5[stream] if _is_group(self._h5, stream) else self._h5
            self._group = group
            self.ids = sorted(name for name in group if not _is_group(group, name))
            try:  # every member but the groups stored in the file: refused if unsafe to read
                for name in self.ids:
                    h5_member(self.path, group, name)
            except DatasetError as error:
                self._h5.close()
                raise FeatureError(str(error), "unsafe HDF5 member") from None
            if not self.ids:
                self._h5.close()
                raise FeatureError(
                    f"{self.path}: no per-video datasets found (looked at the root and in group {stream!r})"
                )
        else:
            raise FeatureError(
                f"{self.path}: {stream} features not found (expected a folder of "
                "<video_id>.npy or an HDF5 file)"
            )

    def load(self, video_id: str) -> np.ndarray:
        """(T', D) float32 features of ``video_id``."""
        where = f"{self.path if self._h5 is not None else self._files[video_id]}: video {video_id!r}"
        try:
            if self._h5 is not None:
                array = h5_member(self.path, self._group, video_id)[()]
            else:
                array = np.load(self._files[video_id], allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise FeatureError(f"{where}: unreadable features ({error})", "unreadable feature file") from None
        if not np.issubdtype(array.dtype, np.floating):
            raise FeatureError(
                f"{where}: expected floating-point features, found {array.dtype}", "malformed feature array"
            )
        return as_segments(array, where).astype(np.float32, copy=False)

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> FeatureSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_group(parent: h5py.Group, name: str) -> bool:
    """Whether ``name`` is a group stored in the file itself (a link to one is not)."""
    import h5py

    return isinstance(parent.get(name, getlink=True), h5py.HardLink) and isinstance(parent[name], h5py.Group)


def align_streams(
    video: np.ndarray, image: np.ndarray, tolerance: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Truncate (T_v, Dv) and (T_i, Di) to their common length when ``|T_v - T_i| <= tolerance``.

    Raises :class:`FeatureError` naming both lengths when they differ by more.
    """
    if abs(len(video) - len(image)) > tolerance:
        raise FeatureError(
            f"{where}: stream lengths differ by more than {tolerance} segments: "
            f"video {len(video)}, image {len(image)}",
            "stream lengths differ beyond tolerance",
        )
    length = min(len(video), len(image))
    return video[:length], image[:length]


def to_storage(array: np.ndarray, dtype: str, where: str) -> np.ndarray:
    """Cast to the storage dtype; raise :class:`FeatureError` if a value is not finite afterwards
    (NaN in the input, or a magnitude above float16's 65504)."""
    stored = array.astype(dtype, copy=False)
    finite = np.isfinite(stored)
    if not finite.all():
        bad = int(np.argwhere(~finite)[0, 0])
        raise FeatureError(
            f"{where}: {int((~finite).sum())} values are NaN/Inf once stored as {dtype} "
            f"(first at segment {bad}; largest magnitude {np.nanmax(np.abs(array)):.3g})",
            "non-finite features",
        )
    return stored
