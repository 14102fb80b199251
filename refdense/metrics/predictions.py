"""Predictions files: per-video scores and labels in one ``.npz`` of plain arrays (never unpickled)."""

from __future__ import annotations

import math
import os
import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from refdense.metrics.validation import Videos, check_videos


@dataclass(frozen=True)
class Predictions:
    """Per-video probabilities and labels, as read from a predictions file.

    scores, labels: lists of (T_v, C) arrays; video_ids: list of str.
    """

    scores: list
    labels: list
    video_ids: list


def write_predictions(
    path: str | os.PathLike, scores: Videos, labels: Videos, video_ids: Sequence[str]
) -> None:
    """Write a predictions file (``.npz``) atomically, after validating it.

    scores: list of (T_v, C) probabilities; labels: list of (T_v, C) 0/1 arrays; video_ids: one
    id per video. The file holds plain arrays only (nothing pickled, so it loads with
    ``allow_pickle=False``)::

        scores     (N, C)  the videos' scores one after the other (N = sum of T_v; dtype kept)
        labels     (N, C)  uint8
        lengths    (V,)    int64, T_v of each video in order
        video_ids  (V,)    unicode strings

    Read it with :func:`read_predictions`.
    """
    from refdense.io import atomic_write

    video_ids = [str(v) for v in video_ids]
    score_list, label_list = check_videos(scores, labels, video_ids=video_ids, where=f"{path}: ")
    with atomic_write(path, "wb") as handle:
        np.savez(
            handle,
            scores=np.concatenate([np.asarray(s) for s in score_list]),
            labels=np.concatenate([np.asarray(y) for y in label_list]).astype(np.uint8),
            lengths=np.array([len(s) for s in score_list], dtype=np.int64),
            video_ids=np.array(video_ids, dtype=str),
        )


MEMBERS = ("scores", "labels", "lengths", "video_ids")
"""The arrays of a predictions file; any other member is never decompressed."""
MAX_VALUES = 1 << 31
"""The most values one member may declare (a crafted header declaring 10^12 is refused unread)."""


def _member_headers(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{name: (shape, dtype)}`` of the arrays in an ``.npz``, from their headers alone (nothing
    is decompressed beyond the header, nothing unpickled)."""
    import zipfile

    found = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            with archive.open(member) as handle:
                major, _ = np.lib.format.read_magic(handle)
                read = (
                    np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read(handle)
            found[member.removesuffix(".npy")] = (tuple(shape), dtype)
    return found


def _concatenated_videos(array: np.ndarray, lengths: np.ndarray, what: str, where: str) -> list[np.ndarray]:
    """Split a concatenated (N, C) array into per-video (T_v, C) arrays of ``lengths`` (V,)."""
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or (lengths < 0).any():
        raise ValueError(f"{where}lengths: expected one integer >= 0 per video, found {lengths!r}")
    if int(lengths.sum()) != array.shape[0]:
        raise ValueError(
            f"{where}lengths: sum to {int(lengths.sum())} segments, but {what} holds "
            f"{array.shape[0]} rows (the videos one after the other)"
        )
    return np.split(array, np.cumsum(lengths)[:-1])


def read_predictions(path: str | os.PathLike) -> Predictions:
    """Read and validate a predictions file; nothing in it is unpickled (``allow_pickle=False``).

    ``scores`` and ``labels`` are either concatenated ``(N, C)`` arrays (what
    :func:`write_predictions` writes) or padded ``(V, T, C)`` arrays; ``lengths`` ``(V,)`` is
    required with both (the padding of a padded array is not segments). ``video_ids`` is optional
    (default ``"0"``, ``"1"``, ...). A file holding pickled objects (the object arrays of earlier
    refdense versions, or a crafted file) is refused, saying how to make the file again.
    """
    import zipfile

    where = f"{path}: "
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such predictions file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{where}not a .npz file (expected a zip archive of .npy arrays)")
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile)
    try:
        headers = _member_headers(path)
    except unreadable as error:
        raise ValueError(f"{where}not a readable .npz file ({error})") from None
    pickled = [name for name, (_, dtype) in headers.items() if dtype.hasobject]
    for name in MEMBERS:
        if name in headers and not pickled and math.prod(headers[name][0]) > MAX_VALUES:
            raise ValueError(
                f"{where}{name}: declares shape {headers[name][0]}, over the bound of {MAX_VALUES} values"
            )
    try:
        if not pickled:
            with np.load(path, allow_pickle=False) as data:
                content = {name: data[name] for name in MEMBERS if name in headers}
    except unreadable as error:
        raise ValueError(f"{where}not a readable .npz file ({error})") from None
    if pickled:
        raise ValueError(
            f"{where}refused: {', '.join(pickled)} hold pickled Python objects, which are never loaded (loading "
            "them could run code, and their arrays cannot be read without loading them). Earlier refdense "
            "versions wrote such files (per-video object arrays). Make the file again in the current format, "
            "plain arrays only:\n"
            "  predictions of a refdense checkpoint (on the test split; --split names another): "
            f"refdense evaluate CHECKPOINT --out {shlex.quote(str(path))}\n"
            "  predictions of your own code: refdense.metrics.write_predictions(path, scores, labels, video_ids) "
            'with the per-video (T_v, C) arrays (docs/DESIGN.md, "Predictions file")'
        )
    missing = [name for name in ("scores", "labels") if name not in content]
    if missing:
        raise ValueError(
            f"{where}expected arrays 'scores' and 'labels', missing {missing}; found {sorted(content)}"
        )
    scores, labels = content["scores"], content["labels"]
    if scores.ndim not in (2, 3):
        raise ValueError(
            f"{where}scores: expected concatenated (N, C) or padded (V, T, C) arrays, "
            f"found shape {scores.shape}"
        )
    if "lengths" not in content:
        form = "padded (V, T, C)" if scores.ndim == 3 else "concatenated (N, C)"
        raise ValueError(
            f"{where}expected 'lengths' (V,) with {form} scores: the number of segments of each "
            "video" + (" (np.full(V, T) when no video is padded)" if scores.ndim == 3 else "")
        )
    lengths = content["lengths"]
    if labels.ndim != scores.ndim:
        raise ValueError(
            f"{where}expected 'scores' and 'labels' of the same shape, found {scores.shape} and "
            f"{labels.shape}"
        )
    num_videos = len(lengths) if lengths.ndim == 1 else 0
    video_ids = content.get("video_ids")
    video_ids = [str(v) for v in video_ids] if video_ids is not None else [str(v) for v in range(num_videos)]
    repeated = sorted(v for v, n in Counter(video_ids).items() if n > 1)
    if repeated:
        raise ValueError(
            f"{where}video_ids: each video may appear once (it would be scored twice), found "
            f"{', '.join(repr(v[:80]) for v in repeated[:5])} more than once"
        )
    if scores.ndim == 2:
        score_list = _concatenated_videos(scores, lengths, "scores", where)
        label_list = _concatenated_videos(labels, lengths, "labels", where)
        score_list, label_list = check_videos(score_list, label_list, video_ids=video_ids, where=where)
    else:
        score_list, label_list = check_videos(scores, labels, lengths, video_ids=video_ids, where=where)
    return Predictions(scores=score_list, labels=label_list, video_ids=video_ids)
