"""Validation of a model's inputs and choice of the feature stream a single-network model reads."""

from __future__ import annotations

from typing import Literal, get_args

import torch

Stream = Literal["video", "image", "concat"]
STREAMS = get_args(Stream)


def _check_features(name: str, x: object, dim: int, dtype: torch.dtype, batch_time: tuple[int, int] | None) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, T, {dim}), found {type(x).__name__}")
    if x.dtype != dtype:
        raise ValueError(f"{name} must have the model's dtype {dtype}, found {x.dtype}")
    expected = f"({batch_time[0]}, {batch_time[1]}, {dim})" if batch_time else f"(B, T, {dim})"
    if x.dim() != 3 or x.shape[2] != dim or (batch_time is not None and tuple(x.shape[:2]) != batch_time):
        raise ValueError(f"{name} must have shape {expected}, found {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one time step, found shape {tuple(x.shape)}")


def check_batch(
    video: torch.Tensor | None,
    image: torch.Tensor | None,
    mask: torch.Tensor | None,
    *,
    video_dim: int | None,
    image_dim: int | None,
    dtype: torch.dtype,
    validate: bool = True,
) -> torch.Tensor:
    """Validate a batch and return its mask.

    Args:
        video: ``(B, T, video_dim)`` of ``dtype``; checked when ``video_dim`` is not None.
        image: ``(B, T, image_dim)`` of ``dtype``; checked when ``image_dim`` is not None.
        mask: ``(B, T)`` bool, True on valid segments, a valid prefix then padding, at least one
            valid segment per sequence; None means all valid.
        video_dim, image_dim: expected widths, None for a stream the model does not read.
        dtype: the model's parameter dtype (float32 also under autocast, which casts inside).
        validate: also check the mask's values (a valid segment per sequence, a valid prefix), which
            reads them back from the device; False skips that for batches valid by construction
            (the training loop's). Types and shapes are always checked (that costs nothing).

    Returns:
        The ``(B, T)`` bool mask (all True when ``mask`` is None).

    Raises:
        ValueError naming the expected and the found value.
    """
    batch_time = None
    for name, x, dim in (("video", video, video_dim), ("image", image, image_dim)):
        if dim is not None:
            _check_features(name, x, dim, dtype, batch_time)
            batch_time = tuple(x.shape[:2])
    if batch_time is None:
        raise ValueError("the model reads no stream: give video_dim or image_dim")
    if mask is None:
        reference = video if video_dim is not None else image
        return torch.ones(batch_time, dtype=torch.bool, device=reference.device)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        found = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a bool tensor of shape {batch_time}, found {found}")
    if tuple(mask.shape) != batch_time:
        raise ValueError(f"mask must have shape {batch_time}, found {tuple(mask.shape)}")
    if not validate:
        return mask
    empty = (~mask.any(dim=1)).nonzero().flatten()
    if len(empty):
        raise ValueError(
            f"mask must have at least one valid (True) segment per sequence, found none in batch "
            f"element(s) {empty.tolist()}"
        )
    holes = (mask[:, 1:] & ~mask[:, :-1]).any(dim=1).nonzero().flatten()
    if len(holes):
        raise ValueError(
            "mask must be a valid prefix followed by padding (True... then False...), found a valid "
            f"segment after padding in batch element(s) {holes.tolist()}"
        )
    return mask


def select_stream(video: torch.Tensor | None, image: torch.Tensor | None, stream: str) -> torch.Tensor:
    """The features a single-network model reads: ``video``, ``image`` or their channel concatenation.

    ``(B, T, Dv)``, ``(B, T, Di)`` -> ``(B, T, Dv)``, ``(B, T, Di)`` or ``(B, T, Dv + Di)``.
    """
    if stream == "video":
        return video
    if stream == "image":
        return image
    return torch.cat([video, image], dim=-1)


def stream_dims(stream: str, video_dim: int, image_dim: int) -> tuple[int | None, int | None, int]:
    """``(video_dim or None, image_dim or None, input width)`` for a model reading ``stream``."""
    if stream not in STREAMS:
        raise ValueError(f"inputs must be one of {STREAMS}, found {stream!r}")
    return (
        video_dim if stream in ("video", "concat") else None,
        image_dim if stream in ("image", "concat") else None,
        {"video": video_dim, "image": image_dim, "concat": video_dim + image_dim}[stream],
    )
