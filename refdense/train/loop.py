"""The training loop: ``train(config, run_dir)`` is the one entry point (CLI, notebook, demo, ablate).

Read it top to bottom; it is the loop of notebook 09. One epoch is::

    for batch in loader:                       # random windows of T segments, padded + mask
        output = model(video, image, mask)     # DetectionOutput: logits (B, T, C), features
        loss = criterion(output, batch)        # BCE on actions (+ entities, motions) + CoLV
        loss.backward(); optimizer.step()

and after each epoch the model predicts every validation video in full, the per-frame mAP picks
the best epoch, and two checkpoints are written (``latest.pt`` to resume, ``best.pt`` to
evaluate). At the end the best checkpoint is evaluated on the test split.

Reproducibility (what makes resume exact): the random state of an epoch is derived from
``(run.seed, epoch, rank)`` at the start of the epoch, and the shuffling from ``(run.seed, epoch)``;
nothing random carries from one epoch to the next except the weights and the optimizer. So a run
resumed from the checkpoint of epoch k continues exactly like the uninterrupted run (bit for bit
on CPU), with nothing but the epoch number to restore besides the state dicts.

Files of a run directory (only rank 0 writes)::

    run.lock                 held (``fcntl.flock``) by the one process training into the directory
    config.yaml              the resolved configuration
    metrics.jsonl            one JSON record per epoch: epoch, lr, train (mean loss terms), steps,
                             train_seconds, val (validation mAP, when validated), seconds (in all)
    checkpoints/latest.pt    everything needed to resume (weights, optimizer, scheduler, epoch)
    checkpoints/best.pt      weights of the epoch with the best validation mAP
    predictions-test.npz     test-split predictions of the best checkpoint (``refdense metrics`` reads it)
    results.json, results.md the test table and which checkpoint produced it
    plots/loss.png, plots/val_map.png
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from refdense.data import DenseActionDataset, collate
from refdense.io import atomic_write, exclusive_lock
from refdense.metrics import PaperTable
from refdense.progress import progress_bar
from refdense.train import distributed
from refdense.train.checkpoint import load_checkpoint, restore, save_checkpoint
from refdense.train.components import (
    autocast,
    build_criterion,
    build_detector,
    build_optimizer,
    check_signature,
    dataset_signature,
    open_dataset_dir,
    resolve_precision,
)
from refdense.train.config import ConfigError, TrainConfig, diff, from_dict
from refdense.train.evaluate import predict_split, predictions_path, score_and_save, validation_map
from refdense.train.report import data_summary, table_summary, write_run_files

# Keys that may change when a run is resumed: they do not change what is computed.
RESUMABLE_CHANGES = {"optim.epochs", "run.device", "run.num_workers", "run.compile", "run.eval_every",
                     "run.log_every", "data.text_weights"}
LOCK_FILE = "run.lock"


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stops and the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What :func:`train` returns (everything is also in the run directory)."""

    run_dir: Path
    history: list[dict]  # one record per epoch, as in metrics.jsonl
    checkpoint: Path  # the checkpoint evaluated on the test split
    checkpoint_epoch: int  # ... and its epoch (1-based)
    test: PaperTable | None  # None when the dataset has no test videos
    predictions: Path | None  # predictions-test.npz


class TrainingStep(nn.Module):
    """The model and its criterion as one module, so that DDP synchronises the gradients of both
    (the criterion owns parameters: the CoLV projections and the optional learnable temperature).

    ``forward(batch, validate=True)``: ``validate=False`` skips the checks of the batch's values (mask
    and labels), which read them back to the host; the training loop's batches are made by
    ``collate`` and are valid by construction."""

    def __init__(self, model: nn.Module, criterion: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.criterion = criterion

    def forward(self, batch, validate: bool = True):
        output = self.model(batch.video, batch.image, batch.mask, validate=validate)
        return self.criterion(output, batch, validate=validate)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers, e.g. ``(seed, epoch, rank)``."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


class SeededWindows(Dataset):
    """A training dataset whose random window of video ``i`` in epoch ``e`` is drawn from a generator
    seeded by ``(seed, e, i)``: the same window whatever the process, worker or resume point.

    Indexed by ``(epoch, index)`` pairs, which :class:`EpochSampler` yields.
    """

    def __init__(self, dataset: DenseActionDataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed
        self.generator = dataset.generator = torch.Generator()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        self.generator.manual_seed(derived_seed(self.seed, epoch, index))
        return self.dataset[index]


class EpochSampler(DistributedSampler):
    """PyTorch's ``DistributedSampler`` (shuffled by ``(seed, epoch)``, this process's share of
    it) yielding ``(epoch, index)`` pairs for :class:`SeededWindows`."""

    def __iter__(self):
        return ((self.epoch, index) for index in super().__iter__())


def seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Seed torch, numpy and ``random`` from ``(seed, epoch, rank)``: dropout masks of this epoch."""
    value = derived_seed(seed, epoch, rank)
    torch.manual_seed(value)
    np.random.seed(value % 2**32)
    random.seed(value)


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train a model as ``config`` says, writing the run into ``run_dir``; return the test results.

    Args:
        config: the run's :class:`TrainConfig`.
        run_dir: the run directory (module docstring); it must not hold a run unless ``resume``.
            One process at a time trains into it: a second one gets :class:`refdense.io.LockedError`
            before anything is written.
        resume: continue the run in ``run_dir`` from ``checkpoints/latest.pt``; ``config`` must
            equal the config stored in that checkpoint except for :data:`RESUMABLE_CHANGES`
            (``optim.epochs`` to train longer).
        progress: progress bars and one line per epoch; None: bars only on a terminal; False: silent.
        on_epoch: called on rank 0 with each epoch's record after its checkpoint is written.

    Under ``torchrun`` every process calls ``train`` with the same arguments.
    """
    run_dir = Path(run_dir)
    if resume and not run_dir.is_dir():
        raise ConfigError(f"cannot resume: {run_dir} does not exist")
    context = distributed.setup(config.run.device)
    try:
        # the run's config records the precision actually used ("auto" resolved on this machine)
        precision = resolve_precision(config.run.precision, context.device)
        config = dataclasses.replace(config, run=dataclasses.replace(config.run, precision=precision))
        lock = exclusive_lock(run_dir / LOCK_FILE, f"run directory {run_dir}") if context.is_main else \
            contextlib.nullcontext()
        with lock:
            return _train(config, run_dir, context, resume, progress, on_epoch)
    finally:
        distributed.teardown(context)


def _train(config, run_dir, context, resume, progress, on_epoch) -> TrainResult:
    quiet = progress is False or not context.is_main
    say = (lambda text: None) if quiet else tqdm.write
    checkpoints = run_dir / "checkpoints"
    resumed = _open_run_dir(config, run_dir, resume)
    if config.optim.batch_size % context.world_size:
        raise ConfigError(f"optim.batch_size ({config.optim.batch_size}) must be divisible by the number "
                          f"of processes ({context.world_size}): it is the global batch")

    # ---- data: random training windows; whole videos for validation and test
    dataset_dir = open_dataset_dir(config.data.dataset)
    split = dict(validation_fraction=config.data.validation_fraction, seed=config.run.seed)
    train_set = SeededWindows(DenseActionDataset(dataset_dir, "training", window=config.data.window, train=True,
                                                 drop_empty=config.data.drop_empty_videos, **split),
                              seed=config.run.seed)
    info = train_set.dataset.info
    val_set = None
    if config.data.validation_fraction > 0:
        val_set = DenseActionDataset(dataset_dir, "validation", train=False, **split)
    test_set = DenseActionDataset(dataset_dir, "testing", train=False, **split)
    say(data_summary(dataset_dir, train_set.dataset, val_set, test_set))
    sampler = EpochSampler(train_set, num_replicas=context.world_size, rank=context.rank,
                           shuffle=True, seed=config.run.seed)
    loader = DataLoader(train_set, batch_size=config.optim.batch_size // context.world_size, sampler=sampler,
                        collate_fn=collate, num_workers=config.run.num_workers,
                        pin_memory=context.device.type == "cuda", persistent_workers=config.run.num_workers > 0)

    # ---- model and criterion (same seed on every process: same initial weights), optimizer
    torch.manual_seed(config.run.seed)
    model = build_detector(config.model, info)
    criterion = build_criterion(config.loss, config.model, info, dataset_dir, config.data.text_encoder,
                                config.data.text_weights)
    step_module = TrainingStep(model, criterion).to(context.device)
    optimizer = build_optimizer(step_module.parameters(), config.optim)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.optim.step_size, gamma=config.optim.gamma)
    history: list[dict] = []
    best = {"epoch": 0, "val_map": -math.inf}
    if resumed is not None:
        latest = checkpoints / "latest.pt"
        check_signature(resumed["dataset"], info, f"checkpoint {latest}")
        for part, target in (("model", model), ("criterion", criterion), ("optimizer", optimizer),
                             ("scheduler", scheduler)):
            restore(target, resumed, part, latest)
        history, best = resumed["history"], resumed["best"]
        say(f"resuming {run_dir} after epoch {resumed['epoch']}")

    runner: nn.Module = step_module
    if context.distributed:
        # Ablations can leave a head out of the loss: its parameters then get no gradient.
        runner = DistributedDataParallel(runner, find_unused_parameters=True)
    if config.run.compile:
        runner = torch.compile(runner)
    if context.is_main:
        config.save(run_dir / "config.yaml")

    # ---- epochs
    for epoch in range(len(history), config.optim.epochs):
        started = time.perf_counter()
        seed_epoch(config.run.seed, epoch, context.rank)
        sampler.set_epoch(epoch)
        train_loss = train_one_epoch(runner, loader, optimizer, config, context, epoch, quiet, checkpoints)
        record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "train": train_loss,
                  "steps": len(loader), "train_seconds": round(time.perf_counter() - started, 2)}
        scheduler.step()
        last = epoch + 1 == config.optim.epochs
        if val_set is not None and ((epoch + 1) % config.run.eval_every == 0 or last):
            val_map = validation_map(model, val_set, context, config.run.precision, False if quiet else None)
            if context.is_main:
                record["val"] = {"map": val_map}
                if val_map > best["val_map"]:
                    best = {"epoch": epoch + 1, "val_map": val_map}
        record["seconds"] = round(time.perf_counter() - started, 2)
        history.append(record)
        _check_finite_weights(step_module, epoch, checkpoints)
        if context.is_main:
            state = {"config": config.to_dict(), "dataset": dataset_signature(info), "epoch": epoch + 1,
                     "model": model.state_dict(), "criterion": criterion.state_dict(), "history": history}
            if best["epoch"] == epoch + 1 or (val_set is None and last):
                save_checkpoint(checkpoints / "best.pt", state | {"best": best})
            save_checkpoint(checkpoints / "latest.pt", state | {
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "best": best})
            _write_history(run_dir, history)
            say(epoch_summary(record, config.optim.epochs, best))
            if on_epoch is not None:
                on_epoch(record)

    # ---- the test split, predicted by the selected checkpoint (rank 0 reads it, all ranks predict)
    chosen = checkpoints / "best.pt"
    state = distributed.broadcast_from_main(context, load_checkpoint(chosen) if context.is_main else None)
    restore(model, state, "model", chosen)
    scores = predict_split(model, test_set, context, config.run.precision, False if quiet else None)
    result = TrainResult(run_dir, history, chosen, int(state["epoch"]), None, None)
    if context.is_main:
        result.predictions = predictions_path(run_dir, "testing")
        result.test = score_and_save(scores, test_set, result.predictions)
        write_run_files(result, config, validated=val_set is not None)
        say(f"test split, {chosen.name} (epoch {result.checkpoint_epoch}): " + table_summary(result.test))
    return result


def train_one_epoch(runner, loader, optimizer, config, context, epoch, quiet, checkpoints) -> dict[str, float]:
    """One pass over the training windows; returns the mean of each loss term over the epoch's steps.

    The steps never wait for the device: the loss terms stay tensors, summed on the device, and are
    read back (and, in a distributed run, all-reduced) once per logging interval of
    ``run.log_every`` steps and at the end of the epoch. A non-finite loss is caught without reading
    it back: from that step on, the fused Adam skips every update (its ``found_inf`` flag), and the end
    of the interval stops with :class:`NonFiniteLossError`, naming the step and its loss terms; no
    weights computed from a non-finite loss are ever kept.
    """
    runner.train()
    device = context.device
    keys: list[str] = []
    totals: list[float] = []  # each term, then the number of steps, summed over the logged intervals
    interval = None  # the same for the current interval, summed on the device
    first_bad = None  # the step index and the values of the first non-finite loss (NaN while there is none)
    stopped = torch.zeros((), device=device)  # 1.0 once a loss was not finite
    step_index = torch.zeros(1, dtype=torch.float64, device=device)  # the step, counted on the device
    optimizer.found_inf = stopped  # read by the fused Adam: it skips the update while this is nonzero
    bar = progress_bar(len(loader), desc=f"epoch {epoch + 1}/{config.optim.epochs}", unit="steps", leave=False,
                       enabled=False if quiet else None)
    try:
        for step, batch in enumerate(loader):
            batch = batch.to(device, non_blocking=True)
            with autocast(device, config.run.precision):
                result = runner(batch, validate=False)
            one = result.total.new_ones(())
            values = torch.stack([result.total.detach(), *result.terms.values(), one]).double()  # (terms + 1,)
            if interval is None:
                keys = ["loss", *result.terms]
                interval = torch.zeros_like(values)
                first_bad = torch.full((len(values) + 1,), math.nan, dtype=torch.float64, device=device)
            newly_bad = ~torch.isfinite(values[0]) & (stopped == 0)
            first_bad = torch.where(newly_bad, torch.cat([step_index, values]), first_bad)
            stopped.copy_(torch.maximum(stopped, newly_bad.float()))
            interval += values
            step_index += 1
            optimizer.zero_grad(set_to_none=True)
            result.total.backward()
            if config.optim.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], config.optim.grad_clip)
            optimizer.step()
            if (step + 1) % config.run.log_every == 0 or step + 1 == len(loader):
                logged = _reduce_interval(context, interval, stopped, first_bad, keys, epoch, checkpoints)
                totals = [a + b for a, b in zip(totals, logged)] if totals else logged
                interval.zero_()
                bar.set_postfix_str(f"loss {totals[0] / totals[-1]:.4f}")
            bar.update()
    finally:
        del optimizer.found_inf
        bar.close()
    means = {key: totals[i] / totals[-1] for i, key in enumerate(keys)}
    return {key: means[key] for key in sorted(means, key=lambda k: (k != "loss", k))}


def _reduce_interval(context, interval, stopped, first_bad, keys, epoch, checkpoints) -> list[float]:
    """The one host synchronisation of a logging interval: ``interval`` (terms, steps) summed over
    the processes, as floats; raises :class:`NonFiniteLossError` when any process met a non-finite loss."""
    *reduced, bad_processes = distributed.all_sum(context, torch.cat([interval, stopped.double().reshape(1)])).tolist()
    if bad_processes > 0:
        bad = first_bad.cpu()
        if math.isnan(bad[0]):
            where = f"epoch {epoch + 1}: the loss is not finite on another process"
        else:
            terms = ", ".join(f"{k} {v:.4g}" for k, v in zip(keys, bad[1:].tolist()))
            where = f"epoch {epoch + 1}, step {int(bad[0]) + 1}: the loss is not finite ({terms})"
        raise NonFiniteLossError(
            f"{where}; training stopped. The last good checkpoint is kept in {checkpoints}. "
            "Try a lower optim.lr, set optim.grad_clip, or run.precision=fp32.")
    return reduced


def _check_finite_weights(module: nn.Module, epoch: int, checkpoints: Path) -> None:
    """A last step can turn weights non-finite with a finite loss; never checkpoint such weights."""
    bad = [name for name, p in module.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise NonFiniteLossError(f"epoch {epoch + 1}: weights became NaN or infinite ({', '.join(bad[:3])}"
                                 f"{', ...' if len(bad) > 3 else ''}); training stopped. The last good checkpoint "
                                 f"is kept in {checkpoints}.")


def epoch_summary(record: dict, epochs: int, best: dict) -> str:
    """``"epoch 3/25  loss 0.4120 (bce_action 0.2011, ...)  val mAP 21.70 (best 21.70 @ 3)  lr 1e-04  9.1 steps/s  12.5 s"``."""
    loss = record["train"]
    terms = ", ".join(f"{k} {v:.4f}" for k, v in loss.items() if k != "loss")
    text = f"epoch {record['epoch']}/{epochs}  loss {loss['loss']:.4f} ({terms})"
    if "val" in record:
        text += f"  val mAP {record['val']['map']:.2f} (best {best['val_map']:.2f} @ {best['epoch']})"
    return text + f"  lr {record['lr']:.0e}  {record['steps'] / record['train_seconds']:.1f} steps/s  {record['seconds']:.1f} s"


# --------------------------------------------------------------------------- run directory


def _open_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> dict | None:
    """The checkpoint to resume from (None for a new run), once ``run_dir`` is known to fit."""
    latest = run_dir / "checkpoints" / "latest.pt"
    if not resume:
        if latest.exists():
            raise ConfigError(f"{run_dir} already holds a run; resume it with --resume {run_dir}, "
                              "or choose another output directory")
        return None
    if not latest.exists():
        raise ConfigError(f"cannot resume: {latest} does not exist (was {run_dir} made by `refdense train`?)")
    state = load_checkpoint(latest, resume=True)
    saved = from_dict(state["config"], source=f"{latest} (its stored config)")
    changed = fixed_keys_changed(saved, config)
    if changed:
        details = "; ".join(f"{key}: {_lookup(saved, key)!r} in the run, {_lookup(config, key)!r} now" for key in changed)
        raise ConfigError(f"cannot resume {run_dir}: its checkpoint was made with another config ({details}). "
                          f"Only {', '.join(sorted(RESUMABLE_CHANGES))} may change when resuming: undo the "
                          f"change in {run_dir / 'config.yaml'} or the --set, or start a new run.")
    return state


def fixed_keys_changed(saved: TrainConfig, config: TrainConfig) -> list[str]:
    """The keys in which ``config`` differs from a run's ``saved`` config, other than those a run may
    change (:data:`RESUMABLE_CHANGES`). Precision is compared as resolved on this machine: a run
    stored before configs recorded the precision chosen says "auto", and a new config may say it too."""
    device = distributed.resolve_device(config.run.device)
    saved, config = (
        dataclasses.replace(c, run=dataclasses.replace(c.run, precision=resolve_precision(c.run.precision, device)))
        for c in (saved, config)
    )
    return [key for key in diff(saved, config) if key not in RESUMABLE_CHANGES]


def _lookup(config: TrainConfig, dotted: str):
    value = config
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value


def _write_history(run_dir: Path, history: list[dict]) -> None:
    with atomic_write(run_dir / "metrics.jsonl") as handle:
        for record in history:
            handle.write(json.dumps(record) + "\n")
