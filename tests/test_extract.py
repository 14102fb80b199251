"""Feature extraction from videos written by the tests (PyAV), with random-weight encoders; no download."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from refdense.prepare.extract import (  # noqa: E402
    ClipImageEncoder,
    S3DVideoEncoder,
    decode_chunks,
    extract_features,
    list_videos,
)


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


def test_image_feature_comes_from_the_middle_frame(tmp_path):
    path = write_video(tmp_path / "shades.mp4", frames=24, shade=lambda i: 10 * i)
    seen = []

    def grey_level(frames, segment_frames=8):
        middle = frames[segment_frames // 2::segment_frames]
        seen.append(middle.mean(axis=(1, 2, 3)))
        return middle.reshape(len(middle), -1)[:, :4].astype(np.float32)

    from refdense.prepare.extract import extract_video

    image, video = extract_video(path, grey_level, None, chunk_segments=1)
    assert image.shape == (3, 4) and video is None
    np.testing.assert_allclose(np.concatenate(seen), [40, 120, 200], atol=4)  # frames 4, 12, 20


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


def segment_means(frames, segment_frames=8):
    """A cheap stand-in encoder whose output for a segment depends on that segment only."""
    return frames.reshape(-1, segment_frames, *frames.shape[1:]).mean(axis=(1, 2, 3)).astype(np.float32)


def middle_means(frames, segment_frames=8):
    return frames[segment_frames // 2::segment_frames].mean(axis=(1, 2, 3))[:, None].astype(np.float32)


def test_chunk_context_is_cut_back_exactly(tmp_path):
    """Chunks carry one segment of context on each side; what comes out must not depend on the chunking."""
    from refdense.prepare.extract import extract_video

    path = write_video(tmp_path / "v.mp4", frames=48)
    outputs = [extract_video(path, middle_means, segment_means, chunk_segments=n) for n in (1, 2, 32)]
    for image, video in outputs:
        assert image.shape == (6, 1) and video.shape == (6, 3)
        np.testing.assert_allclose(image, outputs[-1][0])
        np.testing.assert_allclose(video, outputs[-1][1])


def test_extract_with_user_i3d_features(tmp_path):
    image_encoder = middle_means
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "vid_a.mp4", frames=40)
    write_video(folder / "vid_b.mp4", frames=24)
    i3d = tmp_path / "i3d"
    i3d.mkdir()
    np.save(i3d / "vid_a.npy", np.ones((6, 1, 1, 12), np.float32))  # one segment more than the 5 decoded
    report = extract_features(list_videos(folder), tmp_path / "f.h5", image_encoder=image_encoder,
                              video_features=i3d, progress=False)
    assert report.extracted == ["vid_a"] and report.truncated == ["vid_a"]
    assert "no I3D features" in report.failed["vid_b"]
    with h5py.File(tmp_path / "f.h5") as handle:
        assert handle["video/vid_a"].shape == (5, 12) and handle["image/vid_a"].shape == (5, 1)
    with pytest.raises(ValueError, match="exactly one"):
        extract_features([], tmp_path / "g.h5", image_encoder=image_encoder)


def test_missing_weights_offline_give_a_clear_error(monkeypatch):
    import open_clip

    from refdense.prepare import extract

    def offline(*args, **kwargs):
        raise OSError("no internet")

    monkeypatch.setattr(open_clip, "create_model", offline)
    with pytest.raises(RuntimeError, match="--clip-weights"):
        extract.load_clip_image_encoder("openai", "cpu")
