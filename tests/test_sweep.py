"""Mechanism sweeps (``refdense sweep``) and what they share with ``refdense ablate``: early stopping,
reuse of finished runs, variants that are one network, re-creating a point from its seed."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import threading

import numpy as np
import pytest

from refdense.cli import main
from refdense.data import read_info
from refdense.metrics import frame_map, read_predictions
from refdense.synth import Dials
from refdense.experiments.ablate import ABLATIONS, BASE, ablate, convergence, run_metrics, same_network
from refdense.experiments.launch import fit
from refdense.experiments.sweep import interval, other_dials, slope, sweep, sweep_config
from refdense.train.config import ConfigError, load_config
from refdense.train.history import stalled

SMALL = ("data.window=16", "data.validation_fraction=0.125", "data.text_encoder=random", "model.dim=16",
         "model.heads=2", "model.head_dim=8", "model.strides=[2, 4]", "model.max_len=16", "model.local_hidden=32",
         "optim.batch_size=4", "optim.lr=3e-3", "run.device=cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _history(*maps):
    return [{"epoch": k + 1, "val": {"map": m}} for k, m in enumerate(maps)]


def test_the_early_stopping_rule(tmp_path):
    assert not stalled(_history(10, 12, 11), 2)
    assert stalled(_history(10, 12, 11, 12), 2)  # a tie is no improvement: the first best counts
    assert not stalled(_history(10, 12, 11, 12), None)
    assert not stalled(_history(10, 12, 11, 12), 2, min_epochs=5)  # never before min_epochs
    assert not stalled([{"epoch": 1}, {"epoch": 2}], 1)  # without validation nothing stops
    with pytest.raises(ConfigError, match=r"run.patience \(2\).*validation_fraction is 0"):
        load_config(BASE, overrides=["run.patience=2", "data.validation_fraction=0"])


def test_the_convergence_record_says_how_a_run_ended(tmp_path):
    load_config(BASE, overrides=["optim.epochs=6"]).save(tmp_path / "config.yaml")
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in _history(10, 14, 13.5, 13.8, 14.2)))
    assert convergence(tmp_path) == {"epochs": 5, "best_epoch": 5, "stopped_early": True, "flat": True}
    assert convergence(tmp_path, window=5)["flat"] is False  # the last four within 1 point, not with the 10
    assert convergence(tmp_path, window=3, tolerance=0.5)["flat"] is False
    assert convergence(tmp_path, window=6)["flat"] is None  # fewer validated epochs than the window


def test_the_loop_stops_a_run_that_no_longer_improves_and_fit_reuses_it(writable_tiny_dataset, tmp_path):
    # A learning rate far below float32's resolution leaves the weights as they are: the validation
    # mAP never improves on epoch 1, so patience 2 stops the run after epoch 3 of 10.
    config = load_config(BASE, ABLATIONS / "no_colv.yaml", overrides=[
        f"data.dataset={writable_tiny_dataset}", *SMALL, "optim.lr=1e-30", "optim.epochs=10", "run.patience=2"])
    run_dir = tmp_path / "run"
    predictions = fit(config, run_dir)
    assert predictions.is_file() and (run_dir / "results.json").is_file()
    assert convergence(run_dir) == {"epochs": 3, "best_epoch": 1, "stopped_early": True, "flat": True}
    assert json.loads((run_dir / "results.json").read_text())["checkpoint_epoch"] == 1
    stamp = predictions.stat().st_mtime_ns
    assert fit(config.with_overrides("optim.epochs=20"), run_dir) == predictions  # stopped: reused
    assert predictions.stat().st_mtime_ns == stamp
    # another process fitting the same run directory makes fit wait (a parallel sweep)
    with open(run_dir / "fit.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = threading.Thread(target=fit, args=(config, run_dir))
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive()
    waiting.join(timeout=60)
    assert not waiting.is_alive()
    with pytest.raises(ValueError, match=r"finished run.*optim.lr"):
        fit(config.with_overrides("optim.lr=1e-3"), run_dir)
    # without patience, a finished run that trained fewer epochs than asked trains on
    fit(config.with_overrides("optim.epochs=4", "run.patience=null"), run_dir)
    assert convergence(run_dir)["epochs"] == 4
    with pytest.raises(ValueError, match=r"finished run of 4 epochs.*2 asked"):
        fit(config.with_overrides("optim.epochs=2"), run_dir)


def test_the_final_checkpoint_is_tested_when_the_run_says_last(writable_tiny_dataset, tmp_path):
    config = load_config(BASE, overrides=[f"data.dataset={writable_tiny_dataset}", *SMALL, "optim.epochs=3",
                                          "run.test_checkpoint=last"])
    fit(config, tmp_path / "run")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (results["checkpoint"], results["checkpoint_epoch"]) == ("checkpoints/latest.pt", 3)
    assert results["selection"] == "final epoch (run.test_checkpoint: last)"
    assert "fixed before training" in (tmp_path / "run" / "results.md").read_text()


def test_motion_only_and_pat_are_trained_once_when_they_are_one_network(writable_tiny_dataset, tmp_path):
    info = read_info(writable_tiny_dataset)
    motion_only = load_config(BASE, ABLATIONS / "motion_only.yaml", overrides=SMALL)
    assert same_network(motion_only, motion_only.with_overrides("model.arch=pat"), info)
    assert not same_network(motion_only, motion_only.with_overrides("model.arch=entity_only"), info)
    assert not same_network(motion_only, motion_only.with_overrides("model.arch=pat", "optim.lr=1e-3"), info)
    full = load_config(BASE, ABLATIONS / "full.yaml", overrides=SMALL)
    assert not same_network(full, load_config(BASE, ABLATIONS / "no_cross_attention.yaml", overrides=SMALL), info)

    # ablate trains pat and motion_only once exactly when their shipped files make them one network
    one = same_network(motion_only, load_config(BASE, ABLATIONS / "pat.yaml", overrides=SMALL), info)
    report = ablate(str(writable_tiny_dataset), tmp_path / "ablations", seeds=(0,), epochs=1,
                    variants=("motion_only", "pat"), overrides=SMALL, progress=False)
    saved = json.loads((tmp_path / "ablations" / "ablations.json").read_text())
    assert saved["same_as"] == ({"pat": "motion_only"} if one else {})
    assert (tmp_path / "ablations" / "pat").exists() != one
    with pytest.raises(ValueError, match=r"worlds: the dataset must be a synthetic preset"):
        ablate(str(writable_tiny_dataset), tmp_path / "x", worlds=True)
    if one:
        assert saved["runs"]["pat"] == saved["runs"]["motion_only"]
        assert "`pat` trains the same network the same way as `motion_only`" in report.read_text()


def test_slope_of_the_gain_against_the_dial():
    assert slope([0, 0.5, 1], [1.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert slope([0, 0.5, 1], [float("nan"), 2.0, 3.0]) == pytest.approx(2.0)
    assert np.isnan(slope([0, 0.5], [float("nan"), 2.0]))


def test_interval_is_the_student_t_interval_of_the_mean():
    summary = interval([1.0, 2.0, 3.0, 6.0])
    assert summary["mean"] == 3.0 and summary["n"] == 4
    half = 3.182446305 * np.std([1, 2, 3, 6], ddof=1) / 2  # t(0.975, 3)
    assert summary["high"] - 3.0 == pytest.approx(half) and 3.0 - summary["low"] == pytest.approx(half)
    assert np.isnan(interval([2.0])["low"]) and interval([2.0, float("nan")])["n"] == 1


@pytest.mark.slow
@pytest.mark.course  # its figure
def test_sweep_runs_end_to_end_and_a_point_is_recreated_from_its_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path / "data"))
    out = tmp_path / "sweeps"
    kwargs = dict(variants=("full", "no_sub_labels"), seeds=(0, 1), epochs=2, patience=1, overrides=SMALL,
                  progress=False)
    # an ablation over worlds in the same folder trains the runs of the dial's default value
    ablate("tiny", out, worlds=True, **kwargs)
    saved = json.loads((out / "ablations.json").read_text())
    ablated = saved["runs"]
    gain = [f["mAP"] - a["mAP"] for f, a in zip(ablated["full"], ablated["no_sub_labels"])]
    assert saved["gains"]["no_sub_labels"]["mAP"]["mean"] == pytest.approx(np.mean(gain))
    report = (out / "ABLATIONS.md").read_text()
    assert f"{np.mean(gain):+.2f} [" in report
    # every run is bounded by the pooled probe of its own world, in a row of its own
    probes = [t["probe"] for t in saved["training"]["full"]]
    assert probes[0] != probes[1] and all(0 < p <= 100 for p in probes)
    assert f"| ridge probe, both streams pooled (not trained) | {np.mean(probes):.2f} ± " in report
    below = [f"`{name}` ({sum(r['mAP'] < t['probe'] for r, t in zip(ablated[name], saved['training'][name]))} of 2 runs)"
             for name in ("full", "no_sub_labels")]
    assert all(mark in report for mark in below if "(0 of" not in mark)
    assert "runs were stopped early by `run.patience`" in report
    latest = out / "runs" / "tiny-seed1" / "full" / "seed1" / "checkpoints" / "latest.pt"
    stamp = latest.stat().st_mtime_ns
    path = sweep("rare_share", [0.0, 0.3], out, preset="tiny", **kwargs)
    assert latest.stat().st_mtime_ns == stamp
    result = json.loads(path.read_text())
    assert [r["mAP"] for r in result["runs"]["0"]["full"]] == [r["mAP"] for r in ablated["full"]]
    assert result["metrics"] == ["mAP", "mAP_ac", "F1_ac", "mAP_rare"]
    assert (out / "rare_share" / "sweep.png").stat().st_size > 10_000
    table = (out / "rare_share" / "SWEEP.md").read_text()
    assert "| 0.3 | no_sub_labels |" in table
    assert "The probe's test mAP at each value of `rare_share`" in table
    assert result["runs"]["0"]["full"][1]["probe"] == saved["training"]["full"][1]["probe"]  # one world, one probe
    rare = {seed: read_info(tmp_path / "data" / "synthetic" / name).dials["rare_classes"]
            for seed, name in ((0, "tiny-rare_share0.3"), (1, "tiny-seed1-rare_share0.3"))}
    assert result["rare_classes"] == {"seed0": rare[0], "seed1": rare[1]} and len(rare[1]) == 3
    for key in ("0", "0.3"):
        full, ablated = result["runs"][key]["full"], result["runs"][key]["no_sub_labels"]
        assert [r["seed"] for r in full] == [0, 1]
        assert full[0]["dataset"] == ("tiny" if key == "0" else "tiny-rare_share0.3")
        gains = [f["mAP"] - a["mAP"] for f, a in zip(full, ablated)]
        assert result["gains"][key]["no_sub_labels"]["mAP"]["mean"] == pytest.approx(np.mean(gains))
        assert f"{np.mean(gains):+.2f} [" in table
    runs = result["runs"]
    per_seed = [(runs["0.3"]["full"][k]["mAP"] - runs["0.3"]["no_sub_labels"][k]["mAP"]
                 - runs["0"]["full"][k]["mAP"] + runs["0"]["no_sub_labels"][k]["mAP"]) / 0.3 for k in (0, 1)]
    assert result["trends"]["no_sub_labels"]["mAP"]["mean"] == pytest.approx(np.mean(per_seed))
    # mAP_rare follows the classes rare at 0.3 at both values (frequent at 0): from the predictions
    for key, folder in (("0", "tiny-seed1"), ("0.3", "tiny-seed1-rare_share0.3")):
        recorded = result["runs"][key]["full"][1]
        saved = read_predictions(out / recorded["run"] / "predictions-test.npz")
        ap = frame_map(saved.scores, saved.labels).per_class[rare[1]]
        assert recorded["mAP_rare"] == pytest.approx(100 * np.nanmean(ap))
    assert np.isfinite(result["trends"]["no_sub_labels"]["mAP_rare"]["mean"])
    assert all(r["epochs"] <= 2 for runs in result["runs"].values() for rs in runs.values() for r in rs)

    # resumable: a second call trains nothing and writes the same numbers
    latest = out / result["runs"]["0.3"]["full"][0]["run"] / "checkpoints" / "latest.pt"
    stamp = latest.stat().st_mtime_ns
    again = json.loads(sweep("rare_share", [0.0, 0.3], out, preset="tiny", **kwargs).read_text())
    assert again["runs"] == result["runs"]
    assert latest.stat().st_mtime_ns == stamp

    # one point, re-created from nothing but the recorded settings and seed (the dataset too)
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path / "fresh"))
    recorded = result["runs"]["0.3"]["no_sub_labels"][1]
    folder, config = sweep_config("tiny", "rare_share", 0.3, recorded["seed"], "no_sub_labels",
                                  overrides=result["overrides"])
    assert folder == tmp_path / "fresh" / "synthetic" / recorded["dataset"]
    again = run_metrics(fit(config, tmp_path / "again"), read_info(folder).dials["rare_classes"])
    assert read_info(folder).dials["rare_classes"] == result["rare_classes"]["seed1"]
    for metric in result["metrics"]:
        assert again[metric] == pytest.approx(recorded[metric], abs=1e-9), metric


def test_cli_sweep_refuses_what_it_cannot_run(tmp_path, capsys):
    refusals = {
        ("--dial", "colour", "--values", "0"): ("dial", "coupling, rare_share, text_alignment, train_videos, held_out, "
                                                "held_out_k, entity_gate, entangle, text_prior, rare_entities",
                                                "'colour'"),
        ("--dial", "coupling", "--values", "0", "1.5"): ("Dials.coupling", "[0, 1]", "found 1.5"),
        ("--dial", "coupling", "--values", "0", "--variants", "no_colv"): ("variants", "'full'", "['no_colv']"),
        ("--dial", "coupling", "--values", "0", "--fixed", "train=3"): ("--fixed", "'train=3'", "DIAL=VALUE"),
        ("--dial", "train_videos", "--values", "10.5"): ("train_videos", "whole numbers", "found 10.5"),
    }
    for arguments, pieces in refusals.items():
        assert main(["sweep", *arguments, "--out", str(tmp_path)]) == 2, arguments
        error = capsys.readouterr().err
        assert error.startswith("refdense sweep: error: ") and all(piece in error for piece in pieces), error
    assert not any(tmp_path.iterdir())


def test_the_dials_a_sweep_held_fixed_are_named_in_its_table_and_figure():
    defaults = dataclasses.asdict(Dials())
    assert other_dials({"fixed_dials": defaults}) == ""
    assert other_dials({"fixed_dials": {**defaults, "train_videos": 60}}) == "train_videos=60"


def test_the_later_dials_can_be_swept():
    from refdense.cli.sweep import parse_fixed
    from refdense.experiments.sweep import DIALS, _rare_classes, dials_at
    from refdense.synth import dataset_info

    assert {"held_out", "held_out_k", "entity_gate", "entangle", "text_prior"} <= set(DIALS)
    gated = dials_at("entity_gate", 1.0)
    assert gated.entity_gate == 1 and isinstance(gated.entity_gate, int) and gated.slug() == "-entity_gate1"
    assert dials_at("held_out_k", 3.0, Dials(held_out=0.3)) == Dials(held_out=0.3, held_out_k=3)
    with pytest.raises(ValueError, match="held_out_k: hold held_out above 0 fixed"):
        dials_at("held_out_k", 3.0)
    with pytest.raises(ValueError, match="dial entity_gate: expected whole numbers, found 0.5"):
        dials_at("entity_gate", 0.5)
    assert parse_fixed(["held_out=0.3", "held_out_k=3"]) == Dials(held_out=0.3, held_out_k=3)
    # mAP_rare of a sweep with rare entities: their classes
    info = dataset_info("default", 0, Dials(text_prior=1.0, rare_entities=2))
    rare = set(info.dials["rare_entities"])
    classes = _rare_classes("default", 0, Dials(text_prior=1.0, rare_entities=2))
    assert classes and classes == [c for c, (e, _) in enumerate(info.decomposition) if e in rare]
    assert _rare_classes("default", 0, Dials(entangle=1.0)) == []
    assert _rare_classes("default", 0, Dials(text_prior=1.0)) == []


def test_fixed_whole_number_dials_parse_as_integers():
    from refdense.cli.sweep import parse_fixed

    dials = parse_fixed(["rare_entities=2", "train_videos=60", "held_out=0.25"])
    assert (dials.rare_entities, dials.train_videos, dials.held_out) == (2, 60, 0.25)


def _sweep_part(seeds, **settings):
    """A sweep.json of two dial values, three variants and ``seeds``, with random metrics."""
    from refdense.experiments.sweep import summarise

    rng = np.random.default_rng(sum(seeds))
    metrics = ["mAP", "mAP_rare"]
    runs = {
        key: {name: [{"seed": s, **{m: float(rng.uniform(40, 80)) for m in metrics}} for s in seeds]
              for name in ("full", "no_colv", "colv_random_anchors")}
        for key in ("0", "1")
    }
    return summarise({"dial": "text_prior", "values": [0.0, 1.0], "preset": "default",
                      "fixed_dials": dataclasses.asdict(Dials(rare_entities=2)), "seeds": list(seeds),
                      "variants": ["full", "no_colv", "colv_random_anchors"], "reference": "full",
                      "base": "refdense/configs/benchmark.yaml", "overrides": [], "epochs": None,
                      "patience": None, "checkpoint": "tested", "metrics": metrics,
                      "rare_classes": {f"seed{s}": [s, s + 1] for s in seeds}, **settings}, runs)


def _write(folder, result, name="sweep.json"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(result))
    return folder / name


def test_sweeps_run_on_disjoint_seeds_join_into_the_sweep_of_all_of_them(tmp_path):
    from refdense.experiments.sweep import join_sweeps, summarise

    whole = _sweep_part([0, 1, 2, 3, 4])
    parts = []
    for name, seeds in (("later", [3, 4]), ("pilot", [0, 1, 2])):
        part = {**whole, "seeds": seeds, "rare_classes": {f"seed{s}": whole["rare_classes"][f"seed{s}"] for s in seeds},
                "runs": {k: {v: [r for r in rs if r["seed"] in seeds] for v, rs in by.items()}
                         for k, by in whole["runs"].items()}}
        part = summarise({k: v for k, v in part.items() if k not in ("means", "gains", "trends", "runs")}, part["runs"])
        parts.append(_write(tmp_path / name, part))
    joined = json.loads(join_sweeps(parts, tmp_path / "pilot").read_text())  # into one part's own folder
    assert joined["parts"] == [[3, 4], [0, 1, 2]] and joined["seeds"] == [0, 1, 2, 3, 4]
    for key in ("runs", "means", "gains", "trends", "rare_classes", "metrics", "variants"):
        assert joined[key] == whole[key], key
    # a sweep grows a part at a time: a joined part brings the seeds of the sweeps that ran it
    grown = json.loads(join_sweeps([tmp_path / "pilot" / "sweep.json", _write(tmp_path / "more", _sweep_part([7]))],
                                   tmp_path / "grown").read_text())
    assert grown["parts"] == [[3, 4], [0, 1, 2], [7]] and grown["seeds"] == [0, 1, 2, 3, 4, 7]
    table = (tmp_path / "pilot" / "SWEEP.md").read_text()
    assert "seeds 0, 1, 2, 3, 4 " in table and "was joined from parts run apart: seeds 3, 4; 0, 1, 2" in table


def test_join_sweeps_refuses_parts_of_different_sweeps_and_shared_seeds(tmp_path, capsys):
    first = _write(tmp_path / "a", _sweep_part([0, 1]))
    # a file of before the checkpoint key holds the primary protocol's scores, and joins as such
    old = _sweep_part([2, 3])
    del old["checkpoint"]
    assert main(["join-sweeps", str(first), str(_write(tmp_path / "old", old)), "--out", str(tmp_path / "j")]) == 0
    assert json.loads((tmp_path / "j" / "sweep.json").read_text())["checkpoint"] == "tested"
    capsys.readouterr()
    refusals = {
        "epochs": (_sweep_part([2, 3], epochs=12), ("b/sweep.json", "epochs is 12", "None", "a/sweep.json")),
        "overrides": (_sweep_part([2, 3], overrides=["model.dim=64"]), ("overrides is ['model.dim=64']",)),
        "checkpoint": (_sweep_part([2, 3], checkpoint="best"), ("checkpoint is 'best'", "'tested'")),
        "seeds": (_sweep_part([1, 2]), ("b/sweep.json", "seed 1 is also in", "a/sweep.json", "disjoint")),
    }
    for name, (result, pieces) in refusals.items():
        second = _write(tmp_path / "b", result)
        assert main(["join-sweeps", str(first), str(second), "--out", str(tmp_path / name)]) == 2, name
        error = capsys.readouterr().err
        assert error.startswith("refdense join-sweeps: error: ") and all(p in error for p in pieces), error
        assert not (tmp_path / name).exists()
    (tmp_path / "c.json").write_text("{not json")
    assert main(["join-sweeps", str(first), str(tmp_path / "c.json"), "--out", str(tmp_path / "n")]) == 2
    assert "c.json: not a sweep file" in capsys.readouterr().err
    assert main(["join-sweeps", str(first), "--out", str(tmp_path / "n")]) == 2
    assert "at least two sweep files, found 1" in capsys.readouterr().err
    assert main(["join-sweeps", str(first), str(tmp_path / "gone.json"), "--out", str(tmp_path / "n")]) == 2
    assert "gone.json" in capsys.readouterr().err and not (tmp_path / "n").exists()
