"""CPU seconds of one training run of the experiment plan (docs/EXPERIMENTS.md), epoch by epoch.

    python bench/sweep_cost.py [--variant full] [--epochs 3] [--preset default] [--set KEY=VALUE ...]

Trains ``configs/synthetic.yaml`` + ``configs/ablations/<variant>.yaml`` + the overrides on the
synthetic preset (generated and cached on first use, its text bank built before the clock starts)
on one torch thread, in a temporary run directory, and prints one JSON object: the CPU seconds
(process time, which other load on a shared machine does not inflate the way it does wall time)
of the start-up (data, model), of each epoch (training and validation), and of the final test
evaluation, with the validation mAP of each epoch and the wall seconds for comparison.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from refdense.data import read_info
from refdense.synth import default_dataset
from refdense.text import text_bank_for
from refdense.experiments.ablate import ABLATIONS, BASE
from refdense.train.config import load_config
from refdense.train.loop import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="full", help="file in configs/ablations (default: full)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = default_dataset(args.preset)
    config = load_config(BASE, ABLATIONS / f"{args.variant}.yaml",
                         overrides=[f"data.dataset={folder}", f"optim.epochs={args.epochs}", *args.overrides])
    if config.loss.active_colv_sets():
        text_bank_for(folder, read_info(folder), config.data.text_encoder)
    marks: list[float] = []
    maps: list[float] = []

    def on_epoch(record: dict) -> None:
        marks.append(time.process_time())
        maps.append(round(record["val"]["map"], 2))

    wall, start = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(config, Path(run_dir), progress=False, on_epoch=on_epoch)
        steps = result.history[0]["steps"]
    end = time.process_time()
    epochs = [b - a for a, b in zip(marks, marks[1:])]
    print(json.dumps({
        "variant": args.variant, "preset": args.preset, "overrides": args.overrides, "steps_per_epoch": steps,
        "cpu_first_epoch_with_startup": round(marks[0] - start, 2),
        "cpu_per_later_epoch": [round(e, 2) for e in epochs],
        "cpu_final_test": round(end - marks[-1], 2), "cpu_total": round(end - start, 2),
        "wall_total": round(time.perf_counter() - wall, 2), "val_map": maps,
    }))


if __name__ == "__main__":
    main()
