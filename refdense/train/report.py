"""What a finished run writes besides checkpoints: ``results.json``, ``results.md`` and plots.

The plots need matplotlib (the ``course`` extra): without it a run writes its results without
plots, and ``results.md`` says why they are missing and how to get them.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from refdense.extras import NO_PLOTS, available, require_extra
from refdense.io import atomic_path, atomic_write
from refdense.metrics import PaperTable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from refdense.data import DenseActionDataset
    from refdense.train.config import TrainConfig
    from refdense.train.result import TrainResult


def table_summary(table: PaperTable) -> str:
    """``"mAP 23.41 | tau=0: mAP_ac 30.12, F1_ac 25.30 | tau=20: ..."`` (percent)."""
    parts = [f"mAP {100 * table.frame_map.map_all:.2f}"]
    for tau, ac in table.conditional.items():
        parts.append(f"tau={tau}: mAP_ac {100 * ac.mAP_ac:.2f}, F1_ac {100 * ac.F1_ac:.2f}")
    return " | ".join(parts)


def data_summary(
    dataset_dir: Path,
    train: DenseActionDataset,
    validation: DenseActionDataset | None,
    test: DenseActionDataset,
) -> str:
    """One paragraph on the data a run trains on: the dataset, the videos of each split, the fixes.

    ``train``, ``validation`` (or None) and ``test`` are the run's
    :class:`~refdense.data.DenseActionDataset` splits. The fixes are those of ``prepare-report.json``
    for a folder made by ``refdense prepare``, else those the loader made.
    """
    from refdense.data.labels import summarize_cleanup
    from refdense.prepare.prepare import REPORT_FILE, read_prepare_report

    info = train.info
    text = (
        f"Data: {dataset_dir} ({info.name}: {info.num_classes} classes, {info.num_entities} entities, "
        f"{info.num_motions} motions; video stream {info.video_dim}-d {info.streams['video'].encoder}, image "
        f"stream {info.image_dim}-d {info.streams['image'].encoder}). Training on {len(train)} videos"
    )
    if train.dropped_empty:
        text += f" ({len(train.dropped_empty)} without actions left out: data.drop_empty_videos)"
    text += (
        f", validating on {len(validation)} carved from the training subset"
        if validation is not None
        else ", no validation split (the last epoch is tested)"
    )
    text += f", testing on {len(test)}."
    prepared = read_prepare_report(dataset_dir)
    if prepared is None:
        text += f" Clean-up when loading: {train.report.summary()}."
    else:
        left_out = (
            len(prepared["annotated_without_features"])
            + sum(map(len, prepared["skipped"].values()))
            + len(prepared["dropped_training_videos_without_actions"])
        )
        text += (
            f" Prepared by `refdense prepare`: {summarize_cleanup(prepared['cleanup'])}; {left_out} annotated "
            f"videos left out; every fix is listed in {dataset_dir / REPORT_FILE}."
        )
    return textwrap.fill(text, width=100)


def selection_sentence(checkpoint: Path, epoch: int, history: list[dict], validated: bool, last: bool) -> str:
    """Which checkpoint produced the test numbers, and why it was chosen (``last``: ``run.test_checkpoint``
    is ``last``)."""
    if not validated:
        return (
            f"Test numbers from `{checkpoint.name}`, the last epoch ({epoch}): the run kept no "
            "validation split (data.validation_fraction = 0), so no epoch was selected."
        )
    if last:
        return (
            f"Test numbers from `{checkpoint.name}`, the final epoch ({epoch}), fixed before training "
            "(run.test_checkpoint: last): neither validation nor the test split chose it."
        )
    val = next((r["val"]["map"] for r in history if r["epoch"] == epoch and "val" in r), math.nan)
    return (
        f"Test numbers from `{checkpoint.name}`, epoch {epoch} of {len(history)}, chosen by the best "
        f"per-frame mAP on the validation split ({val:.2f}) carved from the training videos; "
        "the test split was never used to choose."
    )


def selection_label(validated: bool, last: bool) -> str:
    """How the tested checkpoint was chosen, in ``results.json``'s words."""
    if not validated:
        return "last epoch (no validation split)"
    return "final epoch (run.test_checkpoint: last)" if last else "best validation per-frame mAP"


def save_figure(figure: Figure, path: Path) -> None:
    """Save a Figure as PNG atomically and close it (if pyplot manages it)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    require_extra("matplotlib.pyplot", "saving a figure").close(figure)


def readout_summary(
    result: TrainResult, config: TrainConfig, held_out: Sequence[int]
) -> tuple[dict, list[str]]:
    """What ``results.json`` (a dict) and ``results.md`` (lines) say of the composed readout, the motion
    head and the held-out classes: each readout's table and file, or why the run has none
    (:func:`refdense.train.evaluate.readout_unavailable`); with ``held_out`` class ids, the mAP over
    those of them with a positive test frame for each readout (percent, None when none has one)."""
    from refdense.metrics.ap import percent
    from refdense.train.evaluate import readout_path, readout_unavailable

    test, composed, predictions = result.test, result.composed, result.predictions
    assert test is not None and predictions is not None, "write_run_files checks the result of rank 0"
    if composed is None:
        reason = readout_unavailable(config, "composed") or "not computed"
        summary: dict = {"composed": {"unavailable": reason}}
        lines = [f"No composed readout (P_ent x P_mot of the auxiliary heads): {reason}.", ""]
    else:
        name = readout_path(predictions, "composed").name
        summary = {"composed": {"test": composed.to_dict(), "predictions": name}}
        lines = [
            "Composed readout (evaluation only): each class scored P_ent(its entity) x P_mot(its motion) from "
            f"the auxiliary heads: mAP {100 * composed.frame_map.map_all:.2f}, against "
            f"{100 * test.frame_map.map_all:.2f} for the action head (predictions `{name}`).",
            "",
        ]
    if result.motion is None:
        reason = readout_unavailable(config, "motion") or "not computed"
        summary["motion"] = {"unavailable": reason}
        lines += [f"No motion head readout: {reason}.", ""]
    else:
        name = readout_path(predictions, "motion").name
        summary["motion"] = {"test": result.motion.to_dict(), "predictions": name}
        lines += [
            f"Motion head (its own probabilities on the motion labels): mAP {100 * result.motion.frame_map.map_all:.2f} "
            f"(predictions `{name}`).",
            "",
        ]
    if held_out:
        readouts = {"action head": test, "composed": composed}
        maps = {k: percent(t.frame_map.map_over(held_out)) for k, t in readouts.items() if t is not None}
        summary |= {"held_out_classes": list(held_out), "held_out_map": maps}
        values = ", ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in maps.items())
        lines += [
            f"Held-out classes ({', '.join(map(str, held_out))}: composed classes left out of training), mAP "
            f"over those with a positive test frame: {values}.",
            "",
        ]
    return summary, lines


def write_run_files(
    result: TrainResult, config: TrainConfig, validated: bool, held_out: Sequence[int] = ()
) -> None:
    """``results.json``, ``results.md``, ``plots/loss.png`` and ``plots/val_map.png`` of a run
    (``result`` of rank 0: with its test table and predictions); ``held_out``: the dataset's held-out
    class ids (``DatasetInfo.held_out_classes``), reported apart (:func:`readout_summary`)."""
    test, predictions = result.test, result.predictions
    if test is None or predictions is None:
        raise ValueError(
            "write_run_files: expected the result of rank 0, with its test table and predictions; "
            "found None (another rank's result)"
        )
    run_dir: Path = result.run_dir
    last = config.run.test_checkpoint == "last"
    sentence = selection_sentence(result.checkpoint, result.checkpoint_epoch, result.history, validated, last)
    readouts, readout_lines = readout_summary(result, config, held_out)
    summary = {
        "dataset": config.data.dataset,
        "arch": config.model.arch,
        "checkpoint": str(result.checkpoint.relative_to(run_dir)),
        "checkpoint_epoch": result.checkpoint_epoch,
        "selection": selection_label(validated, last),
        "epochs": len(result.history),
        "test": test.to_dict(),
        "predictions": predictions.name,
        **readouts,
    }
    with atomic_write(run_dir / "results.json") as handle:
        json.dump(summary, handle, indent=2)
    lines = [
        f"# Run `{run_dir.name}`: {config.model.arch} on `{config.data.dataset}`",
        "",
        sentence,
        "",
        "Test split (values in %):",
        "",
        test.to_markdown(),
        "",
        f"Predictions: `{predictions.name}` (read it with `refdense metrics {predictions.name}`).",
        "",
        *readout_lines,
    ]
    plots = available("matplotlib")
    if plots:
        lines += ["![loss](plots/loss.png)", "", "![validation mAP](plots/val_map.png)", ""]
    else:
        lines += [NO_PLOTS, ""]
    with atomic_write(run_dir / "results.md") as handle:
        handle.write("\n".join(lines))
    if not plots:
        return
    from refdense.viz.style import MODEL_COLOURS, styled
    from refdense.viz.training import plot_loss_curves, plot_metric_per_epoch

    with styled():
        save_figure(
            plot_loss_curves(result.history, title=f"Training loss ({config.model.arch})"),
            run_dir / "plots" / "loss.png",
        )
        save_figure(
            plot_metric_per_epoch(
                result.history,
                best_epoch=result.checkpoint_epoch if validated else None,
                colour=MODEL_COLOURS.get(config.model.arch),
            ),
            run_dir / "plots" / "val_map.png",
        )


def write_demo_report(
    out: Path, results: dict, configs: dict, seconds: dict, total_seconds: float, peak_gb: float
) -> Path:
    """``out/REPORT.md`` and its figures for the demo's runs (``results``: display name -> TrainResult)."""
    import numpy as np

    from refdense.data import read_labels
    from refdense.metrics import compare_markdown, read_predictions
    from refdense.train.components import open_dataset_dir
    from refdense.viz.metrics import plot_class_ap
    from refdense.viz.style import MODEL_COLOURS, figure_size, styled
    from refdense.viz.timeline import plot_timeline
    from refdense.viz.training import plot_loss_curves, plot_metric_per_epoch

    plt = require_extra("matplotlib.pyplot", "the demo's report")

    names = list(results)
    first = configs[names[0]]
    dataset_dir = open_dataset_dir(first.data.dataset)
    labels_info = read_labels(dataset_dir)
    info = labels_info.info
    predictions = {name: read_predictions(r.predictions) for name, r in results.items()}
    figures = out / "figures"

    with styled():  # the figures in the course's style
        # timeline of the three test videos with the most distinct actions (as the paper's Fig. 4)
        reference = predictions[names[0]]
        busiest = sorted(
            range(len(reference.video_ids)),
            key=lambda v: (-int(reference.labels[v].any(axis=0).sum()), reference.video_ids[v]),
        )[:3]
        timeline_files = []
        for v in busiest:
            video_id = reference.video_ids[v]
            scores = {}
            for name in names:
                index = predictions[name].video_ids.index(video_id)
                scores[name] = predictions[name].scores[index]
            figure = plot_timeline(
                reference.labels[v],
                info.classes,
                scores,
                duration=labels_info.annotations[video_id].duration,
                title=f"test video {video_id}: ground truth vs models",
            )
            timeline_files.append(f"timeline-{video_id}.png")
            save_figure(figure, figures / timeline_files[-1])

        figure, axes = plt.subplots(
            1,
            len(names),
            figsize=figure_size("column", height=max(3.0, 0.22 * info.num_classes + 1), panels=len(names)),
            layout="constrained",
        )
        for ax, name in zip(np.atleast_1d(axes), names):
            plot_class_ap(results[name].test.frame_map, info.classes, ax=ax)
            ax.set_title(f"{name}: per-class AP (test)")
        save_figure(figure, figures / "class_ap.png")

        figure, axes = plt.subplots(
            1, len(names) + 1, figsize=figure_size("column", panels=len(names) + 1), layout="constrained"
        )
        for ax, name in zip(axes, names):
            plot_loss_curves(results[name].history, ax=ax, title=f"{name}: training loss")
        for name in names:
            plot_metric_per_epoch(
                results[name].history,
                ax=axes[-1],
                label=name,
                best_epoch=results[name].checkpoint_epoch,
                colour=MODEL_COLOURS.get(configs[name].model.arch),
            )
        save_figure(figure, figures / "training.png")

    counts = {
        split: sum(1 for e in labels_info.annotations.values() if e.subset == split)
        for split in ("training", "testing")
    }
    val_count = round(first.data.validation_fraction * counts["training"])
    lines = [
        "# RefDense vs PAT on the synthetic `default` dataset",
        "",
        "**These are synthetic-data numbers.** They show that the pipeline works end to end and how the two "
        "models compare on data whose actions are built from entities and motions; they are not the "
        "paper's Charades or MultiTHUMOS results and must not be compared with them.",
        "",
        "## Test split (values in %)",
        "",
        compare_markdown({name: results[name].test for name in names}),
        "",
        "mAP: per-frame mAP over all classes (classes without a positive test frame count 0); "
        '"present": over the classes with a positive. Action-conditional metrics at τ = 0 and 20 segments. '
        "Both rows come from the same `refdense.metrics.paper_table` on the predictions files listed below.",
        "",
        "## Which checkpoints",
        "",
    ]
    last = first.run.test_checkpoint == "last"
    for name in names:
        r = results[name]
        lines.append(
            f"- **{name}**: {selection_sentence(r.checkpoint, r.checkpoint_epoch, r.history, True, last)} "
            f"Run directory `{r.run_dir}`, predictions `{r.predictions}`, trained in {seconds[name]:.0f} s."
        )
    lines += [
        "",
        "## Set-up",
        "",
        f"- Data: `{dataset_dir}` ({info.name}: {info.num_classes} classes = {info.num_entities} entities x "
        f"{info.num_motions} motions, features {info.video_dim}-d video + {info.image_dim}-d image); "
        f"{counts['training'] - val_count} training videos, {val_count} validation videos carved from training "
        f"(seed {first.run.seed}), {counts['testing']} test videos.",
        f"- Same budget for both: {first.optim.epochs} epochs, batch {first.optim.batch_size}, Adam lr "
        f"{first.optim.lr:g} (x{first.optim.gamma:g} every {first.optim.step_size} epochs), windows of "
        f"{first.data.window} segments, seed {first.run.seed}.",
    ]
    for name in names:
        c = configs[name]
        heads = [s for s in ("entity", "motion") if getattr(c.loss, f"use_{s}_labels")]
        kind = "BCE" if c.loss.classification == "bce" else "asymmetric loss"
        action = (
            "actions"
            if c.loss.action_heads == "fused"
            else f"the coarse head + {c.loss.fine_head_weight:g} x the fine head (PAT's recipe)"
        )
        lines.append(
            f"- {name}: `model.arch={c.model.arch}`"
            + (f", inputs `{c.model.stream}`" if c.model.stream else "")
            + f", dim {c.model.dim}, {c.model.blocks} block(s) per branch; loss: {kind} on {action}"
            + (f" + {' + '.join(heads)}" if heads else "")
            + (
                f", CoLV on {', '.join(c.loss.active_colv_sets())} (text encoder `{c.data.text_encoder}`)"
                if c.loss.active_colv_sets()
                else ", no CoLV"
            )
            + "."
        )
    lines += [
        f"- Full configs: `{results[names[0]].run_dir}/config.yaml` and the others beside it.",
        f"- Wall time {total_seconds / 60:.1f} min in all, peak memory {peak_gb:.2f} GB (resident set of this process).",
        "",
        "## Timelines of test videos (cf. the paper's Fig. 4)",
        "",
        "The three test videos with the most distinct actions; one row per action, the ground truth "
        "first, then each model's probability (opacity).",
        "",
        *[f"![timeline](figures/{name})\n" for name in timeline_files],
        "## Per-class AP (test)",
        "",
        "![per-class AP](figures/class_ap.png)",
        "",
        "## Training",
        "",
        "Loss terms per epoch, and the validation mAP per epoch (circles: the selected checkpoints).",
        "",
        "![training](figures/training.png)",
        "",
    ]
    report = out / "REPORT.md"
    with atomic_write(report) as handle:
        handle.write("\n".join(lines))
    return report
