"""Time `refdense prepare` on a MultiTHUMOS-sized input: 413 videos x ~600 segments x 1024-d npy per stream.

Generates the input into a temporary folder (about 2 GB of float32 .npy files), then times
prepare_dataset (npy -> float16 features.h5 + annotations + report). Usage:
    python bench/prepare.py [--videos 413] [--segments 600] [--dim 1024]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def generate(root: Path, videos: int, segments: int, dim: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    annotations = {}
    for stream in ("i3d", "clip"):
        (root / stream).mkdir()
    for v in range(videos):
        video_id = f"video_{'validation' if v % 2 else 'test'}_{v:07d}"
        length = int(segments * rng.uniform(0.8, 1.2))
        duration = length * 8 / 30
        starts = rng.uniform(0, duration, 90)
        annotations[video_id] = {"subset": "training" if v % 2 else "testing", "duration": duration,
                                 "actions": [[int(rng.integers(1, 66)), float(s), float(s + rng.uniform(0.5, 7))]
                                             for s in starts]}
        block = rng.standard_normal((length, dim), dtype=np.float32)
        np.save(root / "i3d" / f"{video_id}.npy", block.reshape(length, 1, 1, dim))
        np.save(root / "clip" / f"{video_id}.npy", block[:, ::-1])
    (root / "multithumos.json").write_text(json.dumps(annotations))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=413)
    parser.add_argument("--segments", type=int, default=600)
    parser.add_argument("--dim", type=int, default=1024)
    args = parser.parse_args()

    from refdense.prepare import prepare_dataset, read_raw_annotations, shipped_decomposition

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        generate(root, args.videos, args.segments, args.dim)
        print(f"generated {args.videos} videos in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        raw = read_raw_annotations("multithumos", [root / "multithumos.json"])
        report = prepare_dataset(raw, root / "i3d", root / "clip", root / "out", decomposition=shipped_decomposition(),
                                 name="multithumos", fps=30.0, progress=False)
        elapsed = time.perf_counter() - start
        size = (root / "out" / "features.h5").stat().st_size / 2**30
        print(report.summary())
        print(f"prepare: {elapsed:.1f} s for {args.videos} videos ({size:.2f} GiB features.h5, float16)")


if __name__ == "__main__":
    main()
