"""Size and cost of a model: parameters and forward multiply-accumulates."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from refdense.models.detector import Detector


class AttentionCount(TorchFunctionMode):
    """Counts each ``scaled_dot_product_attention`` by its shapes instead of running it.

    An attention of queries ``(..., N, Dk)``, keys ``(..., M, Dk)`` and values ``(..., M, Dv)`` costs
    ``prod(...) * N * M * (Dk + Dv)`` MACs: ``Q K^T`` and the weighted sum of the values, whichever
    kernel would run (PyTorch's flash kernel is invisible to ``FlopCounterMode`` on the CPU, its
    reference kernel is two counted matrix products on the meta device). The call returns zeros of
    the output's shape: a count needs shapes, not values.
    """

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_function__(
        self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention:
            return func(*args, **kwargs)
        query, key, value = (*args, *(kwargs[name] for name in ("query", "key", "value")[len(args) :]))[:3]
        *batch, queries, _ = query.shape
        keys = key.shape[-2]
        self.macs += math.prod(batch) * queries * keys * (query.shape[-1] + value.shape[-1])
        return query.new_zeros(*batch, queries, value.shape[-1])


def parameter_count(model: torch.nn.Module) -> int:
    """The number of parameters of ``model`` (every element of every parameter; a model built on the
    meta device, ``with torch.device("meta"): ...``, is counted without allocating or drawing them)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def complexity(model: Detector, video_dim: int, image_dim: int, T: int = 256) -> tuple[int, float]:
    """Parameters and forward GMACs at batch 1 and ``T`` segments, the same on every device.

    MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` for the matrix products and
    convolutions (``MACs = FLOPs / 2``) and by :class:`AttentionCount` for the attentions (``Q K^T``
    and ``A V``, whatever kernel the device would pick): the convention behind the "GFLOPs" of the
    PAT and RefDense papers (papers in this line count MACs). Element-wise work (softmax,
    LayerNorm, GELU, the position-bias gather) is not counted.

    Args:
        model: a model from ``build_model`` (on any device, the meta device included); video_dim,
            image_dim: feature widths; T: sequence length.

    Returns:
        ``(parameters, gmacs)``.
    """
    params = parameter_count(model)
    device = next(model.parameters()).device
    video = torch.zeros(1, T, video_dim, device=device)
    image = torch.zeros(1, T, image_dim, device=device)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, AttentionCount() as attention:
            model(video, image)
    finally:
        model.train(was_training)
    return params, (counter.get_total_flops() / 2 + attention.macs) / 1e9
