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
import tempfile
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
    """The hint must be visible in JupyterLab before the cell runs: an HTML or markdown output above
    the picture (JupyterLab shows only the image of a bundle that also holds text/plain)."""
    for number, cell in enumerate(code_cells(load(path)), start=1):
        if not re.search(r"_explorer\(", cell.source):
            continue
        fallbacks = [k for k, o in enumerate(cell.outputs) if o.get("data", {}).get("text/plain") == RUN_TO_INTERACT]
        assert fallbacks and "image/png" in cell.outputs[fallbacks[0]]["data"], (
            f"{path.name}, code cell {number}: an explorer stored without its static figure; {REFRESH}"
        )
        above = [
            o["data"].get("text/html", "") + o["data"].get("text/markdown", "")
            for o in cell.outputs[: fallbacks[0]]
            if "data" in o
        ]
        assert any("run this cell" in text for text in above), (
            f"{path.name}, code cell {number}: no visible hint (HTML or markdown) above the explorer's figure; {REFRESH}"
        )


def machine_folders() -> list[str]:
    """Folders of the machine that ran the notebooks: this clone, the home folder, the temporary folder."""
    folders = {str(NOTEBOOKS_DIR.parent), str(Path.home()), tempfile.gettempdir()}
    return sorted(folder for folder in folders if len(folder) > 1)


# Absolute paths that name a machine, whoever ran the notebooks: home folders, temporary folders,
# installed packages. The clone's own location is checked by machine_folders().
ABSOLUTE_PATH = re.compile(r"(?:^|[\s'\"(=:])(?:/home/|/Users/|/root/|/tmp/|/var/folders/|[A-Za-z]:\\Users\\)|(?<!<)site-packages(?!>)")
LOCK_FILE = re.compile(r"[\w.-]+\.lock\b")


def stored_texts(cell) -> list[str]:
    """The text of every output of a code cell (streams, text/*, errors), images left out."""
    texts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            texts.append(output.text)
        elif output.output_type == "error":
            texts.append("\n".join(output.get("traceback", [])))
        for mime, value in output.get("data", {}).items():
            if mime.startswith("text/") or mime == "application/json":
                texts.append(value if isinstance(value, str) else str(value))
    return texts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_hold_no_machine_paths_or_lock_files(path: Path):
    """A stored output must read the same on every machine: no absolute folder of the one that ran it
    (print them through ``refdense.course.checks.portable``), and no lock file of a run in a listing."""
    for number, cell in enumerate(code_cells(load(path)), start=1):
        for text in stored_texts(cell):
            for folder in machine_folders():
                assert folder not in text, (
                    f"{path.name}, code cell {number}: the stored output names the folder {folder!r}; "
                    f"print it through portable(); {REFRESH}"
                )
            found = ABSOLUTE_PATH.search(text)
            assert found is None, (
                f"{path.name}, code cell {number}: an absolute path in a stored output: "
                f"{text[max(0, found.start() - 40) : found.end() + 40]!r}; {REFRESH}"
            )
            lock = LOCK_FILE.search(text)
            assert lock is None, f"{path.name}, code cell {number}: a lock file ({lock.group()}) in a stored output"


def test_the_path_check_would_catch_a_machine_path():
    text = f"run directory: {NOTEBOOKS_DIR.parent / 'runs'} in {tempfile.gettempdir()}/x and /home/me/y"
    assert any(folder in text for folder in machine_folders())
    assert ABSOLUTE_PATH.search("from /home/me/.venv/lib/python3.11/site-packages/model")
    assert ABSOLUTE_PATH.search("--out /tmp/x") and ABSOLUTE_PATH.search(r"C:\Users\me")
    assert not ABSOLUTE_PATH.search("run directory: <clone>/runs/09 and data/real/charades")
    assert LOCK_FILE.search("['config.yaml', 'run.lock']") and not LOCK_FILE.search("locked out")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_predictions_are_graded(path: Path):
    """A "predict, then run" exercise shows, once run, the inputs, what was found and a verdict on the
    learner's prediction (``check_prediction``), not only the prediction as typed."""
    cells = code_cells(load(path))
    for number, cell in enumerate(cells, start=1):
        if "my_prediction" not in cell.source or re.match(r"\s*my_prediction\s*=", cell.source):
            continue
        assert "check_prediction(my_prediction" in cell.source, (
            f"{path.name}, code cell {number}: a prediction is read but not graded with check_prediction"
        )
        shown = "".join(stored_texts(cell))
        assert "inputs:" in shown and "found" in shown, f"{path.name}, code cell {number}: no graded prediction stored; {REFRESH}"


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
    assert "start_notebook(" in code_cells(nb)[0].source, f"{path.name}: the first code cell must call start_notebook()"
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
