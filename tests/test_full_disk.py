"""A full disk while writing a checkpoint, ``metrics.jsonl``, predictions or a dataset: the designed
error (naming the file and saying the previous version is kept), the previous file intact, no
temporary file left, and no traceback from the command line.

The disk is a real 64 KiB tmpfs where this machine can mount one (in a private mount namespace,
``unshare -rm``); elsewhere ENOSPC is simulated at ``fsync`` (where network file systems report it)
for files over 16 KiB. Either way the scenario runs in its own process. (On the real tmpfs,
``torch.save`` to a file raises a RuntimeError without errno: why checkpoints are serialised in
memory and written by ``refdense.io``.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

SCENARIO = r"""
import contextlib, errno, io, json, os, sys
from pathlib import Path

import numpy as np
import torch

from refdense.cli import main
from refdense.io import DiskFullError, atomic_write
from refdense.metrics import read_predictions, write_predictions
from refdense.train.checkpoint import write_checkpoint

disk, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "simulated":
    real_fsync = os.fsync

    def fsync(fd):  # a disk with room for files of 16 KiB
        if os.fstat(fd).st_size > 16384:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    os.fsync = fsync


def checkpoint(size=None):
    if size is not None:
        write_checkpoint(disk / "latest.pt", {"epoch": size, "model": {"w": torch.zeros(size)}})
    return torch.load(disk / "latest.pt", weights_only=True)["epoch"]


def metrics(size=None):
    if size is not None:
        with atomic_write(disk / "metrics.jsonl") as handle:
            handle.write(json.dumps({"epoch": 1, "pad": "x" * size}) + "\n")
    return len(json.loads((disk / "metrics.jsonl").read_text())["pad"])


def predictions(size=None):
    if size is not None:
        write_predictions(disk / "predictions.npz", [np.full((size, 8), 0.5, np.float32)], [np.zeros((size, 8))], ["v"])
    return len(read_predictions(disk / "predictions.npz").scores[0])


outcome = {}
for name, write in (("checkpoint", checkpoint), ("metrics", metrics), ("predictions", predictions)):
    write(10)
    try:
        write(1 << 18)
        outcome[name] = {"errno": None}
    except DiskFullError as error:
        outcome[name] = {"error": error.strerror, "errno": error.errno}
    outcome[name]["kept"] = write()
stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):
    outcome["synth"] = {"code": main(["synth", "--preset", "tiny", "--out", str(disk / "tiny")]), "stderr": stderr.getvalue()}
outcome["files"] = sorted(p.name for p in disk.iterdir())
print(json.dumps(outcome))
"""


def tmpfs_command(folder) -> list[str] | None:
    """The command prefix that runs ``PYTHON -c CODE FOLDER real`` on a 64 KiB tmpfs at ``folder``,
    or None when this machine cannot mount one."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    mount = 'mount -t tmpfs -o size=64k tmpfs "$0" && exec "$@"'
    command = [unshare, "-rm", "sh", "-c", mount, str(folder)]
    probe = subprocess.run([*command, "true"], capture_output=True)
    return command if probe.returncode == 0 else None


def test_a_full_disk_keeps_the_previous_files_and_says_so(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    prefix = tmpfs_command(disk)
    mode = "real" if prefix else "simulated"
    command = [*(prefix or []), sys.executable, "-c", SCENARIO, str(disk), mode]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.splitlines()[-1])
    for name, file in (("checkpoint", "latest.pt"), ("metrics", "metrics.jsonl"), ("predictions", "predictions.npz")):
        assert outcome[name]["errno"] == 28, (mode, outcome[name])
        error = outcome[name]["error"]
        assert all(piece in error for piece in ("no space left", str(disk / file), f"previous {file} is kept",
                                                "Free some space")), (mode, error)
        assert outcome[name]["kept"] == 10, (mode, name)  # the previous version, intact
    assert outcome["synth"]["code"] == 2
    error = outcome["synth"]["stderr"]
    assert error.startswith("refdense synth: error: ") and error.count("\n") == 1, (mode, error)  # no traceback
    assert all(piece in error for piece in ("no space left", str(disk / "tiny"), "no folder tiny was written",
                                            "Free some space")), (mode, error)
    assert outcome["files"] == ["latest.pt", "metrics.jsonl", "predictions.npz"]  # no temporary left

