"""PAT: the position-aware multi-scale transformer (Sardari et al., ICCVW 2023), as published.

The published code (github faeghehsardari/PAT-ICCVW) is reproduced to 1e-9 in float64 by
``tests/test_models_golden.py``; ``docs/METHOD.md`` lists what it computes."""

from __future__ import annotations

import torch
from torch import nn

from refdense.models.blocks import MultiScaleTrunk
from refdense.models.config import ModelConfig
from refdense.models.detector import Detector
from refdense.models.inputs import select_stream, stream_dims
from refdense.models.output import DetectionOutput
from refdense.models.registry import Architecture, register


class PAT(Detector):
    """PAT on one feature stream (``cfg.stream``: video, image or their concatenation).

    ``features -> Dropout(input_dropout) -> MultiScaleTrunk -> (fine, coarse)``;
    ``fine_logits = Linear(fine)``, ``coarse_logits = Linear(Dropout(Linear(coarse)))`` and
    ``logits = fine_weight * fine_logits + (1 - fine_weight) * coarse_logits``. The fine head reads
    the fine branch after its mixer convolution, the coarse head the sum of the up-sampled coarse
    branches only, as in the published code (its 1x1 convolutions are ``nn.Linear`` here, with the
    same parameters and PyTorch's default initialisation, as there).

    Also the ``motion_only`` baseline of Table 3 (Action-Motion alone has no entity features to
    cross-attend to, which leaves PAT).

    ``forward(video (B, T, Dv), image (B, T, Di), mask (B, T) bool | None) -> DetectionOutput`` with
    ``action_logits``, ``fine_logits``, ``coarse_logits`` ``(B, T, C)`` and ``action_features =
    fine + coarse`` ``(B, T, dim)``; the stream PAT does not read may be None.
    """

    def __init__(self, cfg: ModelConfig, *, video_dim: int, image_dim: int, num_classes: int) -> None:
        reads_video, reads_image, in_dim = stream_dims(cfg.stream, video_dim, image_dim)
        super().__init__(cfg, video_dim=reads_video, image_dim=reads_image)
        self.stream = cfg.stream
        self.fine_weight = cfg.fine_weight
        self.input_dropout = nn.Dropout(cfg.input_dropout)
        self.trunk = MultiScaleTrunk(in_dim, cfg)
        self.fine_head = nn.Linear(cfg.dim, num_classes)
        self.coarse_head = nn.Sequential(
            nn.Linear(cfg.dim, cfg.dim), nn.Dropout(cfg.head_dropout), nn.Linear(cfg.dim, num_classes)
        )

    def forward(
        self,
        video: torch.Tensor | None,
        image: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        validate: bool = True,
    ) -> DetectionOutput:
        mask = self.check_inputs(video, image, mask, validate=validate)
        x = self.input_dropout(select_stream(video, image, self.stream))
        fine, coarse = self.trunk(x, mask)
        fine_logits, coarse_logits = self.fine_head(fine), self.coarse_head(coarse)
        return DetectionOutput(
            action_logits=self.fine_weight * fine_logits + (1 - self.fine_weight) * coarse_logits,
            fine_logits=fine_logits,
            coarse_logits=coarse_logits,
            action_features=fine + coarse,
        )


def build_pat(cfg: ModelConfig, *, video_dim: int, image_dim: int, num_classes: int, **_: int) -> PAT:
    """:class:`PAT` for ``build_model`` (it has no entity or motion outputs: their sizes are not read)."""
    return PAT(cfg, video_dim=video_dim, image_dim=image_dim, num_classes=num_classes)


def pat_colv_widths(cfg: ModelConfig) -> dict[str, int]:
    """PAT's CoLV features: ``action_features`` (fine + coarse), ``dim`` wide."""
    return {"action": cfg.dim}


register(
    Architecture(
        "pat",
        build_pat,
        "video",
        pat_colv_widths,
        summary="the PAT backbone alone (video features by default)",
    )
)
register(
    Architecture(
        "motion_only",
        build_pat,
        "concat",
        pat_colv_widths,
        summary="Table 3: the Action-Motion sub-network alone, i.e. PAT, on I3D + CLIP concatenated by default",
    )
)
