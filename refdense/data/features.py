"""``features.h5``: one HDF5 dataset per stream and video, ``video/<id>`` (T, D_video) and
``image/<id>`` (T, D_image), float16 or float32, both streams of equal length T.

The readers validate what they read (the file's structure, every member before it is read: no
links, no virtual or external storage, bounded shapes) and raise
:class:`refdense.data.info.DatasetError` naming the file, the video and what was expected and found.
The writer is atomic and its bytes depend only on the videos written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from refdense.data.info import STREAMS, DatasetError, DatasetInfo
from refdense.io import atomic_path

if TYPE_CHECKING:
    import h5py

FEATURES_FILE = "features.h5"
# HDF5 (2.0 under h5py 3.16) crashes the process (a segfault) when the disk fills up under it,
# instead of raising: write_features checks before each video that its bytes and this margin for
# HDF5's own bookkeeping are free, and raises ENOSPC itself.
HDF5_MARGIN_BYTES = 64 << 20
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
