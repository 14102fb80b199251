"""Many runs at once (``--jobs``): the same numbers as one after another, and failures reported with their logs."""

from __future__ import annotations

import json

import pytest

from refdense.cli import main
from refdense.experiments.ablate import ABLATIONS, BASE
from refdense.experiments.launch import Launch, RunsFailed, finished, fit_runs
from refdense.experiments.sweep import sweep
from refdense.io import output_folder
from refdense.train.config import load_config

SMALL = ("data.window=16", "data.validation_fraction=0.125", "data.text_encoder=random", "model.dim=16",
         "model.heads=2", "model.head_dim=8", "model.strides=[2, 4]", "model.max_len=16", "model.local_hidden=32",
         "optim.batch_size=4", "optim.lr=3e-3", "run.device=cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_sweep_with_two_jobs_equals_the_sequential_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path / "data"))
    kwargs = dict(preset="tiny", variants=("full", "no_colv"), seeds=(1,), epochs=1, overrides=SMALL)
    alone = json.loads(sweep("coupling", [0.0], tmp_path / "alone", progress=False, **kwargs).read_text())
    args = ["sweep", "--dial", "coupling", "--values", "0", "--variants", "full", "no_colv", "--seeds", "1",
            "--preset", "tiny", "--epochs", "1", "--out", str(tmp_path / "jobs"), "--jobs", "2", "--threads", "1"]
    for item in SMALL:
        args += ["--set", item]
    assert main(args) == 0
    parallel = json.loads((tmp_path / "jobs" / "coupling" / "sweep.json").read_text())
    assert parallel.keys() == alone.keys()
    for name in ("full", "no_colv"):
        for a, p in zip(alone["runs"]["0"][name], parallel["runs"]["0"][name], strict=True):
            assert {k: v for k, v in p.items() if k not in ("mAP", "mAP_ac", "F1_ac")} == \
                   {k: v for k, v in a.items() if k not in ("mAP", "mAP_ac", "F1_ac")}
            for metric in ("mAP", "mAP_ac", "F1_ac"):
                assert p[metric] == pytest.approx(a[metric], abs=1e-9, nan_ok=True), (name, metric)
    assert (tmp_path / "jobs" / "coupling" / "SWEEP.md").read_text() == (tmp_path / "alone" / "coupling" / "SWEEP.md").read_text()
    assert (tmp_path / "jobs" / "runs" / "tiny-seed1" / "no_colv" / "seed1" / "fit.log").is_file()


def test_a_failed_run_is_reported_with_its_log_and_the_others_finish(writable_tiny_dataset, tmp_path):
    config = load_config(BASE, ABLATIONS / "full.yaml",
                         overrides=[f"data.dataset={writable_tiny_dataset}", *SMALL, "optim.epochs=1"])
    broken, good = tmp_path / "broken", tmp_path / "good"
    output_folder(broken, "train")  # a run folder, as training marks it ...
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint")  # its resume fails
    runs = [(config, broken), (config.with_overrides("run.seed=1"), good)]
    with pytest.raises(RunsFailed, match=rf"1 of 2 runs failed:\n{broken}: exit code 1, log {broken / 'fit.log'}"):
        fit_runs(runs, Launch(jobs=2, threads=1), slurm_folder=tmp_path / "slurm", desc="test", progress=False)
    assert "Traceback" in (broken / "fit.log").read_text()
    assert finished(runs[1][0], good) and not finished(config, broken)
    # the finished run is reused without a worker: its log does not grow
    size = (good / "fit.log").stat().st_size
    paths = fit_runs(runs[1:], Launch(jobs=2), slurm_folder=tmp_path / "slurm", desc="test", progress=False)
    assert paths == [good / "predictions-test.npz"] and (good / "fit.log").stat().st_size == size


def test_launch_settings_are_checked(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"launcher.*local, slurm.*found 'pbs'"):
        Launch(launcher="pbs")
    with pytest.raises(ValueError, match=r"jobs.*at least 1.*found 0"):
        Launch(jobs=0)
    with pytest.raises(ValueError, match=r"slurm: .*time limit >= 1 minute.*found 0, 1, 0"):
        Launch(launcher="slurm", slurm_time=0)
    for command in ("sweep", "ablate"):
        extra = ["--dial", "coupling", "--values", "0"] if command == "sweep" else []
        assert main([command, *extra, "--jobs", "0", "--out", str(tmp_path)]) == 2
        error = capsys.readouterr().err
        assert all(piece in error for piece in (f"refdense {command}: error: ", "jobs", "at least 1", "found 0")), error
    assert not any(tmp_path.iterdir())  # refused before anything is written
