"""The fast metrics against the plain reference written from docs/METHOD.md, section 7, word by word
(:mod:`refdense.metrics.reference`)."""

from __future__ import annotations

import json
import math
import shlex

import numpy as np
import pytest

from refdense.metrics import (
    action_conditional,
    compare_markdown,
    frame_map,
    paper_table,
    read_predictions,
    write_predictions,
)
from refdense.cli import build_parser
from refdense.cli.evaluate import run as evaluate_command
from refdense.metrics import reference

# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def random_videos(rng, num_videos=4, num_classes=5, length=(1, 30), density=0.3, ties=False, dtype=np.float32):
    scores, labels = [], []
    for _ in range(num_videos):
        t = int(rng.integers(length[0], length[1] + 1))
        y = (rng.random((t, num_classes)) < density).astype(np.int64)
        if ties:
            s = rng.integers(0, 5, (t, num_classes)) / 4.0  # values {0, .25, .5, .75, 1}
        else:
            s = rng.random((t, num_classes))
            s = np.clip(s + 0.3 * y * rng.random((t, num_classes)), 0, 1)  # informative scores
        scores.append(s.astype(dtype))
        labels.append(y)
    return scores, labels


def assert_matches_reference(scores, labels, taus=(0, 1, 3, 20), threshold=0.5):
    fm = frame_map(scores, labels)
    ref = reference.frame_map(scores, labels)
    aps, mean_all, mean_present = ref["per_class"], ref["map_all"], ref["map_present"]
    for c, a in enumerate(aps):
        if math.isnan(a):
            assert math.isnan(fm.per_class[c])
        else:
            assert fm.per_class[c] == pytest.approx(a, abs=1e-9)
    assert fm.map_all == pytest.approx(mean_all, abs=1e-9)
    if math.isnan(mean_present):
        assert math.isnan(fm.map_present)
    else:
        assert fm.map_present == pytest.approx(mean_present, abs=1e-9)
    for tau in taus:
        fast = action_conditional(scores, labels, tau=tau, threshold=threshold)
        ref = reference.action_conditional(scores, labels, tau, threshold)
        assert fast.pairs == len(ref["pairs"])
        assert {(int(i), int(j)) for i, j in zip(*np.nonzero(fast.kept))} == set(ref["pairs"])
        for name in ("P_ac", "R_ac", "F1_ac", "mAP_ac"):
            value = getattr(fast, name)
            if math.isnan(ref[name]):
                assert math.isnan(value), (tau, name)
            else:
                assert value == pytest.approx(ref[name], abs=1e-9), (tau, name)


# --------------------------------------------------------------------------------------------
# Exactness
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_random_inputs_match_reference(seed):
    rng = np.random.default_rng(seed)
    scores, labels = random_videos(rng, num_videos=int(rng.integers(1, 5)), num_classes=int(rng.integers(2, 7)))
    assert_matches_reference(scores, labels, threshold=float(rng.choice([0.3, 0.5, 0.7])))


@pytest.mark.parametrize("seed", range(6))
def test_heavy_ties_match_reference(seed):
    rng = np.random.default_rng(100 + seed)
    scores, labels = random_videos(rng, num_classes=4, ties=True, density=0.4)
    assert_matches_reference(scores, labels)


@pytest.mark.parametrize("seed", range(4))
def test_float64_scores_match_reference(seed):
    """float64 scores that are not float32 values take the exact-rank path."""
    rng = np.random.default_rng(200 + seed)
    scores, labels = random_videos(rng, length=(5, 30), dtype=np.float64)
    scores[0][0, 0] = 0.5 + 1e-12  # a value between float32 numbers, at the threshold
    scores[0][1, 1] = scores[0][2, 1] = 0.3  # a tie
    assert_matches_reference(scores, labels, threshold=0.5)
    assert_matches_reference(scores, labels, taus=(0,), threshold=0.3)


def test_adversarial_classes_and_short_videos():
    rng = np.random.default_rng(7)
    scores, labels = random_videos(rng, num_videos=5, num_classes=6, length=(1, 8), density=0.5)
    for y in labels:
        y[:, 0] = 0  # a class never on
        y[:, 1] = 1  # a class always on
    scores[1][:, 2] = 1.0  # saturated scores: ties at 1.0
    scores[2][:, 3] = 0.0
    scores[3][:, 4] = -0.0  # negative zero equals zero
    assert_matches_reference(scores, labels, taus=(0, 2, 20))  # videos shorter than tau


def test_all_on_and_all_off():
    rng = np.random.default_rng(3)
    scores = [rng.random((6, 3)).astype(np.float32), rng.random((4, 3)).astype(np.float32)]
    ones = [np.ones((6, 3), int), np.ones((4, 3), int)]
    assert_matches_reference(scores, ones, taus=(0, 5))
    fm = frame_map(scores, [np.zeros((6, 3)), np.zeros((4, 3))])
    assert np.isnan(fm.per_class).all() and fm.map_all == 0 and math.isnan(fm.map_present)
    ac = action_conditional(scores, [np.zeros((6, 3)), np.zeros((4, 3))], tau=0)
    assert ac.pairs == 0 and math.isnan(ac.mAP_ac)
    assert paper_table(scores, [np.zeros((6, 3)), np.zeros((4, 3))]).to_dict()["tau_0"]["mAP_ac"] is None


def test_ties_do_not_depend_on_frame_order():
    y = np.array([[1], [0], [1], [0], [0]])
    s = np.array([[0.9], [0.9], [0.5], [0.5], [0.1]], dtype=np.float32)
    # Distinct scores 0.9 (1 of 2 positive) and 0.5 (2 of 4): AP = 0.5 * 0.5 + 0.5 * 0.5.
    assert frame_map([s], [y]).per_class[0] == pytest.approx(0.5, abs=1e-12)
    order = [1, 0, 3, 2, 4]
    assert frame_map([s[order]], [y[order]]).per_class[0] == pytest.approx(0.5, abs=1e-12)


def test_window_never_crosses_videos():
    """Class 0 ends at the last frame of video 0; video 1's first frames must not be conditioned."""
    y0 = np.array([[0, 1], [1, 1]])
    y1 = np.array([[0, 1], [0, 1], [0, 1]])
    s = [np.full((2, 2), 0.6, np.float32), np.full((3, 2), 0.6, np.float32)]
    ac = action_conditional(s, [y0, y1], tau=3)
    assert ac.frames[0] == 0 and ac.pairs == 0
    pooled = action_conditional([np.concatenate(s)], [np.concatenate([y0, y1])], tau=3)
    assert pooled.frames[0] == 2 and pooled.pairs == 1  # pooling as one video would cross


def test_padded_input_equals_list_input():
    rng = np.random.default_rng(11)
    scores, labels = random_videos(rng, num_videos=3, num_classes=4)
    lengths = np.array([s.shape[0] for s in scores])
    padded_s = np.zeros((3, lengths.max(), 4), np.float32)
    padded_y = np.zeros((3, lengths.max(), 4), np.int64)
    for v in range(3):
        padded_s[v, : lengths[v]] = scores[v]
        padded_y[v, : lengths[v]] = labels[v]
        padded_y[v, lengths[v] :] = 1  # padding must be ignored
    copies = [s.copy() for s in scores], padded_s.copy()
    a = paper_table(scores, labels, taus=(0, 2)).to_dict()
    b = paper_table(padded_s, padded_y, lengths=lengths, taus=(0, 2)).to_dict()
    assert a == b
    assert all(np.array_equal(s, c) for s, c in zip(scores, copies[0])) and np.array_equal(padded_s, copies[1])
    single = paper_table(scores[:1], labels[:1], taus=(0,))  # one video: its array is not modified either
    assert np.array_equal(scores[0], copies[0][0]) and single.frame_map.per_class.shape == (4,)


def test_pair_matrices_and_kept_pairs():
    rng = np.random.default_rng(5)
    scores, labels = random_videos(rng, num_videos=3, num_classes=4, density=0.5)
    ac = action_conditional(scores, labels, tau=0)
    assert ac.precision.shape == ac.recall.shape == ac.ap.shape == ac.kept.shape == (4, 4)
    assert not ac.kept.diagonal().any()
    assert np.isnan(ac.ap[~ac.kept]).all() and not np.isnan(ac.ap[ac.kept]).any()
    assert ac.mAP_ac == pytest.approx(ac.ap[ac.kept].mean())
    assert ac.F1_ac == pytest.approx(2 * ac.P_ac * ac.R_ac / (ac.P_ac + ac.R_ac))
    assert (ac.frames == np.concatenate(labels).sum(0)).all()


# --------------------------------------------------------------------------------------------
# Table, rendering, files
# --------------------------------------------------------------------------------------------


def test_paper_table_layout_and_markdown():
    rng = np.random.default_rng(9)
    scores, labels = random_videos(rng, num_videos=4, num_classes=5, length=(20, 40))
    table = paper_table(scores, labels)
    d = table.to_dict()
    assert list(d) == ["frame_map", "frame_map_present", "tau_0", "tau_20"]
    assert set(d["tau_20"]) == {"mAP_ac", "F1_ac", "P_ac", "R_ac", "pairs"}
    assert d["frame_map"] == pytest.approx(100 * frame_map(scores, labels).map_all)
    assert d["tau_0"]["mAP_ac"] == pytest.approx(100 * action_conditional(scores, labels, tau=0).mAP_ac)
    json.dumps(d)
    text = compare_markdown({"RefDense": table, "PAT": paper_table(labels, labels)})
    lines = text.splitlines()
    assert len(lines) == 4 and lines[2].startswith("| RefDense") and "100.00" in lines[3]
    assert len({len(line) for line in lines}) == 1  # aligned
    assert f"{d['tau_20']['F1_ac']:.2f}" in table.to_markdown()
    with pytest.raises(ValueError, match="taus"):
        compare_markdown({"a": table, "b": paper_table(scores, labels, taus=(0,))})


def test_predictions_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    scores, labels = random_videos(rng, num_videos=3, num_classes=4)
    path = tmp_path / "predictions.npz"
    write_predictions(path, scores, labels, ["a", "b", "c"])
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.npz"]
    pred = read_predictions(path)
    assert pred.video_ids == ["a", "b", "c"]
    for s, y, s2, y2 in zip(scores, labels, pred.scores, pred.labels):
        assert s2.dtype == s.dtype and np.array_equal(s, s2) and np.array_equal(y, y2)
    # The dense form with lengths, written by plain numpy, reads to the same arrays.
    dense = tmp_path / "dense.npz"
    lengths = np.array([len(s) for s in scores])
    ds = np.zeros((3, lengths.max(), 4), np.float32)
    dy = np.zeros((3, lengths.max(), 4), np.uint8)
    for v in range(3):
        ds[v, : lengths[v]], dy[v, : lengths[v]] = scores[v], labels[v]
    np.savez(dense, scores=ds, labels=dy, lengths=lengths)
    pred2 = read_predictions(dense)
    assert pred2.video_ids == ["0", "1", "2"]
    assert all(np.array_equal(a, b) for a, b in zip(pred2.scores, scores))
    # The file holds plain arrays only: numpy reads it without unpickling anything.
    with np.load(path, allow_pickle=False) as data:
        assert data["scores"].shape == (int(lengths.sum()), 4) and data["lengths"].tolist() == lengths.tolist()
        assert data["video_ids"].tolist() == ["a", "b", "c"] and data["labels"].dtype == np.uint8


def test_predictions_of_earlier_versions_are_refused_saying_how_to_write_them_again(tmp_path):
    rng = np.random.default_rng(3)
    scores, labels = random_videos(rng, num_videos=2, num_classes=3)
    path = tmp_path / "old predictions.npz"
    per_video = {name: np.empty(2, dtype=object) for name in ("scores", "labels")}
    for v in range(2):
        per_video["scores"][v], per_video["labels"][v] = scores[v], labels[v].astype(np.uint8)
    np.savez(path, **per_video, video_ids=np.array(["x", "y"]))  # what refdense wrote before
    with pytest.raises(ValueError, match="refused: scores, labels hold pickled Python objects") as error:
        read_predictions(path)
    message = str(error.value)
    assert "allow_pickle" not in message  # nothing suggests unpickling the file
    # the command it gives is one `refdense evaluate` accepts
    command = next(line for line in message.splitlines() if "refdense evaluate" in line).split(": ", 1)[1]
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.func is evaluate_command and args.out == str(path)
    # ... and the other way, write_predictions from the arrays that made the file, gives a file that reads back
    assert "write_predictions(path, scores, labels, video_ids)" in message
    write_predictions(path, scores, labels, ["x", "y"])
    converted = read_predictions(path)
    assert converted.video_ids == ["x", "y"]
    assert all(np.array_equal(a, b) for a, b in zip(converted.scores, scores))


def test_write_predictions_refuses_bad_input_and_leaves_no_file(tmp_path):
    path = tmp_path / "p.npz"
    with pytest.raises(ValueError, match=r"p.npz: video 'b' \(#1\): expected probabilities"):
        write_predictions(path, [np.zeros((2, 3)), np.full((2, 3), 3.0)], [np.zeros((2, 3))] * 2, ["a", "b"])
    assert not list(tmp_path.iterdir())


def test_read_predictions_errors(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, scores=np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="bad.npz: expected arrays 'scores' and 'labels'"):
        read_predictions(path)
    np.savez(path, scores=np.zeros((2, 3, 4)), labels=np.zeros((2, 3, 4)), lengths=np.array([3, 9]))
    with pytest.raises(ValueError, match=r"bad.npz: lengths: .*\[0, 3\].*9 for video #1"):
        read_predictions(path)
    np.savez(path, scores=np.zeros((2, 3, 4)), labels=np.zeros((2, 3, 4)))  # padding is no segments
    with pytest.raises(ValueError, match=r"bad.npz: expected 'lengths' \(V,\) with padded \(V, T, C\) scores"):
        read_predictions(path)
    np.savez(path, scores=np.zeros((5, 4)), labels=np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"bad.npz: expected 'lengths' \(V,\) with concatenated \(N, C\) scores"):
        read_predictions(path)
    np.savez(path, scores=np.zeros((5, 4)), labels=np.zeros((5, 4)), lengths=np.array([2, 2]))
    with pytest.raises(ValueError, match=r"bad.npz: lengths: .*4 segments.*5 rows"):
        read_predictions(path)
    np.savez(path, scores=np.zeros((5, 4)), labels=np.zeros((5, 4)), lengths=np.array([6, -1]))
    with pytest.raises(ValueError, match=r"bad.npz: lengths: expected one integer >= 0 per video"):
        read_predictions(path)
    np.savez(path, scores=np.zeros(5), labels=np.zeros(5), lengths=np.array([5]))
    with pytest.raises(ValueError, match=r"bad.npz: scores: .*\(N, C\).*\(V, T, C\)"):
        read_predictions(path)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="text.npz: not a .npz file"):
        read_predictions(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        read_predictions(tmp_path / "missing.npz")


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

GOOD_S = [np.full((3, 2), 0.5)]
GOOD_Y = [np.zeros((3, 2))]


@pytest.mark.parametrize(
    "scores, labels, kwargs, message",
    [
        (GOOD_S, [np.zeros((3, 3))], {}, r"video #0: expected labels of the scores' shape \(3, 2\), found \(3, 3\)"),
        (GOOD_S + [np.full((2, 3), 0.5)], GOOD_Y + [np.zeros((2, 3))], {}, r"video #1: expected 2 classes"),
        (GOOD_S, [np.full((3, 2), 2.0)], {}, r"video #0: expected labels in \{0, 1\}, found 2.0"),
        ([np.array([[0.5, np.nan]] * 3)], GOOD_Y, {}, r"video #0: expected finite scores, found 3 NaN"),
        ([np.full((3, 2), -2.0)], GOOD_Y, {}, r"expected probabilities in \[0, 1\].*look like logits"),
        ([], [], {}, r"expected at least one video"),
        ([np.zeros((0, 2))], [np.zeros((0, 2))], {}, r"expected at least one segment"),
        (np.full((3, 2), 0.5), np.zeros((3, 2)), {}, r"wrap a single video in a list"),
        (GOOD_S, GOOD_Y, {"tau": -1}, r"tau: expected an integer >= 0"),
        (GOOD_S, GOOD_Y, {"tau": 2.5}, r"tau: expected an integer >= 0"),
        (GOOD_S, GOOD_Y, {"threshold": 1.5}, r"threshold: expected a number in \(0, 1\)"),
        (np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), {"lengths": [3]}, r"lengths: expected 2 integers"),
    ],
)
def test_bad_input_is_named(scores, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        action_conditional(scores, labels, **kwargs)
    if not {"tau", "threshold"} & set(kwargs):
        with pytest.raises(ValueError, match=message):
            frame_map(scores, labels, **kwargs)


def test_paper_table_rejects_bad_taus():
    with pytest.raises(ValueError, match="tau"):
        paper_table(GOOD_S, GOOD_Y, taus=(0, -3))
    with pytest.raises(ValueError, match="distinct"):
        paper_table(GOOD_S, GOOD_Y, taus=(0, 0))


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


@pytest.mark.course
def test_plots_return_figures_with_the_data():
    from matplotlib.figure import Figure

    from refdense.viz.metrics import plot_class_ap, plot_conditional_matrix

    rng = np.random.default_rng(4)
    scores, labels = random_videos(rng, num_videos=3, num_classes=5, length=(10, 20))
    for y in labels:
        y[:, 4] = 0  # a class without positive is left out
    fm = frame_map(scores, labels)
    names = ["walk", "run", "sit", "jump", "none"]
    fig = plot_class_ap(fm, names, top=3)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == pytest.approx(sorted(100 * fm.per_class[:4], reverse=True)[:3])
    assert "1 without positive" in ax.get_title()
    ac = action_conditional(scores, labels, tau=0)
    fig = plot_conditional_matrix(ac, names, which="ap")
    shown = fig.axes[0].images[0].get_array()
    assert shown.mask[~ac.kept].all() and np.allclose(shown[ac.kept], 100 * ac.ap[ac.kept])
    with pytest.raises(ValueError, match="which"):
        plot_conditional_matrix(ac, which="f1")
    with pytest.raises(ValueError, match="class_names: expected 5 names"):
        plot_class_ap(fm, names[:2])
