"""dataset.json, annotations.json and features.h5: round trips and every bad input."""

import json

import h5py
import numpy as np
import pytest

from refdense.data import (
    DatasetError,
    DatasetInfo,
    DenseActionDataset,
    parse_annotations,
    read_annotations,
    read_info,
    read_labels,
    write_info,
)


def test_info_round_trip(make_dataset):
    root = make_dataset()
    info = read_info(root)
    assert info.classes == ("a", "b", "c") and info.decomposition == ((0, 0), (0, 1), (None, 1))
    assert (info.num_classes, info.num_entities, info.num_motions) == (3, 1, 2)
    assert (info.video_dim, info.image_dim) == (4, 3)
    assert DatasetInfo.from_json(info.to_json()) == info
    raw = json.loads((root / "dataset.json").read_text())
    assert raw["format"] == "refdense-dataset/1" and raw["decomposition"][2] == [None, 1]


def edit_info(root, **changes):
    path = root / "dataset.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"decomposition": [[0, 0], [0, 1], [None, 2]]}, r"decomposition\[2\].*motion.*\[0, 2\).*found 2"),
        ({"decomposition": [[0, 0], [0, 1]]}, r"decomposition.*\[entity, motion\].*\(3\).*found 2"),
        ({"decomposition": [[0, 0], [0, 1], [-1, None]]}, r"decomposition\[2\].*entity.*found -1"),
        ({"boundary": "loose"}, r"boundary.*'strict', 'inclusive'.*'loose'"),
        ({"classes": ["a", "a", "c"]}, r"classes.*duplicates \['a'\]"),
        ({"streams": {"video": {"dim": 4, "encoder": "x"}}}, r"streams.*\['video', 'image'\].*\['video'\]"),
        ({"streams": {"video": {"dim": 0, "encoder": "x"}, "image": {"dim": 3, "encoder": "y"}}}, r"streams.video.dim.*found 0"),
        ({"fps": -1}, r"fps.*found -1"),
        ({"format": "other/2"}, r"format.*'other/2'"),
        ({"colour": "red"}, r"unknown key.*colour"),
    ],
)
def test_malformed_info_raises_naming_the_file(make_dataset, changes, message):
    path = edit_info(make_dataset(), **changes)
    with pytest.raises(DatasetError, match=message) as error:
        read_info(path.parent)
    assert str(path) in str(error.value)


def test_missing_or_broken_files_raise(make_dataset, tmp_path):
    with pytest.raises(DatasetError, match="dataset.json: file not found"):
        read_info(tmp_path)
    root = make_dataset()
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="dataset.json: not valid JSON"):
        read_info(root)
    root = make_dataset()
    data = json.loads((root / "dataset.json").read_text())
    del data["classes"]
    (root / "dataset.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"dataset.json: missing key classes"):
        read_info(root)
    root = make_dataset()
    (root / "annotations.json").unlink()
    with pytest.raises(DatasetError, match="annotations.json: file not found"):
        read_labels(root)
    root = make_dataset()
    (root / "features.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(DatasetError, match="features.h5: not a readable HDF5 file"):
        read_labels(root)
    root = make_dataset()
    (root / "features.h5").unlink()
    with pytest.raises(DatasetError, match="features.h5: file not found"):
        read_labels(root)


def test_one_based_ids_are_shifted_to_zero():
    raw = {"v": {"subset": "testing", "duration": 5.0, "actions": [[1, 0.0, 1.0], [65, 2.0, 3.0]]}}
    annotations = parse_annotations(raw, num_classes=65, one_based=True)
    assert [a[0] for a in annotations["v"].actions] == [0, 64]
    with pytest.raises(DatasetError, match=r"video 'v'.*class id 65.*0\.\.64.*0-based"):
        parse_annotations(raw, num_classes=65)
    zero = {"v": {"subset": "testing", "duration": 5.0, "actions": [[0, 0.0, 1.0]]}}
    with pytest.raises(DatasetError, match=r"video 'v'.*class id 0.*1\.\.65.*1-based"):
        parse_annotations(zero, num_classes=65, one_based=True)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"subset": "train", "duration": 5.0, "actions": []}, r"subset.*\['training', 'testing'\].*'train'"),
        ({"subset": "training", "duration": 0, "actions": []}, r"duration.*positive.*found 0"),
        ({"subset": "training", "duration": 5.0}, r"missing keys.*\['actions'\]"),
        ({"subset": "training", "duration": 5.0, "actions": [[0, 1.0]]}, r"actions\[0\].*\[class, start, end\].*\[0, 1\.0\]"),
        ({"subset": "training", "duration": 5.0, "actions": [[1.5, 1.0, 2.0]]}, r"actions\[0\].*integer class id.*found 1\.5"),
        ({"subset": "training", "duration": 5.0, "actions": [[0, 1.0, float("nan")]]}, r"actions\[0\].*finite.*nan"),
        ({"subset": "training", "duration": 5.0, "actions": [[7, 1.0, 2.0]]}, r"actions\[0\].*class id 7.*0\.\.2"),
    ],
)
def test_malformed_annotations_raise_naming_file_and_video(make_dataset, entry, message):
    root = make_dataset()
    path = root / "annotations.json"
    data = json.loads(path.read_text())
    data["train2"] = entry
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=message) as error:
        read_annotations(path, num_classes=3)
    assert str(path) in str(error.value) and "'train2'" in str(error.value)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400])
def test_class_ids_that_are_no_integer_raise_naming_file_and_video(make_dataset, token):
    path = make_dataset() / "annotations.json"
    path.write_text('{"v1": {"subset": "training", "duration": 10.0, "actions": [[0, 1, 2], [%s, 1.0, 2.0]]}}' % token)
    with pytest.raises(DatasetError, match=r"annotations.json.*video 'v1'.*actions\[1\].*integer class id"):
        read_annotations(path, num_classes=3)


def test_a_video_id_given_twice_raises(make_dataset):
    path = make_dataset() / "annotations.json"
    entry = '{"subset": "training", "duration": 10.0, "actions": [[0, 1, 2]]}'
    path.write_text('{"v1": %s, "v2": %s, "v1": %s}' % (entry, entry, entry.replace("[0, 1, 2]", "")))
    with pytest.raises(DatasetError, match=r"annotations.json.*'v1'.*twice"):
        read_annotations(path)


def test_class_id_out_of_range_fails_when_loading(make_dataset):
    root = make_dataset(annotations={"v1": {"subset": "training", "duration": 10.0, "actions": [[3, 1.0, 2.0]]}})
    with pytest.raises(DatasetError, match=r"video 'v1'.*class id 3.*0\.\.2"):
        read_labels(root)


def test_video_in_annotations_but_not_in_features(make_dataset):
    root = make_dataset()
    with h5py.File(root / "features.h5", "a") as f:
        del f["video/test1"], f["image/test1"]
    with pytest.raises(DatasetError, match=r"annotations.json vs .*features.h5: video 'test1'.*no features"):
        read_labels(root)


def test_video_in_features_but_not_in_annotations(make_dataset):
    root = make_dataset()
    with h5py.File(root / "features.h5", "a") as f:
        f["video/extra"] = np.zeros((10, 4), np.float32)
        f["image/extra"] = np.zeros((10, 3), np.float32)
    with pytest.raises(DatasetError, match=r"annotations.json vs .*features.h5: video 'extra'.*no annotation"):
        read_labels(root)


def test_video_in_one_stream_only(make_dataset):
    root = make_dataset()
    with h5py.File(root / "features.h5", "a") as f:
        del f["image/train1"]
    with pytest.raises(DatasetError, match=r"features.h5.*video 'train1'.*video/.*image/"):
        read_labels(root)


def test_stream_lengths_that_differ(make_dataset):
    root = make_dataset()
    with h5py.File(root / "features.h5", "a") as f:
        del f["image/train2"]
        f["image/train2"] = np.zeros((9, 3), np.float32)
    with pytest.raises(DatasetError, match=r"features.h5: video 'train2'.*video 10.*image 9"):
        read_labels(root)


def test_feature_dimension_that_differs_from_dataset_json(make_dataset):
    root = make_dataset()
    with h5py.File(root / "features.h5", "a") as f:
        del f["video/train2"]
        f["video/train2"] = np.zeros((10, 5), np.float32)
    with pytest.raises(DatasetError, match=r"features.h5: video 'train2'.*video.*4.*dataset.json.*found 5"):
        read_labels(root)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_raise(make_dataset, bad):
    root = make_dataset()
    with h5py.File(root / "features.h5", "a") as f:
        f["image/test1"][4, 1] = bad
    with pytest.raises(DatasetError, match=r"features.h5: video 'test1'.*image.*1 NaN/Inf.*segment 4"):
        DenseActionDataset(root, "testing", train=False)


def test_write_info_is_atomic(make_dataset, monkeypatch):
    root = make_dataset()
    before = (root / "dataset.json").read_bytes()
    info = read_info(root)

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dump", fail)
    with pytest.raises(KeyboardInterrupt):
        write_info(root, info)
    assert (root / "dataset.json").read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == ["annotations.json", "dataset.json", "features.h5"]
