"""``refdense synth``: write a synthetic dense-action dataset (see refdense/synth.py)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic dense-action dataset",
        description="Generate a synthetic dense-action dataset in the refdense format (dataset.json, "
        "annotations.json, features.h5). Actions compose an entity and a motion; the image stream "
        "carries entities, the video stream motions whose identity shows only over several segments. "
        "Same preset and seed give the same bytes.",
    )
    parser.add_argument("--preset", default="default",
                        help="tiny | default | charades-like | multithumos-like (default: %(default)s)")
    parser.add_argument("--out", required=True, help="output folder (must be missing or empty unless --overwrite)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from refdense import synth
    from refdense.cli import CommandError

    if args.preset not in synth.PRESETS:
        raise CommandError(f"--preset: expected one of {sorted(synth.PRESETS)}, found {args.preset!r}")
    started = time.perf_counter()
    try:
        out = synth.generate(args.preset, args.out, seed=args.seed, overwrite=args.overwrite)
    except FileExistsError as error:
        raise CommandError(str(error)) from None
    print(f"wrote {out} (preset {args.preset}, seed {args.seed}) in {time.perf_counter() - started:.1f} s")
    return 0
