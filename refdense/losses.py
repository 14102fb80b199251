"""Losses of RefDense (paper Eq. 4 and 9-12) and of the PAT baseline.

Every loss takes a boolean ``mask`` (B, T), True on valid segments, and the padded segments never
count: their logits or features are replaced by zeros before anything is computed, so that even a
NaN in a padded position changes neither the value nor the gradient of a valid one.

Every public loss takes ``validate=True``: the checks of the inputs' *values* (labels in {0, 1}, a
valid segment in the mask, a positive temperature) read them back from the device, a host
synchronisation; ``validate=False`` skips them (types and shapes are always checked, that costs
nothing). :class:`RefDenseCriterion` validates its batch once per call, not once per term, and the
training loop, whose batches are valid by construction, not at all.

- :func:`masked_bce` -- Eq. 4: ``BCE(Y, P) = -1/T sum_t sum_c [y log p + (1 - y) log(1 - p)]``,
  computed from logits. The reduction is the *sum over classes* and the *mean over the valid
  segments of the whole batch* (Eq. 4 for one video; a batch pools its valid segments).
- :func:`asymmetric_loss` -- the asymmetric loss of Ridnik et al. (ICCV 2021) with which the
  published PAT code trains, with its settings and the same masking and reduction.
- :func:`colv_loss` -- the contrastive co-occurrence language-video loss, Eq. 11-12 as printed
  (negatives-only denominator; ``docs/METHOD.md`` spells out the edge cases), and the InfoNCE variant.
- :class:`LossConfig` and :class:`RefDenseCriterion` -- the full objective
  ``L = w_a BCE(Y, P) + sum_phi w_phi BCE(Y_phi, P_phi) + lambda sum_phi CoLV_phi`` (Eq. 4, 9, 10),
  with one switch per ablation of the paper, and PAT's published two-head recipe.

This module imports torch only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refdense.schema import build, check_fields, require

REDUCTIONS = ("mean", "sum", "none")
ColvVariant = Literal["refdense", "infonce", "supcon"]
COLV_VARIANTS = get_args(ColvVariant)
ClassificationLoss = Literal["bce", "asymmetric"]
CLASSIFICATION_LOSSES = get_args(ClassificationLoss)
ConceptSet = Literal["action", "entity", "motion"]
CONCEPT_SETS = get_args(ConceptSet)
ActionHeads = Literal["fused", "separate"]
ACTION_HEADS = get_args(ActionHeads)

# Settings of the asymmetric loss the published PAT code trains with (utils.AsymmetricLoss: its
# gamma_neg=4 line is commented out in favour of 3).
ASL_GAMMA_NEG = 3.0
ASL_GAMMA_POS = 1.0
ASL_CLIP = 0.05


# ----------------------------------------------------------------------------------------------
# Input checks shared by the losses
# ----------------------------------------------------------------------------------------------


def _check_mask(mask: Tensor, batch_shape: tuple[int, ...] | None, where: str, values: bool) -> None:
    """Type, shape (unless ``batch_shape`` is None) and, with ``values``, at least one valid segment."""
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        found = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"{where}: mask must be a torch.bool tensor, found {found}")
    if batch_shape is not None and tuple(mask.shape) != tuple(batch_shape):
        raise ValueError(
            f"{where}: mask shape: expected (B, T) = {tuple(batch_shape)}, found {tuple(mask.shape)}"
        )
    if values and not bool(mask.any()):
        raise ValueError(
            f"{where}: the mask is all False: expected at least one valid segment in the batch, found 0 "
            f"of {mask.numel()}"
        )


def _check_binary(labels: Tensor, name: str, where: str) -> None:
    if labels.dtype == torch.bool:
        return
    bad = (labels != 0) & (labels != 1)
    if bool(bad.any()):
        value = labels[bad][0].item()
        raise ValueError(
            f"{where}: {name} must be 0 or 1, found {value!r} ({int(bad.sum())} entries outside {{0, 1}})"
        )


def _check_logits_and_targets(
    logits: Tensor, targets: Tensor, mask: Tensor, where: str, values: bool
) -> None:
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        found: object = logits.dtype if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"{where}: logits must be a floating-point tensor, found {found}")
    if logits.dim() != 3:
        raise ValueError(f"{where}: logits shape: expected (B, T, C), found {tuple(logits.shape)}")
    if not isinstance(targets, Tensor) or tuple(targets.shape) != tuple(logits.shape):
        found = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"{where}: targets shape: expected {tuple(logits.shape)} (as logits), found {found}")
    if values:
        _check_binary(targets, "targets", where)
    _check_mask(mask, tuple(logits.shape[:2]), where, values)


def _reduce(per_entry: Tensor, mask: Tensor, reduction: str, where: str) -> Tensor:
    """Reduce a (B, T, C) loss whose padded segments are already zero."""
    if reduction == "none":
        return per_entry
    total = per_entry.sum()
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / mask.sum()
    raise ValueError(f"{where}: reduction: expected one of {REDUCTIONS}, found {reduction!r}")


def _zero_padded(values: Tensor, mask: Tensor) -> Tensor:
    """``values`` (B, T, ...) with padded segments set to 0 (and no gradient flowing to them)."""
    keep = mask.reshape(mask.shape + (1,) * (values.dim() - 2))
    return torch.where(keep, values, torch.zeros((), dtype=values.dtype, device=values.device))


# ----------------------------------------------------------------------------------------------
# Classification losses (Eq. 4, Eq. 9)
# ----------------------------------------------------------------------------------------------


def masked_bce(
    logits: Tensor,
    targets: Tensor,
    mask: Tensor,
    *,
    pos_weight: float | Tensor | None = None,
    reduction: str = "mean",
    validate: bool = True,
) -> Tensor:
    """Binary cross-entropy of Eq. 4 from logits, over the valid segments only.

    Args:
        logits: (B, T, C) raw scores (any floating dtype; computed in float32 or float64).
        targets: (B, T, C) labels in {0, 1} (float, int or bool).
        mask: (B, T) bool, True on valid segments.
        pos_weight: optional weight of the positive term, a float or a (C,) tensor
            (``-[w y log p + (1 - y) log(1 - p)]``).
        reduction: ``"mean"`` (default, Eq. 4): sum over classes, mean over the valid segments
            of the batch; ``"sum"``: sum over valid segments and classes; ``"none"``: the (B, T, C)
            per-entry losses, zero on padded segments.
        validate: check the values of ``targets`` and ``mask`` (module docstring).

    Returns:
        A scalar tensor, or (B, T, C) for ``reduction="none"``.
    """
    where = "masked_bce"
    _check_logits_and_targets(logits, targets, mask, where, validate)
    dtype = torch.promote_types(logits.dtype, torch.float32)
    logits = _zero_padded(logits.to(dtype), mask)
    targets = targets.to(dtype)
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, dtype=dtype, device=logits.device)
    per_entry = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    return _reduce(_zero_padded(per_entry, mask), mask, reduction, where)


def asymmetric_loss(
    logits: Tensor,
    targets: Tensor,
    mask: Tensor,
    *,
    gamma_neg: float = ASL_GAMMA_NEG,
    gamma_pos: float = ASL_GAMMA_POS,
    clip: float = ASL_CLIP,
    reduction: str = "mean",
    validate: bool = True,
) -> Tensor:
    """Asymmetric loss (Ridnik et al., ICCV 2021), as the PAT reference trains, over valid segments.

    With ``p = sigmoid(logit)`` and the shifted probability ``p_m = max(p - clip, 0)``:
    ``loss = -y (1 - p)^gamma_pos log(p) - (1 - y) p_m^gamma_neg log(1 - p_m)``.
    Defaults: ``gamma_neg=3``, ``gamma_pos=1``, ``clip=0.05``, the published PAT code's values. As
    there, the focusing weights ``(1 - p)^gamma`` are constants for back-propagation (detached).
    The logs are computed with ``logsigmoid`` (the reference clamps p at 1e-8 instead), so very
    confident mistakes keep a finite, correct loss.

    Args and returns as :func:`masked_bce` (same masking and reductions).
    """
    where = "asymmetric_loss"
    _check_logits_and_targets(logits, targets, mask, where, validate)
    if gamma_neg < 0 or gamma_pos < 0 or not 0 <= clip < 1:
        raise ValueError(
            f"{where}: expected gamma_neg >= 0, gamma_pos >= 0 and 0 <= clip < 1, "
            f"found gamma_neg={gamma_neg}, gamma_pos={gamma_pos}, clip={clip}"
        )
    dtype = torch.promote_types(logits.dtype, torch.float32)
    logits = _zero_padded(logits.to(dtype), mask)
    targets = targets.to(dtype)
    prob = torch.sigmoid(logits)
    log_pos = F.logsigmoid(logits)
    if clip > 0:
        one_minus_shifted = (torch.sigmoid(-logits) + clip).clamp(max=1.0)  # 1 - p_m >= clip > 0
        log_neg = torch.log(one_minus_shifted)
    else:
        one_minus_shifted = torch.sigmoid(-logits)
        log_neg = F.logsigmoid(-logits)
    with torch.no_grad():
        weight_pos = (1 - prob).pow(gamma_pos)
        weight_neg = (1 - one_minus_shifted).pow(gamma_neg)
    per_entry = -(targets * weight_pos * log_pos + (1 - targets) * weight_neg * log_neg)
    return _reduce(_zero_padded(per_entry, mask), mask, reduction, where)


# ----------------------------------------------------------------------------------------------
# CoLV (Eq. 10-12)
# ----------------------------------------------------------------------------------------------


def _check_temperature(temperature: float | Tensor, where: str, values: bool) -> None:
    if isinstance(temperature, Tensor):
        if temperature.numel() != 1:
            raise ValueError(
                f"{where}: temperature: expected one value, found shape {tuple(temperature.shape)}"
            )
        if not values:
            return
        value = float(temperature.detach())
    else:
        value = float(temperature)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{where}: temperature: expected a finite value > 0, found {value}")


def colv_loss_from_similarities(
    similarities: Tensor,
    labels: Tensor,
    mask: Tensor,
    temperature: float | Tensor = 0.07,
    *,
    variant: str = "refdense",
    reduction: str = "mean",
    validate: bool = True,
) -> Tensor:
    """CoLV (Eq. 11) from cosine similarities ``s[b, t, c] = f[b, t] . u[c]`` of unit vectors.

    :func:`colv_loss` normalises and multiplies, then calls this; it is public so that the
    notebooks can study the loss as a function of the similarities directly.

    For a valid segment with positives ``beta = {c : y[c] = 1}`` (Eq. 12) and at least one negative:

    - ``variant="refdense"`` (Eq. 11 as printed, negatives only in the denominator):
      ``l = 1/|beta| sum_{e in beta} [ logsumexp_{c not in beta}(s_c / tau) - s_e / tau ]``;
    - ``variant="infonce"`` (the positive is added to the denominator):
      ``l = 1/|beta| sum_{e in beta} [ log(exp(s_e / tau) + sum_{c not in beta} exp(s_c / tau)) - s_e / tau ]``;
    - ``variant="supcon"`` (supervised-contrastive, Khosla et al. 2020, with the segment as the anchor
      and the prompts as the candidates: one denominator over *all* classes, so the positives
      compete with each other): ``l = 1/|beta| sum_{e in beta} [ logsumexp_c(s_c / tau) - s_e / tau ]``.

    A segment with no positive or no negative contributes 0 (with a zero, finite gradient).
    Computed in float32 (float64 stays float64), autocast disabled inside.

    Args:
        similarities: (B, T, C) cosine similarities.
        labels: (B, T, C) in {0, 1}.
        mask: (B, T) bool, True on valid segments.
        temperature: tau > 0, a float or a one-element tensor (may require grad).
        variant: ``"refdense"``, ``"infonce"`` or ``"supcon"``.
        reduction: ``"mean"``: sum of ``l`` over valid segments / number of valid segments (segments
            with ``l = 0`` count); ``"sum"``; ``"none"``: the (B, T) per-segment losses ``l``.
        validate: check the values of ``labels``, ``mask`` and a tensor ``temperature`` (module docstring).

    Returns:
        A scalar tensor, or (B, T) for ``reduction="none"``.
    """
    where = "colv_loss"
    if variant not in COLV_VARIANTS:
        raise ValueError(f"{where}: variant: expected one of {COLV_VARIANTS}, found {variant!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{where}: reduction: expected one of {REDUCTIONS}, found {reduction!r}")
    if not isinstance(similarities, Tensor) or similarities.dim() != 3:
        raise ValueError(
            f"{where}: similarities shape: expected (B, T, C), found {getattr(similarities, 'shape', None)}"
        )
    if not isinstance(labels, Tensor) or tuple(labels.shape) != tuple(similarities.shape):
        found = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(
            f"{where}: labels shape: expected (B, T, C) = {tuple(similarities.shape)}, found {found}"
        )
    if validate:
        _check_binary(labels, "labels", where)
    _check_mask(mask, tuple(similarities.shape[:2]), where, validate)
    _check_temperature(temperature, where, validate)

    dtype = torch.promote_types(similarities.dtype, torch.float32)
    with torch.autocast(device_type=similarities.device.type, enabled=False):
        tau = temperature.to(dtype).reshape(()) if isinstance(temperature, Tensor) else float(temperature)
        logits = _zero_padded(similarities.to(dtype), mask) / tau  # (B, T, C)
        valid = mask.unsqueeze(-1)
        positive = labels.bool() & valid
        negative = ~labels.bool() & valid
        num_positive = positive.sum(-1)  # (B, T)
        has_negative = negative.any(-1)
        active = (num_positive > 0) & has_negative  # (B, T)

        # log of the sum over negatives; rows without negatives get a finite placeholder (0) so
        # that neither the value nor the gradient of logsumexp is NaN there (their l is zeroed).
        negative_logits = logits.masked_fill(~negative, float("-inf"))
        negative_logits = torch.where(has_negative.unsqueeze(-1), negative_logits, torch.zeros_like(logits))
        log_negatives = torch.logsumexp(negative_logits, dim=-1, keepdim=True)  # (B, T, 1)
        if variant == "refdense":
            log_denominator = log_negatives.expand_as(logits)
        elif variant == "infonce":
            log_denominator = torch.logaddexp(logits, log_negatives)
        else:  # supcon: every class of the segment in one denominator
            log_denominator = torch.logsumexp(logits, dim=-1, keepdim=True).expand_as(logits)
        per_positive = torch.where(positive, log_denominator - logits, torch.zeros_like(logits))
        per_segment = per_positive.sum(-1) / num_positive.clamp(min=1)
        per_segment = torch.where(active, per_segment, torch.zeros_like(per_segment))  # (B, T)

    if reduction == "none":
        return per_segment
    total = per_segment.sum()
    return total if reduction == "sum" else total / mask.sum()


def colv_loss(
    video_feats: Tensor,
    text_feats: Tensor,
    labels: Tensor,
    mask: Tensor,
    temperature: float | Tensor = 0.07,
    *,
    variant: str = "refdense",
    reduction: str = "mean",
    validate: bool = True,
) -> Tensor:
    """Contrastive co-occurrence language-video loss of one concept set (Eq. 11-12; ``docs/METHOD.md``).

    ``f`` and ``u`` are L2-normalised inside, ``s[b, t, c] = f[b, t] . u[c]``, and the loss is
    :func:`colv_loss_from_similarities` of ``s`` (see there for the formula of each variant and
    the edge cases). Default reduction: ``CoLV = sum of l over valid segments / number of valid
    segments``.

    Args:
        video_feats: (B, T, D) segment features already projected into the text space.
        text_feats: (C, D) frozen text embeddings of the prompts "a photo of {name}".
        labels: (B, T, C) in {0, 1}.
        mask: (B, T) bool, True on valid segments.
        temperature: tau > 0 (default 0.07), a float or a one-element tensor.
        variant: ``"refdense"`` (default, negatives-only denominator), ``"infonce"`` or ``"supcon"``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` ((B, T) per-segment losses).
        validate: check the values of ``labels``, ``mask`` and a tensor ``temperature`` (module docstring).
    """
    where = "colv_loss"
    if not isinstance(video_feats, Tensor) or not video_feats.is_floating_point() or video_feats.dim() != 3:
        found: object = (
            (tuple(video_feats.shape), video_feats.dtype)
            if isinstance(video_feats, Tensor)
            else type(video_feats).__name__
        )
        raise ValueError(f"{where}: video_feats: expected a floating (B, T, D) tensor, found {found}")
    if not isinstance(text_feats, Tensor) or not text_feats.is_floating_point() or text_feats.dim() != 2:
        found = (
            (tuple(text_feats.shape), text_feats.dtype)
            if isinstance(text_feats, Tensor)
            else type(text_feats).__name__
        )
        raise ValueError(f"{where}: text_feats: expected a floating (C, D) tensor, found {found}")
    if text_feats.shape[1] != video_feats.shape[2]:
        raise ValueError(
            f"{where}: feature dimension: video_feats has D={video_feats.shape[2]}, "
            f"text_feats has D={text_feats.shape[1]}; expected them equal (project the video features first)"
        )
    expected = (*video_feats.shape[:2], text_feats.shape[0])
    if not isinstance(labels, Tensor) or tuple(labels.shape) != expected:
        found = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{where}: labels shape: expected (B, T, C) = {expected}, found {found}")
    _check_mask(mask, tuple(video_feats.shape[:2]), where, validate)

    dtype = torch.promote_types(torch.promote_types(video_feats.dtype, text_feats.dtype), torch.float32)
    with torch.autocast(device_type=video_feats.device.type, enabled=False):
        frames = F.normalize(_zero_padded(video_feats.to(dtype), mask), dim=-1)
        texts = F.normalize(text_feats.to(dtype), dim=-1)
        similarities = frames @ texts.T  # (B, T, C)
    return colv_loss_from_similarities(
        similarities, labels, mask, temperature, variant=variant, reduction=reduction, validate=validate
    )


# ----------------------------------------------------------------------------------------------
# The full objective
# ----------------------------------------------------------------------------------------------


@dataclass
class LossConfig:
    """What the RefDense objective contains; plain types only (it round-trips through YAML).

    ``L = action_weight * C(Y, P) + entity_weight * C(Y_ent, P_ent) + motion_weight * C(Y_mot, P_mot)
    + colv_weight * sum_{phi in colv_sets} CoLV_phi``, where ``C`` is :func:`masked_bce`
    (``classification="bce"``, the paper's Eq. 4) or :func:`asymmetric_loss` (``"asymmetric"``, as
    PAT trains). The loss terms keep the names ``bce_*`` whichever ``C`` is chosen.

    The action term reads the fused action logits (``action_heads="fused"``, RefDense's Eq. 4), or,
    for PAT, its two heads apart (``"separate"``, the published recipe):
    ``C(Y, P) = C(Y, P_coarse) + fine_head_weight * C(Y, P_fine)``, logged as ``bce_coarse`` and
    ``bce_fine``. PAT's published code trains with ``classification="asymmetric"``,
    ``action_heads="separate"`` and ``fine_head_weight`` 0.1 (Charades) or 1.0 (MultiTHUMOS).

    The ablations of the paper, one switch each:

    - no entity labels / no motion labels (Table 4): ``use_entity_labels: false`` /
      ``use_motion_labels: false``. This removes ``bce_entity`` *and* ``colv_entity`` (CoLV on a
      set needs that set's labels: ``beta(t)`` of Eq. 12 is read from ``Y_phi``).
    - no CoLV (Table 5): ``colv_sets: []``.
    - PAT + CoLV (Table 6): ``colv_sets: [action]`` with ``use_entity_labels: false`` and
      ``use_motion_labels: false`` (PAT has no entity or motion head): the features read by the
      action head are aligned with the prompts of the action classes.
    - a model without one sub-network (Table 3) switches off the labels of the missing set.

    A weight of 0 keeps a term computed and logged but not trained on (to monitor it).

    Fields:
        classification: ``"bce"`` or ``"asymmetric"``.
        action_heads: ``"fused"`` or ``"separate"`` (needs a model with ``fine_logits`` and
            ``coarse_logits``: PAT, ``motion_only``).
        fine_head_weight: weight of the fine head's term with ``action_heads="separate"`` (>= 0).
        action_weight, entity_weight, motion_weight: weights of the classification terms (>= 0).
        colv_weight: lambda of the paper (>= 0).
        colv_sets: concept sets aligned with their prompts, a subset of ``action, entity, motion``.
        colv_variant: ``"refdense"`` (negatives-only denominator), ``"infonce"`` or ``"supcon"``.
        temperature: tau of CoLV (> 0), the initial value when learnable.
        learnable_temperature: learn ``log tau`` (initialised at ``log temperature``).
        use_entity_labels, use_motion_labels: train with the decomposed labels of that set.
        asl_gamma_neg, asl_gamma_pos, asl_clip: parameters of the asymmetric loss.
    Each CoLV set has its own learnable ``Linear(feature_dim -> text_dim)`` projection (with bias)
    in :class:`RefDenseCriterion`.
    """

    classification: ClassificationLoss = "bce"
    action_heads: ActionHeads = "fused"
    fine_head_weight: float = 0.1
    action_weight: float = 1.0
    entity_weight: float = 1.0
    motion_weight: float = 1.0
    colv_weight: float = 1.0
    colv_sets: list[ConceptSet] = field(default_factory=lambda: ["entity", "motion"])
    colv_variant: ColvVariant = "refdense"
    temperature: float = 0.07
    learnable_temperature: bool = False
    use_entity_labels: bool = True
    use_motion_labels: bool = True
    asl_gamma_neg: float = ASL_GAMMA_NEG
    asl_gamma_pos: float = ASL_GAMMA_POS
    asl_clip: float = ASL_CLIP

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("action_weight", "entity_weight", "motion_weight", "colv_weight", "fine_head_weight"):
            require(self, getattr(self, name) >= 0, name, "a finite number >= 0")
        require(self, len(set(self.colv_sets)) == len(self.colv_sets), "colv_sets", "distinct names")
        require(self, self.temperature > 0, "temperature", "a finite number > 0")
        require(self, self.asl_gamma_neg >= 0, "asl_gamma_neg", "a finite number >= 0")
        require(self, self.asl_gamma_pos >= 0, "asl_gamma_pos", "a finite number >= 0")
        require(self, 0 <= self.asl_clip < 1, "asl_clip", "a number in [0, 1)")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LossConfig:
        """Build from a mapping (e.g. the ``loss:`` section of a YAML file); unknown keys and bad
        values raise :class:`refdense.schema.ConfigError` naming them."""
        return build(cls, values, source="LossConfig")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (YAML/JSON-serialisable)."""
        return dataclasses.asdict(self)

    def classification_sets(self) -> list[str]:
        """Concept sets with a classification term, in the order action, entity, motion."""
        use = {"action": True, "entity": self.use_entity_labels, "motion": self.use_motion_labels}
        return [s for s in CONCEPT_SETS if use[s]]

    def active_colv_sets(self) -> list[str]:
        """Concept sets with a CoLV term: in ``colv_sets`` and with their labels in use."""
        on = self.classification_sets()
        return [s for s in CONCEPT_SETS if s in self.colv_sets and s in on]


@dataclass
class LossResult:
    """What :class:`RefDenseCriterion` returns.

    Attributes:
        total: scalar tensor to back-propagate (weighted sum of the terms).
        terms: unweighted value of each term that is on, as detached 0-d float32 tensors (no device
            synchronisation per step; call ``float()`` when logging), keyed ``bce_action`` (or
            ``bce_coarse`` and ``bce_fine``), ``bce_entity``, ``bce_motion``, ``colv_action``,
            ``colv_entity``, ``colv_motion``.
    """

    total: Tensor
    terms: dict[str, Tensor]


# Where each concept set finds its tensors in a model output and in a batch.
_LOGITS = {"action": "action_logits", "entity": "entity_logits", "motion": "motion_logits"}
_FEATURES = {"action": "action_features", "entity": "entity_features", "motion": "motion_features"}
_LABELS = {"action": "labels", "entity": "entity_labels", "motion": "motion_labels"}


class RefDenseCriterion(nn.Module):
    """The RefDense objective (Eq. 4, 9, 10-12) with its learnable parts.

    It owns, for each concept set with CoLV, a projection ``Linear(feature_dim -> text_dim)`` of the
    segment features into the text space and the frozen text embeddings (buffers, not saved in
    ``state_dict``: they come from the dataset's text bank), and, with
    ``cfg.learnable_temperature``, the parameter ``log_temperature``. Put its parameters in the
    optimiser together with the model's.

    Args:
        cfg: the :class:`LossConfig`.
        feature_dim: D* of the features that CoLV reads, one int for every set or a mapping
            ``{set: dim}`` (e.g. ``{"action": 1024}`` when the action head reads a concatenation).
        text_bank: an object with ``embeddings``, a mapping ``{"action"|"entity"|"motion": (C_set, D_text)
            tensor}`` (``refdense.text.TextBank``); only the sets with CoLV are read. May be None
            when no CoLV term is on.

    ``forward(output, batch)`` reads ``output.action_logits`` (B, T, C), ``output.entity_logits``,
    ``output.motion_logits``, ``output.{action,entity,motion}_features`` (B, T, D*) and
    ``batch.labels``, ``batch.entity_labels``, ``batch.motion_labels`` (B, T, C_set) and
    ``batch.mask`` (B, T); it returns a :class:`LossResult`.
    """

    def __init__(self, cfg: LossConfig, feature_dim: int | Mapping[str, int], text_bank: Any = None) -> None:
        super().__init__()
        if not isinstance(cfg, LossConfig):
            raise ValueError(f"RefDenseCriterion: cfg: expected a LossConfig, found {type(cfg).__name__}")
        self.cfg = cfg
        self.colv_sets = cfg.active_colv_sets()
        self.projections = nn.ModuleDict()
        for name in self.colv_sets:
            dim = feature_dim.get(name) if isinstance(feature_dim, Mapping) else feature_dim
            if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
                raise ValueError(
                    f"RefDenseCriterion: feature_dim of the {name!r} features: expected an int > 0, found {dim!r}"
                )
            embeddings = getattr(text_bank, "embeddings", None)
            if embeddings is None or name not in embeddings:
                available = sorted(embeddings) if isinstance(embeddings, Mapping) else None
                raise ValueError(
                    f"RefDenseCriterion: CoLV on {name!r} needs text_bank.embeddings[{name!r}]; "
                    f"found text bank sets {available}"
                )
            text = torch.as_tensor(embeddings[name]).detach().float()
            if text.dim() != 2 or text.shape[0] == 0:
                raise ValueError(
                    f"RefDenseCriterion: text embeddings of {name!r}: expected (C, D) with C > 0, found {tuple(text.shape)}"
                )
            self.register_buffer(f"text_{name}", text, persistent=False)
            self.projections[name] = nn.Linear(dim, text.shape[1])
        self.log_temperature: nn.Parameter | None
        if cfg.learnable_temperature:
            self.log_temperature = nn.Parameter(torch.tensor(math.log(cfg.temperature)))
        else:
            self.log_temperature = None

    @property
    def temperature(self) -> Tensor | float:
        """The CoLV temperature tau (a tensor when learnable)."""
        return self.log_temperature.exp() if self.log_temperature is not None else self.cfg.temperature

    def classification_terms(self) -> list[tuple[str, str, str, float]]:
        """``(term, logits attribute of the output, labels attribute of the batch, weight)`` of each
        classification term, in the order action (or coarse, fine), entity, motion."""
        cfg = self.cfg
        weights = {"action": cfg.action_weight, "entity": cfg.entity_weight, "motion": cfg.motion_weight}
        terms = []
        for name in cfg.classification_sets():
            if name == "action" and cfg.action_heads == "separate":
                terms.append(("bce_coarse", "coarse_logits", "labels", cfg.action_weight))
                terms.append(("bce_fine", "fine_logits", "labels", cfg.action_weight * cfg.fine_head_weight))
            else:
                terms.append((f"bce_{name}", _LOGITS[name], _LABELS[name], weights[name]))
        return terms

    def term_names(self) -> list[str]:
        """Names of the terms this criterion computes, in the order of :class:`LossResult.terms`."""
        return [term for term, *_ in self.classification_terms()] + [f"colv_{s}" for s in self.colv_sets]

    def _get(self, obj: Any, attribute: str, term: str, owner: str) -> Tensor:
        value = getattr(obj, attribute, None)
        if value is None:
            raise ValueError(
                f"RefDenseCriterion: the loss term {term!r} needs {owner}.{attribute}, found None "
                f"(switch the term off in the LossConfig, e.g. use_entity_labels / use_motion_labels / colv_sets / "
                f"action_heads: fused)"
            )
        return value

    def _check_batch_values(self, batch: Any, mask: Tensor) -> None:
        """The value checks of the batch (mask, labels of every set in use), once for all the terms."""
        where = "RefDenseCriterion"
        _check_mask(mask, None, where, values=True)
        for name in self.cfg.classification_sets():
            labels = self._get(batch, _LABELS[name], f"bce_{name}", "batch")
            if isinstance(labels, Tensor):
                _check_binary(labels, f"batch.{_LABELS[name]}", where)

    def forward(self, output: Any, batch: Any, *, validate: bool = True) -> LossResult:
        """The loss of ``output`` on ``batch``; ``validate`` checks the batch's values first (once)."""
        cfg = self.cfg
        mask = self._get(batch, "mask", "every term", "batch")
        if validate:
            self._check_batch_values(batch, mask)
        terms: dict[str, Tensor] = {}
        total: Tensor | None = None
        for term, logits_name, labels_name, weight in self.classification_terms():
            logits = self._get(output, logits_name, term, "output")
            labels = self._get(batch, labels_name, term, "batch")
            if cfg.classification == "bce":
                value = masked_bce(logits, labels, mask, validate=False)
            else:
                value = asymmetric_loss(
                    logits,
                    labels,
                    mask,
                    gamma_neg=cfg.asl_gamma_neg,
                    gamma_pos=cfg.asl_gamma_pos,
                    clip=cfg.asl_clip,
                    validate=False,
                )
            terms[term] = value
            total = weight * value if total is None else total + weight * value
        assert total is not None, "the action classification term is always on"
        for name in self.colv_sets:
            term = f"colv_{name}"
            features = self._get(output, _FEATURES[name], term, "output")
            labels = self._get(batch, _LABELS[name], term, "batch")
            projection = self.projections[name]
            if features.dim() != 3 or features.shape[-1] != projection.in_features:
                raise ValueError(
                    f"RefDenseCriterion: output.{_FEATURES[name]}: expected (B, T, {projection.in_features}), "
                    f"found {tuple(features.shape)}"
                )
            value = colv_loss(
                projection(features),
                getattr(self, f"text_{name}"),
                labels,
                mask,
                self.temperature,
                variant=cfg.colv_variant,
                validate=False,
            )
            terms[term] = value
            total = total + cfg.colv_weight * value
        return LossResult(total=total, terms={k: v.detach().float() for k, v in terms.items()})
