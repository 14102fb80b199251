"""Full-video inference for any length."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _as_features(name: str, x: Any, dim: int | None, like: torch.Tensor) -> torch.Tensor | None:
    if dim is None:  # a stream the model does not read
        return None
    if x is None:
        raise ValueError(f"this model reads {name} features of shape (T, {dim}), found None")
    x = torch.as_tensor(x)
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (T, {dim}) for one video, found {tuple(x.shape)}")
    return x.to(device=like.device, dtype=like.dtype)


@torch.no_grad()
def predict_full_video(model: nn.Module, video: Any, image: Any = None) -> torch.Tensor:
    """Action probabilities of one whole video of any length.

    A model in the ``pat`` position mode accepts at most ``model.max_window`` segments at once: the
    video is cut into consecutive windows of ``max_window`` segments, the last one shorter (it is
    padded and masked, which gives the same result as running it alone), all windows run as one
    batch and the outputs are stitched back; no segment is dropped. In the ``relative`` mode
    (``max_window`` None) the whole video runs in one pass.

    The model runs in eval mode without gradients; its previous training mode is restored.

    Args:
        model: a model from ``build_model``.
        video: ``(T, Dv)`` features (tensor or numpy array); ignored (may be None) if the model
            does not read them.
        image: ``(T, Di)`` features; ignored (may be None) if the model does not read them.

    Returns:
        ``(T, C)`` float32 probabilities on the CPU.
    """
    parameter = next(model.parameters())  # inputs go to the model's device and dtype
    video = _as_features("video", video, model.video_dim, parameter)
    image = _as_features("image", image, model.image_dim, parameter)
    device = parameter.device
    length = (video if video is not None else image).shape[0]
    if length == 0:
        raise ValueError("predict_full_video needs at least one segment, found T=0")
    if video is not None and image is not None and image.shape[0] != length:
        raise ValueError(f"video and image must have the same length T, found {length} and {image.shape[0]}")
    window = model.max_window or length
    count = -(-length // window)  # ceil
    padded = count * window

    def windows(x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        x = torch.cat([x, x.new_zeros(padded - length, x.shape[1])])
        return x.view(count, window, x.shape[1])

    mask = (torch.arange(padded, device=device) < length).view(count, window)
    was_training = model.training
    model.eval()
    try:
        logits = model(windows(video), windows(image), mask).action_logits  # (count, window, C)
    finally:
        model.train(was_training)
    return logits.reshape(padded, -1)[:length].sigmoid().float().cpu()
