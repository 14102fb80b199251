"""Models: PAT, RefDense and the baselines of the paper's ablations (paper Eq. 2-3, 5-9).

Channels-last tensors ``(B, T, D)``, ``mask (B, T)`` bool True on valid segments; every model's
forward is ``model(video, image, mask, *, validate=True) -> DetectionOutput`` (logits), where
``validate=False`` skips the checks of the mask's values, which wait for the device (the training
loop's batches are valid by construction). Every model is a :class:`Detector`, which declares what
inference relies on. Build models with ``build_model(ModelConfig(...), ...)``; the architectures
``ModelConfig.arch`` names are those of :mod:`refdense.models.registry`, where each module registers its own.
"""

from refdense.models.attention import CrossAttention, PositionAwareSelfAttention, position_bias
from refdense.models.blocks import (
    Branch,
    LocalRelational,
    MaskedConv1d,
    MultiScaleTrunk,
    PositionAwareBlock,
    ResidualCrossAttention,
    init_pat_weights,
)
from refdense.models.build import build_model
from refdense.models.complexity import complexity, parameter_count
from refdense.models.config import ModelConfig
from refdense.models.detector import Detector
from refdense.models.inference import predict_full_video, predict_full_videos
from refdense.models.output import DetectionOutput
from refdense.models.pat import PAT
from refdense.models.refdense import ActionEntityDetector, RefDense
from refdense.models.registry import Architecture, architecture, architectures, register, unregister

__all__ = [
    "ActionEntityDetector",
    "Architecture",
    "Branch",
    "CrossAttention",
    "DetectionOutput",
    "Detector",
    "LocalRelational",
    "MaskedConv1d",
    "ModelConfig",
    "MultiScaleTrunk",
    "PAT",
    "PositionAwareBlock",
    "PositionAwareSelfAttention",
    "RefDense",
    "ResidualCrossAttention",
    "architecture",
    "architectures",
    "build_model",
    "complexity",
    "init_pat_weights",
    "parameter_count",
    "position_bias",
    "predict_full_video",
    "predict_full_videos",
    "register",
    "unregister",
]
