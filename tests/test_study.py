"""The registered study's decisions (``refdense.experiments.study``), on invented sweep records with known trends."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from refdense.cli import main
from refdense.experiments import study as study_module
from refdense.experiments.study import (
    converged_seeds,
    decide,
    decide_tests,
    load_plan,
    load_study,
    seed_trend,
    seeds_for_power,
    study_markdown,
    write_study,
)
from refdense.extras import NO_PLOTS
from refdense.schema import ConfigError

SEEDS = [0, 1, 2, 3, 4]
SWEEPS = load_plan().sweeps
RESULTS = Path(__file__).resolve().parent.parent / "results"


def _sweep(
    variant: str, trends: list[float], unconverged: tuple[int, ...] = (), seeds: list[int] = SEEDS
) -> dict:
    """A sweep over the values 0 and 1 whose gain of ``full`` over ``variant`` rises by ``trends[k]`` for seed k."""
    runs = {}
    for value in (0.0, 1.0):
        runs[f"{value:g}"] = {
            "full": [
                {
                    "seed": s,
                    "mAP": 50.0 + value * t,
                    "mAP_rare": 40.0 + 2 * value * t,
                    "converged": s not in unconverged,
                    "epochs": 40,
                    "best_epoch": 40 if s in unconverged else 30,
                }
                for s, t in zip(seeds, trends)
            ],
            variant: [
                {"seed": s, "mAP": 48.0, "mAP_rare": 40.0, "converged": True, "epochs": 20, "best_epoch": 10}
                for s in seeds
            ],
        }
    return {"values": [0.0, 1.0], "seeds": list(seeds), "runs": runs}


def _study(unconverged: tuple[int, ...] = ()) -> dict[str, dict]:
    return {
        "coupling": _sweep("no_cross_attention", [1.0, 1.5, 2.0, 2.5, 3.0], unconverged),
        "rare_share": _sweep("no_sub_labels", [-3.0, -2.0, -2.5, -3.5, -3.0]),
        "text_alignment_60": _sweep("no_colv", [4.0, -4.0, 1.0, -1.0, 0.5]),
        "text_alignment_240": _sweep("no_colv", [1.0, 1.0, 1.0, 1.0, 1.0]),
    }


def test_a_seeds_trend_is_the_slope_of_its_paired_gain():
    sweep = _sweep("no_colv", [1.0, 2.0, 3.0, 4.0, 5.0])
    assert seed_trend(sweep, "no_colv", "mAP", 2) == pytest.approx(3.0)
    assert seed_trend(sweep, "no_colv", "mAP_rare", 2) == pytest.approx(6.0)


def test_each_test_is_decided_by_its_95_percent_interval():
    assert decide({"low": 0.1, "high": 2.0}) == "supported"
    assert decide({"low": -2.0, "high": -0.1}) == "contradicted"
    assert decide({"low": -0.1, "high": 2.0}) == "inconclusive"
    rows = {row["test"].name: row for row in decide_tests(_study())}
    assert rows["H1"]["decision"] == "supported"
    assert rows["H1"]["summary"]["mean"] == pytest.approx(2.0)
    assert rows["H2a"]["decision"] == "contradicted"
    # the rare-class trend is twice the all-class trend; H3b: the trend at 60 minus the trend at 240
    assert rows["H2b"]["samples"] == pytest.approx([-6.0, -4.0, -5.0, -7.0, -6.0])
    assert rows["H2b - H2a"]["samples"] == pytest.approx([-3.0, -2.0, -2.5, -3.5, -3.0])
    assert rows["H3a"]["decision"] == "inconclusive"
    assert rows["H3b"]["samples"] == pytest.approx([3.0, -5.0, 0.0, -2.0, -0.5])
    assert rows["H3 at 240"]["sd"] == pytest.approx(0.0)


def test_h4_is_the_decrease_of_colv_s_gain_per_100_training_videos():
    sweep = _sweep("no_colv", [-0.5, -1.0, -1.5, -1.0, -1.0])
    sweep["values"] = [60, 240]
    sweep["runs"] = {
        "60": sweep["runs"]["0"],
        "240": sweep["runs"]["1"],
    }  # the gain changes by trends[k] over 180
    rows = {row["test"].name: row for row in decide_tests({"train_videos": sweep})}
    assert list(rows) == ["H4"]
    assert rows["H4"]["samples"] == pytest.approx([100 * t / 180 for t in (0.5, 1.0, 1.5, 1.0, 1.0)])
    assert rows["H4"]["decision"] == "supported"


def test_seeds_with_an_unconverged_run_are_left_out_on_request():
    study = _study(unconverged=(1, 3))
    assert converged_seeds(study, ["coupling"]) == [0, 2, 4]
    assert converged_seeds(study, ["rare_share"]) == SEEDS
    rows = {row["test"].name: row for row in decide_tests(study, converged_only=True)}
    assert rows["H1"]["seeds"] == [0, 2, 4] and rows["H1"]["samples"] == pytest.approx([1.0, 2.0, 3.0])
    assert rows["H2a"]["seeds"] == SEEDS
    text = study_markdown(study)
    assert "## Without the seeds that have an unconverged run" in text
    assert "coupling: full at 0, seed 1 (best epoch 40 of 40)" in text
    assert "Every run converged" in study_markdown(_study())


def test_seeds_needed_to_find_a_trend_of_one_point():
    # per-seed SD 1, effect 1: the t-test's power is 0.748 with 9 seeds and 0.803 with 10 (noncentral t)
    samples = [-1.0, 1.0] * 3
    sd = math.sqrt(6 / 5)
    assert seeds_for_power([x / sd for x in samples]) == 10
    assert seeds_for_power([x / sd for x in samples], power=0.75) == 10
    assert seeds_for_power([x / sd for x in samples], power=0.74) == 9
    assert seeds_for_power([2.0, 2.0, 2.0]) == 2
    assert seeds_for_power([0.0, 1000.0], most=50) is None


def test_power_counts_a_tail_scipy_returns_as_nan_as_zero(monkeypatch):
    """At 3 seeds with this SD, the lower noncentral-t tail is negligible while the upper one alone is
    above 0.8 (and 2 seeds are too few): 3 seeds suffice. scipy 1.17 returns NaN for that far tail
    (1.15 a tiny number); reading NaN as "not enough" skipped to 5, so NaN is forced here."""
    from scipy import stats

    samples = [1.0 - 0.0875, 1.0, 1.0 + 0.0875]
    sd = float(np.std(samples, ddof=1))
    critical = stats.t.ppf(0.975, 2)
    lower = stats.nct.cdf(-critical, 2, math.sqrt(3) / sd)
    assert math.isnan(lower) or lower < 1e-20
    assert stats.nct.sf(critical, 2, math.sqrt(3) / sd) > 0.8
    assert seeds_for_power(samples, most=2) is None
    monkeypatch.setattr(stats.nct, "cdf", lambda *args: math.nan)
    assert seeds_for_power(samples) == 3


def test_gains_pair_runs_by_seed_id_not_by_position():
    sweep = _sweep("no_colv", [1.0, 2.0, 3.0, 4.0, 5.0])
    for by_variant in sweep["runs"].values():  # the same runs, listed in another order
        by_variant["no_colv"].reverse()
    assert seed_trend(sweep, "no_colv", "mAP", 2) == pytest.approx(3.0)
    assert seed_trend(sweep, "no_colv", "mAP", 4) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="seed 7"):
        seed_trend(sweep, "no_colv", "mAP", 7)
    del sweep["runs"]["1"]["no_colv"][0]  # seed 4 of the variant missing at dial value 1
    with pytest.raises(
        ValueError, match=r"the reference ran seeds \[0, 1, 2, 3, 4\], the variant seeds \[0, 1, 2, 3\]"
    ):
        seed_trend(sweep, "no_colv", "mAP", 2)


def test_the_command_writes_the_decisions_and_names_a_missing_sweep(tmp_path, capsys):
    write_sweeps(tmp_path)
    assert main(["study", str(tmp_path)]) == 0
    assert "| H1 |" in (tmp_path / "STUDY.md").read_text()
    assert load_study(tmp_path)["coupling"]["seeds"] == SEEDS
    # a folder with some of the sweeps decides the tests it can (the power extension's folder)
    (tmp_path / "rare_share" / "sweep.json").unlink()
    (tmp_path / "text_alignment-train_videos60" / "sweep.json").unlink()
    assert main(["study", str(tmp_path)]) == 0
    text = (tmp_path / "STUDY.md").read_text()
    assert "| H1 |" in text and "| H3 at 240 (secondary) |" in text and "| H2a |" not in text
    assert (
        "Not decided here (their sweeps are not in this folder): H2a, H2b, H3a, H2b - H2a, H3b, H4." in text
    )
    for sub in ("coupling", "text_alignment"):
        (tmp_path / sub / "sweep.json").unlink()
    assert main(["study", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in (f"refdense study: error: {tmp_path}: ", "none of the study's sweeps",
                                            "coupling/sweep.json", "text_alignment/sweep.json")), error
    (tmp_path / "rare_share" / "sweep.json").write_text("{not json")
    with pytest.raises(ValueError, match="rare_share/sweep.json: not a sweep.json file"):
        load_study(tmp_path)


def write_sweeps(folder: Path) -> None:
    for name, study in _study().items():
        (folder / SWEEPS[name]).mkdir()
        (folder / SWEEPS[name] / "sweep.json").write_text(json.dumps(study))


@pytest.mark.course
def test_the_study_draws_its_figure_beside_its_table(tmp_path):
    write_sweeps(tmp_path)
    write_study(tmp_path)
    assert (tmp_path / "study.png").stat().st_size > 10_000
    assert NO_PLOTS not in (tmp_path / "STUDY.md").read_text()


def test_without_matplotlib_the_study_says_it_has_no_figure(tmp_path, monkeypatch):
    write_sweeps(tmp_path)
    monkeypatch.setattr(study_module, "available", lambda module: module != "matplotlib")
    assert write_study(tmp_path).endswith(f"\n{NO_PLOTS}\n")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["STUDY.md"]


def test_a_comparison_of_two_sweeps_uses_the_seeds_they_share():
    study = _study()
    more = _sweep("no_colv", [1.0] * 5 + [9.0] * 3, seeds=[*SEEDS, 5, 6, 7])
    study["text_alignment_240"] = more
    rows = {row["test"].name: row for row in decide_tests(study)}
    assert rows["H3 at 240"]["seeds"] == [*SEEDS, 5, 6, 7]
    assert rows["H3b"]["seeds"] == SEEDS


@pytest.mark.parametrize("folder", ["", "h4", "power"])
def test_the_shipped_plan_decides_the_committed_study_as_recorded(folder):
    """results/STUDY.md (and the follow-up's, the power extension's) are what the first edition's plan gives."""
    assert study_markdown(load_study(RESULTS / folder)) == (RESULTS / folder / "STUDY.md").read_text()


PLAN = """
sweeps: {entity: entity_gate}
method: One trend per test.
axis: trend of the gain
tests:
  - {name: E1, claim: cross-attention pays with the gate, primary: true,
     trend: {sweep: entity, variant: no_cross_attention, metric: mAP, scale: 2}}
  - {name: E2, claim: twice minus once, primary: false, difference: [E1, E3]}
  - {name: E3, claim: the gain in F1, primary: true, trend: {sweep: entity, variant: no_cross_attention, metric: mAP_rare}}
"""


def test_another_study_registers_its_tests_by_a_plan_file(tmp_path):
    (tmp_path / "entity_gate").mkdir()
    (tmp_path / "entity_gate" / "sweep.json").write_text(json.dumps(_sweep("no_cross_attention", [1.0, 2.0, 3.0, 4.0, 5.0])))
    (tmp_path / "plan.yaml").write_text(PLAN)
    assert main(["study", str(tmp_path), "--plan", str(tmp_path / "plan.yaml")]) == 0
    text = (tmp_path / "STUDY.md").read_text()
    assert "One trend per test." in text and "| E2 (secondary) | twice minus once |" in text
    rows = {row["test"].name: row for row in decide_tests(load_study(tmp_path, load_plan(tmp_path / "plan.yaml")),
                                                      plan=load_plan(tmp_path / "plan.yaml"))}
    assert rows["E1"]["samples"] == pytest.approx([2.0, 4.0, 6.0, 8.0, 10.0])  # scale 2
    assert rows["E3"]["samples"] == pytest.approx([2.0, 4.0, 6.0, 8.0, 10.0])  # mAP_rare rises twice as fast
    assert rows["E2"]["samples"] == pytest.approx([0.0] * 5)
    # the first study's sweeps are not this plan's: the default plan finds none of them
    assert main(["study", str(tmp_path)]) == 2


@pytest.mark.parametrize(
    ("change", "key", "value"),
    [
        (("sweep: entity,", "sweep: entities,"), "tests[0].trend.sweep", "'entities'"),
        (("difference: [E1, E3]", "difference: [E1, E2]"), "tests[1].difference", "'E2'"),
        (("difference: [E1, E3]", "difference: [E1]"), "tests[1].difference", "['E1']"),
        (("primary: false, difference: [E1, E3]", "primary: false"), "tests[1].trend", "None"),
        (("scale: 2", "scale: twice"), "tests[0].trend.scale", "'twice'"),
        (("name: E3", "name: E1"), "tests[2].name", "'E1'"),
        (("axis:", "axes:"), "unknown key axes", "did you mean axis?"),
        (("primary: true,\n", "primary: yes please,\n"), "tests[0].primary", "'yes please'"),
    ],
)
def test_a_malformed_plan_names_the_file_the_key_and_the_value(tmp_path, capsys, change, key, value):
    path = tmp_path / "plan.yaml"
    assert PLAN.count(change[0]) >= 1
    path.write_text(PLAN.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError) as raised:
        load_plan(path)
    assert str(raised.value).startswith(f"{path}: {key}")
    assert value in str(raised.value)
    assert main(["study", str(tmp_path), "--plan", str(path)]) == 2
    assert f"{path}: {key}" in capsys.readouterr().err


def test_an_unreadable_plan_names_its_file(tmp_path):
    with pytest.raises(ConfigError, match=f"cannot read the study plan {tmp_path / 'none.yaml'}"):
        load_plan(tmp_path / "none.yaml")


GAIN_PLAN = """
sweeps: {gate: entity_gate}
method: Gains at one value of the dial.
axis: gain
equivalence_margin: 1.0
tests:
  - {name: G1, claim: the gain at 1, primary: true, gain: {sweep: gate, value: 1, variant: no_cross_attention, metric: mAP}}
  - {name: G0, claim: the gain at 0, primary: true, gain: {sweep: gate, value: 0, variant: no_cross_attention, metric: mAP}}
  - name: R
    claim: the full model's rare-class mAP against the variant's mAP
    primary: false
    gain: {sweep: gate, value: 1, variant: no_cross_attention, metric: mAP, reference_metric: mAP_rare}
  - {name: G1 - G0, claim: the gain grows, primary: false, difference: [G1, G0]}
"""


def test_a_gain_test_reads_one_dial_value_and_equivalence_needs_the_90_percent_interval_inside_the_margin(tmp_path):
    # full minus variant: 2 + t_k at 1 (t_k the per-seed rise), 2 at 0 (full 50 vs variant 48)
    sweep = _sweep("no_cross_attention", [-2.1, -1.9, -2.0, -2.2, -1.8])
    (tmp_path / "entity_gate").mkdir()
    (tmp_path / "entity_gate" / "sweep.json").write_text(json.dumps(sweep))
    (tmp_path / "plan.yaml").write_text(GAIN_PLAN)
    plan = load_plan(tmp_path / "plan.yaml")
    rows = {row["test"].name: row for row in decide_tests(load_study(tmp_path, plan), plan=plan)}
    assert rows["G0"]["samples"] == pytest.approx([2.0] * 5) and rows["G0"]["decision"] == "supported"
    assert rows["G1"]["samples"] == pytest.approx([-0.1, 0.1, 0.0, -0.2, 0.2])
    assert rows["G1"]["decision"].startswith("equivalent within ±1 (90% interval [-0.")
    assert rows["G1 - G0"]["samples"] == pytest.approx([-2.1, -1.9, -2.0, -2.2, -1.8])
    # the full model's mAP_rare (40 + 2 t_k at 1) minus the variant's mAP (48)
    assert rows["R"]["samples"] == pytest.approx([40.0 + 2 * t - 48.0 for t in (-2.1, -1.9, -2.0, -2.2, -1.8)])
    # a wide interval that covers 0 and crosses the margin is inconclusive, not equivalent
    assert decide({"low": -0.5, "high": 3.0}, {"low": -0.2, "high": 2.5}, 1.0) == "inconclusive"
    assert decide({"low": -0.5, "high": 0.7}, {"low": -0.3, "high": 0.5}, None) == "inconclusive"
    # a value the sweep did not run is named
    broken = GAIN_PLAN.replace("value: 1, variant: no_cross_attention, metric: mAP}}", "value: 0.5, variant: no_cross_attention, metric: mAP}}", 1)
    (tmp_path / "plan.yaml").write_text(broken)
    plan = load_plan(tmp_path / "plan.yaml")
    with pytest.raises(ValueError, match="no dial value 0.5 \\(it ran 0, 1\\)"):
        decide_tests(load_study(tmp_path, plan), plan=plan)


@pytest.mark.parametrize(
    ("change", "key", "value"),
    [
        (("equivalence_margin: 1.0", "equivalence_margin: -1"), "equivalence_margin", "-1"),
        (("gain: {sweep: gate, value: 1,", "gain: {sweep: gates, value: 1,"), "tests[0].gain.sweep", "'gates'"),
        (("gain: {sweep: gate, value: 1,", "trend: {sweep: gate, variant: v, metric: mAP}, gain: {sweep: gate, value: 1,"), "tests[0].trend",
         "exactly one of the three"),
    ],
)
def test_a_malformed_gain_plan_names_the_key(tmp_path, change, key, value):
    path = tmp_path / "plan.yaml"
    assert change[0] in GAIN_PLAN
    path.write_text(GAIN_PLAN.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError) as raised:
        load_plan(path)
    assert str(raised.value).startswith(f"{path}: {key}") and value in str(raised.value)


def test_the_second_study_plan_names_known_variants_and_sweeps_of_real_dials():
    from refdense.experiments.ablate import VARIANTS
    from refdense.experiments.sweep import DIALS
    from refdense.paths import shipped

    plan = load_plan(shipped("experiments", "studies", "second_edition.yaml"))
    names = {v.name for v in VARIANTS}
    gains = [test.gain for test in plan.tests if test.gain is not None]
    assert plan.equivalence_margin == 1.0 and sum(test.primary for test in plan.tests) == 9
    assert {g.variant for g in gains} | {g.reference for g in gains} <= names
    assert {folder.split("-")[0] for folder in plan.sweeps.values()} <= set(DIALS)
