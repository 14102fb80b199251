"""``refdense probe``: ridge readouts of a dataset's input features, the bound a trained model should beat."""

from __future__ import annotations

import argparse

EPILOG = """Six readouts: the video stream, the image stream and both, each from one segment (frame) and
with a fixed temporal pooling (pooled: also the means over the 2, 4, 8 and 16 segments before and
after). Each is fitted on the training split, its ridge penalty chosen on the validation split (the
carve-out `refdense train` makes with the same --validation-fraction and --seed), and scored with
the per-frame mAP on the test split. The prior row scores every segment with the training class
frequencies.

examples:
  refdense probe default
  refdense probe data/synthetic/default-seed3 --seed 3 --out runs/probe-default-seed3
  refdense probe charades-like --train-frames 100000"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="linear (ridge) readouts of a dataset's features: per-frame test mAP to compare models with",
        description="Print the test per-frame mAP of ridge readouts of each input stream and of both, "
        "single-frame and temporally pooled, each regularised on the validation split.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", metavar="DATASET", help="dataset folder or synthetic preset name")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the validation carve-out, a run's run.seed (default: 0)"
    )
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="share of the training videos carved out as validation, a run's data.validation_fraction "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--train-frames",
        type=int,
        metavar="N",
        help="fit on a seeded uniform sample of N training frames (default: all); validation and test "
        "use every frame. The fit costs frames x width^2: the real-sized presets need it on a CPU",
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    parser.add_argument("--out", metavar="DIR", help="also write DIR/probe.json and DIR/probe.md")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from refdense.experiments.probe import probe_dataset
    from refdense.io import atomic_write
    from refdense.train.components import open_dataset_dir

    root = open_dataset_dir(args.dataset)
    result = probe_dataset(
        root, args.validation_fraction, args.seed, args.device, args.train_frames, progress=None
    )
    record = {"dataset": str(root), "seed": args.seed, "validation_fraction": args.validation_fraction}
    record |= result.to_dict()
    markdown = (
        f"{root}: ridge probes (validation carve-out {args.validation_fraction:g}, seed {args.seed}; "
        f"frames: {result.train_frames} training{' (a sample)' if result.sampled else ''}, "
        f"{result.validation_frames} validation, "
        f"{result.test_frames} test)\n\n{result.to_markdown()}\n"
    )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / "probe.json") as handle:
            json.dump(record, handle, indent=1)
        with atomic_write(out / "probe.md") as handle:
            handle.write(markdown)
    print(json.dumps(record, indent=1) if args.json else markdown, end="" if not args.json else "\n")
    return 0
