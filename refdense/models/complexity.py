"""Size and cost of a model: parameters and forward multiply-accumulates."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from refdense.models.detector import Detector


@torch.no_grad()
def complexity(model: Detector, video_dim: int, image_dim: int, T: int = 256) -> tuple[int, float]:
    """Parameters and forward GMACs at batch 1 and ``T`` segments.

    MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
    convolutions; ``MACs = FLOPs / 2``), the convention behind the "GFLOPs" of the PAT and RefDense
    papers (papers in this line count MACs). Element-wise work (softmax, LayerNorm, GELU, the
    position-bias gather) is not counted.

    Args:
        model: a model from ``build_model``; video_dim, image_dim: feature widths; T: sequence length.

    Returns:
        ``(parameters, gmacs)``.
    """
    params = sum(p.numel() for p in model.parameters())
    device = next(model.parameters()).device
    video = torch.zeros(1, T, video_dim, device=device)
    image = torch.zeros(1, T, image_dim, device=device)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(video, image)
    finally:
        model.train(was_training)
    return params, counter.get_total_flops() / 2 / 1e9
