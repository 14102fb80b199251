"""``refdense demo``: the main job: RefDense vs PAT on the synthetic data, with a report."""

from __future__ import annotations

import argparse

from refdense.cli.options import add_overrides_option


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train RefDense and PAT on synthetic data and write runs/demo/REPORT.md",
        description="The main job. Builds the synthetic `default` dataset if it is missing, trains RefDense "
        "(configs/synthetic.yaml) and the PAT baseline on I3D+CLIP features concatenated with the same budget, "
        "evaluates both on the test split with their best validation checkpoint, and writes a report with "
        "the paper-style table side by side, per-class AP, timelines of test videos and the loss curves. "
        "About 10 minutes on 2 CPU cores.",
    )
    parser.add_argument(
        "--out",
        default="runs/demo",
        help="output folder (default: %(default)s): missing, empty or an earlier demo's, whose runs are replaced",
    )
    add_overrides_option(parser, "override a config key for both models, e.g. --set optim.epochs=5")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default: %(default)s; small models gain little from more, and "
        "on a busy machine more threads fight over the cores)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from refdense.experiments.demo import demo

    report = demo(args.out, overrides=tuple(args.overrides), threads=args.threads)
    print(f"report written to {report}")
    return 0
