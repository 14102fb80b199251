"""The seconds-to-segment rule, the clean-up rules and the label decomposition."""

import numpy as np
import pytest

from refdense.data import DatasetInfo, StreamInfo, decompose_labels, dense_labels, recompose_labels, segment_times
from refdense.data.labels import clean_instances, merge_overlaps


def positives(labels, c=0):
    return np.flatnonzero(labels[:, c]).tolist()


def test_segment_times_follow_fps_feat():
    # T = 20 segments over 10 s: fps_feat = 2, segment t sits at t / 2 seconds.
    np.testing.assert_allclose(segment_times(20, 10.0)[:4], [0.0, 0.5, 1.0, 1.5])


def test_strict_rule_excludes_both_boundaries():
    labels, report = dense_labels([(0, 2.0, 5.0)], duration=10.0, num_segments=10, num_classes=1)
    assert positives(labels) == [3, 4]  # 2 < t < 5
    assert labels.dtype == np.uint8 and labels.shape == (10, 1)
    assert report.instances == 1 and not report.changed


def test_inclusive_rule_includes_both_boundaries():
    labels, _ = dense_labels([(0, 2.0, 5.0)], 10.0, 10, 1, boundary="inclusive")
    assert positives(labels) == [2, 3, 4, 5]


def test_strict_rule_never_marks_segment_zero_for_instance_starting_at_zero():
    labels, _ = dense_labels([(0, 0.0, 3.0)], 10.0, 10, 1)
    assert positives(labels) == [1, 2]


def test_unknown_boundary_rule_raises():
    with pytest.raises(ValueError, match="boundary"):
        dense_labels([(0, 2.0, 5.0)], 10.0, 10, 1, boundary="loose")


def test_instance_ending_after_video_is_clipped_and_reported():
    labels, report = dense_labels([(0, 7.5, 11.5), (0, -1.0, 1.5)], 10.0, 10, 1, video_id="v")
    assert positives(labels) == [1, 8, 9]
    assert report.clipped == 2
    assert report.clipped_seconds == pytest.approx(2.5)
    assert report.changed and not report.dropped


def test_invalid_instances_are_dropped_and_counted_with_reasons():
    actions = [(0, 5.0, 5.0), (0, 6.0, 4.0), (0, 10.0, 12.0), (0, 1.0, 3.0)]
    labels, report = dense_labels(actions, 10.0, 10, 1, video_id="vid7")
    assert positives(labels) == [2]
    reasons = sorted(d.reason for d in report.dropped)
    assert reasons == ["end <= start", "end <= start", "starts after the video"]
    assert all(d.video_id == "vid7" for d in report.dropped)
    assert report.to_dict()["dropped_reasons"] == {"end <= start": 2, "starts after the video": 1}
    assert "dropped 3" in report.summary()


def test_overlapping_instances_of_one_class_are_united_and_counted():
    actions = [(0, 1.0, 4.0), (0, 3.0, 6.0), (1, 3.5, 5.0), (0, 8.0, 9.5)]
    labels, report = dense_labels(actions, 10.0, 10, 2)
    assert positives(labels, 0) == [2, 3, 4, 5, 9]
    assert positives(labels, 1) == [4]
    assert report.merged == 1  # the two class-0 instances; class 1 overlapping class 0 is no merge


def test_merge_overlaps_keeps_the_union_per_class_and_the_report_names_what_it_merged():
    actions = [(0, 1.0, 3.0), (0, 2.0, 5.0), (1, 2.5, 4.0), (0, 6.0, 7.0), (0, 5.0, 6.0), (0, 2.5, 2.8)]
    merged = merge_overlaps(actions)
    # touching is no overlap (5.0 and 6.0 start where the union before them ends)
    assert merged == [(0, 1.0, 5.0), (1, 2.5, 4.0), (0, 5.0, 6.0), (0, 6.0, 7.0)]
    # the report counts the same rule: the two class-0 instances that joined [1, 3], with how far it reached
    _, report = clean_instances(actions, 10.0, "v", [f"row {i}" for i in range(len(actions))])
    fixes = [(f.start, f.reason, f.origin) for f in report.fixes if f.kind == "merged"]
    assert report.merged == 2 and [(start, origin) for start, _, origin in fixes] == [(2.0, "row 1"), (2.5, "row 5")]
    assert "reaching 3 s" in fixes[0][1] and "reaching 5 s" in fixes[1][1]


def test_instance_shorter_than_a_segment_is_counted_not_hidden():
    labels, report = dense_labels([(0, 2.1, 2.9)], 10.0, 10, 1)
    assert labels.sum() == 0
    assert report.no_segment == 1 and report.instances == 1


def test_video_without_actions_is_reported():
    labels, report = dense_labels([], 10.0, 10, 3, video_id="empty")
    assert labels.sum() == 0 and report.videos_without_actions == ["empty"]


def test_reports_add_up():
    _, total = dense_labels([(0, 8.0, 12.0)], 10.0, 10, 1, video_id="a")
    _, other = dense_labels([(0, 3.0, 2.0)], 10.0, 10, 1, video_id="b")
    total += other
    assert (total.instances, total.clipped, len(total.dropped)) == (2, 1, 1)


def test_class_out_of_range_raises_naming_the_video():
    with pytest.raises(ValueError, match="vidX.*class id 3"):
        dense_labels([(3, 1.0, 2.0)], 10.0, 10, 3, video_id="vidX")


def make_info(decomposition, entities=("cup", "box"), motions=("lift", "drop")):
    classes = tuple(f"class{c}" for c in range(len(decomposition)))
    streams = {"video": StreamInfo(4, "v"), "image": StreamInfo(4, "i")}
    return DatasetInfo("m", classes, entities, motions, tuple(decomposition), streams)


def test_decomposition_matrices():
    info = make_info([(0, 0), (0, 1), (1, None), (None, 1)])
    np.testing.assert_array_equal(info.entity_matrix(), [[1, 0], [1, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(info.motion_matrix(), [[1, 0], [0, 1], [0, 0], [0, 1]])
    assert info.entity_matrix().dtype == np.float32 and info.motion_matrix().shape == (4, 2)


def test_decomposed_labels_are_clamped_union_and_keep_boundaries():
    info = make_info([(0, 0), (0, 1), (1, None), (None, 1)])
    labels, _ = dense_labels([(0, 1.0, 5.0), (1, 3.0, 7.0), (3, 6.0, 9.0)], 10.0, 10, 4)
    entity = decompose_labels(labels, info.entity_matrix())
    motion = decompose_labels(labels, info.motion_matrix())
    # Classes 0 and 1 share entity 0: its label is their union, clamped to 1 where both are on.
    assert positives(entity, 0) == list(range(2, 7)) and entity.max() == 1
    assert positives(entity, 1) == []
    assert positives(motion, 0) == [2, 3, 4]
    assert positives(motion, 1) == list(range(4, 9))  # classes 1 and 3
    np.testing.assert_array_equal(entity, np.minimum(1, labels.astype(int) @ info.entity_matrix().astype(int)))
    assert entity.dtype == labels.dtype


def test_recomposed_labels_keep_every_action_and_add_the_unbound_ones():
    # classes: (e0, m0), (e0, m1), (e1, m0), (e1, None), (None, m1)
    info = make_info([(0, 0), (0, 1), (1, 0), (1, None), (None, 1)])
    A_ent, A_mot = info.entity_matrix(), info.motion_matrix()
    labels = np.zeros((4, 5), dtype=np.uint8)
    labels[0, 0] = 1  # one action: only itself fits
    labels[1, [1, 2]] = 1  # (e0, m1) and (e1, m0) on: (e0, m0) fits too, and so do the one-part classes
    labels[2, 3] = 1  # (e1, None) alone
    fits = recompose_labels(decompose_labels(labels, A_ent), decompose_labels(labels, A_mot), A_ent, A_mot)
    assert fits.dtype == bool and fits.shape == labels.shape
    assert np.all(fits[labels == 1])  # every action that is on fits
    assert np.flatnonzero(fits[0]).tolist() == [0]
    assert np.flatnonzero(fits[1]).tolist() == [0, 1, 2, 3, 4]  # three classes that are off fit as well
    assert np.flatnonzero(fits[2]).tolist() == [3]
    assert not fits[3].any()
