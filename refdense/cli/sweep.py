"""``refdense sweep``: a component's gain against one mechanism dial of the synthetic data, over seeds."""

from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING, Any

from refdense.cli.options import add_launch_options, add_overrides_option, launch_options

if TYPE_CHECKING:
    from refdense.synth import Dials


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="measure a component's gain against one mechanism dial of the synthetic data",
        description=textwrap.fill(
            'For each value of one dial of the synthetic generator (data/README.md, "Mechanism dials") and each '
            "seed, build the dataset (cached in the data folder's synthetic/) and train each variant (files in configs/ablations) "
            "on it; write OUT/DIAL/sweep.json, SWEEP.md and sweep.png (OUT/DIAL-<fixed dials>/ with --fixed) "
            "with the gain of the full model over each variant (mean and 95% interval over seeds, and its trend "
            "against the dial). A seed makes both the dataset and the run. Finished runs "
            "are reused and interrupted ones resumed, so the command can be stopped and started again.",
            width=88,
        ),
        epilog="examples:\n"
        "  refdense sweep --dial coupling --values 0 0.5 1 --variants full no_cross_attention --out runs/sweeps\n"
        "  refdense sweep --dial rare_share --values 0 0.3 0.6 --variants full no_sub_labels --patience 4 \\\n"
        "      --epochs 20 --out runs/sweeps\n"
        "  refdense sweep --dial text_alignment --values 0 1 --variants full no_colv --fixed train_videos=60 \\\n"
        "      --out runs/sweeps",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dial",
        required=True,
        help="coupling | rare_share | text_alignment | train_videos | held_out | held_out_k (with "
        "--fixed held_out=...) | entity_gate | entangle | text_prior",
    )
    parser.add_argument("--values", type=float, nargs="+", required=True, help="the dial's values")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["full", "no_cross_attention"],
        help="files in configs/ablations, with full, the reference (default: %(default)s)",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds (default: 0 1 2 3 4)"
    )
    parser.add_argument("--preset", default="default", help="synthetic preset (default: %(default)s)")
    parser.add_argument(
        "--fixed",
        action="append",
        default=[],
        metavar="DIAL=VALUE",
        help="another dial held at a value in every dataset, e.g. --fixed train_videos=60",
    )
    parser.add_argument("--epochs", type=int, help="the most epochs per run (default: the base config's)")
    parser.add_argument(
        "--patience", type=int, help="stop a run when its best validation epoch is this many epochs behind"
    )
    parser.add_argument("--config", help="base recipe the variants modify (default: configs/synthetic.yaml)")
    add_overrides_option(parser, "override a key in every run, e.g. --set model.dim=64")
    parser.add_argument("--out", default="runs/sweeps", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--checkpoint",
        choices=("tested", "best"),
        default="tested",
        help="tested (default): each run's checkpoint run.test_checkpoint names, training what is missing; "
        "best: the secondary protocol, each finished run's checkpoints/best.pt scored on the test split "
        "(nothing trained; an unfinished run is an error), written to sweep-best.json, SWEEP-best.md, "
        "sweep-best.png",
    )
    add_launch_options(parser)
    parser.set_defaults(func=run)


def parse_fixed(items: list[str]) -> Dials:
    """``["train_videos=60", "rare_cap=3"]`` -> :class:`refdense.synth.Dials`; errors name the item."""
    import dataclasses

    from refdense.synth import WHOLE_DIALS, Dials

    values: dict[str, Any] = {}  # Dials checks the values
    names = [f.name for f in dataclasses.fields(Dials)]
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in names:
            raise ValueError(f"--fixed {item!r}: expected DIAL=VALUE with DIAL one of {', '.join(names)}")
        try:
            values[name] = int(text) if name in WHOLE_DIALS else float(text)
        except ValueError:
            raise ValueError(f"--fixed {item!r}: {text!r} is not a number") from None
    return Dials(**values)


def run(args: argparse.Namespace) -> int:
    from refdense.experiments.ablate import BASE
    from refdense.experiments.sweep import CHECKPOINTS, sweep

    launch, overrides = launch_options(args)
    path = sweep(
        args.dial,
        args.values,
        args.out,
        preset=args.preset,
        variants=args.variants,
        seeds=args.seeds,
        fixed=parse_fixed(args.fixed),
        epochs=args.epochs,
        patience=args.patience,
        base=args.config or BASE,
        overrides=overrides,
        launch=launch,
        checkpoint=args.checkpoint,
    )
    print((path.parent / f"SWEEP{CHECKPOINTS[args.checkpoint]}.md").read_text())
    print(f"written to {path.parent}")
    return 0
