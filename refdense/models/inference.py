"""Full-video inference for any length, many videos at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from refdense.models.detector import Detector

#: Default size of one inference batch, in segments (sequences x their padded length): the fastest
#: on a 2-core CPU for the Charades models (``bench/evaluate.py``: 2048 or 4096 segments were 30 %
#: slower, their activations no longer fit the caches). A GPU may want more (``max_batch_segments``).
MAX_BATCH_SEGMENTS = 1024


#: What a prediction reads from a model: ``readout(model, video (B, T, Dv) | None, image (B, T, Di) |
#: None, mask (B, T) bool) -> (B, T, K)`` probabilities of one batch of pieces (their masks valid).
Readout = Callable[[Detector, torch.Tensor | None, torch.Tensor | None, torch.Tensor], torch.Tensor]


def action_probabilities(
    model: Detector, video: torch.Tensor | None, image: torch.Tensor | None, mask: torch.Tensor
) -> torch.Tensor:
    """The default :data:`Readout`: ``sigmoid(action_logits)`` ``(B, T, C)``, the action head's probabilities."""
    return model(video, image, mask, validate=False).action_logits.sigmoid()


def compose(
    entity_probs: torch.Tensor,
    motion_probs: torch.Tensor,
    decomposition: Sequence[tuple[int | None, int | None]],
) -> torch.Tensor:
    """The composed score of each action class: ``P_ent(entity of c) * P_mot(motion of c)``.

    ``entity_probs`` ``(..., C_ent)`` and ``motion_probs`` ``(..., C_mot)`` -> ``(..., C)`` with ``C =
    len(decomposition)``; ``decomposition[c] = (entity | None, motion | None)`` (``DatasetInfo``). A class
    without an entity scores its motion's probability alone, one without a motion its entity's, one
    with neither 1 (the empty product: the heads say nothing about it, its AP is its positive rate).
    The probabilities are picked by index, never by a matrix product (exact under bf16 autocast).
    """
    factors = []
    for probs, part in ((entity_probs, 0), (motion_probs, 1)):
        index = [pair[part] for pair in decomposition]
        present = torch.tensor([i is not None for i in index], device=probs.device)
        picked = probs[..., torch.tensor([i or 0 for i in index], device=probs.device)]
        factors.append(torch.where(present, picked, torch.ones_like(picked)))
    return factors[0] * factors[1]


def composed_readout(decomposition: Sequence[tuple[int | None, int | None]]) -> Readout:
    """The :data:`Readout` of a RefDense's auxiliary heads (Eq. 9) composed into action scores:
    :func:`compose` of ``sigmoid(entity_logits)`` and ``sigmoid(motion_logits)`` (the forward asked for
    them with ``auxiliary=True``), ``(B, T, C)``. An evaluation-only score beside the action head's:
    the fusion head never multiplies entity and motion scores.

    Raises:
        ValueError (when called) for a model that returns no entity or no motion logits.
    """

    def readout(
        model: Detector, video: torch.Tensor | None, image: torch.Tensor | None, mask: torch.Tensor
    ) -> torch.Tensor:
        output = model(video, image, mask, auxiliary=True, validate=False)
        if output.entity_logits is None or output.motion_logits is None:
            raise ValueError(
                f"the composed readout needs the entity and the motion head; {type(model).__name__} returned "
                f"entity logits {'None' if output.entity_logits is None else 'given'}, motion logits "
                f"{'None' if output.motion_logits is None else 'given'}"
            )
        return compose(
            output.entity_logits.sigmoid().float(), output.motion_logits.sigmoid().float(), decomposition
        )

    return readout


def motion_probabilities(
    model: Detector, video: torch.Tensor | None, image: torch.Tensor | None, mask: torch.Tensor
) -> torch.Tensor:
    """The :data:`Readout` of a RefDense's motion head: ``sigmoid(motion_logits)`` ``(B, T, C_mot)``
    (the forward asked for them with ``auxiliary=True``).

    Raises:
        ValueError: for a model that returns no motion logits.
    """
    output = model(video, image, mask, auxiliary=True, validate=False)
    if output.motion_logits is None:
        raise ValueError(f"the motion readout needs the motion head; {type(model).__name__} returned none")
    return output.motion_logits.sigmoid().float()


def _as_features(name: str, x: Any, dim: int | None, like: torch.Tensor) -> torch.Tensor | None:
    if dim is None:  # a stream the model does not read
        return None
    if x is None:
        raise ValueError(f"this model reads {name} features of shape (T, {dim}), found None")
    x = torch.as_tensor(x)
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (T, {dim}) for one video, found {tuple(x.shape)}")
    return x.to(device=like.device, dtype=like.dtype)


def _check_video(
    model: Detector, video: Any, image: Any, like: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``video``, ``image`` as tensors on the model's device and dtype (None where not read), and checked."""
    video = _as_features("video", video, model.video_dim, like)
    image = _as_features("image", image, model.image_dim, like)
    length = (video if video is not None else image).shape[0]
    if length == 0:
        raise ValueError("predict_full_video needs at least one segment, found T=0")
    if video is not None and image is not None and image.shape[0] != length:
        raise ValueError(f"video and image must have the same length T, found {length} and {image.shape[0]}")
    return video, image


def _stack_pieces(
    features: list[torch.Tensor | None], batch: list[tuple[int, int, int]], padded: int, like: torch.Tensor
) -> torch.Tensor | None:
    """The pieces ``(video index, start, length)`` of ``batch`` cut from one stream's per-video
    ``(T_v, D)`` ``features`` and zero-padded into ``(len(batch), padded, D)`` like ``like``; None
    for a stream the model does not read (None for every video)."""
    if features[0] is None:
        return None
    out = like.new_zeros(len(batch), padded, features[0].shape[1])
    for row, (index, start, length) in enumerate(batch):
        piece = features[index]
        assert piece is not None, "_check_video gives every video the streams the model reads"
        out[row, :length] = piece[start : start + length]
    return out


@torch.no_grad()
def predict_full_videos(
    model: Detector,
    videos: Sequence[tuple[Any, Any]],
    *,
    max_batch_segments: int = MAX_BATCH_SEGMENTS,
    readout: Readout = action_probabilities,
) -> list[torch.Tensor]:
    """Action probabilities of whole videos of any length, computed in batches across videos.

    Each video is cut into pieces the model can take in one pass: consecutive windows of
    ``model.max_window`` segments (the last one shorter; in the ``relative`` position mode only
    videos over :data:`refdense.models.detector.RELATIVE_WINDOW` segments are cut), so memory is
    bounded by the window, not by the video; no segment is dropped. The pieces of all
    videos are sorted by length and packed into batches of at most ``max_batch_segments`` segments
    (a longer piece runs alone), each padded to its longest piece and masked. A padded sequence gives
    the same valid outputs as alone (the models' masking guarantees it, and in the ``pat`` mode a
    short piece is biased as if padded to ``max_window``), so every video gets the probabilities it
    would get alone, within float rounding; batching only fills the matrix products and leaves
    short videos unpadded to ``max_window``.

    The model runs in eval mode without gradients; its previous training mode is restored.

    Args:
        model: a :class:`Detector` (``build_model`` makes them): its ``video_dim`` and ``image_dim``
            say which streams are read, ``max_window`` how long a piece may be.
        videos: ``(video, image)`` pairs, ``(T_v, Dv)`` and ``(T_v, Di)`` features (tensors or numpy
            arrays); a stream the model does not read is ignored (may be None).
        max_batch_segments: the size of a batch, in padded segments.
        readout: what is read from each batch (:data:`Readout`): the action head's probabilities
            (:func:`action_probabilities`), or e.g. :func:`composed_readout`.

    Returns:
        One ``(T_v, K)`` float32 probability tensor on the CPU per video, in order (``K = C``, the
        classes, for both readouts here).
    """
    parameter = next(model.parameters())  # inputs go to the model's device and dtype
    checked = [_check_video(model, video, image, parameter) for video, image in videos]
    pieces = []  # (video index, start, length)
    for index, streams in enumerate(checked):
        length = next(x for x in streams if x is not None).shape[0]
        window = model.max_window
        pieces += [(index, start, min(window, length - start)) for start in range(0, length, window)]
    if not pieces:
        return []
    pieces.sort(key=lambda piece: piece[2], reverse=True)
    batches: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    for piece in pieces:  # longest first: a batch's first piece gives its padded length
        if current and (len(current) + 1) * current[0][2] > max_batch_segments:
            batches.append(current)
            current = []
        current.append(piece)
    batches.append(current)

    videos_checked, images_checked = [video for video, _ in checked], [image for _, image in checked]
    outputs: list[list[tuple[int, torch.Tensor]]] = [[] for _ in checked]
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            padded = batch[0][2]
            lengths = torch.tensor([length for _, _, length in batch], device=parameter.device)
            mask = torch.arange(padded, device=parameter.device) < lengths.unsqueeze(1)
            video_batch = _stack_pieces(videos_checked, batch, padded, parameter)
            image_batch = _stack_pieces(images_checked, batch, padded, parameter)
            probs = readout(model, video_batch, image_batch, mask).float().cpu()
            for row, (index, start, length) in enumerate(batch):
                outputs[index].append((start, probs[row, :length]))
    finally:
        model.train(was_training)
    return [torch.cat([part for _, part in sorted(parts, key=lambda p: p[0])]) for parts in outputs]


def predict_full_video(model: Detector, video: Any, image: Any = None) -> torch.Tensor:
    """Action probabilities ``(T, C)`` float32 on the CPU of one whole video of any length:
    ``predict_full_videos`` of that one video (see there)."""
    return predict_full_videos(model, [(video, image)])[0]
