"""Feature extraction from videos written by the tests (PyAV), with random-weight encoders; no download."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from refdense.prepare.extract import (  # noqa: E402
    ClipImageEncoder,
    I3DVideoEncoder,
    S3DVideoEncoder,
    decode_chunks,
    extract_features,
    extract_video_i3d,
    extract_video_segments,
    i3d_crop,
    i3d_windows,
    list_videos,
    stream_i3d_windows,
)
from refdense.prepare.i3d import InceptionI3d  # noqa: E402


def write_video(path, frames=40, size=64, rate=24, shade=None):
    """A tiny MPEG-4 video; frame i is uniformly grey at ``shade(i)`` (or noise) so tests can tell frames apart."""
    rng = np.random.default_rng(frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "1"}
        for i in range(frames):
            if shade is None:
                image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            else:
                image = np.full((size, size, 3), shade(i), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def encoders():
    import open_clip
    from torchvision.models.video import s3d

    torch.manual_seed(0)
    # A random-weight CLIP with RN50's modified-ResNet image tower, shrunk (1 block per stage,
    # width 8) so the test runs in seconds; same 1024-d embedding as RN50.
    vision = open_clip.model.CLIPVisionCfg(layers=(1, 1, 1, 1), width=8, image_size=32)
    text = open_clip.model.CLIPTextCfg(context_length=8, vocab_size=16, width=8, heads=1, layers=1)
    clip = open_clip.model.CLIP(embed_dim=1024, vision_cfg=vision, text_cfg=text)
    return ClipImageEncoder(clip), S3DVideoEncoder(s3d(weights=None), size=32)


def test_decode_segments_and_resample(tmp_path):
    path = write_video(tmp_path / "a.mp4", frames=43, rate=10)
    chunks = list(decode_chunks(path, chunk_segments=2, short_side=32))
    assert [len(c) for c in chunks] == [16, 16, 8]  # 43 frames: 5 whole segments, the 3-frame tail dropped
    assert chunks[0].shape[1:] == (32, 32, 3) and chunks[0].dtype == np.uint8
    doubled = sum(len(c) for c in decode_chunks(path, fps=20, short_side=32))
    assert doubled == 80  # 4.3 s at 20 fps = 86 frames -> 10 whole segments


def grey_levels(frames):
    """A stand-in image encoder: the mean grey level of each frame it is given, (n, 1)."""
    return frames.mean(axis=(1, 2, 3))[:, None].astype(np.float32)


def test_image_feature_comes_from_the_middle_frame_of_each_i3d_segment(tmp_path):
    path = write_video(tmp_path / "shades.mp4", frames=32, shade=lambda i: 7 * i)
    image, video = extract_video_i3d(path, grey_levels, None)
    assert video is None and image.shape == (3, 1)  # 32 frames: ceil(32 / 8) - 1 = 3 vectors
    np.testing.assert_allclose(image[:, 0], [28, 84, 140], atol=4)  # frames 4, 12, 20
    short = write_video(tmp_path / "short.mp4", frames=8)
    with pytest.raises(ValueError, match="8 frames, fewer than the 9 I3D needs for one vector"):
        extract_video_i3d(short, grey_levels, None)


@pytest.mark.course
def test_extract_resumes_and_survives_a_corrupt_video(tmp_path, encoders):
    image_encoder, video_encoder = encoders
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "vid_a.mp4", frames=24)
    write_video(folder / "vid_b.avi", frames=17)
    (folder / "broken.mp4").write_bytes(b"\x00\x01 this is not a video" * 50)
    write_video(folder / "tiny.mp4", frames=5)
    (folder / "notes.txt").write_text("not a video")
    out = tmp_path / "features.h5"

    first = extract_features(list_videos(folder), out, image_encoder=image_encoder, video_encoder=video_encoder,
                             chunk_segments=2, progress=False)
    assert sorted(first.extracted) == ["vid_a", "vid_b"]
    assert set(first.failed) == {"broken", "tiny"} and "shorter than one segment" in first.failed["tiny"]
    assert "broken" in first.summary()
    with h5py.File(out) as handle:
        assert handle["video/vid_a"].shape == (3, 1024) and handle["image/vid_a"].shape == (3, 1024)
        assert handle["video/vid_b"].shape == (2, 1024)
        assert handle["image/vid_a"].dtype == np.float16
        stored = handle["image/vid_a"][()]
    assert not (tmp_path / "features.h5.parts").exists()

    write_video(folder / "vid_c.mp4", frames=16)
    second = extract_features(list_videos(folder), out, image_encoder=image_encoder, video_encoder=video_encoder,
                              chunk_segments=8, progress=False)
    assert sorted(second.already_done) == ["vid_a", "vid_b"] and second.extracted == ["vid_c"]
    with h5py.File(out) as handle:
        assert sorted(handle["video"]) == ["vid_a", "vid_b", "vid_c"]
        np.testing.assert_array_equal(handle["image/vid_a"][()], stored)  # kept, not recomputed


def segment_means(frames):
    """A cheap stand-in S3D whose output for a segment depends on that segment only."""
    return frames.reshape(-1, 8, *frames.shape[1:]).mean(axis=(1, 2, 3)).astype(np.float32)


segment_means.layout = "segments"


def test_chunk_context_is_cut_back_exactly(tmp_path):
    """Chunks carry one segment of context on each side; what comes out must not depend on the chunking."""
    path = write_video(tmp_path / "v.mp4", frames=48)
    outputs = [extract_video_segments(path, grey_levels, segment_means, chunk_segments=n) for n in (1, 2, 32)]
    for image, video in outputs:
        assert image.shape == (6, 1) and video.shape == (6, 3)
        np.testing.assert_allclose(image, outputs[-1][0])
        np.testing.assert_allclose(video, outputs[-1][1])


def test_extract_with_user_i3d_features(tmp_path):
    image_encoder = grey_levels
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "vid_a.mp4", frames=40)
    write_video(folder / "vid_b.mp4", frames=24)
    i3d = tmp_path / "i3d"
    i3d.mkdir()
    np.save(i3d / "vid_a.npy", np.ones((6, 1, 1, 12), np.float32))  # two more than I3D gives for 40 frames
    report = extract_features(list_videos(folder), tmp_path / "f.h5", image_encoder=image_encoder,
                              video_features=i3d, progress=False)
    assert report.extracted == ["vid_a"] and report.truncated == ["vid_a"]
    assert "no I3D features" in report.failed["vid_b"]
    with h5py.File(tmp_path / "f.h5") as handle:
        assert handle["video/vid_a"].shape == (4, 12) and handle["image/vid_a"].shape == (4, 1)
    with pytest.raises(ValueError, match="exactly one"):
        extract_features([], tmp_path / "g.h5", image_encoder=image_encoder)


@pytest.mark.course
def test_missing_clip_weights_offline_fail_at_once_with_the_instruction(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE unset, nothing cached, no network: no download is tried, the message says what to do."""
    import huggingface_hub.constants
    import open_clip

    from refdense import weights
    from refdense.prepare import extract

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    probed = []

    def no_network(address, timeout):
        probed.append((address, timeout))
        raise OSError("network is unreachable")

    def must_not_download(*args, **kwargs):
        raise AssertionError("open_clip was asked to download")

    monkeypatch.setattr(weights.socket, "create_connection", no_network)
    monkeypatch.setattr(open_clip, "create_model", must_not_download)
    with pytest.raises(weights.MissingWeightsError) as info:
        extract.load_clip_image_encoder(None, "cpu")
    assert probed == [(("huggingface.co", 443), weights.PROBE_SECONDS)]
    message = str(info.value)
    for words in ("cannot be reached", "refdense weights download clip-rn50", "--image-weights PATH"):
        assert words in message


# ------------------------------------------------------------------------------------------ I3D


def test_i3d_windows_are_the_scripts():
    assert i3d_windows(9) == [(0, 9)] and i3d_windows(1600) == [(0, 1600)]
    assert i3d_windows(1601) == [(1, 1600)]
    assert i3d_windows(1700) == [(1, 1657), (1553, 1699)]
    assert i3d_windows(3300) == [(1, 1657), (1553, 3257), (3153, 3299)]


@pytest.mark.parametrize("frames", [10, 1600, 1601, 1657, 1658, 1700, 3257, 3258, 3259, 5000])
def test_windows_cut_while_decoding_are_the_same(frames):
    streamed = list(stream_i3d_windows(iter(range(frames))))
    assert [(start, start + len(window)) for start, window in streamed] == i3d_windows(frames)
    assert all(window == list(range(start, start + len(window))) for start, window in streamed)


def test_i3d_crop_scales_up_small_frames_and_cuts_the_centre():
    rows = np.repeat(np.arange(480, dtype=np.uint8)[:, None], 640, axis=1) // 2
    large = np.stack([rows, rows, rows], axis=-1)  # 480 x 640: no scaling, rows 128..351
    np.testing.assert_array_equal(i3d_crop(large), large[128:352, 208:432])
    small = np.full((100, 150, 3), 77, np.uint8)
    small[:, :75] = 11
    crop = i3d_crop(small)  # scaled by 2.26 to 226 x 339, cut at top 1, left round(57.5) = 58
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    boundary = round(75 * 2.26) - 58  # where the two halves meet in the crop
    assert (crop[:, : boundary - 2] == 11).all() and (crop[:, boundary + 2:] == 77).all()


class RecordingI3D(torch.nn.Module):
    """Stands for InceptionI3d: records its input and gives ceil(L / 8) - 1 vectors of the frames' mean."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def features(self, x):
        self.inputs.append(x)
        count = -(-x.shape[2] // 8) - 1
        return x.mean(dim=(1, 3, 4))[:, None, :count, None, None].expand(1, 1024, count, 1, 1)


def test_i3d_encoder_maps_pixels_to_plus_minus_one():
    recording = RecordingI3D()
    frames = np.zeros((17, 224, 224, 3), np.uint8)
    frames[8:] = 255
    out = I3DVideoEncoder(recording)(frames)
    assert out.shape == (2, 1024) and out.dtype == np.float32
    x = recording.inputs[0]
    assert x.shape == (1, 3, 17, 224, 224)
    assert x[0, :, :8].eq(-1).all() and x[0, :, 8:].eq(1).all()


def test_i3d_streams_of_a_small_video(tmp_path):
    """The whole network on a 40-frame video: 4 vectors of 1024, each beside the image of its segment's middle."""
    torch.manual_seed(0)
    path = write_video(tmp_path / "v.mp4", frames=40, shade=lambda i: 6 * i)
    image, video = extract_video_i3d(path, grey_levels, I3DVideoEncoder(InceptionI3d(400)))
    assert video.shape == (4, 1024) and video.dtype == np.float32 and np.isfinite(video).all()
    np.testing.assert_allclose(image[:, 0], [24, 72, 120, 168], atol=4)  # frames 4, 12, 20, 28


def test_a_long_video_goes_through_the_scripts_overlapping_windows(tmp_path):
    path = write_video(tmp_path / "long.mp4", frames=1700, size=16, shade=lambda i: 40 + 20 * (i % 8))
    lengths = []

    def i3d_stand_in(frames):
        lengths.append(len(frames))
        assert frames.shape[1:] == (224, 224, 3) and frames.dtype == np.uint8
        return np.zeros((-(-len(frames) // 8) - 1, 1024), np.float32)

    image, video = extract_video_i3d(path, grey_levels, i3d_stand_in)
    assert lengths == [1656, 146]  # frames [1, 1657) and [1553, 1699)
    assert video.shape == (206 + 18, 1024) and image.shape == (206 + 18, 1)
    np.testing.assert_allclose(image[:, 0], 140, atol=4)  # middle frames 1 + 8i + 4 and 1553 + 8i + 4: i % 8 == 5
