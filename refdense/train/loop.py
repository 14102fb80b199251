"""The training loop: ``train(config, run_dir)`` is the one entry point (CLI, notebook, demo, ablate).

Read it top to bottom; it is the loop of notebook 09. :func:`train` holds the run directory and
runs a :class:`TrainingRun` in steps: ``setup_data``, ``setup_model``, ``setup_optimizer``, then
``restore`` (when resuming), ``fit`` (the epochs, each ending with ``save_checkpoint(epoch)``) and
``test``. One epoch (:func:`train_one_epoch`) is::

    for batch in loader:                       # random windows of T segments, padded + mask
        output = model(video, image, mask)     # DetectionOutput: logits (B, T, C), features
        loss = criterion(output, batch)        # BCE on actions (+ entities, motions) + CoLV
        loss.backward(); optimizer.step()

and after each epoch the model predicts every validation video in full, the per-frame mAP picks
the best epoch, and two checkpoints are written (``latest.pt`` to resume, ``best.pt`` to
evaluate). With ``run.patience`` the loop stops early once the best epoch is that many epochs
behind. At the end the checkpoint ``run.test_checkpoint`` names (``best`` by default, or ``last``)
is evaluated on the test split.

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
    predictions-test.npz     test-split predictions of that checkpoint (``refdense metrics`` reads it)
    predictions-test-composed.npz   the same for the composed readout P_ent * P_mot of RefDense's
                             auxiliary heads (only a RefDense with both heads trained)
    results.json, results.md the test table and which checkpoint produced it
    plots/loss.png, plots/val_map.png
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from refdense.data import DatasetInfo, DenseActionDataset, collate
from refdense.data.dataset import Batch
from refdense.io import exclusive_lock, output_folder, resolve_link
from refdense.losses import RefDenseCriterion
from refdense.metrics import PaperTable
from refdense.models import Detector
from refdense.progress import progress_bar
from refdense.train import distributed
from refdense.train.checkpoint import (
    BEST,
    BEST_FILE,
    CONFIG,
    CRITERION,
    DATASET,
    EPOCH,
    HISTORY,
    LATEST_FILE,
    MODEL,
    OPTIMIZER,
    SCHEDULER,
    Best,
    load_checkpoint,
    restore,
    write_checkpoint,
)
from refdense.train.components import (
    Precision,
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
from refdense.train.evaluate import (
    READOUTS,
    predict_split,
    predictions_path,
    readout_path,
    readout_unavailable,
    score_and_save,
    validation_map,
)
from refdense.train.history import stalled, write_history
from refdense.train.report import data_summary, table_summary, write_run_files
from refdense.train.result import NonFiniteLossError, TrainResult

# Keys that may change when a run is resumed: they do not change what is computed.
RESUMABLE_CHANGES = {
    "optim.epochs",
    "run.patience",
    "run.min_epochs",
    "run.device",
    "run.num_workers",
    "run.compile",
    "run.eval_every",
    "run.log_every",
    "data.text_weights",
}
LOCK_FILE = "run.lock"


class TrainingStep(nn.Module):
    """The model and its criterion as one module, so that DDP synchronises the gradients of both
    (the criterion owns parameters: the CoLV projections and the optional learnable temperature).

    ``forward(batch, validate=True)``: ``validate=False`` skips the checks of the batch's values (mask
    and labels), which read them back to the host; the training loop's batches are made by
    ``collate`` and are valid by construction."""

    def __init__(self, model: Detector, criterion: RefDenseCriterion) -> None:
        super().__init__()
        self.model = model
        self.criterion = criterion

    def forward(self, batch: Batch, validate: bool = True) -> Any:
        output = self.model(batch.video, batch.image, batch.mask, validate=validate)
        return self.criterion(output, batch, validate=validate)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers, e.g. ``(seed, epoch, rank)``."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


class SeededWindows(Dataset):
    """A training dataset whose random window of video ``i`` in epoch ``e`` is drawn from a generator
    seeded by ``(seed, e, i)``: the same window whatever the process, worker or resume point.

    ``dataset`` is a training-mode :class:`DenseActionDataset` built with a ``generator`` of its own
    (``generator=torch.Generator()``), which this class reseeds before each item. Indexed by
    ``(epoch, index)`` pairs, which :class:`EpochSampler` yields.
    """

    def __init__(self, dataset: DenseActionDataset, seed: int) -> None:
        if dataset.generator is None:
            raise ValueError(
                "SeededWindows: build the dataset with a generator of its own "
                "(DenseActionDataset(..., generator=torch.Generator())); it draws from torch's "
                "global generator otherwise, which SeededWindows does not seed"
            )
        self.dataset, self.seed, self.generator = dataset, seed, dataset.generator

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        self.generator.manual_seed(derived_seed(self.seed, epoch, index))
        return self.dataset[index]


class EpochSampler(DistributedSampler):
    """PyTorch's ``DistributedSampler`` (shuffled by ``(seed, epoch)``, this process's share of
    it) yielding ``(epoch, index)`` pairs for :class:`SeededWindows`."""

    def __iter__(self) -> Iterator[tuple[int, int]]:
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
    on_epoch: Callable[[dict], object] | None = None,
) -> TrainResult:
    """Train a model as ``config`` says, writing the run into ``run_dir``; return the test results.

    Args:
        config: the run's :class:`TrainConfig`.
        run_dir: the run directory (module docstring): missing, empty or made by `refdense train`
            (:func:`refdense.io.output_folder`; a symlink is followed), and holding no run unless ``resume``.
            One process at a time trains into it: a second one gets :class:`refdense.io.LockedError`
            before anything is written.
        resume: continue the run in ``run_dir`` from ``checkpoints/latest.pt``; ``config`` must
            equal the config stored in that checkpoint except for :data:`RESUMABLE_CHANGES`
            (``optim.epochs`` to train longer).
        progress: progress bars and one line per epoch; None: bars only on a terminal; False: silent.
        on_epoch: called on rank 0 with each epoch's record after its checkpoint is written.

    Under ``torchrun`` every process calls ``train`` with the same arguments.
    """
    run_dir = resolve_link(Path(run_dir))
    if resume and not run_dir.is_dir():
        raise ConfigError(f"cannot resume: {run_dir} does not exist")
    if not resume and os.environ.get("RANK", "0") == "0":  # under torchrun, the first process claims it
        output_folder(run_dir, "train")
    context = distributed.setup(config.run.device)
    try:
        # the run's config records the precision actually used ("auto" resolved on this machine)
        precision = resolve_precision(config.run.precision, context.device)
        config = dataclasses.replace(config, run=dataclasses.replace(config.run, precision=precision))
        lock = (
            exclusive_lock(run_dir / LOCK_FILE, f"run directory {run_dir}")
            if context.is_main
            else contextlib.nullcontext()
        )
        with lock:
            resumed = _open_run_dir(config, run_dir, resume)
            run = TrainingRun(config, run_dir, context, quiet=progress is False or not context.is_main)
            if resumed is not None:
                run.restore(resumed)
            run.fit(on_epoch)
            return run.test()
    finally:
        distributed.teardown(context)


@dataclass(frozen=True)
class RunData:
    """The data of a run (:meth:`TrainingRun.setup_data`): random training windows, whole videos
    for validation (None when ``data.validation_fraction`` is 0) and test."""

    dataset_dir: Path
    info: DatasetInfo
    train: SeededWindows
    sampler: EpochSampler
    loader: DataLoader
    validation: DenseActionDataset | None
    test: DenseActionDataset


class TrainingRun:
    """One call of :func:`train`, in steps: the constructor sets up the data, the model and the
    optimizer; :meth:`restore` continues from a checkpoint; :meth:`fit` trains the epochs, writing
    a checkpoint after each (:meth:`save_checkpoint`); :meth:`test` predicts the test split with
    the best checkpoint."""

    def __init__(
        self, config: TrainConfig, run_dir: Path, context: distributed.Context, *, quiet: bool
    ) -> None:
        self.config, self.run_dir, self.context, self.quiet = config, run_dir, context, quiet
        self.checkpoints = run_dir / "checkpoints"
        self.data = self.setup_data()
        self.step_module = self.setup_model()
        self.optimizer, self.scheduler = self.setup_optimizer()
        self.history: list[dict] = []
        self.best: Best = {"epoch": 0, "val_map": -math.inf}

    def say(self, text: str) -> None:
        """One line for the reader (rank 0, unless the run is quiet)."""
        if not self.quiet:
            tqdm.write(text)

    @property
    def model(self) -> Detector:
        return self.step_module.model

    @property
    def criterion(self) -> RefDenseCriterion:
        return self.step_module.criterion

    def setup_data(self) -> RunData:
        """The three splits of ``data.dataset`` and the loader of the training windows."""
        config, context = self.config, self.context
        if config.optim.batch_size % context.world_size:
            raise ConfigError(
                f"optim.batch_size ({config.optim.batch_size}) must be divisible by the number "
                f"of processes ({context.world_size}): it is the global batch"
            )
        dataset_dir = open_dataset_dir(config.data.dataset)

        def split(name: str, **mode: Any) -> DenseActionDataset:  # the carve-out of validation is seeded
            return DenseActionDataset(
                dataset_dir,
                name,
                validation_fraction=config.data.validation_fraction,
                seed=config.run.seed,
                **mode,
            )

        windows = split(
            "training",
            window=config.data.window,
            train=True,
            drop_empty=config.data.drop_empty_videos,
            generator=torch.Generator(),
        )
        train_set = SeededWindows(windows, seed=config.run.seed)
        validation = split("validation", train=False) if config.data.validation_fraction > 0 else None
        test = split("testing", train=False)
        self.say(data_summary(dataset_dir, windows, validation, test))
        sampler = EpochSampler(
            train_set, num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=config.run.seed
        )
        loader = DataLoader(
            train_set,
            batch_size=config.optim.batch_size // context.world_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=config.run.num_workers,
            pin_memory=context.device.type == "cuda",
            persistent_workers=config.run.num_workers > 0,
        )
        return RunData(dataset_dir, windows.info, train_set, sampler, loader, validation, test)

    def setup_model(self) -> TrainingStep:
        """The model and its criterion on the run's device, seeded by ``run.seed`` (the same initial
        weights on every process)."""
        config, info = self.config, self.data.info
        torch.manual_seed(config.run.seed)
        model = build_detector(config.model, info)
        criterion = build_criterion(
            config.loss,
            config.model,
            info,
            self.data.dataset_dir,
            config.data.text_encoder,
            config.data.text_weights,
        )
        return TrainingStep(model, criterion).to(self.context.device)

    def setup_optimizer(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.StepLR]:
        """``optim.optimizer`` over the model's and the criterion's parameters, and its step schedule."""
        optim = self.config.optim
        optimizer = build_optimizer(self.step_module.parameters(), optim)
        return optimizer, torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=optim.step_size, gamma=optim.gamma
        )

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state``, the run's ``latest.pt`` (read by :func:`_open_run_dir`)."""
        latest = self.checkpoints / LATEST_FILE
        check_signature(state[DATASET], self.data.info, f"checkpoint {latest}")
        for part, target in (
            (MODEL, self.model),
            (CRITERION, self.criterion),
            (OPTIMIZER, self.optimizer),
            (SCHEDULER, self.scheduler),
        ):
            restore(target, state, part, latest)
        self.history, self.best = state[HISTORY], state[BEST]
        self.say(f"resuming {self.run_dir} after epoch {state[EPOCH]}")

    def fit(self, on_epoch: Callable[[dict], object] | None = None) -> None:
        """Train the epochs not done yet; ``on_epoch`` is called on rank 0 with each epoch's record."""
        config, context, data = self.config, self.context, self.data
        runner: nn.Module = self.step_module
        if context.distributed:
            # Ablations can leave a head out of the loss: its parameters then get no gradient.
            runner = DistributedDataParallel(runner, find_unused_parameters=True)
        if config.run.compile:
            runner = torch.compile(runner)  # type: ignore[assignment]
        if context.is_main:
            config.save(self.run_dir / "config.yaml")
        for epoch in range(len(self.history), config.optim.epochs):
            if stalled(self.history, config.run.patience, config.run.min_epochs):
                self.say(
                    f"early stop after epoch {epoch}: the best validation epoch ({self.best['epoch']}) is "
                    f"{epoch - self.best['epoch']} epochs behind (run.patience {config.run.patience})"
                )
                break
            started = time.perf_counter()
            seed_epoch(config.run.seed, epoch, context.rank)
            data.sampler.set_epoch(epoch)
            train_loss = train_one_epoch(
                runner,
                data.loader,
                self.optimizer,
                context=context,
                epoch=epoch,
                epochs=config.optim.epochs,
                precision=config.run.precision,
                grad_clip=config.optim.grad_clip,
                log_every=config.run.log_every,
                checkpoints=self.checkpoints,
                quiet=self.quiet,
            )
            record = {
                "epoch": epoch + 1,
                "lr": self.optimizer.param_groups[0]["lr"],
                "train": train_loss,
                "steps": len(data.loader),
                "train_seconds": round(time.perf_counter() - started, 2),
            }
            self.scheduler.step()
            last = epoch + 1 == config.optim.epochs
            if data.validation is not None and ((epoch + 1) % config.run.eval_every == 0 or last):
                val_map = validation_map(
                    self.model, data.validation, context, config.run.precision, False if self.quiet else None
                )
                if val_map is not None:  # rank 0
                    record["val"] = {"map": val_map}
                    if val_map > self.best["val_map"]:
                        self.best = {"epoch": epoch + 1, "val_map": val_map}
            record["seconds"] = round(time.perf_counter() - started, 2)
            self.history.append(record)
            _check_finite_weights(self.step_module, epoch, self.checkpoints)
            if context.is_main:
                self.save_checkpoint(epoch + 1)
                write_history(self.run_dir, self.history)
                self.say(epoch_summary(record, config.optim.epochs, self.best))
                if on_epoch is not None:
                    on_epoch(record)

    def save_checkpoint(self, epoch: int) -> None:
        """Write ``latest.pt`` after ``epoch`` (1-based) epochs, and ``best.pt`` when ``epoch`` is the
        best so far (or, without validation, the last); the keys are :mod:`refdense.train.checkpoint`'s."""
        state = {
            CONFIG: self.config.to_dict(),
            DATASET: dataset_signature(self.data.info),
            EPOCH: epoch,
            MODEL: self.model.state_dict(),
            CRITERION: self.criterion.state_dict(),
            HISTORY: self.history,
        }
        last = epoch == self.config.optim.epochs
        if self.best["epoch"] == epoch or (self.data.validation is None and last):
            write_checkpoint(self.checkpoints / BEST_FILE, state | {BEST: self.best})
        write_checkpoint(
            self.checkpoints / LATEST_FILE,
            state
            | {
                OPTIMIZER: self.optimizer.state_dict(),
                SCHEDULER: self.scheduler.state_dict(),
                BEST: self.best,
            },
        )

    def test(self) -> TrainResult:
        """The test split predicted by the checkpoint ``run.test_checkpoint`` names (rank 0 reads it,
        all ranks predict), scored and written with the run's result files; for a RefDense with its
        auxiliary heads trained, also the composed readout and the motion head's own predictions
        (``predictions-test-composed.npz``, ``predictions-test-motion.npz``: ``evaluate.READOUTS``)."""
        chosen = self.checkpoints / (BEST_FILE if self.config.run.test_checkpoint == "best" else LATEST_FILE)
        context = self.context
        state = distributed.broadcast_from_main(context, load_checkpoint(chosen) if context.is_main else None)
        restore(self.model, state, MODEL, chosen)
        quiet = False if self.quiet else None
        scores = predict_split(self.model, self.data.test, context, self.config.run.precision, quiet)
        decomposition = self.data.info.decomposition
        extra = {
            name: predict_split(
                self.model,
                self.data.test,
                context,
                self.config.run.precision,
                quiet,
                readout=readout.readout(decomposition),
            )
            for name, readout in READOUTS.items()
            if readout_unavailable(self.config, name) is None
        }
        table = predictions = None
        tables: dict[str, PaperTable] = {}
        if scores is not None:  # rank 0
            predictions = predictions_path(self.run_dir, "testing")
            table = score_and_save(scores, self.data.test, predictions)
            for name, found in extra.items():
                assert found is not None, "rank 0 receives every readout's predictions"
                path = readout_path(predictions, name)
                tables[name] = score_and_save(found, self.data.test, path, labels_key=READOUTS[name].labels)
        result = TrainResult(
            self.run_dir,
            self.history,
            chosen,
            int(state[EPOCH]),
            table,
            predictions,
            tables.get("composed"),
            tables.get("motion"),
        )
        if table is not None:
            write_run_files(
                result,
                self.config,
                validated=self.data.validation is not None,
                held_out=self.data.info.held_out_classes,
            )
            self.say(f"test split, {chosen.name} (epoch {result.checkpoint_epoch}): " + table_summary(table))
            for name, readout in READOUTS.items():
                self.say(
                    f"{readout.title}: mAP {100 * tables[name].frame_map.map_all:.2f}"
                    if name in tables
                    else f"no {readout.title}: {readout_unavailable(self.config, name)}"
                )
        return result


def train_one_epoch(
    runner: nn.Module,
    loader: DataLoader | Sequence[Batch],
    optimizer: torch.optim.Optimizer,
    *,
    context: distributed.Context,
    epoch: int,
    epochs: int,
    precision: Precision,
    grad_clip: float | None,
    log_every: int,
    checkpoints: Path,
    quiet: bool,
) -> dict[str, float]:
    """One pass over the training windows; returns the mean of each loss term over the epoch's steps.

    Args:
        runner: a :class:`TrainingStep` (possibly wrapped by DDP or ``torch.compile``): ``runner(batch,
            validate=False)`` returns the criterion's result (``total`` and the ``terms``).
        loader: the epoch's batches.
        optimizer: the run's optimizer (:func:`refdense.train.components.build_optimizer`), any kind.
        context: this process's rank, world size and device.
        epoch: the epoch, 0-based, of ``epochs`` in all (progress bar and error messages).
        precision: ``run.precision`` (bf16 autocast or float32).
        grad_clip: ``optim.grad_clip``, the largest gradient norm (None: no clipping).
        log_every: ``run.log_every``, the steps of a logging interval.
        checkpoints: the run's checkpoint folder, named when the loss is not finite.
        quiet: no progress bar.

    The steps never wait for the device: the loss terms stay tensors, summed on the device, and are
    read back (and, in a distributed run, all-reduced) once per logging interval of ``log_every``
    steps and at the end of the epoch. The NaN guard works with any optimizer and asks nothing of it:
    a non-finite loss is flagged on the device without reading it back (the step and its terms are
    recorded), and the end of the interval, at the latest the epoch's last step, stops with
    :class:`NonFiniteLossError` naming them. The steps between the bad one and the end of the
    interval still run, but the epoch never reaches its checkpoint, so no weights computed from a
    non-finite loss are ever kept: ``latest.pt`` and ``best.pt`` stay those of the last good epoch.
    """
    runner.train()
    device = context.device
    keys: list[str] = []
    totals: list[float] = []  # each term, then the number of steps, summed over the logged intervals
    interval = torch.zeros(0)  # the same for the current interval, summed on the device
    first_bad = torch.zeros(
        0
    )  # the step index and the values of the first non-finite loss (NaN while there is none)
    stopped = torch.zeros((), device=device)  # 1.0 once a loss was not finite
    step_index = torch.zeros(1, dtype=torch.float64, device=device)  # the step, counted on the device
    bar = progress_bar(
        len(loader),
        desc=f"epoch {epoch + 1}/{epochs}",
        unit="steps",
        leave=False,
        enabled=False if quiet else None,
    )
    try:
        for step, batch in enumerate(loader):
            batch = batch.to(device, non_blocking=True)
            with autocast(device, precision):
                result = runner(batch, validate=False)
            one = result.total.new_ones(())
            values = torch.stack(
                [result.total.detach(), *result.terms.values(), one]
            ).double()  # (terms + 1,)
            if not keys:
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
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], grad_clip)
            optimizer.step()
            if (step + 1) % log_every == 0 or step + 1 == len(loader):
                logged = _reduce_interval(
                    context, interval, stopped, first_bad, keys=keys, epoch=epoch, checkpoints=checkpoints
                )
                totals = [a + b for a, b in zip(totals, logged)] if totals else logged
                interval.zero_()
                bar.set_postfix_str(f"loss {totals[0] / totals[-1]:.4f}")
            bar.update()
    finally:
        bar.close()
    means = {key: totals[i] / totals[-1] for i, key in enumerate(keys)}
    return {key: means[key] for key in sorted(means, key=lambda k: (k != "loss", k))}


def _reduce_interval(
    context: distributed.Context,
    interval: torch.Tensor,
    stopped: torch.Tensor,
    first_bad: torch.Tensor,
    *,
    keys: list[str],
    epoch: int,
    checkpoints: Path,
) -> list[float]:
    """The one host synchronisation of a logging interval: ``interval`` (terms, steps) summed over
    the processes, as floats; raises :class:`NonFiniteLossError` when any process met a non-finite loss."""
    *reduced, bad_processes = distributed.all_sum(
        context, torch.cat([interval, stopped.double().reshape(1)])
    ).tolist()
    if bad_processes > 0:
        bad = first_bad.cpu()
        if math.isnan(bad[0]):
            where = f"epoch {epoch + 1}: the loss is not finite on another process"
        else:
            terms = ", ".join(f"{k} {v:.4g}" for k, v in zip(keys, bad[1:].tolist()))
            where = f"epoch {epoch + 1}, step {int(bad[0]) + 1}: the loss is not finite ({terms})"
        raise NonFiniteLossError(
            f"{where}; training stopped. The last good checkpoint is kept in {checkpoints}. "
            "Try a lower optim.lr, set optim.grad_clip, or run.precision=fp32."
        )
    return reduced


def _check_finite_weights(module: nn.Module, epoch: int, checkpoints: Path) -> None:
    """A last step can turn weights non-finite with a finite loss; never checkpoint such weights."""
    bad = [name for name, p in module.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise NonFiniteLossError(
            f"epoch {epoch + 1}: weights became NaN or infinite ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}); training stopped. The last good checkpoint "
            f"is kept in {checkpoints}."
        )


def epoch_summary(record: dict, epochs: int, best: Best) -> str:
    """``"epoch 3/25  loss 0.4120 (bce_action 0.2011, ...)  val mAP 21.70 (best 21.70 @ 3)  lr 1e-04  9.1 steps/s  12.5 s"``."""
    loss = record["train"]
    terms = ", ".join(f"{k} {v:.4f}" for k, v in loss.items() if k != "loss")
    text = f"epoch {record['epoch']}/{epochs}  loss {loss['loss']:.4f} ({terms})"
    if "val" in record:
        text += f"  val mAP {record['val']['map']:.2f} (best {best['val_map']:.2f} @ {best['epoch']})"
    return (
        text
        + f"  lr {record['lr']:.0e}  {record['steps'] / record['train_seconds']:.1f} steps/s  {record['seconds']:.1f} s"
    )


# --------------------------------------------------------------------------- run directory


def _open_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> dict[str, Any] | None:
    """The checkpoint to resume from (None for a new run), once ``run_dir`` is known to fit."""
    latest = run_dir / "checkpoints" / LATEST_FILE
    if not resume:
        if latest.exists():
            raise ConfigError(
                f"{run_dir} already holds a run; resume it with --resume {run_dir}, "
                "or choose another output directory"
            )
        return None
    if not latest.exists():
        raise ConfigError(f"cannot resume: {latest} does not exist (was {run_dir} made by `refdense train`?)")
    state = load_checkpoint(latest, resume=True)
    saved = from_dict(state[CONFIG], source=f"{latest} (its stored config)")
    changed = fixed_keys_changed(saved, config)
    if changed:
        details = "; ".join(
            f"{key}: {_lookup(saved, key)!r} in the run, {_lookup(config, key)!r} now" for key in changed
        )
        raise ConfigError(
            f"cannot resume {run_dir}: its checkpoint was made with another config ({details}). "
            f"Only {', '.join(sorted(RESUMABLE_CHANGES))} may change when resuming: undo the "
            f"change in {run_dir / 'config.yaml'} or the --set, or start a new run."
        )
    return state


def fixed_keys_changed(saved: TrainConfig, config: TrainConfig) -> list[str]:
    """The keys in which ``config`` differs from a run's ``saved`` config, other than those a run may
    change (:data:`RESUMABLE_CHANGES`). Precision is compared as resolved on this machine: a run
    stored before configs recorded the precision chosen says "auto", and a new config may say it too."""
    device = distributed.resolve_device(config.run.device)
    saved, config = (
        dataclasses.replace(
            c, run=dataclasses.replace(c.run, precision=resolve_precision(c.run.precision, device))
        )
        for c in (saved, config)
    )
    return [key for key in diff(saved, config) if key not in RESUMABLE_CHANGES]


def _lookup(config: TrainConfig, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value
