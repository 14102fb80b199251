"""The fair variants of issue 23 (Table 3's single network of matched size with each loss, Table 4 with
CoLV kept on the actions) and the composed readout ``P_ent * P_mot`` of RefDense's auxiliary heads,
with the mAP over the held-out classes of each readout."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from refdense import synth
from refdense.data import DenseActionDataset, read_info
from refdense.experiments.ablate import (
    ABLATIONS,
    BASE,
    MATCH_TOLERANCE,
    VARIANTS,
    ablation_markdown,
    parameter_counts,
    run_metrics,
)
from refdense.metrics import frame_map, read_predictions, write_predictions
from refdense.models import ModelConfig, RefDense, build_model
from refdense.models.inference import compose, composed_readout, predict_full_videos
from refdense.synth import Dials
from refdense.train import train
from refdense.train.checkpoint import load_checkpoint
from refdense.train.components import build_detector
from refdense.train.config import diff, load_config
from refdense.train.evaluate import readout_path, readout_unavailable

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_MODEL = ["model.dim=16", "model.heads=2", "model.head_dim=8", "model.strides=[2, 4]", "model.max_len=16",
              "model.local_hidden=32", "model.position=relative"]
SMALL = ["data.window=16", "data.validation_fraction=0.125", "data.text_encoder=random", *TINY_MODEL,
         "optim.batch_size=4", "optim.lr=3e-3", "optim.epochs=1", "run.device=cpu"]


def variant(name, *overrides):
    return load_config(BASE, ABLATIONS / f"{name}.yaml", overrides=list(overrides))


# --- Table 3: one network of matched size, with each loss ---------------------------------------


def test_the_single_networks_have_the_parameter_count_of_the_full_refdense_of_the_base_recipe():
    info = synth.dataset_info("default")
    names = ("full", "full_asl", "single_bce", "single_asl")
    counts = parameter_counts({name: variant(name) for name in names}, info)
    assert counts["full_asl"] == counts["full"]  # the loss has no parameters in the model
    for name in ("single_bce", "single_asl"):
        reference = next(v.matches for v in VARIANTS if v.name == name)
        assert abs(counts[name] / counts[reference] - 1) <= MATCH_TOLERANCE, (name, counts)
    # at the base recipe's width the same network is far smaller: the test would catch a stale width
    base = load_config(BASE).model
    narrow = dataclasses.replace(variant("single_bce"), model=dataclasses.replace(
        variant("single_bce").model, dim=base.dim, head_dim=base.head_dim, local_hidden=base.local_hidden))
    small = parameter_counts({"narrow": narrow}, info)["narrow"]
    assert abs(small / counts["full"] - 1) > MATCH_TOLERANCE
    assert small == parameter_counts({"motion_only": variant("motion_only")}, info)["motion_only"]


def test_counting_parameters_on_the_meta_device_draws_nothing():
    state = torch.get_rng_state()
    parameter_counts({"full": variant("full")}, synth.dataset_info("default"))
    assert torch.equal(torch.get_rng_state(), state)


def test_the_four_cells_of_architecture_by_loss():
    cells = {name: variant(name) for name in ("full", "full_asl", "single_bce", "single_asl")}
    assert {n: (c.model.arch, c.loss.classification) for n, c in cells.items()} == {
        "full": ("refdense", "bce"), "full_asl": ("refdense", "asymmetric"),
        "single_bce": ("motion_only", "bce"), "single_asl": ("motion_only", "asymmetric")}
    assert diff(cells["full"], cells["full_asl"]) == ["loss.classification"]
    assert diff(cells["single_bce"], cells["single_asl"]) == ["loss.action_heads", "loss.classification"]
    # single_asl is PAT's published recipe (pat.yaml) on the matched width
    assert diff(variant("pat"), cells["single_asl"]) == ["model.arch", "model.dim", "model.head_dim",
                                                          "model.local_hidden"]
    assert cells["single_bce"].model.stream == "concat" and not cells["single_bce"].loss.active_colv_sets()


def test_matched_notes_report_the_counts_and_the_same_loss_gain():
    runs = {"full_asl": [{"mAP": 60.0, "mAP_ac": 1.0, "F1_ac": 1.0}, {"mAP": 62.0, "mAP_ac": 1.0, "F1_ac": 1.0}],
            "single_asl": [{"mAP": 57.0, "mAP_ac": 1.0, "F1_ac": 1.0}, {"mAP": 58.0, "mAP_ac": 1.0, "F1_ac": 1.0}]}
    text = ablation_markdown(runs, "default", (0, 1), BASE, [], parameters={"full_asl": 1000, "single_asl": 990})
    assert "`single_asl` has 990 parameters, `full_asl` 1,000 (-1.0%): matched (within 2%)." in text
    assert "Same loss, `full_asl` minus `single_asl`, mAP: +3.50" in text
    unmatched = ablation_markdown(runs, "default", (0, 1), BASE, [], parameters={"full_asl": 1000, "single_asl": 700})
    assert "⚠ NOT matched (more than 2% apart)" in unmatched and "matched (within" not in unmatched


# --- Table 4 with CoLV on the actions -----------------------------------------------------------


def test_no_sub_labels_action_colv_keeps_colv_on_the_actions_only():
    without, kept = variant("no_sub_labels"), variant("no_sub_labels_action_colv")
    assert diff(without, kept) == ["loss.colv_sets"]
    assert without.loss.active_colv_sets() == [] and kept.loss.active_colv_sets() == ["action"]
    assert not kept.model.entity_head and not kept.model.motion_head
    assert [v.table for v in VARIANTS if v.name.startswith("no_sub_labels")] == ["4", "4"]


# --- the composed readout -----------------------------------------------------------------------


DECOMPOSITION = ((0, 1), (2, 0), (1, None), (None, 2), (None, None))  # composite, entity-only, motion-only, none


def tiny_refdense():
    torch.manual_seed(0)
    cfg = ModelConfig(dim=16, heads=2, head_dim=8, blocks=1, strides=[2, 4], max_len=16, local_hidden=32,
                      position="relative")
    return build_model(cfg, video_dim=6, image_dim=5, num_classes=5, num_entities=3, num_motions=3)


def test_the_composed_score_is_the_product_of_the_heads_computed_by_hand():
    model = tiny_refdense().eval()
    video, image = torch.randn(2, 12, 6), torch.randn(2, 12, 5)
    mask = torch.ones(2, 12, dtype=torch.bool)
    with torch.no_grad():
        scores = composed_readout(DECOMPOSITION)(model, video, image, mask)
        output = model(video, image, mask, auxiliary=True)
    entity, motion = output.entity_logits.sigmoid(), output.motion_logits.sigmoid()
    by_hand = torch.stack([entity[..., 0] * motion[..., 1], entity[..., 2] * motion[..., 0], entity[..., 1],
                           motion[..., 2], torch.ones_like(entity[..., 0])], dim=-1)
    torch.testing.assert_close(scores, by_hand, rtol=0, atol=0)
    # whole videos of any length through predict_full_videos: the same product, video by video
    videos = [(video[0], image[0]), (video[1, :7], image[1, :7])]
    whole = predict_full_videos(model, videos, readout=composed_readout(DECOMPOSITION))
    with torch.no_grad():
        alone = model(video[1:, :7], image[1:, :7], auxiliary=True)
    expected = compose(alone.entity_logits.sigmoid(), alone.motion_logits.sigmoid(), DECOMPOSITION)[0]
    torch.testing.assert_close(whole[1], expected, rtol=1e-5, atol=1e-6)
    assert whole[0].shape == (12, 5)


def test_the_composed_readout_refuses_a_model_without_both_heads():
    torch.manual_seed(0)
    cfg = ModelConfig(dim=16, heads=2, head_dim=8, blocks=1, strides=[2, 4], max_len=16, local_hidden=32,
                      position="relative", motion_head=False)
    model = RefDense(cfg, video_dim=6, image_dim=5, num_classes=5, num_entities=3, num_motions=3).eval()
    with pytest.raises(ValueError, match="needs the entity and the motion head.*motion logits None"):
        composed_readout(DECOMPOSITION)(model, torch.randn(1, 4, 6), torch.randn(1, 4, 5),
                                        torch.ones(1, 4, dtype=torch.bool))


def test_which_runs_have_a_composed_readout():
    assert readout_unavailable(variant("full"), "composed") is None
    assert readout_unavailable(variant("full_asl"), "composed") is None
    assert "model.arch pat" in readout_unavailable(variant("pat"), "composed")
    assert "model.entity_head: false" in readout_unavailable(variant("no_entity_labels"), "composed")
    assert "model.motion_head: false" in readout_unavailable(variant("no_motion_labels"), "composed")
    assert "not trained" in readout_unavailable(variant("full", "loss.use_motion_labels=false"), "composed")
    assert "not trained" in readout_unavailable(variant("full", "loss.entity_weight=0"), "composed")


def test_a_run_writes_the_composed_readout_beside_its_predictions(writable_tiny_dataset, tmp_path):
    config = variant("full", f"data.dataset={writable_tiny_dataset}", *SMALL)
    result = train(config, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    composed = readout_path(result.predictions, "composed")
    assert composed == run / "predictions-test-composed.npz" and composed.is_file()
    saved, fused = read_predictions(composed), read_predictions(result.predictions)
    assert saved.video_ids == fused.video_ids
    assert all(np.array_equal(a, b) for a, b in zip(saved.labels, fused.labels))
    # the file holds the product of the trained model's heads, computed here by hand for one video
    model = build_detector(config.model, read_info(writable_tiny_dataset))
    model.load_state_dict(load_checkpoint(run / "checkpoints" / "best.pt")["model"])
    model.eval()
    test = DenseActionDataset(writable_tiny_dataset, "testing", train=False, validation_fraction=0.125, seed=0)
    item = test[0]
    with torch.no_grad():
        output = model(torch.as_tensor(item["video"]).float()[None], torch.as_tensor(item["image"]).float()[None],
                       auxiliary=True)
    entity, motion = output.entity_logits[0].sigmoid(), output.motion_logits[0].sigmoid()
    decomposition = read_info(writable_tiny_dataset).decomposition
    by_hand = np.stack([(entity[:, e] if e is not None else 1) * (motion[:, m] if m is not None else 1)
                        for e, m in decomposition], axis=-1)
    index = saved.video_ids.index(item["video_id"])
    np.testing.assert_allclose(saved.scores[index], by_hand, rtol=1e-5, atol=1e-6)
    results = json.loads((run / "results.json").read_text())
    assert results["composed"]["predictions"] == composed.name
    assert results["composed"]["test"] == result.composed.to_dict()
    assert results["composed"]["test"]["frame_map"] == pytest.approx(
        100 * frame_map(saved.scores, saved.labels).map_all)
    assert f"mAP {100 * result.composed.frame_map.map_all:.2f}" in (run / "results.md").read_text()
    assert run_metrics(result.predictions)["mAP_composed"] == pytest.approx(results["composed"]["test"]["frame_map"])
    # the motion head's own probabilities, on the motion labels of the same video
    motion_file = readout_path(result.predictions, "motion")
    assert motion_file == run / "predictions-test-motion.npz"
    heads = read_predictions(motion_file)
    np.testing.assert_allclose(heads.scores[index], motion.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(heads.labels[index], item["motion_labels"])
    assert results["motion"]["test"]["frame_map"] == pytest.approx(100 * frame_map(heads.scores, heads.labels).map_all)
    assert run_metrics(result.predictions)["mAP_motion"] == pytest.approx(results["motion"]["test"]["frame_map"])


def test_a_run_without_the_sub_heads_writes_no_composed_file_and_says_why(writable_tiny_dataset, tmp_path):
    config = variant("no_sub_labels", f"data.dataset={writable_tiny_dataset}", *SMALL)
    result = train(config, tmp_path / "run", progress=False)
    assert result.composed is None and not readout_path(result.predictions, "composed").exists()
    assert not list((tmp_path / "run").glob("*composed*"))
    reason = "the entity head is off (model.entity_head: false)"
    assert json.loads((tmp_path / "run" / "results.json").read_text())["composed"] == {"unavailable": reason}
    assert result.motion is None and not readout_path(result.predictions, "motion").exists()
    assert json.loads((tmp_path / "run" / "results.json").read_text())["motion"] == {
        "unavailable": "the motion head is off (model.motion_head: false)"
    }
    assert "mAP_motion" not in run_metrics(result.predictions)
    assert f"No composed readout (P_ent x P_mot of the auxiliary heads): {reason}." in (
        tmp_path / "run" / "results.md").read_text()
    assert "mAP_composed" not in run_metrics(result.predictions)


# --- held-out classes ---------------------------------------------------------------------------


def test_the_held_out_classes_are_those_the_generator_recorded():
    held = synth.dataset_info("default", 0, Dials(held_out=0.2)).held_out_classes
    recorded = synth.dataset_info("default", 0, Dials(held_out=0.2)).dials["held_out_classes"]
    assert held == tuple(recorded) and len(held) > 0
    assert synth.dataset_info("default").held_out_classes == ()


def test_the_held_out_map_is_over_exactly_those_classes_for_both_readouts(tmp_path):
    rng = np.random.default_rng(0)
    labels = [(rng.random((40, 6)) < 0.3).astype(np.uint8) for _ in range(3)]
    labels[0][:, 5] = labels[1][:, 5] = labels[2][:, 5] = 0  # class 5: no positive test frame
    fused = [rng.random((40, 6)).astype(np.float32) for _ in range(3)]
    signal = np.array([0.1, 0.6, 0.2, 0.5, 0.3, 0.4])  # of each class in the composed scores
    composed = [(y * signal + rng.random((40, 6)) * 0.6).astype(np.float32) / 1.2 for y in labels]
    path = tmp_path / "predictions-test.npz"
    write_predictions(path, fused, labels, ["a", "b", "c"])
    write_predictions(readout_path(path, "composed"), composed, labels, ["a", "b", "c"])
    held = (1, 3, 5)
    values = run_metrics(path, held_out_classes=held)
    for key, scores in (("mAP_held_out", fused), ("mAP_composed_held_out", composed)):
        per_class = frame_map(scores, labels).per_class
        assert values[key] == pytest.approx(100 * np.mean(per_class[[1, 3]]))  # class 5 has no positive
        assert values[key] != pytest.approx(100 * np.mean(per_class[[0, 2, 4]]))
    assert values["mAP_composed"] == pytest.approx(100 * frame_map(composed, labels).map_all)
    assert values["mAP_composed_held_out"] > values["mAP_held_out"]
    assert "mAP_held_out" not in run_metrics(path)
    assert np.isnan(run_metrics(path, held_out_classes=(5,))["mAP_held_out"])


def test_a_run_on_held_out_compositions_reports_both_readouts_on_those_classes(tmp_path):
    folder = synth.generate("tiny", tmp_path / "held", dials=Dials(held_out=0.3))
    held = read_info(folder).held_out_classes
    assert len(held) == 3
    result = train(variant("full", f"data.dataset={folder}", *SMALL), tmp_path / "run", progress=False)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["held_out_classes"] == list(held)
    maps = results["held_out_map"]
    assert maps["action head"] == pytest.approx(100 * result.test.frame_map.map_over(held))
    assert maps["composed"] == pytest.approx(100 * result.composed.frame_map.map_over(held))
    assert f"Held-out classes ({', '.join(map(str, held))}" in (tmp_path / "run" / "results.md").read_text()
    metrics = run_metrics(result.predictions, held_out_classes=held)
    assert metrics["mAP_held_out"] == pytest.approx(maps["action head"])
    assert metrics["mAP_composed_held_out"] == pytest.approx(maps["composed"])


def test_ablate_trains_the_new_variants_and_reports_their_parameters(writable_tiny_dataset, tmp_path):
    from refdense.experiments.ablate import ablate

    names = ("full", "full_asl", "single_asl", "no_sub_labels_action_colv")
    overrides = [o for o in SMALL if not o.startswith("optim.epochs")]
    report = ablate(str(writable_tiny_dataset), tmp_path / "ablations", seeds=(0,), epochs=1, variants=names,
                    overrides=overrides, progress=False)
    saved = json.loads((tmp_path / "ablations" / "ablations.json").read_text())
    assert set(saved["runs"]) == set(names) and set(saved["parameters"]) == set(names)
    assert saved["parameters"]["full_asl"] == saved["parameters"]["full"]
    # the overrides narrow RefDense and the single network alike to dim 16: the files' width no longer matches
    assert saved["parameters"]["single_asl"] < (1 - MATCH_TOLERANCE) * saved["parameters"]["full_asl"]
    text = report.read_text()
    assert "`single_asl` has" in text and "⚠ NOT matched" in text and "Same loss, `full_asl` minus `single_asl`" in text
    assert all("mAP_composed" in saved["runs"][n][0] for n in ("full", "full_asl"))
    assert all("mAP_composed" not in saved["runs"][n][0] for n in ("single_asl", "no_sub_labels_action_colv"))
    terms = json.loads((tmp_path / "ablations" / "no_sub_labels_action_colv" / "seed0" / "metrics.jsonl")
                       .read_text().splitlines()[0])["train"]
    assert set(terms) == {"loss", "bce_action", "colv_action"}
    assert "without entity and motion labels, CoLV on actions" in text


def test_the_table_reports_the_composed_and_held_out_readouts_of_the_runs_that_have_them():
    runs = {"full": [{"mAP": 60.0, "mAP_ac": 1.0, "F1_ac": 1.0, "mAP_composed": 55.0, "mAP_held_out": 20.0,
                      "mAP_composed_held_out": 30.0},
                     {"mAP": 62.0, "mAP_ac": 1.0, "F1_ac": 1.0, "mAP_composed": 57.0, "mAP_held_out": 22.0,
                      "mAP_composed_held_out": 34.0}],
            "pat": [{"mAP": 58.0, "mAP_ac": 1.0, "F1_ac": 1.0, "mAP_held_out": 10.0},
                    {"mAP": 59.0, "mAP_ac": 1.0, "F1_ac": 1.0, "mAP_held_out": 12.0}]}
    text = ablation_markdown(runs, "default", (0, 1), BASE, [])
    assert "mAP, composed readout P_ent x P_mot (evaluation only): `full` 56.00 ± 1.41." in text
    assert "mAP, held-out classes, action head: `full` 21.00 ± 1.41, `pat` 11.00 ± 1.41." in text
    assert "mAP, held-out classes, composed readout: `full` 32.00 ± 2.83." in text
    assert "composed" not in ablation_markdown({"pat": runs["pat"]}, "default", (0, 1), BASE, [])


def test_an_unknown_readout_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="readout: expected one of composed, motion, found 'entity'"):
        readout_path(tmp_path / "predictions-test.npz", "entity")
    with pytest.raises(ValueError, match="found 'fused'"):
        readout_unavailable(variant("full"), "fused")


def test_which_runs_have_a_motion_readout():
    assert readout_unavailable(variant("full"), "motion") is None
    assert readout_unavailable(variant("no_cross_attention"), "motion") is None  # the mechanism check's pair
    assert readout_unavailable(variant("no_entity_labels"), "motion") is None
    assert "model.motion_head: false" in readout_unavailable(variant("no_motion_labels"), "motion")
    assert "model.arch pat" in readout_unavailable(variant("pat"), "motion")
