"""Where refdense keeps data it generates or ships.

``data_root()`` is the repository's ``data/`` folder (the course runs from a clone), unless the
environment variable ``REFDENSE_DATA`` points elsewhere. Synthetic datasets are generated into
``data_root() / "synthetic" / <preset>`` on first use; they are deterministic, so they are never
committed.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The folder for generated and shipped data (``$REFDENSE_DATA`` or ``<repo>/data``)."""
    return Path(os.environ.get("REFDENSE_DATA", REPO_ROOT / "data"))
