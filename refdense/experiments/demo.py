"""The main job (``refdense demo``, what ``make demo`` runs): RefDense vs PAT on the synthetic data.

1. build the synthetic ``default`` dataset if it is missing (``synthetic/default`` in :func:`refdense.paths.data_root`);
2. train RefDense (``configs/synthetic.yaml``) and the PAT baseline on I3D+CLIP features
   concatenated (the same file + ``configs/ablations/pat.yaml``) with the same budget: epochs,
   batch, optimizer, schedule, seed;
3. evaluate both on the test split with their best validation checkpoint, through the same
   ``refdense.metrics`` code;
4. write ``runs/demo/REPORT.md``: the side-by-side table, per-class AP, a timeline of test videos
   (ground truth vs both models, like the paper's Fig. 4) and the loss curves.
"""

from __future__ import annotations

import resource
import shutil
import time
from pathlib import Path

from tqdm.auto import tqdm

from refdense.io import output_folder
from refdense.threads import torch_threads
from refdense.train.config import CONFIGS, TrainConfig, load_config
from refdense.train.loop import train
from refdense.train.result import TrainResult

MODELS = {"RefDense": (), "PAT (I3D+CLIP concat)": ("ablations/pat.yaml",)}


def demo_configs(
    base: str | Path = CONFIGS / "synthetic.yaml", overrides: tuple[str, ...] = ()
) -> dict[str, TrainConfig]:
    """The two configurations the demo trains, by display name; ``overrides`` apply to both."""
    return {
        name: load_config(base, *(CONFIGS / extra for extra in extras), overrides=overrides)
        for name, extras in MODELS.items()
    }


def demo(
    out: str | Path = "runs/demo",
    *,
    overrides: tuple[str, ...] = (),
    threads: int | None = 1,
    progress: bool | None = None,
) -> Path:
    """Train RefDense and PAT on the synthetic data, evaluate both, write ``out/REPORT.md``; return its path.

    ``overrides`` (``"optim.epochs=2"``, ...) apply to both models. ``out`` follows the output
    folder rule (:func:`refdense.io.output_folder`: missing, empty or a demo's folder); its two
    runs are replaced (the demo always trains from scratch), and only if they are runs. ``threads``: torch CPU threads during the demo
    (None: leave torch's setting). One is the default because these small models gain little
    from a second thread, and on a machine with any other load, two threads on two cores ran
    3-4 times slower than one in our measurements.
    """
    with torch_threads(threads):
        return _demo(Path(out), overrides, progress)


def _demo(out: Path, overrides: tuple[str, ...], progress: bool | None) -> Path:
    from refdense.train.report import write_demo_report

    configs = demo_configs(overrides=overrides)
    out = output_folder(out, "demo")
    started = time.perf_counter()
    bar = tqdm(
        total=sum(c.optim.epochs for c in configs.values()),
        unit="epoch",
        disable=True if progress is False else None,
        desc="demo",
    )
    results: dict[str, TrainResult] = {}
    seconds: dict[str, float] = {}
    for name, config in configs.items():
        run_dir = output_folder(out / _slug(name), "train")  # refuses a folder that is not a run
        shutil.rmtree(run_dir)
        bar.set_description(f"demo: training {name}")
        began = time.perf_counter()
        results[name] = train(
            config,
            run_dir,
            progress=False,
            on_epoch=lambda record: (bar.update(1), bar.set_postfix(loss=f"{record['train']['loss']:.3f}")),
        )
        seconds[name] = time.perf_counter() - began
    bar.set_description("demo: writing the report")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kilobytes on Linux
    report = write_demo_report(out, results, configs, seconds, time.perf_counter() - started, peak_gb)
    bar.close()
    return report


def _slug(name: str) -> str:
    return name.split()[0].lower()
