"""``refdense inspect``: label statistics of a dataset folder, per subset, and the annotation fixes."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="print label statistics of a dataset",
        description="Print, per subset, the number of videos and segments, durations, instances per "
        "video, instance duration percentiles, label density (mean active classes per segment), share "
        "of segments with >= 2 active classes, class-frequency skew, and the annotation fixes made "
        "(clipped, dropped, merged). Reads the feature shapes, not the feature values.",
    )
    parser.add_argument("dir", help="dataset folder (with dataset.json, annotations.json, features.h5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from refdense.cli import CommandError
    from refdense.data import DatasetError, dataset_statistics, format_statistics, read_info

    try:
        info = read_info(args.dir)
        stats = dataset_statistics(args.dir)
    except DatasetError as error:
        raise CommandError(str(error)) from None
    if args.json:
        print(json.dumps({"name": info.name, "source": info.source,
                          "splits": {s: v.to_dict() for s, v in stats.items()}}, indent=1))
    else:
        print(f"{info.name}: {info.num_classes} classes, {info.num_entities} entities, {info.num_motions} motions, "
              f"streams video {info.video_dim}-d / image {info.image_dim}-d, boundary {info.boundary}")
        print(format_statistics(stats))
    return 0
