"""A dataset folder replaced safely: :func:`dataset_directory` stages a new dataset and puts it in
place of the old one at once, and refuses a folder that does not hold a dataset of this project.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from refdense.data.annotations import ANNOTATIONS_FILE
from refdense.data.features import FEATURES_FILE
from refdense.data.info import INFO_FILE
from refdense.io import STAGING_MARKER, atomic_directory, clean_leftover, dead_leftovers, resolve_link

# What a dataset folder holds: its three files, and what refdense writes beside them (the report
# of `refdense prepare`, the text banks that refdense.text caches).
FOLDER_FILES = (INFO_FILE, ANNOTATIONS_FILE, FEATURES_FILE, "prepare-report.json", "text_bank-*.pt")


def _foreign_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` that a dataset folder does not hold (a temporary of one of its files,
    ``NAME.tmp-<pid>``, counts as that file)."""
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name != STAGING_MARKER
        and (
            entry.is_dir()
            or not any(
                fnmatch.fnmatchcase(re.sub(r"\.tmp-\d+$", "", entry.name), pattern)
                for pattern in FOLDER_FILES
            )
        )
    )


def _holds_a_dataset(folder: Path) -> bool:
    try:
        with open(folder / INFO_FILE, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("refdense-dataset/")


@contextlib.contextmanager
def dataset_directory(out: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder that becomes the dataset folder ``out`` once the block succeeds.

    The folder is replaced as a whole (:func:`refdense.io.atomic_directory`): a reader, or a process
    killed at any point, sees the previous dataset or the new one, never new features beside an old
    ``dataset.json``. ``out`` may be missing or empty; with ``overwrite`` it may also hold a dataset
    of this project (a ``dataset.json`` of format ``refdense-dataset/...`` and nothing but
    :data:`FOLDER_FILES`). Any other folder raises ``FileExistsError`` before any work: refdense
    never replaces a folder it did not write (``--out .`` with a project in it, a home folder).

    First of all, what dead processes left beside ``out`` while writing datasets (``NAME.tmp-<pid>``,
    ``NAME.old-<pid>`` folders marked as leftovers and holding nothing but dataset files) is cleaned
    up, whatever NAME. A symlinked ``out`` is written at its target; the link stays.
    """
    out = resolve_link(Path(out))
    for leftover in dead_leftovers(out.parent):
        if leftover.is_dir() and not _foreign_entries(leftover):
            clean_leftover(leftover)
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):
        raise FileExistsError(
            f"{out}: is the current folder (or holds it), which is never replaced; "
            "name a new folder for the dataset, e.g. --out data/mine"
        )
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        foreign = _foreign_entries(out)
        if not _holds_a_dataset(out) or foreign:
            found = (
                f"holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}"
                if foreign
                else f"has no readable {INFO_FILE} of a refdense dataset"
            )
            raise FileExistsError(
                f"{out}: is not a refdense dataset folder ({found}); refdense replaces only "
                "a folder it wrote. Name a new or empty folder"
            )
        if not overwrite:
            raise FileExistsError(
                f"{out}: exists and is not empty (pass overwrite=True / --overwrite to replace it)"
            )
    with atomic_directory(out, overwrite=True) as staging:
        yield staging
