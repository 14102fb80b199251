"""Time `refdense extract-features --video-encoder i3d` on one Charades-sized video, with random weights.

Writes a 480 x 640 video of noise at 24 fps (30 s, 720 frames: the mean Charades video) into a
temporary folder, then times, separately: decoding with the I3D script's frame geometry, the
InceptionI3d forward pass over the whole video (as the community's script runs it), and CLIP RN50
on the middle frame of each segment. Random weights cost what real ones cost. Usage:
    python bench/extract.py [--seconds 30] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_video(path: Path, frames: int, width: int = 640, height: int = 480, rate: int = 24) -> Path:
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="video length at 24 fps (default 30)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import open_clip

    from refdense.prepare.extract import (
        IMAGE_SHORT_SIDE,
        ClipImageEncoder,
        I3DVideoEncoder,
        decode_frames,
        i3d_crop,
        rgb,
    )
    from refdense.prepare.i3d import InceptionI3d, feature_count

    frames = round(args.seconds * 24)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_video(Path(tmp) / "video.mp4", frames)
        start = time.perf_counter()
        crops, middles = [], []
        for index, frame in enumerate(decode_frames(path, fps=24)):
            crops.append(i3d_crop(rgb(frame)))
            if index % 8 == 4:
                middles.append(rgb(frame, IMAGE_SHORT_SIDE))
        decode = time.perf_counter() - start
    i3d = I3DVideoEncoder(InceptionI3d(400), args.device)
    start = time.perf_counter()
    video = i3d(np.stack(crops))
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    forward = time.perf_counter() - start
    clip = ClipImageEncoder(open_clip.create_model("RN50", pretrained=None), args.device)
    count = feature_count(len(crops))
    start = time.perf_counter()
    clip(np.stack(middles[:count]))
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    image = time.perf_counter() - start
    total = decode + forward + image
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{len(crops)} frames (480 x 640, 24 fps) -> {video.shape[0]} vectors of {video.shape[1]} on "
          f"{args.device} with {torch.get_num_threads()} threads")
    print(f"decode + crop {decode:.1f} s, I3D {forward:.1f} s, CLIP RN50 on {count} frames {image:.1f} s: "
          f"{total:.1f} s per video, peak memory {peak:.1f} GB")
    print(f"Charades (9,848 videos of ~{args.seconds:g} s): about {total * 9848 / 3600:.0f} h")


if __name__ == "__main__":
    main()
