"""Where refdense reads the files it ships and writes the data it generates or downloads.

Shipped with the package (package data, read-only, read through :mod:`importlib.resources`): the
training recipes (``refdense/configs/``), the curated MultiTHUMOS decomposition
(``refdense/prepare/decompositions/``) and the course's precomputed results
(``refdense/course/precomputed/``). :func:`shipped` gives their paths.

Generated and downloaded data (synthetic datasets, pretrained weights) go to :func:`data_root`:

1. ``$REFDENSE_DATA`` when it is set;
2. else the clone's ``data/`` folder when the package runs from a clone of the repository (an
   editable install, or ``PYTHONPATH``), as the course does;
3. else the user's cache folder (``platformdirs``: ``~/.cache/refdense`` on Linux,
   ``~/Library/Caches/refdense`` on macOS), for an installed package.

Never into the installed package. Synthetic datasets are generated into
``data_root() / "synthetic" / <preset>`` on first use; they are deterministic, so they are never
committed.

Training runs go where ``--out`` says; the commands' defaults are ``runs/...`` in the current
folder. The notebooks write theirs under :func:`runs_root`.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

import platformdirs

PACKAGE_DIR = Path(__file__).resolve().parent


def shipped(*parts: str) -> Path:
    """A file or folder shipped inside the package, e.g. ``shipped("configs", "synthetic.yaml")``.

    The path may not exist (callers say what is missing). refdense is installed as files (a wheel
    unpacks into site-packages), so the resource is a plain path.
    """
    resource = importlib.resources.files("refdense").joinpath(*parts)
    if not isinstance(resource, Path):
        raise RuntimeError(
            f"refdense is installed in a form that is not plain files ({resource}); "
            "install it with pip (a wheel or the source folder)"
        )
    return resource


def clone_root() -> Path | None:
    """The repository the package runs from (the folder above it holds ``pyproject.toml``), else None."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def data_root() -> Path:
    """The folder for generated and downloaded data: ``$REFDENSE_DATA``, the clone's ``data/``, or the user cache."""
    if os.environ.get("REFDENSE_DATA"):
        return Path(os.environ["REFDENSE_DATA"])
    clone = clone_root()
    return clone / "data" if clone is not None else platformdirs.user_cache_path("refdense")


def runs_root() -> Path:
    """Where the notebooks write training runs: ``$REFDENSE_RUNS``, the clone's ``runs/``, or ``./runs``."""
    if os.environ.get("REFDENSE_RUNS"):
        return Path(os.environ["REFDENSE_RUNS"])
    clone = clone_root()
    return clone / "runs" if clone is not None else Path.cwd() / "runs"
