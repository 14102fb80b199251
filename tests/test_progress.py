"""Progress of long commands: plain lines with an ETA when the output is not a terminal (a log
file, a batch job), a bar on a terminal; what `refdense train` says at its start; one predictions name."""

from __future__ import annotations

import io
import re
import time

import pytest

from refdense import progress
from refdense.cli import main


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_come_periodically_with_an_eta_and_end_with_a_last_line():
    stream = io.StringIO()
    with progress.progress_bar(10, desc="prepare", unit="videos", stream=stream, interval=0.02) as bar:
        for _ in range(10):
            time.sleep(0.015)
            bar.update()
            bar.set_postfix_str("loss 0.5")
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2  # ~150 ms of work, a line every 20 ms, and the last one
    pattern = r"prepare: (\d+)/10 videos \(\d+%\), elapsed \d\d:\d\d(, ETA \d\d:\d\d)?(, loss 0.5)?"
    assert all(re.fullmatch(pattern, line) for line in lines), lines
    assert lines[-1].startswith("prepare: 10/10 videos (100%)") and "ETA 00:00" in lines[-1]


def test_short_work_prints_nothing_and_a_terminal_gets_a_bar():
    quiet = io.StringIO()
    for _ in progress.track(range(3), desc="synth", unit="videos"):
        pass
    with progress.progress_bar(3, desc="synth", stream=quiet) as bar:
        bar.update(3)
    assert quiet.getvalue() == ""
    terminal = Terminal()
    with progress.progress_bar(3, desc="extract", unit="videos", stream=terminal) as bar:
        bar.update(3)
    assert "extract: 100%" in terminal.getvalue() and "3/3" in terminal.getvalue()
    silent = Terminal()
    with progress.progress_bar(3, desc="x", stream=silent, enabled=False) as bar:
        bar.update(3)
    assert silent.getvalue() == ""


def test_unknown_totals_count_without_an_eta():
    stream = io.StringIO()
    bar = progress.PlainLines(None, "download", "B", stream, interval=3600)
    bar.update(5)
    assert bar.line().startswith("download: 5 B, elapsed 00:00") and "ETA" not in bar.line()
    bar.close()
    assert stream.getvalue() == ""


@pytest.mark.usefixtures("one_torch_thread")
def test_train_says_what_data_it_trains_on_and_shows_progress_within_the_epoch(writable_tiny_dataset, tmp_path,
                                                                               capsys, monkeypatch):
    monkeypatch.setattr(progress, "LINE_SECONDS", 0.002)
    args = ["train", "--out", str(tmp_path / "run"),
            "--set", f"data.dataset={writable_tiny_dataset}", "--set", "data.text_encoder=random",
            "--set", "data.window=16", "--set", "model.dim=16", "--set", "model.heads=2", "--set", "model.head_dim=8",
            "--set", "model.blocks=1", "--set", "model.strides=[2, 4]", "--set", "model.max_len=16",
            "--set", "model.local_hidden=32", "--set", "model.position=relative", "--set", "optim.epochs=1",
            "--set", "optim.batch_size=4", "--set", "run.device=cpu"]
    assert main(args + ["--config", "configs/synthetic.yaml"]) == 0
    captured = capsys.readouterr()
    paragraph = " ".join(captured.out.split("epoch 1/1")[0].split())
    assert f"Data: {writable_tiny_dataset} (tiny: 12 classes, 4 entities, 4 motions;" in paragraph
    assert "Training on 29 videos, validating on 3 carved from the training subset, testing on 8." in paragraph
    assert "Clean-up when loading:" in paragraph and "instances: clipped" in paragraph
    assert re.search(r"^epoch 1/1: \d+/8 steps \(\d+%\), elapsed", captured.err, re.MULTILINE), captured.err
    assert re.search(r"^predict testing: \d+/8 videos", captured.err, re.MULTILINE)

    # `refdense evaluate` writes the predictions under the name `refdense train` used
    run = tmp_path / "run"
    written = (run / "predictions-test.npz").read_bytes()
    assert main(["evaluate", str(run / "checkpoints" / "best.pt"), "--device", "cpu"]) == 0
    assert f"predictions written to {run.resolve() / 'predictions-test.npz'}" in capsys.readouterr().out
    assert (run / "predictions-test.npz").read_bytes() == written
    assert main(["evaluate", str(run / "checkpoints" / "latest.pt"), "--split", "validation", "--device", "cpu"]) == 0
    assert (run / "predictions-val-latest.npz").is_file()
