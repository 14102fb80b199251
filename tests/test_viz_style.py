"""One visual language (refdense.viz.style): no plot picks its own colours, figure sizes or font sizes,
and a timeline's colour says what kind of concept its rows are, in every panel."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import is_color_like, to_rgb  # noqa: E402

from refdense.viz.style import CONCEPT_COLOURS, FIGURE_SIZES, FONT_SIZES, figure_size, rc_params, styled  # noqa: E402
from refdense.viz.timeline import plot_timeline  # noqa: E402

pytestmark = pytest.mark.course

ROOT = Path(__file__).resolve().parents[1]
STYLE = ROOT / "refdense" / "viz" / "style.py"

_COLOUR_KEYWORDS = {
    "c",
    "color",
    "colors",
    "colour",
    "cmap",
    "ecolor",
    "edgecolor",
    "edgecolors",
    "facecolor",
    "facecolors",
    "markeredgecolor",
    "markerfacecolor",
    "mec",
    "mfc",
}
_COLOUR_METHODS = {"get_cmap", "set_color", "set_edgecolor", "set_facecolor", "to_rgb", "to_rgba"}
_PALETTE = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?(?:[0-9a-fA-F]{2})?|tab:\w+|C\d|xkcd:.+")
_FORMAT_WITH_COLOUR = re.compile(r"[-.:o*s^v<>+xDd|_hHp8,]*[bgrcmykw][-.:o*s^v<>+xDd|_hHp8,]*")


def _number(node: ast.AST) -> bool:
    """Whether ``node`` is a number written out (``8``, ``8 if dense else 10``, ``size - 0.5``)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.IfExp):
        return _number(node.body) or _number(node.orelse)
    if isinstance(node, ast.BinOp):
        return _number(node.left) or _number(node.right)
    return False


def _colour(text: str) -> bool:
    return text != "none" and is_color_like(text)  # "none": no colour at all


def _strings(node: ast.AST) -> list[ast.Constant]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def style_literals(source: str) -> list[str]:
    """``"line N: what"`` for each colour, figure size or font size written into ``source`` (Python)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _PALETTE.fullmatch(node.value):
            found.append(f"line {node.lineno}: colour {node.value!r}")
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg in _COLOUR_KEYWORDS:
                found += [
                    f"line {s.lineno}: {keyword.arg}={s.value!r}"
                    for s in _strings(keyword.value)
                    if (s.value in matplotlib.colormaps if keyword.arg == "cmap" else _colour(s.value))
                ]
            elif keyword.arg == "figsize" and any(
                isinstance(n, (ast.Tuple, ast.List)) for n in ast.walk(keyword.value)
            ):
                found.append(f"line {keyword.lineno}: figsize written as numbers")
            elif keyword.arg in ("fontsize", "labelsize") and _number(keyword.value):
                found.append(f"line {keyword.lineno}: {keyword.arg} written as a number")
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if method in _COLOUR_METHODS:
            found += [f"line {s.lineno}: {method}({s.value!r})" for s in _strings(node) if _colour(s.value)]
        if method in ("plot", "errorbar"):  # a format string such as "k." carries a colour
            found += [
                f"line {a.lineno}: format {a.value!r}"
                for a in node.args
                if isinstance(a, ast.Constant)
                and isinstance(a.value, str)
                and _FORMAT_WITH_COLOUR.fullmatch(a.value)
            ]
    return found


def notebook_code(path: Path) -> str:
    """The code cells of a notebook as one Python source (IPython magics and shell lines blanked)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            lines += ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    return "\n".join(lines)


def test_the_scan_finds_every_kind_of_literal():
    source = "\n".join(
        [
            'ax.plot(x, y, color="tab:blue")',
            'ax.axhline(0, color="0.5")',
            'ax.scatter(x, y, c=np.where(on, "green", "0.55"))',
            'ax.imshow(m, cmap="viridis")',
            "fig = plt.figure(figsize=(10, 4) if small else (15, 6))",
            "ax.legend(fontsize=8)",
            'tick.set_color("red")',
            'ax.plot(x, y, "k.")',
            'colours = {"a": "#c0392b"}',
        ]
    )
    lines = sorted({int(finding.split(":")[0].split()[1]) for finding in style_literals(source)})
    assert lines == list(range(1, 10))  # every line has one
    allowed = 'ax.plot(x, y, "o", color=COLOURS["entity"], label="green box")\nax.legend(fontsize=FONT_SIZES["small"])'
    assert style_literals(allowed) == []


def test_no_plot_outside_the_style_module_writes_its_own_colours_or_sizes():
    sources = {path: path.read_text(encoding="utf-8") for path in sorted((ROOT / "refdense").rglob("*.py"))}
    sources.update({path: notebook_code(path) for path in sorted((ROOT / "notebooks").glob("*.ipynb"))})
    found = [
        f"{path.relative_to(ROOT)} {finding}"
        for path, source in sources.items()
        if path != STYLE
        for finding in style_literals(source)
    ]
    assert not found, "take these from refdense.viz.style:\n" + "\n".join(found)


def test_figure_sizes_fit_the_notebook_and_text_is_readable():
    assert max(width for width, _ in FIGURE_SIZES.values()) <= 9.0
    assert min(FONT_SIZES.values()) >= 8
    assert figure_size("column", height=2.0, panels=3) == (3 * FIGURE_SIZES["column"][0], 2.0)
    with pytest.raises(ValueError, match="expected a kind in"):
        figure_size("poster")
    assert "figure.dpi" not in rc_params() and rc_params(80)["figure.dpi"] == 80
    before = matplotlib.rcParams["legend.fontsize"]
    with styled():
        assert matplotlib.rcParams["legend.fontsize"] == FONT_SIZES["small"]
    assert matplotlib.rcParams["legend.fontsize"] == before  # nothing is left behind


def test_a_timeline_colours_a_concept_kind_the_same_in_every_panel():
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(3, 1)
    panels = {}
    for ax, kind, classes in zip(axes, ("action", "entity", "motion"), (5, 3, 4)):
        labels = (rng.random((30, classes)) > 0.6).astype(np.uint8)
        names = [f"{kind} {c}" for c in range(classes)]
        plot_timeline(labels, names, {"model": rng.random((30, classes))}, ax=ax, kind=kind)
        panels[kind] = ax.get_images()[0].get_array()
    for kind, image in panels.items():  # ground truth and prediction rows alike
        np.testing.assert_allclose(
            image[:, :, :3], np.broadcast_to(to_rgb(CONCEPT_COLOURS[kind]), image[:, :, :3].shape)
        )
    again = (
        plot_timeline(np.eye(4, dtype=np.uint8), list("abcd"), kind="entity")
        .axes[0]
        .get_images()[0]
        .get_array()
    )
    np.testing.assert_allclose(again[0, 0, :3], panels["entity"][0, 0, :3])  # and in another figure
    assert (
        len({tuple(np.round(image[0, 0, :3], 6)) for image in panels.values()}) == 3
    )  # three kinds, three colours
    with pytest.raises(ValueError, match="kind: expected one of"):
        plot_timeline(np.eye(4, dtype=np.uint8), list("abcd"), kind="object")
    plt.close("all")


def test_start_notebook_applies_the_style(monkeypatch):
    from refdense.course.checks import start_notebook
    from refdense.viz.style import NOTEBOOK_DPI

    monkeypatch.delenv("REFDENSE_PROFILE", raising=False)
    with matplotlib.rc_context():  # the test leaves the session's defaults as it found them
        start_notebook()
        assert matplotlib.rcParams["figure.dpi"] == NOTEBOOK_DPI
        assert tuple(matplotlib.rcParams["figure.figsize"]) == FIGURE_SIZES["wide"]
        assert matplotlib.rcParams["legend.fontsize"] == FONT_SIZES["small"]
        assert not matplotlib.rcParams["axes.spines.top"]


def test_loss_terms_take_the_colour_of_their_concept_kind():
    from refdense.viz.style import INK, LINE_STYLES
    from refdense.viz.training import plot_loss_curves

    terms = ("loss", "bce_action", "bce_entity", "colv_entity", "bce_motion")
    history = [{"epoch": e, "train": {t: 1.0 / e for t in terms}} for e in (1, 2, 3)]
    lines = {line.get_label(): line for line in plot_loss_curves(history).axes[0].get_lines()}
    assert lines["total"].get_color() == INK
    for term, kind in (
        ("bce_action", "action"),
        ("bce_entity", "entity"),
        ("colv_entity", "entity"),
        ("bce_motion", "motion"),
    ):
        assert lines[term].get_color() == CONCEPT_COLOURS[kind]
    assert lines["bce_entity"].get_linestyle() != lines["colv_entity"].get_linestyle()  # one kind, two styles
    assert lines["colv_entity"].get_linestyle() == LINE_STYLES[1]


def test_a_sweep_draws_each_variant_in_one_look_in_every_panel():
    from refdense.experiments.sweep import plot_sweep
    from refdense.viz.style import MODEL_COLOURS, VARIANT_COLOURS

    result = json.loads((ROOT / "results" / "coupling" / "sweep.json").read_text(encoding="utf-8"))
    result["variants"] = [result["reference"], *[f"variant {i}" for i in range(len(VARIANT_COLOURS) + 1)]]
    for table in ("means", "gains"):  # copy the one variant's numbers to more variants than there are colours
        for by_name in result[table].values():
            template = next(v for k, v in by_name.items() if k != result["reference"])
            by_name.update({name: template for name in result["variants"][1:]})
    fig = plot_sweep(result)
    looks: dict[str, set] = {}
    for ax in fig.axes:
        for container in ax.containers:
            name = container.get_label().removeprefix(f"{result['reference']} - ")
            line = container.lines[0]
            looks.setdefault(name, set()).add((line.get_color(), line.get_linestyle()))
    assert looks[result["reference"]] == {(MODEL_COLOURS["refdense"], "-")}
    assert all(len(look) == 1 for look in looks.values())  # the same in every panel
    assert len({next(iter(look)) for look in looks.values()}) == len(result["variants"])  # and told apart
    assert fig.get_size_inches()[0] <= 9.0
    plt.close(fig)


def test_an_ordered_series_reads_as_shades_dark_to_light():
    from matplotlib.colors import rgb_to_hsv

    from refdense.viz.style import series_colours

    colours = series_colours(4)
    assert len(colours) == 4 and len(set(colours)) == 4
    brightness = [rgb_to_hsv(colour[:3])[2] for colour in colours]
    assert brightness == sorted(brightness)  # the first the darkest
    with pytest.raises(ValueError, match="at least one colour"):
        series_colours(0)


def test_the_study_figure_takes_its_colours_fonts_and_size_from_the_style():
    from refdense.experiments.study import decide_tests, load_study, plot_study
    from refdense.viz.style import INK, OUTCOME_COLOURS

    results = load_study(ROOT / "results" / "h4")  # H4 supported: a decision with a colour
    [row] = decide_tests(results)
    with matplotlib.rc_context({"font.size": 17.0, "axes.titlesize": 23.0}):  # whatever the caller's defaults
        fig = plot_study(results)
    [ax] = fig.axes
    interval, mean, seeds, zero = ax.get_lines()
    assert row["decision"] == "supported"
    assert interval.get_color() == mean.get_color() == OUTCOME_COLOURS["positive"]
    assert seeds.get_color() == zero.get_color() == INK
    assert ax.title.get_fontsize() == FONT_SIZES["title"]
    assert ax.xaxis.label.get_fontsize() == FONT_SIZES["body"]
    assert all(tick.get_fontsize() == FONT_SIZES["body"] for tick in ax.get_yticklabels())
    assert fig.get_size_inches()[0] == FIGURE_SIZES["wide"][0]
    plt.close(fig)


def _has_pixels_of(image: np.ndarray, colour: str) -> bool:
    """Whether the RGB(A) ``image`` (values in [0, 1]) has a pixel of exactly ``colour`` (a marker's inside)."""
    return bool(np.any(np.all(np.abs(image[:, :, :3] - np.array(to_rgb(colour))) <= 0.6 / 255, axis=-1)))


def test_the_committed_result_figures_are_drawn_in_the_style():
    """Each committed sweep.png shows its variants in their colours (RefDense's orange for the reference),
    and each study.png its decisions in theirs: they were drawn by the package's plot functions as they
    are now (re-render them from their JSON with those functions after a change of the style)."""
    from matplotlib.image import imread

    from refdense.experiments.study import decide_tests, load_study
    from refdense.viz.style import MODEL_COLOURS, OUTCOME_COLOURS, VARIANT_COLOURS

    sweeps = sorted((ROOT / "results").rglob("sweep.png"))
    studies = sorted((ROOT / "results").rglob("study.png"))
    assert len(sweeps) >= 10 and len(studies) >= 3
    missing = []
    for path in sweeps:
        result = json.loads((path.parent / "sweep.json").read_text(encoding="utf-8"))
        others = [name for name in result["variants"] if name != result["reference"]]
        colours = [
            MODEL_COLOURS["refdense"],
            *(VARIANT_COLOURS[i % len(VARIANT_COLOURS)] for i in range(len(others))),
        ]
        image = imread(path)
        missing += [
            f"{path.relative_to(ROOT)}: {colour}" for colour in colours if not _has_pixels_of(image, colour)
        ]
    decided = {"supported": "positive", "contradicted": "negative"}
    for path in studies:
        rows = decide_tests(load_study(path.parent))
        colours = {OUTCOME_COLOURS[decided.get(row["decision"], "undecided")] for row in rows}
        image = imread(path)
        missing += [
            f"{path.relative_to(ROOT)}: {colour}"
            for colour in sorted(colours)
            if not _has_pixels_of(image, colour)
        ]
    how = "save_figure(plot_sweep(json.load(sweep.json)), sweep.png); refdense study FOLDER"
    assert not missing, f"not in the style's colours; re-render from the JSON ({how}):\n" + "\n".join(missing)
