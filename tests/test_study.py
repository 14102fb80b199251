"""The registered study's decisions (``refdense.train.study``), on invented sweep records with known trends."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from refdense.train.study import (
    SWEEPS,
    converged_seeds,
    decide,
    evaluate,
    load_study,
    main,
    plot_study,
    seed_trend,
    seeds_for_power,
    study_markdown,
)

SEEDS = [0, 1, 2, 3, 4]


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
    rows = {row["test"].name: row for row in evaluate(_study())}
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
    rows = {row["test"].name: row for row in evaluate({"train_videos": sweep})}
    assert list(rows) == ["H4"]
    assert rows["H4"]["samples"] == pytest.approx([100 * t / 180 for t in (0.5, 1.0, 1.5, 1.0, 1.0)])
    assert rows["H4"]["decision"] == "supported"


def test_seeds_with_an_unconverged_run_are_left_out_on_request():
    study = _study(unconverged=(1, 3))
    assert converged_seeds(study, ["coupling"]) == [0, 2, 4]
    assert converged_seeds(study, ["rare_share"]) == SEEDS
    rows = {row["test"].name: row for row in evaluate(study, converged_only=True)}
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


def test_power_counts_a_tail_scipy_returns_as_nan_as_zero():
    """At 3 seeds with this SD, scipy's lower noncentral-t tail is NaN while the upper one alone is
    above 0.8 (and 2 seeds are too few): 3 seeds suffice; reading NaN as "not enough" skipped to 5."""
    from scipy import stats

    samples = [1.0 - 0.0875, 1.0, 1.0 + 0.0875]
    sd = float(np.std(samples, ddof=1))
    critical = stats.t.ppf(0.975, 2)
    assert math.isnan(stats.nct.cdf(-critical, 2, math.sqrt(3) / sd))
    assert stats.nct.sf(critical, 2, math.sqrt(3) / sd) > 0.8
    assert seeds_for_power(samples, most=2) is None
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
    for name, study in _study().items():
        (tmp_path / SWEEPS[name]).mkdir()
        (tmp_path / SWEEPS[name] / "sweep.json").write_text(json.dumps(study))
    assert main([str(tmp_path)]) == 0
    assert "| H1 |" in (tmp_path / "STUDY.md").read_text()
    assert (tmp_path / "study.png").stat().st_size > 10_000
    assert load_study(tmp_path)["coupling"]["seeds"] == SEEDS
    plot_study(load_study(tmp_path))
    # a folder with some of the sweeps decides the tests it can (the power extension's folder)
    (tmp_path / "rare_share" / "sweep.json").unlink()
    (tmp_path / "text_alignment-train_videos60" / "sweep.json").unlink()
    assert main([str(tmp_path)]) == 0
    text = (tmp_path / "STUDY.md").read_text()
    assert "| H1 |" in text and "| H3 at 240 (secondary) |" in text and "| H2a |" not in text
    assert (
        "Not decided here (their sweeps are not in this folder): H2a, H2b, H3a, H2b - H2a, H3b, H4." in text
    )
    for sub in ("coupling", "text_alignment"):
        (tmp_path / sub / "sweep.json").unlink()
    assert main([str(tmp_path)]) == 2
    assert f"{tmp_path}: none of the study's sweeps is there" in capsys.readouterr().err
    (tmp_path / "rare_share" / "sweep.json").write_text("{not json")
    with pytest.raises(ValueError, match="rare_share/sweep.json: not a sweep.json file"):
        load_study(tmp_path)


def test_a_comparison_of_two_sweeps_uses_the_seeds_they_share():
    study = _study()
    more = _sweep("no_colv", [1.0] * 5 + [9.0] * 3, seeds=[*SEEDS, 5, 6, 7])
    study["text_alignment_240"] = more
    rows = {row["test"].name: row for row in evaluate(study)}
    assert rows["H3 at 240"]["seeds"] == [*SEEDS, 5, 6, 7]
    assert rows["H3b"]["seeds"] == SEEDS
