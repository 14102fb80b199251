"""Evaluation metrics of dense action detection: per-frame mAP and the action-conditional metrics.

All frames of all videos are pooled (docs/METHOD.md, section 7). Inputs are *probabilities* in [0, 1] and 0/1
labels, given either as lists of per-video arrays ``(T_v, C)`` or as padded arrays ``(V, T, C)``
with ``lengths`` ``(V,)``.

Average precision (the tie rule)
--------------------------------
AP of one class over a set of frames is non-interpolated and groups tied scores, as scikit-learn's
``average_precision_score``::

    AP = sum over distinct scores s, from high to low, of (R(s) - R(s_prev)) * P(s)

where ``P(s)`` and ``R(s)`` are the precision and recall when every frame scoring ``>= s`` is
called positive. Equivalently: the mean, over the positive frames, of the precision at the
positive's own score, counting every frame that scores at least as high (tied frames included).
Without ties this is the textbook "sum of precision at each positive / number of positives";
with ties it does not depend on the order of the tied frames (the rank-based code of MS-TCT/PAT
does). A class with no positive has no AP: it is NaN in ``per_class`` and counts 0 in the mean
over all classes (as the references do).

Action-conditional metrics (MLAD, Tirupattur et al. 2021)
---------------------------------------------------------
For a window ``tau`` (segments), a conditioning mask ``M`` ``(N, C)``: ``M = Y`` for ``tau = 0``;
for ``tau > 0``, per video, ``M[t, c] = 1`` iff ``Y[t, c] = 0`` and ``Y[u, c] = 1`` for some ``u``
in ``[t - tau + 1, t]`` (the window is clipped at the video start and never crosses into another
video). For each conditioning class ``c_j`` the frames ``F_j = {t : M[t, c_j] = 1}`` are scored
for every class ``c_i``: precision and recall at ``score >= threshold`` (compared exactly, in the
precision of the scores), and AP (tie rule above). A pair ``(c_i, c_j)``, ``i != j``, is kept iff
``c_i`` has a positive among ``F_j``; an undefined precision (nothing predicted) counts 0.
``P_ac``, ``R_ac`` and ``mAP_ac`` are unweighted means over the kept pairs and
``F1_ac = 2 P_ac R_ac / (P_ac + R_ac)`` is computed from those means. With no kept pair the means
are NaN (``null`` in JSON).

How it is fast
--------------
Scores are mapped to order-preserving unsigned integer codes (the bits of a float32 score, or
exact per-class ranks for other scores) and packed with the label into one ``uint32`` key
``code << 1 | label``. For each conditioning class ``c_j`` the keys of the frames ``F_j`` are
sorted per class; AP, true positives and predicted positives then follow from binary searches
in the sorted keys. The work is about ``C * sum_j |F_j|`` sorted keys per ``tau``, instead of
``C^2`` passes over all frames. The conditioning classes are independent jobs on a thread pool
(numpy releases the GIL while it sorts and searches), beside the per-frame mAP.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "FrameMAP",
    "ActionConditional",
    "PaperTable",
    "Predictions",
    "frame_map",
    "action_conditional",
    "paper_table",
    "compare_markdown",
    "write_predictions",
    "read_predictions",
]

# --------------------------------------------------------------------------------------------
# Input validation and pooling
# --------------------------------------------------------------------------------------------


def _video_name(v: int, video_ids: Sequence[str] | None) -> str:
    return f"video {video_ids[v]!r} (#{v})" if video_ids is not None else f"video #{v}"


def _split_videos(array, lengths, what: str, where: str) -> list[np.ndarray]:
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


def _check_videos(
    scores,
    labels,
    lengths=None,
    video_ids: Sequence[str] | None = None,
    where: str = "",
    values: bool = True,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Validate scores and labels; return them as lists of (T_v, C) arrays.

    ``where`` prefixes every message (for example the file name followed by ": ").
    values: also check the values (else only shapes and dtypes; see :func:`_check_values`).
    """
    score_list = _split_videos(scores, lengths, "scores", where)
    label_list = _split_videos(labels, lengths, "labels", where)
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
        name = _video_name(v, video_ids)
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
        raise ValueError(f"{where}scores: expected at least one segment, found {len(score_list)} empty videos")
    if values:
        _check_values(score_list, label_list, video_ids, where)
    return score_list, label_list


def _values_valid(scores: np.ndarray, labels: np.ndarray) -> bool:
    """Whether all scores are in [0, 1] (NaN fails: it propagates through min and max) and all
    labels in {0, 1}; two or three passes over pooled arrays."""
    if not (scores.min() >= 0 and scores.max() <= 1):
        return False
    if labels.dtype == bool:
        return True
    if np.issubdtype(labels.dtype, np.integer):
        return bool(labels.min() >= 0 and labels.max() <= 1)
    return bool(((labels == 0) | (labels == 1)).all())


def _check_values(score_list, label_list, video_ids=None, where: str = "") -> None:
    """Raise for the first video with a NaN, a score outside [0, 1] or a label outside {0, 1}."""
    for v, (s, y) in enumerate(zip(score_list, label_list)):
        if s.size == 0:
            continue
        if np.issubdtype(s.dtype, np.floating) and not np.isfinite(s).all():
            bad = int(np.count_nonzero(~np.isfinite(s)))
            raise ValueError(
                f"{where}{_video_name(v, video_ids)}: expected finite scores, found {bad} NaN or infinite values"
            )
        lo, hi = s.min(), s.max()
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{where}{_video_name(v, video_ids)}: expected probabilities in [0, 1], found values in "
                f"[{float(lo):.4g}, {float(hi):.4g}]; these look like logits: apply a sigmoid first"
            )
        if y.dtype != bool and not ((y == 0) | (y == 1)).all():
            bad = y[(y != 0) & (y != 1)].ravel()[0].item()
            raise ValueError(
                f"{where}{_video_name(v, video_ids)}: expected labels in {{0, 1}}, found {bad!r}"
            )


@dataclass(frozen=True)
class _Pooled:
    """All frames of all videos, frame-major.

    keys (N, C) uint32: ``code << 1 | label``, the codes order-preserving per class;
    labels (N, C) bool; starts (V + 1,) offsets of the videos along the frame axis;
    ranked_scores (N, C) float64: the exact scores when the codes are ranks (scores that are not
    float32 values), else None (the codes are the float32 bits);
    positive_frames, positive_classes (P,): ``np.nonzero(labels)``, by frame then class;
    frame_ptr (N + 1,): frame t's positive classes are ``positive_classes[frame_ptr[t]:frame_ptr[t + 1]]``.
    """

    keys: np.ndarray
    labels: np.ndarray
    starts: np.ndarray
    ranked_scores: np.ndarray | None
    positive_frames: np.ndarray
    positive_classes: np.ndarray
    frame_ptr: np.ndarray

    def threshold_keys(self, threshold: float) -> np.ndarray:
        """(C,) int64: a frame of class c is predicted positive iff its key >= result[c]."""
        num_classes = self.keys.shape[1]
        if self.ranked_scores is None:
            # Codes are the float32 bits: the smallest float32 >= threshold (an exact comparison).
            t32 = np.float32(threshold)
            if float(t32) < threshold:
                t32 = np.nextafter(t32, np.float32(np.inf))
            return np.full(num_classes, int(t32.view(np.uint32)) << 1, dtype=np.int64)
        # Codes are dense ranks: the number of distinct values below the threshold, per class.
        below = self.ranked_scores < threshold
        distinct_below = np.where(below, (self.keys >> 1).astype(np.int64) + 1, 0).max(axis=0)
        return distinct_below << 1


def _dense_ranks(scores: np.ndarray) -> np.ndarray:
    """(N, C) uint32: per class, the rank of each score among the class's distinct scores.

    Order-preserving codes for scores that are not float32 values; costs an argsort of every
    class (several times slower than the float32 path, whose codes are the float bits).
    """
    by_class = _transposed(scores)  # (C, N)
    order = np.argsort(by_class, axis=1)
    ordered = np.sort(by_class, axis=1)  # faster than gathering by ``order``
    dense = np.zeros(by_class.shape, dtype=np.uint32)
    np.cumsum(ordered[:, 1:] != ordered[:, :-1], axis=1, out=dense[:, 1:])
    codes = np.empty_like(dense)
    np.put_along_axis(codes, order, dense, axis=1)
    return _transposed(codes)


def _pool(scores, labels, lengths=None) -> _Pooled:
    score_list, label_list = _check_videos(scores, labels, lengths, values=False)
    starts = np.zeros(len(score_list) + 1, dtype=np.int64)
    np.cumsum([s.shape[0] for s in score_list], out=starts[1:])
    pooled_scores = np.concatenate(score_list, axis=0)  # a new array: free to reuse below
    pooled_labels = np.concatenate(label_list, axis=0)
    if not _values_valid(pooled_scores, pooled_labels):
        _check_values(score_list, label_list)  # names the video
    ranked_scores = None
    if pooled_scores.dtype != np.float32:
        as32 = pooled_scores.astype(np.float32)
        # Every score a float32 value (float16, 0/1 integers, float64 copies of float32): exact.
        if np.can_cast(pooled_scores.dtype, np.float32, "safe") or np.array_equal(as32, pooled_scores):
            pooled_scores = as32
        else:
            ranked_scores = pooled_scores.astype(np.float64, copy=False)
    if ranked_scores is None:
        # Keys from the float bits, in place: scores in [0, 1] have bits below 2**30, and the
        # shift drops the sign bit of -0.0 (so -0.0 and 0.0 get the same key).
        keys = pooled_scores.view(np.uint32)
        np.left_shift(keys, 1, out=keys)
    else:
        keys = np.left_shift(_dense_ranks(ranked_scores), 1)
    pooled_labels = pooled_labels.astype(bool, copy=False)
    np.bitwise_or(keys, pooled_labels.view(np.uint8), out=keys)
    positive_frames, positive_classes = np.nonzero(pooled_labels)
    frame_ptr = np.zeros(pooled_labels.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(positive_frames, minlength=pooled_labels.shape[0]), out=frame_ptr[1:])
    return _Pooled(
        keys=keys, labels=pooled_labels, starts=starts, ranked_scores=ranked_scores,
        positive_frames=positive_frames, positive_classes=positive_classes, frame_ptr=frame_ptr,
    )


def _transposed(matrix: np.ndarray, rows: np.ndarray | None = None, block: int = 256) -> np.ndarray:
    """A C-contiguous copy of ``matrix[rows].T``, gathered and transposed in cache-sized blocks
    (several times faster than numpy's copy of a transposed view).

    matrix (N, C); rows (n,) or None for all rows. Returns (C, n).
    """
    count = matrix.shape[0] if rows is None else rows.size
    result = np.empty((matrix.shape[1], count), dtype=matrix.dtype)
    for start in range(0, count, block):
        part = matrix[start : start + block] if rows is None else matrix.take(rows[start : start + block], axis=0)
        result[:, start : start + block] = part.T
    return result


# --------------------------------------------------------------------------------------------
# Core: statistics of sorted key rows
# --------------------------------------------------------------------------------------------


def _sorted_row_stats(sorted_keys, pos_rows, pos_keys, threshold_keys=None):
    """AP, positives, true positives and predicted positives of each row of sorted keys.

    sorted_keys: (R, n) uint32, each row ascending, ``code << 1 | label``.
    pos_rows, pos_keys: (P,) the row and the key of every positive entry of ``sorted_keys``.
    threshold_keys: (R,) int64 or None; an entry is predicted positive iff key >= threshold key.
    Returns ap (R,) float64 (NaN where a row has no positive), positives (R,) int64 and, when
    thresholds are given, true_positives (R,) and predicted (R,) int64.
    """
    rows, n = sorted_keys.shape
    pos = np.sort((pos_rows.astype(np.int64) << 32) | pos_keys)  # by row, then key
    pos_rows = pos >> 32
    positives = np.bincount(pos_rows, minlength=rows)
    pos_end = np.cumsum(positives)
    # A positive's precision counts every entry scoring at least as high, ties included:
    # from the first entry of its tie group (same code, label 0: key - 1) to the row end.
    tie_start = pos - 1
    pos_at_least = pos_end[pos_rows] - np.searchsorted(pos, tie_start, side="left")
    # One binary search per row, for the tie starts of its positives and, last, its threshold.
    queries = (tie_start & 0xFFFFFFFF).astype(np.uint32)
    if threshold_keys is not None:
        queries = np.insert(queries, pos_end, threshold_keys.astype(np.uint32))
    per_row = positives + (threshold_keys is not None)
    query_end = np.cumsum(per_row).tolist()
    found = np.empty(queries.size, dtype=np.int64)  # entries of the row below each query
    for row, start, end in zip(sorted_keys, [0] + query_end[:-1], query_end):
        if end > start:
            found[start:end] = row.searchsorted(queries[start:end], side="left")
    is_cut = np.zeros(queries.size, dtype=bool)
    if threshold_keys is not None:
        is_cut[np.asarray(query_end) - 1] = True
    ap = np.bincount(pos_rows, weights=pos_at_least / (n - found[~is_cut]), minlength=rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = ap / positives
    if threshold_keys is None:
        return ap, positives
    predicted = n - found[is_cut]
    cut = threshold_keys + (np.arange(rows, dtype=np.int64) << 32)
    true_positives = pos_end - np.searchsorted(pos, cut, side="left")
    return ap, positives, true_positives, predicted


# --------------------------------------------------------------------------------------------
# Per-frame mAP
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameMAP:
    """Per-frame average precision.

    per_class: (C,) AP in [0, 1]; NaN for a class with no positive frame.
    positives: (C,) number of positive frames per class.
    map_all: mean over all classes, a class without positive counting 0 (fraction in [0, 1]).
    map_present: mean over the classes with at least one positive (NaN if there is none).
    """

    per_class: np.ndarray
    positives: np.ndarray
    map_all: float
    map_present: float

    def to_dict(self) -> dict:
        """Percentages; per-class APs with ``None`` for classes without positive."""
        return {
            "frame_map": _percent(self.map_all),
            "frame_map_present": _percent(self.map_present),
            "per_class_ap": [_percent(a) for a in self.per_class],
        }


def _frame_map(pooled: _Pooled) -> FrameMAP:
    sorted_keys = _transposed(pooled.keys)  # (C, N), sorted in place
    sorted_keys.sort(axis=1)
    frames, classes = pooled.positive_frames, pooled.positive_classes
    ap, positives = _sorted_row_stats(sorted_keys, classes, pooled.keys[frames, classes])
    present = positives > 0
    return FrameMAP(
        per_class=ap,
        positives=positives,
        map_all=float(np.where(present, ap, 0.0).mean()),
        map_present=float(ap[present].mean()) if present.any() else math.nan,
    )


def frame_map(scores, labels, lengths=None) -> FrameMAP:
    """Per-frame mAP over all pooled frames (docs/METHOD.md, section 7).

    scores: list of (T_v, C) probabilities, or a padded (V, T, C) array with ``lengths`` (V,).
    labels: same layout, values in {0, 1}.
    Ties follow scikit-learn (see the module docstring).
    """
    return _frame_map(_pool(scores, labels, lengths))


# --------------------------------------------------------------------------------------------
# Action-conditional metrics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionConditional:
    """Action-conditional metrics for one window ``tau``.

    Matrices are (C, C) and indexed ``[i, j]``: the metric of class ``c_i`` on the frames
    conditioned on class ``c_j``; NaN where the pair is not kept (``kept`` (C, C) bool).
    frames: (C,) number of conditioning frames ``|F_j|``.
    Scalars are fractions in [0, 1] (NaN when no pair is kept); ``to_dict`` gives percentages.
    """

    tau: int
    threshold: float
    precision: np.ndarray
    recall: np.ndarray
    ap: np.ndarray
    kept: np.ndarray
    frames: np.ndarray
    mAP_ac: float
    F1_ac: float
    P_ac: float
    R_ac: float
    pairs: int

    def to_dict(self) -> dict:
        return {
            "mAP_ac": _percent(self.mAP_ac),
            "F1_ac": _percent(self.F1_ac),
            "P_ac": _percent(self.P_ac),
            "R_ac": _percent(self.R_ac),
            "pairs": int(self.pairs),
        }


def _check_tau_threshold(tau, threshold) -> None:
    if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)) or tau < 0:
        raise ValueError(f"tau: expected an integer >= 0 (a window in segments), found {tau!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or not (0 < threshold < 1):
        raise ValueError(f"threshold: expected a number in (0, 1), found {threshold!r}")


def _conditioning_frames(pooled: _Pooled, tau: int) -> list[np.ndarray]:
    """For each class c_j, the frames F_j = {t : M[t, c_j] = 1} (ascending) of docs/METHOD.md, section 7.

    tau = 0: M = Y. tau > 0: M[t, c] = 1 iff Y[t, c] = 0 and Y[u, c] = 1 for some u in
    [t - tau + 1, t], the window clipped at the start of t's video. The window's "any" is built
    by doubling: a window of width w ending at t, joined with the one ending at t - w.
    """
    labels, starts = pooled.labels, pooled.starts
    if tau == 0:
        frames, classes = pooled.positive_frames, pooled.positive_classes
    else:
        position = np.arange(labels.shape[0]) - np.repeat(starts[:-1], np.diff(starts))  # in its video
        window_any = labels.copy()  # width 1
        width = 1
        while width < tau:
            step = min(width, tau - width)
            earlier = np.zeros_like(window_any)
            earlier[step:] = window_any[:-step]
            earlier[position < step] = False  # never look into the previous video
            window_any |= earlier
            width += step
        frames, classes = np.nonzero(window_any & ~labels)
    order = np.argsort(classes, kind="stable")
    ends = np.cumsum(np.bincount(classes, minlength=labels.shape[1]))
    return np.split(frames[order], ends[:-1])


def _conditional_column(pooled: _Pooled, j: int, frames_j, threshold_keys, precision, recall, ap) -> None:
    """Fill column j of the (C, C) matrices: every class c_i on the frames F_j (``frames_j``, (n,))."""
    keys = pooled.keys
    num_classes = keys.shape[1]
    label_ptr, label_classes = pooled.frame_ptr, pooled.positive_classes  # the classes on in each frame
    # Every positive (t, c_i) with t in F_j, i != j.
    counts = label_ptr[frames_j + 1] - label_ptr[frames_j]
    first = np.repeat(label_ptr[frames_j] - np.cumsum(counts) + counts, counts)
    pos_frames = np.repeat(frames_j, counts)
    pos_classes = label_classes[first + np.arange(first.size)]
    other = pos_classes != j
    pos_frames, pos_classes = pos_frames[other], pos_classes[other]
    if pos_classes.size == 0:
        return
    rows = np.flatnonzero(np.bincount(pos_classes, minlength=num_classes))  # the kept c_i
    row_of_class = np.zeros(num_classes, dtype=np.int64)
    row_of_class[rows] = np.arange(rows.size)
    block = _transposed(keys, frames_j)[rows]  # (R, |F_j|)
    block.sort(axis=1)
    ap_j, positives, true_pos, predicted = _sorted_row_stats(
        block, row_of_class[pos_classes], keys[pos_frames, pos_classes], threshold_keys[rows]
    )
    ap[rows, j] = ap_j
    recall[rows, j] = true_pos / positives
    precision[rows, j] = np.divide(true_pos, predicted, out=np.zeros(rows.size), where=predicted > 0)


def _action_conditional(pooled: _Pooled, tau: int, threshold: float, executor: Executor) -> ActionConditional:
    """The columns (conditioning classes) are independent: they run as jobs on ``executor``."""
    num_classes = pooled.keys.shape[1]
    conditioning_frames = _conditioning_frames(pooled, tau)
    threshold_keys = pooled.threshold_keys(threshold)
    shape = (num_classes, num_classes)
    precision, recall, ap = (np.full(shape, np.nan) for _ in range(3))
    jobs = [
        executor.submit(_conditional_column, pooled, j, frames_j, threshold_keys, precision, recall, ap)
        for j, frames_j in enumerate(conditioning_frames)
        if frames_j.size  # no conditioning frame: no pair (the reference crashes here)
    ]
    for job in jobs:
        job.result()
    kept = ~np.isnan(ap)
    pairs = int(kept.sum())
    if pairs:
        p_ac, r_ac, map_ac = (float(m[kept].mean()) for m in (precision, recall, ap))
        f1_ac = 2 * p_ac * r_ac / (p_ac + r_ac) if p_ac + r_ac > 0 else 0.0
    else:
        p_ac = r_ac = map_ac = f1_ac = math.nan
    frames = np.array([f.size for f in conditioning_frames])
    return ActionConditional(
        tau=int(tau), threshold=float(threshold), precision=precision, recall=recall, ap=ap,
        kept=kept, frames=frames, mAP_ac=map_ac, F1_ac=f1_ac, P_ac=p_ac, R_ac=r_ac, pairs=pairs,
    )


def _executor() -> ThreadPoolExecutor:
    """Threads for the independent parts (numpy releases the GIL in its loops); at most 4."""
    return ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))


def action_conditional(scores, labels, lengths=None, tau: int = 0, threshold: float = 0.5) -> ActionConditional:
    """Action-conditional precision, recall, F1 and mAP (MLAD; docs/METHOD.md, section 7).

    scores: list of (T_v, C) probabilities, or a padded (V, T, C) array with ``lengths`` (V,).
    labels: same layout, values in {0, 1}.
    tau: window in segments (0: co-occurrence in the same segment).
    threshold: a frame is predicted positive iff score >= threshold.
    The exact semantics (mask, kept pairs, undefined values, ties) are in the module docstring.
    """
    _check_tau_threshold(tau, threshold)
    pooled = _pool(scores, labels, lengths)
    with _executor() as executor:
        return _action_conditional(pooled, tau, threshold, executor)


# --------------------------------------------------------------------------------------------
# The paper's table
# --------------------------------------------------------------------------------------------


def _percent(value: float) -> float | None:
    return None if value is None or math.isnan(value) else 100.0 * float(value)


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f}"


@dataclass(frozen=True)
class PaperTable:
    """What the papers print: per-frame mAP and, for each tau, mAP_ac, F1_ac, P_ac, R_ac."""

    frame_map: FrameMAP
    conditional: dict[int, ActionConditional]

    def to_dict(self) -> dict:
        """``{"frame_map", "frame_map_present", "tau_0": {...}, ...}``, in percent (None for NaN)."""
        result = {
            "frame_map": _percent(self.frame_map.map_all),
            "frame_map_present": _percent(self.frame_map.map_present),
        }
        for tau, ac in self.conditional.items():
            result[f"tau_{tau}"] = ac.to_dict()
        return result

    def to_markdown(self) -> str:
        """A markdown table (aligned, so it also reads as plain text), values in percent."""
        return compare_markdown({"": self})

    def __str__(self) -> str:
        return self.to_markdown()


_AC_COLUMNS = ("mAP_ac", "F1_ac", "P_ac", "R_ac")


def compare_markdown(tables: Mapping[str, PaperTable]) -> str:
    """Several methods side by side: one row per method, values in percent.

    tables: ``{"RefDense": table, "PAT": other}``; all must use the same taus.
    """
    if not tables:
        raise ValueError("compare_markdown: expected at least one table, found none")
    taus = None
    for name, table in tables.items():
        if taus is None:
            taus = list(table.conditional)
        elif list(table.conditional) != taus:
            raise ValueError(
                f"compare_markdown: table {name!r} has taus {list(table.conditional)}, expected {taus}"
            )
    header = ["Method", "mAP", "mAP (present)"]
    header += [f"{column} (tau={tau})" for tau in taus for column in _AC_COLUMNS]
    rows = []
    for name, table in tables.items():
        row = [name or "(this run)", _fmt(table.frame_map.map_all), _fmt(table.frame_map.map_present)]
        for tau in taus:
            row += [_fmt(getattr(table.conditional[tau], column)) for column in _AC_COLUMNS]
        rows.append(row)
    widths = [max(len(r[k]) for r in [header] + rows) for k in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(header, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 1) + ":" if k else "-" * (w + 2) for k, w in enumerate(widths)) + "|")
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper_table(scores, labels, lengths=None, taus: Sequence[int] = (0, 20), threshold: float = 0.5) -> PaperTable:
    """The table the papers print: per-frame mAP and, for each tau, the action-conditional metrics.

    Inputs as in :func:`frame_map`; the inputs are validated and pooled once.
    """
    taus = list(taus)
    for tau in taus:
        _check_tau_threshold(tau, threshold)
    if len(set(taus)) != len(taus):
        raise ValueError(f"taus: expected distinct values, found {taus}")
    pooled = _pool(scores, labels, lengths)
    with _executor() as executor:
        frame = executor.submit(_frame_map, pooled)  # runs beside the conditional metrics' jobs
        conditional = {int(tau): _action_conditional(pooled, int(tau), threshold, executor) for tau in taus}
        return PaperTable(frame_map=frame.result(), conditional=conditional)


# --------------------------------------------------------------------------------------------
# Predictions file
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Predictions:
    """Per-video probabilities and labels, as read from a predictions file.

    scores, labels: lists of (T_v, C) arrays; video_ids: list of str.
    """

    scores: list
    labels: list
    video_ids: list


def write_predictions(path: str | os.PathLike, scores, labels, video_ids: Sequence[str]) -> None:
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
    score_list, label_list = _check_videos(scores, labels, video_ids=video_ids, where=f"{path}: ")
    with atomic_write(path, "wb") as handle:
        np.savez(
            handle,
            scores=np.concatenate([np.asarray(s) for s in score_list]),
            labels=np.concatenate([np.asarray(y) for y in label_list]).astype(np.uint8),
            lengths=np.array([len(s) for s in score_list], dtype=np.int64),
            video_ids=np.array(video_ids, dtype=str),
        )


def _pickled_members(path: str | os.PathLike) -> list[str]:
    """Names of the arrays in an ``.npz`` whose dtype holds Python objects, from their headers
    alone (nothing is unpickled)."""
    import zipfile

    found = []
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            with archive.open(member) as handle:
                major, _ = np.lib.format.read_magic(handle)
                read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                if read(handle)[2].hasobject:
                    found.append(member.removesuffix(".npy"))
    return found


def _concatenated_videos(array: np.ndarray, lengths: np.ndarray, what: str, where: str) -> list[np.ndarray]:
    """Split a concatenated (N, C) array into per-video (T_v, C) arrays of ``lengths`` (V,)."""
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or (lengths < 0).any():
        raise ValueError(f"{where}lengths: expected one integer >= 0 per video, found {lengths!r}")
    if int(lengths.sum()) != array.shape[0]:
        raise ValueError(f"{where}lengths: sum to {int(lengths.sum())} segments, but {what} holds "
                         f"{array.shape[0]} rows (the videos one after the other)")
    return np.split(array, np.cumsum(lengths)[:-1])


def read_predictions(path: str | os.PathLike) -> Predictions:
    """Read and validate a predictions file; nothing in it is unpickled (``allow_pickle=False``).

    ``scores`` and ``labels`` are either concatenated ``(N, C)`` arrays (what
    :func:`write_predictions` writes) or padded ``(V, T, C)`` arrays; ``lengths`` ``(V,)`` is
    required with both (the padding of a padded array is not segments). ``video_ids`` is optional
    (default ``"0"``, ``"1"``, ...). A file holding pickled objects (the object arrays of earlier
    refdense versions, or a crafted file) is refused with the command that converts a trusted one.
    """
    import zipfile

    where = f"{path}: "
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such predictions file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{where}not a .npz file (expected a zip archive of .npy arrays)")
    try:
        pickled = _pickled_members(path)
        if not pickled:
            with np.load(path, allow_pickle=False) as data:
                content = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{where}not a readable .npz file ({error})") from None
    if pickled:
        quoted = repr(str(path))
        raise ValueError(
            f"{where}refused: {', '.join(pickled)} hold pickled Python objects, which are never loaded (loading "
            "them could run code). A predictions file of an earlier refdense (per-video object arrays) that "
            "you made yourself can be converted in place once:\n"
            f"  python -c \"import numpy as np; from refdense.metrics import write_predictions; "
            f"d = np.load({quoted}, allow_pickle=True); write_predictions({quoted}, list(d['scores']), "
            "list(d['labels']), list(d['video_ids']) if 'video_ids' in d.files else range(len(d['scores'])))\""
        )
    missing = [name for name in ("scores", "labels") if name not in content]
    if missing:
        raise ValueError(f"{where}expected arrays 'scores' and 'labels', missing {missing}; found {sorted(content)}")
    scores, labels = content["scores"], content["labels"]
    if scores.ndim not in (2, 3):
        raise ValueError(f"{where}scores: expected concatenated (N, C) or padded (V, T, C) arrays, "
                         f"found shape {scores.shape}")
    if "lengths" not in content:
        form = "padded (V, T, C)" if scores.ndim == 3 else "concatenated (N, C)"
        raise ValueError(f"{where}expected 'lengths' (V,) with {form} scores: the number of segments of each "
                         "video" + (" (np.full(V, T) when no video is padded)" if scores.ndim == 3 else ""))
    lengths = content["lengths"]
    if labels.ndim != scores.ndim:
        raise ValueError(f"{where}expected 'scores' and 'labels' of the same shape, found {scores.shape} and "
                         f"{labels.shape}")
    num_videos = len(lengths) if lengths.ndim == 1 else 0
    video_ids = content.get("video_ids")
    video_ids = [str(v) for v in video_ids] if video_ids is not None else [str(v) for v in range(num_videos)]
    if scores.ndim == 2:
        score_list = _concatenated_videos(scores, lengths, "scores", where)
        label_list = _concatenated_videos(labels, lengths, "labels", where)
        score_list, label_list = _check_videos(score_list, label_list, video_ids=video_ids, where=where)
    else:
        score_list, label_list = _check_videos(scores, labels, lengths, video_ids=video_ids, where=where)
    return Predictions(scores=score_list, labels=label_list, video_ids=video_ids)
