"""``Detector``: the base class of every detection model, and what the rest of the package relies on."""

from __future__ import annotations

import torch
from torch import nn

from refdense.models.config import ModelConfig
from refdense.models.inputs import check_batch
from refdense.models.output import DetectionOutput

#: Longest piece of a video one forward pass takes in the ``relative`` position mode: an attention
#: matrix of ``4096^2`` float32 values is 64 MiB per head; a longer video is cut into windows of
#: this length, each predicted seeing only itself (every segment of a shorter video sees all others).
RELATIVE_WINDOW = 4096


class Detector(nn.Module):
    """A detection model: PAT, RefDense and the ablations' single networks all derive from it.

    What inference (:func:`refdense.models.predict_full_videos`), training and evaluation rely on:

    - ``video_dim``, ``image_dim``: ``int | None``, the widths of the feature streams the model
      reads; None for a stream it does not read (that input may then be None).
    - ``max_window``: ``int``, the longest sequence one forward pass takes: ``cfg.max_len`` in the
      ``pat`` position mode (its position tables have that many rows), :data:`RELATIVE_WINDOW` (or
      ``cfg.max_len`` if longer) in the ``relative`` mode, which could take any length but whose
      attention holds ``T^2`` values per head. Longer videos are predicted window by window, so
      memory is bounded by the window whatever the video's length.
    - ``forward(video (B, T, Dv) | None, image (B, T, Di) | None, mask (B, T) bool | None, *,
      validate=True) -> DetectionOutput`` with ``action_logits`` ``(B, T, C)`` (logits, not
      probabilities) and the other fields the architecture has. ``mask`` is True on valid
      segments (None: all valid); padded positions never change a valid output.
      ``validate=False`` skips the checks of the mask's values, which wait for the device.

    A subclass calls ``super().__init__(cfg, video_dim=..., image_dim=...)`` and begins its forward
    with :meth:`check_inputs`.
    """

    def __init__(self, cfg: ModelConfig, *, video_dim: int | None, image_dim: int | None) -> None:
        super().__init__()
        self.video_dim, self.image_dim = video_dim, image_dim
        self.max_window = cfg.max_len if cfg.position == "pat" else max(cfg.max_len, RELATIVE_WINDOW)

    def check_inputs(
        self,
        video: torch.Tensor | None,
        image: torch.Tensor | None,
        mask: torch.Tensor | None,
        *,
        validate: bool,
    ) -> torch.Tensor:
        """The batch checked against the model's widths and parameter dtype
        (:func:`refdense.models.inputs.check_batch`); returns the ``(B, T)`` bool mask."""
        dtype = next(self.parameters()).dtype
        return check_batch(
            video,
            image,
            mask,
            video_dim=self.video_dim,
            image_dim=self.image_dim,
            dtype=dtype,
            validate=validate,
        )

    def forward(
        self,
        video: torch.Tensor | None,
        image: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        validate: bool = True,
    ) -> DetectionOutput:
        raise NotImplementedError(f"{type(self).__name__} must define forward (see Detector)")
