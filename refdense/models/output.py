"""What every model of the package returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DetectionOutput:
    """Outputs of a detector for a batch of ``B`` sequences of ``T`` segments (logits, not probabilities).

    Attributes:
        action_logits: ``(B, T, C)`` action logits.
        entity_logits: ``(B, T, C_ent)`` Action-Entity auxiliary logits (Eq. 9), or None (no head,
            or a RefDense in eval mode not asked for them).
        motion_logits: ``(B, T, C_mot)`` Action-Motion auxiliary logits (Eq. 9), or None (as above).
        fine_logits, coarse_logits: ``(B, T, C)`` PAT's two heads apart (``action_logits`` is their
            mix), for PAT's published two-head loss; None for the other architectures.
        entity_features: ``(B, T, D)`` F_ent, the Action-Entity features (Eq. 5), or None.
        motion_features: ``(B, T, D)`` F_mot, the fused Action-Motion features, or None.
        action_features: ``(B, T, D*)`` the features the action classes are predicted from:
            PAT's fine plus coarse features (D, the sum its two heads read apart), RefDense's
            concatenation ``[F_ent ; F_mot]`` (2 D), the Action-Entity features of ``entity_only``
            (D). Used by CoLV on the action classes (PAT + CoLV, Table 6).
    """

    action_logits: torch.Tensor
    entity_logits: torch.Tensor | None = None
    motion_logits: torch.Tensor | None = None
    fine_logits: torch.Tensor | None = None
    coarse_logits: torch.Tensor | None = None
    entity_features: torch.Tensor | None = None
    motion_features: torch.Tensor | None = None
    action_features: torch.Tensor | None = None
