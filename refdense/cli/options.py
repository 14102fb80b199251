"""Command-line options that several subcommands share."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from refdense.experiments.launch import Launch


def add_overrides_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides`` (a list of strings)."""
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides", help=help
    )


def add_launch_options(parser: argparse.ArgumentParser) -> None:
    """``--jobs``, ``--threads``, ``--device`` and ``--launcher`` with its ``--slurm-*`` settings
    (:class:`refdense.experiments.launch.Launch`); read them back with :func:`launch_options`."""
    group = parser.add_argument_group("many runs at once (here or on a Slurm cluster)")
    group.add_argument(
        "--jobs",
        type=int,
        help="at most this many runs at once, each in its own process (default: 1; with --launcher slurm: all)",
    )
    group.add_argument(
        "--threads",
        type=int,
        help="torch threads of each run (default: cores / jobs with --jobs, else torch's)",
    )
    group.add_argument(
        "--device", help="run.device of every run, e.g. cuda: with --jobs, the runs share that one GPU"
    )
    group.add_argument(
        "--launcher",
        choices=["local", "slurm"],
        default="local",
        help="local processes, or one Slurm job per run through submitit (default: %(default)s)",
    )
    group.add_argument("--slurm-partition", help="the partition of the jobs (default: the cluster's)")
    group.add_argument("--slurm-gpus-per-job", type=int, default=0, help="GPUs of each job (default: 0)")
    group.add_argument(
        "--slurm-cpus-per-job", type=int, default=1, help="CPUs (torch threads) of each job (default: 1)"
    )
    group.add_argument(
        "--slurm-time", type=int, default=60, help="each job's time limit in minutes (default: 60)"
    )
    group.add_argument("--slurm-mem", help="each job's memory, e.g. 8G (default: the cluster's)")


def launch_options(args: argparse.Namespace) -> tuple[Launch, list[str]]:
    """The :class:`Launch` of :func:`add_launch_options`' options (named as its fields), and
    ``args.overrides`` with ``--device``."""
    import dataclasses

    from refdense.experiments.launch import Launch

    launch = Launch(**{field.name: getattr(args, field.name) for field in dataclasses.fields(Launch)})
    return launch, [*args.overrides, *([f"run.device={args.device}"] if args.device else [])]
