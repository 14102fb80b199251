"""DenseActionDataset: splits, the random window sampler, whole-video evaluation, collate."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from refdense.data import DenseActionDataset, collate, read_info, read_labels, split_ids


def test_splits_are_disjoint_and_validation_comes_from_training(tiny_dataset):
    annotations = read_labels(tiny_dataset).annotations
    training = split_ids(annotations, "training", 0.25, seed=3)
    validation = split_ids(annotations, "validation", 0.25, seed=3)
    testing = split_ids(annotations, "testing")
    assert len(validation) == 8 and len(training) == 24 and len(testing) == 8
    assert not set(training) & set(validation) and not set(testing) & (set(training) | set(validation))
    assert all(annotations[v].subset == "training" for v in validation)
    assert split_ids(annotations, "validation", 0.25, seed=3) == validation
    assert split_ids(annotations, "validation", 0.25, seed=4) != validation
    with pytest.raises(ValueError, match="split: expected one of"):
        split_ids(annotations, "train")


def test_eval_mode_returns_whole_videos_with_decomposed_labels(tiny_dataset):
    data = read_labels(tiny_dataset)
    dataset = DenseActionDataset(tiny_dataset, "testing", train=False)
    info = read_info(tiny_dataset)
    assert len(dataset) == 8
    for index in range(len(dataset)):
        item = dataset[index]
        length = data.lengths[item["video_id"]]
        assert item["start"] == 0 and item["video"].shape == (length, info.video_dim)
        assert item["image"].shape == (length, info.image_dim) and item["video"].dtype == np.float32
        np.testing.assert_array_equal(item["labels"], data.labels[item["video_id"]])
        expected = np.minimum(1, item["labels"].astype(int) @ info.motion_matrix().astype(int))
        np.testing.assert_array_equal(item["motion_labels"], expected)


def test_train_windows_are_consecutive_slices_of_the_video(tiny_dataset):
    whole = DenseActionDataset(tiny_dataset, "training", train=False)
    windows = DenseActionDataset(tiny_dataset, "training", window=16, generator=torch.Generator().manual_seed(0))
    starts = set()
    for index in range(len(windows)):
        item, full = windows[index], whole[index]
        assert item["video"].shape[0] == 16
        start = item["start"]
        starts.add(start)
        assert 0 <= start <= full["video"].shape[0] - 16
        np.testing.assert_array_equal(item["video"], full["video"][start:start + 16])
        np.testing.assert_array_equal(item["labels"], full["labels"][start:start + 16])
    assert len(starts) > 3  # offsets vary


def test_video_shorter_than_window_comes_whole(tiny_dataset):
    dataset = DenseActionDataset(tiny_dataset, "training", window=10_000)
    assert [dataset[i]["video"].shape[0] for i in range(len(dataset))] == dataset.lengths()


def offsets(dataset):
    return [dataset[i]["start"] for i in range(len(dataset))]


def test_window_sampling_is_reproducible_from_torch_rng_only(tiny_dataset):
    seeded = [DenseActionDataset(tiny_dataset, window=8, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert offsets(seeded[0]) == offsets(seeded[1]) != offsets(seeded[2])
    # Without a generator the global torch RNG decides: restoring its state replays the offsets.
    dataset = DenseActionDataset(tiny_dataset, window=8)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    first = offsets(dataset)
    torch.set_rng_state(state)
    assert offsets(dataset) == first


def test_dataloader_generator_governs_shuffling_and_windows(tiny_dataset):
    dataset = DenseActionDataset(tiny_dataset, window=8)

    def run(seed):
        torch.manual_seed(seed)
        loader = DataLoader(dataset, batch_size=4, shuffle=True, collate_fn=collate,
                            generator=torch.Generator().manual_seed(seed))
        return [(tuple(b.video_ids), b.video.sum().item()) for b in loader]

    assert run(7) == run(7) != run(8)


def test_collate_pads_and_masks(tiny_dataset):
    dataset = DenseActionDataset(tiny_dataset, "testing", train=False)
    items = [dataset[0], dataset[1], dataset[2]]
    batch = collate(items)
    lengths = [item["video"].shape[0] for item in items]
    longest = max(lengths)
    info = read_info(tiny_dataset)
    assert batch.video.shape == (3, longest, info.video_dim) and batch.image.shape == (3, longest, info.image_dim)
    assert batch.labels.shape == (3, longest, info.num_classes)
    assert batch.entity_labels.shape == (3, longest, info.num_entities)
    assert batch.motion_labels.shape == (3, longest, info.num_motions)
    assert batch.mask.dtype == torch.bool and batch.labels.dtype == torch.float32
    assert batch.mask.sum(1).tolist() == lengths
    assert batch.video_ids == [item["video_id"] for item in items] and len(batch) == 3
    for b, length in enumerate(lengths):
        torch.testing.assert_close(batch.video[b, :length], torch.from_numpy(items[b]["video"]))
        assert not batch.mask[b, length:].any()
        assert batch.video[b, length:].abs().sum() == 0 and batch.labels[b, length:].sum() == 0
    moved = batch.to("cpu")
    assert moved.video_ids == batch.video_ids and torch.equal(moved.mask, batch.mask)
    with pytest.raises(ValueError, match="at least one item"):
        collate([])


def test_drop_empty_leaves_out_videos_without_actions(make_dataset):
    annotations = {
        "full": {"subset": "training", "duration": 10.0, "actions": [[0, 1.0, 5.0]]},
        "empty": {"subset": "training", "duration": 10.0, "actions": []},
    }
    root = make_dataset(annotations=annotations)
    kept = DenseActionDataset(root, "training", validation_fraction=0.0)
    dropped = DenseActionDataset(root, "training", validation_fraction=0.0, drop_empty=True)
    assert kept.video_ids == ["empty", "full"]
    assert dropped.video_ids == ["full"] and dropped.dropped_empty == ["empty"]
    assert kept.report.videos_without_actions == ["empty"]


def test_empty_split_and_bad_arguments_raise(make_dataset):
    root = make_dataset()
    with pytest.raises(ValueError, match="split 'validation' holds no videos"):
        DenseActionDataset(root, "validation", validation_fraction=0.0)
    with pytest.raises(ValueError, match="validation_fraction"):
        DenseActionDataset(root, "training", validation_fraction=1.0)
    with pytest.raises(ValueError, match="window"):
        DenseActionDataset(root, "training", window=0)


def test_dirty_annotations_load_with_a_report(make_dataset):
    annotations = {
        "v": {"subset": "testing", "duration": 10.0, "actions": [[0, 8.0, 11.0], [1, 4.0, 3.0], [0, 1.0, 3.0], [0, 2.0, 4.0]]},
    }
    dataset = DenseActionDataset(make_dataset(annotations=annotations), "testing", train=False)
    report = dataset.report.to_dict()
    assert (report["clipped"], report["dropped"], report["merged_overlaps"]) == (1, 1, 1)
    assert np.flatnonzero(dataset[0]["labels"][:, 0]).tolist() == [2, 3, 9]
