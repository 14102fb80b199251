"""Full-video inference for any length."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _as_features(name: str, x: torch.Tensor | np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    if x is None:
        return None
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (T, D) for one video, found {tuple(x.shape)}")
    return x.to(device=device, dtype=torch.float32)


@torch.no_grad()
def predict_full_video(
    model: nn.Module, video: torch.Tensor | np.ndarray | None, image: torch.Tensor | np.ndarray | None = None
) -> torch.Tensor:
    """Action probabilities of one whole video of any length.

    A model in the ``pat`` position mode accepts at most ``model.max_window`` segments at once: the
    video is cut into consecutive windows of ``max_window`` segments, the last one shorter (it is
    padded and masked, which gives the same result as running it alone), all windows run as one
    batch and the outputs are stitched back; no segment is dropped. In the ``relative`` mode
    (``max_window`` None) the whole video runs in one pass.

    The model runs in eval mode without gradients; its previous training mode is restored.

    Args:
        model: a model from ``build_model``.
        video: ``(T, Dv)`` features (tensor or array), or None if the model does not read them.
        image: ``(T, Di)`` features, or None if the model does not read them.

    Returns:
        ``(T, C)`` float32 probabilities on the CPU.
    """
    device = next(model.parameters()).device
    video, image = _as_features("video", video, device), _as_features("image", image, device)
    present = [x for x in (video, image) if x is not None]
    if not present:
        raise ValueError("predict_full_video needs video or image features, found neither")
    length = present[0].shape[0]
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
