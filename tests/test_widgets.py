"""Tests of the loss explorers: the pure functions (refdense.viz.losses) and the headless widgets."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from refdense.viz.losses import bce_curves, colv_geometry, plot_bce_curves, plot_colv_geometry  # noqa: E402
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
        assert abs(bce_curves(positive_rate=rate)["equilibrium"] - rate) < 2e-3  # plain BCE: at the positive rate
    balanced = bce_curves(positive_rate=0.05, pos_weight=19.0)  # (1 - pi) / pi
    assert abs(balanced["equilibrium"] - 0.5) < 2e-3
    curves = bce_curves(positive_rate=0.05, classification="asymmetric", gamma_neg=4.0, gamma_pos=1.0, clip=0.05)
    np.testing.assert_allclose(curves["grad_expected"], 0.05 * curves["grad_positive"] + 0.95 * curves["grad_negative"])
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
    np.testing.assert_allclose(paper["force_bce"], np.where(positive, 0.5, -0.5) / tau)  # undecided stand-in head
    assert paper["loss_colv"][-1] < paper["loss_colv"][0]  # descent lowers the loss ...
    assert paper["loss_colv"][-1] >= paper["lower_bound"] == pytest.approx(-2 / tau + np.log(3))  # ... not below the bound
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
    assert isinstance(fig, Figure) and len(fig.axes) == 3 and fig._suptitle.get_text() == "BCE, pos_weight = 1"
    fig = plot_colv_geometry(colv_geometry(invented_prompts(), [0], names=list("abcde"), steps=3))
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert [tick.get_text() for tick in fig.axes[1].get_xticklabels()] == list("abcde")


def test_bce_explorer_moves_every_slider_and_disables_what_does_nothing():
    explorer = bce_explorer()
    assert set(explorer.sliders) == {"positive_rate", "classification", "pos_weight", "gamma_neg", "gamma_pos", "clip"}
    assert [name for name, control in explorer.sliders.items() if control.disabled] == ["gamma_neg", "gamma_pos", "clip"]
    before = explorer.result["grad_positive"].copy()
    explorer.sliders["pos_weight"].value = 5.0
    np.testing.assert_allclose(explorer.result["grad_positive"], 5.0 * before, rtol=1e-6)
    explorer.sliders["positive_rate"].value = 0.02
    assert explorer.result["positive_rate"] == pytest.approx(0.02, rel=1e-6)
    assert explorer.result["equilibrium"] == pytest.approx(5 * 0.02 / (5 * 0.02 + 0.98), abs=2e-3)  # w pi / (w pi + 1 - pi)

    explorer.sliders["classification"].value = "asymmetric"
    assert explorer.sliders["pos_weight"].disabled and not explorer.sliders["gamma_neg"].disabled
    assert "pos_weight" in explorer.note.value and "gamma_neg" not in explorer.note.value
    settings = {"gamma_neg": 2.0, "gamma_pos": 0.0, "clip": 0.1}
    for name, value in settings.items():
        explorer.sliders[name].value = value
    expected = bce_curves(positive_rate=explorer.sliders["positive_rate"].value, classification="asymmetric", **settings)
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


def test_explorer_labels_are_whole_and_the_hint_comes_first(monkeypatch):
    explorer = bce_explorer()
    assert all(control.style.description_width == "initial" for control in explorer.sliders.values())
    shown = []
    monkeypatch.setattr("refdense.widgets.display", lambda obj, raw=False: shown.append((obj, raw)))
    explorer._ipython_display_()
    (hint, _), (bundle, raw) = shown
    assert "run this cell" in hint.data and raw and "image/png" in bundle


def test_colv_labels_do_not_overlap():
    # five prompts that project next to each other: their labels are stacked, never written on one another
    from refdense.viz.losses import _spread_labels

    points = np.array([[0.0, 0.0], [0.05, 0.01], [0.1, 0.0], [0.02, -0.01], [0.5, 0.5]])
    names = ["white box", "yellow ring", "orange disc", "red ball", "far away"]
    spots = np.array(_spread_labels(points, names, half=1.0))
    width = [0.05 * len(name) for name in names]
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            overlap_x = spots[a, 0] < spots[b, 0] + width[b] and spots[b, 0] < spots[a, 0] + width[a]
            assert not (overlap_x and abs(spots[a, 1] - spots[b, 1]) < 0.08 - 1e-9), (names[a], names[b])
    np.testing.assert_allclose(spots[4], points[4] + 0.02)  # a label with room stays next to its point
