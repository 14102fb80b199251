"""The exercise solutions of notebooks 06-10 pass the notebooks' checks, and a typical wrong answer does not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from refdense.course import solutions
from refdense.course.checks import check_exercise
from refdense.losses import colv_loss, colv_loss_from_similarities, masked_bce
from refdense.metrics import action_conditional, frame_map, paper_table, reference


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


def test_conditioning_mask_matches_loops_and_the_package():
    rng = np.random.default_rng(1)
    video = (rng.random((40, 5)) < 0.2).astype(int)
    cases = [(video, 0), (video, 1), (video, 4), (video, 20), (video[:3], 10)]
    assert check_exercise(solutions.conditioning_mask, reference.video_conditioning_mask, *cases)
    off_by_one = lambda y, tau: reference.video_conditioning_mask(y, tau + 1) if tau else y == 1  # noqa: E731
    assert not check_exercise(off_by_one, reference.video_conditioning_mask, (video, 4))
    # the package agrees: with every score 1 and a threshold of 0.5, recall of a kept pair (i, j) is 1 exactly
    # where c_i has a positive in the frames the mask selects for c_j
    mask = solutions.conditioning_mask(video, 4)
    result = action_conditional([np.ones(video.shape, dtype=np.float32)], [video], tau=4)
    for j in range(5):
        expected = {i for i in range(5) if i != j and video[mask[:, j], i].any()}
        assert set(np.flatnonzero(result.kept[:, j])) == expected


def test_average_precision_with_ties_matches_frame_map():
    rng = np.random.default_rng(2)
    scores = np.round(rng.random(60), 1).astype(np.float32)  # many ties
    labels = (rng.random(60) < 0.3).astype(int)
    package = lambda s, y: frame_map([s[:, None]], [y[:, None]]).per_class[0]  # noqa: E731
    cases = [(scores, labels), (np.array([0.5, 0.5, 0.5, 0.1], dtype=np.float32), np.array([1, 0, 0, 1]))]
    assert check_exercise(solutions.average_precision_with_ties, package, *cases)

    def rank_based(s, y):  # the order-dependent rule: ties broken by position
        order = np.argsort(-s, kind="stable")
        hits = np.cumsum(y[order])
        return float(np.mean((hits / np.arange(1, len(s) + 1))[y[order] == 1]))

    assert not check_exercise(rank_based, package, cases[1])


# --- 09_full_training ------------------------------------------------------------------------------


def test_selected_epoch_follows_the_loop_rules():
    history = [{"epoch": 1, "val": {"map": 20.0}}, {"epoch": 2, "val": {"map": 25.0}}, {"epoch": 3, "val": {"map": 25.0}}]
    assert solutions.selected_epoch(history) == 2  # best, earliest on a tie (the loop keeps a strictly better one)
    assert solutions.selected_epoch([{"epoch": 1}, {"epoch": 2}]) == 2  # no validation: the last epoch
    sparse = [{"epoch": 1}, {"epoch": 2, "val": {"map": 3.0}}, {"epoch": 3}, {"epoch": 4, "val": {"map": 1.0}}]
    assert solutions.selected_epoch(sparse) == 2  # only validated epochs compete
    chosen = {json.dumps(history): 2, json.dumps(sparse): 2}
    assert check_exercise(solutions.selected_epoch, lambda h: chosen[json.dumps(h)], (history,), (sparse,))
    latest_best = lambda h: max(h, key=lambda r: (r["val"]["map"], r["epoch"]))["epoch"]  # noqa: E731
    assert not check_exercise(latest_best, lambda h: 2, (history,))


def test_table_gains_are_differences_in_points():
    rng = np.random.default_rng(3)
    labels = [(rng.random((40, 4)) < 0.3).astype(int) for _ in range(3)]
    good = [np.clip(0.6 * y + 0.4 * rng.random(y.shape), 0, 1) for y in labels]
    poor = [rng.random(y.shape) for y in labels]
    ours, baseline = paper_table(good, labels, taus=(0, 2)), paper_table(poor, labels, taus=(0, 2))
    gains = solutions.table_gains(ours, baseline)
    assert set(gains) == {"mAP"} | {f"{k} tau={t}" for t in (0, 2) for k in ("mAP_ac", "F1_ac", "P_ac", "R_ac")}
    assert gains["mAP"] == pytest.approx(100 * (ours.frame_map.map_all - baseline.frame_map.map_all))
    assert gains["F1_ac tau=2"] == pytest.approx(100 * (ours.conditional[2].F1_ac - baseline.conditional[2].F1_ac))
    assert gains["mAP"] > 0
    by_hand = {"mAP": 100 * (ours.frame_map.map_all - baseline.frame_map.map_all)}
    by_hand |= {f"{k} tau={t}": 100 * (getattr(ours.conditional[t], k) - getattr(baseline.conditional[t], k))
                for t in (0, 2) for k in ("mAP_ac", "F1_ac", "P_ac", "R_ac")}
    assert check_exercise(solutions.table_gains, lambda a, b: by_hand, (ours, baseline))
    fractions = lambda a, b: {k: v / 100 for k, v in solutions.table_gains(a, b).items()}  # noqa: E731
    assert not check_exercise(fractions, solutions.table_gains, (ours, baseline))


# --- 10_ablations ----------------------------------------------------------------------------------


def test_variant_config_is_what_ablate_builds():
    from refdense.train.ablate import ABLATIONS, BASE
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
