"""refdense.prepare: official annotation formats, feature conversion and the preparation report.

Every fixture is invented for these tests (ids, class names, times); no dataset content.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from refdense.cli import main
from refdense.data.dataset import read_labels
from refdense.data.annotations import read_annotations
from refdense.data.info import read_info
from refdense.io import STAGING_MARKER
from refdense.prepare.decompose import Decomposition
from refdense.prepare.features import FeatureError, FeatureSource, align_streams, as_segments
from refdense.prepare.formats import (
    MULTITHUMOS_CLASSES,
    FormatError,
    read_raw_annotations,
    read_class_list,
)
from refdense.prepare.prepare import PrepareReport, annotate_video, prepare_dataset

CLASSES = ["juggle a pebble", "wave at a kite", "sniff a teapot"]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def classes_file(tmp_path):
    return write(tmp_path / "classes.txt", "".join(f"z{i:03d} {n}\n" for i, n in enumerate(CLASSES)))


# ----------------------------------------------------------------------------------------- formats


def test_class_list_accepts_numbered_tabbed_and_bare_lines(tmp_path):
    assert read_class_list(write(tmp_path / "a.txt", "c000 Juggle a pebble\nc001 Wave\n")) == [
        ("c000", "Juggle a pebble"), ("c001", "Wave")]
    assert read_class_list(write(tmp_path / "b.txt", "0\tEnter_room\n1\tSit.On_stool\n")) == [
        ("0", "Enter_room"), ("1", "Sit.On_stool")]
    assert read_class_list(write(tmp_path / "c.txt", "\nFooBar\nBaz Qux\n")) == [("", "FooBar"), ("", "Baz Qux")]
    with pytest.raises(FormatError, match="appears twice"):
        read_class_list(write(tmp_path / "d.txt", "c000 a\nc000 b\n"))
    with pytest.raises(FormatError, match="no class names"):
        read_class_list(write(tmp_path / "e.txt", "\n\n"))


def test_super_events_zero_based_and_unknown_ids_counted(tmp_path):
    data = {"vidA": {"subset": "training", "duration": 10.0, "actions": [[0, 1.0, 2.0], [2, 3, 4], [7, 1, 2]]},
            "vidB": {"subset": "testing", "duration": 5, "actions": []}}
    raw = read_raw_annotations("charades", [write(tmp_path / "a.json", json.dumps(data))], classes_file=classes_file(tmp_path))
    assert raw.classes == CLASSES
    assert raw.videos["vidA"]["actions"] == [[0, 1.0, 2.0], [2, 3.0, 4.0]]
    assert raw.videos["vidA"]["origins"] == ["a.json: video 'vidA', actions[0]", "a.json: video 'vidA', actions[1]"]
    assert raw.videos["vidB"] == {"subset": "testing", "duration": 5.0, "actions": [], "origins": []}
    assert raw.problems == {"unknown class id": 1}
    assert "class id 7" in raw.examples["unknown class id"] and "vidA" in raw.examples["unknown class id"]
    assert raw.details == {"unknown class id": ["a.json: video 'vidA', actions[2]: class id 7 outside 0..2"]}


def test_super_events_one_based_multithumos_and_wrong_base_refused(tmp_path):
    data = {"video_validation_1": {"subset": "training", "duration": 30.0, "actions": [[1, 1.0, 2.0], [65, 3, 4]]}}
    path = write(tmp_path / "multithumos.json", json.dumps(data))
    raw = read_raw_annotations("multithumos", [path])
    assert raw.classes == list(MULTITHUMOS_CLASSES)
    assert [a[0] for a in raw.videos["video_validation_1"]["actions"]] == [0, 64]
    with pytest.raises(FormatError, match="1-based"):
        read_raw_annotations("multithumos", [path], one_based=False)
    zero = write(tmp_path / "zero.json", json.dumps({"v": {"subset": "training", "duration": 3, "actions": [[0, 0, 1]]}}))
    with pytest.raises(FormatError, match="0-based"):
        read_raw_annotations("multithumos", [zero])


def test_charades_csv_with_class_list(tmp_path):
    header = "id,subject,scene,actions,length\n"
    train = write(tmp_path / "Charades_v1_train.csv", header
                  + 'AB12C,s1,kitchen,"z000 1.50 4.00;z002 0.00 12.60",11.9\n'
                  + "XY34Z,s2,garage,,20.0\n"
                  + 'QQ77Q,s3,attic,"z099 1 2;z001 bad",8\n')
    test = write(tmp_path / "Charades_v1_test.csv", header + 'TT00T,s4,hall,"z001 2 3",9.5\n')
    write(tmp_path / "Charades_v1_classes.txt", "".join(f"z{i:03d} {n}\n" for i, n in enumerate(CLASSES)))
    raw = read_raw_annotations("charades", [train, test])  # the class list is found beside the CSVs
    assert raw.classes == CLASSES
    assert raw.videos["AB12C"] == {"subset": "training", "duration": 11.9, "actions": [[0, 1.5, 4.0], [2, 0.0, 12.6]],
                                   "origins": ["Charades_v1_train.csv:2 ('z000 1.50 4.00')",
                                               "Charades_v1_train.csv:2 ('z002 0.00 12.60')"]}
    assert raw.videos["XY34Z"]["actions"] == []
    assert raw.videos["TT00T"]["subset"] == "testing"
    assert raw.problems == {"unknown class id": 1, "malformed action": 1}
    assert raw.details["malformed action"][0].endswith("Charades_v1_train.csv:4: video 'QQ77Q': expected "
                                                       "'cXXX start end', found 'z001 bad'")
    raw_dir = read_raw_annotations("charades", [tmp_path])  # a folder works too
    assert set(raw_dir.videos) == set(raw.videos)
    bad = write(tmp_path / "other" / "Charades_v1_train.csv", "id,actions\nA,\n")
    with pytest.raises(FormatError, match="missing columns"):
        read_raw_annotations("charades", [bad], classes_file=classes_file(tmp_path))


def test_multithumos_per_class_files(tmp_path):
    folder = tmp_path / "annotations"
    write(folder / "BaseballPitch.txt", "video_validation_0000001 1.0 2.5\nvideo_test_0000009 0.5 0.9\n")
    write(folder / "NoHuman.txt", "video_validation_0000001 10 12\n\nvideo_validation_0000001 oops\n")
    raw = read_raw_annotations("multithumos", [folder])
    assert raw.videos["video_validation_0000001"] == {"subset": "training", "duration": None,
                                                      "actions": [[0, 1.0, 2.5], [64, 10.0, 12.0]],
                                                      "origins": ["BaseballPitch.txt:1", "NoHuman.txt:1"]}
    assert raw.videos["video_test_0000009"]["subset"] == "testing"
    assert raw.problems == {"malformed action": 1}
    write(folder / "NotAClass.txt", "video_test_0000009 1 2\n")
    with pytest.raises(FormatError, match="NotAClass"):
        read_raw_annotations("multithumos", [folder])


def test_tsu_frames_become_seconds(tmp_path):
    write(tmp_path / "Action_list", "0\tEnter\n1\tSit_down\n")
    data = {"P01T01C01": {"subset": "training", "duration": 400, "actions": [[1, 20, 100], [0, 0, 10]]}}
    raw = read_raw_annotations("tsu", [write(tmp_path / "tsu.json", json.dumps(data))], classes_file=tmp_path / "Action_list")
    assert raw.classes == ["Enter", "Sit_down"]
    assert raw.videos["P01T01C01"] == {"subset": "training", "duration": 20.0, "actions": [[1, 1.0, 5.0], [0, 0.0, 0.5]],
                                       "origins": ["tsu.json: video 'P01T01C01', actions[0]",
                                                   "tsu.json: video 'P01T01C01', actions[1]"]}
    with pytest.raises(FormatError, match="class list"):
        read_raw_annotations("tsu", [tmp_path / "tsu.json"])


@pytest.mark.parametrize("content, match", [
    ("[1, 2]", "expected a JSON object"),
    ('{"v": {"subset": "training", "actions": []}}', "expected keys subset, duration, actions"),
    ('{"v": {"subset": "val", "duration": 3, "actions": []}}', "subset must be one of"),
    ("{not json", "not valid JSON"),
    ('{"v": {"subset": "training", "duration": 3, "actions": []}, "v": {"subset": "testing", "duration": 3, '
     '"actions": []}}', "'v' appears twice"),  # a reader keeping the last one would lose a video silently
])
def test_json_in_no_known_format_is_refused(tmp_path, content, match):
    with pytest.raises(FormatError, match=match):
        read_raw_annotations("charades", [write(tmp_path / "x.json", content)], classes_file=classes_file(tmp_path))


def test_unknown_file_type_is_refused(tmp_path):
    with pytest.raises(FormatError, match="cannot tell the format"):
        read_raw_annotations("charades", [write(tmp_path / "x.xml", "<a/>")], classes_file=classes_file(tmp_path))


# ---------------------------------------------------------------------------------------- features


def test_feature_shapes_and_sources(tmp_path):
    assert as_segments(np.zeros((5, 1, 1, 7)), "x").shape == (5, 7)
    assert as_segments(np.zeros((5, 7)), "x").shape == (5, 7)
    with pytest.raises(FeatureError, match=r"\(T', D\)"):
        as_segments(np.zeros((5, 2, 7)), "x")
    folder = tmp_path / "npy"
    folder.mkdir()
    np.save(folder / "v1.npy", np.ones((4, 1, 1, 3), np.float32))
    (folder / "v2.npy").write_bytes(b"not a numpy file")
    with FeatureSource(folder, "video") as source:
        assert source.ids == ["v1", "v2"]
        assert source.load("v1").shape == (4, 3)
        with pytest.raises(FeatureError, match="v2"):
            source.load("v2")
    with h5py.File(tmp_path / "grouped.h5", "w") as handle:
        handle["image/v1"] = np.zeros((4, 2))
        handle["video/v1"] = np.zeros((4, 3))
    with FeatureSource(tmp_path / "grouped.h5", "image") as source:
        assert source.ids == ["v1"] and source.load("v1").shape == (4, 2)
    with pytest.raises(FeatureError, match="not found"):
        FeatureSource(tmp_path / "missing", "video")


def test_align_streams_truncates_within_tolerance_only():
    video, image = align_streams(np.zeros((10, 2)), np.zeros((9, 3)), 2, "v")
    assert video.shape == (9, 2) and image.shape == (9, 3)
    with pytest.raises(FeatureError, match="video 10, image 6"):
        align_streams(np.zeros((10, 2)), np.zeros((6, 3)), 2, "v")


# ----------------------------------------------------------------------------------------- prepare


def dirty_dataset(tmp_path, rng):
    """Annotations and features that exercise every clean-up and every feature problem."""
    videos = {
        "clip_end": {"subset": "training", "duration": 10.0, "actions": [[0, 2.0, 11.5], [1, 1.0, 3.0]]},
        "dropped": {"subset": "training", "duration": 10.0, "actions": [[0, 5.0, 4.0], [1, 12.0, 13.0], [2, 1, 4]]},
        "merge": {"subset": "testing", "duration": 8.0, "actions": [[2, 1.0, 4.0], [2, 3.0, 6.0]]},
        "empty_train": {"subset": "training", "duration": 6.0, "actions": []},
        "empty_test": {"subset": "testing", "duration": 6.0, "actions": []},
        "no_features": {"subset": "testing", "duration": 6.0, "actions": [[0, 1, 2]]},
        "too_short": {"subset": "training", "duration": 6.0, "actions": [[0, 1, 2]]},
        "off_by_one": {"subset": "testing", "duration": 8.0, "actions": [[1, 1, 2], [0, 1.1, 1.3]]},
        "off_by_five": {"subset": "testing", "duration": 8.0, "actions": [[1, 1, 2]]},
        "nan": {"subset": "training", "duration": 8.0, "actions": [[1, 1, 2]]},
    }
    annotations = write(tmp_path / "charades.json", json.dumps(videos))
    lengths = {"clip_end": 30, "dropped": 30, "merge": 24, "empty_train": 18, "empty_test": 18, "too_short": 0,
               "off_by_one": 24, "off_by_five": 24, "nan": 24, "unannotated": 12}
    image_lengths = dict(lengths, off_by_one=23, off_by_five=19)
    video_dir = tmp_path / "i3d"
    video_dir.mkdir()
    for video_id, length in lengths.items():
        array = rng.normal(size=(length, 1, 1, 16)).astype(np.float32)
        if video_id == "nan":
            array[3, 0, 0, 5] = np.nan
        np.save(video_dir / f"{video_id}.npy", array)
    with h5py.File(tmp_path / "clip.h5", "w") as handle:
        for video_id, length in image_lengths.items():
            handle[video_id] = rng.normal(size=(length, 8)).astype(np.float32)
    return annotations, video_dir, tmp_path / "clip.h5"


def test_prepare_reports_and_fixes_every_problem(tmp_path):
    rng = np.random.default_rng(0)
    annotations, video_dir, image_h5 = dirty_dataset(tmp_path, rng)
    raw = read_raw_annotations("charades", [annotations], classes_file=classes_file(tmp_path))
    decomposition = Decomposition.from_names("toy", CLASSES, ["pebble", "kite", "teapot"], ["juggling", "waving", None])
    out = tmp_path / "out"
    report = prepare_dataset(raw, video_dir, image_h5, out, decomposition=decomposition, name="toy", fps=24.0,
                             progress=False)

    assert report.without_features == ["no_features"]
    assert report.without_annotation == ["unannotated"]
    assert report.skipped["features shorter than one segment"] == ["too_short"]
    assert report.skipped["stream lengths differ beyond tolerance"] == ["off_by_five"]
    assert report.skipped["non-finite features"] == ["nan"]
    assert report.truncated == ["off_by_one"]
    cleanup = report.cleanup.to_dict()
    assert cleanup["clipped"] == 1 and cleanup["dropped"] == 2 and cleanup["merged_overlaps"] == 1
    assert sorted(report.cleanup.videos_without_actions) == ["empty_test", "empty_train"]
    assert report.videos_written == {"training": 3, "testing": 3}
    summary = report.summary()
    for words in ("no_features", "unannotated", "off_by_one", "clipped 1", "dropped 2", "shorter than one segment"):
        assert words in summary

    written = read_annotations(out / "annotations.json", num_classes=3)
    assert written["clip_end"].actions == ((1, 1.0, 3.0), (0, 2.0, 10.0))
    assert written["dropped"].actions == ((2, 1.0, 4.0),)
    assert written["merge"].actions == ((2, 1.0, 6.0),)
    info = read_info(out)
    assert info.classes == tuple(CLASSES) and info.entities == ("pebble", "kite", "teapot")
    assert info.decomposition == ((0, 0), (1, 1), (2, None))
    assert (info.video_dim, info.image_dim) == (16, 8)
    with h5py.File(out / "features.h5") as handle:
        assert handle["video/off_by_one"].shape == (23, 16) and handle["image/off_by_one"].shape == (23, 8)
        assert handle["video/merge"].dtype == np.float16
        np.testing.assert_allclose(handle["video/merge"][()],
                                   np.load(video_dir / "merge.npy")[:, 0, 0].astype(np.float16))
    labels = read_labels(out)  # the data package reads it back, and nothing is left to clean
    assert not labels.report.changed
    assert labels.labels["merge"][:, 2].sum() > 0
    saved = json.loads((out / "prepare-report.json").read_text())
    assert saved["annotated_without_features"] == ["no_features"]


def test_prepare_report_lists_every_fix_with_its_origin(tmp_path, capsys):
    annotations, video_dir, image_h5 = dirty_dataset(tmp_path, np.random.default_rng(0))
    raw = read_raw_annotations("charades", [annotations], classes_file=classes_file(tmp_path))
    out = tmp_path / "out"
    report = prepare_dataset(raw, video_dir, image_h5, out, decomposition=None, name="toy", fps=24.0, progress=False)
    saved = json.loads((out / "prepare-report.json").read_text())
    fixes = {(f["video"], f["fix"]): f for f in saved["fixes"]}
    assert sorted(fixes) == [("clip_end", "clipped"), ("dropped", "dropped"), ("merge", "merged"),
                             ("off_by_one", "no segment")] and len(saved["fixes"]) == 5
    assert fixes["clip_end", "clipped"] == {
        "video": "clip_end", "class": 0, "start": 2.0, "end": 11.5, "fix": "clipped",
        "reason": "outside the video [0, 10] s: clipped to [2, 10]", "origin": "charades.json: video 'clip_end', actions[0]"}
    dropped = [(f["origin"], f["reason"]) for f in saved["fixes"] if f["fix"] == "dropped"]
    assert dropped == [("charades.json: video 'dropped', actions[0]", "end <= start"),
                       ("charades.json: video 'dropped', actions[1]", "starts after the video")]
    assert fixes["merge", "merged"]["origin"] == "charades.json: video 'merge', actions[1]"
    short = fixes["off_by_one", "no segment"]  # 23 segments over 8 s: none strictly inside (1.1, 1.3)
    assert (short["class"], short["start"], short["end"]) == (0, 1.1, 1.3)
    assert short["origin"] == "charades.json: video 'off_by_one', actions[1]"
    # the count is the one inspect finds on the prepared folder (it was always 0 before)
    assert saved["cleanup"]["covering_no_segment"] == report.cleanup.no_segment == 1
    assert main(["inspect", str(out), "--json"]) == 0
    inspected = json.loads(capsys.readouterr().out)
    assert sum(split["cleanup"]["covering_no_segment"] for split in inspected["splits"].values()) == 1
    assert inspected["prepare_report"]["cleanup"] == saved["cleanup"]
    assert "1 cover no segment" in report.summary() and "clipped: clip_end, class 0 [2, 11.5] s" in report.summary()


def test_inspect_shows_how_a_folder_was_prepared(tmp_path, capsys):
    annotations, video_dir, image_h5 = dirty_dataset(tmp_path, np.random.default_rng(0))
    raw = read_raw_annotations("charades", [annotations], classes_file=classes_file(tmp_path))
    prepare_dataset(raw, video_dir, image_h5, tmp_path / "out", decomposition=None, name="toy", fps=24.0,
                    progress=False)
    assert main(["inspect", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "prepare-report.json" in printed
    for words in ("clipped 1 (1.5 s), dropped 2", "merged 1 overlapping", "left out 1 annotated videos without features"):
        assert words in printed
    (tmp_path / "out" / "prepare-report.json").write_text("{}")
    assert main(["inspect", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in (str(tmp_path / "out" / "prepare-report.json"), "preparation report",
                                            "'refdense-prepare-report/1'", "found None")), error


def test_a_video_is_prepared_into_a_value_that_the_report_counts():
    entry = {"subset": "training", "duration": None, "actions": [[0, 1.0, 12.0], [0, 0.5, 2.0]],
             "origins": ["Walk.txt:1", "Walk.txt:2"]}
    steps = dict(segment_frames=8, fps=24.0, boundary="strict")
    outcome = annotate_video("v", entry, 30, **steps, drop_empty_training=False)
    assert outcome.duration_from_features and outcome.annotation.duration == 10.0  # 30 segments * 8 / 24 fps
    assert outcome.annotation.actions == ((0, 0.5, 10.0),)  # clipped to the video, then merged
    assert (outcome.cleanup.clipped, outcome.cleanup.merged, outcome.skipped) == (1, 1, None)
    empty = annotate_video("w", dict(entry, actions=[], origins=[]), 30, **steps, drop_empty_training=True)
    assert empty.annotation is None and empty.skipped is None  # dropped, not skipped
    report = PrepareReport()
    assert report.videos_written == {} and report.durations_from_features == 0  # nothing counted until added
    report.add(outcome)
    report.add(empty)
    assert report.videos_written == {"training": 1} and report.durations_from_features == 2
    assert report.dropped_empty_training == ["w"] and report.cleanup.clipped == 1


def test_prepare_drops_empty_training_videos_on_request(tmp_path):
    annotations, video_dir, image_h5 = dirty_dataset(tmp_path, np.random.default_rng(1))
    raw = read_raw_annotations("charades", [annotations], classes_file=classes_file(tmp_path))
    report = prepare_dataset(raw, video_dir, image_h5, tmp_path / "out", decomposition=None, name="toy",
                             fps=24.0, drop_empty_training=True, progress=False)
    assert report.dropped_empty_training == ["empty_train"]
    written = read_annotations(tmp_path / "out" / "annotations.json")
    assert "empty_train" not in written and "empty_test" in written
    with h5py.File(tmp_path / "out" / "features.h5") as handle:
        assert "empty_train" not in handle["video"]
    assert read_info(tmp_path / "out").entities == ()


def test_prepare_multithumos_txt_takes_durations_from_features(tmp_path):
    folder = tmp_path / "annotations"
    write(folder / "Walk.txt", "video_validation_0000001 1.0 2.5\nvideo_test_0000002 0.5 30\n")
    raw = read_raw_annotations("multithumos", [folder])
    features = tmp_path / "features.h5"
    with h5py.File(features, "w") as handle:
        for video_id, length in (("video_validation_0000001", 45), ("video_test_0000002", 30)):
            handle[f"video/{video_id}"] = np.ones((length, 4), np.float32)
            handle[f"image/{video_id}"] = np.ones((length, 4), np.float32)
    from refdense.prepare.decompose import shipped_decomposition

    report = prepare_dataset(raw, features, features, tmp_path / "out", decomposition=shipped_decomposition(),
                             name="multithumos", fps=30.0, progress=False)
    assert report.durations_from_features == 2
    written = read_annotations(tmp_path / "out" / "annotations.json")
    assert written["video_validation_0000001"].duration == pytest.approx(45 * 8 / 30)
    assert written["video_test_0000002"].actions == ((20, 0.5, 8.0),)  # clipped to 30 * 8 / 30 s
    assert report.cleanup.clipped == 1
    assert read_info(tmp_path / "out").num_motions == 52


def test_prepare_with_no_usable_video_leaves_no_file(tmp_path):
    annotations = write(tmp_path / "a.json", json.dumps({"v1": {"subset": "training", "duration": 4, "actions": []}}))
    raw = read_raw_annotations("charades", [annotations], classes_file=classes_file(tmp_path))
    folder = tmp_path / "npy"
    folder.mkdir()
    np.save(folder / "v1.npy", np.zeros((0, 4), np.float32))
    with pytest.raises(FeatureError, match="every video was left out"):
        prepare_dataset(raw, folder, folder, tmp_path / "out", decomposition=None, name="x", fps=24.0, progress=False)
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True
    np.save(folder / "other.npy", np.zeros((3, 4), np.float32))
    with pytest.raises(FeatureError, match="no video has both"):
        raw.videos = {"v9": raw.videos["v1"]}
        prepare_dataset(raw, folder, folder, tmp_path / "out", decomposition=None, name="x", fps=24.0, progress=False)


def test_cli_prepare(tmp_path, capsys):
    annotations, video_dir, image_h5 = dirty_dataset(tmp_path, np.random.default_rng(2))
    args = ["prepare", "charades", "--annotations", str(annotations), "--classes", str(classes_file(tmp_path)),
            "--video-features", str(video_dir), "--image-features", str(image_h5), "--out", str(tmp_path / "out")]
    assert main(args + ["--decomposition", "none", "--dtype", "float32"]) == 0
    printed = capsys.readouterr().out
    assert "no_features" in printed and "dataset written" in printed
    with h5py.File(tmp_path / "out" / "features.h5") as handle:
        assert handle["video/merge"].dtype == np.float32
    assert main(args) == 2  # Charades without mapping files and without --decomposition
    assert "--decomposition" in capsys.readouterr().err


KILLED_PREPARE = """
import os, signal, sys
import refdense.prepare.prepare as prepare
from refdense.cli import main

def write_annotations(*args, **kwargs):  # the process dies after features.h5, before the other files
    os.kill(os.getpid(), signal.SIGKILL)

prepare.write_annotations = write_annotations
sys.exit(main(sys.argv[1:]))
"""


def test_prepare_replaces_a_dataset_as_a_whole_even_when_killed_between_files(tmp_path, capsys):
    annotations, video_dir, image_h5 = dirty_dataset(tmp_path, np.random.default_rng(3))
    out = tmp_path / "out"
    args = ["prepare", "charades", "--annotations", str(annotations), "--classes", str(classes_file(tmp_path)),
            "--video-features", str(video_dir), "--image-features", str(image_h5), "--decomposition", "none",
            "--out", str(out)]
    assert main(args) == 0  # float16 features
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    killed = subprocess.run([sys.executable, "-c", KILLED_PREPARE, *args, "--dtype", "float32"])
    assert killed.returncode == -signal.SIGKILL
    staged = [p for p in tmp_path.iterdir() if p.name.startswith("out.tmp-")]
    # the new features, marked as a leftover ...
    assert len(staged) == 1 and sorted(p.name for p in staged[0].iterdir()) == [STAGING_MARKER, "features.h5"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # ... never beside the old dataset.json
    assert main(args + ["--dtype", "float32"]) == 0
    assert not staged[0].exists()  # the next run removed what the killed one left
    with h5py.File(out / "features.h5") as handle:
        assert handle["video/merge"].dtype == np.float32
    assert read_labels(out).info.classes == tuple(CLASSES)
    # A folder that is not a dataset is never replaced.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert main(args[:-1] + [str(mine)]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in (f"{mine}: ", "not a refdense dataset", "thesis.tex")), error
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]


# ------------------------------------------------------------------------------- wrong dataset


def test_files_of_the_other_dataset_are_recognised(tmp_path):
    """MultiTHUMOS files given to `prepare charades` and the reverse: the error says what they look like."""
    thumos = {f"video_{subset}_{i:07d}": {"subset": "training" if subset == "validation" else "testing",
                                          "duration": 30.0, "actions": [[1, 1.0, 2.0]]}
              for subset, i in (("validation", 901), ("validation", 902), ("test", 903))}
    thumos_json = write(tmp_path / "multithumos.json", json.dumps(thumos))
    with pytest.raises(FormatError, match=r"look like MultiTHUMOS, not Charades.*video_test_0000903.*"
                                          r"`refdense prepare multithumos`"):
        read_raw_annotations("charades", [thumos_json], classes_file=classes_file(tmp_path))
    folder = tmp_path / "multithumos_txt"
    write(folder / "Walk.txt", "video_validation_0000901 1.0 2.5\n")
    with pytest.raises(FormatError, match=r"look like MultiTHUMOS, not Charades: multithumos-txt"):
        read_raw_annotations("charades", [folder], classes_file=classes_file(tmp_path))

    charades = {"QX7ZB": {"subset": "training", "duration": 20.0, "actions": [[0, 1.0, 2.0]]},
                "0J4KD": {"subset": "testing", "duration": 25.0, "actions": [[2, 3.0, 9.0]]}}
    with pytest.raises(FormatError, match=r"look like Charades, not MultiTHUMOS.*`refdense prepare charades`"):
        read_raw_annotations("multithumos", [write(tmp_path / "charades.json", json.dumps(charades))])
    csv = write(tmp_path / "charades_csv" / "Charades_v1_train.csv", "id,actions,length\nQX7ZB,,20\n")
    with pytest.raises(FormatError, match=r"look like Charades, not MultiTHUMOS: charades-csv"):
        read_raw_annotations("multithumos", [csv])


def test_features_of_the_other_dataset_are_named(tmp_path):
    annotations = {"QX7ZB": {"subset": "training", "duration": 20.0, "actions": []}}
    raw = read_raw_annotations("charades", [write(tmp_path / "c.json", json.dumps(annotations))],
                           classes_file=classes_file(tmp_path))
    folder = tmp_path / "i3d"
    folder.mkdir()
    for video_id in ("video_validation_0000901", "video_test_0000903"):
        np.save(folder / f"{video_id}.npy", np.zeros((4, 1, 1, 8), np.float32))
    with pytest.raises(FeatureError, match="the features look like MultiTHUMOS's videos"):
        prepare_dataset(raw, folder, folder, tmp_path / "out", decomposition=None, name="charades", fps=24.0,
                        progress=False)
