"""The secondary protocol: a sweep's runs scored with their best-validation checkpoint
(``refdense sweep ... --checkpoint best``) and the study's tables on them (``refdense study ... --checkpoint best``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from refdense.cli import main
from refdense.experiments import ablate
from refdense.experiments.ablate import BEST_PREDICTIONS, BEST_RESULTS, run_metrics
from refdense.experiments.sweep import sweep
from refdense.metrics import read_predictions
from refdense.train.evaluate import readout_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = ("data.window=16", "data.validation_fraction=0.125", "data.text_encoder=random", "model.dim=16",
         "model.heads=2", "model.head_dim=8", "model.strides=[2, 4]", "model.max_len=16", "model.local_hidden=32",
         "optim.batch_size=4", "optim.lr=3e-3", "run.device=cpu", "run.test_checkpoint=last")
VARIANTS = ("full", "no_cross_attention")
PLAN = """
sweeps: {held: held_out}
method: The gain at one value of the dial.
axis: gain
tests:
  - {name: H, claim: the gain on the held-out classes, primary: true, gain: {sweep: held, value: 0.25, variant: no_cross_attention, metric: mAP_held_out}}
"""


def _runs(result):
    return [r for by_variant in result["runs"].values() for records in by_variant.values() for r in records]


@pytest.fixture
def sweeps(tmp_path, monkeypatch):
    """A two-run sweep (full and no_cross_attention, one seed, one value of held_out) trained for ``epochs``."""
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path / "data"))
    out = tmp_path / "sweeps"

    def run(epochs, checkpoint="tested", variants=VARIANTS, overrides=()):
        return sweep("held_out", [0.25], out, preset="tiny", variants=variants, seeds=(0,), epochs=epochs,
                     overrides=[*SMALL, *overrides], progress=False, checkpoint=checkpoint)

    return out, run


def test_the_best_checkpoint_is_scored_as_refdense_evaluate_scores_it_and_cached(sweeps, tmp_path, monkeypatch):
    out, run = sweeps
    fast = ("optim.lr=3e-2",)  # the full model's best validation epoch is then 3 of 4 (measured)
    primary = json.loads(run(4, overrides=fast).read_text())
    primary_text = (out / "held_out" / "SWEEP.md").read_text()
    path = run(4, "best", overrides=fast)
    assert path == out / "held_out" / "sweep-best.json"
    result = json.loads(path.read_text())
    assert result["checkpoint"] == "best" and primary["checkpoint"] == "tested"
    assert result["metrics"] == primary["metrics"]
    assert (out / "held_out" / "SWEEP.md").read_text() == primary_text  # the primary table is left as it was
    for record in _runs(result):
        run_dir = out / record["run"]
        stored = json.loads((run_dir / BEST_RESULTS).read_text())
        assert stored["checkpoint"] == "checkpoints/best.pt"
        assert record["checkpoint_epoch"] == stored["checkpoint_epoch"] == record["best_epoch"]
        # refdense evaluate on the same checkpoint, into a file of its own, gives the same numbers
        again = tmp_path / f"evaluate-{record['run'].replace('/', '-')}.npz"
        assert main(["evaluate", str(run_dir / "checkpoints" / "best.pt"), "--out", str(again)]) == 0
        independent = run_metrics(again)
        for metric in ("mAP", "mAP_ac", "F1_ac"):
            assert record[metric] == pytest.approx(independent[metric], abs=1e-9), metric
            assert stored["metrics"][metric] == pytest.approx(independent[metric], abs=1e-9), metric
        assert np.isfinite(record["mAP_held_out"])
    full = result["runs"]["0.25"]["full"][0]
    # with the pinned torch the best epoch is 3 of 4 (not the checkpoint the primary tests); the
    # oldest supported torch trains another trajectory, whose best epoch may be the last
    assert full["checkpoint_epoch"] == full["best_epoch"] <= full["epochs"] == 4
    final, best = (read_predictions(out / full["run"] / name) for name in ("predictions-test.npz", BEST_PREDICTIONS))
    if full["checkpoint_epoch"] < full["epochs"]:
        assert not all(np.allclose(a, b) for a, b in zip(final.scores, best.scores))
    # the full model has both auxiliary heads: its composed and motion readouts are written beside
    assert json.loads((out / full["run"] / BEST_RESULTS).read_text())["predictions"] == [
        BEST_PREDICTIONS, "predictions-test-best-composed.npz", "predictions-test-best-motion.npz"]
    assert {"mAP_composed", "mAP_composed_held_out", "mAP_motion"} <= set(full)
    table = (out / "held_out" / "SWEEP-best.md").read_text()
    assert "secondary protocol: best-validation checkpoint" in table
    gain = full["mAP"] - result["runs"]["0.25"]["no_cross_attention"][0]["mAP"]
    assert f"| 0.25 | no_cross_attention | {full['mAP']:.2f}" in table and f"{gain:+.2f}" in table
    assert (out / "held_out" / "sweep-best.png").stat().st_size > 10_000

    # a second call reads the files it wrote: nothing is evaluated again
    stamps = {p: p.stat().st_mtime_ns for r in _runs(result) for p in (out / r["run"]).glob("*-best*")}
    files = [json.loads((out / r["run"] / BEST_RESULTS).read_text())["predictions"] for r in _runs(result)]
    assert len(stamps) == sum(len(names) + 1 for names in files)  # each run's predictions and its record

    def refuse(*args, **kwargs):
        raise AssertionError("evaluated again")

    monkeypatch.setattr(ablate, "evaluate", refuse)
    assert json.loads(run(4, "best", overrides=fast).read_text())["runs"] == result["runs"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # the study's secondary tables go to files of their own; the primary ones are untouched
    (tmp_path / "plan.yaml").write_text(PLAN)
    assert main(["study", str(out), "--plan", str(tmp_path / "plan.yaml")]) == 0
    primary_study = (out / "STUDY.md").read_text()
    primary_figure = (out / "study.png").read_bytes()
    assert main(["study", str(out), "--plan", str(tmp_path / "plan.yaml"), "--checkpoint", "best"]) == 0
    secondary = (out / "STUDY-best.md").read_text()
    assert secondary.startswith("# The registered study, secondary protocol: best-validation checkpoint (descriptive)")
    held = [result["runs"]["0.25"][name][0]["mAP_held_out"] for name in VARIANTS]
    assert f"| H | the gain on the held-out classes | 0 | {held[0] - held[1]:+.2f}" in secondary
    assert (out / "study-best.png").stat().st_size > 10_000
    assert (out / "STUDY.md").read_text() == primary_study and (out / "study.png").read_bytes() == primary_figure
    held = [primary["runs"]["0.25"][name][0]["mAP_held_out"] for name in VARIANTS]
    assert f"{held[0] - held[1]:+.2f}" in primary_study


def test_a_run_whose_best_epoch_is_its_last_gives_the_primary_numbers(sweeps):
    out, run = sweeps
    primary = json.loads(run(1).read_text())
    result = json.loads(run(1, "best").read_text())
    for tested, best in zip(_runs(primary), _runs(result)):
        assert best["checkpoint_epoch"] == best["epochs"] == 1
        assert set(best) == set(tested) | {"checkpoint_epoch"}
        for metric in set(tested) & set(result["metrics"] + ["mAP_composed", "mAP_motion", "mAP_held_out"]):
            assert best[metric] == pytest.approx(tested[metric], abs=1e-9), metric
    run_dir = out / primary["runs"]["0.25"]["full"][0]["run"]
    for name in ("composed", "motion"):
        final = read_predictions(readout_path(run_dir / "predictions-test.npz", name))
        best = read_predictions(readout_path(run_dir / BEST_PREDICTIONS, name))
        for a, b in zip(final.scores, best.scores):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_an_unfinished_or_missing_run_is_an_error_that_names_it_and_nothing_is_trained(sweeps):
    out, run = sweeps
    run(1)
    latest = out / "runs" / "tiny-held_out0.25" / "full" / "seed0" / "checkpoints" / "latest.pt"
    stamp = latest.stat().st_mtime_ns
    with pytest.raises(ValueError, match=r"tiny-held_out0.25/full/seed0: not finished \(1 of 2 epochs\)"):
        run(2, "best")
    assert latest.stat().st_mtime_ns == stamp
    # refdense evaluate of best.pt, with no --out, keeps the final checkpoint's file of a run that tests it
    run_dir = latest.parent.parent
    final = (run_dir / "predictions-test.npz").read_bytes()
    assert main(["evaluate", str(run_dir / "checkpoints" / "best.pt")]) == 0
    assert (run_dir / BEST_PREDICTIONS).is_file() and (run_dir / "predictions-test.npz").read_bytes() == final
    missing = out / "runs" / "tiny-held_out0.25" / "no_colv" / "seed0"
    with pytest.raises(ValueError, match=r"no_colv/seed0: not a finished run \(no results.json\)"):
        run(1, "best", ("full", "no_colv"))
    assert not missing.exists()
    assert not (out / "held_out" / "sweep-best.json").exists()
    with pytest.raises(ValueError, match="checkpoint: expected one of tested, best, found 'latest'"):
        run(1, "latest")
