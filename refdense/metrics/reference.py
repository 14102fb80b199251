"""The metrics as plain loops, written from their definitions (docs/METHOD.md, section 7), word by word.

Slow (Python loops over classes, frames and thresholds) and meant to be read: the tests check the
fast code of :mod:`refdense.metrics` against these functions on random inputs, and the course
(notebook 08) checks its exercises with them. Inputs are per-video lists of ``(T_v, C)`` arrays:
probabilities in [0, 1] and 0/1 labels (no validation here; the fast functions validate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def average_precision(scores: Iterable[float], labels: Iterable[int]) -> float:
    """AP of one class from ``(N,)`` scores and ``(N,)`` 0/1 labels: a fraction in [0, 1], NaN without a positive.

    Non-interpolated, with scikit-learn's tie rule: walk the distinct scores ``s`` from high to low,
    and at each add (the increase of recall) * (the precision), where recall and precision are those
    of calling every frame with a score ``>= s`` positive. Tied frames are called together, so the
    result does not depend on their order.
    """
    score_list = [float(s) for s in scores]
    label_list = [1 if y else 0 for y in labels]
    positives = sum(label_list)
    if positives == 0:
        return math.nan
    ap, previous_recall = 0.0, 0.0
    for s in sorted(set(score_list), reverse=True):
        called = [y for x, y in zip(score_list, label_list) if x >= s]
        true_positives = sum(called)
        recall = true_positives / positives
        ap += (recall - previous_recall) * (true_positives / len(called))
        previous_recall = recall
    return ap


def frame_map(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict:
    """Per-frame mAP over the pooled frames of all videos.

    Returns ``{"per_class": [C] APs (NaN for a class without positive), "map_all": the mean over all
    classes (a class without positive counts 0), "map_present": the mean over the classes with a
    positive (NaN if none)}``, fractions in [0, 1], as :class:`refdense.metrics.FrameMAP`.
    """
    pooled_scores = np.concatenate(scores).astype(np.float64)
    pooled_labels = np.concatenate(labels)
    num_classes = pooled_scores.shape[1]
    per_class = [average_precision(pooled_scores[:, c], pooled_labels[:, c]) for c in range(num_classes)]
    map_all = sum(0.0 if math.isnan(ap) else ap for ap in per_class) / num_classes
    present = [ap for ap in per_class if not math.isnan(ap)]
    map_present = sum(present) / len(present) if present else math.nan
    return {"per_class": per_class, "map_all": map_all, "map_present": map_present}


def video_conditioning_mask(video_labels: np.ndarray, tau: int) -> np.ndarray:
    """The conditioning mask ``M`` ``(T, C)`` bool of ONE video's ``(T, C)`` 0/1 labels ``Y``.

    ``tau = 0``: ``M = Y`` (the class is on now). ``tau > 0``: ``M[t, c]`` iff ``Y[t, c] = 0`` and
    ``Y[u, c] = 1`` for some ``u`` in ``[t - tau + 1, t]``, the window clipped at the video start
    (the class is off now and was on within the last ``tau - 1`` segments).
    """
    video_labels = np.asarray(video_labels)
    length, num_classes = video_labels.shape
    mask = np.zeros((length, num_classes), dtype=bool)
    for t in range(length):
        for c in range(num_classes):
            on_now = video_labels[t, c] != 0
            if tau == 0:
                mask[t, c] = on_now
            else:
                on_in_window = any(video_labels[u, c] != 0 for u in range(max(0, t - tau + 1), t + 1))
                mask[t, c] = on_in_window and not on_now
    return mask


def action_conditional(
    scores: Sequence[np.ndarray], labels: Sequence[np.ndarray], tau: int, threshold: float = 0.5
) -> dict:
    """The action-conditional metrics of MLAD for the window ``tau``.

    For each conditioning class ``c_j``, the frames ``F_j`` where its mask is on; on them, for every
    other class ``c_i`` with a positive among ``F_j`` (a kept pair): precision and recall of
    ``score >= threshold`` (precision 0 when nothing is predicted) and AP. ``P_ac``, ``R_ac`` and
    ``mAP_ac`` are the means over the kept pairs, ``F1_ac = 2 P_ac R_ac / (P_ac + R_ac)``.

    Returns ``{"mAP_ac", "F1_ac", "P_ac", "R_ac"}`` (fractions in [0, 1], NaN without a kept pair)
    and ``"pairs"``, the kept pairs ``(i, j)``, by ``j`` then ``i``.
    """
    pooled_scores = np.concatenate(scores).astype(np.float64)
    pooled_labels = np.concatenate(labels)
    mask = np.concatenate([video_conditioning_mask(video, tau) for video in labels])
    num_frames, num_classes = pooled_scores.shape
    precisions, recalls, aps, pairs = [], [], [], []
    for j in range(num_classes):
        frames = [t for t in range(num_frames) if mask[t, j]]
        for i in range(num_classes):
            truth = [int(pooled_labels[t, i]) for t in frames]
            if i == j or sum(truth) == 0:
                continue
            frame_scores = [pooled_scores[t, i] for t in frames]
            predicted = [1 if s >= threshold else 0 for s in frame_scores]
            true_positives = sum(p * y for p, y in zip(predicted, truth))
            precisions.append(true_positives / sum(predicted) if sum(predicted) else 0.0)
            recalls.append(true_positives / sum(truth))
            aps.append(average_precision(frame_scores, truth))
            pairs.append((i, j))
    if not pairs:
        return {"mAP_ac": math.nan, "F1_ac": math.nan, "P_ac": math.nan, "R_ac": math.nan, "pairs": pairs}
    p, r = sum(precisions) / len(pairs), sum(recalls) / len(pairs)
    return {
        "mAP_ac": sum(aps) / len(pairs),
        "F1_ac": 2 * p * r / (p + r) if p + r else 0.0,
        "P_ac": p,
        "R_ac": r,
        "pairs": pairs,
    }
