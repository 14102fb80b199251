"""Two processes on CPU (gloo), started with torchrun as a user would, train the same weights as
one process with the same global batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import torch

from refdense.train import train
from refdense.train.checkpoint import load_checkpoint
from refdense.train.config import from_dict


def test_two_processes_match_one_process(tiny_dataset, tmp_path):
    dataset = shutil.copytree(tiny_dataset, tmp_path / "tiny")
    config = from_dict({
        # 28 training videos (4 held out), global batch 4: 7 full steps, 2 samples per process;
        # windows of 16 segments (every video is longer): no padding, so the mean of the two
        # processes' losses is the one-process loss; no dropout, whose masks depend on the rank.
        "data": {"dataset": str(dataset), "window": 16, "validation_fraction": 0.125, "text_encoder": "random"},
        "model": {"dim": 16, "heads": 2, "head_dim": 8, "blocks": 1, "strides": [2, 4], "max_len": 16,
                  "local_hidden": 32, "position": "relative", "input_dropout": 0.0, "head_dropout": 0.0},
        "optim": {"epochs": 1, "batch_size": 4, "lr": 3e-3},
        "run": {"device": "cpu"},
    })
    config.save(tmp_path / "config.yaml")
    torch.set_num_threads(1)
    single = train(config, tmp_path / "one", progress=False)

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "refdense", "train", "--config", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "two"),
               "--quiet"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    one, two = (load_checkpoint(tmp_path / run / "checkpoints/latest.pt") for run in ("one", "two"))
    for part in ("model", "criterion"):
        for key, value in one[part].items():
            other = two[part][key]
            if key.endswith("to_kv.bias"):
                # The key bias shifts every score of a query equally: softmax ignores it, its true
                # gradient is 0, and Adam scales the float noise of that 0 up to a full step. Its
                # first half (keys) is noise in both runs; compare the value half.
                value, other = value.chunk(2)[1], other.chunk(2)[1]
            torch.testing.assert_close(other, value, rtol=1e-4, atol=1e-5, msg=key)
    for a, b in zip(one["history"], two["history"]):
        assert abs(a["train"]["loss"] - b["train"]["loss"]) < 1e-4 * abs(a["train"]["loss"])
        assert abs(a["val"]["map"] - b["val"]["map"]) < 1e-3  # validation gathered from both ranks
    # rank 0 alone wrote the run, with the test predictions of all test videos
    written = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert (tmp_path / "two" / "predictions-test.npz").is_file()
    assert single.test is not None
