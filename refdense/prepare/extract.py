"""Features from raw videos: CLIP RN50 image features and video-network features per 8-frame segment.

A video is decoded with PyAV (optionally resampled to ``fps``), cut into non-overlapping segments of
``segment_frames`` = 8 frames (a last partial segment is dropped, as the I3D extractors do), and
each segment gets:

- an **image** feature: CLIP RN50 (open_clip, OpenAI weights) of its middle frame (frame 4 of 0..7),
  preprocessed as CLIP's own transform (shortest side to 224 with bicubic resizing, centre crop,
  CLIP's mean and std); 1024-d;
- a **video** feature, either from the user's I3D features (``video_features``: the community's
  ``.npy`` or HDF5, aligned to the image stream with the same tolerance rule as ``refdense prepare``)
  or from torchvision's S3D with its Kinetics-400 weights (``s3d-kinetics400``). S3D is the
  separable-convolution descendant of I3D: same Inception layout, same temporal stride of 8 frames
  and the same 1024-d feature, so one vector per segment comes straight out of its feature layers
  (averaged over space) and the models' configs need no change. It is not I3D: numbers trained on
  these features will differ from those published with the community's I3D features. The video is
  processed in chunks of ``chunk_segments`` segments, each with one segment of context on both
  sides, so that chunk borders do not cut the receptive field short.

Output: an HDF5 file with ``video/<id>`` (T, D_video) and ``image/<id>`` (T, D_image), the layout
``refdense prepare --video-features FILE --image-features FILE`` reads. Extraction is resumable:
each finished video is saved at once to ``<out>.parts/<id>.npz``, videos already in ``<out>`` or
in the parts folder are skipped, and the parts are merged into ``<out>`` (atomically) at the end.
A video that cannot be decoded is reported and skipped; the others are kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from refdense.io import atomic_path
from refdense.prepare.features import FeatureError, FeatureSource, align_streams, to_storage

SEGMENT_FRAMES = 8
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def decode_chunks(path: str | os.PathLike, *, chunk_segments: int = 32, segment_frames: int = SEGMENT_FRAMES,
                  fps: float | None = None, short_side: int = 256) -> Iterator[np.ndarray]:
    """Decode a video into chunks of whole segments: uint8 arrays (n * segment_frames, H, W, 3), n <= chunk_segments.

    Frames are resized so that their shorter side is ``short_side`` (keeping the aspect ratio), which
    bounds memory whatever the source resolution. With ``fps``, frames are resampled to that rate
    (repeated or skipped by timestamp); otherwise every decoded frame is used.
    """
    import av

    per_chunk = chunk_segments * segment_frames
    buffer: list[np.ndarray] = []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_time = 0.0
        for frame in container.decode(stream):
            scale = short_side / min(frame.width, frame.height)
            width, height = max(1, round(frame.width * scale / 2) * 2), max(1, round(frame.height * scale / 2) * 2)
            image = frame.to_ndarray(format="rgb24", width=width, height=height)
            copies = 1
            if fps is not None:
                time = float(frame.time or 0.0)
                copies = 0
                while time + 1e-6 >= next_time:
                    copies += 1
                    next_time += 1.0 / fps
            for _ in range(copies):
                buffer.append(image)
                if len(buffer) == per_chunk:
                    yield np.stack(buffer)
                    buffer = []
    whole = len(buffer) - len(buffer) % segment_frames
    if whole:
        yield np.stack(buffer[:whole])


def _to_float(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1] on ``device``."""
    return torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div_(255.0)


def _centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[..., top:top + size, left:left + size]


class ClipImageEncoder:
    """CLIP image tower applied to the middle frame of each segment: frames (8n, H, W, 3) uint8 -> (n, D).

    Args:
        model: an open_clip CLIP model (``open_clip.create_model("RN50", pretrained="openai")``).
        device: where to run it.
        name: stored as the stream's encoder in ``dataset.json``.
    """

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", name: str = "clip-rn50"):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        size = getattr(model.visual, "image_size", 224)
        self.size = size[0] if isinstance(size, (tuple, list)) else int(size)
        self.mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        self.name = name
        self.dim = int(model.visual.output_dim)

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray, segment_frames: int = SEGMENT_FRAMES) -> np.ndarray:
        middle = frames[segment_frames // 2::segment_frames]
        x = _to_float(middle, self.device)
        scale = self.size / min(x.shape[-2:])
        x = F.interpolate(x, size=(max(self.size, round(x.shape[-2] * scale)), max(self.size, round(x.shape[-1] * scale))),
                          mode="bicubic", align_corners=False, antialias=True)
        x = (_centre_crop(x, self.size).clamp_(0, 1) - self.mean) / self.std
        return self.model.encode_image(x).float().cpu().numpy()


class S3DVideoEncoder:
    """torchvision's S3D feature layers, averaged over space: frames (8n, H, W, 3) uint8 -> (n, 1024).

    S3D reduces time by 8, so ``8n`` frames give ``n`` vectors, one per segment. Preprocessing is
    torchvision's for its Kinetics weights: resize to 256 x 256 (scaled with ``size``), centre crop
    ``size`` (224), Kinetics mean and std.
    """

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", size: int = 224,
                 name: str = "s3d-kinetics400"):
        self.features = model.features.eval().to(device)
        self.device = torch.device(device)
        self.size = size
        self.resize = round(size * 256 / 224)
        self.mean = torch.tensor(KINETICS_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(KINETICS_STD, device=self.device).view(1, 3, 1, 1)
        self.name = name
        self.dim = 1024

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray, segment_frames: int = SEGMENT_FRAMES) -> np.ndarray:
        if segment_frames != SEGMENT_FRAMES:
            raise ValueError(f"S3D gives one vector per 8 frames; segment_frames must be 8, found {segment_frames}")
        x = F.interpolate(_to_float(frames, self.device), size=(self.resize, self.resize), mode="bilinear",
                          align_corners=False, antialias=True)
        x = (_centre_crop(x, self.size) - self.mean) / self.std
        out = self.features(x.permute(1, 0, 2, 3).unsqueeze(0))  # (1, 1024, n, h, w)
        return out.mean(dim=(-2, -1))[0].transpose(0, 1).float().cpu().numpy()


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_clip_image_encoder(weights: str = "openai", device: str | torch.device | None = None) -> ClipImageEncoder:
    """CLIP RN50 with ``weights``: ``"openai"`` (downloaded once into the open_clip cache) or a local file."""
    import open_clip

    try:
        model = open_clip.create_model("RN50", pretrained=weights)
    except Exception as error:  # open_clip/huggingface raise many kinds when offline
        raise RuntimeError(
            f"could not load CLIP RN50 weights {weights!r} ({type(error).__name__}: {error}). Run once with "
            "internet access so that open_clip caches them, or download the OpenAI RN50 checkpoint and pass "
            "its path with --clip-weights PATH") from None
    return ClipImageEncoder(model, device or default_device())


def load_s3d_video_encoder(device: str | torch.device | None = None) -> S3DVideoEncoder:
    """torchvision's S3D with its Kinetics-400 weights (downloaded once into the torch hub cache)."""
    from torchvision.models.video import S3D_Weights, s3d

    try:
        model = s3d(weights=S3D_Weights.KINETICS400_V1)
    except Exception as error:
        raise RuntimeError(
            f"could not load torchvision's S3D Kinetics-400 weights ({type(error).__name__}: {error}). Run once "
            f"with internet access (they go to {torch.hub.get_dir()}/checkpoints), or use your own I3D "
            "features with --video-features") from None
    return S3DVideoEncoder(model, device or default_device())


@dataclass
class ExtractReport:
    """What :func:`extract_features` did: ids extracted now, already present, and failures with reasons."""

    extracted: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"extracted {len(self.extracted)} videos, skipped {len(self.already_done)} already done, "
                 f"{len(self.failed)} failed"]
        if self.truncated:
            lines.append(f"{len(self.truncated)} videos truncated to the shorter stream (I3D vs image lengths)")
        lines += [f"  failed {video_id}: {reason}" for video_id, reason in sorted(self.failed.items())]
        return "\n".join(lines)


def list_videos(folder: str | os.PathLike) -> list[Path]:
    """The video files of ``folder`` (by suffix), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


def _done_ids(out: Path, parts: Path) -> set[str]:
    import h5py

    done = set()
    if out.exists():
        with h5py.File(out, "r") as handle:
            if "video" in handle and "image" in handle:
                done = set(handle["video"]) & set(handle["image"])
    if parts.exists():
        done |= {p.stem for p in parts.glob("*.npz")}
    return done


def _with_context(chunks: Iterator[np.ndarray], context: int) -> Iterator[tuple[np.ndarray, int, int]]:
    """Yield (chunk with ``context`` frames of its neighbours on each side, left count, right count)."""
    previous = None
    current = next(chunks, None)
    while current is not None:
        following = next(chunks, None)
        left = previous[-context:] if previous is not None else current[:0]
        right = following[:context] if following is not None else current[:0]
        yield np.concatenate([left, current, right]), len(left), len(right)
        previous, current = current, following


def extract_video(path: Path, image_encoder: Callable, video_encoder: Callable | None, *, fps: float | None = None,
                  chunk_segments: int = 32) -> tuple[np.ndarray, np.ndarray | None]:
    """Features of one video: image (T, Di) and video (T, Dv) (None without ``video_encoder``)."""
    images, videos = [], []
    for frames, left, right in _with_context(decode_chunks(path, chunk_segments=chunk_segments, fps=fps),
                                             SEGMENT_FRAMES):
        core = frames[left:len(frames) - right]
        images.append(image_encoder(core))
        if video_encoder is not None:
            out = video_encoder(frames)
            videos.append(out[left // SEGMENT_FRAMES: len(out) - right // SEGMENT_FRAMES])
    if not images:
        raise ValueError(f"{path}: shorter than one segment ({SEGMENT_FRAMES} frames)")
    return np.concatenate(images), (np.concatenate(videos) if video_encoder is not None else None)


def extract_features(videos: list[Path], out: str | os.PathLike, *, image_encoder: Callable,
                     video_encoder: Callable | None = None, video_features: str | os.PathLike | None = None,
                     fps: float | None = None, chunk_segments: int = 32, dtype: str = "float16",
                     length_tolerance: int = 2, progress: bool | None = None) -> ExtractReport:
    """Extract both feature streams of ``videos`` into the HDF5 file ``out`` (see the module docstring).

    Exactly one of ``video_encoder`` (e.g. :func:`load_s3d_video_encoder`) and ``video_features``
    (the user's I3D ``.npy`` folder or HDF5) gives the video stream. Encoders are callables mapping
    uint8 frames (8n, H, W, 3) to (n, D) float arrays, so any model can be plugged in.
    """
    from tqdm.auto import tqdm

    if (video_encoder is None) == (video_features is None):
        raise ValueError("give exactly one of video_encoder (a video network) and video_features (your I3D features)")
    out = Path(out)
    parts = out.with_name(out.name + ".parts")
    report = ExtractReport()
    done = _done_ids(out, parts)
    source = FeatureSource(video_features, "video") if video_features is not None else None
    try:
        for path in tqdm(videos, desc="extract", unit="video", disable=None if progress is None else not progress):
            video_id = path.stem
            if video_id in done:
                report.already_done.append(video_id)
                continue
            try:
                if source is not None and video_id not in source.ids:
                    raise FeatureError(f"no I3D features for this video in {source.path}")
                image, video = extract_video(path, image_encoder, video_encoder, fps=fps, chunk_segments=chunk_segments)
                if source is not None:
                    video = source.load(video_id)
                    if len(video) != len(image):
                        report.truncated.append(video_id)
                    video, image = align_streams(video, image, length_tolerance, f"{path}: video {video_id!r}")
                video, image = to_storage(video, dtype, str(path)), to_storage(image, dtype, str(path))
            except Exception as error:  # a bad video must not cost the others: report and go on
                report.failed[video_id] = f"{type(error).__name__}: {error}"
                continue
            parts.mkdir(parents=True, exist_ok=True)
            with atomic_path(parts / f"{video_id}.npz") as tmp:
                with open(tmp, "wb") as handle:
                    np.savez(handle, video=video, image=image)
            report.extracted.append(video_id)
    finally:
        if source is not None:
            source.close()
    if report.extracted or (parts.exists() and any(parts.glob("*.npz"))):
        _merge(out, parts, dtype)
    return report


def _merge(out: Path, parts: Path, dtype: str) -> None:
    """Rewrite ``out`` with its videos and those of ``parts`` (atomically), then remove the parts."""
    import h5py

    part_files = sorted(parts.glob("*.npz"))

    def items():
        if out.exists():
            with h5py.File(out, "r") as handle:
                for video_id in sorted(set(handle["video"]) - {p.stem for p in part_files}):
                    yield video_id, handle["video"][video_id][()], handle["image"][video_id][()]
        for part in part_files:
            with np.load(part) as arrays:
                yield part.stem, arrays["video"], arrays["image"]

    from refdense.data.format import write_features

    write_features(out, items(), dtype=dtype)
    for part in part_files:
        part.unlink()
    parts.rmdir()
