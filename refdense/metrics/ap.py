"""The AP kernel: scores pooled into sortable keys, the statistics of sorted key rows, per-frame mAP.

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
over all classes (as the references do). :func:`refdense.metrics.reference.average_precision` is
the same definition as a plain loop.

How it is fast
--------------
Scores are mapped to order-preserving unsigned integer codes (the bits of a float32 score, or
exact per-class ranks for other scores) and packed with the label into one ``uint32`` key
``code << 1 | label`` (:func:`pool`). Per class the keys are sorted; AP, true positives and
predicted positives then follow from binary searches in the sorted keys (:func:`sorted_row_stats`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from refdense.metrics.validation import Lengths, Videos, check_values, check_videos, values_valid


@dataclass(frozen=True)
class Pooled:
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


def dense_ranks(scores: np.ndarray) -> np.ndarray:
    """(N, C) uint32: per class, the rank of each score among the class's distinct scores.

    Order-preserving codes for scores that are not float32 values; costs an argsort of every
    class (several times slower than the float32 path, whose codes are the float bits).
    """
    by_class = transposed(scores)  # (C, N)
    order = np.argsort(by_class, axis=1)
    ordered = np.sort(by_class, axis=1)  # faster than gathering by ``order``
    dense = np.zeros(by_class.shape, dtype=np.uint32)
    np.cumsum(ordered[:, 1:] != ordered[:, :-1], axis=1, out=dense[:, 1:])
    codes = np.empty_like(dense)
    np.put_along_axis(codes, order, dense, axis=1)
    return transposed(codes)


def pool(scores: Videos, labels: Videos, lengths: Lengths = None) -> Pooled:
    score_list, label_list = check_videos(scores, labels, lengths, values=False)
    starts = np.zeros(len(score_list) + 1, dtype=np.int64)
    np.cumsum([s.shape[0] for s in score_list], out=starts[1:])
    pooled_scores = np.concatenate(score_list, axis=0)  # a new array: free to reuse below
    pooled_labels = np.concatenate(label_list, axis=0)
    if not values_valid(pooled_scores, pooled_labels):
        check_values(score_list, label_list)  # names the video
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
        keys = np.left_shift(dense_ranks(ranked_scores), 1)
    pooled_labels = pooled_labels.astype(bool, copy=False)
    np.bitwise_or(keys, pooled_labels.view(np.uint8), out=keys)
    positive_frames, positive_classes = np.nonzero(pooled_labels)
    frame_ptr = np.zeros(pooled_labels.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(positive_frames, minlength=pooled_labels.shape[0]), out=frame_ptr[1:])
    return Pooled(
        keys=keys,
        labels=pooled_labels,
        starts=starts,
        ranked_scores=ranked_scores,
        positive_frames=positive_frames,
        positive_classes=positive_classes,
        frame_ptr=frame_ptr,
    )


def transposed(matrix: np.ndarray, rows: np.ndarray | None = None, block: int = 256) -> np.ndarray:
    """A C-contiguous copy of ``matrix[rows].T``, gathered and transposed in cache-sized blocks
    (several times faster than numpy's copy of a transposed view).

    matrix (N, C); rows (n,) or None for all rows. Returns (C, n).
    """
    count = matrix.shape[0] if rows is None else rows.size
    result = np.empty((matrix.shape[1], count), dtype=matrix.dtype)
    for start in range(0, count, block):
        part = (
            matrix[start : start + block]
            if rows is None
            else matrix.take(rows[start : start + block], axis=0)
        )
        result[:, start : start + block] = part.T
    return result


def sorted_row_stats(
    sorted_keys: np.ndarray,
    pos_rows: np.ndarray,
    pos_keys: np.ndarray,
    threshold_keys: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
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
    ap: np.ndarray = np.bincount(pos_rows, weights=pos_at_least / (n - found[~is_cut]), minlength=rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = ap / positives
    if threshold_keys is None:
        return ap, positives
    predicted = n - found[is_cut]
    cut = threshold_keys + (np.arange(rows, dtype=np.int64) << 32)
    true_positives = pos_end - np.searchsorted(pos, cut, side="left")
    return ap, positives, true_positives, predicted


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
            "frame_map": percent(self.map_all),
            "frame_map_present": percent(self.map_present),
            "per_class_ap": [percent(a) for a in self.per_class],
        }

    def map_over(self, classes: Sequence[int]) -> float:
        """The mean AP over ``classes`` (class ids) that have a positive frame, as ``map_present`` is
        over all classes (fraction in [0, 1]); NaN when none of them has one (or ``classes`` is empty)."""
        ap = self.per_class[np.asarray(list(classes), dtype=np.int64)]
        return float(np.nanmean(ap)) if np.isfinite(ap).any() else math.nan


def pooled_frame_map(pooled: Pooled) -> FrameMAP:
    sorted_keys = transposed(pooled.keys)  # (C, N), sorted in place
    sorted_keys.sort(axis=1)
    frames, classes = pooled.positive_frames, pooled.positive_classes
    ap, positives = sorted_row_stats(sorted_keys, classes, pooled.keys[frames, classes])
    present = positives > 0
    return FrameMAP(
        per_class=ap,
        positives=positives,
        map_all=float(np.where(present, ap, 0.0).mean()),
        map_present=float(ap[present].mean()) if present.any() else math.nan,
    )


def frame_map(scores: Videos, labels: Videos, lengths: Lengths = None) -> FrameMAP:
    """Per-frame mAP over all pooled frames (docs/METHOD.md, section 7).

    scores: list of (T_v, C) probabilities, or a padded (V, T, C) array with ``lengths`` (V,).
    labels: same layout, values in {0, 1}.
    Ties follow scikit-learn (see the module docstring).
    """
    return pooled_frame_map(pool(scores, labels, lengths))


def percent(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else 100.0 * float(value)
