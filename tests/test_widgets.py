"""Tests of the loss explorers: pure curves (refdense.viz.losses) and the headless widgets."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from refdense.viz.losses import bce_curves, colv_curves, plot_bce_curves, plot_colv_curves  # noqa: E402
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


def test_colv_curves_gradients_and_edge_cases():
    curves = colv_curves(0.1, 3, num_classes=6)
    grad, positive = curves["grad"], curves["positive"]
    assert positive.tolist() == [True] * 3 + [False] * 3
    # refdense variant: every positive is pulled by -1/(|beta| tau), negatives pushed by their softmax / tau
    np.testing.assert_allclose(grad[positive], -1 / (3 * 0.1))
    assert np.all(grad[~positive] > 0)
    np.testing.assert_allclose(grad[~positive].sum(), 1 / 0.1)
    assert curves["loss_vs_positives"][0] == 0 and curves["loss_vs_positives"][-1] == 0  # empty / no negative
    infonce = colv_curves(0.1, 3, num_classes=6, variant="infonce")
    assert np.all(infonce["grad"][positive] > grad[positive])  # the positive's own softmax term weakens the pull
    np.testing.assert_allclose(curves["loss_vs_temperature"][np.argmin(abs(curves["temperatures"] - 0.1))],
                               colv_curves(float(curves["temperatures"][np.argmin(abs(curves["temperatures"] - 0.1))]),
                                           3, num_classes=6)["loss"])


def test_plot_functions_return_figures():
    assert isinstance(plot_bce_curves(bce_curves()), Figure)
    fig = plot_colv_curves(colv_curves())
    assert isinstance(fig, Figure) and len(fig.axes) == 3


def test_bce_explorer_recomputes_when_a_slider_moves():
    explorer = bce_explorer()
    assert set(explorer.sliders) == {"pos_weight", "classification"}
    before = explorer.result["grad_positive"].copy()
    explorer.sliders["pos_weight"].value = 5.0
    np.testing.assert_allclose(explorer.result["grad_positive"], 5.0 * before, rtol=1e-6)
    explorer.sliders["classification"].value = "asymmetric"
    np.testing.assert_allclose(explorer.result["loss_negative"], bce_curves(classification="asymmetric")["loss_negative"])
    assert isinstance(explorer.figure, Figure)


def test_colv_explorer_recomputes_when_a_slider_moves():
    explorer = colv_explorer(num_classes=5)
    assert set(explorer.sliders) == {"temperature", "num_positive", "variant"}
    explorer.sliders["num_positive"].value = 4
    explorer.sliders["temperature"].value = 0.5
    assert explorer.result["positive"].sum() == 4
    np.testing.assert_allclose(explorer.result["loss"], colv_curves(0.5, 4, num_classes=5)["loss"])
    explorer.sliders["variant"].value = "infonce"
    np.testing.assert_allclose(explorer.result["loss"], colv_curves(0.5, 4, num_classes=5, variant="infonce")["loss"])
    assert explorer.values() == {"temperature": 0.5, "num_positive": 4, "variant": "infonce"}
