"""The guards of notebook 09's ``full`` profile: what runs before hours of training start.

- :func:`pick_models`: which of the demo's two runs (RefDense, PAT) to train.
- :func:`require_accelerator`: refuse a CPU unless the learner allowed it.
- :func:`full_dataset`: the dataset folder of a full run: a prepared folder, or a synthetic preset
  named in the parameters cell (generated on first use); a missing one is an error that says how to
  make one.
- :func:`preflight`: time a few training steps and a little validation, and estimate the epoch
  time, the total time and the peak memory before committing to the run.

The notebook only calls these; ``tests/test_course_full_run.py`` tests them.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from refdense.train.config import TrainConfig

if TYPE_CHECKING:
    from refdense.data import Batch

MODEL_CHOICES = {"both": ("RefDense", "PAT"), "refdense": ("RefDense",), "pat": ("PAT",)}
"""``models`` parameter of notebook 09 -> the first word of the demo's run names it keeps."""


def pick_models(configs: dict[str, TrainConfig], models: str) -> dict[str, TrainConfig]:
    """The runs of ``configs`` (display name -> config, as ``demo_configs`` returns) that ``models``
    names: ``"both"``, ``"refdense"`` or ``"pat"``. Raises ValueError for any other value."""
    key = models.strip().lower()
    if key not in MODEL_CHOICES:
        raise ValueError(f"models: expected one of {', '.join(map(repr, MODEL_CHOICES))}, found {models!r}")
    return {name: config for name, config in configs.items() if name.split()[0] in MODEL_CHOICES[key]}


class CPUNotAllowedError(RuntimeError):
    """The full profile was asked to train on a CPU without ``allow_cpu``."""


def require_accelerator(device: torch.device, allow_cpu: bool) -> None:
    """Raise :class:`CPUNotAllowedError` when ``device`` is the CPU and ``allow_cpu`` is False.

    The paper's recipe on a CPU takes hours per Charades epoch: nothing should start it by accident
    (no GPU visible, a wrong environment), so the learner has to say so explicitly.
    """
    if torch.device(device).type == "cpu" and not allow_cpu:
        raise CPUNotAllowedError(
            f"the full profile trains the paper's recipe and found no GPU (device {device}); on a 2-core CPU a "
            "training step of the Charades recipe takes 2-4 s, about 1-1.5 hours per epoch and model, 1-2 days "
            "for 25 epochs of both models. Run it on a machine "
            "with a GPU, or set ALLOW_CPU = True in the parameters cell (REFDENSE_ALLOW_CPU=1) to train on "
            "the CPU anyway; the pre-flight cell then estimates how long it will take."
        )


ONE_SITTING_PRESET = "charades-quarter"
"""The synthetic preset that notebook 09's full profile trains on unless given a dataset: the
Charades recipe on it fits one sitting on one GPU (README, "Run the course")."""


def full_dataset(dataset: str, recipe: str) -> Path:
    """The folder of the full run's dataset, checked before anything trains.

    ``dataset`` is a prepared folder (holding ``dataset.json``) or the name of a synthetic preset,
    which is generated on first use into the data folder, as ``data.dataset`` does for training, and
    announced with its size. An empty ``dataset`` or a folder without ``dataset.json`` raises
    FileNotFoundError saying how to make one (``refdense prepare`` for the real data, a preset name
    for a synthetic stand-in).
    """
    from refdense.data import INFO_FILE
    from refdense.synth import PRESETS, dataset_folder, default_dataset

    how = (
        f"prepare the real dataset with `refdense prepare {recipe} --annotations ... --video-features ... "
        f"--image-features ... --out data/real/{recipe}` (see `refdense prepare --help`) and set dataset to "
        f"that folder, or set dataset to a synthetic preset: {ONE_SITTING_PRESET!r} (one sitting on one GPU) "
        f"or {recipe + '-like'!r} (the real dataset's size), generated on first use"
    )
    if not dataset.strip():
        raise FileNotFoundError(f"the full profile needs a dataset and none was given: {how}")
    if dataset in PRESETS:
        folder = dataset_folder(dataset)
        if not (folder / INFO_FILE).is_file():
            preset = PRESETS[dataset]
            print(
                f"generating the synthetic preset {dataset} ({preset.training} training and {preset.testing} "
                f"test videos, {preset.video_dim}-d and {preset.image_dim}-d features) into {folder}"
            )
        return default_dataset(dataset)
    path = Path(dataset).expanduser()
    if not (path / INFO_FILE).is_file():
        raise FileNotFoundError(
            f"dataset {dataset!r}: no dataset at {path} ({path / INFO_FILE} is missing); " + how
        )
    return path


@dataclass(frozen=True)
class Preflight:
    """What :func:`preflight` measured and what it estimates for one run.

    step_seconds: mean wall time of one training step (after warm-up); steps_per_epoch: training
    steps of an epoch (one window per training video); validation_seconds: one pass over the
    validation videos, scaled from a timed part of them; epoch_seconds and total_seconds: the
    estimates for one epoch and for ``epochs``; peak_memory_bytes and memory_kind: the CUDA
    allocator's peak on a GPU, the process's peak resident memory on a CPU.
    """

    device: str
    step_seconds: float
    steps_per_epoch: int
    validation_seconds: float
    epochs: int
    peak_memory_bytes: int
    memory_kind: str

    @property
    def epoch_seconds(self) -> float:
        return self.step_seconds * self.steps_per_epoch + self.validation_seconds

    @property
    def total_seconds(self) -> float:
        return self.epoch_seconds * self.epochs

    def summary(self) -> str:
        """One line, e.g. ``cuda: 0.21 s/step x 1597 steps + validation 40 s = epoch 6 min; 25 epochs 2.6 h; ...``."""
        return (
            f"{self.device}: {self.step_seconds:.3g} s/step x {self.steps_per_epoch} steps + validation "
            f"{duration(self.validation_seconds)} = epoch {duration(self.epoch_seconds)}; {self.epochs} epoch{'s' * (self.epochs != 1)} "
            f"{duration(self.total_seconds)}; peak memory {self.peak_memory_bytes / 2**30:.2f} GiB "
            f"({self.memory_kind})"
        )


def duration(seconds: float) -> str:
    """``seconds`` in the unit a reader wants: ``"0.3 s"``, ``"42 s"``, ``"6.5 min"``, ``"2.6 h"``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def preflight(
    config: TrainConfig,
    device: str | torch.device,
    steps: int = 3,
    warmup: int = 1,
    validation_segments: int = 4096,
) -> Preflight:
    """Time ``steps`` training steps of ``config`` on ``device`` (after ``warmup`` untimed ones) and
    the prediction of about ``validation_segments`` validation segments; estimate one epoch and the
    whole run (``config.optim.epochs``) from them.

    The model, criterion, batch size, window and precision are the run's (``refdense.train``'s
    own builders); nothing is written and the weights are thrown away. The estimate leaves out the
    checkpoints and the final test prediction (seconds to minutes).
    """
    from refdense.models import predict_full_videos
    from refdense.train.components import autocast, resolve_precision
    from refdense.train.distributed import Context
    from refdense.train.loop import TrainingRun

    device = torch.device(device)
    cuda = device.type == "cuda"
    precision = resolve_precision(config.run.precision, device)
    # the run's own set-up steps (data, model and criterion, optimizer); nothing is written
    run = TrainingRun(config, Path("preflight-not-written"), Context(0, 1, device), quiet=True)
    runner, optimizer, loader = run.step_module, run.optimizer, run.data.loader
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    runner.train()
    batches = iter(_cycle(loader))
    timed = 0.0
    for step in range(warmup + steps):
        batch = next(batches).to(device)
        synchronize()
        started = time.perf_counter()
        with autocast(device, precision):
            loss = runner(batch, validate=False).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize()
        if step >= warmup:
            timed += time.perf_counter() - started

    validation_seconds = 0.0
    val_set = run.data.validation
    if val_set is not None:
        total = sum(val_set.lengths())
        videos, segments = [], 0
        for index in range(len(val_set)):
            if segments >= validation_segments:
                break
            item = val_set[index]
            videos.append((item["video"], item["image"]))
            segments += len(item["video"])
        synchronize()
        started = time.perf_counter()
        with autocast(device, precision):
            predict_full_videos(run.model, videos)
        synchronize()
        validation_seconds = (time.perf_counter() - started) * total / segments

    if cuda:
        peak, kind = torch.cuda.max_memory_allocated(device), "CUDA allocator peak"
    else:
        peak, kind = (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "peak resident memory of this process",
        )
    return Preflight(
        device=str(device),
        step_seconds=timed / steps,
        steps_per_epoch=len(loader),
        validation_seconds=validation_seconds,
        epochs=config.optim.epochs,
        peak_memory_bytes=int(peak),
        memory_kind=kind,
    )


def _cycle(loader: Iterable[Batch]) -> Iterator[Batch]:
    while True:
        yield from loader
