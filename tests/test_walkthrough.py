"""data/README.md's walk-through, run as it is written, on a fresh copy with invented official files.

The blocks marked ``<!-- walkthrough: NAME -->`` in data/README.md hold only ``refdense`` commands
(and comments); each command runs here with exactly the arguments written there, in a fresh folder
holding a copy of the shipped ``configs/`` and the files the README says to download, invented in the official
formats: Charades' CSVs, class, object, verb and mapping lists, MultiTHUMOS' per-class files, tiny
videos, I3D and CLIP RN50 checkpoints of random weights (``refdense weights download`` writes them,
its network calls answered here). No Charades file or class name is used.

One change to the copy: the recipes in its ``configs/`` are shrunk to a model and a number of epochs
that a CPU test affords (the shipped Charades recipe is a 90 M-parameter model trained for 25
epochs); every other key is the shipped one.
"""

from __future__ import annotations

import io
import shlex
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from refdense import weights
from refdense.cli import main
from refdense.train.config import CONFIGS

av = pytest.importorskip("av")

README = Path(__file__).resolve().parent.parent / "data" / "README.md"
CHARADES_TRAIN = ("QX7ZB", "0J4KD", "M2P9T", "W8L3C", "H5N1R", "Z3V6Y", "K9D2S")
CHARADES_TEST = ("T4G8F", "B7X1Q")
THUMOS_TRAIN = tuple(f"video_validation_{i:07d}" for i in range(901, 908))
THUMOS_TEST = tuple(f"video_test_{i:07d}" for i in range(901, 903))
FRAMES = 32  # 1.33 s at 24 fps: 3 I3D vectors per video
SMALL_MODEL = {"data": {"window": 16},
               "model": {"dim": 32, "heads": 2, "head_dim": 16, "blocks": 1, "strides": [2, 4], "max_len": 16,
                         "local_hidden": 64},
               "optim": {"epochs": 2},
               "run": {"num_workers": 0, "device": "cpu", "eval_every": 1}}


def walkthrough(name: str) -> list[list[str]]:
    """The commands of the README block ``<!-- walkthrough: name -->``, as argument lists after ``refdense``."""
    text = README.read_text(encoding="utf-8")
    marker = f"<!-- walkthrough: {name} -->\n```bash\n"
    assert marker in text, f"{README}: no block {marker!r}"
    block = text.split(marker, 1)[1].split("```", 1)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            assert argv[0] == "refdense", f"{README}: the walk-through runs refdense commands only, found {line!r}"
            commands.append(argv[1:])
    return commands


def run(commands: list[list[str]], capsys) -> str:
    out = []
    for argv in commands:
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 0, f"refdense {shlex.join(argv)} exited with {code}:\n{captured.out}\n{captured.err}"
        out.append(captured.out)
    return "\n".join(out)


def write_video(path: Path, rate: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width = stream.height = 48
        stream.pix_fmt = "yuv420p"
        for _ in range(FRAMES):
            image = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def charades_downloads(root: Path) -> None:
    """Charades.zip and Charades_v1_480.zip as the official files lay them out, with invented content."""
    folder = root / "downloads" / "Charades"
    write(folder / "Charades_v1_classes.txt", "c000 Polishing a lantern\nc001 Holding a lantern\n"
          "c002 Polishing a kettle\nc003 Holding a kettle\nc004 Stretching\nc005 Whistling\n")
    write(folder / "Charades_v1_objectclasses.txt", "o000 None\no001 lantern\no002 kettle\n")
    write(folder / "Charades_v1_verbclasses.txt", "v000 polish\nv001 hold\nv002 stretch\nv003 whistle\n")
    write(folder / "Charades_v1_mapping.txt",
          "c000 o001 v000\nc001 o001 v001\nc002 o002 v000\nc003 o002 v001\nc004 o000 v002\nc005 o000 v003\n")
    header = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
    for subset, ids in (("train", CHARADES_TRAIN), ("test", CHARADES_TEST)):
        rows = []
        for i, video_id in enumerate(ids):
            actions = f"c{i % 6:03d} 0.10 1.10;c{(i + 1) % 6:03d} 0.40 1.60"  # the second ends after the video
            rows.append(f'{video_id},S{i:02d},Attic,6,7,Yes,"A person waits.",lantern,"A person waits.",'
                        f'"{actions}",1.33\n')
            write_video(root / "downloads" / "Charades_v1_480" / f"{video_id}.mp4", rate=24, seed=i)
        write(folder / f"Charades_v1_{subset}.csv", header + "".join(rows))


def multithumos_downloads(root: Path) -> None:
    """THUMOS'14 videos, MultiTHUMOS' per-class files and I3D features (T', 1, 1, 1024), invented."""
    rng = np.random.default_rng(0)
    classes = ("Walk", "Run", "Jump", "TalkToCamera")
    lines = {name: [] for name in classes}
    for i, video_id in enumerate(THUMOS_TRAIN + THUMOS_TEST):
        subset = "validation" if "validation" in video_id else "test"
        write_video(root / "downloads" / "thumos14" / subset / f"{video_id}.mp4", rate=30, seed=100 + i)
        lines[classes[i % 4]].append(f"{video_id} 0.05 0.75\n")
        lines[classes[(i + 1) % 4]].append(f"{video_id} 0.30 0.60\n")
        features = root / "downloads" / "multithumos_i3d" / f"{video_id}.npy"
        features.parent.mkdir(parents=True, exist_ok=True)
        np.save(features, rng.standard_normal((3, 1, 1, 1024)).astype(np.float32))
    for name, rows in lines.items():
        write(root / "downloads" / "multithumos" / "annotations" / f"{name}.txt", "".join(rows))


def shrink_recipes(root: Path) -> None:
    for name in ("charades", "multithumos"):
        path = root / "configs" / f"{name}.yaml"
        recipe = yaml.safe_load(path.read_text())
        for section, values in SMALL_MODEL.items():
            recipe[section].update(values)
        path.write_text(yaml.safe_dump(recipe))


@pytest.fixture
def offline_weights(tmp_path_factory, monkeypatch):
    """`refdense weights download` answered without network: random-weight I3D and CLIP RN50 files."""
    import huggingface_hub
    import open_clip

    from refdense.prepare.i3d import InceptionI3d

    torch.manual_seed(0)
    clip = tmp_path_factory.mktemp("clip") / "open_clip_model.safetensors"
    from safetensors.torch import save_file

    model = open_clip.create_model("RN50", pretrained=None, force_quick_gelu=True)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(clip))

    def urlopen(url, timeout):
        buffer = io.BytesIO()
        torch.save(InceptionI3d(157 if url.endswith("rgb_charades.pt") else 400).state_dict(), buffer)
        response = io.BytesIO(buffer.getvalue())
        response.headers = {"Content-Length": str(len(buffer.getvalue()))}
        return response

    def hf_hub_download(repo_id, filename, local_dir):
        assert repo_id == weights.CLIP_HUB_REPO
        local_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, local_dir / filename)
        return str(local_dir / filename)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the download is mocked
    # the hosts count as reachable: the probe that makes an offline download fail fast is tested in test_weights
    monkeypatch.setattr(weights, "reachable", lambda url, timeout=weights.PROBE_SECONDS: True)
    monkeypatch.setattr(weights, "hub_reachable", lambda timeout=weights.PROBE_SECONDS: True)


@pytest.mark.slow
@pytest.mark.course
@pytest.mark.usefixtures("one_torch_thread", "offline_weights")
def test_the_walkthrough_runs_as_written(tmp_path, monkeypatch, capsys):
    shutil.copytree(CONFIGS, tmp_path / "configs")
    shrink_recipes(tmp_path)
    charades_downloads(tmp_path)
    multithumos_downloads(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path / "data"))

    # 2. weights, on the "online" machine, then copied to downloads/weights as the README says
    printed = run(walkthrough("online"), capsys)
    assert (tmp_path / "data" / "weights" / "i3d" / "rgb_charades.pt").is_file()
    assert "--set data.text_weights=" in printed and "--video-weights" in printed
    shutil.copytree(tmp_path / "data" / "weights", tmp_path / "downloads" / "weights")
    shutil.rmtree(tmp_path / "data" / "weights")

    # 3. Charades: features, prepare, inspect, train, evaluate
    printed = run(walkthrough("charades"), capsys)
    import h5py

    with h5py.File(tmp_path / "data" / "real" / "charades_features.h5") as handle:
        assert handle["video/QX7ZB"].shape == (3, 1024) and handle["image/QX7ZB"].shape == (3, 1024)
    prepared = tmp_path / "data" / "real" / "charades"
    assert (prepared / "prepare-report.json").is_file()
    assert "every fix is listed by video and instance" in printed
    assert "Charades_v1_train.csv:2" in (prepared / "prepare-report.json").read_text()
    assert "Training on 6 videos, validating on 1" in " ".join(printed.split())
    run_dir = tmp_path / "runs" / "charades"
    assert (run_dir / "results.md").is_file() and (run_dir / "predictions-test.npz").is_file()
    assert "mAP_ac" in printed and "predictions written to" in printed

    # MultiTHUMOS: the image stream beside I3D features one already has
    printed = run(walkthrough("multithumos"), capsys)
    assert (tmp_path / "runs" / "multithumos" / "predictions-test.npz").is_file()
    assert "durations taken from the features for 9 videos" in printed
