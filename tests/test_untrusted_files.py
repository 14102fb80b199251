"""Files from others never run code: a crafted checkpoint or predictions file is refused, with a
clear error and no traceback, by every command that reads one (evaluate, train --resume, metrics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from refdense.cli import main
from refdense.train import TrainConfig
from refdense.train.checkpoint import FORMAT


class Payload:
    """Unpickling this object calls ``open(marker, "w")``: it creates the file ``marker``."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def crafted_checkpoint(path, marker):
    """A file that claims to be a refdense checkpoint and holds the payload among its weights."""
    torch.save({"format": FORMAT, "config": TrainConfig().to_dict(), "epoch": 1,
                "model": {"head.weight": torch.zeros(2), "head.bias": Payload(marker)}}, path)
    return path


def crafted_predictions(path, marker):
    """A predictions file whose scores are an object array holding the payload."""
    scores = np.empty(1, dtype=object)
    scores[0] = Payload(marker)
    np.savez(path, scores=scores, labels=np.zeros((3, 2), np.uint8), lengths=np.array([3]))
    return path


def test_the_payloads_run_when_unpickled(tmp_path):
    """Without the protection the crafted files do run code: the tests below would notice it."""
    marker = tmp_path / "marker"
    torch.load(crafted_checkpoint(tmp_path / "c.pt", marker), weights_only=False)
    assert marker.exists()
    marker.unlink()
    with np.load(crafted_predictions(tmp_path / "p.npz", marker), allow_pickle=True) as data:
        data["scores"]
    assert marker.exists()


def refused(capsys, marker, command: str, *texts: str) -> None:
    err = capsys.readouterr().err
    assert not marker.exists(), "the payload ran"
    assert err.startswith(f"refdense {command}: error: ") and "Traceback" not in err, err
    for text in texts:
        assert text in err, err


def test_evaluate_refuses_a_crafted_checkpoint(tmp_path, capsys):
    marker = tmp_path / "marker"
    checkpoint = crafted_checkpoint(tmp_path / "best.pt", marker)
    assert main(["evaluate", str(checkpoint), "--device", "cpu", "--out", str(tmp_path / "p.npz")]) == 2
    refused(capsys, marker, "evaluate", f"{checkpoint}: refused: it holds Python objects other than tensors",
            "refers to io.open", "could run code")
    assert not (tmp_path / "p.npz").exists()


def test_train_resume_refuses_a_crafted_checkpoint(tmp_path, capsys):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    TrainConfig().with_overrides("run.device=cpu").save(run / "config.yaml")
    crafted_checkpoint(run / "checkpoints" / "latest.pt", marker)
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    refused(capsys, marker, "train", "latest.pt: refused: it holds Python objects other than tensors")


def test_metrics_refuses_a_crafted_predictions_file(tmp_path, capsys):
    marker = tmp_path / "marker"
    predictions = crafted_predictions(tmp_path / "predictions.npz", marker)
    assert main(["metrics", str(predictions)]) == 2
    refused(capsys, marker, "metrics", "predictions.npz: refused: scores hold pickled Python objects")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", b"\x80\x04K\x01."])
def test_files_that_are_no_archive_are_refused_without_traceback(tmp_path, capsys, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    assert main(["evaluate", str(path), "--device", "cpu"]) == 2
    refused(capsys, tmp_path / "marker", "evaluate", "broken.pt")
    assert main(["metrics", str(path)]) == 2
    refused(capsys, tmp_path / "marker", "metrics", "broken.pt: not a .npz file")
