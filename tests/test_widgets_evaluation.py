"""Tests of the evaluation explorer: the pure curves (refdense.viz.evaluation) and the headless widget."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from refdense.metrics import action_conditional  # noqa: E402
from refdense.viz.evaluation import evaluation_curves, plot_evaluation  # noqa: E402
from refdense.widgets import evaluation_explorer  # noqa: E402


def invented_predictions(seed: int = 0):
    """Three videos, four classes with overlapping and consecutive instances, noisy scores."""
    rng = np.random.default_rng(seed)
    labels, scores = [], []
    for length in (30, 24, 18):
        y = np.zeros((length, 4), dtype=np.uint8)
        start = int(rng.integers(0, 6))
        y[start : start + 10, 0] = 1
        y[start + 4 : start + 12, 1] = 1  # overlaps class 0
        y[start + 12 : start + 16, 2] = 1  # follows class 1
        y[rng.random(length) < 0.2, 3] = 1
        labels.append(y)
        scores.append((0.45 * y + 0.55 * rng.random(y.shape)).astype(np.float32))
    return scores, labels


def test_evaluation_curves_agree_with_the_metrics():
    scores, labels = invented_predictions()
    curves = evaluation_curves(scores, labels, tau=3, threshold=0.6, matrix="precision", thresholds=[0.3, 0.6])
    reference = action_conditional(scores, labels, tau=3, threshold=0.6)
    assert curves["conditional"].mAP_ac == reference.mAP_ac and curves["conditional"].pairs == reference.pairs
    np.testing.assert_array_equal(curves["matrix"], reference.precision)  # NaN where a pair is not kept
    assert curves["matrix_name"] == "precision" and curves["tau"] == 3 and curves["threshold"] == 0.6
    low = action_conditional(scores, labels, tau=3, threshold=0.3)
    np.testing.assert_allclose(curves["P_ac"], [low.P_ac, reference.P_ac])
    np.testing.assert_allclose(curves["R_ac"], [low.R_ac, reference.R_ac])
    # mAP_ac does not depend on the threshold; recall can only fall as the threshold rises
    assert curves["mAP_ac"][0] == curves["mAP_ac"][1]
    assert curves["R_ac"][0] >= curves["R_ac"][1]


def test_evaluation_curves_reject_bad_arguments():
    scores, labels = invented_predictions()
    with pytest.raises(ValueError, match="matrix: expected one of"):
        evaluation_curves(scores, labels, matrix="f1")
    with pytest.raises(ValueError, match="tau: expected an integer >= 0"):
        evaluation_curves(scores, labels, tau=-1)
    with pytest.raises(ValueError, match="thresholds: expected a non-empty"):
        evaluation_curves(scores, labels, thresholds=[])


def test_plot_evaluation_draws_three_panels_and_blanks_unkept_pairs():
    scores, labels = invented_predictions()
    curves = evaluation_curves(scores, labels, tau=0)
    fig = plot_evaluation(curves, class_names=["a", "b", "c", "d"], title="invented")
    assert isinstance(fig, Figure)
    bars, sweep, matrix = fig.axes[:3]
    assert [tick.get_text() for tick in matrix.get_xticklabels()] == ["a", "b", "c", "d"]
    image = matrix.images[0].get_array()
    assert np.array_equal(np.ma.getmaskarray(image), ~curves["conditional"].kept)
    assert len(sweep.lines) == 5  # four metrics and the threshold marker
    assert [round(bar.get_height(), 6) for bar in bars.patches][0] == round(100 * curves["conditional"].mAP_ac, 6)


def test_evaluation_explorer_recomputes_when_a_slider_moves():
    scores, labels = invented_predictions()
    explorer = evaluation_explorer(scores, labels, class_names=["a", "b", "c", "d"], max_tau=8)
    assert set(explorer.sliders) == {"tau", "threshold", "matrix"}
    assert explorer.result["tau"] == 0 and isinstance(explorer.figure, Figure)

    explorer.sliders["tau"].value = 5
    expected = action_conditional(scores, labels, tau=5, threshold=0.5)
    assert explorer.result["tau"] == 5
    assert explorer.result["conditional"].mAP_ac == expected.mAP_ac
    np.testing.assert_array_equal(explorer.result["conditional"].kept, expected.kept)

    explorer.sliders["threshold"].value = 0.8
    stricter = action_conditional(scores, labels, tau=5, threshold=0.8)
    assert explorer.result["conditional"].R_ac == stricter.R_ac
    assert stricter.R_ac < expected.R_ac  # a higher threshold finds fewer positives

    explorer.sliders["matrix"].value = "recall"
    np.testing.assert_array_equal(explorer.result["matrix"], stricter.recall)
    assert explorer.sliders["tau"].max == 8


def test_evaluation_explorer_rejects_a_tau_outside_the_slider():
    scores, labels = invented_predictions()
    with pytest.raises(ValueError, match="0 <= tau <= max_tau"):
        evaluation_explorer(scores, labels, tau=30, max_tau=20)
