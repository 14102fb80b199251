"""PAT: the position-aware multi-scale transformer (Sardari et al. 2023), SPEC section 2."""

from __future__ import annotations

import torch
from torch import nn

from refdense.models.blocks import MultiScaleTrunk
from refdense.models.config import ModelConfig
from refdense.models.inputs import check_batch, select_stream, stream_dims
from refdense.models.output import DetectionOutput


class PAT(nn.Module):
    """PAT on one feature stream (``cfg.stream``: video, image or their concatenation).

    ``features -> Dropout(input_dropout) -> MultiScaleTrunk -> (fine, mixed)``;
    ``logits = fine_weight * Linear(fine) + (1 - fine_weight) * Linear(Dropout(Linear(mixed)))``.
    The fine head reads the fine branch after its mixer convolution, the coarse head the sum of all
    branches (the 1x1 convolutions of the reference are ``nn.Linear`` here, same parameters).

    Also the ``motion_only`` baseline of Table 3 (Action-Motion alone has no entity features to
    cross-attend to, which leaves PAT).

    ``forward(video (B, T, Dv), image (B, T, Di), mask (B, T) bool | None) -> DetectionOutput`` with
    ``action_logits (B, T, C)`` and ``action_features`` = mixed features ``(B, T, dim)``; the stream
    PAT does not read may be None.
    """

    def __init__(self, cfg: ModelConfig, *, video_dim: int, image_dim: int, num_classes: int) -> None:
        super().__init__()
        self.stream = cfg.stream
        self.video_dim, self.image_dim, in_dim = stream_dims(self.stream, video_dim, image_dim)
        self.fine_weight = cfg.fine_weight
        self.max_window = cfg.max_len if cfg.position == "pat" else None  # longest input in one pass
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
        mask = check_batch(
            video,
            image,
            mask,
            video_dim=self.video_dim,
            image_dim=self.image_dim,
            dtype=self.fine_head.weight.dtype,
            validate=validate,
        )
        x = self.input_dropout(select_stream(video, image, self.stream))
        fine, mixed = self.trunk(x, mask)
        logits = self.fine_weight * self.fine_head(fine) + (1 - self.fine_weight) * self.coarse_head(mixed)
        return DetectionOutput(action_logits=logits, action_features=mixed)
