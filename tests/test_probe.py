"""Ridge probes (refdense.experiments.probe, ``refdense probe``): pooling, penalty choice, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from refdense.cli import main
from refdense.experiments.probe import (
    LAMBDAS,
    POOL_RADII,
    POOLED_WIDTH,
    ProbeVideo,
    _frame_sample,
    pooled_features,
    probe_dataset,
    ridge_probe,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_pooled_features_are_the_one_sided_means_clipped_at_the_ends():
    x = torch.arange(20 * 3, dtype=torch.float64).reshape(20, 3) ** 1.5
    out = pooled_features(x)
    assert out.shape == (20, 3 * POOLED_WIDTH)
    for t in (0, 5, 19):
        expected = [x[t]]
        for r in POOL_RADII:
            expected += [x[max(t - r, 0) : t + 1].mean(0), x[t : t + r + 1].mean(0)]
        torch.testing.assert_close(out[t], torch.cat(expected))


def test_the_probe_of_the_tiny_preset_beats_constant_scores(tiny_dataset):
    result = probe_dataset(tiny_dataset)
    assert [r.name for r in result.readouts] == [
        f"{s}/{p}" for s in ("video", "image", "both") for p in ("frame", "pooled")
    ]
    assert result.prior_map < 15
    for readout in result.readouts:
        assert readout.test_map > result.prior_map + 25, readout
        assert readout.lam in LAMBDAS and readout.validation[readout.lam] == max(readout.validation.values())
    both = result.readout("both", "frame").test_map
    assert both > max(result.readout(s, "frame").test_map for s in ("video", "image"))


def _blocks(rng, videos, length, directions, run, signal):
    """Videos whose labels are constant over runs of ``run`` segments and whose video features
    show the active class (one of the (C, D) ``directions``) faintly in each segment under strong
    noise: the class is readable from a mean over time. The image stream is noise."""
    out = []
    classes, dim = directions.shape
    for _ in range(videos):
        active = np.repeat(rng.integers(0, classes, length // run), run)
        labels = np.eye(classes, dtype=np.uint8)[active]
        video = signal * directions[active] + rng.standard_normal((length, dim))
        out.append(ProbeVideo(video, rng.standard_normal((length, dim)), labels))
    return out


def test_pooling_helps_where_the_evidence_must_be_averaged_over_time():
    rng = np.random.default_rng(0)
    directions = rng.standard_normal((4, 8))
    train, validation, test = (_blocks(rng, n, 128, directions, 32, 0.2) for n in (12, 4, 4))
    result = ridge_probe(train, validation, test)
    frame, pooled = result.readout("video", "frame").test_map, result.readout("video", "pooled").test_map
    assert pooled > frame + 20, (frame, pooled)
    # the image stream is pure noise here: near the prior whatever the pooling
    assert result.readout("image", "pooled").test_map < result.prior_map + 10


def test_the_penalty_is_chosen_on_the_validation_split_not_on_the_test_split():
    rng = np.random.default_rng(1)
    directions = rng.standard_normal((3, 12))
    train, validation, test = (_blocks(rng, n, 64, directions, 8, 0.3) for n in (3, 6, 6))
    honest = ridge_probe(train, validation, test).readout("both", "pooled")
    # Validating on the training videos themselves rewards fitting them: the smallest penalty wins,
    # and its test mAP is the worse one (the split passed as validation decides, not the test split).
    overfit = ridge_probe(train, train, test).readout("both", "pooled")
    assert overfit.lam == LAMBDAS[0] and honest.lam > overfit.lam
    assert honest.test_map > overfit.test_map + 5, (honest, overfit)


def test_refdense_probe_writes_json_and_markdown(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "probe"
    assert main(["probe", str(tiny_dataset), "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "probe.json").read_text())
    assert set(printed["readouts"]) == {
        f"{s}/{p}" for s in ("video", "image", "both") for p in ("frame", "pooled")
    }
    assert printed["readouts"]["both/pooled"]["test_map"] > printed["prior_map"]
    assert "| both/pooled |" in (out / "probe.md").read_text()


def test_refdense_probe_names_what_it_cannot_use(tiny_dataset, tmp_path, capsys):
    assert main(["probe", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert all(
        piece in err for piece in ("refdense probe: error: ", "data.dataset", str(tmp_path / "nowhere"))
    ), err
    assert main(["probe", str(tiny_dataset), "--validation-fraction", "0"]) == 2
    err = capsys.readouterr().err
    assert all(piece in err for piece in ("refdense probe: error: ", "validation_fraction", "found 0.0")), err


def test_a_frame_sample_takes_that_many_distinct_frames_across_the_videos():
    videos = [ProbeVideo(np.zeros((t, 2)), np.zeros((t, 2)), np.zeros((t, 3))) for t in (5, 40, 1, 17)]
    rows = _frame_sample(videos, 30)
    assert rows is not None and sum(len(r) for r in rows) == 30
    for r, video in zip(rows, videos, strict=True):
        assert np.all(np.diff(r) > 0) and (len(r) == 0 or 0 <= r[0] and r[-1] < video.labels.shape[0])
    assert all(np.array_equal(a, b) for a, b in zip(rows, _frame_sample(videos, 30), strict=True))
    assert _frame_sample(videos, 63) is None and _frame_sample(videos, None) is None
    with pytest.raises(ValueError, match="train_frames.*0"):
        _frame_sample(videos, 0)


def test_the_probe_fits_on_a_frame_sample_when_asked(tiny_dataset, capsys):
    full = probe_dataset(tiny_dataset)
    assert not full.sampled
    assert probe_dataset(tiny_dataset, train_frames=full.train_frames).to_dict() == full.to_dict()
    half = probe_dataset(tiny_dataset, train_frames=full.train_frames // 2)
    assert half.sampled and half.train_frames == full.train_frames // 2
    assert (half.validation_frames, half.test_frames) == (full.validation_frames, full.test_frames)
    assert half.readout("both", "pooled").test_map != full.readout("both", "pooled").test_map
    assert half.readout("both", "pooled").test_map > half.prior_map + 25
    assert main(["probe", str(tiny_dataset), "--train-frames", str(full.train_frames // 2), "--json"]) == 0
    frames = json.loads(capsys.readouterr().out)["frames"]
    assert frames["training"] == full.train_frames // 2 and frames["training_sampled"] is True
