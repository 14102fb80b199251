"""The training engine on the tiny preset with a tiny model: loss goes down, runs resume exactly,
evaluation round-trips through the predictions file, bad input fails clearly."""

from __future__ import annotations

import errno
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from refdense.cli import main
from refdense.io import exclusive_lock
from refdense.data import DenseActionDataset
from refdense.metrics import paper_table, read_predictions
from refdense.models import predict_full_video
from refdense.train import ConfigError, NonFiniteLossError, TrainConfig, distributed, evaluate, train
from refdense.train import checkpoint as checkpoint_module
from refdense.train import components
from refdense.train.checkpoint import CheckpointError, load_checkpoint
from refdense.train.components import build_detector, resolve_precision
from refdense.train.config import from_dict, load_config
from refdense.train.loop import SeededWindows


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(writable_tiny_dataset):
    return writable_tiny_dataset


def tiny_config(dataset, **sections) -> TrainConfig:
    """A model small enough for a CPU test: a few thousand parameters, BCE + CoLV on all sets."""
    values = {
        "data": {"dataset": str(dataset), "window": 16, "validation_fraction": 0.125, "text_encoder": "random"},
        "model": {"dim": 16, "heads": 2, "head_dim": 8, "blocks": 1, "strides": [2, 4], "max_len": 16,
                  "local_hidden": 32, "position": "relative"},
        "optim": {"epochs": 3, "batch_size": 4, "lr": 3e-3, "step_size": 2, "gamma": 0.5},
        "run": {"device": "cpu", "seed": 0},
    }
    for section, changes in sections.items():
        values.setdefault(section, {}).update(changes)
    return from_dict(values)


@pytest.fixture(scope="module")
def finished_run(dataset, tmp_path_factory):
    """A run of one epoch (copy it before changing it)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    train(tiny_config(dataset, optim={"epochs": 1}), run, progress=False)
    return run


@pytest.mark.course
def test_a_run_draws_its_plots_and_its_results_show_them(finished_run):
    for name in ("loss", "val_map"):
        assert (finished_run / "plots" / f"{name}.png").stat().st_size > 1_000
        assert f"(plots/{name}.png)" in (finished_run / "results.md").read_text()


def weights(path):
    state = load_checkpoint(path)
    return {**{f"model.{k}": v for k, v in state["model"].items()},
            **{f"criterion.{k}": v for k, v in state["criterion"].items()}}


def test_training_decreases_the_loss_and_writes_the_run(dataset, tmp_path, capsys):
    config = tiny_config(dataset)
    result = train(config, tmp_path / "run", progress=False)
    losses = [record["train"]["loss"] for record in result.history]
    assert losses[-1] < losses[0] * 0.9, losses
    assert set(result.history[0]["train"]) == {"loss", "bce_action", "bce_entity", "bce_motion",
                                               "colv_entity", "colv_motion"}
    run = tmp_path / "run"
    chosen = resolve_precision("auto", torch.device("cpu"))  # fp32 on an AVX2 CPU
    assert config.run.precision == "auto" and load_config(run / "config.yaml").run.precision == chosen
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/latest.pt", "checkpoints/best.pt",
                 "predictions-test.npz", "results.json", "results.md"):
        assert (run / name).is_file(), name
    assert not list(run.rglob("*.tmp-*"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3] and all("map" in r["val"] for r in records)
    best = max(records, key=lambda r: r["val"]["map"])["epoch"]
    assert result.checkpoint_epoch == best == load_checkpoint(run / "checkpoints/best.pt")["epoch"]
    assert f"epoch {best} of 3" in (run / "results.md").read_text()
    assert [r["lr"] for r in records] == pytest.approx([3e-3, 3e-3, 1.5e-3])  # lr of each epoch
    # the predictions file holds exactly the test table's numbers
    saved = read_predictions(run / "predictions-test.npz")
    again = paper_table(saved.scores, saved.labels)
    assert again.to_dict() == result.test.to_dict()
    assert json.loads((run / "results.json").read_text())["test"] == result.test.to_dict()
    # ... and `refdense metrics` prints them
    assert main(["metrics", str(run / "predictions-test.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result.test.to_dict()))
    # evaluating the checkpoint on its own gives the same predictions and numbers
    evaluation = evaluate(run / "checkpoints/best.pt", tmp_path / "eval.npz", device="cpu")
    assert evaluation.epoch == best and evaluation.table.to_dict() == result.test.to_dict()
    for a, b in zip(read_predictions(tmp_path / "eval.npz").scores, saved.scores):
        np.testing.assert_array_equal(a, b)


def test_resumed_training_equals_uninterrupted_training(dataset, tmp_path):
    config = tiny_config(dataset, model={"input_dropout": 0.3})  # dropout: the RNG matters
    train(config, tmp_path / "straight", progress=False)
    short = tiny_config(dataset, model={"input_dropout": 0.3}, optim={"epochs": 2})
    train(short, tmp_path / "resumed", progress=False)  # "interrupted" after epoch 2
    result = train(config, tmp_path / "resumed", resume=True, progress=False)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    straight, resumed = (load_checkpoint(tmp_path / run / "checkpoints/latest.pt") for run in ("straight", "resumed"))
    for part in ("model", "criterion"):
        assert straight[part].keys() == resumed[part].keys()
        for key in straight[part]:
            assert torch.equal(straight[part][key], resumed[part][key]), key
    assert straight["scheduler"] == resumed["scheduler"]
    for a, b in zip(straight["optimizer"]["state"].values(), resumed["optimizer"]["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train"] for r in straight["history"]] == [r["train"] for r in resumed["history"]]


def test_seeded_windows_draw_each_window_from_seed_epoch_and_video_alone(dataset):
    def windows():
        return SeededWindows(DenseActionDataset(dataset, "training", window=8, generator=torch.Generator()), seed=3)

    one, other = windows(), windows()
    starts = [one[epoch, index]["start"] for epoch in (0, 1) for index in range(len(one))]
    torch.manual_seed(123)  # the global generator plays no part, nor the order of the items
    assert [other[epoch, index]["start"] for epoch in (0, 1) for index in range(len(other))] == starts
    assert other[1, 2]["start"] == starts[len(one) + 2]
    assert starts[: len(one)] != starts[len(one):]  # another epoch, other windows
    with pytest.raises(ValueError, match=r"build the dataset with a generator of its own"):
        SeededWindows(DenseActionDataset(dataset, "training", window=8), seed=3)


def test_resume_refuses_another_config_and_a_missing_run(dataset, tmp_path):
    config = tiny_config(dataset, optim={"epochs": 1})
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match=r"another config \(optim\.lr: 0\.003 in the run, 0\.1 now\)"):
        train(config.with_overrides("optim.lr=0.1"), tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ConfigError, match="already holds a run; resume it with --resume"):
        train(config, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="cannot resume: .*nothing does not exist"):
        train(config, tmp_path / "nothing", resume=True, progress=False)
    assert not (tmp_path / "nothing").exists()  # nothing was written for a typo
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="cannot resume: .*latest.pt does not exist"):
        train(config, tmp_path / "empty", resume=True, progress=False)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(dataset, tmp_path, monkeypatch, optimizer):
    config = tiny_config(dataset, optim={"epochs": 1, "optimizer": optimizer})
    train(config, tmp_path / "run", progress=False)
    good = weights(tmp_path / "run/checkpoints/latest.pt")

    from refdense.losses import RefDenseCriterion

    original = RefDenseCriterion.forward

    def poisoned(self, output, batch, **options):
        result = original(self, output, batch, **options)
        result.total = result.total * float("nan")
        return result

    monkeypatch.setattr(RefDenseCriterion, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 1: .*loss nan, bce_action"):
        train(config.with_overrides("optim.epochs=2"), tmp_path / "run", resume=True, progress=False)
    kept = weights(tmp_path / "run/checkpoints/latest.pt")
    assert load_checkpoint(tmp_path / "run/checkpoints/latest.pt")["epoch"] == 1
    assert all(torch.equal(good[k], kept[k]) for k in good)


def test_a_full_disk_stops_training_with_the_command_that_resumes(finished_run, tmp_path, monkeypatch, capsys):
    run = shutil.copytree(finished_run, tmp_path / "run")
    real_save = checkpoint_module.atomic_torch_save

    def save_on_a_full_disk(obj, path):
        def no_space(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", no_space)
            real_save(obj, path)

    monkeypatch.setattr(checkpoint_module, "atomic_torch_save", save_on_a_full_disk)
    assert main(["train", "--resume", str(run), "--set", "optim.epochs=2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refdense train: error: ") and "Traceback" not in err, err
    assert all(piece in err for piece in ("no space left", f"{run / 'checkpoints'}/", "is kept", "Free some space",
                                          f"`refdense train --resume {run}`")), err
    monkeypatch.undo()
    assert load_checkpoint(run / "checkpoints/latest.pt")["epoch"] == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "latest.pt"]


def test_checkpoint_of_another_dataset_shape_is_refused(dataset, tmp_path, make_dataset):
    config = tiny_config(dataset, optim={"epochs": 1})
    train(config, tmp_path / "run", progress=False)
    other = make_dataset()  # 4-d video, 3-d image features, 3 classes
    with pytest.raises(ValueError, match="does not fit this dataset: video_dim 32 in the checkpoint, 4 in dataset"):
        evaluate(tmp_path / "run/checkpoints/best.pt", tmp_path / "x.npz", dataset=str(other), device="cpu")
    with pytest.raises(CheckpointError, match="is not a refdense checkpoint"):
        torch.save({"weights": 1}, tmp_path / "foreign.pt")
        evaluate(tmp_path / "foreign.pt", tmp_path / "x.npz")


def test_checkpoints_of_another_kind_are_refused_without_traceback(finished_run, tmp_path, capsys):
    best = torch.load(finished_run / "checkpoints/best.pt", weights_only=True)
    name, tensor = next((k, v) for k, v in best["model"].items() if v.ndim == 2)
    cases = {
        "weights only": (best["model"], "is not a refdense checkpoint (expected format 'refdense-checkpoint/2', "
                                        "found None)"),
        "missing": ({k: v for k, v in best.items() if k not in ("model", "history")}, "missing model, history"),
        "types": (best | {"epoch": "1", "criterion": {"scale": 1.0}},
                  "epoch: expected int, found str; criterion holds values that are not tensors"),
        "shapes": (best | {"model": best["model"] | {name: torch.zeros(tensor.shape[0] + 1, tensor.shape[1])}},
                   f"model does not fit the model built from its config: Error(s) in loading state_dict for "),
        "keys": (best | {"model": {k: v for k, v in best["model"].items() if k != name}},
                 f'Missing key(s) in state_dict: "{name}"'),
        "records": (best | {"best": {"epoch": 1}, "history": [1]},
                    "best is {'epoch': 1}, expected {'epoch': int, 'val_map': float}; history is not 1 records"),
    }
    for case, (state, message) in cases.items():
        path = tmp_path / f"{case}.pt"
        torch.save(state, path)
        assert main(["evaluate", str(path), "--device", "cpu", "--out", str(tmp_path / "p.npz")]) == 2, case
        err = capsys.readouterr().err
        assert err.startswith(f"refdense evaluate: error: {path}") and message in err and "Traceback" not in err, err
    shutil.copytree(finished_run, tmp_path / "run")
    latest = torch.load(tmp_path / "run/checkpoints/latest.pt", weights_only=True)
    config = from_dict(latest["config"]).with_overrides("optim.epochs=2")
    for part, value, message in (("optimizer", {"state": {}, "param_groups": []}, "optimizer does not fit the optimizer"),
                                 ("scheduler", latest["scheduler"] | {"optimizer": 1}, "scheduler does not fit: "
                                                                                      "unexpected entries ['optimizer']")):
        torch.save(latest | {part: value}, tmp_path / "run/checkpoints/latest.pt")
        with pytest.raises(CheckpointError, match=re.escape(message)):
            train(config, tmp_path / "run", resume=True, progress=False)
    torch.save({k: v for k, v in latest.items() if k != "optimizer"}, tmp_path / "run/checkpoints/latest.pt")
    with pytest.raises(CheckpointError, match="missing optimizer; not a resumable checkpoint"):
        train(config, tmp_path / "run", resume=True, progress=False)


def test_evaluate_refuses_a_dataset_with_other_class_names(finished_run, dataset, tmp_path, capsys):
    renamed = shutil.copytree(dataset, tmp_path / "renamed")
    info = json.loads((renamed / "dataset.json").read_text())
    original = info["classes"][3]
    info["classes"][3] = "juggle a teapot"
    (renamed / "dataset.json").write_text(json.dumps(info))
    best = finished_run / "checkpoints/best.pt"
    assert main(["evaluate", str(best), "--dataset", str(renamed), "--device", "cpu",
                 "--out", str(tmp_path / "p.npz")]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in (str(best), f"classes[3] {original!r}", "'juggle a teapot'", "'tiny'")), error
    assert not (tmp_path / "p.npz").exists()


def test_checkpoints_of_format_1_are_refused_with_the_command_that_upgrades_them(finished_run, dataset, tmp_path,
                                                                                capsys):
    run = shutil.copytree(finished_run, tmp_path / "run")
    for name in ("best.pt", "latest.pt"):  # what refdense wrote before the class names were stored
        state = torch.load(run / "checkpoints" / name, weights_only=True)
        state["format"] = "refdense-checkpoint/1"
        state["dataset"] = {"video_dim": 32, "image_dim": 32, "num_classes": 12, "num_entities": 4, "num_motions": 4}
        torch.save(state, run / "checkpoints" / name)
    args = ["evaluate", str(run / "checkpoints/best.pt"), "--device", "cpu", "--out", str(tmp_path / "p.npz")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert all(piece in err for piece in (f"refdense evaluate: error: {run / 'checkpoints/best.pt'}",
                                          "earlier refdense", "'refdense-checkpoint/1'")), err
    command = next(line.strip() for line in err.splitlines() if line.strip().startswith("python -c"))
    assert f"upgrade_checkpoints({str(run / 'checkpoints')!r}, {str(dataset)!r})" in command
    done = subprocess.run([sys.executable, *shlex.split(command)[1:]], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert main(args) == 0
    capsys.readouterr()
    assert load_checkpoint(run / "checkpoints/latest.pt", resume=True)["dataset"]["classes"] == \
        json.loads((dataset / "dataset.json").read_text())["classes"]


def test_resume_compares_the_stored_config_with_config_yaml_and_set(finished_run, tmp_path, capsys):
    run = shutil.copytree(finished_run, tmp_path / "run")
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("lr: 0.003", "lr: 0.01").replace("seed: 0", "seed: 5"))
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in (str(run), "optim.lr: 0.003", "0.01 now", "run.seed: 0", "5 now")), error
    (run / "config.yaml").write_text(text)
    assert main(["train", "--resume", str(run), "--quiet", "--set", "model={dim: 32}", "--set", "optim.epochs=2"]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in (str(run), "model.dim: 16", "32 now")), error
    assert load_checkpoint(run / "checkpoints/latest.pt")["epoch"] == 1
    assert main(["train", "--resume", str(run), "--quiet", "--set", "optim.epochs=2"]) == 0
    assert load_checkpoint(run / "checkpoints/latest.pt")["epoch"] == 2


def test_one_process_at_a_time_trains_into_a_run_directory(finished_run, tmp_path, capsys):
    """A run directory whose lock another holder has (here a second open file of this process: flock
    locks one open file, not one process) is refused before anything is written, new or resumed."""
    run = shutil.copytree(finished_run, tmp_path / "run")
    shutil.copy(run / "config.yaml", tmp_path / "config.yaml")
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file() and path.name != "run.lock"}
    with exclusive_lock(run / "run.lock", "the test"):
        for command in (["--config", str(tmp_path / "config.yaml"), "--out", str(run), "--set", "run.seed=1"],
                        ["--resume", str(run)]):
            assert main(["train", *command, "--quiet"]) == 2
            error = capsys.readouterr().err
            assert f"run directory {run} is in use" in error and f"pid {os.getpid()}" in error, error
            assert str(run / "run.lock") in error, error
    assert {path: path.read_bytes() for path in before} == before


def test_bf16_autocast_step_on_cpu_chosen_by_auto_where_the_cpu_has_native_bf16(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(components, "cpu_flags", lambda: frozenset({"amx_tile", "amx_bf16"}))  # an AMX CPU
    config = tiny_config(dataset, optim={"epochs": 1}, run={"precision": "auto"}, data={"validation_fraction": 0})
    result = train(config, tmp_path / "run", progress=False)
    assert load_config(tmp_path / "run/config.yaml").run.precision == "bf16"  # the run records the choice
    assert np.isfinite(result.history[0]["train"]["loss"])
    assert "val" not in result.history[0]
    assert "the last epoch (1)" in (tmp_path / "run/results.md").read_text()


def test_predict_split_batches_the_videos_and_gives_each_what_it_gets_alone(dataset, monkeypatch):
    evaluation = importlib.import_module("refdense.train.evaluate")  # the module (the package exports its function)
    config = tiny_config(dataset, model={"position": "pat"})
    videos = DenseActionDataset(dataset, "testing", train=False, validation_fraction=0.125, seed=0)
    torch.manual_seed(0)
    model = build_detector(config.model, videos.info).eval()
    monkeypatch.setattr(evaluation, "VIDEOS_SEGMENTS", 100)  # several chunks of a few videos
    context = distributed.Context(rank=0, world_size=1, device=torch.device("cpu"))
    scores = evaluation.predict_split(model, videos, context, "fp32")
    assert list(scores) == videos.video_ids
    for index, video_id in enumerate(videos.video_ids):
        item = videos[index]
        alone = predict_full_video(model, item["video"], item["image"]).numpy()
        np.testing.assert_allclose(scores[video_id], alone, atol=1e-6, rtol=1e-5)
