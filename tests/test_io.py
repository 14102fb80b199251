import os
import signal
import subprocess
import sys

import pytest

from refdense.io import (
    STAGING_MARKER,
    LockedError,
    atomic_directory,
    atomic_path,
    atomic_write,
    exclusive_lock,
)


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_atomic_write_leaves_no_file_when_the_block_fails(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_an_existing_file_only_when_complete(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target) as handle:
        handle.write("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"


def test_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "features.h5"
    stale_file = tmp_path / f"features.h5.tmp-{dead_pid()}"
    stale_file.write_text("left by a killed process")
    live = tmp_path / "features.h5.tmp-1"  # pid 1 always runs
    live.write_text("another process is writing")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    assert not stale_file.exists()
    assert live.exists()


def test_atomic_directory_appears_complete_or_not_at_all(tmp_path):
    out = tmp_path / "dataset"
    stale_dir = tmp_path / f"dataset.tmp-{dead_pid()}"
    stale_dir.mkdir()
    (stale_dir / STAGING_MARKER).touch()
    (stale_dir / "half.h5").write_text("x")
    with pytest.raises(RuntimeError):
        with atomic_directory(out) as tmp:
            (tmp / "a.json").write_text("{}")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with atomic_directory(out) as tmp:
        (tmp / "a.json").write_text("{}")
    assert (out / "a.json").exists()
    with pytest.raises(FileExistsError, match="overwrite"):
        with atomic_directory(out):
            pass
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / "b.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["b.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def test_a_folder_left_between_two_renames_comes_back(tmp_path):
    """A process killed after moving the old folder aside and before renaming the new one into place
    leaves NAME.old-PID and NAME.tmp-PID and no NAME: the next write puts the old folder back first."""
    pid = dead_pid()
    old, new = tmp_path / f"dataset.old-{pid}", tmp_path / f"dataset.tmp-{pid}"
    for leftover in (old, new):
        leftover.mkdir()
        (leftover / STAGING_MARKER).touch()
    (old / "a.json").write_text("old")
    (new / "a.json").write_text("new, never renamed")
    with pytest.raises(FileExistsError):  # the old folder is back: replacing it needs overwrite
        with atomic_directory(tmp_path / "dataset"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
    assert (tmp_path / "dataset" / "a.json").read_text() == "old"
    assert sorted(p.name for p in (tmp_path / "dataset").iterdir()) == ["a.json"]  # marker gone
    done = tmp_path / f"dataset.old-{dead_pid()}"  # killed after the second rename: only removed
    done.mkdir()
    (done / STAGING_MARKER).touch()
    with atomic_directory(tmp_path / "dataset", overwrite=True) as staging:
        (staging / "a.json").write_text("newer")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
    assert (tmp_path / "dataset" / "a.json").read_text() == "newer"


HOLD_LOCK = """
import sys, time
from refdense.io import exclusive_lock
with exclusive_lock(sys.argv[1], "the test folder"):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_exclusive_lock_refuses_a_second_process_and_dies_with_its_holder(tmp_path):
    lock = tmp_path / "run" / "run.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=rf"the test folder is in use by another process \(pid {holder.pid},"):
            with exclusive_lock(lock, "the test folder"):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no clean-up runs: the kernel releases the lock
        holder.wait()
        holder.stdout.close()
    with exclusive_lock(lock, "the test folder"):
        assert lock.read_text().strip() == str(os.getpid())
