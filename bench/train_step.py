"""Seconds per training step of PAT and RefDense, in float32 and bf16 autocast, optionally side by
side with the published PAT code.

    python bench/train_step.py [--threads 2] [--batch 5] [--length 256] [--repeat 3]
                               [--precision fp32 bf16] [--published PATH]

One step is the training loop's own (``refdense.train.loop.train_one_epoch`` on one batch): forward,
the loss of the recipe, backward, fused Adam, at the Charades configuration (1024-d I3D and CLIP
features, 157 classes, 38 entities, 38 motions, windows of T = 256) on random features and labels
(2 % positives). PAT is the Table 6 baseline on I3D features with its recipe
(``configs/ablations/pat.yaml``), RefDense the paper's recipe (``configs/charades.yaml``; CoLV against
random 1024-d prompt embeddings, the width of CLIP's text tower). CUDA when present, else the CPU
with ``--threads`` torch threads.

``--published PATH`` also times the published PAT code (github.com/faeghehsardari/PAT-ICCVW, a
checkout of it at PATH; nothing of it is part of this repository): its model, its training loss
(the asymmetric loss of each head, coarse + 0.1 fine, divided by the number of valid segments) and
its optimiser (``torch.optim.Adam`` with the defaults), on the same inputs and the same torch. Its
``einops`` import is unused; a stand-in module is installed when ``einops`` is missing.

The contestants run interleaved (one step of each, then again, ``--repeat`` rounds after one
warm-up round), and each is reported by its fastest step: on a shared machine the minimum is the
measurement least disturbed by other jobs. The figures are relative to each other; the load
average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types
from pathlib import Path
from types import SimpleNamespace

import torch

from refdense.data.dataset import Batch
from refdense.losses import RefDenseCriterion
from refdense.models import architecture, build_model, complexity
from refdense.train import distributed
from refdense.train.components import build_optimizer
from refdense.train.config import load_config
from refdense.train.loop import TrainingStep, train_one_epoch

DIMS = dict(video_dim=1024, image_dim=1024, num_classes=157, num_entities=38, num_motions=38)
TEXT_DIM = 1024  # CLIP RN50's text embeddings
RECIPES = {
    "pat": (["configs/charades.yaml", "configs/ablations/pat.yaml"], ["model.inputs=video"]),
    "refdense": (["configs/charades.yaml"], []),
}


def random_batch(batch: int, length: int, device: torch.device) -> Batch:
    """Random features and labels (2 % positives) of ``batch`` full windows."""
    def labels(width: int) -> torch.Tensor:
        return (torch.rand(batch, length, width, device=device) < 0.02).float()

    return Batch(
        video=torch.randn(batch, length, DIMS["video_dim"], device=device),
        image=torch.randn(batch, length, DIMS["image_dim"], device=device),
        labels=labels(DIMS["num_classes"]),
        entity_labels=labels(DIMS["num_entities"]),
        motion_labels=labels(DIMS["num_motions"]),
        mask=torch.ones(batch, length, dtype=torch.bool, device=device),
        video_ids=[f"v{i}" for i in range(batch)],
    )


class OurStep:
    """One step of ``train_one_epoch`` for an architecture of this package with its recipe."""

    def __init__(self, arch: str, precision: str, context: distributed.Context) -> None:
        files, overrides = RECIPES[arch]
        self.config = load_config(*files, overrides=[*overrides, f"run.precision={precision}"])
        model_cfg = self.config.model
        torch.manual_seed(0)
        self.model = build_model(model_cfg, **DIMS)
        bank = SimpleNamespace(embeddings={name: torch.randn(DIMS[f"num_{key}"], TEXT_DIM)
                                           for name, key in (("action", "classes"), ("entity", "entities"),
                                                             ("motion", "motions"))})
        dims = dict(architecture(model_cfg.arch).colv_widths(model_cfg))
        self.runner = TrainingStep(self.model, RefDenseCriterion(self.config.loss, dims, bank)).to(context.device)
        self.optimizer = build_optimizer(self.runner.parameters(), self.config.optim)
        self.context = context

    def __call__(self, batch: Batch) -> None:
        optim, run = self.config.optim, self.config.run
        train_one_epoch(self.runner, [batch], self.optimizer, context=self.context, epoch=0, epochs=optim.epochs,
                        precision=run.precision, grad_clip=optim.grad_clip, log_every=run.log_every,
                        checkpoints=Path("unused"), quiet=True)


class PublishedStep:
    """One training step of the published PAT code (its model, loss and optimiser), imported from ``path``."""

    def __init__(self, path: Path, bf16: bool, device: torch.device) -> None:
        if not (path / "PAT" / "PAT_Model.py").is_file():
            raise SystemExit(f"--published: {path} is not a checkout of PAT-ICCVW (no PAT/PAT_Model.py)")
        sys.path.insert(0, str(path))
        try:
            import einops  # noqa: F401
        except ImportError:  # imported by the published code, never called
            sys.modules["einops"] = types.ModuleType("einops")
            sys.modules["einops"].rearrange = None
        from PAT.PAT_Model import PAT  # type: ignore[import-not-found]
        from utils import AsymmetricLoss  # type: ignore[import-not-found]

        torch.manual_seed(0)  # the Charades configuration of its training script
        self.model = PAT([512] * 4, 3, 8, 8, DIMS["video_dim"], 512, DIMS["num_classes"], 256).to(device)
        self.loss = AsymmetricLoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.bf16, self.device = bf16, device

    def __call__(self, batch: Batch) -> None:
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            fine, coarse = self.model(batch.video.transpose(1, 2))
        valid = batch.mask.sum()
        loss = self.loss(coarse.float(), batch.labels) / valid + 0.1 * self.loss(fine.float(), batch.labels) / valid
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def race(steps: dict, batch: Batch, repeat: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds of each step, interleaved: one warm-up round, then ``repeat`` timed rounds."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(repeat + 1):
        for name, step in steps.items():
            start = time.perf_counter()
            step(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds after one warm-up round")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    parser.add_argument("--published", type=Path, help="a checkout of the published PAT code, to time it too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    context = distributed.Context(rank=0, world_size=1, device=distributed.resolve_device("auto"))
    device = context.device
    flags = ", ".join(name for name in ("avx2", "avx512", "avx512_bf16", "amx_tile")
                      if getattr(torch.cpu, f"_is_{name}_supported")()) or "none"
    print(f"device {device}, CPU capability {torch.backends.cpu.get_cpu_capability()} (CPU flags: {flags}), "
          f"threads {torch.get_num_threads()}, batch {args.batch}, T {args.length}, torch {torch.__version__}")
    for arch in ("pat", "refdense"):
        with torch.device("meta"):
            model = build_model(load_config(*RECIPES[arch][0],
                                            overrides=RECIPES[arch][1]).model, **DIMS)
        params, gmacs = complexity(model, DIMS["video_dim"], DIMS["image_dim"], T=256)
        print(f"{arch}: {params:,} parameters, {gmacs:.2f} GMACs per window (B=1, T=256)")
    batch = random_batch(args.batch, args.length, device)
    for precision in args.precision:
        steps = {}
        if args.published:
            steps["published PAT"] = PublishedStep(args.published.resolve(), precision == "bf16", device)
        steps["refdense PAT"] = OurStep("pat", precision, context)
        steps["refdense RefDense"] = OurStep("refdense", precision, context)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        times = race(steps, batch, args.repeat, device)
        print(f"\n{precision}: seconds per step, {args.repeat} interleaved rounds (load average {load:.1f} at the start, "
              f"{os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan'):.1f} at the end)")
        print(f"{'':<20} {'min':>7} {'median':>7} {'vs published':>13}")
        reference = min(times["published PAT"]) if args.published else None
        for name, seconds in times.items():
            ratio = f"{min(seconds) / reference:.2f}x" if reference else "-"
            print(f"{name:<20} {min(seconds):>7.2f} {statistics.median(seconds):>7.2f} {ratio:>13}", flush=True)
        del steps


if __name__ == "__main__":
    main()
