"""The first two cells of every course notebook: ``python -m refdense.course.header [PATHS...]``.

Cell 1 is the title with an "Open in Colab" badge; cell 2 is the setup cell, which does nothing
where ``refdense`` imports (a clone set up by ``make``, a pip or conda install), and on Colab
installs ``refdense[course]`` from the repository at this release's tag and enables Colab's widget
manager (the sliders need it). Both are written from this module alone, so running it again, after
any change to the other cells, leaves one title cell and one setup cell: the cells are found by
their ``metadata.refdense.header`` mark and replaced. The first time, the title line (``# ...``) is
moved out of the notebook's first cell into the title cell.

The repository and the release come from ``pyproject.toml`` (``[project.urls] Repository`` and
``[project] version``, tag ``v<version>``): the one place where the course's address is set.
The cells change the notebook's sources: re-execute it afterwards (``make notebooks``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from refdense.io import atomic_write

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
MARK = "header"
COLAB = "https://colab.research.google.com"
BADGE = f"{COLAB}/assets/colab-badge.svg"
SETUP = """\
# Setup: does nothing where refdense imports; on Colab installs the course's package at this release.
import importlib.util
import subprocess
import sys

PACKAGE = "refdense[course] @ git+{repository}@{tag}"
if importlib.util.find_spec("refdense") is None:
    if importlib.util.find_spec("google") is None or importlib.util.find_spec("google.colab") is None:
        raise ModuleNotFoundError(f"refdense is not installed here: pip install '{{PACKAGE}}' (or make lab in a clone)")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", PACKAGE], check=True)
    from google.colab import output

    output.enable_custom_widget_manager()
    print(f"Installed {{PACKAGE}} and enabled Colab's widget manager (for the sliders).")
"""


def project_settings(pyproject: Path = PYPROJECT) -> tuple[str, str]:
    """``(repository URL, release tag)`` read from ``pyproject.toml``; a clear error when either is missing."""
    if sys.version_info < (3, 11):
        raise RuntimeError(
            "refdense.course.header reads pyproject.toml with tomllib: run it with Python 3.11+"
        )
    import tomllib  # type: ignore[import-not-found,unused-ignore]  # Python 3.11+, checked above

    with open(pyproject, "rb") as handle:
        project = tomllib.load(handle).get("project", {})
    repository = project.get("urls", {}).get("Repository")
    if not repository or not project.get("version"):
        raise ValueError(f"{pyproject}: [project] needs a version and [project.urls] a Repository")
    return repository.rstrip("/"), f"v{project['version']}"


def header_cells(name: str, title: str, repository: str, tag: str) -> list[nbformat.NotebookNode]:
    """The title cell (``title`` is its ``# ...`` line) and the setup cell of notebook file ``name``."""
    github = re.sub(r"^https://github\.com/", "", repository)
    if github == repository:
        raise ValueError(
            f"Repository {repository!r}: Colab opens notebooks from https://github.com/OWNER/NAME"
        )
    link = f"{COLAB}/github/{github}/blob/{tag}/notebooks/{name}"
    badge = nbformat.v4.new_markdown_cell(f"{title}\n\n[![Open In Colab]({BADGE})]({link})")
    setup = nbformat.v4.new_code_cell(SETUP.format(repository=repository, tag=tag))
    for cell, role in ((badge, "title"), (setup, "setup")):
        cell.metadata["refdense"] = {MARK: role}
        cell.pop("id", None)
    return [badge, setup]


def is_header(cell: nbformat.NotebookNode) -> bool:
    return MARK in cell.get("metadata", {}).get("refdense", {})


def course_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The notebook's cells after its two header cells."""
    return [cell for cell in nb.cells if not is_header(cell)]


def with_header(nb: nbformat.NotebookNode, name: str, repository: str, tag: str) -> nbformat.NotebookNode:
    """The notebook with its header cells inserted or refreshed (in place; returns ``nb``)."""
    old = [cell for cell in nb.cells if is_header(cell)]
    rest = course_cells(nb)
    first = rest[0] if rest else None
    if first is not None and first.cell_type == "markdown" and first.source.startswith("# "):
        title, _, remainder = first.source.partition("\n")
        first.source = remainder.lstrip("\n")  # the title moves into the title cell
    elif old and old[0].source.startswith("# "):
        title = old[0].source.partition("\n")[0]
    else:
        raise ValueError(f"{name}: no title: its first cell must start with a '# ...' line")
    header = header_cells(name, title, repository, tag)
    if nb.nbformat_minor >= 5:  # nbformat 4.5 has cell ids: fixed ones, so that a re-run changes nothing
        for cell, role in zip(header, ("header-title", "header-setup")):
            cell["id"] = role
    nb.cells = header + rest
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m refdense.course.header",
        description="Write the title and setup cells of course notebooks.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[Path("notebooks")],
        help="notebooks or folders of notebooks (default: notebooks)",
    )
    args = parser.parse_args(argv)
    repository, tag = project_settings()
    paths = [p for path in args.paths for p in (sorted(path.glob("*.ipynb")) if path.is_dir() else [path])]
    if not paths:
        parser.error(f"no notebooks in {' '.join(map(str, args.paths))}")
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        after = nbformat.writes(with_header(nb, path.name, repository, tag))
        if after != before:
            with atomic_write(path) as handle:
                handle.write(after)
        print(f"{path}: {'header written' if after != before else 'header current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
