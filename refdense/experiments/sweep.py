"""A component's gain against one mechanism dial of the synthetic data, over seeds: ``refdense sweep``.

For each value of one dial (:class:`refdense.synth.Dials`; ``data/README.md``, "Mechanism dials")
and each seed ``k``, the sweep builds the dataset of the preset with seed ``k`` and the dial at that
value (cached by :func:`refdense.synth.default_dataset`), and trains each variant (a file in
``configs/ablations``) on it with ``run.seed = k``, exactly as ``refdense ablate`` trains a run
(:func:`refdense.experiments.launch.fit`: resumable, early stopping with ``run.patience``), and
the pooled ridge probe of each dataset beside them (:func:`refdense.experiments.ablate.run_probe`). A seed is one
replicate: one world (the concepts, prototypes and videos) and one training of each variant.

The gain of a variant at a dial value is, seed by seed, the reference (``full``) minus the variant
on the same dataset (a paired difference), summarised by its mean and a 95% Student-t interval over
the seeds; its trend is the least-squares slope of the gain against the dial, seed by seed, with
the same summary. With ``rare_share``, ``mAP_rare`` is reported beside the mAP over all classes:
the mAP over the classes that are rare at the sweep's largest ``rare_share`` (``dataset.json``'s
``dials.rare_classes``). A seed's world is the same at every value and the rare classes of a
smaller share are among those of a larger one, so ``mAP_rare`` follows the same classes, on the
same test split, from frequent (at 0) to capped. With ``rare_entities``, ``mAP_rare`` is over the
classes of its rare entities (the same entities at every value above 0), and over both sets when
both dials are on.

Files (every sweep of one output folder shares its runs: a dial at its default value is the same
dataset whichever dial is swept)::

    OUT/runs/<dataset>/<variant>/seed<k>/   one ordinary run directory per (dataset, variant, seed)
    OUT/<dial>[-<fixed dials>]/sweep.json   the settings, every run's metrics, and the gains
    OUT/<dial>[-<fixed dials>]/SWEEP.md     the gains as a table
    OUT/<dial>[-<fixed dials>]/sweep.png    mAP and gain against the dial, mean and 95% interval (with matplotlib)

(``-<fixed dials>`` names the other dials held fixed, e.g. ``text_alignment-train_videos60``.)

The secondary protocol (``checkpoint="best"``, ``refdense sweep ... --checkpoint best``) trains
nothing: it scores each finished run's best-validation checkpoint on the test split, once per run
(``RUN/predictions-test-best.npz`` and its readouts, ``RUN/results-test-best.json``), and writes
``sweep-best.json``, ``SWEEP-best.md`` and ``sweep-best.png`` beside the primary files.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from refdense.data import read_info
from refdense.experiments.ablate import (
    ABLATIONS,
    BASE,
    BEST_RESULTS,
    METRICS,
    best_checkpoint_predictions,
    check_variants,
    convergence,
    format_interval,
    interval,
    run_metrics,
    run_probe,
    runs_below_probe,
    training_notes,
)
from refdense.experiments.launch import Launch, fit_runs
from refdense.extras import NO_PLOTS, available
from refdense.io import atomic_write, output_folder
from refdense.synth import PRESETS, WHOLE_DIALS, Dials, dataset_info, default_dataset
from refdense.train.checkpoint import BEST_FILE
from refdense.train.config import TrainConfig, load_config

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DIALS = (
    "coupling",
    "rare_share",
    "text_alignment",
    "train_videos",
    "held_out",
    "held_out_k",
    "entity_gate",
    "entangle",
    "text_prior",
    "rare_entities",
)
CHECKPOINTS = {"tested": "", "best": "-best"}
"""Which checkpoint of each run a sweep or study scores, and the suffix of its files: ``tested``, the one
``run.test_checkpoint`` names (the primary protocol: ``sweep.json``, ``STUDY.md``), or ``best``, each
run's best-validation ``checkpoints/best.pt`` (the secondary protocol: ``sweep-best.json``, ``STUDY-best.md``)."""
SECONDARY = "secondary protocol: best-validation checkpoint"
REFERENCE = "full"


def dials_at(dial: str, value: float, fixed: Dials = Dials()) -> Dials:
    """``fixed`` with ``dial`` set to ``value`` (an integer for the dials of :data:`refdense.synth.WHOLE_DIALS`); checks both.

    ``held_out_k`` needs ``held_out`` above 0 in ``fixed`` (without held-out classes it changes nothing).
    """
    if dial not in DIALS:
        raise ValueError(f"dial: expected one of {', '.join(DIALS)}, found {dial!r}")
    if dial in WHOLE_DIALS:
        if float(value) != int(value):
            raise ValueError(f"dial {dial}: expected whole numbers, found {value!r}")
        value = int(value)
    if dial == "held_out_k" and not fixed.held_out:
        raise ValueError("dial held_out_k: hold held_out above 0 fixed (e.g. --fixed held_out=0.3)")
    change: dict[str, Any] = {dial: value}  # the dial is named at run time
    return dataclasses.replace(fixed, **change)


def _rare_classes(preset: str, seed: int, dials: Dials) -> list[int]:
    """The rare class ids of a preset's dataset at ``dials``: ``rare_share``'s rare classes and the
    classes of ``rare_entities``' rare entities (none when both dials are 0)."""
    if not (dials.rare_share or dials.rare_entities):
        return []
    info = dataset_info(preset, seed, dials)
    assert info.dials is not None, "a dataset off the default dials records them"
    rare_entities = set(info.dials.get("rare_entities", ()))
    of_entities = [c for c, (e, _) in enumerate(info.decomposition) if e in rare_entities]
    return sorted({*info.dials["rare_classes"], *of_entities})


def sweep_config(
    preset: str,
    dial: str,
    value: float,
    seed: int,
    variant: str,
    *,
    fixed: Dials = Dials(),
    base: str | Path = BASE,
    overrides: Sequence[str] = (),
) -> tuple[Path, TrainConfig]:
    """The dataset folder (built if missing) and the :class:`TrainConfig` of one run of a sweep."""
    folder = default_dataset(preset, seed=seed, dials=dials_at(dial, value, fixed))
    config = load_config(
        base,
        ABLATIONS / f"{variant}.yaml",
        overrides=[f"data.dataset={folder}", f"run.seed={seed}", *overrides],
    )
    return folder, config


def slope(values: Sequence[float], gains: Sequence[float]) -> float:
    """The least-squares slope of ``gains`` against ``values`` over the finite gains (NaN with fewer than two)."""
    x, y = np.asarray(values, dtype=np.float64), np.asarray(gains, dtype=np.float64)
    finite = np.isfinite(y)
    if finite.sum() < 2 or np.ptp(x[finite]) == 0:
        return math.nan
    return float(np.polyfit(x[finite], y[finite], 1)[0])


def seed_gains(
    reference: Sequence[dict], variant: Sequence[dict], metric: str, reference_metric: str | None = None
) -> dict[int, float]:
    """``{seed: reference's metric - variant's}``, the runs paired by their ``seed``, not their position.

    ``reference`` and ``variant``: run records of ``sweep.json`` (each with ``seed`` and ``metric``);
    ``reference_metric``: the reference's metric when it is another (e.g. its composed readout against
    the variant's action head); a seed run twice, or run by one and not the other, is an error that
    names it.
    """
    by_seed = []
    for name, records, key in (
        ("reference", reference, reference_metric or metric),
        ("variant", variant, metric),
    ):
        seeds = [r["seed"] for r in records]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{name} runs: a seed appears twice ({seeds})")
        by_seed.append({r["seed"]: r[key] for r in records})
    first, second = by_seed
    if first.keys() != second.keys():
        raise ValueError(
            f"gains in {metric}: the reference ran seeds {sorted(first)}, the variant seeds {sorted(second)}"
        )
    return {seed: first[seed] - second[seed] for seed in first}


def seed_trends(
    runs: dict[str, dict[str, list[dict]]], values: Sequence[float], variant: str, metric: str
) -> dict[int, float]:
    """Seed by seed, the slope of the gain (``full`` minus ``variant`` in ``metric``) against the dial.

    ``runs``: ``sweep.json``'s ``runs`` (dial value -> variant -> one record per seed); ``values``: the
    dial's values, in the order of ``runs``. Every value must hold the same seeds (checked).
    """
    gains = [seed_gains(by_variant[REFERENCE], by_variant[variant], metric) for by_variant in runs.values()]
    for key, at_value in zip(runs, gains, strict=True):
        if at_value.keys() != gains[0].keys():
            raise ValueError(
                f"dial value {key}: seeds {sorted(at_value)}, but {sorted(gains[0])} at {next(iter(runs))}"
            )
    return {seed: slope(values, [at_value[seed] for at_value in gains]) for seed in gains[0]}


def sweep(
    dial: str,
    values: Sequence[float],
    out: str | Path,
    *,
    preset: str = "default",
    variants: Sequence[str] = (REFERENCE, "no_cross_attention"),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    fixed: Dials = Dials(),
    epochs: int | None = None,
    patience: int | None = None,
    base: str | Path = BASE,
    overrides: Sequence[str] = (),
    progress: bool | None = None,
    launch: Launch = Launch(),
    checkpoint: str = "tested",
) -> Path:
    """Run the sweep of ``dial``: write ``sweep.json``, ``SWEEP.md``, ``sweep.png`` (module docstring); return the json.

    With ``checkpoint="best"`` (the secondary protocol), nothing is trained: every run of the sweep
    must be finished (an error names the first that is not), its ``checkpoints/best.pt`` is scored
    on the test split (:func:`refdense.experiments.ablate.best_checkpoint_predictions`, once per run)
    and the files are ``sweep-best.json``, ``SWEEP-best.md``, ``sweep-best.png``.

    Args:
        dial: one of :data:`DIALS`.
        values: the dial's values, in the order to plot them.
        out: output folder (its ``runs/`` may be shared with other sweeps).
        preset: the synthetic preset the datasets are made from.
        variants: files in ``configs/ablations``; must include ``full``, the reference of the gains.
        seeds: replicates; seed ``k`` makes the dataset (synth seed) and the run (``run.seed``).
        fixed: the other dials, the same at every value (e.g. ``Dials(train_videos=60)``).
        epochs: ``optim.epochs`` of every run (default: the base recipe's): the most epochs.
        patience: ``run.patience`` of every run (early stopping); None: the base recipe's.
        base: the recipe the variants modify; overrides: ``KEY=VALUE`` for every run.
        launch: how many runs at once, here or on Slurm (:mod:`refdense.experiments.launch`).
        checkpoint: a key of :data:`CHECKPOINTS`.
    """
    out = Path(out)
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint: expected one of {', '.join(CHECKPOINTS)}, found {checkpoint!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, found {preset!r}")
    chosen = [v.name for v in check_variants(variants)]
    if REFERENCE not in chosen or len(chosen) < 2:
        raise ValueError(
            f"variants: expected {REFERENCE!r} (the reference of the gains) and at least one other, "
            f"found {list(variants)}"
        )
    if not values or not seeds:
        raise ValueError("values and seeds: expected at least one of each")
    worlds = [dials_at(dial, value, fixed) for value in values]  # checks every value before training
    common = [
        *([f"optim.epochs={epochs}"] if epochs else []),
        *([f"run.patience={patience}"] if patience else []),
        *overrides,
    ]
    rarest = max(worlds, key=lambda d: (d.rare_share, d.rare_entities))
    rare_classes = {seed: _rare_classes(preset, seed, rarest) for seed in seeds}
    metrics = [*METRICS, *(["mAP_rare"] if rarest.rare_share or rarest.rare_entities else [])]
    out = output_folder(out, "sweep", accepts=("ablate",))
    planned = []  # (dial value, variant, seed, dataset folder, run): the datasets built here, first
    for value in values:
        for seed in seeds:
            for name in chosen:
                folder, config = sweep_config(
                    preset, dial, value, seed, name, fixed=fixed, base=base, overrides=common
                )
                planned.append(
                    (
                        f"{value:g}",
                        name,
                        seed,
                        folder,
                        (config, out / "runs" / folder.name / name / f"seed{seed}"),
                    )
                )
    if checkpoint == "best":
        predictions = [best_checkpoint_predictions(*run) for *_, run in planned]
    else:
        predictions = fit_runs(
            [run for *_, run in planned],
            launch,
            slurm_folder=out / "slurm",
            desc=f"sweep {dial}",
            progress=progress,
        )
    runs: dict[str, dict[str, list[dict]]] = {f"{value:g}": {name: [] for name in chosen} for value in values}
    for (key, name, seed, folder, (config, run_dir)), path in zip(planned, predictions):
        runs[key][name].append(
            {
                "seed": seed,
                "dataset": folder.name,
                "run": str(run_dir.relative_to(out)),
                **run_metrics(path, rare_classes[seed], read_info(folder).held_out_classes),
                **convergence(run_dir),
                **run_probe(config, out / "probes"),
                **_checkpoint_epoch(run_dir, checkpoint),
            }
        )
    settings = {
        "dial": dial,
        "values": list(values),
        "preset": preset,
        "fixed_dials": dataclasses.asdict(fixed),
        "seeds": list(seeds),
        "variants": chosen,
        "reference": REFERENCE,
        "base": str(base),
        "overrides": common,
        "epochs": epochs,
        "patience": patience,
        "checkpoint": checkpoint,
        "metrics": metrics,
        "rare_classes": {f"seed{seed}": classes for seed, classes in rare_classes.items()},
    }
    return write_sweep(summarise(settings, runs), out / f"{dial}{fixed.slug()}")


def summarise(settings: dict, runs: dict[str, dict[str, list[dict]]]) -> dict:
    """The content of ``sweep.json``: ``settings`` (the dial, its values, the variants, ...) and ``runs``
    (dial value -> variant -> one record per seed) with the means of each variant, the gains of the
    reference over each other variant and their trends against the dial (mean and 95% interval over seeds)."""
    reference, metrics = settings["reference"], settings["metrics"]
    others = [name for name in settings["variants"] if name != reference]
    per_seed = {
        name: {
            m: [
                list(seed_gains(by_variant[reference], by_variant[name], m).values())
                for by_variant in runs.values()
            ]
            for m in metrics
        }
        for name in others
    }  # [value][seed]
    gains = {
        key: {name: {m: interval(per_seed[name][m][v]) for m in metrics} for name in others}
        for v, key in enumerate(runs)
    }
    means = {
        key: {
            name: {m: interval([r[m] for r in by_variant[name]]) for m in metrics}
            for name in settings["variants"]
        }
        for key, by_variant in runs.items()
    }
    trends = {
        name: {m: interval(list(seed_trends(runs, settings["values"], name, m).values())) for m in metrics}
        for name in others
    }
    return {**settings, "runs": runs, "means": means, "gains": gains, "trends": trends}


def write_sweep(result: dict, folder: Path) -> Path:
    """Write ``result`` (:func:`summarise`) to ``folder`` as ``sweep.json``, ``SWEEP.md`` and ``sweep.png``
    (``-best`` before the extension with the secondary protocol); return the json's path."""
    suffix = CHECKPOINTS[result["checkpoint"]]
    with atomic_write(folder / f"sweep{suffix}.json") as handle:
        json.dump(result, handle, indent=2)
    plots = available("matplotlib")
    with atomic_write(folder / f"SWEEP{suffix}.md") as handle:
        handle.write(sweep_markdown(result) + ("" if plots else f"\n{NO_PLOTS}\n"))
    if plots:
        from refdense.train.report import save_figure

        save_figure(plot_sweep(result), folder / f"sweep{suffix}.png")
    return folder / f"sweep{suffix}.json"


JOINED_KEYS = (
    "dial",
    "values",
    "preset",
    "fixed_dials",
    "variants",
    "reference",
    "base",
    "overrides",
    "epochs",
    "patience",
    "checkpoint",
    "metrics",
)
"""The settings every part of a joined sweep must share (:func:`join_sweeps`)."""


def join_sweeps(parts: Sequence[str | Path], folder: str | Path) -> Path:
    """One sweep from ``parts``, the ``sweep.json`` (or ``sweep-best.json``) files of one sweep run on
    disjoint seeds (in other sessions, on other machines): the same settings (:data:`JOINED_KEYS`),
    every run record kept as it is, and the means, gains and trends recomputed over all the seeds, as if
    one sweep had run them. Written to ``folder`` (:func:`write_sweep`, which may be one part's own
    folder: the parts are read first); ``parts`` in the result lists the seeds of each sweep that ran
    (a part that is itself joined brings its own ``parts``), so a sweep can grow a part at a time.
    """
    if len(parts) < 2:
        raise ValueError(f"join: expected at least two sweep files, found {len(parts)}")
    loaded = []
    for path in map(Path, parts):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not a sweep file ({error})") from None
        missing = [
            key for key in ("runs", "seeds", *JOINED_KEYS) if key not in result and key != "checkpoint"
        ]
        if missing:
            raise ValueError(f"{path}: not a sweep file (no {', '.join(missing)})")
        # sweeps written before the key existed scored the checkpoint run.test_checkpoint names
        loaded.append((path, {"checkpoint": "tested", **result}))
    first_path, first = loaded[0]
    seen: dict[int, Path] = {}
    for path, result in loaded:
        for key in JOINED_KEYS:
            if result[key] != first[key]:
                raise ValueError(
                    f"{path}: {key} is {result[key]!r}, but {first[key]!r} in {first_path}; "
                    "only parts of one sweep can be joined"
                )
        for seed in result["seeds"]:
            if seed in seen:
                raise ValueError(
                    f"{path}: seed {seed} is also in {seen[seed]}; the parts must have disjoint seeds"
                )
            seen[seed] = path
    runs = {
        key: {
            name: sorted(
                (r for _, result in loaded for r in result["runs"][key][name]), key=lambda r: r["seed"]
            )
            for name in first["variants"]
        }
        for key in first["runs"]
    }
    settings = {key: first[key] for key in JOINED_KEYS}
    settings["seeds"] = sorted(seen)
    rare_classes = {key: classes for _, result in loaded for key, classes in result["rare_classes"].items()}
    settings["rare_classes"] = {f"seed{seed}": rare_classes[f"seed{seed}"] for seed in sorted(seen)}
    settings["parts"] = [seeds for _, result in loaded for seeds in result.get("parts", [result["seeds"]])]
    return write_sweep(summarise(settings, runs), Path(folder))


def _checkpoint_epoch(run_dir: Path, checkpoint: str) -> dict[str, int]:
    """``{"checkpoint_epoch": E}``, the epoch of the best checkpoint scored (``checkpoint="best"``; else empty)."""
    if checkpoint != "best":
        return {}
    record = json.loads((run_dir / BEST_RESULTS).read_text(encoding="utf-8"))
    return {"checkpoint_epoch": record["checkpoint_epoch"]}


def other_dials(result: dict) -> str:
    """The dials a sweep held away from their defaults, e.g. ``"train_videos=60"`` (empty if none)."""
    return ", ".join(f"{k}={v}" for k, v in result["fixed_dials"].items() if v != getattr(Dials(), k))


def sweep_markdown(result: dict) -> str:
    """The gains of a sweep (``sweep.json``'s content) as a markdown table."""
    metrics, reference = result["metrics"], result["reference"]
    others = other_dials(result) or "defaults"
    # sweeps written before the key existed scored the checkpoint run.test_checkpoint names
    best = result.get("checkpoint") == "best"
    scored = (
        f"each run's best-validation checkpoint `checkpoints/{BEST_FILE}`; the {SECONDARY}, descriptive, "
        "never used for a decision"
        if best
        else "the checkpoint `run.test_checkpoint` names"
    )
    lines = [
        f"# Sweep of `{result['dial']}` on the `{result['preset']}` preset"
        + (f" ({SECONDARY})" if best else ""),
        "",
        f"Gain = `{reference}` minus the variant, in mAP points (test split, {scored}), "
        f"paired by seed; mean and 95% Student-t interval over seeds "
        f"{', '.join(map(str, result['seeds']))} "
        f"(a seed makes both the dataset and the run). Other dials: {others}. Overrides: "
        f"`{' '.join(result['overrides']) or 'none'}`; patience {result['patience']}."
        + (
            " The sweep was joined from parts run apart: seeds "
            + "; ".join(", ".join(map(str, seeds)) for seeds in result["parts"])
            + " (`refdense join-sweeps`)."
            if "parts" in result
            else ""
        ),
        "",
        f"| {result['dial']} | variant | {reference} mAP | "
        + " | ".join(f"gain {m}" for m in metrics)
        + " |",
        "|---:|---|---:|" + "---:|" * len(metrics),
    ]
    records = [r for by_variant in result["runs"].values() for runs in by_variant.values() for r in runs]
    probed = all("probe" in r for r in records)
    if best:
        last = sum(r["checkpoint_epoch"] == r["epochs"] for r in records)
        lines[3:3] = [
            "",
            f"{last} of {len(records)} runs' best validation epoch is their last (the checkpoint the "
            "primary protocol tests there).",
        ]
    for key, by_variant in result["gains"].items():
        for name, gains in by_variant.items():
            absolute = result["means"][key][reference]["mAP"]
            lines.append(
                f"| {key} | {name} | {absolute['mean']:.2f}{_probe_mark(result['runs'][key][reference], probed)} | "
                + " | ".join(format_interval(gains[m]) for m in metrics)
                + " |"
            )
    lines += [
        "",
        f"Trend: the slope of the gain against `{result['dial']}` (least squares over the values, seed "
        "by seed; mean and 95% interval over seeds), in points per unit of the dial:",
        "",
    ]
    for name, trends in result["trends"].items():
        lines.append(f"- {name}: " + ", ".join(f"{m} {format_interval(trends[m])}" for m in metrics))
    if probed:
        probes = ", ".join(
            f"{key}: {np.mean([r['probe'] for r in by_variant[reference]]):.2f}"
            for key, by_variant in result["runs"].items()
        )
        lines += [
            "",
            f"The probe's test mAP at each value of `{result['dial']}` (mean over seeds): {probes}.",
        ]
        by_name = {
            name: [r for by_variant in result["runs"].values() for r in by_variant[name]]
            for name in result["variants"]
        }
        lines += ["", *training_notes(by_name, by_name)]  # a sweep's records hold both
    elif result["patience"] is not None:  # a sweep of the first study: "converged" meant stopped early
        converged = sum(bool(r["converged"]) for r in records)
        lines += [
            "",
            f"{converged} of {len(records)} runs converged (best validation epoch at least "
            f"{result['patience']} epochs before the last).",
        ]
    return "\n".join(lines) + "\n"


def _probe_mark(records: list[dict], probed: bool) -> str:
    """`` ⚠`` when a run of ``records`` is below its dataset's probe."""
    return " ⚠" if probed and runs_below_probe(records, records) else ""


def plot_sweep(result: dict) -> Figure:
    """Figure: mAP of each variant, and the gain of the reference over each, against the dial (mean, 95% interval).

    The reference is in RefDense's colour, each other variant in its own (:data:`refdense.viz.style.VARIANT_COLOURS`,
    then again with the next of :data:`refdense.viz.style.LINE_STYLES`), the same in every panel.
    """
    import matplotlib.pyplot as plt

    from refdense.viz.style import (
        FONT_SIZES,
        LINE_STYLES,
        MODEL_COLOURS,
        REFERENCE_GREY,
        VARIANT_COLOURS,
        figure_size,
        styled,
    )

    with styled():  # the course's fonts and spines
        keys = list(result["gains"])
        x = np.asarray(result["values"], dtype=float)
        rare = "mAP_rare" in result["metrics"]
        panels = [("mAP", "mAP (%)", "means"), ("mAP", "gain in mAP (points)", "gains")]
        if rare:
            panels.append(("mAP_rare", "gain in mAP, the rare classes (points)", "gains"))
        others = [n for n in result["variants"] if n != result["reference"]]
        looks = {result["reference"]: (MODEL_COLOURS["refdense"], LINE_STYLES[0])}
        for i, name in enumerate(others):  # past the last colour, the colours again with the next line style
            looks[name] = (
                VARIANT_COLOURS[i % len(VARIANT_COLOURS)],
                LINE_STYLES[i // len(VARIANT_COLOURS) % len(LINE_STYLES)],
            )
        figure, axes = plt.subplots(
            1,
            len(panels),
            figsize=figure_size("wide", height=3.8),
            sharex=True,
            layout="constrained",
        )
        for ax, (metric, label, kind) in zip(axes, panels):
            names = (
                result["variants"]
                if kind == "means"
                else [n for n in result["variants"] if n != result["reference"]]
            )
            for name in names:
                summaries = [result[kind][key][name][metric] for key in keys]
                mean = np.array([s["mean"] for s in summaries])
                low, high = np.array([s["low"] for s in summaries]), np.array([s["high"] for s in summaries])
                ax.errorbar(
                    x,
                    mean,
                    yerr=np.nan_to_num([mean - low, high - mean]),
                    marker="o",
                    capsize=3,
                    color=looks[name][0],
                    linestyle=looks[name][1],
                    label=name if kind == "means" else f"{result['reference']} - {name}",
                )
            if kind == "gains":
                ax.axhline(0.0, color=REFERENCE_GREY, linewidth=0.8)
            ax.set_xticks(x)
            ax.set_xlabel(result["dial"])
            ax.set_ylabel(label)
            ax.legend(fontsize=FONT_SIZES["small"])
        held = other_dials(result)
        figure.suptitle(
            f"{result['preset']} preset{', ' + held if held else ''}, {len(result['seeds'])} seeds: mean and 95% interval"
            + (f" ({SECONDARY})" if result.get("checkpoint") == "best" else ""),
            fontsize=FONT_SIZES["body"],
        )
        return figure
