"""What a course notebook keeps on disk, however it was run.

Widgets live in a kernel; a notebook file cannot hold them in a form that survives reopening. So a
stored notebook never keeps widget views or widget state:

- :func:`strip_widgets` removes them from a notebook (the executor and JupyterLab's saves both use
  it). An explorer (:class:`refdense.widgets.Explorer`) displays a static figure and the line
  :data:`RUN_TO_INTERACT` next to its widget view, so what remains after stripping is a picture and
  an instruction, never ``VBox(children=...`` text or "Error displaying widget: model not found".
- :func:`pre_save_hook` applies it to every save from JupyterLab; ``make lab`` starts JupyterLab
  with ``--ContentsManager.pre_save_hook=refdense.course.storage.pre_save_hook``.
- :func:`restore_notebooks` (``make restore-notebooks``) puts the committed notebooks back after a
  learner's session changed them, keeping a backup of the learner's copies under ``runs/``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from refdense.paths import clone_root

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
RUN_TO_INTERACT = "run this cell to get the sliders"


def strip_widgets(nb: Any) -> Any:
    """Remove widget views from every output and widget state from the metadata (in place).

    ``nb`` is a notebook as a dict (nbformat 4). An output whose only content was a widget view is
    dropped; other mime types of the same output (an explorer's static figure and text) are kept.
    Returns ``nb``.
    """
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is not None and WIDGET_VIEW_MIME in data:
                data.pop(WIDGET_VIEW_MIME)
                if not data:
                    continue
            kept.append(output)
        cell["outputs"] = kept
    return nb


def pre_save_hook(model: dict, **kwargs: Any) -> None:
    """Jupyter server hook: notebooks are saved without widget views or widget state."""
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        strip_widgets(model["content"])


def changed_notebooks(repo: Path) -> list[Path]:
    """Course notebooks that differ from the committed version (``git status``), sorted."""
    try:
        listing = subprocess.run(
            ["git", "status", "--porcelain", "--", "notebooks"],
            cwd=repo,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(
            f"{repo}: cannot ask git which notebooks changed ({error}); restoring needs a git clone"
        ) from error
    names = [line[3:].strip() for line in listing.splitlines() if not line.startswith("??")]
    return sorted(repo / name for name in names if name.endswith(".ipynb"))


def restore_notebooks(repo: Path) -> list[Path]:
    """Copy changed notebooks of the clone ``repo`` to ``repo/runs/notebook-backup/<time>/`` and check
    out the committed ones.

    Returns the notebooks restored. Nothing is lost: the learner's copies stay in the backup folder.
    """
    changed = changed_notebooks(repo)
    if not changed:
        return []
    backup = repo / "runs" / "notebook-backup" / time.strftime("%Y%m%d-%H%M%S")
    backup.mkdir(parents=True, exist_ok=True)
    for path in changed:
        if path.exists():  # a deleted notebook has nothing to back up
            shutil.copy2(path, backup / path.name)
    subprocess.run(
        ["git", "checkout", "HEAD", "--", *[str(p.relative_to(repo)) for p in changed]], cwd=repo, check=True
    )
    return changed


def main() -> int:
    repo = clone_root()
    try:
        if repo is None:
            raise RuntimeError("the notebooks live in a clone of the repository; run this from one")
        restored = restore_notebooks(repo)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"restore-notebooks: error: {error}", file=sys.stderr)
        return 1
    if not restored:
        print("restore-notebooks: every notebook is as committed; nothing to do")
        return 0
    backup = repo / "runs" / "notebook-backup"
    for path in restored:
        print(f"restored {path.relative_to(repo)}")
    print(f"your copies are in {backup}/ (newest folder)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
