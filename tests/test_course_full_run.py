"""The guards of notebook 09's full profile (refdense.course.full_run): model choice, the CPU
refusal, the missing-dataset error and the pre-flight estimate."""

from __future__ import annotations

import math

import pytest
import torch

from refdense.course.full_run import (
    ONE_SITTING_PRESET,
    CPUNotAllowedError,
    Preflight,
    duration,
    full_dataset,
    pick_models,
    preflight,
    require_accelerator,
)
from refdense.experiments.demo import CONFIGS, demo_configs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_pick_models_keeps_the_named_runs_and_refuses_anything_else():
    configs = demo_configs()
    assert list(pick_models(configs, "both")) == list(configs)
    assert list(pick_models(configs, "RefDense")) == ["RefDense"]
    pat = pick_models(configs, "pat")
    assert [config.model.arch for config in pat.values()] == ["pat"]
    with pytest.raises(ValueError, match="'both', 'refdense', 'pat'.*'ms-tct'"):
        pick_models(configs, "ms-tct")


def test_the_cpu_is_refused_unless_allowed():
    with pytest.raises(CPUNotAllowedError, match="ALLOW_CPU = True"):
        require_accelerator(torch.device("cpu"), allow_cpu=False)
    require_accelerator(torch.device("cpu"), allow_cpu=True)
    require_accelerator(torch.device("cuda"), allow_cpu=False)  # a device object needs no GPU to exist


def test_a_missing_dataset_is_an_error_that_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path / "data"))
    for given in ("", str(tmp_path / "nowhere")):
        with pytest.raises(FileNotFoundError) as error:
            full_dataset(given, "charades")
        message = str(error.value)
        assert "refdense prepare charades" in message
        assert repr(ONE_SITTING_PRESET) in message and "'charades-like'" in message
    assert str(tmp_path / "nowhere") in message  # the folder that was looked at
    assert not (tmp_path / "data").exists()  # nothing was generated


def test_a_prepared_folder_or_a_preset_is_accepted_and_a_preset_generated_once(
    tiny_dataset, tmp_path, monkeypatch, capsys
):
    assert full_dataset(str(tiny_dataset), "charades") == tiny_dataset
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path))
    folder = full_dataset("tiny", "multithumos")
    assert folder == tmp_path / "synthetic" / "tiny"
    assert "generating the synthetic preset tiny (32 training and 8 test videos" in capsys.readouterr().out
    for name in ("dataset.json", "annotations.json", "features.h5"):  # the same preset as everywhere
        assert (folder / name).read_bytes() == (tiny_dataset / name).read_bytes(), name
    assert full_dataset("tiny", "multithumos") == folder
    assert "generating" not in capsys.readouterr().out  # reused, not generated again


def test_preflight_estimates_epoch_and_run_from_timed_steps(writable_tiny_dataset):
    config = demo_configs(CONFIGS / "synthetic.yaml", (
        f"data.dataset={writable_tiny_dataset}", "data.text_encoder=random", "model.dim=16", "model.heads=2",
        "model.head_dim=8", "model.local_hidden=32", "data.window=32", "optim.batch_size=4", "optim.epochs=7",
        "run.device=cpu"))["RefDense"]
    estimate = preflight(config, "cpu", steps=2)
    training_videos = 29  # 32 training videos of tiny, 10% carved out for validation
    assert estimate.steps_per_epoch == math.ceil(training_videos / 4)
    assert estimate.step_seconds > 0 and estimate.validation_seconds > 0
    assert estimate.epoch_seconds == pytest.approx(estimate.step_seconds * estimate.steps_per_epoch
                                                   + estimate.validation_seconds)
    assert estimate.total_seconds == pytest.approx(7 * estimate.epoch_seconds)
    assert estimate.peak_memory_bytes > 2**20 and "resident" in estimate.memory_kind
    assert "7 epochs" in estimate.summary()


def test_the_summary_reads_in_the_right_units():
    estimate = Preflight("cuda:0", step_seconds=0.2, steps_per_epoch=1500, validation_seconds=60.0, epochs=25,
                         peak_memory_bytes=3 * 2**30, memory_kind="CUDA allocator peak")
    assert estimate.epoch_seconds == pytest.approx(360.0)
    assert estimate.summary() == ("cuda:0: 0.2 s/step x 1500 steps + validation 60 s = epoch 6.0 min; "
                                  "25 epochs 2.5 h; peak memory 3.00 GiB (CUDA allocator peak)")
    assert [duration(s) for s in (0.31, 42, 390, 9000)] == ["0.3 s", "42 s", "6.5 min", "2.5 h"]
