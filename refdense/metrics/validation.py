"""Input checks of the metrics: scores and labels as lists of per-video ``(T_v, C)`` arrays or as padded
``(V, T, C)`` arrays with ``lengths`` ``(V,)``; every error names the video (and the file, through ``where``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

#: Per-video scores or labels: a list of ``(T_v, C)`` arrays, or a padded ``(V, T, C)`` array (with lengths).
Videos = np.ndarray | Sequence[npt.ArrayLike]
#: ``(V,)`` valid lengths of a padded ``(V, T, C)`` array; None for a list of per-video arrays.
Lengths = npt.ArrayLike | None


def video_name(v: int, video_ids: Sequence[str] | None) -> str:
    return f"video {video_ids[v]!r} (#{v})" if video_ids is not None else f"video #{v}"


def split_videos(array: Videos, lengths: Lengths, what: str, where: str) -> list[np.ndarray]:
    """Turn a list of (T_v, C) arrays or a padded (V, T, C) array + lengths into a list of arrays."""
    if isinstance(array, np.ndarray) and array.dtype != object:
        if array.ndim != 3:
            raise ValueError(
                f"{where}{what}: expected a list of per-video (T_v, C) arrays or a padded (V, T, C) "
                f"array with lengths, found an array of shape {array.shape}"
                + (" (wrap a single video in a list: [array])" if array.ndim == 2 else "")
            )
        if lengths is None:
            return list(array)
        lengths = np.asarray(lengths)
        if lengths.shape != (array.shape[0],) or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(
                f"{where}lengths: expected {array.shape[0]} integers (one per video of {what}), "
                f"found shape {lengths.shape} of dtype {lengths.dtype}"
            )
        bad = np.flatnonzero((lengths < 0) | (lengths > array.shape[1]))
        if bad.size:
            raise ValueError(
                f"{where}lengths: expected values in [0, {array.shape[1]}] (the padded length), "
                f"found {int(lengths[bad[0]])} for video #{int(bad[0])}"
            )
        return [array[v, : int(n)] for v, n in enumerate(lengths)]
    if lengths is not None:
        raise ValueError(f"{where}lengths: only used with a padded (V, T, C) array, but {what} is a list")
    return [np.asarray(a) for a in array]


def check_videos(
    scores: Videos,
    labels: Videos,
    lengths: Lengths = None,
    video_ids: Sequence[str] | None = None,
    where: str = "",
    values: bool = True,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Validate scores and labels; return them as lists of (T_v, C) arrays.

    ``where`` prefixes every message (for example the file name followed by ": ").
    values: also check the values (else only shapes and dtypes; see :func:`check_values`).
    """
    score_list = split_videos(scores, lengths, "scores", where)
    label_list = split_videos(labels, lengths, "labels", where)
    if not score_list:
        raise ValueError(f"{where}scores: expected at least one video, found none")
    if len(score_list) != len(label_list):
        raise ValueError(
            f"{where}expected as many label arrays as score arrays ({len(score_list)}), found {len(label_list)}"
        )
    if video_ids is not None and len(video_ids) != len(score_list):
        raise ValueError(f"{where}video_ids: expected {len(score_list)} ids, found {len(video_ids)}")
    num_classes = None
    for v, (s, y) in enumerate(zip(score_list, label_list)):
        name = video_name(v, video_ids)
        if s.ndim != 2:
            raise ValueError(f"{where}{name}: expected scores of shape (T_v, C), found shape {s.shape}")
        if num_classes is None:
            num_classes = s.shape[1]
            if num_classes == 0:
                raise ValueError(f"{where}{name}: expected at least one class, found C = 0")
        if s.shape[1] != num_classes:
            raise ValueError(
                f"{where}{name}: expected {num_classes} classes (as video #0), found scores of shape {s.shape}"
            )
        if y.shape != s.shape:
            raise ValueError(
                f"{where}{name}: expected labels of the scores' shape {s.shape}, found {y.shape}"
            )
        if not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer) or s.dtype == bool):
            raise ValueError(f"{where}{name}: expected numeric scores, found dtype {s.dtype}")
        if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
            raise ValueError(f"{where}{name}: expected numeric labels, found dtype {y.dtype}")
    if sum(s.shape[0] for s in score_list) == 0:
        raise ValueError(
            f"{where}scores: expected at least one segment, found {len(score_list)} empty videos"
        )
    if values:
        check_values(score_list, label_list, video_ids, where)
    return score_list, label_list


def values_valid(scores: np.ndarray, labels: np.ndarray) -> bool:
    """Whether all scores are in [0, 1] (NaN fails: it propagates through min and max) and all
    labels in {0, 1}; two or three passes over pooled arrays."""
    if not (scores.min() >= 0 and scores.max() <= 1):
        return False
    if labels.dtype == bool:
        return True
    if np.issubdtype(labels.dtype, np.integer):
        return bool(labels.min() >= 0 and labels.max() <= 1)
    return bool(((labels == 0) | (labels == 1)).all())


def check_values(
    score_list: Sequence[np.ndarray],
    label_list: Sequence[np.ndarray],
    video_ids: Sequence[str] | None = None,
    where: str = "",
) -> None:
    """Raise for the first video with a NaN, a score outside [0, 1] or a label outside {0, 1}."""
    for v, (s, y) in enumerate(zip(score_list, label_list)):
        if s.size == 0:
            continue
        if np.issubdtype(s.dtype, np.floating) and not np.isfinite(s).all():
            bad = int(np.count_nonzero(~np.isfinite(s)))
            raise ValueError(
                f"{where}{video_name(v, video_ids)}: expected finite scores, found {bad} NaN or infinite values"
            )
        lo, hi = s.min(), s.max()
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{where}{video_name(v, video_ids)}: expected probabilities in [0, 1], found values in "
                f"[{float(lo):.4g}, {float(hi):.4g}]; these look like logits: apply a sigmoid first"
            )
        if y.dtype != bool and not ((y == 0) | (y == 1)).all():
            bad = y[(y != 0) & (y != 1)].ravel()[0].item()
            raise ValueError(f"{where}{video_name(v, video_ids)}: expected labels in {{0, 1}}, found {bad!r}")


def check_tau_threshold(tau: object, threshold: object) -> None:
    if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)) or tau < 0:
        raise ValueError(f"tau: expected an integer >= 0 (a window in segments), found {tau!r}")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.floating))
        or not (0 < threshold < 1)
    ):
        raise ValueError(f"threshold: expected a number in (0, 1), found {threshold!r}")
