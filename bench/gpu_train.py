"""Training speed on one GPU: the Charades recipe on the ``charades-like`` synthetic preset.

    python bench/gpu_train.py [--epochs 2] [--compile] [--preset charades-like] [--json PATH]

Trains RefDense with ``configs/charades.yaml`` (batch 5, windows of 256, the paper's model,
bf16 autocast on CUDA) on the ``charades-like`` preset (Charades' size: 7,985 training and
1,863 test videos, 1024-d streams), through the same ``refdense.train.train`` as everything else,
then evaluates the test split once more on its own (to time it) and prints steps per second, epoch
time (training; then with validation), the test evaluation's time, peak GPU memory and the model's
forward GMACs per window. ``--json PATH`` also writes these figures to PATH (``bench/gpu_check.py``
reads them). The text encoder is ``minilm`` (its weights ship in a pip package, so nothing is
downloaded); CLIP's text tower, the paper's, has the same cost at training time (the prompt
embeddings are computed once, and a bank cached in the dataset folder is reused). Sized to finish
within 8 minutes on one H100/H200-class GPU, dataset generation included; ``--preset tiny`` is a
quick check on a CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from refdense.data import read_info
from refdense.io import atomic_write
from refdense.metrics import read_predictions
from refdense.models import build_model, complexity
from refdense.synth import default_dataset
from refdense.text import text_bank_path
from refdense.train import evaluate, load_config, train


def install_bank(bank_dir: Path, dataset: Path) -> None:
    """Copy the ``minilm`` text bank of ``bank_dir/<dataset's name>/`` (made elsewhere by
    ``bench/gpu_check.py --make-bank``) into ``dataset``, where training looks for it first."""
    source = text_bank_path(bank_dir / dataset.name, "minilm")
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no minilm text bank for {dataset.name} (bench/gpu_check.py --make-bank)")
    shutil.copyfile(source, text_bank_path(dataset, "minilm"))


def measure(preset: str, epochs: int, compile_model: bool, workers: int, text_encoder: str,
            bank: Path | None = None, on_figures: Callable[[dict], object] | None = None) -> dict:
    """Train the Charades recipe on ``preset`` for ``epochs`` and time it; the figures as a dict
    (``history``: one record per epoch as ``train`` returns them). ``bank``: a folder of text banks
    (:func:`install_bank`); ``on_figures``: called with the figures so far after each epoch."""
    started = time.perf_counter()
    dataset = default_dataset(preset)
    prepared = time.perf_counter() - started
    if bank is not None:
        install_bank(bank, dataset)
    overrides = [f"data.dataset={dataset}", f"data.text_encoder={text_encoder}", f"optim.epochs={epochs}",
                 f"run.compile={str(compile_model).lower()}", f"run.num_workers={workers}"]
    if preset == "tiny":  # CPU smoke test of the script itself
        overrides += ["data.window=32", "model.max_len=32", "model.dim=32", "model.local_hidden=64"]
    config = load_config("configs/charades.yaml", overrides=overrides)
    info = read_info(dataset)
    with torch.device("meta"):
        model = build_model(config.model, video_dim=info.streams["video"].dim, image_dim=info.streams["image"].dim,
                            num_classes=len(info.classes), num_entities=len(info.entities),
                            num_motions=len(info.motions))
    parameters, gmacs = complexity(model, info.streams["video"].dim, info.streams["image"].dim, T=config.data.window)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    figures: dict = {
        "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
        "precision": config.run.precision, "compile": config.run.compile, "preset": preset,
        "batch_size": config.optim.batch_size, "window": config.data.window, "text_encoder": text_encoder,
        "dataset_seconds": prepared, "parameters": parameters, "gmacs_per_window": gmacs, "history": [],
    }

    def epoch_done(record: dict) -> None:
        figures["history"].append({key: record[key] for key in ("epoch", "steps", "train_seconds", "seconds")})
        if cuda:
            figures["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
            figures["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
        if on_figures is not None:
            on_figures(figures)

    with tempfile.TemporaryDirectory() as run_dir:
        began = time.perf_counter()
        result = train(config, Path(run_dir) / "run", progress=False, on_epoch=epoch_done)
        figures["train_call_seconds"] = time.perf_counter() - began
        began = time.perf_counter()
        evaluation = evaluate(result.checkpoint, Path(run_dir) / "evaluation", split="testing", progress=False)
        figures["test_eval_seconds"] = time.perf_counter() - began
        figures["test_videos"] = len(read_predictions(evaluation.predictions).video_ids)
    figures["test_map"] = 100 * result.test.frame_map.map_all if result.test else None
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="charades-like", help="synthetic preset (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs to time; the first includes warm-up (default: %(default)s)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers (default: %(default)s)")
    parser.add_argument("--text-encoder", default="minilm", choices=("minilm", "clip", "random"),
                        help="CoLV's prompt embeddings (default: %(default)s; 'random' costs the same per step)")
    parser.add_argument("--bank", type=Path, help="a folder of minilm text banks (bench/gpu_check.py --make-bank)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    figures = measure(args.preset, args.epochs, args.compile, args.workers, args.text_encoder, bank=args.bank)
    print(f"\ndevice: {figures['device']}; torch {figures['torch']}; precision {figures['precision']}; "
          f"compile {figures['compile']}; preset {args.preset} (generated/opened in {figures['dataset_seconds']:.0f} s); "
          f"{figures['gmacs_per_window']:.2f} GMACs per window")
    print("| epoch | steps | steps/s | train s | train + validation s |")
    print("|---:|---:|---:|---:|---:|")
    for r in figures["history"]:
        print(f"| {r['epoch']} | {r['steps']} | {r['steps'] / r['train_seconds']:.2f} | {r['train_seconds']:.1f} "
              f"| {r['seconds']:.1f} |")
    epochs_seconds = sum(r["seconds"] for r in figures["history"])
    print(f"set-up, test evaluation and report: {figures['train_call_seconds'] - epochs_seconds:.1f} s; "
          f"whole run {figures['train_call_seconds']:.1f} s; test split evaluated again alone in "
          f"{figures['test_eval_seconds']:.1f} s")
    if "peak_allocated_gib" in figures:
        print(f"peak GPU memory: {figures['peak_allocated_gib']:.2f} GiB allocated, "
              f"{figures['peak_reserved_gib']:.2f} GiB reserved")
    print(f"test mAP after {len(figures['history'])} epoch(s): {figures['test_map']:.2f}")
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump(figures, handle, indent=1)


if __name__ == "__main__":
    main()
