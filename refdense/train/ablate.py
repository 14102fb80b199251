"""The paper's ablations (Tables 3-7) on any dataset, over several seeds: ``refdense ablate``.

Each variant is a small override file in ``configs/ablations/`` applied on top of a base recipe
(``configs/synthetic.yaml`` by default). Every (variant, seed) pair is one ordinary run of
:func:`refdense.train.train` in ``OUT/<variant>/seed<k>``; a finished run is reused and an
interrupted one resumed, so an ablation can be stopped and started again. The numbers are
computed from each run's ``predictions-test.npz`` by ``refdense.metrics.paper_table`` and written
to ``OUT/ABLATIONS.md`` (mean ± sample standard deviation over seeds) and ``OUT/ablations.json``
(every value). With a patience, each run stops early once its best validation epoch is that many
epochs behind (:func:`fit`); every run's epochs and best epoch are recorded. Two variants that
train the same network the same way are trained once (:func:`same_network`).
:mod:`refdense.train.sweep` runs variants the same way over the values of a data dial.

Metrics as in the paper's ablation tables: per-frame mAP, and mAP_ac and F1_ac at tau = 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from refdense.data import DatasetInfo, read_info
from refdense.io import atomic_write, exclusive_lock, output_folder
from refdense.metrics import paper_table, read_predictions
from refdense.synth import PRESETS, default_dataset
from refdense.train.components import build_detector, open_dataset_dir
from refdense.train.config import CONFIGS, TrainConfig, diff, load_config
from refdense.train.evaluate import predictions_path
from refdense.train.loop import fixed_keys_changed, train

ABLATIONS = CONFIGS / "ablations"
BASE = CONFIGS / "synthetic.yaml"


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


def run_metrics(predictions: Path, rare_classes: Sequence[int] = ()) -> dict[str, float]:
    """The ablation metrics (percent) of one run, from its predictions file.

    With ``rare_classes``, also ``mAP_rare``: the mean AP over those of them with a positive test
    frame (NaN when none has one).
    """
    saved = read_predictions(predictions)
    table = paper_table(saved.scores, saved.labels, taus=(0,))
    ac = table.conditional[0]
    values = {"mAP": 100 * table.frame_map.map_all, "mAP_ac": 100 * ac.mAP_ac, "F1_ac": 100 * ac.F1_ac}
    if rare_classes:
        ap = table.frame_map.per_class[list(rare_classes)]
        values["mAP_rare"] = 100 * float(np.nanmean(ap)) if np.isfinite(ap).any() else math.nan
    return values


class _Stalled(Exception):
    """Raised after an epoch whose run meets the early-stopping rule (see :func:`fit`)."""


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def best_epoch(history: list[dict]) -> int | None:
    """The epoch the run selects (the first with the highest validation mAP); None without validation."""
    validated = [record for record in history if "val" in record]
    return max(validated, key=lambda record: record["val"]["map"])["epoch"] if validated else None


def stalled(history: list[dict], patience: int | None) -> bool:
    """The early-stopping rule: the best validation epoch is ``patience`` or more epochs behind the last."""
    best = best_epoch(history)
    return patience is not None and best is not None and history[-1]["epoch"] - best >= patience


def convergence(run_dir: Path, patience: int | None) -> dict:
    """``{"epochs", "best_epoch", "converged"}`` of a finished run: converged when the best validation
    epoch is not among the last ``patience`` epochs (None without ``patience``)."""
    history = _history(run_dir)
    best = best_epoch(history)
    converged = None if patience is None or best is None else len(history) - best >= patience
    return {"epochs": len(history), "best_epoch": best, "converged": converged}


def fit(config: TrainConfig, run_dir: Path, patience: int | None = None) -> Path:
    """Train ``config`` in ``run_dir`` unless it is already done there; return its predictions file.

    A finished run made with the same configuration (``optim.epochs`` aside) is reused when it
    trained ``optim.epochs`` epochs or stopped early; one that trained fewer epochs is trained on;
    an interrupted run is resumed. With ``patience``, training stops after the first epoch whose
    best validation epoch is ``patience`` epochs behind (at most ``optim.epochs`` epochs), and the
    test split is evaluated with the best checkpoint, as after a full run. One process per run
    (no ``torchrun``); processes that fit the same run directory wait for each other (a lock on
    ``fit.lock``, released when its holder ends in any way), so sweeps may run in parallel.
    """
    run_dir = output_folder(run_dir, "train")
    # another process fitting this run (a parallel sweep): wait for it, then reuse its run
    with exclusive_lock(run_dir / "fit.lock", f"run directory {run_dir}", wait=True):
        return _fit(config, run_dir, patience)


def _fit(config: TrainConfig, run_dir: Path, patience: int | None) -> Path:
    latest = run_dir / "checkpoints" / "latest.pt"
    history = _history(run_dir)
    if (run_dir / "results.json").is_file():
        saved = load_config(run_dir / "config.yaml")
        changed = fixed_keys_changed(saved, config)
        if changed:
            raise ValueError(
                f"{run_dir}: a finished run made with another configuration ({', '.join(changed)} "
                "differ); remove it or choose another output folder"
            )
        if len(history) > config.optim.epochs:
            raise ValueError(
                f"{run_dir}: a finished run of {len(history)} epochs, more than the "
                f"{config.optim.epochs} asked; remove it or ask for at least {len(history)}"
            )
        if len(history) >= config.optim.epochs or stalled(history, patience):
            return predictions_path(run_dir, "testing")

    def stop_when_stalled(record: dict) -> None:
        if stalled(_history(run_dir), patience):
            raise _Stalled

    try:
        if latest.is_file() and stalled(history, patience):  # stopped, then interrupted before the test split
            raise _Stalled
        train(config, run_dir, resume=latest.is_file(), progress=False, on_epoch=stop_when_stalled)
    except _Stalled:  # evaluate the best checkpoint: the same run, with the epochs it trained
        train(
            config.with_overrides(f"optim.epochs={len(_history(run_dir))}"),
            run_dir,
            resume=True,
            progress=False,
        )
    return predictions_path(run_dir, "testing")


def same_network(a: TrainConfig, b: TrainConfig, info: DatasetInfo) -> bool:
    """Whether two configurations train the same thing: they differ at most in ``model.arch``, and the
    two architectures build the same module with the same initial weights (``info``: the dataset's
    :class:`DatasetInfo`). Such runs give the same numbers; ``ablate`` trains them once."""
    if set(diff(a, b)) - {"model.arch"}:
        return False
    models = []
    for config in (a, b):
        torch.manual_seed(0)
        models.append(build_detector(config.model, info))
    weights = [model.state_dict() for model in models]
    return (
        type(models[0]) is type(models[1])
        and weights[0].keys() == weights[1].keys()
        and all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    )


def check_variants(names: Sequence[str] | None) -> list[Variant]:
    """The :data:`VARIANTS` named (all when None), in the paper's order; unknown names are an error."""
    unknown = sorted(set(names or ()) - {v.name for v in VARIANTS})
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; known: {', '.join(v.name for v in VARIANTS)}")
    return [v for v in VARIANTS if names is None or v.name in names]


def ablate(
    dataset: str,
    out: str | Path,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int | None = None,
    patience: int | None = None,
    variants: Sequence[str] | None = None,
    base: str | Path = BASE,
    overrides: Sequence[str] = (),
    worlds: bool = False,
    progress: bool | None = None,
) -> Path:
    """Run the ablations and write ``out/ABLATIONS.md``; return its path.

    Args:
        dataset: dataset folder or synthetic preset (``data.dataset``).
        out: output folder.
        seeds: one run per seed and variant (``run.seed``: initial weights, windows, and the
            validation carve-out).
        epochs: ``optim.epochs`` for every run (default: the base recipe's): the most epochs.
        patience: stop a run when its best validation epoch is this many epochs behind
            (:func:`fit`); None: train every epoch.
        variants: names of files in ``configs/ablations`` (default: all, in the paper's order).
        base: the recipe the variants modify.
        overrides: ``KEY=VALUE`` applied to every run after the variant, e.g. a smaller model.
        worlds: ``dataset`` is a synthetic preset and seed ``k`` also makes the dataset (synth seed
            ``k``), so that the table spreads over datasets too; the runs then go to
            ``out/runs/<dataset>/<variant>/seed<k>``, the layout of ``refdense sweep``, so that an
            ablation and the sweeps of one output folder share their runs.

    A variant that trains the same network the same way as an earlier one (:func:`same_network`:
    on the current recipe ``motion_only`` and ``pat``) is not trained again: it reports that
    variant's runs, and ``ablations.json`` says so under ``same_as``.
    """
    out = Path(out)
    chosen = check_variants(variants)
    if worlds and dataset not in PRESETS:
        raise ValueError(
            f"worlds: the dataset must be a synthetic preset ({', '.join(PRESETS)}), found {dataset!r}"
        )
    common = [f"data.dataset={dataset}", *([f"optim.epochs={epochs}"] if epochs else []), *overrides]
    configs = {v.name: load_config(base, ABLATIONS / f"{v.name}.yaml", overrides=common) for v in chosen}
    out = output_folder(out, "ablate", accepts=("sweep",))
    info = read_info(open_dataset_dir(dataset))
    same_as: dict[str, str] = {}
    for k, variant in enumerate(chosen):
        earlier = next(
            (
                v.name
                for v in chosen[:k]
                if v.name not in same_as and same_network(configs[v.name], configs[variant.name], info)
            ),
            None,
        )
        if earlier is not None:
            same_as[variant.name] = earlier
    values: dict[str, list[dict[str, float]]] = {}
    runs: dict[str, list[dict]] = {}
    trained = [v for v in chosen if v.name not in same_as]
    bar = tqdm(
        total=len(trained) * len(seeds),
        unit="run",
        desc="ablations",
        disable=True if progress is False else None,
    )
    for variant in trained:
        values[variant.name], runs[variant.name] = [], []
        for seed in seeds:
            config = configs[variant.name].with_overrides(f"run.seed={seed}")
            run_dir = out / variant.name / f"seed{seed}"
            if worlds:
                folder = default_dataset(dataset, seed=seed)
                config = config.with_overrides(f"data.dataset={folder}")
                run_dir = out / "runs" / folder.name / variant.name / f"seed{seed}"
            bar.set_description(f"ablations: {variant.name}, seed {seed}")
            values[variant.name].append(run_metrics(fit(config, run_dir, patience)))
            runs[variant.name].append({"seed": seed, **convergence(run_dir, patience)})
            bar.update(1)
    bar.close()
    for name, earlier in same_as.items():
        values[name], runs[name] = values[earlier], runs[earlier]
    with atomic_write(out / "ablations.json") as handle:
        gains = {
            name: {m: interval(paired_gains(values["full"], runs_of, m)) for m in METRICS}
            for name, runs_of in values.items()
            if name != "full" and "full" in values
        }
        json.dump(
            {
                "dataset": dataset,
                "worlds": worlds,
                "seeds": list(seeds),
                "base": str(base),
                "overrides": common,
                "patience": patience,
                "same_as": same_as,
                "runs": values,
                "gains": gains,
                "training": runs,
            },
            handle,
            indent=2,
        )
    report = out / "ABLATIONS.md"
    with atomic_write(report) as handle:
        handle.write(
            ablation_markdown(
                values,
                dataset + (" (seed k: dataset seed k)" if worlds else ""),
                seeds,
                base,
                common,
                same_as,
                runs,
                patience,
            )
        )
    return report


def interval(samples: Sequence[float]) -> dict:
    """``{"mean", "low", "high", "n"}``: the mean and its 95% Student-t interval (NaN bounds for n < 2)."""
    from scipy import stats

    values = np.asarray([s for s in samples if not math.isnan(s)], dtype=np.float64)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def format_interval(summary: dict) -> str:
    """``"+1.23 [+0.10, +2.36]"`` (the mean alone without bounds, "n/a" without a mean)."""
    if math.isnan(summary["mean"]):
        return "n/a"
    if math.isnan(summary["low"]):
        return f"{summary['mean']:+.2f}"
    return f"{summary['mean']:+.2f} [{summary['low']:+.2f}, {summary['high']:+.2f}]"


def paired_gains(reference: list[dict], variant: list[dict], metric: str) -> list[float]:
    """``reference[k][metric] - variant[k][metric]`` for each seed ``k`` (runs in the same seed order)."""
    return [r[metric] - v[metric] for r, v in zip(reference, variant)]


def _cell(samples: list[float], reference: list[float] | None) -> str:
    mean = float(np.mean(samples))
    text = f"{mean:.2f}" + (f" ± {np.std(samples, ddof=1):.2f}" if len(samples) > 1 else "")
    if reference is not None:
        text += f" ({mean - float(np.mean(reference)):+.2f})"
    return text


def ablation_markdown(
    values: dict[str, list[dict]],
    dataset: str,
    seeds: Sequence[int],
    base: str | Path,
    common: Sequence[str],
    same_as: dict[str, str] | None = None,
    runs: dict[str, list[dict]] | None = None,
    patience: int | None = None,
) -> str:
    """The ablation table: mean ± sample std over seeds, in parentheses the difference to the full model."""
    full = values.get("full")
    header = (
        "| Table | Variant | "
        + " | ".join(f"{m}" + (" (τ=0)" if m != "mAP" else "") for m in METRICS)
        + " | gain of the full model, mAP |"
    )
    lines = [
        f"# Ablations on `{dataset}`",
        "",
        f"Seeds {', '.join(map(str, seeds))}; mean ± sample standard deviation over seeds, in % "
        "(in parentheses: the difference of the means to the full RefDense). Test split, each run's "
        "best validation checkpoint. Last column: the full model's mAP minus the variant's, seed by seed, "
        "mean and 95% Student-t interval. Base recipe `"
        + str(Path(base).name)
        + "`, overrides: `"
        + " ".join(common)
        + "`.",
        "",
        header,
        "|---|---|" + "---:|" * (len(METRICS) + 1),
    ]
    for variant in VARIANTS:
        if variant.name not in values:
            continue
        runs_of = values[variant.name]
        reference = None if variant.name == "full" or full is None else full
        cells = [
            _cell([r[m] for r in runs_of], None if reference is None else [r[m] for r in reference])
            for m in METRICS
        ]
        gain = format_interval(interval(paired_gains(reference, runs_of, "mAP"))) if reference else ""
        lines.append(f"| {variant.table} | {variant.label} | " + " | ".join(cells) + f" | {gain} |")
    missing = [m for m in METRICS for runs_of in values.values() for r in runs_of if math.isnan(r[m])]
    if missing:
        lines += ["", "n/a or nan: no action-conditional pair was kept on this test split."]
    for name, earlier in (same_as or {}).items():
        lines += [
            "",
            f"`{name}` trains the same network the same way as `{earlier}` (same initial weights, "
            "configurations equal but for `model.arch`): trained once, reported in both rows.",
        ]
    if runs and patience is not None:
        records = [r for runs_of in runs.values() for r in runs_of]
        stopped = sum(bool(r["converged"]) for r in records)
        lines += [
            "",
            f"Early stopping with patience {patience}: {stopped} of {len(records)} runs stopped with "
            f"their best validation epoch at least {patience} epochs behind (converged); the others "
            "ran the most epochs allowed.",
        ]
    return "\n".join(lines) + "\n"
