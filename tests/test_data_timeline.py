"""plot_timeline: ground truth and model probabilities of one video."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from refdense.viz.timeline import plot_timeline  # noqa: E402


def example():
    labels = np.zeros((20, 4), dtype=np.uint8)
    labels[10:15, 2] = 1
    labels[2:8, 0] = 1
    return labels, ["walk", "sit", "raise the cup", "shake"]


def test_blocks_of_rows_for_truth_and_each_model():
    labels, names = example()
    rng = np.random.default_rng(0)
    fig = plot_timeline(
        labels, names, {"PAT": rng.random((20, 4)), "RefDense": rng.random((20, 4))}, duration=10.0
    )
    ax = fig.axes[0]
    image = ax.get_images()[0].get_array()
    # Classes active in the truth, in order of first appearance (0 then 2), three sources.
    assert image.shape == (6, 20, 4)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["walk", "raise the cup"] * 3
    np.testing.assert_array_equal(image[0, :, 3], labels[:, 0])
    np.testing.assert_array_equal(image[1, :, 3], labels[:, 2])
    assert {t.get_text() for t in ax.texts} == {"ground truth", "PAT", "RefDense"}
    assert ax.get_xlabel() == "time (s)" and ax.get_xlim() == (0.0, 10.0)
    plt.close(fig)


def test_draws_on_given_axes_and_picks_classes_from_predictions_when_truth_is_empty():
    fig, axes = plt.subplots(1, 2)
    scores = np.zeros((20, 4))
    scores[:, 3] = 0.9
    scores[:, 1] = 0.5
    out = plot_timeline(np.zeros((20, 4)), list("abcd"), {"m": scores}, max_classes=2, ax=axes[1])
    assert out is fig
    assert [t.get_text() for t in axes[1].get_yticklabels()] == ["d", "b", "d", "b"]
    plt.close(fig)


def test_bad_shapes_and_logits_raise():
    labels, names = example()
    with pytest.raises(ValueError, match="predictions\\['m'\\]: expected shape \\(20, 4\\)"):
        plot_timeline(labels, names, {"m": np.zeros((19, 4))})
    with pytest.raises(ValueError, match="apply a sigmoid"):
        plot_timeline(labels, names, {"m": np.full((20, 4), 3.0)})
    with pytest.raises(ValueError, match="labels: expected shape \\(T, 3\\)"):
        plot_timeline(labels, names[:3])


def test_rows_of_one_colour_stay_apart():
    from matplotlib.colors import to_rgb

    from refdense.viz.style import BACKGROUND, CONCEPT_COLOURS

    labels, names = example()
    ax = plot_timeline(labels, names).axes[0]  # actions by default
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(
        image[:, :, :3], np.broadcast_to(to_rgb(CONCEPT_COLOURS["action"]), image[:, :, :3].shape)
    )
    separators = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_color() == BACKGROUND)
    assert separators == list(range(1, len(ax.get_yticks())))  # a line between every two rows
    plt.close("all")
