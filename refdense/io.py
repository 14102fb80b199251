"""Atomic file writes (a reader never sees a half-written file, even after an interruption), and
one advisory lock.

Everything the package writes (datasets, checkpoints, predictions, reports) goes through these
helpers: the data is written under a temporary name ``NAME.tmp-<pid>`` beside the destination,
flushed to disk, then moved over the final name with ``os.replace`` (atomic on POSIX file
systems). A folder replacing an existing one moves the old one aside as ``NAME.old-<pid>`` for
the instant between two renames. A process killed outright (SIGKILL, power loss) cannot clean
up after itself, so each helper first cleans what processes that no longer run left beside
``NAME`` (:func:`remove_stale`). A leftover folder is recognised by the marker file
:data:`STAGING_MARKER` inside it, never by its name alone: a user's folder that happens to be
called ``NAME.old-<N>`` is left alone.

Output folders of the commands follow one rule (:func:`output_folder`): a command writes into a
folder only if it is missing, empty, or marked as made by that command (:data:`OUTPUT_MARKER`);
never the current folder or one that holds it; a symlink is followed to its target.

A full disk (or quota) raises :class:`DiskFullError` naming the file; the previous version of the
file stays as it was.

JSON is read strictly (:func:`read_json`, :func:`parse_json`): an object that names a key twice is
refused, where ``json.load`` would keep the last value silently.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)

STAGING_MARKER = ".refdense-staging"
"""File inside a folder being written by :func:`atomic_directory` (or moved aside by it): marks
``NAME.tmp-<pid>`` / ``NAME.old-<pid>`` folders as leftovers that may be cleaned up."""

OUTPUT_MARKER = ".refdense-output"
"""File that :func:`output_folder` writes first into a command's output folder: JSON
``{"made_by": COMMAND}``."""


class DiskFullError(OSError):
    """No space left on the device (or the quota is used up) while writing; nothing was replaced.

    ``errno`` is ``ENOSPC`` or ``EDQUOT``; ``strerror`` is the message for a person.
    """

    strerror: str  # always given (OSError's may be None)


class OutputFolderError(FileExistsError, ValueError):
    """An output folder that a command may not write into (:func:`output_folder`)."""


class LockedError(ValueError):
    """Another process holds the lock (see :func:`exclusive_lock`)."""


def _disk_full(error: OSError, final: Path, what: str) -> DiskFullError:
    kept = f"the previous {what} is kept" if final.exists() else f"no {what} was written"
    return DiskFullError(
        error.errno,
        f"no space left on the device while writing {final}; {kept}. "
        "Free some space and run the command again",
    )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    For libraries that open the file themselves (``h5py.File``, ``np.savez``)::

        with atomic_path(out / "features.h5") as tmp:
            with h5py.File(tmp, "w") as f:
                ...

    (For ``torch.save`` use :func:`atomic_torch_save`.)
    """
    final = Path(path)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(final)
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except OSError as error:
        if error.errno in _DISK_FULL and not isinstance(error, DiskFullError):
            raise _disk_full(error, final, final.name) from error
        raise
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


_LEFTOVER = re.compile(r"(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)")


def dead_leftovers(folder: Path) -> list[Path]:
    """The ``NAME.tmp-<pid>`` and ``NAME.old-<pid>`` entries of ``folder`` whose process no longer runs.

    A folder counts only when it holds :data:`STAGING_MARKER` (a folder of the user's that is
    merely named like one is not a leftover).
    """
    found = []
    for entry in sorted(folder.iterdir()) if folder.is_dir() else ():
        match = _LEFTOVER.fullmatch(entry.name)
        if match is None or entry.is_symlink():
            continue
        if entry.is_dir() and not (entry / STAGING_MARKER).is_file():
            continue
        if int(match["pid"]) != os.getpid() and not _process_is_running(int(match["pid"])):
            found.append(entry)
    return found


def _leftover_match(leftover: Path) -> re.Match[str]:
    match = _LEFTOVER.fullmatch(leftover.name)
    if match is None:
        raise ValueError(
            f"{leftover} is not a leftover of an atomic write (NAME.tmp-<pid> or NAME.old-<pid>)"
        )
    return match


def clean_leftover(leftover: Path) -> None:
    """Remove a leftover of :func:`dead_leftovers`; a ``NAME.old-<pid>`` (the previous folder, moved
    aside just before the new one was renamed into place) is put back as ``NAME`` when ``NAME`` is
    missing: its process died between the two renames."""
    match = _leftover_match(leftover)
    final = leftover.with_name(match["name"])
    if match["kind"] == "old" and not final.exists():
        (leftover / STAGING_MARKER).unlink(missing_ok=True)
        leftover.rename(final)
    elif leftover.is_dir():
        shutil.rmtree(leftover)
    else:
        leftover.unlink(missing_ok=True)


def remove_stale(final: Path) -> None:
    """Clean up the leftovers of ``final`` (see :func:`clean_leftover`) of processes that no longer run."""
    for leftover in dead_leftovers(final.parent):
        if _leftover_match(leftover)["name"] == final.name:
            clean_leftover(leftover)


def resolve_link(path: Path) -> Path:
    """``path``, or its target when ``path`` is a symlink (so that writing replaces the target, not
    the link). A link whose target does not exist raises ``OutputFolderError`` naming both."""
    if not path.is_symlink():
        return path
    target = path.resolve()
    if not target.exists():
        raise OutputFolderError(
            f"{path}: is a link to {target}, which does not exist; create it or name another folder"
        )
    return target


def _describe(entries: Iterable[str]) -> str:
    names = sorted(entries)
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def output_folder(out: str | os.PathLike, command: str, accepts: Iterable[str] = ()) -> Path:
    """Claim the folder ``out`` for the output of ``command`` (``"demo"``, ``"train"``, ...); return it.

    The one rule for the commands' output folders: ``out`` may be missing, empty, or marked by
    :data:`OUTPUT_MARKER` as made by ``command`` (or by one of ``accepts``, commands whose output
    ``command`` may share). The current folder, or a folder holding it, and any other folder raise
    ``OutputFolderError`` naming the folder and what is in it, before anything is written. A symlink
    is followed: the folder returned is its target. The marker is written first, so a folder this
    command started is recognised as its own even after an interruption.
    """
    out = resolve_link(Path(out))
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):
        raise OutputFolderError(
            f"{out}: is the current folder (or holds it), which refdense never writes into; "
            f"name a new folder, e.g. --out runs/{command}"
        )
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out}: exists and is not a folder")
    marker = out / OUTPUT_MARKER
    if out.is_dir() and any(out.iterdir()):
        made_by = _made_by(marker)
        if made_by not in (command, *accepts):
            found = (
                f"made by `refdense {made_by}`"
                if made_by
                else f"holds {_describe(e.name for e in out.iterdir())}"
            )
            raise OutputFolderError(
                f"{out}: is not a folder of `refdense {command}` ({found}); refdense writes only into "
                "a missing or empty folder or one it made. Name a new or empty folder"
            )
        return out
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(marker) as handle:
        json.dump({"made_by": command}, handle)
    return out


def _made_by(marker: Path) -> str | None:
    """The command recorded in an :data:`OUTPUT_MARKER` file; None if missing or unreadable."""
    try:
        with open(marker, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return str(data["made_by"]) if isinstance(data, dict) and isinstance(data.get("made_by"), str) else None


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces the folder ``path`` once the block succeeds.

    A reader sees either the old folder (or none) or the complete new one. An existing ``path``
    is replaced only with ``overwrite``; otherwise ``FileExistsError`` is raised before any work.
    A ``path`` that is a symlink is replaced at its target (:func:`resolve_link`); the link stays.
    """
    final = resolve_link(Path(path))
    made = False
    remove_stale(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final}: exists (pass overwrite=True / --overwrite to replace it)")
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if tmp.is_dir() and (tmp / STAGING_MARKER).is_file():
            shutil.rmtree(tmp)  # a leftover of an earlier process that had this pid
        tmp.mkdir()
        made = True
        (tmp / STAGING_MARKER).touch()
        yield tmp
        (tmp / STAGING_MARKER).unlink()
        if final.exists():
            old = final.with_name(f"{final.name}.old-{os.getpid()}")
            (final / STAGING_MARKER).touch()
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old)
        else:
            tmp.rename(final)
    except OSError as error:
        if error.errno in _DISK_FULL:
            raise _disk_full(error, final, f"folder {final.name}") from error
        raise
    finally:
        if made:
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


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, atomically.

    torch's own file writer reports a full disk as a RuntimeError without errno, so ``obj`` is
    serialised into memory first and the bytes are written by :func:`atomic_write` (a full disk
    then raises :class:`DiskFullError`).
    """
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getbuffer())


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str, wait: bool = False) -> Iterator[None]:
    """Hold an advisory lock (``fcntl.flock``) on the file ``path`` for the block.

    The kernel releases the lock when the process ends, however it ends (SIGKILL included), so a
    lock is never left behind. While the block runs, a second process asking for the same lock
    gets :class:`LockedError` at once, naming ``what`` is locked and the holder's pid (which the
    file records), or, with ``wait``, waits until the lock is free. The file itself stays
    (removing it would let two processes lock two files).
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise LockedError(
                f"{what} is in use by another process (pid {holder}, holding {path}); "
                "wait for it to finish or stop it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """``json.load``'s ``object_pairs_hook`` that refuses an object naming a key twice (ValueError)."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"the key {twice!r} appears twice in one object (a JSON reader keeps only the last)")
    return dict(pairs)


def parse_json(text: str, start: int = 0) -> tuple[Any, int]:
    """The JSON value in ``text`` from ``start`` on and where it ends (``json.JSONDecoder.raw_decode``),
    refusing an object that names a key twice. Every ``ValueError``: invalid JSON, a repeated key, an
    integer of over 4300 digits, or nesting too deep for Python's recursion limit."""
    try:
        return json.JSONDecoder(object_pairs_hook=unique_keys).raw_decode(text, start)
    except RecursionError:
        raise ValueError("objects or lists nested too deeply (over about 1000 levels)") from None


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value a file holds, all of it (:func:`parse_json`; ``ValueError`` also for text that
    is not UTF-8 or follows the value)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    data, end = parse_json(text, len(text) - len(text.lstrip()))
    if text[end:].strip():
        raise ValueError(f"extra data after the JSON value at character {end}")
    return data
