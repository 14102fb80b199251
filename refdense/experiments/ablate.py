"""The paper's ablations (Tables 3-7) on any dataset, over several seeds: ``refdense ablate``.

Each variant is a small override file in ``configs/ablations/`` applied on top of a base recipe
(``configs/synthetic.yaml`` by default). Every (variant, seed) pair is one ordinary run of
:func:`refdense.train.train` in ``OUT/<variant>/seed<k>``; a finished run is reused and an
interrupted one resumed, so an ablation can be stopped and started again. The numbers are
computed from each run's ``predictions-test.npz`` by ``refdense.metrics.paper_table`` and written
to ``OUT/ABLATIONS.md`` (mean ± sample standard deviation over seeds) and ``OUT/ablations.json``
(every value). Every table is bounded by a baseline that learns nothing over time: the pooled ridge
probe (:mod:`refdense.experiments.probe`) of each run's dataset, in its own row; a variant below
it is marked. With a patience (``run.patience``), each run stops early once its best validation
epoch is that many epochs behind; how every run ended is recorded (:func:`convergence`). The runs
are fitted by :mod:`refdense.experiments.launch`, one after another or many at once. Two variants
that train the same network the same way are trained once (:func:`same_network`).
:mod:`refdense.experiments.sweep` runs variants the same way over the values of a data dial.

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

from refdense.data import DatasetInfo, read_info
from refdense.experiments.launch import Launch, Run, finished, fit_runs
from refdense.experiments.probe import probe_dataset
from refdense.io import atomic_write, exclusive_lock, output_folder
from refdense.metrics import frame_map, paper_table, read_predictions
from refdense.models import parameter_count
from refdense.synth import PRESETS, default_dataset
from refdense.train.checkpoint import BEST_FILE
from refdense.train.components import build_detector, open_dataset_dir
from refdense.train.config import CONFIGS, TrainConfig, diff, load_config
from refdense.train.evaluate import READOUTS as AUXILIARY_READOUTS
from refdense.train.evaluate import evaluate, readout_path, readout_unavailable
from refdense.train.history import best_epoch, read_history

ABLATIONS = CONFIGS / "ablations"
BASE = CONFIGS / "synthetic.yaml"


@dataclass(frozen=True)
class Variant:
    """One row of the ablation table.

    ``matches``: for a single network widened to a RefDense's parameter count (its file states the
    width), the variant trained with the same loss that it is compared with; ``ablate`` checks the
    two counts agree within :data:`MATCH_TOLERANCE` and reports that gain as well.
    """

    name: str  # file stem in configs/ablations
    table: str  # the paper's table
    label: str
    matches: str | None = None


VARIANTS = (
    Variant("full", "3-7", "RefDense (full)"),
    Variant("entity_only", "3", "Action-Entity alone (I3D+CLIP concat)"),
    Variant("motion_only", "3", "Action-Motion alone (I3D+CLIP concat)"),
    Variant("single_bce", "3", "one network, parameters matched, BCE (I3D+CLIP concat)", matches="full"),
    Variant("full_asl", "3", "RefDense (full), asymmetric loss"),
    Variant("single_asl", "3", "one network, parameters matched, asymmetric loss", matches="full_asl"),
    Variant("no_entity_labels", "4", "without entity labels"),
    Variant("no_motion_labels", "4", "without motion labels"),
    Variant("no_sub_labels", "4", "without entity and motion labels (hence no CoLV)"),
    Variant("no_sub_labels_action_colv", "4", "without entity and motion labels, CoLV on actions"),
    Variant("no_colv", "5", "without CoLV"),
    Variant("colv_random_anchors", "5", "CoLV on random orthonormal anchors (control)"),
    Variant("pat", "6", "PAT (I3D+CLIP concat)"),
    Variant("pat_colv", "6", "PAT + CoLV"),
    Variant("no_cross_attention", "7", "without cross-attention"),
)
MATCH_TOLERANCE = 0.02  # a matched single network's parameter count lies within 2% of its reference's
METRICS = ("mAP", "mAP_ac", "F1_ac")
FLAT_WINDOW = 3  # a run's validation curve is flat when its last FLAT_WINDOW values ...
FLAT_TOLERANCE = 1.0  # ... lie within this many mAP points of each other
LEARNED_FACTOR = 2.0  # a run learned when its test mAP is at least this many times the class-prior floor
PROBE_READOUT = ("both", "pooled")  # the probe every table is bounded by (refdense.experiments.probe)


def run_metrics(
    predictions: Path, rare_classes: Sequence[int] = (), held_out_classes: Sequence[int] = ()
) -> dict[str, float]:
    """The ablation metrics (percent) of one run, from its predictions file.

    With ``rare_classes``, also ``mAP_rare``, and with ``held_out_classes`` (``DatasetInfo.held_out_classes``)
    ``mAP_held_out``: the mean AP over those classes with a positive test frame (NaN when none has one).
    When the run also wrote the composed readout of its auxiliary heads (a RefDense with both:
    :func:`refdense.train.evaluate.readout_path`), its per-frame mAP as ``mAP_composed``, and over
    the same classes ``mAP_composed_rare``, ``mAP_composed_held_out``; when it wrote its motion head's
    predictions (``readout_path(predictions, "motion")``), their mAP on the motion labels as ``mAP_motion``.
    """
    saved = read_predictions(predictions)
    table = paper_table(saved.scores, saved.labels, taus=(0,))
    ac = table.conditional[0]
    values = {"mAP": 100 * table.frame_map.map_all, "mAP_ac": 100 * ac.mAP_ac, "F1_ac": 100 * ac.F1_ac}
    readouts = [("mAP", table.frame_map)]
    composed = readout_path(predictions, "composed")
    if composed.is_file():
        scores = read_predictions(composed)
        readouts.append(("mAP_composed", frame_map(scores.scores, scores.labels)))
        values["mAP_composed"] = 100 * readouts[-1][1].map_all
    motion = readout_path(predictions, "motion")
    if motion.is_file():
        scores = read_predictions(motion)
        values["mAP_motion"] = 100 * frame_map(scores.scores, scores.labels).map_all
    for prefix, frame in readouts:
        for suffix, classes in (("rare", rare_classes), ("held_out", held_out_classes)):
            if classes:
                values[f"{prefix}_{suffix}"] = 100 * frame.map_over(classes)
    return values


BEST_PREDICTIONS = "predictions-test-best.npz"
"""A run's test predictions by its best-validation checkpoint (the secondary protocol), beside the
``predictions-test.npz`` of the checkpoint ``run.test_checkpoint`` names (the name ``refdense
evaluate`` gives them in a run that tests ``latest.pt``); its readouts beside it under
:func:`refdense.train.evaluate.readout_path`'s names (``predictions-test-best-composed.npz``)."""
BEST_RESULTS = "results-test-best.json"
"""What :func:`best_checkpoint_predictions` recorded of a run: the checkpoint, its epoch, the files and
:func:`run_metrics` (over all classes and the held-out ones); written last, so it marks the files complete."""


def best_checkpoint_predictions(config: TrainConfig, run_dir: Path) -> Path:
    """The test predictions of a finished run's ``checkpoints/best.pt`` (the secondary protocol),
    scored by :func:`refdense.train.evaluate.evaluate` with every readout the run has; nothing is trained.

    Written once into ``run_dir`` (:data:`BEST_PREDICTIONS`, its readouts, then :data:`BEST_RESULTS`,
    each atomically) and reused while the run's best validation epoch is the one recorded. A run
    that is missing, not finished (:func:`refdense.experiments.launch.finished`) or being fitted by
    another process is an error naming it. The checkpoint is read with ``weights_only`` (no code runs).
    """
    predictions, record = run_dir / BEST_PREDICTIONS, run_dir / BEST_RESULTS
    if not (run_dir / "results.json").is_file():
        raise ValueError(
            f"{run_dir}: not a finished run (no results.json); train it first (the same command "
            "without --checkpoint best), nothing is trained when scoring the best checkpoint"
        )
    with exclusive_lock(run_dir / "fit.lock", f"run directory {run_dir}"):
        if not finished(config, run_dir):
            raise ValueError(
                f"{run_dir}: not finished ({len(read_history(run_dir))} of {config.optim.epochs} epochs); "
                "train it first (the same command without --checkpoint best)"
            )
        history = read_history(run_dir)
        epoch = best_epoch(history) or len(history)  # without validation, best.pt is the last epoch
        if record.is_file() and json.loads(record.read_text(encoding="utf-8"))["checkpoint_epoch"] == epoch:
            return predictions
        readouts = [name for name in AUXILIARY_READOUTS if readout_unavailable(config, name) is None]
        checkpoint = run_dir / "checkpoints" / BEST_FILE
        result = evaluate(
            checkpoint,
            predictions,
            dataset=config.data.dataset,
            device=config.run.device,
            precision=config.run.precision,
            progress=False,
            readouts=readouts,
        )
        if result.epoch != epoch:
            raise ValueError(
                f"{checkpoint}: holds epoch {result.epoch}, but its run's best validation epoch is {epoch}"
            )
        held_out = read_info(open_dataset_dir(config.data.dataset)).held_out_classes
        values = {
            "checkpoint": f"checkpoints/{BEST_FILE}",
            "checkpoint_epoch": epoch,
            "predictions": [predictions.name, *(readout_path(predictions, name).name for name in readouts)],
            "metrics": run_metrics(predictions, (), held_out),
        }
        with atomic_write(record) as handle:
            json.dump(values, handle, indent=2)
    return predictions


def run_probe(config: TrainConfig, folder: Path) -> dict[str, float]:
    """``{"probe", "prior"}``: the test mAP (percent) of the pooled ridge probe of both streams and the
    class-prior floor, on the dataset and validation carve-out of ``config``'s run; computed once per
    dataset and carve-out and kept in ``folder`` (a JSON file each)."""
    root = open_dataset_dir(config.data.dataset)
    fraction, seed = config.data.validation_fraction, config.run.seed
    path = folder / f"{root.name}-validation{fraction:g}-seed{seed}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    result = probe_dataset(root, fraction, seed)
    values = {"probe": result.readout(*PROBE_READOUT).test_map, "prior": result.prior_map}
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        json.dump(values, handle)
    return values


def convergence(run_dir: Path, window: int = FLAT_WINDOW, tolerance: float = FLAT_TOLERANCE) -> dict:
    """How a finished run ended: ``{"epochs", "best_epoch", "stopped_early", "flat"}``.

    ``flat``: the validation curve is flat at the end, its last ``window`` validated mAPs within
    ``tolerance`` points of each other (None without that many validated epochs); ``stopped_early``:
    the run trained fewer epochs than ``optim.epochs`` (``run.patience`` stopped it).
    """
    history = read_history(run_dir)
    epochs = load_config(run_dir / "config.yaml").optim.epochs
    curve = [record["val"]["map"] for record in history if "val" in record][-window:]
    flat = None if len(curve) < window else max(curve) - min(curve) <= tolerance
    return {
        "epochs": len(history),
        "best_epoch": best_epoch(history),
        "stopped_early": len(history) < epochs,
        "flat": flat,
    }


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


def parameter_counts(configs: dict[str, TrainConfig], info: DatasetInfo) -> dict[str, int]:
    """``{name: parameters}`` of each configuration's model for ``info``'s widths and class counts,
    built on the meta device (nothing allocated, no random number drawn)."""
    counts = {}
    for name, config in configs.items():
        with torch.device("meta"):
            counts[name] = parameter_count(build_detector(config.model, info))
    return counts


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
    launch: Launch = Launch(),
) -> Path:
    """Run the ablations and write ``out/ABLATIONS.md``; return its path.

    Args:
        dataset: dataset folder or synthetic preset (``data.dataset``).
        out: output folder.
        seeds: one run per seed and variant (``run.seed``: initial weights, windows, and the
            validation carve-out).
        epochs: ``optim.epochs`` for every run (default: the base recipe's): the most epochs.
        patience: ``run.patience`` of every run: stop it when its best validation epoch is this
            many epochs behind; None: the base recipe's.
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
    common = [
        f"data.dataset={dataset}",
        *([f"optim.epochs={epochs}"] if epochs else []),
        *([f"run.patience={patience}"] if patience else []),
        *overrides,
    ]
    configs = {v.name: load_config(base, ABLATIONS / f"{v.name}.yaml", overrides=common) for v in chosen}
    out = output_folder(out, "ablate", accepts=("sweep",))
    info = read_info(open_dataset_dir(dataset))
    references = {v.matches for v in chosen if v.matches} - set(configs)
    parameters = parameter_counts(
        configs | {n: load_config(base, ABLATIONS / f"{n}.yaml", overrides=common) for n in references}, info
    )
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
    trained = [v for v in chosen if v.name not in same_as]
    planned: list[tuple[str, int, Run]] = []  # (variant, seed, run)
    for variant in trained:
        for seed in seeds:
            config = configs[variant.name].with_overrides(f"run.seed={seed}")
            run_dir = out / variant.name / f"seed{seed}"
            if worlds:
                folder = default_dataset(dataset, seed=seed)
                config = config.with_overrides(f"data.dataset={folder}")
                run_dir = out / "runs" / folder.name / variant.name / f"seed{seed}"
            planned.append((variant.name, seed, (config, run_dir)))
    predictions = fit_runs(
        [run for *_, run in planned],
        launch,
        slurm_folder=out / "slurm",
        desc="ablations",
        progress=progress,
    )
    values: dict[str, list[dict[str, float]]] = {v.name: [] for v in trained}
    runs: dict[str, list[dict]] = {v.name: [] for v in trained}
    for (name, seed, (config, run_dir)), path in zip(planned, predictions):
        held_out = read_info(open_dataset_dir(config.data.dataset)).held_out_classes
        values[name].append(run_metrics(path, held_out_classes=held_out))
        runs[name].append({"seed": seed, **convergence(run_dir), **run_probe(config, out / "probes")})
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
                "parameters": parameters,
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
                parameters,
            )
        )
    return report


def interval(samples: Sequence[float], level: float = 0.95) -> dict:
    """``{"mean", "low", "high", "n"}``: the mean and its two-sided Student-t interval at ``level`` (95%
    by default; NaN bounds for n < 2)."""
    from scipy import stats

    values = np.asarray([s for s in samples if not math.isnan(s)], dtype=np.float64)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    half = (
        float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    )
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
    parameters: dict[str, int] | None = None,
) -> str:
    """The ablation table: mean ± sample std over seeds, in parentheses the difference to the full model;
    with ``runs`` (each run's :func:`convergence` and :func:`run_probe` record, in the order of
    ``values``), a row for the pooled probe, a mark on each variant below it, and how the runs ended;
    with ``parameters`` (:func:`parameter_counts`), whether each matched single network
    (:attr:`Variant.matches`) has its reference's parameter count, and its gain against it."""
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
        "(in parentheses: the difference of the means to the full RefDense). Test split, the checkpoint "
        "`run.test_checkpoint` names. Last column: the full model's mAP minus the variant's, seed by seed, "
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
        label = variant.label
        if runs and runs_below_probe(runs_of, runs[variant.name]):
            label += " ⚠"
        lines.append(f"| {variant.table} | {label} | " + " | ".join(cells) + f" | {gain} |")
    if runs:
        first = runs[next(iter(runs))]
        probes = [r["probe"] for r in first]
        lines.append(
            f"| - | ridge probe, both streams pooled (not trained) | {_cell(probes, None)} |"
            + " |" * len(METRICS)
        )
    missing = [m for m in METRICS for runs_of in values.values() for r in runs_of if math.isnan(r[m])]
    if missing:
        lines += ["", "n/a or nan: no action-conditional pair was kept on this test split."]
    for name, earlier in (same_as or {}).items():
        lines += [
            "",
            f"`{name}` trains the same network the same way as `{earlier}` (same initial weights, "
            "configurations equal but for `model.arch`): trained once, reported in both rows.",
        ]
    if parameters:
        lines += matched_notes(values, parameters)
    lines += readout_notes(values)
    if runs:
        lines += ["", *training_notes(values, runs)]
    return "\n".join(lines) + "\n"


#: The per-run metrics besides :data:`METRICS` that :func:`readout_notes` reports, and their words.
READOUTS = {
    "mAP_composed": "composed readout P_ent x P_mot (evaluation only)",
    "mAP_held_out": "held-out classes, action head",
    "mAP_composed_held_out": "held-out classes, composed readout",
    "mAP_motion": "motion head on the motion labels (the mechanism check of cross-attention)",
}


def readout_notes(values: dict[str, list[dict]]) -> list[str]:
    """A paragraph (preceded by a blank line) per metric of :data:`READOUTS` that some variant's runs
    have: its mean ± sample std over seeds for each such variant, in the table's order."""
    lines = []
    for metric, words in READOUTS.items():
        cells = [
            f"`{v.name}` {_cell([r[metric] for r in values[v.name]], None)}"
            for v in VARIANTS
            if v.name in values and all(metric in r for r in values[v.name])
        ]
        if cells:
            lines += ["", f"mAP, {words}: " + ", ".join(cells) + "."]
    return lines


def matched_notes(values: dict[str, list[dict]], parameters: dict[str, int]) -> list[str]:
    """One paragraph (preceded by a blank line) per matched variant of ``values`` whose count and its
    reference's are in ``parameters``: both counts, whether they agree within :data:`MATCH_TOLERANCE`,
    and the reference's paired mAP gain when the reference was trained too."""
    lines = []
    for variant in VARIANTS:
        reference = variant.matches
        if variant.name not in values or reference is None or reference not in parameters:
            continue
        mine, theirs = parameters[variant.name], parameters[reference]
        change = mine / theirs - 1
        text = (
            f"`{variant.name}` has {mine:,} parameters, `{reference}` {theirs:,} ({100 * change:+.1f}%): "
            + (
                f"matched (within {100 * MATCH_TOLERANCE:g}%)."
                if abs(change) <= MATCH_TOLERANCE
                else f"⚠ NOT matched (more than {100 * MATCH_TOLERANCE:g}% apart) under this base recipe and "
                f"these overrides: the width in configs/ablations/{variant.name}.yaml fits the shipped recipe."
            )
        )
        if reference in values:
            gain = format_interval(interval(paired_gains(values[reference], values[variant.name], "mAP")))
            text += f" Same loss, `{reference}` minus `{variant.name}`, mAP: {gain}."
        lines += ["", text]
    return lines


def runs_below_probe(values: list[dict], runs: list[dict]) -> int:
    """How many runs (``values``: their metrics, ``runs``: their :func:`run_probe` records, in the same
    order) score a test mAP below their dataset's probe."""
    return sum(value["mAP"] < run["probe"] for value, run in zip(values, runs))


def training_notes(values: dict[str, list[dict]], runs: dict[str, list[dict]]) -> list[str]:
    """The sentences under a table of trained runs (``values`` and ``runs`` by variant, in the same
    order): which fall below the probe, which never learned, which stopped early, whose validation
    curves are not flat at the end."""
    below = {name: runs_below_probe(values[name], runs[name]) for name in runs}
    marked = [f"`{name}` ({count} of {len(runs[name])} runs)" for name, count in below.items() if count]
    notes = [
        "Probe: a ridge regression of the labels on both input streams with fixed temporal means "
        f"(`refdense probe`, readout `{'/'.join(PROBE_READOUT)}`), fitted on each run's own dataset and "
        "validation carve-out; it learns nothing over time. "
        + (
            "⚠ marks runs below its test mAP: " + ", ".join(marked) + "."
            if marked
            else "Every trained run is above it."
        )
    ]
    records = [(name, t, r) for name in runs for t, r in zip(runs[name], values[name])]
    unlearned = [
        f"`{name}` seed {t['seed']}" for name, t, r in records if r["mAP"] < LEARNED_FACTOR * t["prior"]
    ]
    if unlearned:
        notes.append(
            f"Never learned (test mAP below {LEARNED_FACTOR:g} x the class-prior floor): "
            + ", ".join(unlearned)
            + "."
        )
    stopped = sum(bool(t["stopped_early"]) for _, t, _ in records)
    flat = sum(t["flat"] is True for _, t, _ in records)
    notes.append(
        f"{stopped} of {len(records)} runs were stopped early by `run.patience`; {flat} of {len(records)} end "
        f"with a flat validation curve (their last {FLAT_WINDOW} validated mAPs within {FLAT_TOLERANCE:g} "
        "point); the others were still changing."
    )
    return [line for note in notes for line in (note, "")][:-1]
