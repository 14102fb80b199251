"""``refdense decompose``: entity/motion decompositions of action classes (docs/METHOD.md, section 5)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from refdense.prepare.decompose import Decomposition

EPILOG = """routes:
  refdense decompose charades --mapping Charades_v1_mapping.txt --objects Charades_v1_objectclasses.txt \\
      --verbs Charades_v1_verbclasses.txt --classes Charades_v1_classes.txt --out charades-decomposition.json
  refdense decompose multithumos                       # show the shipped, curated decomposition
  refdense decompose prompt --classes Action_list > prompt.txt      # give prompt.txt to an LLM
  refdense decompose parse --classes Action_list --answer answer.txt --out tsu-decomposition.json
Pass the resulting file to `refdense prepare --decomposition FILE`."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "decompose",
        help="decompose action classes into entities and motions (Charades files, shipped MultiTHUMOS, LLM)",
        description="Build, show or validate the decomposition of each action class into at most one "
        "entity and at most one motion.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    routes = parser.add_subparsers(dest="route", metavar="ROUTE", required=True)
    charades = routes.add_parser("charades", help="from the official Charades mapping files (your copy)")
    charades.add_argument("--mapping", required=True, help="Charades_v1_mapping.txt (lines 'c000 o001 v001')")
    charades.add_argument(
        "--objects", required=True, help="Charades_v1_objectclasses.txt ('o000 None' = no entity)"
    )
    charades.add_argument("--verbs", required=True, help="Charades_v1_verbclasses.txt")
    charades.add_argument("--classes", required=True, help="Charades_v1_classes.txt")
    charades.add_argument("--out", required=True, type=Path, help="decomposition JSON to write")
    shipped = routes.add_parser("multithumos", help="show the package's curated MultiTHUMOS decomposition")
    shipped.add_argument("--out", type=Path, help="also copy it to this file (to edit it)")
    prompt = routes.add_parser("prompt", help="print the LLM prompt for a class list (no network call)")
    prompt.add_argument("--classes", required=True, help="class list file, one class per line")
    prompt.add_argument("--dataset", default="a video dataset", help="words naming the dataset in the prompt")
    parse = routes.add_parser("parse", help="validate an LLM's answer and write the decomposition")
    parse.add_argument("--classes", required=True, help="the class list the prompt was built from")
    parse.add_argument("--answer", required=True, help="text file holding the LLM's answer")
    parse.add_argument("--name", default="llm", help="name stored in the decomposition")
    parse.add_argument("--out", required=True, type=Path, help="decomposition JSON to write")
    parser.set_defaults(func=run)


def _print(decomposition: Decomposition) -> None:
    width = max(len(name) for name in decomposition.classes)
    for c, name in enumerate(decomposition.classes):
        entity, motion = decomposition.entity_of(c) or "-", decomposition.motion_of(c) or "-"
        why = decomposition.rationale[c]
        print(f"{name:<{width}}  {entity:<16} {motion:<20} {why}")


def run(args: argparse.Namespace) -> int:
    from refdense.prepare.decompose import (
        build_decomposition_prompt,
        charades_decomposition,
        parse_decomposition_answer,
        shipped_decomposition,
        write_decomposition,
    )
    from refdense.prepare.formats import read_class_list

    if args.route == "prompt":
        print(
            build_decomposition_prompt([n for _, n in read_class_list(args.classes)], args.dataset),
            end="",
        )
        return 0
    if args.route == "charades":
        decomposition = charades_decomposition(args.mapping, args.objects, args.verbs, args.classes)
    elif args.route == "multithumos":
        decomposition = shipped_decomposition("multithumos")
        _print(decomposition)
    else:
        text = Path(args.answer).read_text(encoding="utf-8")
        decomposition = parse_decomposition_answer(
            text,
            [n for _, n in read_class_list(args.classes)],
            name=args.name,
            source=f"LLM answer {Path(args.answer).name}",
        )
    if getattr(args, "out", None):
        write_decomposition(args.out, decomposition)
        print(f"written {args.out}")
    print(decomposition.summary())
    return 0
