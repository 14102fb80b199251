"""``refdense prepare``: official annotations + community features -> a refdense dataset folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from refdense.cli import CommandError

if TYPE_CHECKING:
    from refdense.prepare.decompose import Decomposition

EPILOG = """examples:
  refdense prepare multithumos --annotations multithumos.json \\
      --video-features i3d/ --image-features clip.h5 --out data/real/multithumos
  refdense prepare charades --annotations Charades/Charades_v1_train.csv Charades/Charades_v1_test.csv \\
      --classes Charades/Charades_v1_classes.txt --video-features charades_i3d/ \\
      --image-features charades_clip.h5 --out data/real/charades
  refdense prepare tsu --annotations smarthome_CS_51.json --classes Action_list \\
      --decomposition tsu-decomposition.json --video-features tsu_i3d/ --image-features tsu_clip.h5 --out data/real/tsu

Both feature streams are required (I3D video features, CLIP image features: see
`refdense extract-features`). A report of everything fixed or left out is printed and saved as
prepare-report.json in the output folder."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="convert official annotations and features of Charades, MultiTHUMOS or TSU into a dataset folder",
        description="Read the official annotation files and per-video features of a real dataset, apply "
        "the seconds-to-segment rule and the clean-up rules, and write dataset.json, annotations.json and "
        "features.h5 into --out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", choices=("charades", "multithumos", "tsu"))
    parser.add_argument(
        "--annotations",
        nargs="+",
        required=True,
        metavar="PATH",
        help="super-events JSON (charades.json, multithumos.json), TSU JSON, Charades CSVs, "
        "or the MultiTHUMOS folder of <ClassName>.txt files",
    )
    parser.add_argument(
        "--video-features",
        required=True,
        metavar="DIR_OR_H5",
        help="folder of <video_id>.npy of shape (T', 1, 1, D) or (T', D), or an HDF5 file",
    )
    parser.add_argument(
        "--image-features",
        required=True,
        metavar="DIR_OR_H5",
        help="the same for the image stream (CLIP RN50 of each segment's middle frame)",
    )
    parser.add_argument("--out", required=True, type=Path, help="output dataset folder")
    parser.add_argument(
        "--classes",
        metavar="FILE",
        help="class list (Charades_v1_classes.txt, TSU's Action_list); MultiTHUMOS defaults "
        "to its 65 official names",
    )
    parser.add_argument(
        "--format",
        default="auto",
        choices=("auto", "super-events", "charades-csv", "multithumos-txt", "tsu-json"),
        help="annotation format (default: guessed from the files)",
    )
    base = parser.add_mutually_exclusive_group()
    base.add_argument(
        "--one-based",
        dest="one_based",
        action="store_true",
        default=None,
        help="class ids of the JSON start at 1 (default for multithumos)",
    )
    base.add_argument(
        "--zero-based",
        dest="one_based",
        action="store_false",
        help="class ids of the JSON start at 0 (default for charades and tsu)",
    )
    parser.add_argument(
        "--decomposition",
        metavar="FILE|none",
        help="decomposition JSON (from `refdense decompose`), or 'none' for no entity/motion "
        "labels; default: the shipped one for multithumos, the official mapping files "
        "beside the class list for charades",
    )
    parser.add_argument(
        "--fps",
        type=float,
        help="frame rate of the source videos (default 24 charades, 30 multithumos, 20 tsu); "
        "gives the durations for the MultiTHUMOS per-class files",
    )
    parser.add_argument(
        "--segment-frames", type=int, default=8, help="frames per feature segment (default 8)"
    )
    parser.add_argument(
        "--boundary",
        choices=("strict", "inclusive"),
        default="strict",
        help="seconds-to-segment rule: strict s < t < e (PAT, MS-TCT; default) or inclusive (MLAD)",
    )
    parser.add_argument(
        "--dtype",
        choices=("float16", "float32"),
        default="float16",
        help="storage type of the features (default float16)",
    )
    parser.add_argument(
        "--length-tolerance",
        type=int,
        default=2,
        metavar="N",
        help="streams of one video differing by at most N segments are truncated to the "
        "shorter; more leaves the video out (default 2)",
    )
    parser.add_argument(
        "--drop-empty-training",
        action="store_true",
        help="leave out training videos without actions (as PAT does); testing ones are kept",
    )
    parser.add_argument("--video-encoder", default="i3d", help="name of the video encoder, for dataset.json")
    parser.add_argument(
        "--image-encoder", default="clip-rn50", help="name of the image encoder, for dataset.json"
    )
    parser.set_defaults(func=run)


def _decomposition(args: argparse.Namespace, raw_classes_file: str | Path | None) -> Decomposition | None:
    from refdense.prepare.decompose import charades_decomposition, read_decomposition, shipped_decomposition

    if args.decomposition == "none":
        return None
    if args.decomposition:
        return read_decomposition(args.decomposition)
    if args.dataset == "multithumos":
        return shipped_decomposition("multithumos")
    if args.dataset == "charades" and raw_classes_file is not None:
        folder = Path(raw_classes_file).parent
        mapping, objects, verbs = (
            folder / f"Charades_v1_{kind}.txt" for kind in ("mapping", "objectclasses", "verbclasses")
        )
        if all(f.exists() for f in (mapping, objects, verbs)):
            return charades_decomposition(mapping, objects, verbs, raw_classes_file)
    raise CommandError(
        f"{args.dataset}: no decomposition found; give --decomposition FILE (made with "
        "`refdense decompose`) or --decomposition none"
    )


def run(args: argparse.Namespace) -> int:
    from refdense.prepare.formats import read_raw_annotations
    from refdense.prepare.prepare import DEFAULT_FPS, prepare_dataset

    classes_file = args.classes
    if classes_file is None and args.dataset == "charades":
        first = Path(args.annotations[0])
        candidate = (first if first.is_dir() else first.parent) / "Charades_v1_classes.txt"
        classes_file = candidate if candidate.exists() else None
    raw = read_raw_annotations(
        args.dataset,
        args.annotations,
        classes_file=classes_file,
        fmt=args.format,
        one_based=args.one_based,
    )
    decomposition = _decomposition(args, classes_file)
    report = prepare_dataset(
        raw,
        args.video_features,
        args.image_features,
        args.out,
        decomposition=decomposition,
        name=args.dataset,
        fps=args.fps or DEFAULT_FPS[args.dataset],
        segment_frames=args.segment_frames,
        boundary=args.boundary,
        dtype=args.dtype,
        length_tolerance=args.length_tolerance,
        drop_empty_training=args.drop_empty_training,
        video_encoder=args.video_encoder,
        image_encoder=args.image_encoder,
    )
    print(report.summary())
    if decomposition is not None:
        print("decomposition:", decomposition.summary())
    print(f"dataset written to {args.out}")
    return 0
