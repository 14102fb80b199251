"""Solutions of the course's exercises, one function per exercise, named as in the notebook.

Try the exercise first; each function here passes the notebook's ``check_exercise`` (tested in
``tests/test_course.py``). Imports stay inside the functions so that this module loads fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy.typing as npt
    from torch import Tensor

    from refdense.train.config import TrainConfig


# --- 01_pat_backbone ------------------------------------------------------------------------------


def ramp_attention(slope: float, distances: Tensor) -> Tensor:
    """Exercise 01.1: the attention weights that a ramp bias ``S_ij = -slope |i - j|`` alone gives a
    query far from both ends of a long sequence, at the signed ``distances`` (a tensor of ints).

    The weights are proportional to rho^|r| with rho = exp(-slope); the sum over every distance is
    1 + 2 rho / (1 - rho) = (1 + rho) / (1 - rho), so w_r = (1 - rho) / (1 + rho) rho^|r|.
    """
    import math

    rho = math.exp(-slope)
    return (1 - rho) / (1 + rho) * rho ** distances.abs().double()


# --- 03_action_entity -----------------------------------------------------------------------------


def reach_without_attention(blocks: int) -> int:
    """Exercise 03.2: with attention switched off, an input segment reaches the outputs within this
    many segments: the token projection (k = 3) reaches 1, each block's depthwise convolution (k = 3)
    1 more; linear layers, LayerNorms, GELU and residual sums act on each segment alone."""
    return 1 + blocks


# --- 04_action_motion -----------------------------------------------------------------------------


def cross_attention_scores(T: int, strides: Sequence[int], blocks: int, placement: str) -> int:
    """Exercise 04.2: query-key scores per head of all Action-Motion cross-attentions for one video,
    one cross-attention per branch (``placement="branch"``) or per block (``"block"``)."""
    queries = T + sum(-(-T // s) for s in strides)
    per_branch = blocks if placement == "block" else 1
    return per_branch * queries * T


# --- 05_fusion ------------------------------------------------------------------------------------


def and_weight(p: float) -> float:
    """Exercise 05.2: the smallest w of the head ``z = w f_e + w f_m - 1.5 w`` (0/1 part features) with
    probability >= p when both parts are on and <= 1 - p when one is: sigmoid(0.5 w) >= p, so
    w = 2 log(p / (1 - p))."""
    import math

    return 2 * math.log(p / (1 - p))


# --- 00_problem_and_data --------------------------------------------------------------------------


def strict_segment_count(start: float, end: float, duration: float, num_segments: int) -> int:
    """Exercise 00.2: how many segments an instance ``[start, end]`` inside the video covers under the
    strict rule ``s < t d / T < e``: the integers t with ``s T / d < t < e T / d`` and ``t <= T - 1``."""
    import math

    first = math.floor(start * num_segments / duration) + 1
    last = min(math.ceil(end * num_segments / duration) - 1, num_segments - 1)
    return max(0, last - first + 1)


# --- 02_label_decomposition -----------------------------------------------------------------------


def grid_ambiguous_pairs(num_entities: int, num_motions: int) -> int:
    """Exercise 02.2: pairs of classes sharing a part in a full grid of E entities x M motions.

    Two distinct grid classes share the entity or the motion, never both: E rows of M classes give
    E * M (M - 1) / 2 pairs, M columns of E classes M * E (E - 1) / 2.
    """
    return (
        num_entities * num_motions * (num_motions - 1) // 2
        + num_motions * num_entities * (num_entities - 1) // 2
    )


# --- 06_bce_loss ----------------------------------------------------------------------------------


def bce_logit_gradient(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Exercise 06.1: d masked_bce / d logits in closed form, ``(sigmoid(z) - y) / N`` on valid segments, 0 on padding.

    ``logits``, ``labels`` (B, T, C); ``mask`` (B, T) bool; N = number of valid segments.
    """
    import torch

    valid = mask[..., None]
    padded_free = torch.where(valid, logits, torch.zeros_like(logits))  # padding may hold anything
    return torch.where(valid, torch.sigmoid(padded_free) - labels, torch.zeros_like(logits)) / mask.sum()


def balanced_pos_weight(labels: Tensor, mask: Tensor) -> Tensor:
    """Exercise 06.2: per-class ``negatives / positives`` over the valid segments, 1 where a class has no positive; (C,)."""
    import torch

    valid = labels[mask].float()  # (N, C)
    positives = valid.sum(0)
    negatives = valid.shape[0] - positives
    return torch.where(positives > 0, negatives / positives.clamp(min=1), torch.ones_like(positives))


# --- 07_colv_loss ---------------------------------------------------------------------------------


def supcon_similarity_gradient(similarities: Tensor, positives: Tensor, tau: float) -> Tensor:
    """Exercise 07.1: d l / d s of the supervised-contrastive variant for one segment, ``(softmax(s / tau) - y / |beta|) / tau``;
    (C,). A positive holding more than its share 1/|beta| of the softmax is pushed away: the positives compete."""
    import torch

    return (torch.softmax(similarities / tau, dim=0) - positives / positives.sum()) / tau


def colv_feature_gradient(feature: Tensor, prompts: Tensor, positives: Tensor, tau: float) -> Tensor:
    """Exercise 07.2: d l / d f of the paper's variant for one segment, with respect to the unnormalised feature.

    ``feature`` (D,), ``prompts`` (C, D) (not normalised), ``positives`` (C,) 0/1 -> (D,):
    ``(I - f^ f^T) (sum_c dl/ds_c u_c) / |f|`` with ``dl/ds`` = ``-1/(|beta| tau)`` on the positives and the
    softmax over the negatives divided by ``tau`` on the negatives.
    """
    import torch
    import torch.nn.functional as F

    unit, direction = F.normalize(prompts, dim=1), F.normalize(feature, dim=0)
    beta = positives.bool()
    negative_softmax = torch.softmax((unit @ direction / tau).masked_fill(beta, float("-inf")), dim=0)
    d_similarities = torch.where(beta, -1.0 / (int(beta.sum()) * tau), negative_softmax / tau)
    d_direction = d_similarities @ unit
    return (d_direction - (d_direction @ direction) * direction) / feature.norm()


# --- 08_evaluation --------------------------------------------------------------------------------


def instance_conditioning_frames(length: int, tau: int, frames_after: int) -> int:
    """Exercise 08.1: conditioning frames of one instance of ``length`` segments followed by
    ``frames_after`` off segments: the instance itself at tau = 0; at tau > 0 the off frames t with
    t <= end + tau - 1, i.e. min(tau - 1, frames_after)."""
    return length if tau == 0 else min(tau - 1, frames_after)


def two_level_ap(high_positives: int, high_frames: int, low_positives: int, low_frames: int) -> float:
    """Exercise 08.2: AP under the tie rule of a class whose frames get one of two scores: each high
    positive has precision p_H / n_H, each low positive (p_H + p_L) / (n_H + n_L); AP is their mean
    over the p_H + p_L positives (NaN without positives)."""
    positives = high_positives + low_positives
    if positives == 0:
        return float("nan")
    high = high_positives * high_positives / high_frames if high_frames else 0.0
    low = low_positives * positives / (high_frames + low_frames)
    return (high + low) / positives


# --- 09_full_training -----------------------------------------------------------------------------


def best_constant_bce(labels: Iterable[npt.ArrayLike]) -> float:
    """Exercise 09.1: the lowest mean BCE of a predictor that ignores the video (one constant
    probability per class), over every frame and class of ``labels`` (per-video ``(T, C)`` 0/1 arrays).

    For class c with a share pi_c of positive frames, -pi log p - (1 - pi) log(1 - p) is lowest at
    p = pi, where it is the binary entropy H(pi_c) (0 for pi in {0, 1}); every class has the same
    frames, so the mean over frames and classes is the mean of H(pi_c) over the classes.
    """
    import numpy as np

    share = np.concatenate([np.asarray(y, dtype=np.float64) for y in labels]).mean(0)  # (C,)
    inside = np.clip(share, 1e-300, 1 - 1e-16)
    entropy = -(share * np.log(inside) + (1 - share) * np.log1p(-inside))
    return float(np.where((share > 0) & (share < 1), entropy, 0.0).mean())


def chance_map(labels: Iterable[npt.ArrayLike]) -> float:
    """Exercise 09.2: the per-frame mAP (a fraction, as ``frame_map(...).map_all``) of constant scores.

    All frames tie, so each positive is ranked with every frame: the precision at each positive, and
    so the AP of class c, is its share of positive frames pi_c (0 for a class without positives,
    as map_all counts it); the mAP is the mean of pi_c over the classes.
    """
    import numpy as np

    return float(np.concatenate([np.asarray(y, dtype=np.float64) for y in labels]).mean(0).mean())


# --- 10_ablations ---------------------------------------------------------------------------------


def variant_config(name: str, overrides: Iterable[str]) -> TrainConfig:
    """Exercise 10.1: the TrainConfig ``ablate`` trains for variant ``name``: base recipe, variant file, overrides."""
    from refdense.experiments.ablate import ABLATIONS, BASE
    from refdense.train.config import load_config

    return load_config(BASE, ABLATIONS / f"{name}.yaml", overrides=list(overrides))


def loss_terms(name: str) -> list[str]:
    """Exercise 10.2: sorted names of the loss terms variant ``name`` trains with (``bce_<set>``, or
    ``bce_coarse`` and ``bce_fine`` for PAT's two heads, and ``colv_<set>``)."""
    loss = variant_config(name, []).loss
    terms = [f"bce_{s}" for s in loss.classification_sets()] + [f"colv_{s}" for s in loss.active_colv_sets()]
    if loss.action_heads == "separate":
        terms = [t for t in terms if t != "bce_action"] + ["bce_coarse", "bce_fine"]
    return sorted(terms)
