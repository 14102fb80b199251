"""``refdense metrics``: the paper's table (per-frame mAP; mAP_ac, F1_ac, P_ac, R_ac per tau) for a
predictions file."""

from __future__ import annotations

import argparse
import json

EPILOG = """The file holds `scores` and `labels` with `lengths` (V,), the number of segments of each video:
either concatenated (N, C) arrays, the videos one after the other (as written by
refdense.metrics.write_predictions or `refdense evaluate`), or padded (V, T, C) arrays; `video_ids` (V,)
is optional. Scores are probabilities in [0, 1], not logits. Nothing in the file is unpickled: a file
holding Python objects (object arrays) is refused.

examples:
  refdense metrics runs/charades/predictions.npz
  refdense metrics predictions.npz --taus 0 20 40 --threshold 0.5 --json > table.json"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "metrics",
        help="per-frame mAP and action-conditional metrics of a predictions .npz",
        description="Print the table the papers report: per-frame mAP (all classes, and classes with a "
        "positive) and, for each tau, the action-conditional mAP_ac, F1_ac, P_ac and R_ac (percent).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("predictions", metavar="PRED.npz", help="predictions file (scores and labels)")
    parser.add_argument(
        "--taus",
        type=int,
        nargs="+",
        default=[0, 20],
        metavar="TAU",
        help="windows in segments for the action-conditional metrics (default: 0 20)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="a segment is predicted positive iff score >= threshold (default: 0.5)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print JSON instead: {"frame_map", "frame_map_present", "tau_0": {"mAP_ac", "F1_ac", "P_ac", '
        '"R_ac", "pairs"}, ...}, in percent (null where undefined)',
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from refdense.metrics import paper_table, read_predictions

    predictions = read_predictions(args.predictions)
    table = paper_table(predictions.scores, predictions.labels, taus=args.taus, threshold=args.threshold)
    if args.json:
        print(json.dumps(table.to_dict(), indent=2))
    else:
        videos, frames = len(predictions.scores), sum(len(s) for s in predictions.scores)
        classes = predictions.scores[0].shape[1]
        print(
            f"{args.predictions}: {videos} videos, {frames} segments, {classes} classes; "
            f"threshold {args.threshold:g}; pairs kept: "
            + ", ".join(f"tau={tau}: {ac.pairs}" for tau, ac in table.conditional.items())
        )
        print(table.to_markdown())
    return 0
