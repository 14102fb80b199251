"""``refdense study``: a registered study's decisions, from the sweeps in its folder."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "study",
        help="decide a registered study's tests from its sweeps (writes STUDY.md and study.png)",
        description="Read the sweep.json files of a study's folder, decide each registered test by its "
        "95%% interval over seeds, and write FOLDER/STUDY.md and FOLDER/study.png.",
        epilog="example: refdense study results",
    )
    parser.add_argument(
        "folder", metavar="FOLDER", help="the folder holding the study's sweeps (e.g. results)"
    )
    parser.add_argument(
        "--plan",
        metavar="FILE",
        help="the YAML file registering the study's tests (default: the first study's, "
        "refdense/experiments/studies/first_edition.yaml)",
    )
    parser.add_argument(
        "--checkpoint",
        choices=("tested", "best"),
        default="tested",
        help="tested (default): the primary protocol's sweep.json files, to STUDY.md and study.png; best: "
        "the secondary protocol's sweep-best.json (refdense sweep ... --checkpoint best), to STUDY-best.md "
        "and study-best.png, labelled descriptive",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from refdense.experiments.study import FIRST_EDITION, load_plan, write_study
    from refdense.experiments.sweep import CHECKPOINTS
    from refdense.extras import available

    print(write_study(args.folder, load_plan(args.plan or FIRST_EDITION), args.checkpoint))
    suffix = CHECKPOINTS[args.checkpoint]
    written = (
        (f"STUDY{suffix}.md", f"study{suffix}.png") if available("matplotlib") else (f"STUDY{suffix}.md",)
    )
    print(f"written to {' and '.join(str(Path(args.folder) / name) for name in written)}")
    return 0
