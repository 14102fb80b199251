"""Action-conditional metrics (MLAD, Tirupattur et al. 2021), computed on the keys of :mod:`refdense.metrics.ap`.

Definition
----------
For a window ``tau`` (segments), a conditioning mask ``M`` ``(N, C)``: ``M = Y`` for ``tau = 0``;
for ``tau > 0``, per video, ``M[t, c] = 1`` iff ``Y[t, c] = 0`` and ``Y[u, c] = 1`` for some ``u``
in ``[t - tau + 1, t]`` (the window is clipped at the video start and never crosses into another
video). For each conditioning class ``c_j`` the frames ``F_j = {t : M[t, c_j] = 1}`` are scored
for every class ``c_i``: precision and recall at ``score >= threshold`` (compared exactly, in the
precision of the scores), and AP (the tie rule of :mod:`refdense.metrics.ap`). A pair ``(c_i, c_j)``,
``i != j``, is kept iff ``c_i`` has a positive among ``F_j``; an undefined precision (nothing
predicted) counts 0. ``P_ac``, ``R_ac`` and ``mAP_ac`` are unweighted means over the kept pairs and
``F1_ac = 2 P_ac R_ac / (P_ac + R_ac)`` is computed from those means. With no kept pair the means
are NaN (``null`` in JSON). :func:`refdense.metrics.reference.action_conditional` is the same
definition as plain loops.

How it is fast
--------------
For each conditioning class ``c_j`` the keys of the frames ``F_j`` are sorted per class and go
through :func:`refdense.metrics.ap.sorted_row_stats`. The work is about ``C * sum_j |F_j|`` sorted
keys per ``tau``, instead of ``C^2`` passes over all frames. The conditioning classes are
independent jobs on a thread pool (numpy releases the GIL while it sorts and searches).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from refdense.metrics.ap import Pooled, percent, pool, sorted_row_stats, transposed
from refdense.metrics.validation import Lengths, Videos, check_tau_threshold


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
            "mAP_ac": percent(self.mAP_ac),
            "F1_ac": percent(self.F1_ac),
            "P_ac": percent(self.P_ac),
            "R_ac": percent(self.R_ac),
            "pairs": int(self.pairs),
        }


def conditioning_frames(pooled: Pooled, tau: int) -> list[np.ndarray]:
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


def conditional_column(
    pooled: Pooled,
    j: int,
    frames_j: np.ndarray,
    threshold_keys: np.ndarray,
    precision: np.ndarray,
    recall: np.ndarray,
    ap: np.ndarray,
) -> None:
    """Fill column j of the (C, C) matrices: every class c_i on the frames F_j (``frames_j``, (n,));
    ``threshold_keys`` (C,) as :meth:`Pooled.threshold_keys`."""
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
    block = transposed(keys, frames_j)[rows]  # (R, |F_j|)
    block.sort(axis=1)
    ap_j, positives, true_pos, predicted = sorted_row_stats(
        block, row_of_class[pos_classes], keys[pos_frames, pos_classes], threshold_keys[rows]
    )
    ap[rows, j] = ap_j
    recall[rows, j] = true_pos / positives
    precision[rows, j] = np.divide(true_pos, predicted, out=np.zeros(rows.size), where=predicted > 0)


def pooled_action_conditional(
    pooled: Pooled, tau: int, threshold: float, executor: Executor
) -> ActionConditional:
    """The columns (conditioning classes) are independent: they run as jobs on ``executor``."""
    num_classes = pooled.keys.shape[1]
    frames_per_class = conditioning_frames(pooled, tau)
    threshold_keys = pooled.threshold_keys(threshold)
    shape = (num_classes, num_classes)
    precision, recall, ap = (np.full(shape, np.nan) for _ in range(3))
    jobs = [
        executor.submit(conditional_column, pooled, j, frames_j, threshold_keys, precision, recall, ap)
        for j, frames_j in enumerate(frames_per_class)
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
    frames = np.array([f.size for f in frames_per_class])
    return ActionConditional(
        tau=int(tau),
        threshold=float(threshold),
        precision=precision,
        recall=recall,
        ap=ap,
        kept=kept,
        frames=frames,
        mAP_ac=map_ac,
        F1_ac=f1_ac,
        P_ac=p_ac,
        R_ac=r_ac,
        pairs=pairs,
    )


def thread_pool() -> ThreadPoolExecutor:
    """Threads for the independent parts (numpy releases the GIL in its loops); at most 4."""
    return ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))


def action_conditional(
    scores: Videos, labels: Videos, lengths: Lengths = None, tau: int = 0, threshold: float = 0.5
) -> ActionConditional:
    """Action-conditional precision, recall, F1 and mAP (MLAD; docs/METHOD.md, section 7).

    scores: list of (T_v, C) probabilities, or a padded (V, T, C) array with ``lengths`` (V,).
    labels: same layout, values in {0, 1}.
    tau: window in segments (0: co-occurrence in the same segment).
    threshold: a frame is predicted positive iff score >= threshold.
    The exact semantics (mask, kept pairs, undefined values, ties) are in the module docstring.
    """
    check_tau_threshold(tau, threshold)
    pooled = pool(scores, labels, lengths)
    with thread_pool() as executor:
        return pooled_action_conditional(pooled, tau, threshold, executor)
