"""``refdense extract-features``: CLIP RN50 and video-network features per 8-frame segment of raw videos."""

from __future__ import annotations

import argparse
from pathlib import Path

from refdense.cli import CommandError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "extract-features",
        help="extract CLIP image and video features per 8-frame segment from a folder of videos",
        description="Decode each video (PyAV), cut it into 8-frame segments and write video/<id> and "
        "image/<id> (T, D) into an HDF5 file. The image stream is CLIP RN50 of each segment's middle "
        "frame; the video stream is torchvision's S3D (Kinetics-400) or your own I3D features. "
        "Resumable: videos already in the file are skipped; a bad video is reported and skipped.",
        epilog="example:\n  refdense extract-features --videos Charades_v1_480/ --fps 24 --out charades_feats.h5\n"
               "  refdense prepare charades ... --video-features charades_feats.h5 --image-features charades_feats.h5 "
               "--video-encoder s3d-kinetics400",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--videos", required=True, type=Path, help="folder of video files")
    parser.add_argument("--out", required=True, type=Path, help="HDF5 file to write (or complete)")
    parser.add_argument("--video-features", metavar="DIR_OR_H5",
                        help="use your I3D features for the video stream instead of S3D")
    parser.add_argument("--clip-weights", default="openai",
                        help="open_clip pretrained tag or a local RN50 checkpoint file (default: openai)")
    parser.add_argument("--fps", type=float, help="resample videos to this frame rate (e.g. 24 for Charades)")
    parser.add_argument("--chunk-segments", type=int, default=32, help="segments per forward pass (default 32)")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from refdense.prepare.extract import (
        extract_features,
        list_videos,
        load_clip_image_encoder,
        load_s3d_video_encoder,
    )

    try:
        videos = list_videos(args.videos)
        if not videos:
            raise CommandError(f"{args.videos}: no video files found")
        image_encoder = load_clip_image_encoder(args.clip_weights, args.device)
        video_encoder = None if args.video_features else load_s3d_video_encoder(args.device)
        report = extract_features(videos, args.out, image_encoder=image_encoder, video_encoder=video_encoder,
                                  video_features=args.video_features, fps=args.fps,
                                  chunk_segments=args.chunk_segments, dtype=args.dtype)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise CommandError(str(error)) from None
    print(report.summary())
    return 1 if report.failed else 0
