"""``refdense train``: train RefDense (or PAT, or an ablation) from config files; resume a run."""

from __future__ import annotations

import argparse
import textwrap

from refdense.cli.options import add_overrides_option

EXAMPLES = """examples:
  refdense train --config configs/synthetic.yaml
  refdense train --config configs/synthetic.yaml --config configs/ablations/no_colv.yaml --out runs/no-colv
  refdense train --config configs/charades.yaml --set data.dataset=data/real/charades --set optim.lr=3e-4
  refdense train --resume runs/synthetic                        # continue an interrupted run
  refdense train --resume runs/synthetic --set optim.epochs=40  # ... or train it longer
  torchrun --nproc_per_node 4 -m refdense train --config configs/charades.yaml   # 4 GPUs
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model from config files (or resume a run)",
        description=textwrap.fill(
            "Train a dense action detector as the config files say, writing a run directory: "
            "config.yaml (the resolved config), metrics.jsonl (one line per epoch), checkpoints/latest.pt "
            "and best.pt, predictions-test.npz, results.md and plots. The best epoch is chosen on a "
            "validation split carved from the training videos; the test split is evaluated once, at the "
            "end, with that checkpoint. Several GPUs or machines: start it with torchrun.",
            width=88,
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML config; repeat it to layer files (later ones override earlier ones)",
    )
    add_overrides_option(parser, "override one key, e.g. --set optim.lr=3e-4 (the value is read as YAML)")
    parser.add_argument(
        "--out", metavar="RUN_DIR", help="run directory (default: runs/<name of the last config file>)"
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint (same config; "
        "--set optim.epochs=N may extend it)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from refdense.cli import CommandError
    from refdense.io import DiskFullError
    from refdense.train import load_config, train

    try:
        if args.resume:
            if args.out and Path(args.out) != Path(args.resume):
                raise CommandError("--out and --resume name different directories; give only --resume")
            run_dir = Path(args.resume)
            config = load_config(*(args.config or [run_dir / "config.yaml"]), overrides=args.overrides)
        else:
            if not args.config:
                raise CommandError("give at least one --config FILE (see configs/), or --resume RUN_DIR")
            config = load_config(*args.config, overrides=args.overrides)
            run_dir = Path(args.out or Path("runs") / Path(args.config[-1]).stem)
        result = train(config, run_dir, resume=bool(args.resume), progress=False if args.quiet else None)
    except DiskFullError as error:
        resume = (
            f"; then continue the run with `refdense train --resume {run_dir}`"
            if (run_dir / "checkpoints" / "latest.pt").is_file()
            else ""
        )
        raise CommandError(error.strerror + resume) from None
    if result.test is not None and not args.quiet:
        print(f"run written to {run_dir}; test results in {run_dir / 'results.md'}")
    return 0
