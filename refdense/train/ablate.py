"""The paper's ablations (Tables 3-7) on any dataset, over several seeds: ``refdense ablate``.

Each variant is a small override file in ``configs/ablations/`` applied on top of a base recipe
(``configs/synthetic.yaml`` by default). Every (variant, seed) pair is one ordinary run of
:func:`refdense.train.train` in ``OUT/<variant>/seed<k>``; a finished run is reused and an
interrupted one resumed, so an ablation can be stopped and started again. The numbers are
computed from each run's ``predictions-test.npz`` by ``refdense.metrics.paper_table`` and written
to ``OUT/ABLATIONS.md`` (mean ± sample standard deviation over seeds) and ``OUT/ablations.json``
(every value).

Metrics as in the paper's ablation tables: per-frame mAP, and mAP_ac and F1_ac at tau = 0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from refdense.io import atomic_write
from refdense.metrics import paper_table, read_predictions
from refdense.paths import REPO_ROOT
from refdense.train.config import load_config
from refdense.train.evaluate import predictions_path
from refdense.train.loop import train

ABLATIONS = REPO_ROOT / "configs" / "ablations"
BASE = REPO_ROOT / "configs" / "synthetic.yaml"


@dataclass(frozen=True)
class Variant:
    name: str  # file stem in configs/ablations
    table: str  # the paper's table
    label: str


VARIANTS = (
    Variant("full", "3-7", "RefDense (full)"),
    Variant("entity_only", "3", "Action-Entity alone (I3D+CLIP concat)"),
    Variant("motion_only", "3", "Action-Motion alone (I3D+CLIP concat)"),
    Variant("no_entity_labels", "4", "without entity labels"),
    Variant("no_motion_labels", "4", "without motion labels"),
    Variant("no_sub_labels", "4", "without entity and motion labels"),
    Variant("no_colv", "5", "without CoLV"),
    Variant("pat", "6", "PAT (I3D+CLIP concat)"),
    Variant("pat_colv", "6", "PAT + CoLV"),
    Variant("no_cross_attention", "7", "without cross-attention"),
)
METRICS = ("mAP", "mAP_ac", "F1_ac")


def run_metrics(predictions: Path) -> dict[str, float]:
    """The ablation metrics (percent) of one run, from its predictions file."""
    saved = read_predictions(predictions)
    table = paper_table(saved.scores, saved.labels, taus=(0,))
    ac = table.conditional[0]
    return {"mAP": 100 * table.frame_map.map_all, "mAP_ac": 100 * ac.mAP_ac, "F1_ac": 100 * ac.F1_ac}


def ablate(
    dataset: str,
    out: str | Path,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int | None = None,
    variants: Sequence[str] | None = None,
    base: str | Path = BASE,
    overrides: Sequence[str] = (),
    progress: bool | None = None,
) -> Path:
    """Run the ablations and write ``out/ABLATIONS.md``; return its path.

    Args:
        dataset: dataset folder or synthetic preset (``data.dataset``).
        out: output folder.
        seeds: one run per seed and variant (``run.seed``: initial weights, windows, and the
            validation carve-out).
        epochs: ``optim.epochs`` for every run (default: the base recipe's).
        variants: names of files in ``configs/ablations`` (default: all, in the paper's order).
        base: the recipe the variants modify.
        overrides: ``KEY=VALUE`` applied to every run after the variant, e.g. a smaller model.
    """
    out = Path(out)
    chosen = [v for v in VARIANTS if variants is None or v.name in variants]
    unknown = sorted(set(variants or ()) - {v.name for v in VARIANTS})
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; known: {', '.join(v.name for v in VARIANTS)}")
    common = [f"data.dataset={dataset}", *([f"optim.epochs={epochs}"] if epochs else []), *overrides]
    values: dict[str, list[dict[str, float]]] = {}
    bar = tqdm(total=len(chosen) * len(seeds), unit="run", desc="ablations", disable=True if progress is False else None)
    for variant in chosen:
        values[variant.name] = []
        for seed in seeds:
            config = load_config(base, ABLATIONS / f"{variant.name}.yaml", overrides=[*common, f"run.seed={seed}"])
            run_dir = out / variant.name / f"seed{seed}"
            bar.set_description(f"ablations: {variant.name}, seed {seed}")
            if not (run_dir / "results.json").is_file():
                train(config, run_dir, resume=(run_dir / "checkpoints" / "latest.pt").is_file(), progress=False)
            values[variant.name].append(run_metrics(predictions_path(run_dir, "testing")))
            bar.update(1)
    bar.close()
    with atomic_write(out / "ablations.json") as handle:
        json.dump({"dataset": dataset, "seeds": list(seeds), "base": str(base), "overrides": common, "runs": values},
                  handle, indent=2)
    report = out / "ABLATIONS.md"
    with atomic_write(report) as handle:
        handle.write(ablation_markdown(values, dataset, seeds, base, common))
    return report


def _cell(samples: list[float], reference: list[float] | None) -> str:
    mean = float(np.mean(samples))
    text = f"{mean:.2f}" + (f" ± {np.std(samples, ddof=1):.2f}" if len(samples) > 1 else "")
    if reference is not None:
        text += f" ({mean - float(np.mean(reference)):+.2f})"
    return text


def ablation_markdown(values: dict[str, list[dict]], dataset: str, seeds: Sequence[int], base, common) -> str:
    """The ablation table: mean ± sample std over seeds, in parentheses the difference to the full model."""
    full = values.get("full")
    header = "| Table | Variant | " + " | ".join(f"{m}" + (" (τ=0)" if m != "mAP" else "") for m in METRICS) + " |"
    lines = [
        f"# Ablations on `{dataset}`",
        "",
        f"Seeds {', '.join(map(str, seeds))}; mean ± sample standard deviation over seeds, in % "
        "(in parentheses: the difference of the means to the full RefDense). Test split, each run's "
        "best validation checkpoint. Base recipe `" + str(Path(base).name) + "`, overrides: `"
        + " ".join(common) + "`.",
        "",
        header,
        "|---|---|" + "---:|" * len(METRICS),
    ]
    for variant in VARIANTS:
        if variant.name not in values:
            continue
        runs = values[variant.name]
        reference = None if variant.name == "full" or full is None else full
        cells = [_cell([r[m] for r in runs], reference and [r[m] for r in reference]) for m in METRICS]
        lines.append(f"| {variant.table} | {variant.label} | " + " | ".join(cells) + " |")
    missing = [m for m in METRICS for runs in values.values() for r in runs if math.isnan(r[m])]
    if missing:
        lines += ["", "n/a or nan: no action-conditional pair was kept on this test split."]
    return "\n".join(lines) + "\n"
