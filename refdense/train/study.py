"""The registered study's tests and decisions, read from the result files of its sweeps.

``docs/EXPERIMENTS.md`` registers four primary tests, each the trend (the least-squares slope of a
component's gain against a mechanism dial, seed by seed) of one sweep of ``refdense sweep``, and two
secondary comparisons of trends. This module recomputes them from the ``sweep.json`` files (every
run's metrics, seed by seed) and decides each by its 95% Student-t interval over the seeds:
*supported* when the interval lies above 0, *contradicted* when it lies below 0, *inconclusive*
otherwise. Files read from the study's folder (``results/`` in the repository)::

    coupling/sweep.json                        H1: cross-attention against coupling
    rare_share/sweep.json                      H2a (all classes), H2b (the rare classes)
    text_alignment-train_videos60/sweep.json   H3a: CoLV against text alignment, 60 training videos
    text_alignment/sweep.json                  the same at the preset's 240 (secondary H3b)
    train_videos/sweep.json                    H4 (a follow-up): CoLV against the number of training videos

A seed whose runs did not all converge (``converged`` false in ``sweep.json``) stays in the tests;
:func:`study_markdown` also reports every test without such seeds, as the plan asks.

Run ``python -m refdense.train.study results`` to write ``results/STUDY.md`` and ``results/study.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from refdense.io import atomic_write
from refdense.train.ablate import format_interval, interval
from refdense.train.sweep import seed_trends

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SWEEPS = {
    "coupling": "coupling",
    "rare_share": "rare_share",
    "text_alignment_60": "text_alignment-train_videos60",
    "text_alignment_240": "text_alignment",
    "train_videos": "train_videos",
}
"""Name of a sweep in the study -> its folder (``refdense sweep``'s output naming)."""


@dataclass(frozen=True)
class Test:
    """One registered test: a per-seed estimate (points of mAP per unit of the dial) and its claim.

    ``estimate(results, seeds)`` gives one number per seed of ``seeds``; ``sweeps`` names the
    sweeps it reads (their unconverged seeds are the ones left out in the converged-only report).
    """

    name: str
    claim: str
    primary: bool
    sweeps: tuple[str, ...]
    estimate: Callable[[dict[str, dict], Sequence[int]], list[float]]


def seed_trend(result: dict, variant: str, metric: str, seed: int) -> float:
    """The slope of ``full`` minus ``variant`` in ``metric`` against the dial, for one seed of a sweep."""
    trends = seed_trends(result["runs"], result["values"], variant, metric)
    if seed not in trends:
        raise ValueError(
            f"sweep of {result.get('dial', '?')}: no runs of seed {seed} (it ran {sorted(trends)})"
        )
    return trends[seed]


def _trend(sweep: str, variant: str, metric: str) -> Callable[[dict[str, dict], Sequence[int]], list[float]]:
    return lambda results, seeds: [seed_trend(results[sweep], variant, metric, s) for s in seeds]


def _difference(
    first: Callable[[dict[str, dict], Sequence[int]], list[float]],
    second: Callable[[dict[str, dict], Sequence[int]], list[float]],
) -> Callable[[dict[str, dict], Sequence[int]], list[float]]:
    return lambda results, seeds: [a - b for a, b in zip(first(results, seeds), second(results, seeds))]


def _scaled(
    estimate: Callable[[dict[str, dict], Sequence[int]], list[float]], factor: float
) -> Callable[[dict[str, dict], Sequence[int]], list[float]]:
    return lambda results, seeds: [factor * x for x in estimate(results, seeds)]


_H2A = _trend("rare_share", "no_sub_labels", "mAP")
_H2B = _trend("rare_share", "no_sub_labels", "mAP_rare")
_H3_60 = _trend("text_alignment_60", "no_colv", "mAP")
_H3_240 = _trend("text_alignment_240", "no_colv", "mAP")

TESTS = (
    Test("H1", "the mAP gain of cross-attention grows with `coupling`", True, ("coupling",),
         _trend("coupling", "no_cross_attention", "mAP")),
    Test("H2a", "the mAP gain of the sub-labels grows with `rare_share`", True, ("rare_share",), _H2A),
    Test("H2b", "their gain on the rare classes (`mAP_rare`) grows with `rare_share`", True, ("rare_share",), _H2B),
    Test("H3a", "the mAP gain of CoLV grows with `text_alignment` (60 training videos)", True,
         ("text_alignment_60",), _H3_60),
    Test("H2b - H2a", "the rare-class trend exceeds the all-class trend", False, ("rare_share",),
         _difference(_H2B, _H2A)),
    Test("H3b", "the CoLV trend at 60 training videos exceeds the trend at 240", False,
         ("text_alignment_60", "text_alignment_240"), _difference(_H3_60, _H3_240)),
    Test("H3 at 240", "the mAP gain of CoLV grows with `text_alignment` (240 training videos)", False,
         ("text_alignment_240",), _H3_240),
    Test("H4", "the mAP gain of CoLV shrinks as the training set grows (decrease per 100 videos)", True,
         ("train_videos",), _scaled(_trend("train_videos", "no_colv", "mAP"), -100.0)),
)  # fmt: skip
"""The registered tests, in the order of ``docs/EXPERIMENTS.md``: the plan's (primary first), then the
follow-up H4, whose estimate is minus the slope against ``train_videos``, per 100 videos."""


def decide(summary: dict) -> str:
    """``supported`` (95% interval above 0), ``contradicted`` (below 0) or ``inconclusive``."""
    if summary["low"] > 0:
        return "supported"
    if summary["high"] < 0:
        return "contradicted"
    return "inconclusive"


def seeds_for_power(
    samples: Sequence[float], effect: float = 1.0, power: float = 0.8, most: int = 1000
) -> int | None:
    """The fewest seeds with which the two-sided 5% t-test of the mean finds a true ``effect`` with
    probability ``power``, if the per-seed standard deviation were the one of ``samples``
    (None beyond ``most`` seeds). Exact, from the noncentral t distribution."""
    from scipy import stats

    sd = float(np.std(samples, ddof=1))
    if sd == 0:
        return 2
    for n in range(2, most + 1):
        critical = stats.t.ppf(0.975, n - 1)
        shift = effect * math.sqrt(n) / sd
        # A tail scipy cannot evaluate (NaN, for a far-off tail) is as good as 0: the other tail decides.
        tails = [stats.nct.sf(critical, n - 1, shift), stats.nct.cdf(-critical, n - 1, shift)]
        found = sum(float(tail) for tail in tails if not math.isnan(tail))
        if found >= power:
            return n
    return None


def load_study(folder: str | Path) -> dict[str, dict]:
    """The study's sweeps present in ``folder`` (``sweep.json`` of the folders in :data:`SWEEPS`), by name.

    A test is decided when all its sweeps are present (:func:`evaluate`); a folder with none of them
    is an error, and so is a file that is not JSON (both name the path).
    """
    folder = Path(folder)
    results = {}
    for name, sub in SWEEPS.items():
        path = folder / sub / "sweep.json"
        if not path.is_file():
            continue
        try:
            results[name] = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not a sweep.json file ({error})") from None
    if not results:
        expected = ", ".join(f"{sub}/sweep.json" for sub in SWEEPS.values())
        raise FileNotFoundError(f"{folder}: none of the study's sweeps is there (expected {expected})")
    return results


def unconverged_runs(result: dict) -> list[dict]:
    """The runs of a sweep that used every epoch (``converged`` false), with their dial value and variant."""
    return [
        {"value": key, "variant": name, **run}
        for key, by_variant in result["runs"].items()
        for name, runs in by_variant.items()
        for run in runs
        if run["converged"] is False
    ]


def converged_seeds(results: dict[str, dict], sweeps: Sequence[str]) -> list[int]:
    """The seeds all of whose runs converged in every one of ``sweeps``."""
    seeds = results[sweeps[0]]["seeds"]
    bad = {run["seed"] for sweep in sweeps for run in unconverged_runs(results[sweep])}
    return [seed for seed in seeds if seed not in bad]


def evaluate(results: dict[str, dict], converged_only: bool = False) -> list[dict]:
    """Each test of :data:`TESTS` whose sweeps are in ``results``, on the seeds they share: its per-seed
    samples, their summary, the decision, and the per-seed SD."""
    rows = []
    for test in TESTS:
        if not set(test.sweeps) <= set(results):
            continue
        seeds = [
            s for s in results[test.sweeps[0]]["seeds"] if all(s in results[w]["seeds"] for w in test.sweeps)
        ]
        if converged_only:
            converged = converged_seeds(results, test.sweeps)
            seeds = [s for s in seeds if s in converged]
        samples = test.estimate(results, seeds)
        summary = interval(samples)
        rows.append(
            {
                "test": test,
                "seeds": list(seeds),
                "samples": samples,
                "summary": summary,
                "decision": decide(summary) if summary["n"] > 1 else "too few seeds",
                "sd": float(np.std(samples, ddof=1)) if len(samples) > 1 else math.nan,
            }
        )
    return rows


def _table(rows: list[dict]) -> list[str]:
    lines = [
        "| test | claim | seeds | estimate, mAP points [95% interval] | per-seed SD | seeds to find 1 point | decision |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        test = row["test"]
        if len(row["samples"]) > 1:
            needed = seeds_for_power(row["samples"])
            spread = f"{row['sd']:.2f} | {needed if needed is not None else '> 1000'}"
        else:
            spread = "n/a | n/a"
        lines.append(
            f"| {test.name}{'' if test.primary else ' (secondary)'} | {test.claim} | "
            f"{', '.join(map(str, row['seeds'])) or 'none'} | {format_interval(row['summary'])} | "
            f"{spread} | **{row['decision']}** |"
        )
    return lines


def study_markdown(results: dict[str, dict]) -> str:
    """The registered tests decided on every seed, then on the fully converged seeds when some did not converge."""
    lines = [
        "# The registered study: decisions",
        "",
        "Each test is a trend: the least-squares slope of a component's gain (`full` minus the variant, test "
        "mAP points) against a dial, per unit of the dial (H4: minus the slope, per 100 training videos), seed "
        "by seed; mean and 95% Student-t interval over the seeds. Supported: "
        "the interval lies above 0; contradicted: below 0; inconclusive: it contains 0 (`docs/EXPERIMENTS.md`). "
        "A secondary test is a per-seed difference of two trends. The last columns: the standard deviation of "
        "the per-seed estimate, and how many seeds would find a true trend of 1 point 80% of the time at that spread.",
        "",
        *_table(evaluate(results)),
    ]
    missing = [test for test in TESTS if not set(test.sweeps) <= set(results)]
    if missing:
        lines += [
            "",
            "Not decided here (their sweeps are not in this folder): "
            + ", ".join(t.name for t in missing)
            + ".",
        ]
    unconverged = {name: unconverged_runs(result) for name, result in results.items()}
    if any(unconverged.values()):
        lines += [
            "",
            "## Without the seeds that have an unconverged run",
            "",
            *_table(evaluate(results, converged_only=True)),
            "",
            "Runs that used every epoch allowed:",
            "",
        ]
        for name, runs in unconverged.items():
            lines += [
                f"- {name}: {run['variant']} at {run['value']}, seed {run['seed']} "
                f"(best epoch {run['best_epoch']} of {run['epochs']})"
                for run in runs
            ]
    else:
        lines += [
            "",
            "Every run converged (its best validation epoch at least `patience` epochs before its last).",
        ]
    return "\n".join(lines) + "\n"


def plot_study(results: dict[str, dict]) -> Figure:
    """Figure: each test's per-seed estimates (dots), mean and 95% interval (bar), against 0."""
    import matplotlib.pyplot as plt

    rows = evaluate(results)
    fig, ax = plt.subplots(figsize=(8.0, 0.5 + 0.45 * len(rows)), layout="constrained")
    colours = {"supported": "tab:green", "contradicted": "tab:red"}
    for y, row in enumerate(reversed(rows)):
        summary = row["summary"]
        colour = colours.get(row["decision"], "tab:gray")
        ax.plot([summary["low"], summary["high"]], [y, y], color=colour, linewidth=3, alpha=0.6)
        ax.plot(summary["mean"], y, "o", color=colour)
        ax.plot(row["samples"], [y + 0.18] * len(row["samples"]), "k.", markersize=4)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [row["test"].name for row in reversed(rows)])
    ax.set_xlabel(
        "trend of the gain, mAP points per unit of the dial (H4: decrease per 100 videos); dots: seeds"
    )
    ax.set_title("Registered tests: mean and 95% interval (green above 0, red below, grey contains 0)")
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m refdense.train.study",
        description="Decide the registered tests from the study's sweeps.",
    )
    parser.add_argument("folder", type=Path, help="the folder holding the sweeps (e.g. results)")
    args = parser.parse_args(argv)
    try:
        results = load_study(args.folder)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from refdense.train.report import save_figure

    text = study_markdown(results)
    with atomic_write(args.folder / "STUDY.md") as handle:
        handle.write(text)
    save_figure(plot_study(results), args.folder / "study.png")
    print(text)
    print(f"written to {args.folder / 'STUDY.md'} and {args.folder / 'study.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
