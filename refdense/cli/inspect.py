"""``refdense inspect``: label statistics of a dataset folder, per subset, and the annotation fixes."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="print label statistics of a dataset (and how it was prepared)",
        description="Print, per subset, the number of videos and segments, durations, instances per "
        "video, instance duration percentiles, label density (mean active classes per segment), share "
        "of segments with >= 2 active classes, class-frequency skew, and what the clean-up finds when "
        "loading. For a folder written by `refdense prepare`, first what the preparation fixed and left "
        "out (prepare-report.json, which lists every fix by video and instance). Reads the feature "
        "shapes, not the feature values.",
    )
    parser.add_argument("dir", help="dataset folder (with dataset.json, annotations.json, features.h5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from refdense.data import dataset_statistics, format_statistics, read_info
    from refdense.prepare.prepare import REPORT_FILE, read_prepare_report, summarize_prepare_report

    info = read_info(args.dir)
    stats = dataset_statistics(args.dir)
    prepared = read_prepare_report(args.dir)
    if args.json:
        print(
            json.dumps(
                {
                    "name": info.name,
                    "source": info.source,
                    "splits": {s: v.to_dict() for s, v in stats.items()},
                    "prepare_report": prepared,
                },
                indent=1,
            )
        )
        return 0
    print(
        f"{info.name}: {info.num_classes} classes, {info.num_entities} entities, {info.num_motions} motions, "
        f"streams video {info.video_dim}-d ({info.streams['video'].encoder}) / image {info.image_dim}-d "
        f"({info.streams['image'].encoder}), boundary {info.boundary}"
    )
    if prepared is not None:
        print(f"preparation ({Path(args.dir) / REPORT_FILE}):")
        print("  " + summarize_prepare_report(prepared).replace("\n", "\n  "))
        print("what loading finds (the prepared annotations are already clean):")
    print(format_statistics(stats))
    return 0
