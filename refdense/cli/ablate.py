"""``refdense ablate``: the paper's ablations (Tables 3-7) over several seeds, as one markdown table."""

from __future__ import annotations

import argparse
import textwrap

from refdense.cli.options import add_overrides_option


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ablate",
        help="run the paper's ablations (Tables 3-7) over several seeds",
        description=textwrap.fill(
            "Train every ablation in configs/ablations (sub-networks alone, without sub-labels, "
            "without CoLV, PAT and PAT + CoLV, without cross-attention, and the full RefDense) on a dataset, "
            "once per seed, and write OUT/ABLATIONS.md with the mean and standard deviation of mAP, mAP_ac "
            "and F1_ac (tau = 0) per variant. Two variants that train the same network the same way are "
            "trained once. Finished runs are reused and interrupted ones resumed, so the "
            "command can be stopped and started again.",
            width=88,
        ),
        epilog="examples:\n"
        "  refdense ablate --dataset default --seeds 0 1 2 --out runs/ablations\n"
        "  refdense ablate --dataset tiny --seeds 0 --epochs 2 --only full no_colv --out runs/quick",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dataset", default="default", help="dataset folder or synthetic preset (default: %(default)s)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--epochs", type=int, help="the most epochs per run (default: the base config's)")
    parser.add_argument(
        "--patience", type=int, help="stop a run when its best validation epoch is this many epochs behind"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="VARIANT",
        help="run only these variants (file names in configs/ablations, without .yaml)",
    )
    parser.add_argument("--config", help="base recipe the variants modify (default: configs/synthetic.yaml)")
    add_overrides_option(parser, "override a key in every run, e.g. --set model.dim=64")
    parser.add_argument(
        "--worlds",
        action="store_true",
        help="synthetic presets: seed k also makes the dataset (synth seed k); runs go to "
        "OUT/runs/<dataset>/<variant>/seed<k>, shared with refdense sweep in the same OUT",
    )
    parser.add_argument("--out", default="runs/ablations", help="output folder (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from refdense.train.ablate import BASE, ablate

    report = ablate(
        args.dataset,
        args.out,
        seeds=args.seeds,
        epochs=args.epochs,
        patience=args.patience,
        variants=args.only,
        base=args.config or BASE,
        overrides=args.overrides,
        worlds=args.worlds,
    )
    print(report.read_text())
    print(f"written to {report}")
    return 0
