"""Atomic file writes: a reader never sees a half-written file, even after an interruption.

Everything the package writes (datasets, checkpoints, predictions, reports) goes through these
helpers: the data is written under a temporary name ``NAME.tmp-<pid>`` beside the destination,
flushed to disk, then moved over the final name with ``os.replace`` (atomic on POSIX file
systems). A process killed outright (SIGKILL, power loss) cannot clean up after itself, so each
helper first removes the temporaries of ``NAME`` left by processes that no longer run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    For libraries that open the file themselves (``h5py.File``, ``torch.save``, ``np.savez``)::

        with atomic_path(out / "features.h5") as tmp:
            with h5py.File(tmp, "w") as f:
                ...
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(final)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _process_is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temporary_beside(final: Path) -> Path:
    """This process's temporary name for ``final``, after removing those of dead processes."""
    for stale in final.parent.glob(f"{final.name}.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_is_running(int(pid)):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)
    return final.with_name(f"{final.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces the folder ``path`` once the block succeeds.

    A reader sees either the old folder (or none) or the complete new one. An existing ``path``
    is replaced only with ``overwrite``; otherwise ``FileExistsError`` is raised before any work.
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final}: exists (pass overwrite=True / --overwrite to replace it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f"{final.name}.old-{os.getpid()}")
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old)
        else:
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a file for writing that appears at ``path`` only once it is complete.

    ``mode`` is ``"w"`` (text) or ``"wb"`` (binary).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
