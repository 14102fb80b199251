"""Linear probes: what a ridge readout of the input features scores, the bound a trained model should beat.

Six readouts of the two input streams: ``video``, ``image`` and ``both`` (concatenated), each
``frame`` (the features of one segment) and ``pooled`` (those features, then their means over the
2, 4, 8 and 16 segments before it and after it, clipped at the video's ends, all concatenated: a
fixed temporal pooling, nothing learned). Each readout is a ridge regression of the (T, C) 0/1 labels
on the standardised features, fitted on the training split, its regularisation chosen among
:data:`LAMBDAS` by the per-frame mAP on the validation split (the seeded carve-out the training
uses, :func:`refdense.data.validation_ids`), and scored with :func:`refdense.metrics.frame_map`
on the test split. Beside them, ``prior``: every segment scored with the classes' training
frequencies (a constant per class, the floor of the metric).

The fit needs one pass over the training frames: the Gram matrix of the widest readout (both
streams, pooled) holds every other readout's as a block, so all six are solved from it (one
Cholesky factorisation per readout and penalty). Its cost grows with the training frames times the
squared width: the real-sized presets (two 1024-d streams, an 18,432-wide pooled row) take
``train_frames``, a seeded sample of the training frames to fit on (each sampled frame's pooled row
still sees its whole video); validation and test always use every frame.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from refdense.data import DenseActionDataset
from refdense.metrics import frame_map
from refdense.progress import progress_bar

STREAMS = ("video", "image", "both")
POOLINGS = ("frame", "pooled")
POOL_RADII = (2, 4, 8, 16)  # the pooled readout's means over t-r..t and t..t+r, for each r
POOLED_WIDTH = 1 + 2 * len(POOL_RADII)  # a pooled row is this many times as wide as a frame's
# Ridge penalties; the standardised Gram matrix is a correlation matrix (unit diagonal, mean over
# frames), so a penalty is relative to a feature's own variance.
LAMBDAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
GRAM_ROWS = 4096  # training rows gathered per update of the Gram matrix
FRAME_SAMPLE_SEED = 0  # the seed of ``train_frames``' sample (the same frames for every readout)


@dataclass(frozen=True)
class ProbeVideo:
    """One video: ``video`` (T, Dv) and ``image`` (T, Di) features, ``labels`` (T, C) in {0, 1}."""

    video: np.ndarray
    image: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Readout:
    """One readout's result: the chosen penalty, the validation mAP per penalty, the test mAP (percent)."""

    stream: str
    pooling: str
    lam: float
    validation: dict[float, float]
    test_map: float
    test_map_present: float

    @property
    def name(self) -> str:
        return f"{self.stream}/{self.pooling}"


@dataclass(frozen=True)
class ProbeResult:
    """The six readouts and the class-prior floor, all on the same splits."""

    readouts: list[Readout]
    prior_map: float
    train_frames: int  # the frames fitted on (a sample when ``sampled``)
    validation_frames: int
    test_frames: int
    sampled: bool = False  # True when the fit used a sample of the training frames

    def best(self) -> Readout:
        """The readout with the highest test mAP (the bound a trained model is compared with)."""
        return max(self.readouts, key=lambda r: r.test_map)

    def readout(self, stream: str, pooling: str) -> Readout:
        return next(r for r in self.readouts if r.stream == stream and r.pooling == pooling)

    def to_dict(self) -> dict:
        return {
            "pool_radii": list(POOL_RADII),
            "lambdas": list(LAMBDAS),
            "frames": {
                "training": self.train_frames,
                "training_sampled": self.sampled,
                "validation": self.validation_frames,
                "testing": self.test_frames,
            },
            "prior_map": self.prior_map,
            "readouts": {
                r.name: {
                    "lambda": r.lam,
                    "validation_map": {f"{lam:g}": _finite(value) for lam, value in r.validation.items()},
                    "test_map": _finite(r.test_map),
                    "test_map_present": _finite(r.test_map_present),
                }
                for r in self.readouts
            },
        }

    def to_markdown(self) -> str:
        rows = [
            "| readout | lambda | validation mAP | test mAP | test mAP (present) |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in self.readouts:
            rows.append(
                f"| {r.name} | {r.lam:g} | {r.validation[r.lam]:.2f} | {r.test_map:.2f} | {r.test_map_present:.2f} |"
            )
        rows.append(f"| prior (training class frequencies) | | | {self.prior_map:.2f} | |")
        return "\n".join(rows)


def pooled_features(features: torch.Tensor) -> torch.Tensor:
    """(T, D) -> (T, D * POOLED_WIDTH): the features, then for each r of :data:`POOL_RADII` their
    mean over t-r..t and over t..t+r (clipped at the video's ends). Two one-sided means, not one
    centred mean: their difference keeps the order of what happens around t (a centred mean cannot
    tell a motion from the one with its phases in the reverse order)."""
    length = features.shape[0]
    cumulative = torch.cat([features.new_zeros(1, features.shape[1]), features.cumsum(0)])
    t = torch.arange(length, device=features.device)
    parts = [features]
    for radius in POOL_RADII:
        for lo, hi in (((t - radius).clamp(min=0), t + 1), (t, (t + radius + 1).clamp(max=length))):
            parts.append((cumulative[hi] - cumulative[lo]) / (hi - lo).unsqueeze(1).to(features.dtype))
    return torch.cat(parts, dim=1)


def _columns(video_dim: int, image_dim: int, device: torch.device) -> dict[tuple[str, str], torch.Tensor]:
    """The columns of each readout in the widest design row: ``[pool(video), pool(image)]``."""
    width = POOLED_WIDTH
    video = torch.arange(video_dim * width, device=device)
    image = torch.arange(image_dim * width, device=device) + video_dim * width
    frame = {"video": video[:video_dim], "image": image[:image_dim]}
    pooled = {"video": video, "image": image}
    columns = {}
    for pooling, parts in (("frame", frame), ("pooled", pooled)):
        columns["video", pooling] = parts["video"]
        columns["image", pooling] = parts["image"]
        columns["both", pooling] = torch.cat([parts["video"], parts["image"]])
    return {(s, p): columns[s, p] for s in STREAMS for p in POOLINGS}


def _design(video: ProbeVideo, device: torch.device) -> torch.Tensor:
    """(T, (Dv + Di) * POOLED_WIDTH) float64: both streams, each pooled."""
    streams = [
        torch.as_tensor(np.asarray(x, dtype=np.float64), device=device) for x in (video.video, video.image)
    ]
    return torch.cat([pooled_features(x) for x in streams], dim=1)


def _check(videos: Sequence[ProbeVideo], split: str) -> None:
    if not videos:
        raise ValueError(f"probe: the {split} split holds no videos")
    first = videos[0]
    for i, v in enumerate(videos):
        t = v.labels.shape[0]
        if v.video.shape[0] != t or v.image.shape[0] != t:
            raise ValueError(
                f"probe: {split} video {i}: {v.video.shape[0]} video, {v.image.shape[0]} image and {t} label segments"
            )
        if (v.video.shape[1], v.image.shape[1], v.labels.shape[1]) != (
            first.video.shape[1],
            first.image.shape[1],
            first.labels.shape[1],
        ):
            raise ValueError(f"probe: {split} video {i}: feature or class widths differ from video 0's")


def _frame_sample(train: Sequence[ProbeVideo], train_frames: int | None) -> list[np.ndarray] | None:
    """Per training video, the sorted rows of a uniform sample of ``train_frames`` of all its frames
    (seed :data:`FRAME_SAMPLE_SEED`); None for every frame (``train_frames`` None or at least all)."""
    if train_frames is not None and train_frames < 1:
        raise ValueError(f"probe: train_frames must be a positive number of frames, found {train_frames!r}")
    lengths = [v.labels.shape[0] for v in train]
    total = sum(lengths)
    if train_frames is None or train_frames >= total:
        return None
    chosen = np.sort(np.random.default_rng(FRAME_SAMPLE_SEED).choice(total, train_frames, replace=False))
    starts = np.cumsum([0, *lengths])
    return [
        chosen[(chosen >= lo) & (chosen < hi)] - lo for lo, hi in zip(starts[:-1], starts[1:], strict=True)
    ]


def ridge_probe(
    train: Sequence[ProbeVideo],
    validation: Sequence[ProbeVideo],
    test: Sequence[ProbeVideo],
    device: str | torch.device = "cpu",
    train_frames: int | None = None,
    progress: bool | None = False,
) -> ProbeResult:
    """Fit the six readouts on ``train``, choose each one's penalty on ``validation``, score on ``test``.

    The penalty is the one of :data:`LAMBDAS` with the highest validation mAP (the smaller one on
    a tie); the test split is read once, with the chosen penalties. ``train_frames``: fit on a
    seeded uniform sample of that many training frames (None: every frame). ``progress``: count
    the videos read and the systems solved (:func:`refdense.progress.progress_bar`; None: auto).
    """
    for videos, split in ((train, "training"), (validation, "validation"), (test, "testing")):
        _check(videos, split)
    sample = _frame_sample(train, train_frames)
    device = torch.device(device)
    video_dim, image_dim = train[0].video.shape[1], train[0].image.shape[1]
    classes = train[0].labels.shape[1]
    columns = _columns(video_dim, image_dim, device)
    keys = [(stream, pooling, lam) for stream in STREAMS for pooling in POOLINGS for lam in LAMBDAS]
    steps = len(train) + len(keys) + len(validation) + len(test)
    bar = progress_bar(steps, desc="probe", unit="step", enabled=progress)

    # One pass over the training frames: sums of x, y, x x^T and x y^T.
    width = (video_dim + image_dim) * POOLED_WIDTH
    gram = torch.zeros(width, width, dtype=torch.float64, device=device)
    cross = torch.zeros(width, classes, dtype=torch.float64, device=device)
    sum_x = torch.zeros(width, dtype=torch.float64, device=device)
    sum_y = torch.zeros(classes, dtype=torch.float64, device=device)
    frames = 0
    pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def accumulate() -> None:
        """Add the pending rows in one product: one update of the (width, width) sum per
        :data:`GRAM_ROWS` rows, not per video (a sampled video gives only a few rows)."""
        x = torch.cat([x for x, _ in pending])
        y = torch.cat([y for _, y in pending])
        gram.addmm_(x.T, x)
        cross.addmm_(x.T, y)
        sum_x.add_(x.sum(0))
        sum_y.add_(y.sum(0))
        pending.clear()

    for i, video in enumerate(train):
        x = _design(video, device)
        y = torch.as_tensor(np.asarray(video.labels, dtype=np.float64), device=device)
        if sample is not None:
            rows = torch.as_tensor(sample[i], device=device)
            x, y = x[rows], y[rows]
        pending.append((x, y))
        frames += x.shape[0]
        bar.update(1)
        if sum(len(x) for x, _ in pending) >= GRAM_ROWS or i == len(train) - 1:
            accumulate()
    mean_x, mean_y = sum_x / frames, sum_y / frames
    # In place: at the real-sized presets' width one (width, width) matrix is 2.7 GB.
    correlation = gram.div_(frames).sub_(torch.outer(mean_x, mean_x))  # the covariance, first
    scale = correlation.diagonal().clamp(min=0).sqrt()
    scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))  # a constant column stays 0
    correlation.div_(scale.unsqueeze(1)).div_(scale.unsqueeze(0))
    target = (cross / frames - torch.outer(mean_x, mean_y)) / scale.unsqueeze(1)

    # Every (readout, penalty) as one (width, C) weight on the raw design row, plus a bias.
    weights = torch.zeros(len(keys), width, classes, dtype=torch.float64, device=device)
    for (stream, pooling), cols in columns.items():
        block, rhs = correlation[cols][:, cols], target[cols]
        diagonal = block.diagonal().clone()
        for lam in LAMBDAS:
            block.diagonal().copy_(diagonal + lam)
            solved = torch.cholesky_solve(rhs, torch.linalg.cholesky(block))
            weights[keys.index((stream, pooling, lam)), cols] = solved / scale[cols].unsqueeze(1)
            bar.update(1)
    biases = mean_y - torch.einsum("d,kdc->kc", mean_x, weights)  # (K, C)

    def scores(videos: Sequence[ProbeVideo], chosen: list[int]) -> Iterator[np.ndarray]:
        """Per video, (len(chosen), T, C) scores in (0, 1) (a logistic squash: the ranks are the readout's)."""
        w = weights[chosen].permute(1, 0, 2).reshape(width, -1)
        for video in videos:
            out = (_design(video, device) @ w).reshape(-1, len(chosen), classes) + biases[chosen]
            bar.update(1)
            yield torch.sigmoid(out).permute(1, 0, 2).float().cpu().numpy()

    def maps(videos: Sequence[ProbeVideo], chosen: list[int]) -> list[tuple[float, float]]:
        per_video = list(scores(videos, chosen))
        labels = [v.labels for v in videos]
        out = []
        for k in range(len(chosen)):
            result = frame_map([s[k] for s in per_video], labels)
            out.append((_percent(result.map_all), _percent(result.map_present)))
        return out

    on_validation = maps(validation, list(range(len(keys))))
    picks = []
    for stream in STREAMS:
        for pooling in POOLINGS:
            curve = {lam: on_validation[keys.index((stream, pooling, lam))][0] for lam in LAMBDAS}
            lam = max(LAMBDAS, key=lambda value: (curve[value], -value))
            picks.append((stream, pooling, lam, curve))
    on_test = maps(test, [keys.index((s, p, lam)) for s, p, lam, _ in picks])
    readouts = [
        Readout(stream, pooling, lam, curve, test_map, present)
        for (stream, pooling, lam, curve), (test_map, present) in zip(picks, on_test, strict=True)
    ]
    bar.close()
    prior = mean_y.cpu().numpy().astype(np.float32)
    prior_map = frame_map([np.broadcast_to(prior, v.labels.shape) for v in test], [v.labels for v in test])
    return ProbeResult(
        readouts=readouts,
        prior_map=_percent(prior_map.map_all),
        train_frames=frames,
        validation_frames=sum(v.labels.shape[0] for v in validation),
        test_frames=sum(v.labels.shape[0] for v in test),
        sampled=sample is not None,
    )


def _percent(value: float) -> float:
    """A fraction as a percentage (NaN stays NaN: mAP over the present classes of a split with none)."""
    return 100.0 * value


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined mAP is written as null."""
    return None if math.isnan(value) else value


def _split_videos(
    root: str | os.PathLike, split: str, validation_fraction: float, seed: int
) -> list[ProbeVideo]:
    data = DenseActionDataset(root, split, train=False, validation_fraction=validation_fraction, seed=seed)
    return [ProbeVideo(v["video"], v["image"], v["labels"]) for v in data.videos]


def probe_dataset(
    root: str | os.PathLike,
    validation_fraction: float = 0.1,
    seed: int = 0,
    device: str | torch.device = "cpu",
    train_frames: int | None = None,
    progress: bool | None = False,
) -> ProbeResult:
    """:func:`ridge_probe` of a dataset folder's splits, the validation carve-out of a run with
    ``data.validation_fraction`` and ``run.seed`` as given."""
    if not 0 < validation_fraction < 1:
        raise ValueError(
            f"validation_fraction: the probe needs a validation split, found {validation_fraction!r}"
        )
    train, validation, test = (
        _split_videos(root, split, validation_fraction, seed)
        for split in ("training", "validation", "testing")
    )
    return ridge_probe(train, validation, test, device=device, train_frames=train_frames, progress=progress)
