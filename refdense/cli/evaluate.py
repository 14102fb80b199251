"""``refdense evaluate``: the paper's table for a checkpoint on a dataset split, and its predictions."""

from __future__ import annotations

import argparse
import textwrap


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a dataset split (paper table + predictions npz)",
        description=textwrap.fill(
            "Run a trained checkpoint over every video of a dataset split (whole videos), print "
            "the paper's metrics (per-frame mAP; action-conditional mAP_ac, F1_ac, P_ac, R_ac at tau 0 and "
            "20) and write the predictions as an npz that `refdense metrics` reads.",
            width=88,
        ),
        epilog="example:\n  refdense evaluate runs/synthetic/checkpoints/best.pt   # writes runs/synthetic/"
        "predictions-test.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "checkpoint", help="a checkpoint written by `refdense train` (e.g. RUN/checkpoints/best.pt)"
    )
    parser.add_argument(
        "--dataset", help="dataset folder or synthetic preset (default: the one it was trained on)"
    )
    parser.add_argument(
        "--split",
        default="testing",
        choices=("training", "validation", "testing"),
        help="which videos (default: %(default)s; validation is the run's own carve-out)",
    )
    parser.add_argument(
        "--out",
        help="predictions file to write (default, in the checkpoint's run directory: "
        "predictions-test.npz for the checkpoint the run tests on the test split (best.pt, or latest.pt "
        "with run.test_checkpoint: last), the file `refdense train` wrote; predictions-val.npz / "
        "-train.npz for the other splits; predictions-test-latest.npz for latest.pt and "
        "predictions-test-best.npz for best.pt when the run tests the other one; predictions-test-on-NAME.npz for a --dataset NAME other than the run's own, "
        "so that the run's results.md and predictions-test.npz always agree; a checkpoint outside "
        "a run's checkpoints/ folder needs --out)",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from refdense.train import evaluate

    checkpoint = Path(args.checkpoint)
    result = evaluate(checkpoint, args.out, dataset=args.dataset, split=args.split, device=args.device)
    print(f"{checkpoint} (epoch {result.epoch}) on the {args.split} split of {result.dataset} (values in %):")
    print(result.table.to_markdown())
    print(f"predictions written to {result.predictions}")
    return 0
