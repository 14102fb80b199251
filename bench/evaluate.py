"""Evaluation throughput: whole Charades-length videos through a model, batched across videos or
one video at a time.

    python bench/evaluate.py [--videos 100] [--threads 2] [--repeat 2] [--arch refdense pat]

Random weights (the Charades configuration: 1024-d I3D and CLIP features, 157 classes, windows of
256) and random features; the videos are Charades-long: durations log-normal around 30.5 s
(sigma 0.3, within 8-60 s), 3 segments per second (I3D at 24 fps, one segment per 8 frames), about
92 segments each. Two ways through the same model, in eval mode, float32:

- ``one video at a time``: each video alone, cut into windows of 256 padded to 256 (how
  evaluation ran before ``predict_full_videos``);
- ``batched``: ``refdense.models.predict_full_videos`` (every video's windows, sorted by length,
  packed into batches padded to their longest window), as ``predict_split`` runs it.

Prints the best of ``--repeat`` runs of each (interleaved; the machine's load average with them)
and checks that both give the same probabilities.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from refdense.models import ModelConfig, architectures, build_model, predict_full_videos

DIMS = dict(video_dim=1024, image_dim=1024, num_classes=157, num_entities=38, num_motions=38)
SEGMENTS_PER_SECOND = 3.0


def charades_lengths(videos: int, seed: int = 0) -> list[int]:
    """Segments per video: Charades-like durations (log-normal, median 30.5 s) at 3 segments/s."""
    rng = np.random.default_rng(seed)
    seconds = np.clip(30.5 * np.exp(rng.normal(0.0, 0.3, videos)), 8.0, 60.0)
    return [int(s * SEGMENTS_PER_SECOND) for s in seconds]


@torch.no_grad()
def one_at_a_time(model: torch.nn.Module, videos: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """Each video alone: its windows of ``model.max_window``, the last one padded, in one batch."""
    model.eval()
    out = []
    for video, image in videos:
        length, window = video.shape[0], model.max_window
        count = -(-length // window)
        pad = count * window - length
        mask = (torch.arange(count * window) < length).view(count, window)
        windows = [torch.cat([x, x.new_zeros(pad, x.shape[1])]).view(count, window, -1) for x in (video, image)]
        logits = model(*windows, mask).action_logits
        out.append(logits.reshape(count * window, -1)[:length].sigmoid())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--arch", nargs="+", choices=architectures(), default=["refdense", "pat"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = charades_lengths(args.videos)
    generator = torch.Generator().manual_seed(0)
    videos = [(torch.randn(n, DIMS["video_dim"], generator=generator),
               torch.randn(n, DIMS["image_dim"], generator=generator)) for n in lengths]
    print(f"{args.videos} videos, {sum(lengths)} segments (median {int(np.median(lengths))}, max {max(lengths)}), "
          f"threads {torch.get_num_threads()}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"torch {torch.__version__}")
    for arch in args.arch:
        torch.manual_seed(0)
        model = build_model(ModelConfig(arch=arch), **DIMS).eval()
        ways = {"one video at a time": lambda: one_at_a_time(model, videos),
                "batched": lambda: predict_full_videos(model, videos)}
        seconds: dict[str, list[float]] = {name: [] for name in ways}
        results = {}
        load = os.getloadavg()[0]
        for _ in range(args.repeat):
            for name, run in ways.items():
                start = time.perf_counter()
                results[name] = run()
                seconds[name].append(time.perf_counter() - start)
        for a, b in zip(*results.values()):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
        print(f"\n{arch} (load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end): "
              "best seconds for all videos; the same probabilities both ways")
        base = min(seconds["one video at a time"])
        for name, values in seconds.items():
            print(f"  {name:<20} {min(values):7.2f} s  {args.videos / min(values):6.1f} videos/s  "
                  f"{base / min(values):5.2f}x", flush=True)


if __name__ == "__main__":
    main()
