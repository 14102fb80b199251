"""Many runs of a sweep or an ablation at once: worker processes here, or one Slurm job per run.

``refdense ablate`` and ``refdense sweep`` list their runs (a :class:`TrainConfig` and a run
directory each) and hand them to :func:`fit_runs`, which makes sure every one is fitted
(:func:`fit`) and returns their test predictions, in the order given:

- ``local``, one job: in this process, one run after another (with ``threads`` torch threads
  when given).
- ``local``, ``jobs=N``: up to N runs at once, each in its own process with ``threads`` torch
  threads (default: this process's cores divided by N); with ``run.device=cuda`` they share the
  GPU. A run's output goes to ``<run>/fit.log``; a run that fails is reported with that log when
  all others have ended, and they go on meanwhile.
- ``slurm`` (submitit, ``pip install refdense[cluster]``): one Slurm job per run, submitted as one
  job array (at most ``jobs`` at once when given), logs under the given folder. The command
  waits for the jobs. A job stopped by its time limit or by preemption is requeued by Slurm and
  resumes from the run's last checkpoint.

Each run's numbers come from its own seed, so they are the same whichever way it ran, as long as
it trains with the same number of torch threads (floating-point sums may differ in the last
bits between thread counts) on the same kind of device.

Starting again is safe: a run already finished is reused without starting anything, and one that
another process is fitting (its ``fit.lock`` held, e.g. a Slurm job of an interrupted command) is
waited for rather than started twice.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from refdense.io import LockedError, exclusive_lock, output_folder
from refdense.progress import Progress, progress_bar
from refdense.threads import torch_threads
from refdense.train.checkpoint import LATEST_FILE
from refdense.train.config import TrainConfig, load_config
from refdense.train.evaluate import predictions_path
from refdense.train.history import read_history, stalled
from refdense.train.loop import fixed_keys_changed, train

LAUNCHERS = ("local", "slurm")
POLL_SECONDS = 2.0
Run = tuple[TrainConfig, Path]
"""One run: its configuration and its run directory."""


@dataclasses.dataclass(frozen=True)
class Launch:
    """How :func:`fit_runs` runs the runs (module docstring).

    Attributes:
        launcher: ``"local"`` or ``"slurm"``.
        jobs: the most runs at once (local default 1; Slurm default: all).
        threads: torch threads of each local run (default: cores // jobs, at least 1; one job:
            this process's number).
        slurm_partition: the partition (default: the cluster's).
        slurm_gpus_per_job, slurm_cpus_per_job: resources of each job (its torch threads: the CPUs).
        slurm_time: each job's time limit in minutes.
        slurm_mem: each job's memory in Slurm's notation, e.g. ``"8G"`` (default: the cluster's).
    """

    launcher: str = "local"
    jobs: int | None = None
    threads: int | None = None
    slurm_partition: str | None = None
    slurm_gpus_per_job: int = 0
    slurm_cpus_per_job: int = 1
    slurm_time: int = 60
    slurm_mem: str | None = None

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ValueError(f"launcher: expected one of {', '.join(LAUNCHERS)}, found {self.launcher!r}")
        for name in ("jobs", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: expected at least 1, found {value}")
        if self.slurm_gpus_per_job < 0 or self.slurm_cpus_per_job < 1 or self.slurm_time < 1:
            raise ValueError(
                "slurm: expected gpus per job >= 0, cpus per job >= 1 and a time limit >= 1 minute, found "
                f"{self.slurm_gpus_per_job}, {self.slurm_cpus_per_job}, {self.slurm_time}"
            )


def fit(config: TrainConfig, run_dir: Path) -> Path:
    """Train ``config`` in ``run_dir`` unless it is already done there; return its test predictions file.

    A finished run (:func:`finished`) is reused; one that trained fewer epochs than ``optim.epochs``
    asks (and was not stopped by ``run.patience``) is trained on; an interrupted run is resumed.
    One process per run (no ``torchrun``); processes that fit the same run directory wait for each
    other (a lock on ``fit.lock``, released when its holder ends in any way).
    """
    run_dir = output_folder(run_dir, "train")
    with exclusive_lock(run_dir / "fit.lock", f"run directory {run_dir}", wait=True):
        if not finished(config, run_dir):
            train(config, run_dir, resume=(run_dir / "checkpoints" / LATEST_FILE).is_file(), progress=False)
    return predictions_path(run_dir, "testing")


def finished(config: TrainConfig, run_dir: Path) -> bool:
    """Whether :func:`fit` would reuse ``run_dir`` as it is: a finished run that trained ``optim.epochs``
    epochs or was stopped early by ``run.patience``.

    A finished run made with another configuration (other than :data:`refdense.train.loop.RESUMABLE_CHANGES`),
    or with more epochs than asked, is an error.
    """
    if not (run_dir / "results.json").is_file():
        return False
    history = read_history(run_dir)
    changed = fixed_keys_changed(load_config(run_dir / "config.yaml"), config)
    if changed:
        raise ValueError(
            f"{run_dir}: a finished run made with another configuration ({', '.join(changed)} "
            "differ); remove it or choose another output folder"
        )
    if len(history) > config.optim.epochs:
        raise ValueError(
            f"{run_dir}: a finished run of {len(history)} epochs, more than the "
            f"{config.optim.epochs} asked; remove it or ask for at least {len(history)}"
        )
    return len(history) >= config.optim.epochs or stalled(history, config.run.patience, config.run.min_epochs)


class RunsFailed(ValueError):
    """Some runs did not finish; the message names each with its log."""


def _state(config: TrainConfig, run_dir: Path) -> str:
    """``"finished"`` (:func:`fit` would reuse it), ``"locked"`` (another process fits it) or ``"todo"``."""
    run_dir = output_folder(run_dir, "train")
    try:
        with exclusive_lock(run_dir / "fit.lock", f"run directory {run_dir}"):
            return "finished" if finished(config, run_dir) else "todo"
    except LockedError:
        return "locked"


def fit_runs(
    runs: Sequence[Run],
    launch: Launch = Launch(),
    *,
    slurm_folder: Path,
    desc: str,
    progress: bool | None = None,
) -> list[Path]:
    """Fit every run (module docstring); return each run's test predictions file, in order.

    ``slurm_folder``: where Slurm jobs write their logs and submitit its files. Raises
    :class:`RunsFailed` when a run did not finish (the others are fitted first).
    """
    bar = progress_bar(len(runs), desc=desc, unit="run", enabled=progress)
    try:
        if launch.launcher == "slurm":
            failures = _slurm(runs, launch, slurm_folder, bar)
        elif (launch.jobs or 1) == 1:
            failures = []
            with torch_threads(launch.threads):
                for config, run_dir in runs:
                    fit(config, run_dir)
                    bar.update(1)
        else:
            failures = _local(runs, launch, bar)
    finally:
        bar.close()
    if failures:
        raise RunsFailed(f"{len(failures)} of {len(runs)} runs failed:\n" + "\n".join(failures))
    return [predictions_path(run_dir, "testing") for _, run_dir in runs]


def _show(bar: Progress, running: int, left: int) -> None:
    bar.set_postfix_str(f"{running} running, {left} left")


def _worker(config: TrainConfig, run_dir: Path, threads: int, log: Path) -> None:
    """A local worker process: its output to ``log``, ``threads`` torch threads, one :func:`fit`."""
    import torch

    with open(log, "a", encoding="utf-8") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    torch.set_num_threads(threads)
    fit(config, run_dir)


def _local(runs: Sequence[Run], launch: Launch, bar: Progress) -> list[str]:
    jobs = launch.jobs or 1
    threads = launch.threads or max(1, len(os.sched_getaffinity(0)) // jobs)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state copied from here
    waiting: list[Run] = []
    for config, run_dir in runs:
        if _state(config, run_dir) == "finished":
            bar.update(1)
        else:
            waiting.append((config, run_dir))
    running: dict[Any, tuple[Any, Path]] = {}  # sentinel -> (process, run directory)
    failures: list[str] = []
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                config, run_dir = waiting.pop(0)  # its folder made by _state
                process = context.Process(
                    target=_worker, args=(config, run_dir, threads, run_dir / "fit.log")
                )
                process.start()
                running[process.sentinel] = (process, run_dir)
            _show(bar, len(running), len(waiting))
            for sentinel in wait(list(running)):
                process, run_dir = running.pop(sentinel)
                process.join()
                if process.exitcode != 0:
                    failures.append(f"{run_dir}: exit code {process.exitcode}, log {run_dir / 'fit.log'}")
                bar.update(1)
        _show(bar, 0, 0)
    finally:  # interrupted: stop the workers (each run resumes from its checkpoint next time)
        for process, _ in running.values():
            process.terminate()
            process.join()
    return failures


class SlurmFit:
    """What a Slurm job runs: :func:`fit` of one run; submitit requeues it when the job is stopped."""

    def __init__(self, config: TrainConfig, run_dir: Path, threads: int) -> None:
        self.config, self.run_dir, self.threads = config, run_dir, threads

    def __call__(self) -> str:
        import torch

        torch.set_num_threads(self.threads)
        return str(fit(self.config, self.run_dir))

    def checkpoint(self) -> Any:
        """Called by submitit on a time limit or preemption: the same call again, which resumes the run."""
        import submitit

        return submitit.helpers.DelayedSubmission(self)


def _slurm(runs: Sequence[Run], launch: Launch, folder: Path, bar: Progress) -> list[str]:
    try:
        import submitit
    except ImportError:
        raise ValueError("--launcher slurm needs submitit: pip install 'refdense[cluster]'") from None
    states = [_state(config, run_dir) for config, run_dir in runs]
    todo = [run for run, state in zip(runs, states) if state == "todo"]
    locked = [run for run, state in zip(runs, states) if state == "locked"]
    bar.update(states.count("finished"))
    jobs = []
    if todo:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(
            name="refdense",
            timeout_min=launch.slurm_time,
            cpus_per_task=launch.slurm_cpus_per_job,
            slurm_array_parallelism=launch.jobs or len(todo),
            **({"gpus_per_node": launch.slurm_gpus_per_job} if launch.slurm_gpus_per_job else {}),
            **({"slurm_partition": launch.slurm_partition} if launch.slurm_partition else {}),
            **({"slurm_mem": launch.slurm_mem} if launch.slurm_mem else {}),
        )
        with executor.batch():
            for config, run_dir in todo:
                jobs.append(executor.submit(SlurmFit(config, run_dir, launch.slurm_cpus_per_job)))
        print(f"submitted {len(jobs)} Slurm jobs, logs in {folder}", file=sys.stderr)
    failures: list[str] = []
    pending = list(zip(jobs, todo))
    while pending or locked:
        _show(bar, len(pending) + len(locked), 0)
        time.sleep(POLL_SECONDS)
        for job, (config, run_dir) in [p for p in pending if p[0].done()]:
            pending.remove((job, (config, run_dir)))
            error: BaseException | None
            try:
                error = job.exception()
            except Exception as lost:  # no result file: killed, or never started
                error = lost
            if error is not None or _state(config, run_dir) != "finished":
                failures.append(f"{run_dir}: Slurm job {job.job_id} {job.state}, log {job.paths.stderr}")
            bar.update(1)
        for config, run_dir in list(locked):
            state = _state(config, run_dir)
            if state != "locked":
                locked.remove((config, run_dir))
                if state != "finished":
                    failures.append(f"{run_dir}: another process stopped fitting it; run the command again")
                bar.update(1)
    return failures
