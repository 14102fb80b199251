"""What a finished run writes besides checkpoints: ``results.json``, ``results.md`` and plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402

from refdense.io import atomic_path, atomic_write  # noqa: E402
from refdense.metrics import PaperTable  # noqa: E402
from refdense.viz.training import plot_loss_curves, plot_metric_per_epoch  # noqa: E402


def table_summary(table: PaperTable) -> str:
    """``"mAP 23.41 | tau=0: mAP_ac 30.12, F1_ac 25.30 | tau=20: ..."`` (percent)."""
    parts = [f"mAP {100 * table.frame_map.map_all:.2f}"]
    for tau, ac in table.conditional.items():
        parts.append(f"tau={tau}: mAP_ac {100 * ac.mAP_ac:.2f}, F1_ac {100 * ac.F1_ac:.2f}")
    return " | ".join(parts)


def selection_sentence(checkpoint: Path, epoch: int, history: list[dict], validated: bool) -> str:
    """Which checkpoint produced the test numbers, and why it was chosen."""
    if not validated:
        return (f"Test numbers from `{checkpoint.name}`, the last epoch ({epoch}): the run kept no "
                "validation split (data.validation_fraction = 0), so no epoch was selected.")
    val = next((r["val"]["map"] for r in history if r["epoch"] == epoch and "val" in r), math.nan)
    return (f"Test numbers from `{checkpoint.name}`, epoch {epoch} of {len(history)}, chosen by the best "
            f"per-frame mAP on the validation split ({val:.2f}) carved from the training videos; "
            "the test split was never used to choose.")


def save_figure(figure, path: Path) -> None:
    """Save a Figure as PNG atomically and close it."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def write_run_files(result, config, validated: bool) -> None:
    """``results.json``, ``results.md``, ``plots/loss.png`` and ``plots/val_map.png`` of a run."""
    run_dir: Path = result.run_dir
    sentence = selection_sentence(result.checkpoint, result.checkpoint_epoch, result.history, validated)
    summary = {
        "dataset": config.data.dataset,
        "arch": config.model.arch,
        "checkpoint": str(result.checkpoint.relative_to(run_dir)),
        "checkpoint_epoch": result.checkpoint_epoch,
        "selection": "best validation per-frame mAP" if validated else "last epoch (no validation split)",
        "epochs": len(result.history),
        "test": result.test.to_dict(),
        "predictions": result.predictions.name,
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
        result.test.to_markdown(),
        "",
        f"Predictions: `{result.predictions.name}` (read it with `refdense metrics {result.predictions.name}`).",
        "",
        "![loss](plots/loss.png)",
        "",
        "![validation mAP](plots/val_map.png)",
        "",
    ]
    with atomic_write(run_dir / "results.md") as handle:
        handle.write("\n".join(lines))
    save_figure(plot_loss_curves(result.history, title=f"Training loss ({config.model.arch})"),
                run_dir / "plots" / "loss.png")
    save_figure(plot_metric_per_epoch(result.history, best_epoch=result.checkpoint_epoch if validated else None),
                run_dir / "plots" / "val_map.png")
