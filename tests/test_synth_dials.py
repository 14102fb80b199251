"""The mechanism dials of the synthetic generator: off they change no byte; on, each changes what it
names and nothing else (data/README.md, "Mechanism dials")."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from refdense import synth
from refdense.cli import main
from refdense.data import (DatasetInfo, VideoAnnotation, clean_instances, instance_span, read_features, read_info,
                           read_labels, segment_times, write_annotations, write_info)
from refdense.synth import Dials, default_dataset
from refdense.threads import torch_threads

FIXTURES = Path(__file__).parent / "fixtures"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _features(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    info = read_info(folder)
    return read_features(folder / "features.h5", read_labels(folder).annotations, info)


def _digests(preset_name: str, seed: int, dials: Dials, tmp_path: Path) -> dict[str, str]:
    """The CPU-independent parts of a dataset: its two JSON files, the prototypes, and every video's
    evidence and background (exact float32 arithmetic; the features add noise and one matmul)."""
    preset = synth.PRESETS[preset_name]
    world = synth.world.build_world(preset, seed, dials)
    info, annotations, lengths = synth.generate_annotations(preset, seed, dials)
    write_info(tmp_path, info)
    write_annotations(tmp_path / "annotations.json", annotations)
    found = {name: _sha((tmp_path / name).read_bytes()) for name in ("dataset.json", "annotations.json")}
    video, image = synth.features._loadings(preset, world, seed)
    found["video_loadings"], found["image_loadings"] = _sha(video.tobytes()), _sha(image.tobytes())
    evidence = hashlib.sha256()
    for video_id, entry in annotations.items():
        rng = np.random.default_rng([seed, 3, int(video_id[1:])])
        video_evidence = np.zeros((lengths[video_id], video.shape[0]), np.float32)
        image_evidence = np.zeros((lengths[video_id], image.shape[0]), np.float32)
        synth.features._evidence(rng, preset, world, entry, video_evidence, image_evidence)
        evidence.update(video_evidence.tobytes())
        evidence.update(image_evidence.tobytes())
        evidence.update(rng.standard_normal(preset.video_dim, dtype=np.float32).tobytes())
        evidence.update(rng.standard_normal(preset.image_dim, dtype=np.float32).tobytes())
    found["evidence_and_background"] = evidence.hexdigest()
    return found


# ---------------------------------------------------------------------------------------- dials off


@pytest.mark.parametrize("key", ["tiny/0", "tiny/1", "default/0", "default/1"])
@pytest.mark.parametrize("dials", [Dials(), Dials(coupling=0.0, rare_share=0.0, text_alignment=0.0, train_videos=None,
                                                held_out=0.0, held_out_k=0, entity_gate=0, entangle=0.0,
                                                text_prior=0.0)],
                         ids=["implicit", "explicit"])
def test_dials_at_zero_reproduce_the_generator_before_the_dials(key, dials, tmp_path):
    # tests/fixtures/synth_generator_v2_digests.json was written by the generator of version 2
    # before the dials existed.
    recorded = json.loads((FIXTURES / "synth_generator_v2_digests.json").read_text())[key]
    preset_name, seed = key.split("/")
    assert _digests(preset_name, int(seed), dials, tmp_path) == recorded


def test_train_videos_equal_to_the_presets_is_the_preset(tiny_dataset, tmp_path):
    same = synth.generate("tiny", tmp_path / "same", dials=Dials(train_videos=32))
    for name in ("dataset.json", "annotations.json", "features.h5"):
        assert (same / name).read_bytes() == (tiny_dataset / name).read_bytes(), name
    assert read_info(same).dials is None


def test_dials_are_checked_and_named():
    for bad, message in ((dict(coupling=1.5), r"Dials.coupling .*\[0, 1\].*found 1.5"),
                         (dict(rare_share=1.0), r"Dials.rare_share .*\[0, 1\).*found 1.0"),
                         (dict(text_alignment=-0.1), r"Dials.text_alignment .*found -0.1"),
                         (dict(rare_cap=-1), r"Dials.rare_cap .*integer >= 0.*found -1"),
                         (dict(train_videos=0), r"Dials.train_videos .*positive integer or None.*found 0")):
        with pytest.raises(ValueError, match=message):
            Dials(**bad)
    assert Dials(coupling=0.5, train_videos=60).slug() == "-coupling0.5-train_videos60"
    assert Dials(coupling=0.5, rare_share=0.25).arguments() == " --coupling 0.5 --rare-share 0.25"
    assert Dials().slug() == Dials().arguments() == ""
    for bad, message in ((dict(entangle=1.5), r"Dials.entangle .*\[0, 1\].*found 1.5"),
                         (dict(text_prior=-0.5), r"Dials.text_prior .*\[0, 1\].*found -0.5")):
        with pytest.raises(ValueError, match=message):
            Dials(**bad)
    assert Dials(entangle=1.0, text_prior=0.5).slug() == "-entangle1-text_prior0.5"
    assert Dials(entangle=1.0, text_prior=0.5).arguments() == " --entangle 1 --text-prior 0.5"
    assert Dials(entangle=0.0, text_prior=0.0).slug() == ""


# ---------------------------------------------------------------------------------------- coupling


def test_coupling_gives_each_entity_its_own_version_of_a_motion(tiny_dataset, tmp_path):
    preset = synth.PRESETS["tiny"]
    plain = synth.world.build_world(preset, 0)
    video, image = synth.features._loadings(preset, plain, 0)
    families = len(plain.tempo_family)
    rows = families * synth.PHASES
    for coupling in (0.5, 1.0):
        world = synth.world.build_world(preset, 0, Dials(coupling=coupling))
        coupled_video, coupled_image = synth.features._loadings(preset, world, 0)
        np.testing.assert_array_equal(coupled_image, image)
        np.testing.assert_array_equal(coupled_video[: len(video)], video)  # shared phases and entity traces
        versions = coupled_video[len(video):].reshape(preset.entities, rows, preset.video_dim)
        assert versions.shape[0] * versions.shape[1] == len(coupled_video) - len(video)
        # two entities' versions of one phase have correlation 1 - coupling (sampled over all rows)
        pairs = [(a, b) for a in range(preset.entities) for b in range(a + 1, preset.entities)]
        correlation = np.mean([np.corrcoef(versions[a, r], versions[b, r])[0, 1]
                               for a, b in pairs for r in range(rows)])
        assert correlation == pytest.approx(1 - coupling, abs=0.12)
        assert np.mean(versions ** 2) == pytest.approx(1.0, abs=0.15)  # the norm is kept
        assert not np.isclose(versions, video[:rows][None]).all(-1).any()  # no entity keeps the shared row

    # features: the annotations and the image stream are untouched; a video's motion stream
    # changes exactly when it has a composite action (an entity acted on by a motion)
    out = synth.generate("tiny", tmp_path / "coupled", dials=Dials(coupling=1.0))
    assert (out / "annotations.json").read_bytes() == (tiny_dataset / "annotations.json").read_bytes()
    info = read_info(out)
    assert info.dials["coupling"] == 1.0 and "--coupling 1 " in info.source
    before, after = _features(tiny_dataset), _features(out)
    annotations = read_labels(out).annotations
    changed = 0
    for video_id, entry in annotations.items():
        np.testing.assert_array_equal(after[video_id][1], before[video_id][1])
        composite = any(None not in info.decomposition[c] for c, start, end in entry.actions)
        same = np.array_equal(after[video_id][0], before[video_id][0])
        assert same != composite, video_id
        changed += not same
    assert changed > 10


def test_coupled_evidence_goes_to_the_entity_acted_on():
    preset = synth.PRESETS["tiny"]
    world = synth.world.build_world(preset, 0, Dials(coupling=1.0))
    info = world.info
    label = next(c for c, (e, m) in enumerate(info.decomposition) if e is not None and m is not None)
    entity = info.decomposition[label][0]
    entry = VideoAnnotation("training", 10.0, ((label, 1.0, 9.0),))
    families = len(world.tempo_family)
    phases = families * synth.PHASES
    video = np.zeros((30, phases + info.num_entities + info.num_entities * phases), np.float32)
    image = np.zeros((30, info.num_entities + families), np.float32)
    synth.features._evidence(np.random.default_rng(0), preset, world, entry, video, image)
    coupled = video[:, phases + info.num_entities:].reshape(30, info.num_entities, phases)
    assert coupled[:, entity].sum() > 0
    assert not np.delete(coupled, entity, axis=1).any()  # other entities' versions stay empty


# ---------------------------------------------------------------------------------------- rare_share


def _instances(annotations, subset: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for entry in annotations.values():
        if entry.subset == subset:
            for c, _, _ in entry.actions:
                counts[c] = counts.get(c, 0) + 1
    return counts


@pytest.mark.parametrize("share, cap", [(0.3, 5), (0.5, 2), (0.5, 0)])
def test_rare_share_caps_the_training_instances_of_rare_classes_only(share, cap):
    _, plain, plain_lengths = synth.generate_annotations("default", 0)
    info, rare, lengths = synth.generate_annotations("default", 0, Dials(rare_share=share, rare_cap=cap))
    assert lengths == plain_lengths
    composite = [c for c, (e, m) in enumerate(info.decomposition) if e is not None and m is not None]
    chosen = info.dials["rare_classes"]
    assert len(chosen) == round(share * len(composite)) and set(chosen) <= set(composite)
    assert info.dials["rare_cap"] == cap and info.dials["rare_share"] == share
    for c in chosen:  # entity and motion stay in a class that is not rare
        for part in (0, 1):
            assert any(k not in chosen and pair[part] == info.decomposition[c][part]
                       for k, pair in enumerate(info.decomposition))
    before, after = _instances(plain, "training"), _instances(rare, "training")
    for c in range(info.num_classes):
        assert after.get(c, 0) == (min(cap, before.get(c, 0)) if c in chosen else before.get(c, 0)), c
    assert _instances(rare, "testing") == _instances(plain, "testing")
    for video_id, entry in rare.items():
        if entry.subset == "testing":
            assert entry == plain[video_id]
        else:  # the same actions, less the dropped rare instances, in the same order
            kept = iter(entry.actions)
            expected = next(kept, None)
            for action in plain[video_id].actions:
                if action == expected:
                    expected = next(kept, None)
                else:
                    assert action[0] in chosen
            assert expected is None


def test_rare_share_leaves_the_features_of_untouched_videos(tiny_dataset, tmp_path):
    out = synth.generate("tiny", tmp_path / "rare", dials=Dials(rare_share=0.3, rare_cap=1))
    rare, plain = read_labels(out).annotations, read_labels(tiny_dataset).annotations
    before, after = _features(tiny_dataset), _features(out)
    untouched = [v for v in rare if rare[v] == plain[v]]
    assert len(untouched) < len(rare) and all(rare[v].subset == "training" for v in set(rare) - set(untouched))
    for video_id in untouched:  # every test video among them
        for stream in (0, 1):
            np.testing.assert_array_equal(after[video_id][stream], before[video_id][stream])


def test_the_rare_classes_of_a_smaller_share_are_among_those_of_a_larger_one():
    for seed in range(5):  # so that a sweep can follow one set of classes from frequent to rare
        shares = [synth.dataset_info("default", seed, Dials(rare_share=r)).dials["rare_classes"] for r in (0.3, 0.6)]
        assert set(shares[0]) < set(shares[1])


def test_rare_share_beyond_what_the_decomposition_allows_is_refused():
    with pytest.raises(ValueError, match=r"dial rare_share 0.99: .*10 of 10 composite classes.* only \d+ "):
        synth.dataset_info("tiny", 0, Dials(rare_share=0.99))


# ---------------------------------------------------------------------------------------- held_out


def test_held_out_k0_leaves_no_training_or_validation_frame_of_a_held_out_class(tmp_path):
    from refdense.data import DenseActionDataset

    out = synth.generate("tiny", tmp_path / "held", dials=Dials(held_out=0.3))
    info = read_info(out)
    held = info.dials["held_out_classes"]
    assert len(held) == 3 and info.dials["held_out_k"] == 0
    for split in ("training", "validation"):
        for video in DenseActionDataset(out, split, train=False).videos:
            assert not video["labels"][:, held].any(), (split, video["video_id"])
    test = DenseActionDataset(out, "testing", train=False)
    assert sum(int(v["labels"][:, held].sum()) for v in test.videos) > 0
    # the entity and the motion of a held-out class are still seen in training, in other classes
    _, annotations, _ = synth.generate_annotations("tiny", 0, Dials(held_out=0.3))
    seen = set(_instances(annotations, "training"))
    for c in held:
        for part in (0, 1):
            assert any(k in seen and k not in held and pair[part] == info.decomposition[c][part]
                       for k, pair in enumerate(info.decomposition)), (c, part)


def test_held_out_k3_keeps_three_training_instances_and_the_test_split():
    _, plain, _ = synth.generate_annotations("default", 0)
    info, held, _ = synth.generate_annotations("default", 0, Dials(held_out=0.3, held_out_k=3))
    chosen = info.dials["held_out_classes"]
    before, after = _instances(plain, "training"), _instances(held, "training")
    assert all(before.get(c, 0) > 3 for c in chosen)  # so that the cap bites
    for c in range(info.num_classes):
        assert after.get(c, 0) == (3 if c in chosen else before.get(c, 0)), c
    assert _instances(held, "testing") == _instances(plain, "testing")


def test_held_out_classes_are_not_rare_ones():
    info = synth.dataset_info("default", 0, Dials(rare_share=0.3, held_out=0.3))
    rare, held = set(info.dials["rare_classes"]), set(info.dials["held_out_classes"])
    assert rare and held and not rare & held
    # the rare classes are the ones the rare_share dial alone draws
    assert info.dials["rare_classes"] == synth.dataset_info("default", 0, Dials(rare_share=0.3)).dials["rare_classes"]
    with pytest.raises(ValueError, match=r"Dials.held_out .*\[0, 1\).*found 1.0"):
        Dials(held_out=1.0)
    with pytest.raises(ValueError, match=r"dial held_out 0.9: .*9 of 10 composite classes.* only \d+ "):
        synth.dataset_info("tiny", 0, Dials(held_out=0.9))


# ---------------------------------------------------------------------------------------- entity_gate


def _group_rows(folder: Path, split: str, groups, stream: str):
    """Pooled features (probe's fixed pooling) of the frames where entities of exactly one group are
    acted on, and whether that group is 1."""
    import torch

    from refdense.data import DenseActionDataset
    from refdense.experiments.probe import pooled_features

    info = read_info(folder)
    onto = np.zeros((info.num_classes, 2))
    for c, (e, _) in enumerate(info.decomposition):
        if e is not None:
            onto[c, groups[e]] = 1
    features, targets = [], []
    for video in DenseActionDataset(folder, split, train=False).videos:
        acted = video["labels"] @ onto > 0
        keep = acted.sum(1) == 1
        features.append(pooled_features(torch.as_tensor(video[stream], dtype=torch.float64)).numpy()[keep])
        targets.append(acted[keep, 1])
    return np.concatenate(features), np.concatenate(targets)


def _group_auc(folder: Path, groups, stream: str) -> float:
    """Test ROC AUC of a ridge readout (penalty 1, standardised) of the entity group from ``stream``."""
    x, y = _group_rows(folder, "training", groups, stream)
    xt, yt = _group_rows(folder, "testing", groups, stream)
    mean, scale = x.mean(0), x.std(0) + 1e-9
    x, xt = (x - mean) / scale, (xt - mean) / scale
    w = np.linalg.solve(x.T @ x / len(x) + np.eye(x.shape[1]), x.T @ (y - y.mean()) / len(x))
    ranks = np.argsort(np.argsort(xt @ w)) + 1
    positive, negative = yt.sum(), (~yt).sum()
    return float((ranks[yt].sum() - positive * (positive + 1) / 2) / (positive * negative))


def test_entity_gate_hides_the_group_from_the_video_stream(tmp_path):
    groups = synth.world.build_world(synth.PRESETS["default"], 0, Dials(entity_gate=1)).entity_group
    assert sorted(groups) == [0] * 5 + [1] * 5
    plain = synth.generate("default", tmp_path / "plain")
    gated = synth.generate("default", tmp_path / "gated", dials=Dials(entity_gate=1))
    assert read_info(gated).dials["entity_groups"] == list(groups)
    # Measured on seed 0: from the video stream 0.94 without the gate, 0.72 with it (the scripts
    # keep some of the group in the class frequencies, data/README.md); from the image stream 1.00.
    assert _group_auc(plain, groups, "video") > 0.9
    assert _group_auc(gated, groups, "video") < 0.78
    assert _group_auc(gated, groups, "image") > 0.95


def test_entity_gate_reverses_the_phases_on_group_1_and_adds_long_distractors():
    preset = synth.PRESETS["default"]
    plain, gated = synth.world.build_world(preset, 0), synth.world.build_world(preset, 0, Dials(entity_gate=1))
    assert gated.info.decomposition == plain.info.decomposition
    video, image = synth.features._loadings(preset, plain, 0)
    gated_video, gated_image = synth.features._loadings(preset, gated, 0)
    np.testing.assert_array_equal(gated_image, image)
    phases = len(plain.tempo_family) * synth.PHASES
    np.testing.assert_array_equal(gated_video[:phases], video[:phases])
    assert not gated_video[phases:].any()  # no entity trace in the video stream
    _, annotations, lengths = synth.generate_annotations(preset, 0)
    changed = distracted = 0
    for video_id, entry in list(annotations.items())[:40]:
        evidence = {}
        for name, world, extra in (("plain", plain, None), ("gated", gated, None),
                                   ("distracted", gated, np.random.default_rng(1))):
            v = np.zeros((lengths[video_id], len(video)), np.float32)
            i = np.zeros((lengths[video_id], len(image)), np.float32)
            synth.features._evidence(np.random.default_rng(0), preset, world, entry, v, i, extra)
            evidence[name] = v[:, :phases]
        times = segment_times(lengths[video_id], entry.duration)
        flipped = np.zeros(lengths[video_id], bool)
        for label, start, end in clean_instances(entry.actions, entry.duration)[0]:
            e, m = plain.info.decomposition[label]
            if e is not None and m is not None and gated.entity_group[e]:
                flipped[instance_span(times, start, end, "strict")] = True
        differs = (evidence["plain"] != evidence["gated"]).any(1)
        assert not (differs & ~flipped).any(), video_id  # only the group-1 motions change
        changed += differs.any()
        distracted += (evidence["distracted"] > evidence["gated"]).any()
    assert changed > 10 and distracted > 10
    with pytest.raises(ValueError, match="Dials.entity_gate .*coupling.*found 1"):
        Dials(entity_gate=1, coupling=0.5)
    assert Dials(entity_gate=1).arguments() == " --entity-gate 1"


def test_entity_gate_from_the_command_line(tmp_path):
    out = tmp_path / "gated"
    assert main(["synth", "--preset", "tiny", "--out", str(out), "--entity-gate", "1"]) == 0
    record = read_info(out).dials
    assert record["entity_gate"] == 1 and sorted(record["entity_groups"]) == [0, 0, 1, 1]
    assert "--entity-gate 1 " in read_info(out).source
    with pytest.raises(ValueError, match="Dials.entity_gate .*0 or 1.*found 2"):
        Dials(entity_gate=2)


# ---------------------------------------------------------------------------------------- text_alignment


def _centred_unit(embeddings) -> np.ndarray:
    x = embeddings.double().numpy()
    x = x - x.mean(0)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_text_alignment_makes_the_prototypes_projected_prompt_embeddings():
    from refdense.text import build_text_bank, load_text_encoder

    preset = synth.PRESETS["default"]
    plain = synth.world.build_world(preset, 3)
    video, image = synth.features._loadings(preset, plain, 3)
    world = synth.world.build_world(preset, 3, Dials(text_alignment=1.0))
    embeddings = synth.text_embeddings(preset, 3, Dials(text_alignment=1.0))  # the entity and motion names'
    assert sorted(embeddings) == sorted(world.info.entities + world.info.motions)
    aligned_video, aligned_image = synth.features._loadings(preset, world, 3, embeddings)
    # As data/README.md defines it: e = the prompt embedding (MiniLM, "a photo of {name}") centred
    # over the concepts of its kind, unit norm; a motion family's e = the mean of its members'.
    bank = build_text_bank(load_text_encoder("minilm"), world.info)
    entities, motions = _centred_unit(bank.embeddings["entity"]), _centred_unit(bank.embeddings["motion"])
    families = len(world.tempo_family)
    family = np.stack([motions[np.array(world.family_of_motion) == f].mean(0) for f in range(families)])
    family /= np.linalg.norm(family, axis=1, keepdims=True)
    rng = np.random.default_rng([3, 6])  # W: the image projection, then one per phase
    to_image = rng.standard_normal((bank.dim, preset.image_dim))
    to_video = rng.standard_normal((synth.PHASES, bank.dim, preset.video_dim))
    E = preset.entities
    np.testing.assert_allclose(aligned_image[:E], entities @ to_image, rtol=1e-5, atol=1e-5)
    for f in range(families):
        for p in range(synth.PHASES):
            np.testing.assert_allclose(aligned_video[f * synth.PHASES + p], family[f] @ to_video[p],
                                       rtol=1e-5, atol=1e-5)
    # nothing else moves: the entity traces of the video stream, the family traces of the image stream
    np.testing.assert_array_equal(aligned_video[families * synth.PHASES:], video[families * synth.PHASES:])
    np.testing.assert_array_equal(aligned_image[E:], image[E:])
    # the prototypes share the embeddings' structure: similar prompts, similar prototypes
    gram = aligned_image[:E] @ aligned_image[:E].T / preset.image_dim
    text_gram = entities @ entities.T
    assert np.corrcoef(gram[np.triu_indices(E, 1)], text_gram[np.triu_indices(E, 1)])[0, 1] > 0.5
    # in between, a mix of the same norm whose text part has the share of variance a
    half = synth.features._loadings(preset, synth.world.build_world(preset, 3, Dials(text_alignment=0.5)), 3,
                                    embeddings)[1][:E]
    np.testing.assert_allclose(half, np.sqrt(0.5) * image[:E] + np.sqrt(0.5) * aligned_image[:E], rtol=1e-5, atol=1e-5)
    assert synth.generate_annotations("default", 3, Dials(text_alignment=1.0))[1] == \
        synth.generate_annotations("default", 3)[1]


# ---------------------------------------------------------------------------------------- train_videos


@pytest.mark.parametrize("count", [10, 50])
def test_train_videos_changes_the_training_split_only(tiny_dataset, tmp_path, count):
    out = synth.generate("tiny", tmp_path / f"train{count}", dials=Dials(train_videos=count))
    plain, changed = read_labels(tiny_dataset).annotations, read_labels(out).annotations
    training = [v for v, e in changed.items() if e.subset == "training"]
    assert len(training) == count and read_info(out).dials["train_videos"] == count
    original = [v for v, e in plain.items() if e.subset == "training"]
    assert [v for v in training if v in plain] == original[:count]  # the first ones, as they were
    testing = {v for v, e in plain.items() if e.subset == "testing"}
    assert {v for v, e in changed.items() if e.subset == "testing"} == testing
    before, after = _features(tiny_dataset), _features(out)
    for video_id, entry in changed.items():
        if video_id in plain:  # every kept video, test split included, is the same, byte for byte
            assert entry == plain[video_id]
            for stream in (0, 1):
                np.testing.assert_array_equal(after[video_id][stream], before[video_id][stream])


# ---------------------------------------------------------------------------------------- recording


def test_dials_are_recorded_in_dataset_json_and_read_back(tmp_path, capsys):
    out = tmp_path / "dialled"
    assert main(["synth", "--preset", "tiny", "--out", str(out), "--coupling", "0.5", "--rare-share", "0.2",
                 "--rare-cap", "3", "--train-videos", "20"]) == 0
    assert "--coupling 0.5 --rare-share 0.2 --rare-cap 3 --train-videos 20" in capsys.readouterr().out
    record = json.loads((out / "dataset.json").read_text())["dials"]
    assert record == {"coupling": 0.5, "rare_share": 0.2, "rare_cap": 3, "text_alignment": 0.0, "train_videos": 20,
                      "rare_classes": record["rare_classes"]}
    assert len(record["rare_classes"]) == 2
    info = read_info(out)
    assert info.dials == record and DatasetInfo.from_json(info.to_json()) == info
    assert main(["synth", "--preset", "tiny", "--out", str(tmp_path / "bad"), "--coupling", "2"]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in ("refdense synth: error: ", "Dials.coupling", "[0, 1]", "found 2.0")), error


def test_default_dataset_caches_each_setting_of_the_dials_in_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path))
    folder = default_dataset("tiny", seed=2, dials=Dials(coupling=0.5))
    assert folder == tmp_path / "synthetic" / "tiny-seed2-coupling0.5"
    assert read_info(folder).source == synth.dataset_info("tiny", 2, Dials(coupling=0.5)).source
    assert default_dataset("tiny", seed=2, dials=Dials(train_videos=32)) == tmp_path / "synthetic" / "tiny-seed2"
    assert default_dataset("tiny", seed=2, dials=Dials(entangle=0.0, text_prior=0.0)) == tmp_path / "synthetic" / "tiny-seed2"


# ---------------------------------------------------------------------------------------- entangle


def _pooled_probe(folder: Path) -> float:
    from refdense.experiments.probe import probe_dataset

    return probe_dataset(folder).readout("both", "pooled").test_map


def test_entangle_makes_the_default_world_hard_for_a_probe(tmp_path):
    plain = synth.generate("default", tmp_path / "plain")
    tangled = synth.generate("default", tmp_path / "tangled", dials=Dials(entangle=1.0))
    assert read_info(tangled).dials["entangle"] == 1.0 and "--entangle 1 " in read_info(tangled).source
    # Measured on seed 0 (docs/EXPERIMENTS.md, "entangle calibration"): 79.1 at 0, 25.4 at 1.
    before, after = _pooled_probe(plain), _pooled_probe(tangled)
    assert before > 70 and after < before - 40, (before, after)


def test_entangle_drops_and_jitters_labels_but_not_the_evidence():
    preset = synth.PRESETS["default"]
    info, plain, _ = synth.generate_annotations(preset, 0)
    _, actual, _ = synth.annotations.drawn_annotations(preset, 0, Dials(entangle=1.0))
    assert actual == plain  # the evidence shows the instances of the world without the dial
    _, written, _ = synth.generate_annotations(preset, 0, Dials(entangle=1.0))
    assert written.keys() == plain.keys()
    total = kept = moved = 0
    for video_id, entry in plain.items():
        assert written[video_id].subset == entry.subset and written[video_id].duration == entry.duration
        remaining = list(written[video_id].actions)
        total += len(entry.actions)
        for c, start, end in entry.actions:
            match = [a for a in remaining if a[0] == c and abs(a[1] - start) < 2.5 and abs(a[2] - end) < 2.5]
            if match:  # kept: a boundary shift of a few segments (1.5 segments = 0.5 s, standard deviation)
                remaining.remove(match[0])
                kept += 1
                moved += (match[0][1], match[0][2]) != (start, end)
        assert not remaining, video_id  # nothing written that the world did not hold
    assert 0.08 < 1 - kept / total < 0.22  # Entanglement.missing = 0.15 at 1
    assert moved > 0.9 * kept
    half = synth.generate_annotations(preset, 0, Dials(entangle=0.5))[1]
    assert sum(map(len, (e.actions for e in written.values()))) < sum(map(len, (e.actions for e in half.values())))


def test_entangle_confines_the_signal_and_lets_a_slow_scene_dominate():
    preset = synth.PRESETS["default"]
    world = synth.world.build_world(preset, 0, Dials(entangle=1.0))
    video, image = synth.features._loadings(preset, world, 0)
    k = round(synth.ENTANGLEMENT.subspace_share * preset.video_dim)
    plain_video, plain_image = synth.features._loadings(preset, synth.world.build_world(preset, 0), 0)
    families = len(world.tempo_family)
    pairs = synth.ENTANGLEMENT.interaction_rank ** 2
    # each stream: its rows, the other stream's copy, the interaction, then k scene rows
    assert video.shape[0] == len(plain_video) + preset.entities + pairs + k
    assert image.shape[0] == len(plain_image) + families * synth.PHASES + pairs + k
    for rows in (video, image):
        assert np.linalg.matrix_rank(rows.astype(np.float64), tol=1e-3) == k  # all in one k-dim subspace
    _, annotations, lengths = synth.generate_annotations(preset, 0)
    ratios, lag1, crowded = [], [], 0
    for video_id, entry in list(annotations.items())[:30]:
        v = np.zeros((lengths[video_id], len(video)), np.float32)
        i = np.zeros((lengths[video_id], len(image)), np.float32)
        synth.features._evidence(np.random.default_rng(0), preset, world, entry, v, i, None, np.random.default_rng(1))
        scene, signal = v[:, -k:] @ video[-k:], v[:, :-k] @ video[:-k]
        ratios.append(scene.std() / signal.std())
        centred = scene - scene.mean(0)
        lag1.append((centred[1:] * centred[:-1]).sum() / (centred**2).sum())
        # the copies: the entities in view in the video stream, the motion phases in the image stream
        plain_v = np.zeros((lengths[video_id], len(plain_video)), np.float32)
        plain_i = np.zeros((lengths[video_id], len(plain_image)), np.float32)
        synth.features._evidence(np.random.default_rng(0), preset, synth.world.build_world(preset, 0), entry, plain_v, plain_i)
        np.testing.assert_array_equal(v[:, : len(plain_video)], plain_v)
        np.testing.assert_array_equal(v[:, len(plain_video) : len(plain_video) + preset.entities],
                                      plain_i[:, : preset.entities])
        phases = families * synth.PHASES
        np.testing.assert_array_equal(i[:, len(plain_image) : len(plain_image) + phases], plain_v[:, :phases])
        # where several entities are in view, half of each one's image evidence went to its lookalike
        several = (plain_i[:, : preset.entities] > 0).sum(1) >= 2
        crowded += several.sum()
        np.testing.assert_allclose(i[~several, : preset.entities], plain_i[~several, : preset.entities])
        if several.any():
            assert not np.allclose(i[several, : preset.entities], plain_i[several, : preset.entities])
            np.testing.assert_allclose(i[several, : preset.entities].sum(1),
                                       plain_i[several, : preset.entities].sum(1), rtol=1e-5)
    # Measured: the scene's standard deviation is 2.4 times the signal's; lag-1 autocorrelation 0.87.
    assert np.median(ratios) > 2.0 and np.mean(lag1) > 0.8 and crowded > 100


# ---------------------------------------------------------------------------------------- text_prior


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(x)) for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def test_text_prior_prototypes_follow_the_attribute_embeddings():
    preset = synth.PRESETS["default"]
    names = synth.dataset_info(preset, 0).entities
    embeddings = synth.text_embeddings(preset, 0, Dials(text_prior=1.0))  # MiniLM's, of the attribute words
    assert sorted(embeddings) == sorted({w for n in names for w in n.split()})
    vectors = synth.attribute_vectors(names, embeddings)
    upper = np.triu_indices(preset.entities, 1)
    text = (vectors @ vectors.T)[upper]
    found = {}
    for prior in (0.0, 1.0):
        world = synth.world.build_world(preset, 0, Dials(text_prior=prior))
        image = synth.features._loadings(preset, world, 0, embeddings)[1][: preset.entities]
        unit = image / np.linalg.norm(image, axis=1, keepdims=True)
        found[prior] = _rank_correlation((unit @ unit.T)[upper], text)
        # the norm of a random prototype is kept
        assert np.mean(image**2) == pytest.approx(1.0, abs=0.2)
    # measured: 1.00 at 1 (the map keeps the cosines), -0.10 at 0
    assert found[1.0] > 0.95 and abs(found[0.0]) < 0.4, found
    # entities sharing a colour or a shape word share a direction
    words = [set(n.split()) for n in names]
    share = np.array([bool(words[a] & words[b]) for a, b in zip(*upper)])
    assert share.sum() >= 2 and text[share].mean() > text[~share].mean() + 0.3
    with pytest.raises(ValueError, match=r"text_prior: .*prompt embedding.*\['cube'\]"):
        synth.attribute_vectors(["red cube", "blue ball"], {"red": np.ones(3), "blue": -np.ones(3), "ball": np.ones(3)})


def test_the_text_dials_take_the_embeddings_as_an_argument_and_load_no_encoder(tmp_path, monkeypatch):
    import refdense.text

    def no_encoder(*_, **__):
        raise AssertionError("the embeddings were given: no encoder is loaded")

    monkeypatch.setattr(refdense.text, "load_text_encoder", no_encoder)
    info = synth.dataset_info("tiny", 0)
    words = sorted({w for n in info.entities for w in n.split()})
    given = {w: np.random.default_rng(k).standard_normal(16) for k, w in enumerate(words + list(info.motions))}
    out = synth.generate("tiny", tmp_path / "prior", dials=Dials(text_prior=1.0), embeddings=given)
    preset = synth.PRESETS["tiny"]
    world = synth.world.build_world(preset, 0, Dials(text_prior=1.0))
    expected = synth.attribute_prototypes(synth.attribute_vectors(info.entities, given), preset.image_dim, 0)
    np.testing.assert_array_equal(synth.features._loadings(preset, world, 0, given)[1][: preset.entities], expected)
    assert read_info(out).dials["text_prior"] == 1.0
    # text_alignment needs the entity and motion names: a missing one is named before anything is written
    with pytest.raises(ValueError, match=r"dial text_alignment: .*prompt embedding.*\['blue ball', .*4 names"):
        synth.generate("tiny", tmp_path / "aligned", dials=Dials(text_alignment=1.0), embeddings=given)
    assert not (tmp_path / "aligned").exists()
    with pytest.raises(ValueError, match=r"dial text_prior: .*prompt embedding.*\['ball', 'blue'"):
        synth.generate("tiny", tmp_path / "aligned", dials=Dials(text_prior=1.0))
    # with both dials off, nothing is embedded (and no encoder loaded)
    assert synth.text_embeddings("default", 0, Dials(entangle=1.0)) == {}


def test_the_generator_modules_import_no_text_encoder():
    # only the cache embeds prompts (refdense.synth.cache.text_embeddings, a deferred import)
    import subprocess
    import sys

    code = ("import sys, refdense.synth; from refdense.synth import annotations, features, presets, world; "
            "print(sorted(m for m in sys.modules if m.startswith(('refdense.text', 'transformers', "
            "'sentence_transformers', 'open_clip'))))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "[]"


def test_rare_entities_keep_at_most_three_instances_each():
    # the training subset (training and validation together) is what the cap counts
    _, plain, _ = synth.generate_annotations("default", 0)
    dials = Dials(rare_entities=2, rare_share=0.2, held_out=0.2)
    info, capped, _ = synth.generate_annotations("default", 0, dials)
    rare = info.dials["rare_entities"]
    assert len(rare) == 2 and "text_prior" not in info.dials
    taken = set(info.dials["rare_classes"]) | set(info.dials["held_out_classes"])
    assert not any(info.decomposition[c][0] in rare for c in taken)  # not rare already
    of_rare = {c for c, (e, _) in enumerate(info.decomposition) if e in rare}
    for e in rare:
        mine = {c for c in of_rare if info.decomposition[c][0] == e}
        assert sum(n for c, n in _instances(capped, "training").items() if c in mine) <= synth.RARE_ENTITY_CAP
        assert sum(n for c, n in _instances(plain, "training").items() if c in mine) > synth.RARE_ENTITY_CAP
        for c in mine:  # their motions stay in classes of other, frequent entities
            m = info.decomposition[c][1]
            assert m is None or any(pm == m and pe not in rare for pe, pm in info.decomposition)
    assert _instances(capped, "testing") == _instances(plain, "testing")
    untouched = {c: n for c, n in _instances(plain, "training").items() if c not in of_rare | taken}
    assert {c: n for c, n in _instances(capped, "training").items() if c in untouched} == untouched
    # a dial of its own: text_prior leaves the rarity alone, and with both the rare entities are the
    # same at every text_prior (a sweep of text_prior compares the same rarity)
    assert "rare_entities" not in synth.dataset_info("default", 0, Dials(text_prior=1.0)).dials
    assert synth.dataset_info("default", 0, Dials(text_prior=1.0, rare_entities=2)).dials["rare_entities"] == \
        synth.dataset_info("default", 0, Dials(rare_entities=2)).dials["rare_entities"]


def test_entangle_and_text_prior_from_the_command_line(tmp_path):
    out = tmp_path / "both"
    assert main(["synth", "--preset", "tiny", "--out", str(out), "--entangle", "0.5", "--text-prior", "1",
                 "--rare-entities", "1"]) == 0
    record = read_info(out).dials
    assert record["entangle"] == 0.5 and record["text_prior"] == 1.0 and len(record["rare_entities"]) == 1
    assert "--entangle 0.5 --text-prior 1 --rare-entities 1 " in read_info(out).source


def test_prompt_embeddings_are_the_same_bytes_whatever_the_thread_count():
    # MiniLM's float sums differ between 1 and 2 torch threads; the cache encodes on one, so a
    # text dial's dataset does not depend on the caller's setting, which it leaves as it was
    import torch

    from refdense.synth import cache

    found = []
    try:
        for count in (1, 2):
            with torch_threads(count):
                cache._prompt_embeddings.cache_clear()
                found.append(synth.text_embeddings("default", 0, Dials(text_prior=1.0)))
                assert torch.get_num_threads() == count
    finally:
        cache._prompt_embeddings.cache_clear()
    assert found[0].keys() == found[1].keys()
    for name in found[0]:
        assert found[0][name].tobytes() == found[1][name].tobytes(), name
