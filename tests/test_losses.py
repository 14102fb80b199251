"""Tests of refdense.losses: BCE (Eq. 4), asymmetric loss, CoLV (Eq. 11-12) and the criterion."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import yaml

from refdense.losses import (
    LossConfig,
    LossResult,
    RefDenseCriterion,
    asymmetric_loss,
    colv_loss,
    colv_loss_from_similarities,
    masked_bce,
)


def random_batch(seed=0, B=3, T=7, C=5, D=6, dtype=torch.float32, lengths=(7, 4, 2)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, C, generator=g, dtype=dtype) * 3
    labels = (torch.rand(B, T, C, generator=g) < 0.4).to(dtype)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    feats = torch.randn(B, T, D, generator=g, dtype=dtype)
    text = torch.randn(C, D, generator=g, dtype=dtype)
    return logits, labels, mask, feats, text


def colv_loop(video, text, labels, mask, tau, variant):
    """Plain per-frame implementation of Eq. 11-12 (docs/METHOD.md), in python floats (float64)."""
    total, count = 0.0, 0
    B, T, _ = video.shape
    u = [row / row.norm() for row in text.double()]
    for b in range(B):
        for t in range(T):
            if not mask[b, t]:
                continue
            count += 1
            f = video[b, t].double()
            f = f / f.norm()
            s = [float(f @ uc) for uc in u]
            beta = [c for c in range(len(s)) if labels[b, t, c] == 1]
            negatives = [c for c in range(len(s)) if labels[b, t, c] == 0]
            if not beta or not negatives:
                continue
            neg_sum = sum(math.exp(s[c] / tau) for c in negatives)
            all_sum = sum(math.exp(value / tau) for value in s)
            frame = 0.0
            for e in beta:
                denominator = {"refdense": neg_sum, "infonce": neg_sum + math.exp(s[e] / tau), "supcon": all_sum}[variant]
                frame += -math.log(math.exp(s[e] / tau) / denominator)
            total += frame / len(beta)
    return total / count


# ---------------------------------------------------------------------------------------------
# BCE and asymmetric loss
# ---------------------------------------------------------------------------------------------


def test_masked_bce_matches_eq4_sum_over_classes_mean_over_valid_segments():
    logits, labels, mask, _, _ = random_batch(dtype=torch.float64)
    p = torch.sigmoid(logits)
    per_entry = -(labels * torch.log(p) + (1 - labels) * torch.log(1 - p))
    expected = per_entry[mask].sum() / mask.sum()
    torch.testing.assert_close(masked_bce(logits, labels, mask), expected)
    torch.testing.assert_close(masked_bce(logits, labels, mask, reduction="sum"), per_entry[mask].sum())
    none = masked_bce(logits, labels, mask, reduction="none")
    assert none.shape == logits.shape
    torch.testing.assert_close(none[mask], per_entry[mask])
    assert torch.all(none[~mask] == 0)


def test_masked_bce_pos_weight_scales_only_the_positive_term():
    logits, labels, mask, _, _ = random_batch(dtype=torch.float64)
    plain = masked_bce(logits, labels, mask, reduction="none")
    weighted = masked_bce(logits, labels, mask, pos_weight=3.0, reduction="none")
    positive = labels.bool() & mask[..., None]
    negative = ~labels.bool() & mask[..., None]
    torch.testing.assert_close(weighted[positive], 3.0 * plain[positive])
    torch.testing.assert_close(weighted[negative], plain[negative])


def asl_reference(x, y, gamma_neg, gamma_pos, clip, eps=1e-8):
    """The formula of Ridnik et al. written directly (probabilities, clamps)."""
    p = torch.sigmoid(x)
    p_neg = (1 - p + clip).clamp(max=1)
    loss = y * torch.log(p.clamp(min=eps)) + (1 - y) * torch.log(p_neg.clamp(min=eps))
    pt = p * y + p_neg * (1 - y)
    weight = (1 - pt).pow(gamma_pos * y + gamma_neg * (1 - y))
    return -(loss * weight)


def test_asymmetric_loss_matches_the_formula_and_reduces_to_bce():
    logits, labels, mask, _, _ = random_batch(dtype=torch.float64)
    # defaults: the published PAT code's utils.AsymmetricLoss (gamma_neg 3, gamma_pos 1, clip 0.05)
    expected = asl_reference(logits, labels, 3.0, 1.0, 0.05)[mask].sum() / mask.sum()
    torch.testing.assert_close(asymmetric_loss(logits, labels, mask), expected)
    assert not torch.allclose(asymmetric_loss(logits, labels, mask, gamma_neg=4.0), expected)
    torch.testing.assert_close(
        asymmetric_loss(logits, labels, mask, gamma_neg=0, gamma_pos=0, clip=0), masked_bce(logits, labels, mask)
    )


def test_asymmetric_loss_focusing_weight_is_detached_as_in_the_reference():
    x = torch.tensor([[[0.3, -1.2]]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[[1.0, 1.0]]], dtype=torch.float64)
    mask = torch.ones(1, 1, dtype=torch.bool)
    asymmetric_loss(x, y, mask, reduction="sum").backward()
    p = torch.sigmoid(x.detach())
    # d/dx of -(1-p)^gamma_pos * log p with the weight constant: -(1-p)^1 * (1-p)
    torch.testing.assert_close(x.grad, -(1 - p) * (1 - p))


@pytest.mark.parametrize("loss", [masked_bce, asymmetric_loss])
def test_classification_losses_ignore_padded_segments_values_and_gradients(loss):
    logits, labels, mask, _, _ = random_batch()
    garbage = logits.clone()
    garbage[~mask] = float("nan")
    garbage_labels = labels.clone()
    garbage_labels[~mask] = 1 - garbage_labels[~mask]
    a = logits.clone().requires_grad_(True)
    b = garbage.clone().requires_grad_(True)
    value_a = loss(a, labels, mask)
    value_b = loss(b, garbage_labels, mask)
    value_a.backward()
    value_b.backward()
    torch.testing.assert_close(value_a, value_b)
    torch.testing.assert_close(a.grad, b.grad)
    assert torch.all(b.grad[~mask] == 0)
    # the same valid segments without any padding give the same loss
    first = mask[0].sum()
    alone = loss(logits[:1, :first], labels[:1, :first], mask[:1, :first], reduction="sum")
    torch.testing.assert_close(alone, loss(logits, labels, mask, reduction="none")[0].sum())


def test_classification_losses_are_stable_for_extreme_logits():
    logits = torch.tensor([[[80.0, -80.0, 0.0]]], requires_grad=True)
    labels = torch.tensor([[[0.0, 1.0, 1.0]]])
    mask = torch.ones(1, 1, dtype=torch.bool)
    for loss in (masked_bce, asymmetric_loss):
        value = loss(logits, labels, mask)
        (grad,) = torch.autograd.grad(value, logits)
        assert torch.isfinite(value) and torch.isfinite(grad).all()
    torch.testing.assert_close(masked_bce(logits, labels, mask), torch.tensor(80.0 + 80.0 + math.log(2)))


# ---------------------------------------------------------------------------------------------
# CoLV
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["refdense", "infonce", "supcon"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_colv_matches_a_per_frame_loop(variant, seed):
    _, labels, mask, feats, text = random_batch(seed=seed, B=3, T=9, C=6, D=8, lengths=(9, 5, 1))
    labels[0, 0] = 0  # no positive
    labels[0, 1] = 1  # all positive (no negative)
    labels[1, 2] = 0
    labels[1, 2, 3] = 1  # exactly one positive
    tau = 0.07 if seed != 2 else 0.5
    got = colv_loss(feats, text, labels, mask, tau, variant=variant)
    expected = colv_loop(feats, text, labels, mask, tau, variant)
    assert abs(got.item() - expected) <= 1e-5 * max(1.0, abs(expected))


def test_colv_hand_computed_frame_and_variants_differ_only_by_the_positive_in_the_denominator():
    # unit vectors: similarities are s = (0.6, 0.8, 0) for f = (0.6, 0.8, 0) against the basis
    feats = torch.tensor([[[0.6, 0.8, 0.0]]], dtype=torch.float64)
    text = torch.eye(3, dtype=torch.float64)
    labels = torch.tensor([[[1.0, 1.0, 0.0]]], dtype=torch.float64)
    mask = torch.ones(1, 1, dtype=torch.bool)
    tau = 0.5
    refdense = colv_loss(feats, text, labels, mask, tau)
    # negatives only: denominator exp(0 / tau) = 1
    torch.testing.assert_close(refdense, torch.tensor(-(0.6 + 0.8) / 2 / tau, dtype=torch.float64))
    infonce = colv_loss(feats, text, labels, mask, tau, variant="infonce")
    expected = (math.log(math.exp(1.2) + 1) - 1.2 + math.log(math.exp(1.6) + 1) - 1.6) / 2
    torch.testing.assert_close(infonce, torch.tensor(expected, dtype=torch.float64))
    # supcon: one denominator over all three classes, exp(1.2) + exp(1.6) + 1, for both positives
    supcon = colv_loss(feats, text, labels, mask, tau, variant="supcon")
    expected = math.log(math.exp(1.2) + math.exp(1.6) + 1) - (1.2 + 1.6) / 2
    torch.testing.assert_close(supcon, torch.tensor(expected, dtype=torch.float64))


def test_colv_variants_pull_the_positives_differently():
    """d l / d s_e: constant -1/(|beta| tau) (paper), fading (InfoNCE), competing (supcon: a positive
    that already holds more than its share 1/|beta| of the softmax is pushed away)."""
    s = torch.tensor([[[0.9, 0.1, 0.0, -0.2]]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]], dtype=torch.float64)
    mask = torch.ones(1, 1, dtype=torch.bool)
    tau = 0.1
    grads = {}
    for variant in ("refdense", "infonce", "supcon"):
        (grads[variant],) = torch.autograd.grad(colv_loss_from_similarities(s, labels, mask, tau, variant=variant), s)
    torch.testing.assert_close(grads["refdense"][0, 0, :2], torch.full((2,), -1 / (2 * tau), dtype=torch.float64))
    assert (grads["infonce"][0, 0, :2] > grads["refdense"][0, 0, :2]).all()  # weaker pull
    softmax = torch.softmax(s.detach()[0, 0] / tau, dim=0)
    torch.testing.assert_close(grads["supcon"][0, 0], (softmax - labels[0, 0] / 2) / tau)
    assert grads["supcon"][0, 0, 0] > 0 > grads["supcon"][0, 0, 1]  # the winning positive is pushed back


@pytest.mark.parametrize("variant", ["refdense", "infonce", "supcon"])
def test_colv_frames_without_positive_or_negative_give_zero_but_count(variant):
    B, T, C, D = 1, 4, 3, 5
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(B, T, D, generator=g, dtype=torch.float64, requires_grad=True)
    text = torch.randn(C, D, generator=g, dtype=torch.float64)
    labels = torch.zeros(B, T, C, dtype=torch.float64)
    labels[0, 1] = 1  # all positive
    labels[0, 2, 0] = 1  # a normal frame
    labels[0, 3] = 1  # all positive
    mask = torch.ones(B, T, dtype=torch.bool)
    per_frame = colv_loss(feats, text, labels, mask, 0.1, variant=variant, reduction="none")
    assert per_frame[0, 0] == 0 and per_frame[0, 1] == 0 and per_frame[0, 3] == 0
    assert per_frame[0, 2] != 0
    mean = colv_loss(feats, text, labels, mask, 0.1, variant=variant)
    torch.testing.assert_close(mean, per_frame[0, 2] / 4)  # the empty frames count in the mean
    (grad,) = torch.autograd.grad(mean, feats)
    assert torch.isfinite(grad).all()
    assert torch.all(grad[0, [0, 1, 3]] == 0) and grad[0, 2].abs().sum() > 0
    # a batch where every frame is all-positive: zero loss, zero finite gradient
    everything = torch.ones_like(labels)
    value = colv_loss(feats, text, everything, mask, 0.1, variant=variant)
    (grad,) = torch.autograd.grad(value, feats)
    assert value.item() == 0 and torch.all(grad == 0)


@pytest.mark.parametrize("variant", ["refdense", "infonce", "supcon"])
def test_colv_gradcheck_float64_including_temperature(variant):
    _, labels, mask, feats, text = random_batch(seed=4, B=2, T=4, C=4, D=3, dtype=torch.float64, lengths=(4, 2))
    labels[0, 0] = 1  # all positive frame: guarded, must stay finite
    labels[0, 1] = 0
    labels[0, 2] = 0
    labels[0, 2, 1] = 1
    feats.requires_grad_(True)
    text.requires_grad_(True)
    tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)

    def f(v, u, t):
        return colv_loss(v, u, labels, mask, t, variant=variant)

    assert torch.autograd.gradcheck(f, (feats, text, tau))


def test_colv_ignores_padded_segments():
    _, labels, mask, feats, text = random_batch(seed=5)
    noisy = feats.clone()
    noisy[~mask] = float("nan")
    noisy_labels = labels.clone()
    noisy_labels[~mask] = 1 - noisy_labels[~mask]
    a = feats.clone().requires_grad_(True)
    b = noisy.requires_grad_(True)
    value_a = colv_loss(a, text, labels, mask)
    value_b = colv_loss(b, text, noisy_labels, mask)
    value_a.backward()
    value_b.backward()
    torch.testing.assert_close(value_a, value_b)
    torch.testing.assert_close(a.grad, b.grad)
    assert torch.all(b.grad[~mask] == 0)


def test_colv_temperature_tensor_equals_float_and_is_scale_invariant_in_features():
    _, labels, mask, feats, text = random_batch(seed=6)
    a = colv_loss(feats, text, labels, mask, 0.2)
    torch.testing.assert_close(a, colv_loss(feats, text, labels, mask, torch.tensor(0.2)))
    torch.testing.assert_close(a, colv_loss(3.0 * feats, 0.5 * text, labels, mask, 0.2))  # L2-normalised inside


def test_colv_under_bf16_autocast_is_computed_in_float32():
    _, labels, mask, feats, text = random_batch(seed=7, D=16)
    projection = torch.nn.Linear(16, 16)
    reference = colv_loss(projection(feats), text, labels, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        projected = projection(feats)
        assert projected.dtype == torch.bfloat16
        value = colv_loss(projected, text, labels, mask)
        per_frame = colv_loss(projected, text, labels, mask, reduction="none")
    assert value.dtype == torch.float32 and per_frame.dtype == torch.float32
    # error from the bf16 projection: at most 0.0065 over 30 seeds (measured)
    torch.testing.assert_close(value, reference, rtol=0, atol=0.02)
    value.backward()
    assert torch.isfinite(projection.weight.grad).all()


def test_colv_from_similarities_is_what_colv_loss_computes():
    _, labels, mask, feats, text = random_batch(seed=8)
    f = torch.nn.functional.normalize(feats, dim=-1)
    u = torch.nn.functional.normalize(text, dim=-1)
    torch.testing.assert_close(
        colv_loss_from_similarities(f @ u.T, labels, mask, 0.1), colv_loss(feats, text, labels, mask, 0.1)
    )


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_bad_inputs_name_expected_and_found():
    logits, labels, mask, feats, text = random_batch()
    with pytest.raises(ValueError, match=r"targets shape: expected \(3, 7, 5\).*found \(3, 7, 4\)"):
        masked_bce(logits, labels[..., :4], mask)
    with pytest.raises(ValueError, match=r"mask must be a torch.bool tensor, found torch.float32"):
        masked_bce(logits, labels, mask.float())
    with pytest.raises(ValueError, match=r"mask shape: expected \(B, T\) = \(3, 7\), found \(3, 6\)"):
        asymmetric_loss(logits, labels, mask[:, :6])
    bad = labels.clone()
    bad[0, 0, 0] = 2.0
    with pytest.raises(ValueError, match=r"targets must be 0 or 1, found 2.0"):
        masked_bce(logits, bad, mask)
    with pytest.raises(ValueError, match=r"labels must be 0 or 1, found 2.0"):
        colv_loss(feats, text, bad, mask)
    with pytest.raises(ValueError, match=r"all False: expected at least one valid segment.*found 0 of 21"):
        colv_loss(feats, text, labels, torch.zeros_like(mask))
    with pytest.raises(ValueError, match=r"all False"):
        masked_bce(logits, labels, torch.zeros_like(mask))
    with pytest.raises(ValueError, match=r"logits must be a floating-point tensor, found torch.int64"):
        masked_bce(logits.long(), labels, mask)
    with pytest.raises(ValueError, match=r"video_feats has D=6, text_feats has D=5"):
        colv_loss(feats, text[:, :5], labels, mask)
    with pytest.raises(ValueError, match=r"labels shape: .*\(3, 7, 4\).*\(3, 7, 5\)"):
        colv_loss(feats, text[:4], labels, mask)
    with pytest.raises(ValueError, match=r"temperature: expected a finite value > 0, found -0.1"):
        colv_loss(feats, text, labels, mask, -0.1)
    with pytest.raises(ValueError, match=r"variant: expected one of .*found 'clip'"):
        colv_loss(feats, text, labels, mask, variant="clip")
    with pytest.raises(ValueError, match=r"reduction: expected one of .*found 'avg'"):
        masked_bce(logits, labels, mask, reduction="avg")


# ---------------------------------------------------------------------------------------------
# LossConfig and the criterion
# ---------------------------------------------------------------------------------------------


def test_loss_config_defaults_validation_and_yaml_round_trip():
    cfg = LossConfig()
    assert cfg.classification == "bce" and cfg.colv_sets == ["entity", "motion"] and cfg.temperature == 0.07
    assert cfg.active_colv_sets() == ["entity", "motion"]
    text = yaml.safe_dump(cfg.to_dict())
    assert LossConfig.from_dict(yaml.safe_load(text)) == cfg
    with pytest.raises(ValueError, match=r"LossConfig: unknown key lambda"):
        LossConfig.from_dict({"lambda": 1.0})
    with pytest.raises(ValueError, match=r"classification must be one of .*found 'focal'"):
        LossConfig(classification="focal")
    with pytest.raises(ValueError, match=r"colv_weight must be a finite number >= 0, found -1"):
        LossConfig(colv_weight=-1)
    with pytest.raises(ValueError, match=r"colv_sets\[1\].*'object'"):
        LossConfig(colv_sets=["entity", "object"])
    with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, found 0"):
        LossConfig(temperature=0)
    with pytest.raises(ValueError, match=r"colv_variant"):
        LossConfig(colv_variant="clip")
    with pytest.raises(ValueError, match=r"action_heads must be one of 'fused', 'separate', found 'both'"):
        LossConfig(action_heads="both")
    with pytest.raises(ValueError, match=r"fine_head_weight must be a finite number >= 0, found -0.1"):
        LossConfig(fine_head_weight=-0.1)
    # no entity labels removes the CoLV term of that set too (beta(t) comes from Y_ent)
    assert LossConfig(use_entity_labels=False).active_colv_sets() == ["motion"]


B, T, C, CE, CM, DF, DT = 2, 6, 5, 4, 3, 8, 7


def model_output(seed=0, with_sub_networks=True):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, requires_grad=True)

    return SimpleNamespace(
        action_logits=r(B, T, C),
        entity_logits=r(B, T, CE) if with_sub_networks else None,
        motion_logits=r(B, T, CM) if with_sub_networks else None,
        entity_features=r(B, T, DF) if with_sub_networks else None,
        motion_features=r(B, T, DF) if with_sub_networks else None,
        action_features=r(B, T, DF),
    )


def make_batch(seed=0):
    g = torch.Generator().manual_seed(seed + 100)
    return SimpleNamespace(
        labels=(torch.rand(B, T, C, generator=g) < 0.4).float(),
        entity_labels=(torch.rand(B, T, CE, generator=g) < 0.4).float(),
        motion_labels=(torch.rand(B, T, CM, generator=g) < 0.4).float(),
        mask=torch.tensor([[True] * T, [True] * 4 + [False] * 2]),
    )


def make_bank(seed=0):
    g = torch.Generator().manual_seed(seed + 200)
    return SimpleNamespace(
        embeddings={"action": torch.randn(C, DT, generator=g), "entity": torch.randn(CE, DT, generator=g),
                    "motion": torch.randn(CM, DT, generator=g)}
    )


def criterion(**overrides):
    crit = RefDenseCriterion(LossConfig(**overrides), DF, make_bank())
    for name, projection in crit.projections.items():
        # the same weights for a set whatever the other sets are, so configurations compare
        g = torch.Generator().manual_seed({"action": 1, "entity": 2, "motion": 3}[name])
        with torch.no_grad():
            projection.weight.copy_(torch.randn(projection.weight.shape, generator=g) * 0.3)
            projection.bias.copy_(torch.randn(projection.bias.shape, generator=g) * 0.1)
    return crit


def run(crit, output=None, batch=None):
    return crit(output or model_output(), batch or make_batch())


def test_criterion_default_terms_and_total():
    crit = criterion()
    result = run(crit)
    assert isinstance(result, LossResult)
    assert list(result.terms) == crit.term_names() == [
        "bce_action", "bce_entity", "bce_motion", "colv_entity", "colv_motion"]
    assert all(not v.requires_grad and v.dtype == torch.float32 and v.dim() == 0 for v in result.terms.values())
    torch.testing.assert_close(result.total.detach(), sum(result.terms.values()))
    out, batch = model_output(), make_batch()
    torch.testing.assert_close(
        result.terms["bce_entity"], masked_bce(out.entity_logits, batch.entity_labels, batch.mask).detach()
    )
    projected = crit.projections["motion"](out.motion_features)
    expected = colv_loss(projected, make_bank().embeddings["motion"], batch.motion_labels, batch.mask, 0.07)
    torch.testing.assert_close(result.terms["colv_motion"], expected.detach())
    result.total.backward()
    assert crit.projections["entity"].weight.grad.abs().sum() > 0
    assert "text_entity" not in crit.state_dict()  # frozen embeddings come from the bank, not the checkpoint


def test_criterion_weights_scale_the_total_only():
    base = run(criterion())
    weighted = run(criterion(action_weight=2.0, entity_weight=0.5, motion_weight=0.0, colv_weight=3.0))
    for name in base.terms:
        torch.testing.assert_close(base.terms[name], weighted.terms[name])
    t = base.terms
    expected = 2 * t["bce_action"] + 0.5 * t["bce_entity"] + 3 * (t["colv_entity"] + t["colv_motion"])
    torch.testing.assert_close(weighted.total.detach(), expected)


@pytest.mark.parametrize(
    "overrides, removed, added, changed",
    [
        ({"use_entity_labels": False}, {"bce_entity", "colv_entity"}, set(), set()),
        ({"use_motion_labels": False}, {"bce_motion", "colv_motion"}, set(), set()),
        ({"colv_sets": []}, {"colv_entity", "colv_motion"}, set(), set()),
        ({"colv_sets": ["entity", "motion", "action"]}, set(), {"colv_action"}, set()),
        ({"colv_variant": "infonce"}, set(), set(), {"colv_entity", "colv_motion"}),
        ({"temperature": 0.5}, set(), set(), {"colv_entity", "colv_motion"}),
        ({"classification": "asymmetric"}, set(), set(), {"bce_action", "bce_entity", "bce_motion"}),
        ({"learnable_temperature": True}, set(), set(), set()),
    ],
)
def test_every_ablation_switch_changes_what_it_names_and_nothing_else(overrides, removed, added, changed):
    base = run(criterion()).terms
    other = run(criterion(**overrides)).terms
    assert set(other) == (set(base) - removed) | added
    for name in set(base) & set(other):
        if name in changed:
            assert not torch.allclose(base[name], other[name]), name
        else:
            torch.testing.assert_close(base[name], other[name], msg=name)


def test_learnable_temperature_is_a_trained_parameter():
    crit = criterion(learnable_temperature=True, temperature=0.1)
    assert [n for n, _ in crit.named_parameters()].count("log_temperature") == 1
    torch.testing.assert_close(crit.temperature, torch.tensor(0.1))
    run(crit).total.backward()
    assert crit.log_temperature.grad is not None and crit.log_temperature.grad != 0
    assert criterion().log_temperature is None


def test_pat_plus_colv_uses_the_action_features():
    crit = criterion(use_entity_labels=False, use_motion_labels=False, colv_sets=["action"])
    out, batch = model_output(with_sub_networks=False), make_batch()
    result = crit(out, batch)
    assert list(result.terms) == ["bce_action", "colv_action"]
    expected = colv_loss(crit.projections["action"](out.action_features), make_bank().embeddings["action"],
                         batch.labels, batch.mask)
    torch.testing.assert_close(result.terms["colv_action"], expected.detach())


def pat_recipe(**overrides) -> RefDenseCriterion:
    """PAT's published two-head recipe: ASL on each head, the fine one weighted."""
    values = dict(classification="asymmetric", action_heads="separate", use_entity_labels=False,
                  use_motion_labels=False, colv_sets=[])
    return criterion(**{**values, **overrides})


@pytest.mark.parametrize("fine_head_weight", [0.1, 1.0])  # Charades, MultiTHUMOS
def test_separate_action_heads_train_each_head_with_its_weight(fine_head_weight):
    out, batch = model_output(with_sub_networks=False), make_batch()
    out.fine_logits, out.coarse_logits = model_output(seed=1).action_logits, model_output(seed=2).action_logits
    crit = pat_recipe(fine_head_weight=fine_head_weight)
    result = crit(out, batch)
    assert list(result.terms) == crit.term_names() == ["bce_coarse", "bce_fine"]
    coarse = asymmetric_loss(out.coarse_logits, batch.labels, batch.mask)
    fine = asymmetric_loss(out.fine_logits, batch.labels, batch.mask)
    torch.testing.assert_close(result.total, coarse + fine_head_weight * fine)
    torch.testing.assert_close(result.terms["bce_fine"], fine.detach())
    # the fused logits are for evaluation only: moving them changes nothing
    out.action_logits = out.action_logits.detach() + 5.0
    torch.testing.assert_close(crit(out, batch).total, result.total)


def test_separate_action_heads_need_a_model_with_two_heads():
    with pytest.raises(ValueError, match=r"'bce_coarse'.*output.coarse_logits.*action_heads: fused"):
        run(pat_recipe(), output=model_output(with_sub_networks=False))


def test_criterion_errors_name_what_is_missing():
    with pytest.raises(ValueError, match=r"'bce_entity' needs output.entity_logits, found None"):
        run(criterion(colv_sets=[]), output=model_output(with_sub_networks=False))
    out = model_output()
    out.motion_features = None
    with pytest.raises(ValueError, match=r"'colv_motion' needs output.motion_features, found None"):
        run(criterion(), output=out)
    with pytest.raises(ValueError, match=r"text_bank.embeddings\['entity'\].*\['motion'\]"):
        RefDenseCriterion(LossConfig(), DF, SimpleNamespace(embeddings={"motion": torch.zeros(3, 4)}))
    out = model_output()
    out.entity_features = out.entity_features[..., :5]
    with pytest.raises(ValueError, match=r"entity_features: expected \(B, T, 8\), found \(2, 6, 5\)"):
        run(criterion(), output=out)
    # the same for a different number of entity classes than the text bank has
    batch = make_batch()
    batch.entity_labels = batch.entity_labels[..., :3]
    with pytest.raises(ValueError, match=r"targets shape"):
        run(criterion(), batch=batch)


def test_criterion_is_blind_to_padded_segments():
    out, batch = model_output(), make_batch()
    noisy = model_output()
    for name in vars(noisy):
        value = getattr(noisy, name).detach().clone()
        value[~batch.mask] = float("nan")
        setattr(noisy, name, value.requires_grad_(True))
    noisy_batch = make_batch()
    noisy_batch.labels[~batch.mask] = 1 - noisy_batch.labels[~batch.mask]
    a, b = run(criterion(), out, batch), run(criterion(), noisy, noisy_batch)
    for name in a.terms:
        torch.testing.assert_close(a.terms[name], b.terms[name])
    b.total.backward()
    assert all(torch.isfinite(getattr(noisy, n).grad).all() for n in vars(noisy) if getattr(noisy, n).grad is not None)


def test_criterion_under_bf16_autocast():
    crit = criterion(colv_sets=["entity", "motion", "action"], use_entity_labels=True)
    out, batch = model_output(), make_batch()
    reference = crit(out, batch)
    head = torch.nn.Linear(DF, C)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = SimpleNamespace(**{k: v.to(torch.bfloat16) for k, v in vars(out).items()})
        low.action_logits = head(out.action_features)  # bf16 from autocast
        result = crit(low, batch)
    assert torch.isfinite(result.total)
    result.total.backward()
    assert torch.isfinite(crit.projections["action"].weight.grad).all()
    # errors from bf16 inputs, largest over 30 seeds (measured): BCE 0.0025, CoLV 0.025 (the
    # similarities are divided by tau = 0.07, which magnifies the rounding of the features)
    for name, tolerance in (("bce_entity", 0.008), ("bce_motion", 0.008), ("colv_entity", 0.06), ("colv_motion", 0.06)):
        torch.testing.assert_close(result.terms[name], reference.terms[name], rtol=0, atol=tolerance, msg=name)


def test_validate_false_skips_only_the_checks_of_values():
    logits, labels, mask, feats, text = random_batch()
    bad = labels.clone()
    bad[0, 0, 0] = 2.0
    empty = torch.zeros_like(mask)
    for loss in (masked_bce, asymmetric_loss):
        loss(logits, bad, mask, validate=False)  # the values are not read back
        loss(logits, labels, empty, validate=False)
        with pytest.raises(ValueError, match=r"targets shape"):  # shapes and types still are
            loss(logits, labels[..., :4], mask, validate=False)
        with pytest.raises(ValueError, match=r"mask must be a torch.bool tensor"):
            loss(logits, labels, mask.float(), validate=False)
    colv_loss(feats, text, bad, mask, torch.tensor(-0.1), validate=False)
    with pytest.raises(ValueError, match=r"temperature: expected a finite value > 0, found -0.1"):
        colv_loss(feats, text, labels, mask, -0.1, validate=False)  # a float costs nothing to check


def test_criterion_checks_the_batch_values_once_with_its_own_name():
    batch = make_batch()
    batch.motion_labels[1, 2, 0] = 3.0
    with pytest.raises(ValueError, match=r"batch.motion_labels.*0 or 1.*3.0"):
        run(criterion(), batch=batch)
    criterion()(model_output(), batch, validate=False)  # not read back
    batch = make_batch()
    batch.mask = torch.zeros_like(batch.mask)
    with pytest.raises(ValueError, match=r"RefDenseCriterion: the mask is all False"):
        run(criterion(), batch=batch)
