"""A registered study's tests and decisions, read from the result files of its sweeps.

A study registers its tests in a plan file (YAML, checked into a :class:`Plan`): the first study's
is ``refdense/experiments/studies/first_edition.yaml`` (:data:`FIRST_EDITION`, the tests of
``docs/EXPERIMENTS.md``): four primary tests, each the trend (the least-squares slope of a
component's gain against a mechanism dial, seed by seed) of one sweep of ``refdense sweep``, two
secondary comparisons of trends, and the follow-up H4. This module recomputes them from the
``sweep.json`` files (every run's metrics, seed by seed) and decides each by its 95% Student-t
interval over the seeds: *supported* when the interval lies above 0, *contradicted* when it lies
below 0, *inconclusive* otherwise. The plan names the sweeps' folders in the study's folder
(``results/`` in the repository: ``coupling/sweep.json``, ``rare_share/sweep.json``, ...).

A seed whose runs did not all converge (``converged`` false in ``sweep.json``) stays in the tests;
:func:`study_markdown` also reports every test without such seeds, as the plan asks.

Run ``refdense study results`` to write ``results/STUDY.md`` and ``results/study.png``
(``--plan FILE`` for another study's tests).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from refdense.experiments.ablate import format_interval, interval
from refdense.experiments.sweep import CHECKPOINTS, SECONDARY, seed_gains, seed_trends
from refdense.extras import NO_PLOTS, available
from refdense.io import atomic_write
from refdense.paths import shipped
from refdense.schema import ConfigError, build, check_fields, require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIRST_EDITION = shipped("experiments", "studies", "first_edition.yaml")
"""The first registered study's plan (``docs/EXPERIMENTS.md``): the default of every function here."""


@dataclass(frozen=True)
class Trend:
    """Per seed: ``scale`` times the slope of ``full`` minus ``variant`` in ``metric`` against the
    dial of the plan's sweep ``sweep`` (points of the metric per unit of the dial)."""

    sweep: str
    variant: str
    metric: str
    scale: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class Gain:
    """Per seed: ``reference``'s ``reference_metric`` (default: ``metric``) minus ``variant``'s ``metric``
    at the value ``value`` of the dial of the plan's sweep ``sweep`` (points of the metric)."""

    sweep: str
    value: float
    variant: str
    metric: str
    reference: str = "full"
    reference_metric: str | None = None

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class Test:
    """One registered test: its claim and its per-seed estimate, a :class:`Trend`, a :class:`Gain` or
    the ``difference`` of two other tests of the same plan (by name: the first minus the second)."""

    name: str
    claim: str
    primary: bool
    trend: Trend | None = None
    gain: Gain | None = None
    difference: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        given = {"trend": self.trend, "gain": self.gain, "difference": self.difference}
        require(
            self,
            sum(value is not None for value in given.values()) == 1,
            "trend",
            "given, or else gain or difference (exactly one of the three)",
            given,
        )

    @property
    def sweep(self) -> str | None:
        """The sweep a trend or gain test reads (None for a difference)."""
        measure = self.trend or self.gain
        return None if measure is None else measure.sweep


@dataclass(frozen=True)
class Plan:
    """A study's registered tests, in the order of its report.

    ``sweeps``: the name of each sweep the tests read -> its folder in the study's folder;
    ``method``: the paragraph above STUDY.md's table; ``axis``: the x label of the study's figure;
    ``equivalence_margin``: with it, a test that is neither supported nor contradicted is *equivalent*
    when its 90% interval lies within plus or minus the margin (two one-sided 5% tests).
    """

    sweeps: Mapping[str, str]
    method: str
    axis: str
    tests: tuple[Test, ...]
    equivalence_margin: float | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        names = [test.name for test in self.tests]
        measured = {test.name for test in self.tests if test.difference is None}
        require(self, bool(self.tests), "tests", "a list of at least one test")
        margin = self.equivalence_margin
        require(self, margin is None or margin > 0, "equivalence_margin", "null or a number > 0", margin)
        for i, name in enumerate(names):
            require(self, name not in names[:i], f"tests[{i}].name", "a name no test above has", name)
        for i, test in enumerate(self.tests):
            if test.sweep is not None:
                require(
                    self,
                    test.sweep in self.sweeps,
                    f"tests[{i}].{'trend' if test.trend else 'gain'}.sweep",
                    f"one of the plan's sweeps ({', '.join(self.sweeps)})",
                    test.sweep,
                )
            for name in test.difference or ():
                require(
                    self,
                    name in measured,
                    f"tests[{i}].difference",
                    f"two names of trend or gain tests of the plan ({', '.join(sorted(measured))})",
                    name,
                )

    def test(self, name: str) -> Test:
        """The test called ``name``."""
        [found] = [test for test in self.tests if test.name == name]
        return found

    def sweeps_of(self, test: Test) -> tuple[str, ...]:
        """The sweeps ``test`` reads, the first one's seeds first (its unconverged seeds are the
        ones left out in the converged-only report)."""
        if test.sweep is not None:
            return (test.sweep,)
        return tuple(
            dict.fromkeys(s for name in test.difference or () for s in self.sweeps_of(self.test(name)))
        )

    def estimate(self, test: Test, results: dict[str, dict], seeds: Sequence[int]) -> list[float]:
        """``test``'s estimate for each seed of ``seeds``, from the sweeps ``results`` (by name)."""
        if test.trend is not None:
            trend = test.trend
            return [
                trend.scale * seed_trend(results[trend.sweep], trend.variant, trend.metric, s) for s in seeds
            ]
        if test.gain is not None:
            return [seed_gain(results[test.gain.sweep], test.gain, s) for s in seeds]
        first, second = (self.estimate(self.test(name), results, seeds) for name in test.difference or ())
        return [a - b for a, b in zip(first, second)]


def load_plan(path: str | Path = FIRST_EDITION) -> Plan:
    """The :class:`Plan` of a YAML file; :class:`ConfigError` naming the file, the key and the value
    for anything it does not accept."""
    from refdense.train.config import parse_yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the study plan {path}: {error}") from None
    return build(Plan, parse_yaml(text, str(path)), str(path))


@cache
def _first_edition() -> Plan:
    return load_plan(FIRST_EDITION)


def seed_trend(result: dict, variant: str, metric: str, seed: int) -> float:
    """The slope of ``full`` minus ``variant`` in ``metric`` against the dial, for one seed of a sweep."""
    return _of_seed(result, seed_trends(result["runs"], result["values"], variant, metric), seed)


def _of_seed(result: dict, by_seed: dict[int, float], seed: int) -> float:
    """``by_seed[seed]``, or an error naming the sweep, the seed and the seeds it ran."""
    if seed not in by_seed:
        raise ValueError(
            f"sweep of {result.get('dial', '?')}: no runs of seed {seed} (it ran {sorted(by_seed)})"
        )
    return by_seed[seed]


def seed_gain(result: dict, gain: Gain, seed: int) -> float:
    """``gain``'s estimate for one seed of a sweep (``sweep.json``'s runs at the dial value ``gain.value``)."""
    at = {float(value): by_variant for value, by_variant in result["runs"].items()}
    if float(gain.value) not in at:
        raise ValueError(
            f"sweep of {result.get('dial', '?')}: no dial value {gain.value:g} (it ran {', '.join(result['runs'])})"
        )
    by_variant = at[float(gain.value)]
    for name in (gain.reference, gain.variant):
        if name not in by_variant:
            raise ValueError(
                f"sweep of {result.get('dial', '?')}: no runs of {name} (it ran {', '.join(by_variant)})"
            )
    gains = seed_gains(
        by_variant[gain.reference], by_variant[gain.variant], gain.metric, gain.reference_metric
    )
    return _of_seed(result, gains, seed)


def decide(summary: dict, equivalence: dict | None = None, margin: float | None = None) -> str:
    """``supported`` (95% interval above 0), ``contradicted`` (below 0), else, with a ``margin`` and the
    90% interval ``equivalence``, ``equivalent`` when that interval lies within plus or minus the
    margin (two one-sided 5% tests), else ``inconclusive``."""
    if summary["low"] > 0:
        return "supported"
    if summary["high"] < 0:
        return "contradicted"
    if (
        margin is not None
        and equivalence is not None
        and -margin < equivalence["low"] <= equivalence["high"] < margin
    ):
        return f"equivalent within ±{margin:g} (90% interval [{equivalence['low']:+.2f}, {equivalence['high']:+.2f}])"
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


def load_study(folder: str | Path, plan: Plan | None = None, checkpoint: str = "tested") -> dict[str, dict]:
    """The sweeps of ``plan`` (default: the first edition's) present in ``folder`` (``sweep.json``
    of the folders its ``sweeps`` name, ``sweep-best.json`` with ``checkpoint="best"``:
    :data:`refdense.experiments.sweep.CHECKPOINTS`), by name.

    A test is decided when all its sweeps are present (:func:`decide_tests`); a folder with none of them
    is an error, and so is a file that is not JSON (both name the path).
    """
    folder = Path(folder)
    plan = plan or _first_edition()
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint: expected one of {', '.join(CHECKPOINTS)}, found {checkpoint!r}")
    file = f"sweep{CHECKPOINTS[checkpoint]}.json"
    results = {}
    for name, sub in plan.sweeps.items():
        path = folder / sub / file
        if not path.is_file():
            continue
        try:
            results[name] = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not a {file} file ({error})") from None
    if not results:
        expected = ", ".join(f"{sub}/{file}" for sub in plan.sweeps.values())
        raise FileNotFoundError(f"{folder}: none of the study's sweeps is there (expected {expected})")
    return results


def unconverged_runs(result: dict) -> list[dict]:
    """The runs of a sweep that did not converge, with their dial value and variant. The first
    edition's records say ``converged`` (stopped by the patience before the last epoch); later ones
    ``flat`` (the validation curve flat at the end, :func:`refdense.experiments.ablate.convergence`)."""
    return [
        {"value": key, "variant": name, **run}
        for key, by_variant in result["runs"].items()
        for name, runs in by_variant.items()
        for run in runs
        if run.get("converged", run.get("flat")) is False
    ]


def converged_seeds(results: dict[str, dict], sweeps: Sequence[str]) -> list[int]:
    """The seeds all of whose runs converged in every one of ``sweeps``."""
    seeds = results[sweeps[0]]["seeds"]
    bad = {run["seed"] for sweep in sweeps for run in unconverged_runs(results[sweep])}
    return [seed for seed in seeds if seed not in bad]


def decide_tests(
    results: dict[str, dict], converged_only: bool = False, plan: Plan | None = None
) -> list[dict]:
    """Each test of ``plan`` (default: the first edition's) whose sweeps are in ``results``, on the
    seeds they share: the test, its seeds, per-seed samples, their summary, the decision, and the
    per-seed SD."""
    plan = plan or _first_edition()
    rows = []
    for test in plan.tests:
        sweeps = plan.sweeps_of(test)
        if not set(sweeps) <= set(results):
            continue
        seeds = [s for s in results[sweeps[0]]["seeds"] if all(s in results[w]["seeds"] for w in sweeps)]
        if converged_only:
            converged = converged_seeds(results, sweeps)
            seeds = [s for s in seeds if s in converged]
        samples = plan.estimate(test, results, seeds)
        summary = interval(samples)
        rows.append(
            {
                "test": test,
                "seeds": list(seeds),
                "samples": samples,
                "summary": summary,
                "decision": decide(summary, interval(samples, 0.90), plan.equivalence_margin)
                if summary["n"] > 1
                else "too few seeds",
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


def study_markdown(results: dict[str, dict], plan: Plan | None = None, checkpoint: str = "tested") -> str:
    """The tests of ``plan`` (default: the first edition's) decided on every seed, then on the fully
    converged seeds when some did not converge; with ``checkpoint="best"``, the same tests on the
    best-validation checkpoints, labelled as the secondary protocol (descriptive)."""
    plan = plan or _first_edition()
    lines = ["# The registered study: decisions", ""]
    if checkpoint == "best":
        lines = [
            f"# The registered study, {SECONDARY} (descriptive)",
            "",
            "The registered tests computed on each run's best-validation checkpoint (`checkpoints/best.pt`, "
            "scored on the test split: `refdense sweep ... --checkpoint best`) instead of the checkpoint the "
            "primary protocol tests. Reported beside the primary decisions (`STUDY.md`) and never used for "
            "a decision: the last column applies the registered rule to these numbers only to describe them.",
            "",
        ]
    lines += [
        plan.method,
        "",
        *_table(decide_tests(results, plan=plan)),
    ]
    missing = [test for test in plan.tests if not set(plan.sweeps_of(test)) <= set(results)]
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
            *_table(decide_tests(results, converged_only=True, plan=plan)),
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


def plot_study(results: dict[str, dict], plan: Plan | None = None) -> Figure:
    """Figure: each test's per-seed estimates (dots), mean and 95% interval (bar), against 0."""
    import matplotlib.pyplot as plt

    from refdense.viz.style import INK, OUTCOME_COLOURS, figure_size, styled

    with styled():  # the course's fonts and spines
        plan = plan or _first_edition()
        rows = decide_tests(results, plan=plan)
        fig, ax = plt.subplots(
            figsize=figure_size("wide", height=0.5 + 0.45 * len(rows)), layout="constrained"
        )
        colours = {"supported": OUTCOME_COLOURS["positive"], "contradicted": OUTCOME_COLOURS["negative"]}
        for y, row in enumerate(reversed(rows)):
            summary = row["summary"]
            colour = colours.get(row["decision"], OUTCOME_COLOURS["undecided"])
            ax.plot([summary["low"], summary["high"]], [y, y], color=colour, linewidth=3, alpha=0.6)
            ax.plot(summary["mean"], y, "o", color=colour)
            ax.plot(row["samples"], [y + 0.18] * len(row["samples"]), ".", color=INK, markersize=4)
        ax.axvline(0, color=INK, linewidth=0.8)
        ax.set_yticks(range(len(rows)), [row["test"].name for row in reversed(rows)])
        ax.set_xlabel(plan.axis)
        ax.set_title("Registered tests: mean and 95% interval (green above 0, red below, grey contains 0)")
        return fig


def write_study(folder: str | Path, plan: Plan | None = None, checkpoint: str = "tested") -> str:
    """Decide the tests of ``plan`` (default: the first edition's) on the sweeps of ``folder``: write
    ``folder/STUDY.md`` and ``folder/study.png`` (without matplotlib, STUDY.md says there is no
    figure); return the text. With ``checkpoint="best"``, the secondary protocol's sweeps
    (``sweep-best.json``) to ``STUDY-best.md`` and ``study-best.png`` (the primary files are left as
    they are)."""
    from refdense.train.report import save_figure

    folder = Path(folder)
    plan = plan or _first_edition()
    results = load_study(folder, plan, checkpoint)
    plots = available("matplotlib")
    text = study_markdown(results, plan, checkpoint) + ("" if plots else f"\n{NO_PLOTS}\n")
    suffix = CHECKPOINTS[checkpoint]
    with atomic_write(folder / f"STUDY{suffix}.md") as handle:
        handle.write(text)
    if plots:
        figure = plot_study(results, plan)
        if checkpoint == "best":
            [axes] = figure.axes
            axes.set_xlabel(f"{axes.get_xlabel()}; {SECONDARY} (descriptive)")
        save_figure(figure, folder / f"study{suffix}.png")
    return text
