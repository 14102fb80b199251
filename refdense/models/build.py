"""``build_model``: the one way to make a detector from a ``ModelConfig``."""

from __future__ import annotations

from refdense.models.config import ModelConfig
from refdense.models.detector import Detector
from refdense.models.registry import architecture


def build_model(
    cfg: ModelConfig, *, video_dim: int, image_dim: int, num_classes: int, num_entities: int, num_motions: int
) -> Detector:
    """The detector of ``cfg.arch`` (its :class:`~refdense.models.registry.Architecture`'s ``build``);
    its forward is ``model(video, image, mask) -> DetectionOutput``.

    Args:
        cfg: the configuration (architecture and ablation switches).
        video_dim, image_dim: widths of the video (I3D) and image (CLIP) features.
        num_classes, num_entities, num_motions: sizes of the action, entity and motion class sets
            (the last two are read by architectures with entity and motion outputs, as ``refdense``).
    """
    for name, value in (
        ("video_dim", video_dim),
        ("image_dim", image_dim),
        ("num_classes", num_classes),
        ("num_entities", num_entities),
        ("num_motions", num_motions),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"build_model: {name} must be a positive integer, found {value!r}")
    return architecture(cfg.arch).build(
        cfg,
        video_dim=video_dim,
        image_dim=image_dim,
        num_classes=num_classes,
        num_entities=num_entities,
        num_motions=num_motions,
    )
