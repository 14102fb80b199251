"""Training speed on one GPU: the Charades recipe on the ``charades-like`` synthetic preset.

    python bench/gpu_train.py [--epochs 2] [--compile] [--preset charades-like]

Trains RefDense with ``configs/charades.yaml`` (batch 5, windows of 256, the paper's model,
bf16 autocast on CUDA) on the ``charades-like`` preset (Charades' size: 7,985 training and
1,863 test videos, 1024-d streams), through the same ``refdense.train.train`` as everything else,
then prints steps per second, epoch time (training; then with validation), the time of the final
test evaluation, and peak GPU memory. The text encoder is ``minilm`` (its weights ship in a pip
package, so nothing is downloaded); CLIP's text tower, the paper's, has the same cost at training
time (the prompt embeddings are computed once). Sized to finish within 8 minutes on one
H100/H200-class GPU, dataset generation included; ``--preset tiny`` is a quick check on a CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from refdense.synth import default_dataset
from refdense.train import load_config, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="charades-like", help="synthetic preset (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs to time; the first includes warm-up (default: %(default)s)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers (default: %(default)s)")
    args = parser.parse_args()

    started = time.perf_counter()
    dataset = default_dataset(args.preset)
    prepared = time.perf_counter() - started
    overrides = [f"data.dataset={dataset}", "data.text_encoder=minilm", f"optim.epochs={args.epochs}",
                 f"run.compile={str(args.compile).lower()}", f"run.num_workers={args.workers}"]
    if args.preset == "tiny":  # CPU smoke test of the script itself
        overrides += ["data.window=32", "model.max_len=32", "model.dim=32", "model.local_hidden=64"]
    config = load_config("configs/charades.yaml", overrides=overrides)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as run_dir:
        began = time.perf_counter()
        result = train(config, Path(run_dir) / "run")
        total = time.perf_counter() - began
    epochs_seconds = sum(r["seconds"] for r in result.history)
    print(f"\ndevice: {torch.cuda.get_device_name() if cuda else 'cpu'}; torch {torch.__version__}; "
          f"precision {config.run.precision}; compile {config.run.compile}; preset {args.preset} "
          f"(generated/opened in {prepared:.0f} s)")
    print("| epoch | steps | steps/s | train s | train + validation s |")
    print("|---:|---:|---:|---:|---:|")
    for r in result.history:
        print(f"| {r['epoch']} | {r['steps']} | {r['steps'] / r['train_seconds']:.2f} | {r['train_seconds']:.1f} "
              f"| {r['seconds']:.1f} |")
    print(f"set-up, test evaluation and report: {total - epochs_seconds:.1f} s; whole run {total:.1f} s")
    if cuda:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB allocated, "
              f"{torch.cuda.max_memory_reserved() / 2**30:.2f} GiB reserved")
    print(f"test mAP after {len(result.history)} epoch(s): {100 * result.test.frame_map.map_all:.2f}")


if __name__ == "__main__":
    main()
