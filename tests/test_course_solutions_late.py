"""The exercise solutions of notebooks 06-10 pass the notebooks' checks, and a typical wrong answer does not."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from refdense.course import solutions
from refdense.course.checks import check_exercise
from refdense.losses import colv_loss, colv_loss_from_similarities, masked_bce
from refdense.metrics import action_conditional, frame_map, reference


def _one_segment_mask():
    return torch.ones(1, 1, dtype=torch.bool)


# --- 06_bce_loss -----------------------------------------------------------------------------------


def _autograd_bce_gradient(logits, labels, mask):
    z = logits.clone().requires_grad_(True)
    masked_bce(z, labels, mask).backward()
    return z.grad


def test_bce_logit_gradient_matches_autograd_even_with_nan_padding():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 4, generator=generator)
    labels = (torch.rand(3, 7, 4, generator=generator) < 0.3).float()
    mask = torch.rand(3, 7, generator=generator) < 0.7
    mask[0, 0] = True
    logits[~mask] = float("nan")
    assert check_exercise(solutions.bce_logit_gradient, _autograd_bce_gradient, (logits, labels, mask))
    forgot_the_mean = lambda z, y, m: (torch.sigmoid(z) - y) * m[..., None]  # noqa: E731
    assert not check_exercise(forgot_the_mean, _autograd_bce_gradient, (logits.nan_to_num(), labels, mask))


def _counted_pos_weight(labels, mask):
    valid = labels[mask]
    weights = []
    for c in range(labels.shape[-1]):
        positives = int(valid[:, c].sum())
        weights.append((len(valid) - positives) / positives if positives else 1.0)
    return torch.tensor(weights)


def test_balanced_pos_weight_counts_only_valid_segments():
    labels = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(solutions.balanced_pos_weight(labels, mask), torch.tensor([1.0, 1.0]))
    random_labels = (torch.rand(2, 50, 6) < 0.1).float()
    random_mask = torch.rand(2, 50) < 0.8
    assert check_exercise(solutions.balanced_pos_weight, _counted_pos_weight, (labels, mask), (random_labels, random_mask))
    whole_batch = lambda y, m: (y.numel() / y.shape[-1] - y.sum((0, 1))) / y.sum((0, 1)).clamp(min=1)  # noqa: E731
    assert not check_exercise(whole_batch, _counted_pos_weight, (labels, mask))


# --- 07_colv_loss ----------------------------------------------------------------------------------


def _autograd_supcon_gradient(similarities, positives, tau):
    s = similarities.clone()[None, None].requires_grad_(True)
    colv_loss_from_similarities(s, positives[None, None], _one_segment_mask(), tau, variant="supcon").backward()
    return s.grad[0, 0]


def test_supcon_similarity_gradient_matches_autograd():
    cases = [
        (torch.tensor([0.6, 0.2, 0.1, -0.3, 0.4]), torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0]), 0.5),
        (torch.linspace(-1, 1, 8), torch.tensor([1.0, 0, 1, 0, 1, 0, 1, 0]), 0.07),
    ]
    assert check_exercise(solutions.supcon_similarity_gradient, _autograd_supcon_gradient, *cases)
    # the paper's negatives-only softmax in place of the shared one is the classic slip
    paper_form = lambda s, y, tau: torch.where(  # noqa: E731
        y.bool(), -1 / (y.sum() * tau), torch.softmax((s / tau).masked_fill(y.bool(), float("-inf")), 0) / tau)
    assert not check_exercise(paper_form, _autograd_supcon_gradient, *cases)


def _autograd_feature_gradient(feature, prompts, positives, tau):
    f = feature.clone().requires_grad_(True)
    colv_loss(f[None, None], prompts, positives[None, None], _one_segment_mask(), tau).backward()
    return f.grad


def test_colv_feature_gradient_matches_autograd_through_the_normalisation():
    g = torch.Generator().manual_seed(0)
    cases = [
        (torch.randn(6, generator=g), torch.randn(5, 6, generator=g), torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0]), 0.5),
        (5 * torch.randn(9, generator=g), torch.randn(4, 9, generator=g), torch.tensor([0.0, 0.0, 1.0, 0.0]), 0.07),
    ]
    assert check_exercise(solutions.colv_feature_gradient, _autograd_feature_gradient, *cases)
    # forgetting the 1/|f| of the normalisation's Jacobian is the classic slip
    unit_length = lambda f, u, y, tau: solutions.colv_feature_gradient(f, u, y, tau) * f.norm()  # noqa: E731
    assert not check_exercise(unit_length, _autograd_feature_gradient, *cases)


# --- 08_evaluation ---------------------------------------------------------------------------------


def _counted_frames(length, tau, frames_after):
    """Notebook 08's reference: one instance in a video of one class, its conditioning frames counted."""
    video = np.zeros((5 + length + frames_after, 1), dtype=np.uint8)
    video[5 : 5 + length] = 1
    return int(reference.video_conditioning_mask(video, tau).sum())


def test_conditioning_frames_count_the_instance_or_what_follows_it():
    cases = [(4, 0, 10), (4, 3, 10), (4, 20, 10), (1, 1, 5), (6, 5, 2), (3, 8, 0), (7, 2, 30)]
    assert check_exercise(solutions.instance_conditioning_frames, _counted_frames, *cases)
    window_of_tau = lambda length, tau, after: length if tau == 0 else min(tau, after)  # noqa: E731
    assert not check_exercise(window_of_tau, _counted_frames, *cases)


def test_the_conditioning_mask_selects_the_frames_of_the_kept_pairs():
    # with every score 1 and a threshold of 0.5, a pair (i, j) is kept exactly where c_i has a positive in
    # the frames the mask selects for c_j
    video = (np.random.default_rng(1).random((40, 5)) < 0.2).astype(int)
    mask = reference.video_conditioning_mask(video, 4)
    result = action_conditional([np.ones(video.shape, dtype=np.float32)], [video], tau=4)
    for j in range(5):
        expected = {i for i in range(5) if i != j and video[mask[:, j], i].any()}
        assert set(np.flatnonzero(result.kept[:, j])) == expected


def _two_level_ap_by_frame_map(high_positives, high_frames, low_positives, low_frames):
    """Notebook 08's reference: the two scores and their labels through the package's per-frame AP."""
    scores = np.repeat([0.9, 0.1], [high_frames, low_frames]).astype(np.float32)
    labels = np.zeros(high_frames + low_frames, dtype=np.uint8)
    labels[:high_positives] = 1
    labels[high_frames : high_frames + low_positives] = 1
    return frame_map([scores[:, None]], [labels[:, None]]).per_class[0]


def test_two_level_ap_follows_the_tie_rule():
    cases = [(3, 5, 1, 10), (4, 4, 0, 20), (0, 6, 2, 2), (10, 40, 5, 200), (1, 1, 1, 1)]
    assert check_exercise(solutions.two_level_ap, _two_level_ap_by_frame_map, *cases)

    def ranked_low_positives_first(p_h, n_h, p_l, n_l):  # order-dependent: ties broken with positives first
        precisions = [(k + 1) / (k + 1) for k in range(p_h)] + [(p_h + k + 1) / (n_h + k + 1) for k in range(p_l)]
        return float(np.mean(precisions))

    assert not check_exercise(ranked_low_positives_first, _two_level_ap_by_frame_map, (3, 5, 1, 10))


# --- 09_full_training ------------------------------------------------------------------------------


def _best_constant_bce_by_search(labels):
    """The notebook's brute force: every probability of a fine grid, the best per class."""
    frames = np.concatenate(labels).astype(np.float64)  # (N, C)
    positives, negatives = frames.sum(0), (1 - frames).sum(0)  # (C,)
    p = np.linspace(1e-6, 1 - 1e-6, 200001)[:, None]  # (P, 1)
    bce = -(positives * np.log(p) + negatives * np.log1p(-p)) / len(frames)  # (P, C)
    return float(bce.min(0).mean())


def test_best_constant_bce_is_the_mean_binary_entropy_of_the_class_shares():
    rng = np.random.default_rng(4)
    labels = [(rng.random((n, 5)) < [0.05, 0.2, 0.5, 0.7, 0.0]).astype(np.uint8) for n in (30, 80, 45)]
    assert check_exercise(solutions.best_constant_bce, _best_constant_bce_by_search, (labels,), atol=1e-6)
    assert solutions.best_constant_bce([np.ones((4, 2))]) == 0.0  # always on: a constant 1 is perfect
    assert solutions.best_constant_bce([np.array([[1], [0]])]) == pytest.approx(np.log(2))
    pooled = lambda y: solutions.best_constant_bce([np.concatenate(y).reshape(-1, 1)])  # noqa: E731  one share for all classes
    assert not check_exercise(pooled, _best_constant_bce_by_search, (labels,))


def test_chance_map_is_the_mean_share_of_positive_frames():
    rng = np.random.default_rng(5)
    labels = [(rng.random((n, 4)) < [0.1, 0.3, 0.0, 0.6]).astype(np.uint8) for n in (20, 70)]

    def constant_scores_map(y):
        return frame_map([np.full(v.shape, 0.5, np.float32) for v in y], y).map_all

    assert check_exercise(solutions.chance_map, constant_scores_map, (labels,), (labels[:1],))
    per_video = lambda y: float(np.mean([v.mean(0).mean() for v in y]))  # noqa: E731  videos of unequal length
    assert not check_exercise(per_video, constant_scores_map, (labels,))


# --- 10_ablations ----------------------------------------------------------------------------------


def test_variant_config_is_what_ablate_builds():
    from refdense.experiments.ablate import ABLATIONS, BASE
    from refdense.train.config import load_config

    common = ["data.dataset=tiny", "optim.epochs=2", "run.seed=1"]
    for name in ("full", "pat_colv", "no_cross_attention"):
        assert solutions.variant_config(name, common) == load_config(BASE, ABLATIONS / f"{name}.yaml", overrides=common)
    assert solutions.variant_config("pat_colv", common).model.arch == "pat"
    built_by_ablate = lambda name, overrides: load_config(BASE, ABLATIONS / f"{name}.yaml", overrides=overrides)  # noqa: E731
    assert check_exercise(solutions.variant_config, built_by_ablate, ("no_colv", common), ("pat", common))
    without_variant = lambda name, overrides: load_config(BASE, overrides=overrides)  # noqa: E731
    assert not check_exercise(without_variant, solutions.variant_config, ("no_colv", common))


def test_loss_terms_match_the_criterion_of_each_variant():
    from types import SimpleNamespace

    from refdense.losses import RefDenseCriterion

    bank = SimpleNamespace(embeddings={s: torch.randn(3, 4) for s in ("action", "entity", "motion")})
    for name in ("full", "no_sub_labels", "no_colv", "pat", "pat_colv", "no_entity_labels"):
        loss = solutions.variant_config(name, []).loss
        criterion = RefDenseCriterion(loss, feature_dim=8, text_bank=bank)
        assert solutions.loss_terms(name) == sorted(criterion.term_names()), name
    assert solutions.loss_terms("pat_colv") == ["bce_coarse", "bce_fine", "colv_action"]  # PAT's two heads
    assert solutions.loss_terms("no_entity_labels") == ["bce_action", "bce_motion", "colv_motion"]
    criterion_terms = lambda name: sorted(RefDenseCriterion(  # noqa: E731
        solutions.variant_config(name, []).loss, feature_dim=8, text_bank=bank).term_names())
    assert check_exercise(solutions.loss_terms, criterion_terms, ("full",), ("pat_colv",), ("no_motion_labels",))
    assert not check_exercise(lambda name: ["bce_action"], criterion_terms, ("full",))
