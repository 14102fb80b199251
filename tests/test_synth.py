"""The synthetic generator: determinism, atomic writes, the designed ambiguity, real-data statistics."""

import json
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from refdense import synth
from refdense.cli import main
from refdense.data import dataset_statistics, read_info, read_labels, split_statistics
from refdense.data.features import read_features
from refdense.io import STAGING_MARKER
from refdense.synth import default_dataset

# The real datasets' label statistics (docs/METHOD.md, section 6; training split, testing where it gives it).
REAL_STATISTICS = {
    "charades-like": {
        "training": {"videos": 7985, "duration_mean": 29.9, "duration_median": 30.5, "instances_per_video": 6.2,
                     "instance_duration_median": 9.0, "label_density": 2.62, "multi_label_share": 0.70,
                     "top10_share": 0.23},
        "testing": {"videos": 1863, "instances_per_video": 9.0, "label_density": 3.72, "multi_label_share": 0.82},
    },
    "charades-quarter": {  # a quarter of Charades' videos, its statistics
        "training": {"videos": 1996, "duration_mean": 29.9, "duration_median": 30.5, "instances_per_video": 6.2,
                     "instance_duration_median": 9.0, "label_density": 2.62, "multi_label_share": 0.70,
                     "top10_share": 0.23},
        "testing": {"videos": 466, "instances_per_video": 9.0, "label_density": 3.72, "multi_label_share": 0.82},
    },
    "multithumos-like": {
        "training": {"videos": 200, "duration_mean": 209, "duration_median": 151, "instances_per_video": 92,
                     "instance_duration_median": 1.8, "label_density": 1.45, "multi_label_share": 0.43,
                     "top10_share": 0.58},
        "testing": {"videos": 213, "instances_per_video": 95, "label_density": 1.56, "multi_label_share": 0.47},
    },
}


@pytest.mark.parametrize("preset", sorted(REAL_STATISTICS))
def test_real_like_presets_match_real_statistics_within_15_percent(preset):
    info, annotations, lengths = synth.generate_annotations(preset, seed=0)
    assert info.video_dim == info.image_dim == 1024
    stats = split_statistics(annotations, lengths, info)
    for subset, expected in REAL_STATISTICS[preset].items():
        found = stats[subset].to_dict()
        for key, value in expected.items():
            assert found[key] == pytest.approx(value, rel=0.15), (subset, key, found[key], value)


def test_same_seed_same_bytes_other_seed_other_bytes(tiny_dataset, tmp_path):
    again = synth.generate("tiny", tmp_path / "again", seed=0)
    other = synth.generate("tiny", tmp_path / "other", seed=1)
    for name in ("dataset.json", "annotations.json", "features.h5"):
        assert (again / name).read_bytes() == (tiny_dataset / name).read_bytes(), name
    assert (other / "features.h5").read_bytes() != (again / "features.h5").read_bytes()
    assert read_info(other).source.startswith("refdense synth --preset tiny --seed 1 ")
    assert "--seed 1" in read_info(other).source


def test_batches_hold_whole_videos_within_the_segment_budget():
    assert synth.features._batches([3, 4, 5, 20, 1, 2], 8) == [range(0, 2), range(2, 3), range(3, 4), range(4, 6)]
    assert synth.features._batches([], 8) == []


def test_features_do_not_depend_on_the_batching(tiny_dataset, tmp_path, monkeypatch):
    # Batches of one to a few videos (the default makes tiny in one batch): every video draws from
    # its own generators, so the file is the same, byte for byte.
    monkeypatch.setattr(synth.features, "BATCH_SEGMENTS", 100)
    small = synth.generate("tiny", tmp_path / "small", seed=0)
    assert len(synth.features._batches(list(read_labels(small).lengths.values()), 100)) > 15
    assert (small / "features.h5").read_bytes() == (tiny_dataset / "features.h5").read_bytes()


def test_features_are_noise_plus_background_plus_evidence(tiny_dataset):
    # Rebuild one video from the generator's parts and compare with the file (float16 rounding).
    preset, index = synth.PRESETS["tiny"], 5
    world = synth.world.build_world(preset, 0)
    data = read_labels(tiny_dataset)
    video_id = sorted(data.annotations)[index]
    length = data.lengths[video_id]
    video_loadings, image_loadings = synth.features._loadings(preset, world, 0)
    video_evidence = np.zeros((length, video_loadings.shape[0]), np.float32)
    image_evidence = np.zeros((length, image_loadings.shape[0]), np.float32)
    rng = np.random.default_rng([0, 3, index])
    synth.features._evidence(rng, preset, world, data.annotations[video_id], video_evidence, image_evidence)
    assert video_evidence.any() and image_evidence.any()
    video_background, image_background = (rng.standard_normal(d, dtype=np.float32) for d in (32, 32))
    video = np.empty((length, 32), np.float32)
    image = np.empty((length, 32), np.float32)
    synth.features._fill_noise(0, index, video, image)
    video = preset.noise * video + preset.background * video_background + video_evidence @ video_loadings
    image = preset.noise * image + preset.background * image_background + image_evidence @ image_loadings
    stored = read_features(tiny_dataset / "features.h5", [video_id], data.info)[video_id]
    np.testing.assert_allclose(stored[0].astype(np.float32), video, atol=1e-2, rtol=1e-3)
    np.testing.assert_allclose(stored[1].astype(np.float32), image, atol=1e-2, rtol=1e-3)


def test_annotations_alone_equal_the_written_ones(tiny_dataset):
    info, annotations, lengths = synth.generate_annotations("tiny", seed=0)
    data = read_labels(tiny_dataset)
    assert data.info == info and data.lengths == lengths
    assert data.annotations == annotations


def test_interrupted_generation_leaves_nothing_that_loads(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth.cache, "write_info", interrupt)
    with pytest.raises(KeyboardInterrupt):
        synth.generate("tiny", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_an_output_is_replaced_only_when_it_holds_a_dataset(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=rf"{re.escape(str(out))}: .*not a refdense dataset.*keep.txt"):
            synth.generate("tiny", out, overwrite=overwrite)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    synth.generate("tiny", out)  # an empty folder is filled
    with pytest.raises(FileExistsError, match=rf"{re.escape(str(out))}: .*not empty.*overwrite"):
        synth.generate("tiny", out)
    (out / "text_bank-random.pt").write_bytes(b"a cache that training writes")
    synth.generate("tiny", out, seed=1, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["annotations.json", "dataset.json", "features.h5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # The current folder (or one holding it) is never replaced, whatever it holds.
    monkeypatch.chdir(out)
    for target in (".", ".."):
        assert main(["synth", "--preset", "tiny", "--out", target, "--overwrite"]) == 2
        error = capsys.readouterr().err
        assert all(piece in error for piece in (f"refdense synth: error: {target}: ", "current folder", "--out")), error
    assert sorted(p.name for p in out.iterdir()) == ["annotations.json", "dataset.json", "features.h5"]


HANGING_SYNTH = """
import sys, time
from refdense import synth
from refdense.cli import main

def write_features(path, items, dtype):  # a write whose clean-up never ends
    path.write_bytes(b"half")
    try:
        print("writing", flush=True)  # inside the try: a SIGTERM right after it still meets the finally
        time.sleep(600)
    finally:
        time.sleep(600)

synth.cache.write_features = write_features
sys.exit(main(["synth", "--preset", "tiny", "--out", sys.argv[1]]))
"""


def test_sigterm_stops_synth_even_when_its_clean_up_hangs(tmp_path):
    from refdense.cli import SIGTERM_GRACE_SECONDS

    out = tmp_path / "tiny"
    process = subprocess.Popen([sys.executable, "-c", HANGING_SYNTH, str(out)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=SIGTERM_GRACE_SECONDS + 60)  # raises if the process does not stop
    process.stdout.close()
    assert process.returncode == -signal.SIGALRM  # the clean-up hung and the grace period ended it
    leftover = tmp_path / f"tiny.tmp-{process.pid}"
    assert sorted(p.name for p in leftover.iterdir()) == [STAGING_MARKER, "features.h5"]
    # The next command that writes a dataset here removes what dead processes left, whatever the
    # dataset's name, and only folders marked as leftovers that hold nothing but dataset files.
    other = tmp_path / f"other.tmp-{process.pid}"
    other.mkdir()
    (other / STAGING_MARKER).touch()
    (other / "annotations.json.tmp-17").write_text("{")
    foreign = tmp_path / f"notes.tmp-{process.pid}"
    foreign.mkdir()
    (foreign / STAGING_MARKER).touch()
    (foreign / "notes.txt").write_text("not a dataset file")
    unmarked = tmp_path / f"mine.old-{process.pid}"  # a user's folder, merely named like a leftover
    unmarked.mkdir()
    (unmarked / "features.h5").write_text("the user's")
    synth.generate("tiny", tmp_path / "another")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["another", unmarked.name, foreign.name]


@pytest.mark.parametrize("preset", sorted(synth.PRESETS))
def test_concepts_are_shared_so_one_stream_is_ambiguous(preset):
    info = synth.dataset_info(preset)
    entity, motion = info.entity_matrix(), info.motion_matrix()
    assert entity.sum(1).max() <= 1 and motion.sum(1).max() <= 1
    assert ((entity.sum(1) + motion.sum(1)) >= 1).all()
    assert (entity.sum(1) == 0).any() and (motion.sum(1) == 0).any()  # single-part actions exist
    assert (entity.sum(0) >= 2).all(), "an entity alone would identify its class"
    if 2 * info.num_motions <= info.num_classes:
        assert (motion.sum(0) >= 2).all(), "a motion alone would identify its class"
    else:  # multithumos-like: 50 motions for 65 classes (as the paper's decomposition) can't all be shared
        assert (motion.sum(0) >= 1).all() and (motion.sum(0) >= 2).sum() >= motion.sum() - info.num_motions


@pytest.mark.parametrize("tempo", [False, True])
def test_family_members_share_per_segment_distribution_but_not_order(tempo):
    preset = synth.PRESETS["default"]
    n = synth.PHASES * preset.slow_period * 4
    rng = np.random.default_rng(0)
    first = synth.features._phase_sequence(rng, preset, tempo, 0, n)
    second = synth.features._phase_sequence(rng, preset, tempo, 1, n)
    assert np.bincount(first).tolist() == np.bincount(second).tolist()
    assert first.tolist() != second.tolist()
    if not tempo:
        assert second.tolist() == first[::-1].tolist()  # the time-reverse


def test_image_stream_carries_entities_not_motion_direction(tiny_dataset):
    # Mean image feature over segments where each motion is the only active motion: members of a
    # family look alike in the image stream, entities differ strongly.
    data = read_labels(tiny_dataset)
    from refdense.data import DenseActionDataset

    dataset = DenseActionDataset(tiny_dataset, "training", train=False, validation_fraction=0.0)
    info = dataset.info
    image = np.concatenate([v["image"].astype(np.float32) for v in dataset.videos])
    entity_labels = np.concatenate([v["entity_labels"] for v in dataset.videos])
    alone = entity_labels.sum(1) == 1
    means = [image[alone & (entity_labels[:, e] == 1)].mean(0) for e in range(info.num_entities)]
    none = image[entity_labels.sum(1) == 0].mean(0)
    assert all(np.linalg.norm(m - none) > 2.0 for m in means)
    assert data.report.instances > 0


def test_cli_synth_and_inspect(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["synth", "--preset", "tiny", "--out", str(out), "--seed", "2"]) == 0
    assert main(["synth", "--preset", "tiny", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in (f"refdense synth: error: {out}: ", "not empty", "--overwrite")), error
    assert main(["synth", "--preset", "huge", "--out", str(tmp_path / "x")]) == 2
    assert main(["inspect", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    stats = dataset_statistics(out)
    assert report["splits"]["training"]["videos"] == stats["training"].videos == 32
    assert report["splits"]["testing"]["segments"] == stats["testing"].segments
    assert set(report["splits"]["training"]["cleanup"]) >= {"clipped", "dropped", "merged_overlaps"}
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "share of segments with >= 2 active" in text and "annotation fixes:" in text
    assert main(["inspect", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in (f"refdense inspect: error: {tmp_path / 'missing' / 'dataset.json'}",
                                            "not found")), error


def test_default_dataset_generates_once(tmp_path, monkeypatch):
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path))
    folder = default_dataset("tiny")
    assert folder == tmp_path / "synthetic" / "tiny"
    stamp = (folder / "features.h5").stat().st_mtime_ns
    assert default_dataset("tiny") == folder and (folder / "features.h5").stat().st_mtime_ns == stamp
    assert read_info(folder).name == "tiny"


def test_synth_without_out_fills_the_data_folder_where_training_finds_the_preset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path))
    assert main(["synth", "--preset", "tiny", "--seed", "2", "--coupling", "0.5"]) == 0
    folder = tmp_path / "synthetic" / "tiny-seed2-coupling0.5"
    assert f"dataset {folder} (preset tiny, seed 2" in capsys.readouterr().out
    assert default_dataset("tiny", seed=2, dials=synth.Dials(coupling=0.5)) == folder
    assert main(["synth", "--preset", "tiny", "--overwrite"]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in ("refdense synth: error: ", "--overwrite", "--out")), error


def test_default_dataset_regenerates_a_copy_made_by_another_generator_version(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path))
    folder = default_dataset("tiny")
    info = read_info(folder)
    text = (folder / "dataset.json").read_text()
    (folder / "dataset.json").write_text(text.replace(info.source, "refdense synth (generator version 1)"))
    assert default_dataset("tiny") == folder
    assert "regenerating" in capsys.readouterr().out
    assert read_info(folder).source == info.source
