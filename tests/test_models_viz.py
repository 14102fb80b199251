"""Plots of a position bias and an attention map."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from refdense.models import position_bias  # noqa: E402
from refdense.viz.model import plot_attention, plot_position_bias  # noqa: E402


def test_position_bias_plot_draws_the_matrix_with_a_symmetric_scale():
    torch.manual_seed(0)
    bias = position_bias(torch.randn(1, 1, 6, 4, requires_grad=True), torch.randn(6, 4), "pat")[0, 0]
    fig = plot_position_bias(bias)
    image = fig.axes[0].images[0]
    np.testing.assert_allclose(image.get_array(), bias.detach().numpy())
    low, high = image.get_clim()
    assert low == -high == -float(bias.detach().abs().max())
    assert fig.axes[0].get_xlabel() == "key j" and len(fig.axes) == 2  # the matrix and its colour bar
    plt.close(fig)


def test_attention_plot_uses_the_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    weights = torch.softmax(torch.randn(5, 5), dim=-1)
    assert plot_attention(weights, ax=right) is fig
    np.testing.assert_allclose(right.images[0].get_array(), weights.numpy(), rtol=1e-6)
    assert not left.images
    plt.close(fig)


def test_a_plot_on_an_axes_of_a_subfigure_returns_the_whole_figure():
    fig = plt.figure()
    left, _ = fig.subfigures(1, 2)
    ax = left.add_subplot()
    assert plot_attention(np.eye(3), ax=ax) is fig  # a Figure to save, not the SubFigure
    assert ax.images and len(left.axes) == 2  # drawn in the subfigure, with its colour bar
    plt.close(fig)


def test_plots_reject_a_matrix_that_is_not_2d():
    with pytest.raises(ValueError, match=r"weights must be a 2-D \(queries, keys\) matrix, found shape \(2, 5, 5\)"):
        plot_attention(np.zeros((2, 5, 5)))
