"""Every "notebook NN" in the course's text points to the notebook that teaches what the sentence is about.

A reference ("notebook 08", "notebooks 03 and 04", "notebooks 06-07") in a notebook's markdown, in
``README.md`` or in ``notebooks/README.md`` must name an existing notebook, and the sentence around it
(with the sentence before) must mention what that notebook is about: one of its keywords below. Each
keyword list starts with a word of the notebook's title, so a renamed notebook fails here until the
table follows. The pipeline figure (``refdense.viz.pipeline``) must send each box to a notebook that
teaches the box's equation.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from refdense.viz.pipeline import STAGES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {path.name[:2]: path for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}

KEYWORDS = {
    "00": ["problem", "data", "labels"],
    "01": ["PAT", "position", "attention", "backbone", "network"],
    "02": ["decomposition", "decompos", "entit", "motion", "ambigu"],
    "03": ["Action-Entity", "entity", "entities", "network"],
    "04": ["Action-Motion", "motion", "cross-att", "network"],
    "05": ["Fusion", "head", "concat", "network"],
    "06": ["cross-entropy", "BCE", "loss", "criterion"],
    "07": ["CoLV", "contrastive", "co-occurr", "prompt", "loss", "criterion"],
    "08": ["Evaluation", "evaluat", "metric", "mAP", "scored", "calibrat"],
    "09": ["training", "train", "loop"],
    "10": ["Ablations", "ablat"],
}
"""What each notebook is about, as a sentence that refers to it would say it."""

REFERENCE = re.compile(r"\bnotebooks?\s+(\d\d(?:\s*(?:,|and|or|-|–)\s*\d\d)*)", re.IGNORECASE)
SENTENCE_END = re.compile(r"\.\s|\n\s*\n|\n[-*] |\n#")


def title(path: Path) -> str:
    return nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]


def course_texts() -> dict[str, str]:
    """Every markdown text of the course: notebook markdown cells, README.md, notebooks/README.md."""
    texts = {}
    for path in NOTEBOOKS.values():
        nb = nbformat.read(path, as_version=4)
        texts[path.name] = "\n\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    for path in (ROOT / "README.md", ROOT / "notebooks" / "README.md"):
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return texts


def referenced(group: str) -> tuple[list[str], bool]:
    """The notebook numbers of one reference, and whether it is a range (``06-07``)."""
    numbers = re.findall(r"\d\d", group)
    if re.search(r"\d\d\s*[-–]\s*\d\d", group):
        low, high = int(numbers[0]), int(numbers[-1])
        return [f"{n:02d}" for n in range(low, high + 1)], True
    return numbers, False


def window(text: str, start: int, end: int) -> str:
    """The sentence holding text[start:end] and the sentence before it."""
    ends = [m.end() for m in SENTENCE_END.finditer(text, 0, start)]
    begin = ends[-2] if len(ends) >= 2 else 0
    after = SENTENCE_END.search(text, end)
    return text[begin : after.start() if after else len(text)]


def references() -> list[tuple[str, str, list[str], bool, str]]:
    found = []
    for name, text in course_texts().items():
        for match in REFERENCE.finditer(text):
            numbers, is_range = referenced(match.group(1))
            found.append((name, match.group(0), numbers, is_range, window(text, match.start(), match.end())))
    return found


def mentions(sentence: str, number: str) -> bool:
    lower = sentence.lower()
    return any(keyword.lower() in lower for keyword in KEYWORDS[number])


def test_the_keyword_table_follows_the_titles():
    assert set(KEYWORDS) == set(NOTEBOOKS), "one keyword list per notebook"
    for number, path in NOTEBOOKS.items():
        assert KEYWORDS[number][0].lower() in title(path).lower(), (
            f"{path.name}: the first keyword {KEYWORDS[number][0]!r} is not in its title {title(path)!r}")


def test_the_course_has_cross_references():
    assert len(references()) >= 10


@pytest.mark.parametrize("source, reference, numbers, is_range, sentence",
                         references(), ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None)
def test_each_cross_reference_points_to_the_notebook_about_it(source, reference, numbers, is_range, sentence):
    missing = [n for n in numbers if n not in NOTEBOOKS]
    assert not missing, f"{source}: {reference!r} names notebook(s) {missing}, which do not exist"
    if is_range:
        assert any(mentions(sentence, n) for n in numbers), (
            f"{source}: {reference!r} in {sentence.strip()!r}: the sentence is about none of {numbers}")
        return
    for number in numbers:
        assert mentions(sentence, number), (
            f"{source}: {reference!r} in {sentence.strip()!r} does not mention what notebook {number} "
            f"({title(NOTEBOOKS[number])}) teaches: none of {KEYWORDS[number]}")


def test_a_wrong_reference_is_caught():
    sentence = "A detector outputs probabilities and is scored per segment (notebook 07)."
    numbers, _ = referenced(REFERENCE.search(sentence).group(1))
    assert numbers == ["07"] and not mentions(sentence, "07") and mentions(sentence, "08")
    assert referenced("06-07") == (["06", "07"], True) and referenced("03 and 04") == (["03", "04"], False)


@pytest.mark.parametrize("stage", [s for s in STAGES if s.equation], ids=lambda s: s.key)
def test_each_pipeline_box_names_a_notebook_that_teaches_its_equation(stage):
    equations = re.findall(r"\d+", stage.equation)
    texts = course_texts()
    for number in stage.notebooks:
        assert number in NOTEBOOKS, f"pipeline box {stage.key!r}: notebook {number} does not exist"
    taught = " ".join(texts[NOTEBOOKS[n].name] for n in stage.notebooks)
    for equation in equations:
        assert re.search(rf"Eqs?\.\s*(?:\d+\s*[-–,]\s*)*{equation}\b|\\tag\{{{equation}\}}", taught), (
            f"pipeline box {stage.key!r} ({stage.equation}): Eq. {equation} appears in none of notebooks {stage.notebooks}")
