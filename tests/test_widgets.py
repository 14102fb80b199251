"""Tests of the loss explorers: the pure functions (refdense.viz.losses) and the headless widgets."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from refdense.course.results import TEXT_BANK  # noqa: E402
from refdense.text import TextBank  # noqa: E402
from refdense.viz.losses import bce_curves, colv_geometry, plot_bce_curves, plot_colv_geometry  # noqa: E402
from refdense.viz.style import NOTEBOOK_DPI, figure_size, styled  # noqa: E402
from refdense.widgets import bce_explorer, colv_explorer  # noqa: E402


def test_bce_curves_match_the_closed_form():
    p = np.array([0.1, 0.5, 0.9])
    curves = bce_curves(p, pos_weight=2.0)
    np.testing.assert_allclose(curves["loss_positive"], -2.0 * np.log(p))
    np.testing.assert_allclose(curves["loss_negative"], -np.log(1 - p))
    np.testing.assert_allclose(curves["grad_positive"], 2.0 * (p - 1))  # w (p - 1)
    np.testing.assert_allclose(curves["grad_negative"], p)
    with pytest.raises(ValueError, match=r"probabilities in \(0, 1\)"):
        bce_curves(np.array([0.0, 0.5]))


def test_asymmetric_curves_silence_easy_negatives():
    p = np.array([0.03, 0.5])
    asl = bce_curves(p, classification="asymmetric")
    assert asl["loss_negative"][0] == 0 and asl["grad_negative"][0] == 0  # p below the clip margin
    assert asl["loss_negative"][1] < bce_curves(p)["loss_negative"][1]


def invented_prompts(num_classes: int = 5, dim: int = 12, seed: int = 0) -> np.ndarray:
    """Prompt embeddings that share a common direction, as a sentence encoder's do."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(num_classes, dim)) + 2.0 * rng.normal(size=dim)


def test_bce_curves_find_where_a_class_settles():
    for rate in (0.01, 0.05, 0.3):
        assert (
            abs(bce_curves(positive_rate=rate)["equilibrium"] - rate) < 2e-3
        )  # plain BCE: at the positive rate
    balanced = bce_curves(positive_rate=0.05, pos_weight=19.0)  # (1 - pi) / pi
    assert abs(balanced["equilibrium"] - 0.5) < 2e-3
    curves = bce_curves(
        positive_rate=0.05, classification="asymmetric", gamma_neg=4.0, gamma_pos=1.0, clip=0.05
    )
    np.testing.assert_allclose(
        curves["grad_expected"], 0.05 * curves["grad_positive"] + 0.95 * curves["grad_negative"]
    )
    assert curves["equilibrium"] > 0.05  # easy negatives silenced: the class settles higher than under BCE
    assert "gamma_neg = 4" in curves["setting"]
    with pytest.raises(ValueError, match=r"positive_rate: expected a share in \(0, 1\)"):
        bce_curves(positive_rate=0.0)


def test_colv_geometry_forces_match_the_closed_forms():
    u, tau = invented_prompts(), 0.1
    paper = colv_geometry(u, [0, 2], temperature=tau, steps=5)
    force, positive = paper["force_colv"], paper["positive"]
    assert positive.tolist() == [True, False, True, False, False]
    np.testing.assert_allclose(force[positive], 1 / (2 * tau))  # the paper's constant pull, 1 / (|beta| tau)
    np.testing.assert_allclose(force[~positive].sum(), -1 / tau)  # the push sums to 1 / tau
    np.testing.assert_allclose(paper["pull_colv"], 1 / (2 * tau))  # ... and never fades along the descent
    unit = u / np.linalg.norm(u, axis=1, keepdims=True)
    start = unit.mean(0) / np.linalg.norm(unit.mean(0))
    np.testing.assert_allclose(paper["similarity"], unit @ start)
    np.testing.assert_allclose(
        paper["force_bce"], np.where(positive, 0.5, -0.5) / tau
    )  # undecided stand-in head
    assert paper["loss_colv"][-1] < paper["loss_colv"][0]  # descent lowers the loss ...
    assert (
        paper["loss_colv"][-1] >= paper["lower_bound"] == pytest.approx(-2 / tau + np.log(3))
    )  # ... not below the bound
    infonce = colv_geometry(u, [0, 2], temperature=tau, variant="infonce", steps=20)
    assert np.all(infonce["force_colv"][positive] < force[positive])
    assert infonce["pull_colv"][-1] < infonce["pull_colv"][0]  # InfoNCE's pull fades
    supcon = colv_geometry(u, [0, 2], temperature=tau, variant="supcon", steps=5)
    assert abs(supcon["force_colv"].sum()) < 1e-9  # one shared softmax: pulls and pushes cancel
    assert supcon["lower_bound"] == pytest.approx(np.log(2))


def test_colv_geometry_descends_towards_the_co_occurring_prompts():
    u = invented_prompts(num_classes=6)
    geometry = colv_geometry(u, [1, 4], temperature=0.07, steps=30)
    start, end, on = geometry["similarity"], geometry["end_similarity_colv"], geometry["positive"]
    # CoLV sees only differences of similarities: the positives end above every negative, by a wider margin
    assert end[on].min() - end[~on].max() > max(0.1, start[on].min() - start[~on].max())
    assert geometry["path_colv"].shape == (31, 2) and geometry["view_prompts"].shape == (6, 2)
    np.testing.assert_allclose(geometry["path_colv"][0], geometry["view_start"])
    assert np.all(np.linalg.norm(geometry["view_prompts"], axis=1) <= 1 + 1e-9)  # projections of unit vectors
    empty = colv_geometry(u, [], steps=3)
    assert np.all(empty["force_colv"] == 0) and empty["lower_bound"] == 0  # no positive: CoLV is 0
    with pytest.raises(ValueError, match=r"positives: expected indices in \[0, 6\)"):
        colv_geometry(u, [6])
    with pytest.raises(ValueError, match="variant: expected one of"):
        colv_geometry(u, [0], variant="clip")


def test_plot_functions_return_figures():
    fig = plot_bce_curves(bce_curves(positive_rate=0.02))
    assert (
        isinstance(fig, Figure) and len(fig.axes) == 3 and fig._suptitle.get_text() == "BCE, pos_weight = 1"
    )
    fig = plot_colv_geometry(colv_geometry(invented_prompts(), [0], names=list("abcde"), steps=3))
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert [tick.get_text() for tick in fig.axes[1].get_xticklabels()] == list("abcde")


def test_bce_explorer_moves_every_slider_and_disables_what_does_nothing():
    explorer = bce_explorer()
    assert set(explorer.sliders) == {
        "positive_rate",
        "classification",
        "pos_weight",
        "gamma_neg",
        "gamma_pos",
        "clip",
    }
    assert [name for name, control in explorer.sliders.items() if control.disabled] == [
        "gamma_neg",
        "gamma_pos",
        "clip",
    ]
    before = explorer.result["grad_positive"].copy()
    explorer.sliders["pos_weight"].value = 5.0
    np.testing.assert_allclose(explorer.result["grad_positive"], 5.0 * before, rtol=1e-6)
    explorer.sliders["positive_rate"].value = 0.02
    assert explorer.result["positive_rate"] == pytest.approx(0.02, rel=1e-6)
    assert explorer.result["equilibrium"] == pytest.approx(
        5 * 0.02 / (5 * 0.02 + 0.98), abs=2e-3
    )  # w pi / (w pi + 1 - pi)

    explorer.sliders["classification"].value = "asymmetric"
    assert explorer.sliders["pos_weight"].disabled and not explorer.sliders["gamma_neg"].disabled
    assert "pos_weight" in explorer.note.value and "gamma_neg" not in explorer.note.value
    settings = {"gamma_neg": 2.0, "gamma_pos": 0.0, "clip": 0.1}
    for name, value in settings.items():
        explorer.sliders[name].value = value
    expected = bce_curves(
        positive_rate=explorer.sliders["positive_rate"].value, classification="asymmetric", **settings
    )
    np.testing.assert_allclose(explorer.result["grad_negative"], expected["grad_negative"])
    np.testing.assert_allclose(explorer.result["grad_positive"], expected["grad_positive"])
    assert isinstance(explorer.figure, Figure)


def test_colv_explorer_moves_every_slider():
    u = invented_prompts()
    explorer = colv_explorer(u, list("abcde"), co_occurring=(0, 1))
    assert set(explorer.sliders) == {"temperature", "co_occurring", "variant"}
    assert explorer.result["positive"].tolist() == [True, True, False, False, False]
    explorer.sliders["co_occurring"].value = (1, 3, 4)
    explorer.sliders["temperature"].value = 0.5
    assert explorer.result["positive"].tolist() == [False, True, False, True, True]
    np.testing.assert_allclose(explorer.result["force_colv"][[1, 3, 4]], 1 / (3 * 0.5))
    explorer.sliders["variant"].value = "supcon"
    expected = colv_geometry(u, (1, 3, 4), temperature=0.5, variant="supcon", names=list("abcde"))
    np.testing.assert_allclose(explorer.result["force_colv"], expected["force_colv"])
    np.testing.assert_allclose(explorer.result["path_colv"], expected["path_colv"])
    assert explorer.values() == {"temperature": 0.5, "co_occurring": (1, 3, 4), "variant": "supcon"}
    assert explorer.note.value == "" and isinstance(explorer.figure, Figure)


def test_colv_explorer_shows_every_concept_and_explains_an_empty_selection():
    names = [f"concept {k}" for k in range(10)]
    explorer = colv_explorer(invented_prompts(num_classes=10), names, co_occurring=(0, 1))
    assert explorer.sliders["co_occurring"].rows == 10  # none below the fold
    assert "Ctrl-click" in explorer.hint and "multi-select" in explorer.hint
    explorer.sliders["co_occurring"].value = ()
    assert "No concept is on" in explorer.note.value
    np.testing.assert_allclose(explorer.result["force_colv"], 0.0)  # what the note says the figure shows
    explorer.sliders["co_occurring"].value = (2,)
    assert explorer.note.value == ""


def test_the_explorer_hint_comes_first(monkeypatch):
    explorer = bce_explorer()
    shown = []
    monkeypatch.setattr("refdense.widgets.display", lambda obj, raw=False: shown.append((obj, raw)))
    explorer._ipython_display_()
    (hint, _), (bundle, raw) = shown
    assert "run this cell" in hint.data and raw and "image/png" in bundle


def text_boxes(fig: Figure) -> list[tuple[str, Bbox, Bbox]]:
    """(text, its box, the box it must stay in) of every text the figure draws, in pixels, measured with
    the figure's renderer. A label written in an Axes must stay in the Axes, any other text in the
    figure; a legend counts as one box (its entries inside it)."""
    drawn: list[Text] = []
    draw_text = RendererAgg.draw_text

    def record(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip() and mtext not in drawn:
            drawn.append(mtext)
        return draw_text(self, gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    RendererAgg.draw_text = record
    try:
        FigureCanvasAgg(fig).draw()  # an explorer's figure is closed: it has no canvas of its own left
    finally:
        RendererAgg.draw_text = draw_text
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    in_legend = {id(text) for legend in legends for text in legend.findobj(Text)}
    boxes = [
        (
            text.get_text(),
            Text.get_window_extent(text, renderer),  # the text alone, without an annotation's line
            text.axes.bbox if text.axes is not None and text in text.axes.texts else fig.bbox,
        )
        for text in drawn
        if id(text) not in in_legend
    ]
    return boxes + [
        (f"legend of {legend.axes.get_title()!r}", legend.get_window_extent(renderer), legend.axes.bbox)
        for legend in legends
    ]


def text_problems(fig: Figure) -> list[str]:
    """Every text that leaves where it must stay (:func:`text_boxes`) and every two that intersect."""
    boxes = text_boxes(fig)
    problems = [
        f"{text!r} is cut"
        for text, box, frame in boxes
        if not (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1)
    ]
    return problems + [
        f"{a!r} overlaps {b!r}"
        for k, (a, box_a, _) in enumerate(boxes)
        for b, box_b, _ in boxes[k + 1 :]
        if box_a.overlaps(box_b)
    ]


def test_the_text_check_finds_overlapping_and_cut_labels():
    fig, ax = plt.subplots(figsize=figure_size("column"))
    ax.annotate("white box", (0.5, 0.5))
    ax.annotate("yellow ring", (0.52, 0.5))
    ax.annotate("orange disc", (0.99, 0.2))
    assert sorted(text_problems(fig)) == ["'orange disc' is cut", "'white box' overlaps 'yellow ring'"]
    plt.close(fig)


def entity_bank() -> tuple[np.ndarray, list[str]]:
    """The course's committed MiniLM prompt embeddings of the ten entities, and their names (notebook 07)."""
    bank = TextBank.load(TEXT_BANK)
    return bank.embeddings["entity"].numpy(), bank.names["entity"]


@pytest.mark.parametrize(
    "setting",
    [
        {},  # as notebook 06 opens it
        {"positive_rate": 0.002, "pos_weight": 100.0},  # the extremes of the sliders
        {"positive_rate": 0.5, "pos_weight": 0.1},
        {
            "positive_rate": 0.09,
            "classification": "asymmetric",
            "gamma_neg": 6.0,
            "gamma_pos": 4.0,
            "clip": 0.3,
        },
    ],
)
def test_the_bce_explorer_draws_no_text_on_another_or_cut(setting):
    with styled(NOTEBOOK_DPI):  # the notebook's fonts and resolution
        explorer = bce_explorer(**setting)
        assert text_problems(explorer.figure) == []


@pytest.mark.parametrize(
    ("on", "temperature", "variant", "spread"),
    [
        (("red cube", "red ball"), 0.07, "refdense", 1.0),  # as notebook 07 opens it
        ("every", 1.0, "supcon", 1.0),  # every concept on: every label bold, so wider
        (
            ("white box", "yellow ring", "orange disc"),
            0.01,
            "infonce",
            0.02,
        ),  # ten prompts crowded in one spot
    ],
)
def test_the_colv_explorer_labels_no_concept_on_another(on, temperature, variant, spread):
    embeddings, names = entity_bank()
    centre = embeddings.mean(0)
    embeddings = centre + spread * (embeddings - centre)
    chosen = range(len(names)) if on == "every" else [names.index(name) for name in on]
    with styled(NOTEBOOK_DPI):
        explorer = colv_explorer(embeddings, names, chosen, temperature, variant)
        assert text_problems(explorer.figure) == []
        labels = [text.get_text() for text in explorer.figure.axes[0].texts if text.get_text()]
        assert sorted(labels) == sorted(names)  # every concept named, once


def test_explorer_descriptions_show_whole():
    explorers = [bce_explorer(), colv_explorer(invented_prompts(), list("abcde"))]
    for control in (control for explorer in explorers for control in explorer.sliders.values()):
        assert control.style.description_width == "initial", (
            control.description
        )  # as wide as the words, never "gamma_n..."
        assert control.layout.width is None, control.description  # and no fixed width squeezes the words
