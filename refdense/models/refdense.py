"""RefDense (paper section 3.2): Action-Entity and Action-Motion sub-networks fused for actions."""

from __future__ import annotations

import torch
from torch import nn

from refdense.models.blocks import Branch, MaskedConv1d, MultiScaleTrunk
from refdense.models.config import ModelConfig
from refdense.models.detector import Detector
from refdense.models.inputs import select_stream, stream_dims
from refdense.models.output import DetectionOutput
from refdense.models.registry import Architecture, register


def action_entity(cfg: ModelConfig, in_dim: int) -> Branch:
    """The Action-Entity temporal block (Eq. 5): token projection (Conv1d k3 + LN), ``cfg.entity_blocks``
    position-aware blocks, LN. ``(B, T, in_dim), mask -> F_ent (B, T, dim)``."""
    return Branch(in_dim, cfg, stride=1, blocks=cfg.entity_blocks)


def action_head(cfg: ModelConfig, in_dim: int, num_classes: int) -> MaskedConv1d:
    """The action head of Eq. 8: ``Conv1d(in_dim -> C, fusion_kernel)``, channels-last and masked."""
    return MaskedConv1d(in_dim, num_classes, kernel_size=cfg.fusion_kernel, padding=cfg.fusion_kernel // 2)


class RefDense(Detector):
    """RefDense: Action-Entity on image features, Action-Motion on video features, fused (Eq. 5-9).

    - Action-Entity: ``F_ent = action_entity(Dropout(image))`` ``(B, T, dim)`` (Eq. 5).
    - Action-Motion: PAT's multi-scale trunk on ``Dropout(video)``; each branch, fine and coarse,
      cross-attends to the full-length ``F_ent`` once after its stack of self-attention blocks
      (Eq. 6-7, ``cross_attention_placement="branch"``), or inside every block (``"block"``), or
      not at all (``cross_attention=False``, Table 7). ``F_mot = fine + coarse`` ``(B, T, dim)``,
      the mixer's fine and up-sampled coarse features summed (the paper: "fusing the fine and
      coarse motion representations", as the backbone).
    - Fusion (Eq. 8): ``action_logits = Conv1d_k([F_ent ; F_mot])`` after ``Dropout(head_dropout)``.
    - Auxiliary heads (Eq. 9): ``Linear(F_ent) -> C_ent``, ``Linear(F_mot) -> C_mot`` logits (no
      dropout). The paper adds them "during training": they run in training mode, and in eval mode
      only when asked (``auxiliary=True``). Each can be switched off (``entity_head``, ``motion_head``).

    Dropout choices (the paper does not give them): ``input_dropout`` on both input streams as PAT
    does on its input, ``head_dropout`` on the concatenation read by the action head. The returned
    features are taken before any dropout. The branches are initialised as PAT's; the heads keep
    PyTorch's default initialisation, as PAT's heads do.

    ``forward(video (B, T, Dv), image (B, T, Di), mask (B, T) bool | None, *, auxiliary=None,
    validate=True) -> DetectionOutput`` with ``action_logits``, the features and, when the auxiliary heads run
    (``auxiliary``, default: ``self.training``), ``entity_logits`` / ``motion_logits`` (None when
    their head is off or does not run); ``action_features`` is the concatenation ``(B, T, 2 dim)``.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        *,
        video_dim: int,
        image_dim: int,
        num_classes: int,
        num_entities: int,
        num_motions: int,
    ) -> None:
        super().__init__(cfg, video_dim=video_dim, image_dim=image_dim)
        self.input_dropout = nn.Dropout(cfg.input_dropout)
        self.entity = action_entity(cfg, image_dim)
        self.motion = MultiScaleTrunk(
            video_dim, cfg, cross_attention=cfg.cross_attention_placement if cfg.cross_attention else None
        )
        self.entity_head = nn.Linear(cfg.dim, num_entities) if cfg.entity_head else None
        self.motion_head = nn.Linear(cfg.dim, num_motions) if cfg.motion_head else None
        self.head_dropout = nn.Dropout(cfg.head_dropout)
        self.action_head = action_head(cfg, 2 * cfg.dim, num_classes)

    def forward(
        self,
        video: torch.Tensor | None,
        image: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        auxiliary: bool | None = None,
        validate: bool = True,
    ) -> DetectionOutput:
        mask = self.check_inputs(video, image, mask, validate=validate)
        auxiliary = self.training if auxiliary is None else auxiliary
        entity = self.entity(self.input_dropout(select_stream(video, image, "image")), mask)
        fine, coarse = self.motion(
            self.input_dropout(select_stream(video, image, "video")), mask, context=entity, context_mask=mask
        )
        motion = fine + coarse
        both = torch.cat([entity, motion], dim=-1)
        return DetectionOutput(
            action_logits=self.action_head(self.head_dropout(both), mask),
            entity_logits=self.entity_head(entity) if auxiliary and self.entity_head is not None else None,
            motion_logits=self.motion_head(motion) if auxiliary and self.motion_head is not None else None,
            entity_features=entity,
            motion_features=motion,
            action_features=both,
        )


class ActionEntityDetector(Detector):
    """The Action-Entity sub-network alone as an action detector (``arch="entity_only"``, Table 3).

    ``features = cfg.stream`` (concatenated I3D + CLIP by default) ``-> Dropout(input_dropout) ->
    action_entity -> Dropout(head_dropout) -> Conv1d_k -> C`` action logits.

    ``forward(video, image, mask) -> DetectionOutput`` with ``action_logits (B, T, C)`` and
    ``action_features`` (the Action-Entity features, ``(B, T, dim)``).
    """

    def __init__(self, cfg: ModelConfig, *, video_dim: int, image_dim: int, num_classes: int) -> None:
        reads_video, reads_image, in_dim = stream_dims(cfg.stream, video_dim, image_dim)
        super().__init__(cfg, video_dim=reads_video, image_dim=reads_image)
        self.stream = cfg.stream
        self.input_dropout = nn.Dropout(cfg.input_dropout)
        self.entity = action_entity(cfg, in_dim)
        self.head_dropout = nn.Dropout(cfg.head_dropout)
        self.action_head = action_head(cfg, cfg.dim, num_classes)

    def forward(
        self,
        video: torch.Tensor | None,
        image: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        validate: bool = True,
    ) -> DetectionOutput:
        mask = self.check_inputs(video, image, mask, validate=validate)
        features = self.entity(self.input_dropout(select_stream(video, image, self.stream)), mask)
        return DetectionOutput(
            action_logits=self.action_head(self.head_dropout(features), mask), action_features=features
        )


def build_entity_only(
    cfg: ModelConfig, *, video_dim: int, image_dim: int, num_classes: int, **_: int
) -> ActionEntityDetector:
    """:class:`ActionEntityDetector` for ``build_model`` (no entity or motion outputs)."""
    return ActionEntityDetector(cfg, video_dim=video_dim, image_dim=image_dim, num_classes=num_classes)


register(
    Architecture(
        "refdense",
        RefDense,  # its constructor takes build_model's arguments as they are
        None,
        lambda cfg: {
            "action": 2 * cfg.dim,
            "entity": cfg.dim,
            "motion": cfg.dim,
        },  # [F_ent ; F_mot], F_ent, F_mot
        auxiliary=("entity", "motion"),
        summary="the paper's network: Action-Entity on image, Action-Motion on video, fused (Eq. 5-9)",
    )
)
register(
    Architecture(
        "entity_only",
        build_entity_only,
        "concat",
        lambda cfg: {"action": cfg.dim},  # the Action-Entity features
        summary="Table 3: the Action-Entity sub-network alone, on I3D + CLIP concatenated by default",
    )
)
