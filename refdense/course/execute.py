"""Run course notebooks top to bottom and store their outputs: ``python -m refdense.course.execute [PATHS...]``.

Each notebook runs in a fresh ``python3`` kernel of the current environment, in the notebook's
folder, under the default profile (``REFDENSE_PROFILE=smoke``) and the inline plot backend. The
stored notebook is clean: execution counts run 1..n, no widget views or state
(:func:`refdense.course.storage.strip_widgets`: an explorer keeps its static figure), no timing metadata, and ``metadata.refdense.source_sha256`` records the
sources it was run from (``tests/test_notebooks_clean.py`` fails when the sources have changed
since). A notebook whose run fails is left untouched. Files are replaced atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import nbformat

from refdense.course.storage import strip_widgets
from refdense.io import atomic_write


def source_sha256(nb: nbformat.NotebookNode) -> str:
    """A hash of every cell's type and source (code and markdown), in order; outputs do not count."""
    cells = [
        [cell.cell_type, cell.source if isinstance(cell.source, str) else "".join(cell.source)]
        for cell in nb.cells
    ]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode("utf-8")).hexdigest()


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip widget state and run metadata, number the code cells 1..n, record the source hash (in place)."""
    strip_widgets(nb)
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        for output in cell.outputs:
            if output.get("output_type") == "execute_result":
                output["execution_count"] = count
    nb.metadata.setdefault("refdense", {})["source_sha256"] = source_sha256(nb)
    return nb


def kernel_env(profile: str) -> dict[str, str]:
    """The environment of the kernel: ours, with the profile set and the inline plot backend."""
    env = dict(os.environ)
    env["REFDENSE_PROFILE"] = profile
    env["PYTHONHASHSEED"] = "0"
    env.pop("MPLBACKEND", None)  # ipykernel then picks the inline backend, so figures are stored
    return env


def execute_notebook(path: str | os.PathLike, *, timeout: int = 600, profile: str = "smoke") -> float:
    """Execute one notebook in place; return the seconds it took.

    ``timeout`` is per cell, in seconds. Raises ``nbclient.exceptions.CellExecutionError``
    (``CellTimeoutError``, ``DeadKernelError``) and leaves the file unchanged when a cell fails.
    """
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.resolve().parent)}},
        store_widget_state=True,  # False breaks nbclient's Output-widget hook; clean() strips the state
        record_timing=False,
    )
    start = time.perf_counter()
    client.execute(env=kernel_env(profile))
    elapsed = time.perf_counter() - start
    clean(nb)
    nbformat.validate(nb)
    with atomic_write(path) as handle:
        nbformat.write(nb, handle)
    return elapsed


def find_notebooks(paths: list[str]) -> list[Path]:
    """The notebooks named by ``paths`` (files, or folders searched for ``*.ipynb``), sorted, no checkpoints."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found.extend(p for p in sorted(path.glob("*.ipynb")))
        elif path.suffix == ".ipynb" and path.is_file():
            found.append(path)
        else:
            raise ValueError(f"{name}: expected a notebook (.ipynb) or a folder of notebooks, found neither")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m refdense.course.execute",
        description="Execute course notebooks top to bottom and store clean outputs (default profile).",
    )
    parser.add_argument(
        "paths", nargs="*", default=["notebooks"], help="notebooks or folders (default: notebooks)"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    parser.add_argument(
        "--profile", default="smoke", choices=("smoke", "full"), help="REFDENSE_PROFILE for the run"
    )
    args = parser.parse_args(argv)
    try:
        notebooks = find_notebooks(args.paths)
    except ValueError as error:
        print(f"execute: error: {error}", file=sys.stderr)
        return 2
    if not notebooks:
        print(f"execute: error: no notebooks in {' '.join(args.paths)}", file=sys.stderr)
        return 2
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    failed = []
    total = 0.0
    for path in notebooks:
        try:
            seconds = execute_notebook(path, timeout=args.timeout, profile=args.profile)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
            failed.append(path)
            print(f"{path}: FAILED (file left unchanged)\n{error}", file=sys.stderr)
            continue
        total += seconds
        print(f"{path}: {seconds:.1f} s", flush=True)
    print(f"{len(notebooks) - len(failed)} of {len(notebooks)} notebooks executed in {total:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
