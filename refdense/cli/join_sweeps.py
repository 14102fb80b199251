"""``refdense join-sweeps``: one sweep from parts of it run on disjoint seeds."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "join-sweeps",
        help="join the sweep.json files of one sweep run on disjoint seeds into one",
        description="Join the sweep.json (or sweep-best.json) files of one sweep whose seeds ran apart (in "
        "other sessions, on other machines: a sweep's runs/ need not travel) into one sweep of all their "
        "seeds: the settings must agree and the seeds must differ; every run's record is kept and the "
        "means, gains and trends are recomputed. Writes OUT/sweep.json, SWEEP.md and sweep.png "
        "(-best with the secondary protocol's files); OUT may be one part's own folder.",
        epilog="example: refdense join-sweeps results/entity_gate/sweep.json runs/more/entity_gate/sweep.json "
        "--out results/entity_gate",
    )
    parser.add_argument("parts", nargs="+", metavar="SWEEP_JSON", help="the parts (at least two)")
    parser.add_argument("--out", required=True, metavar="FOLDER", help="the folder of the joined sweep")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from refdense.experiments.sweep import join_sweeps, sweep_markdown

    path = join_sweeps(args.parts, args.out)
    print(sweep_markdown(json.loads(path.read_text(encoding="utf-8"))))
    print(f"written to {path.parent}")
    return 0
