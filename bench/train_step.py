"""Seconds per training step of PAT and RefDense, with their parameters and forward GMACs.

    python bench/train_step.py [--threads 2] [--batch 5] [--length 256] [--repeat 3] [--bf16]

One step = forward + BCE on the action logits (and on RefDense's auxiliary logits, against
random labels) +
backward + Adam step, at the Charades configuration (1024-d I3D and CLIP features, 157 classes,
38 entities, 38 motions) in the ``pat`` position mode, on CUDA when present, else on the CPU with
``--threads`` torch threads. Prints the median of ``--repeat`` timed steps after one warm-up step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from refdense.models import ModelConfig, build_model, complexity

DIMS = dict(video_dim=1024, image_dim=1024, num_classes=157, num_entities=38, num_motions=38)


def step_seconds(model, batch: int, length: int, repeat: int, bf16: bool, device: str) -> float:
    """Median seconds of ``repeat`` Adam steps on random inputs and labels."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    video = torch.randn(batch, length, DIMS["video_dim"], device=device)
    image = torch.randn(batch, length, DIMS["image_dim"], device=device)
    mask = torch.ones(batch, length, dtype=torch.bool, device=device)
    targets = torch.rand(batch, length, DIMS["num_classes"], device=device).round()
    model.train()
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            out = model(video, image, mask)
        logits = [x.float() for x in (out.action_logits, out.entity_logits, out.motion_logits) if x is not None]
        loss = sum(F.binary_cross_entropy_with_logits(x, targets[..., : x.shape[-1]]) for x in logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--bf16", action="store_true", help="run the forward under torch.autocast bf16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"device {device}, threads {torch.get_num_threads()}, batch {args.batch}, T {args.length}, "
        f"{'bf16 autocast' if args.bf16 else 'float32'}"
    )
    print(f"{'model':<10} {'parameters':>12} {'GMACs (B=1, T=256)':>19} {'s / step':>9}")
    for arch in ("pat", "refdense"):
        torch.manual_seed(0)
        model = build_model(ModelConfig(arch=arch), **DIMS).to(device)
        params, gmacs = complexity(model, DIMS["video_dim"], DIMS["image_dim"], T=256)
        seconds = step_seconds(model, args.batch, args.length, args.repeat, args.bf16, device)
        print(f"{arch:<10} {params:>12,} {gmacs:>19.2f} {seconds:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
