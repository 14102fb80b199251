"""``refdense metrics`` on npz files written with plain numpy."""

from __future__ import annotations

import json

import numpy as np

from refdense.cli import main
from refdense.metrics import paper_table


def _videos(seed=0, num_videos=4, num_classes=5):
    rng = np.random.default_rng(seed)
    scores, labels = [], []
    for _ in range(num_videos):
        t = int(rng.integers(10, 40))
        y = (rng.random((t, num_classes)) < 0.3).astype(np.float32)
        scores.append(np.clip(rng.random((t, num_classes)) * 0.7 + 0.3 * y, 0, 1).astype(np.float32))
        labels.append(y)
    return scores, labels


def _concatenated(scores, labels, **more):
    """The arrays of a predictions file: the videos one after the other, and their lengths."""
    return dict(scores=np.concatenate(scores), labels=np.concatenate(labels),
                lengths=np.array([len(s) for s in scores]), **more)


def test_json_equals_library(tmp_path, capsys):
    scores, labels = _videos()
    path = tmp_path / "pred.npz"
    np.savez(path, **_concatenated(scores, labels))
    assert main(["metrics", str(path), "--json", "--taus", "0", "3", "20", "--threshold", "0.4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = paper_table(scores, labels, taus=(0, 3, 20), threshold=0.4).to_dict()
    assert list(printed) == ["frame_map", "frame_map_present", "tau_0", "tau_3", "tau_20"]
    assert printed == json.loads(json.dumps(expected))  # the same numbers, to the last digit
    assert printed["tau_0"]["pairs"] > 0 and 0 < printed["frame_map"] < 100


def test_dense_form_and_text_table(tmp_path, capsys):
    scores, labels = _videos(seed=1)
    lengths = np.array([len(s) for s in scores])
    dense_s = np.zeros((len(scores), lengths.max(), 5), np.float32)
    dense_y = np.zeros_like(dense_s)
    for v, (s, y) in enumerate(zip(scores, labels)):
        dense_s[v, : len(s)], dense_y[v, : len(y)] = s, y
    path = tmp_path / "dense.npz"
    np.savez(path, scores=dense_s, labels=dense_y, lengths=lengths)
    assert main(["metrics", str(path)]) == 0
    out = capsys.readouterr().out
    table = paper_table(scores, labels)
    assert f"{100 * table.frame_map.map_all:.2f}" in out
    assert f"{100 * table.conditional[20].F1_ac:.2f}" in out
    assert "mAP_ac (tau=20)" in out and f"{int(lengths.sum())} segments" in out


def test_user_errors_are_reported_without_traceback(tmp_path, capsys):
    scores, labels = _videos(seed=2)
    logits = [s * 10 - 5 for s in scores]
    path = tmp_path / "logits.npz"
    np.savez(path, **_concatenated(logits, labels, video_ids=np.array(["a", "b", "c", "d"])))
    assert main(["metrics", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refdense metrics: error:") and "logits.npz: video 'a' (#0)" in err and "logits" in err
    assert main(["metrics", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refdense metrics: error: ") and f"{tmp_path / 'missing.npz'}: no such" in err, err
    good = tmp_path / "good.npz"
    np.savez(good, **_concatenated(scores, labels))
    assert main(["metrics", str(good), "--taus", "-1"]) == 2
    err = capsys.readouterr().err
    assert all(piece in err for piece in ("refdense metrics: error: ", "tau", "integer >= 0", "found -1")), err
