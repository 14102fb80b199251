"""The committed notebooks are executed, current and clean (run ``make notebooks`` to refresh them).

For every ``notebooks/*.ipynb``: valid nbformat 4, under 2 MB, no widget state, code cells
executed top to bottom in one run (counts 1..n), no errors, figures stored as images, stored
outputs made from the current sources (``metadata.refdense.source_sha256``), and the course
template (title, learning goals, recap, estimated time, a check-yourself assert, an exercise with
a checker and hints, a summary, a link to the next notebook).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from refdense.course.execute import source_sha256
from refdense.course.header import course_cells
from refdense.course.storage import RUN_TO_INTERACT, WIDGET_VIEW_MIME

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "refdense"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 2 * 1024 * 1024
REFRESH = (
    "if you ran or edited it in JupyterLab, `make restore-notebooks` puts the committed notebook back "
    "(your copy is kept under runs/notebook-backup/); if you changed the course, run `make notebooks` "
    "(python -m refdense.course.execute notebooks) and commit the result"
)


def load(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert nb.nbformat == 4, f"{path.name}: nbformat {nb.nbformat}, expected 4"
    nbformat.validate(nb)
    return nb


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def markdown(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "markdown"]


def test_the_course_has_notebooks_and_the_readme_maps_them():
    assert NOTEBOOKS, f"no NN_*.ipynb notebooks in {NOTEBOOKS_DIR}"
    readme = (NOTEBOOKS_DIR / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert path.name in readme, f"notebooks/README.md: the course map does not list {path.name}"
    for name in re.findall(r"\b\d\d_\w+\.ipynb\b", readme):
        assert (NOTEBOOKS_DIR / name).exists(), f"notebooks/README.md lists {name}, which does not exist"
    prefixes = [path.name[:2] for path in NOTEBOOKS]
    assert len(prefixes) == len(set(prefixes)), f"two notebooks share a number: {prefixes}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_are_current_and_clean(path: Path):
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{path.name}: {size / 1e6:.2f} MB, expected under 2 MB (smaller or fewer figures)"
    nb = load(path)
    assert "widgets" not in nb.metadata, f"{path.name}: widget state in the metadata; {REFRESH}"
    stored = nb.metadata.get("refdense", {}).get("source_sha256")
    assert stored is not None, f"{path.name}: never executed by refdense.course.execute; {REFRESH}"
    assert stored == source_sha256(nb), f"{path.name}: stale outputs (the sources changed since the last run); {REFRESH}"

    cells = code_cells(nb)
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name}: execution counts {counts}, expected 1..{len(cells)} (one run, top to bottom); {REFRESH}"
    )
    images = 0
    for number, cell in enumerate(cells, start=1):
        for output in cell.outputs:
            assert output.output_type != "error", f"{path.name}, code cell {number}: stored error output"
            data = output.get("data", {})
            assert WIDGET_VIEW_MIME not in data, f"{path.name}, code cell {number}: widget state in an output; {REFRESH}"
            if "image/png" in data or "image/svg+xml" in data:
                images += 1
            elif data.get("text/plain", "").startswith("<Figure"):
                raise AssertionError(
                    f"{path.name}, code cell {number}: a figure stored as text only "
                    f"(executed with a non-inline backend); {REFRESH}"
                )
    sources = "\n".join(cell.source for cell in cells)
    if re.search(r"refdense\.viz|refdense\.widgets|\bshow\(|\bplt\.", sources):
        assert images > 0, f"{path.name}: the notebook plots but stores no image; {REFRESH}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checked_outputs_do_not_depend_on_the_machine(path: Path):
    """nbval compares the text of NBVAL_CHECK_OUTPUT cells: it must be the same on every CPU and in
    every order of runs. ``check()`` prints how close floats came (last bits differ between CPUs),
    and a folder listing shows whatever other code wrote there."""
    for number, cell in enumerate(code_cells(load(path)), start=1):
        if "NBVAL_CHECK_OUTPUT" not in cell.source:
            continue
        assert not re.search(r"\bcheck\(", cell.source), (
            f"{path.name}, code cell {number}: check() prints float agreement in a checked cell; "
            "call it in an unchecked cell or assert instead"
        )
        assert not re.search(r"\.iterdir\(|\bos\.listdir\(|\.glob\(", cell.source), (
            f"{path.name}, code cell {number}: a checked cell lists a folder; print the files you expect instead"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_explorers_show_a_figure_and_say_how_to_get_the_sliders(path: Path):
    for number, cell in enumerate(code_cells(load(path)), start=1):
        if not re.search(r"_explorer\(", cell.source):
            continue
        fallbacks = [o for o in cell.outputs if o.get("data", {}).get("text/plain") == RUN_TO_INTERACT]
        assert fallbacks and "image/png" in fallbacks[0]["data"], (
            f"{path.name}, code cell {number}: an explorer stored without its static figure; {REFRESH}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_follows_the_course_template(path: Path):
    nb = load(path)
    nb.cells = nb.cells[:1] + course_cells(nb)  # the title, then the lesson (the setup cell is tested apart)
    first_code = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")
    intro = "\n".join(cell.source for cell in nb.cells[:first_code] if cell.cell_type == "markdown")
    assert re.match(r"#\s+\S", intro), f"{path.name}: the first cell must be the title (# ...)"
    for heading in ("Learning goals", "Recap", "Estimated time"):
        assert heading.lower() in intro.lower(), f"{path.name}: no '{heading}' before the first code cell"
    goals = re.search(r"learning goals[^\n]*\n(.*?)(?=\n#|\Z)", intro, flags=re.IGNORECASE | re.S)
    bullets = len(re.findall(r"^[-*] ", goals.group(1), flags=re.M)) if goals else 0
    assert 3 <= bullets <= 5, f"{path.name}: the learning goals must be a list of 3 to 5 bullets, found {bullets}"
    assert "setup(" in code_cells(nb)[0].source, f"{path.name}: the first code cell must call setup()"
    texts = markdown(nb)
    assert any(re.search(r"^#+\s*Summary", text, flags=re.M | re.I) for text in texts), f"{path.name}: no Summary heading"

    # A check-yourself cell: a code cell with an assert, marked in itself or in the markdown above it.
    found = False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not re.search(r"^\s*assert\b", cell.source, flags=re.M):
            continue
        above = nb.cells[i - 1].source if i and nb.cells[i - 1].cell_type == "markdown" else ""
        if "check yourself" in (cell.source + above).lower():
            found = True
    assert found, f"{path.name}: no 'check yourself' cell with an assert"

    sources = "\n".join(cell.source for cell in code_cells(nb))
    assert "check_exercise(" in sources, f"{path.name}: no exercise checked with check_exercise"
    assert any("<details>" in text for text in texts), f"{path.name}: no hints in <details>"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_links_between_notebooks_resolve(path: Path):
    nb = load(path)
    links = re.findall(r"\]\((?!https://)([^)#\s]+\.ipynb)", "\n".join(markdown(nb)))  # the badge links out
    for link in links:
        assert (NOTEBOOKS_DIR / link).exists(), f"{path.name}: link to {link}, which does not exist"
    later = NOTEBOOKS[NOTEBOOKS.index(path) + 1 :]
    if later:
        assert later[0].name in links, f"{path.name}: no link to the next notebook, {later[0].name}"


def package_names() -> set[str]:
    """Top-level functions and classes defined in the package (exercise solutions excepted: a
    notebook's exercise stub carries the name of its solution)."""
    names = set()
    for module in PACKAGE_DIR.rglob("*.py"):
        if module == PACKAGE_DIR / "course" / "solutions.py":
            continue
        tree = ast.parse(module.read_text(encoding="utf-8"))
        names.update(
            node.name
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_")
        )
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_import_instead_of_redefining(path: Path):
    """A notebook's own functions carry new names (``..._by_hand``); the package's are imported."""
    nb = load(path)
    defined = set()
    for cell in code_cells(nb):
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(source)
        defined.update(
            node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))
        )
    clashes = sorted(defined & package_names())
    assert not clashes, f"{path.name}: redefines {clashes}, which the package has; import them instead"
