"""The training engine on the tiny preset with a tiny model: loss goes down, runs resume exactly,
evaluation round-trips through the predictions file, bad input fails clearly."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import torch

from refdense.metrics import paper_table, read_predictions
from refdense.train import ConfigError, NonFiniteLossError, TrainConfig, evaluate, train
from refdense.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from refdense.train.config import from_dict


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
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/latest.pt", "checkpoints/best.pt",
                 "predictions-test.npz", "results.json", "results.md", "plots/loss.png", "plots/val_map.png"):
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
    from refdense.cli import main

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


def test_resume_refuses_another_config_and_a_missing_run(dataset, tmp_path):
    config = tiny_config(dataset, optim={"epochs": 1})
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match=r"another config \(optim\.lr: 0\.003 in the run, 0\.1 now\)"):
        train(config.with_overrides("optim.lr=0.1"), tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ConfigError, match="already holds a run; resume it with --resume"):
        train(config, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="cannot resume: .*latest.pt does not exist"):
        train(config, tmp_path / "nothing", resume=True, progress=False)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    config = tiny_config(dataset, optim={"epochs": 1})
    train(config, tmp_path / "run", progress=False)
    good = weights(tmp_path / "run/checkpoints/latest.pt")

    from refdense.losses import RefDenseCriterion

    original = RefDenseCriterion.forward

    def poisoned(self, output, batch, **options):
        result = original(self, output, batch, **options)
        result.total = result.total * float("nan")
        return result

    monkeypatch.setattr(RefDenseCriterion, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 1: the loss is not finite \(loss nan, bce_action"):
        train(config.with_overrides("optim.epochs=2"), tmp_path / "run", resume=True, progress=False)
    kept = weights(tmp_path / "run/checkpoints/latest.pt")
    assert load_checkpoint(tmp_path / "run/checkpoints/latest.pt")["epoch"] == 1
    assert all(torch.equal(good[k], kept[k]) for k in good)


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"epoch": 1})

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(CheckpointError, match=f"no space left for checkpoints in {tmp_path}"):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_checkpoint_of_another_dataset_shape_is_refused(dataset, tmp_path, make_dataset):
    config = tiny_config(dataset, optim={"epochs": 1})
    train(config, tmp_path / "run", progress=False)
    other = make_dataset()  # 4-d video, 3-d image features, 3 classes
    with pytest.raises(ValueError, match="does not fit this dataset: video_dim 32 in the checkpoint, 4 in dataset"):
        evaluate(tmp_path / "run/checkpoints/best.pt", tmp_path / "x.npz", dataset=str(other), device="cpu")
    with pytest.raises(CheckpointError, match="is not a refdense checkpoint"):
        torch.save({"weights": 1}, tmp_path / "foreign.pt")
        evaluate(tmp_path / "foreign.pt", tmp_path / "x.npz")


def test_bf16_autocast_step_on_cpu(dataset, tmp_path):
    config = tiny_config(dataset, optim={"epochs": 1}, run={"precision": "bf16"}, data={"validation_fraction": 0})
    result = train(config, tmp_path / "run", progress=False)
    assert np.isfinite(result.history[0]["train"]["loss"])
    assert "val" not in result.history[0]
    assert "the last epoch (1)" in (tmp_path / "run/results.md").read_text()
