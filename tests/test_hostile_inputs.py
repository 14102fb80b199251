"""Bad and hostile inputs, crafted here: output folders that are not the command's, symlinks,
leftovers named like ours. Nothing of the user's may be deleted or overwritten, nothing written
beside the target, and each refusal names the folder."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time

import pytest

from refdense import synth
from refdense.cli import main
from refdense.io import OUTPUT_MARKER, OutputFolderError, output_folder
from refdense.prepare.decompose import DecompositionError, parse_decomposition_answer, read_decomposition
from refdense.prepare.formats import FormatError, read_charades_csv, read_super_events
from refdense.prepare.prepare import annotate_video
from refdense.schema import ConfigError, shown
from refdense.train import evaluate, train
from refdense.experiments.ablate import ablate
from refdense.train.config import from_dict, load_config
from refdense.experiments.demo import demo
from refdense.experiments.sweep import sweep


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def snapshot(folder):
    """Every file under ``folder`` with its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def users_folder(path):
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("the user's own notes")
    (path / "plots").mkdir()
    (path / "plots" / "figure.png").write_bytes(b"not ours")
    return snapshot(path)


# --------------------------------------------------------------------------- the output-folder rule


def test_output_folder_accepts_missing_empty_and_its_own_and_marks_it_first(tmp_path):
    made = output_folder(tmp_path / "new" / "run", "train")
    assert json.loads((made / OUTPUT_MARKER).read_text()) == {"made_by": "train"}
    (made / "results.md").write_text("partial")
    assert output_folder(made, "train") == made  # its own, even half-written
    (tmp_path / "empty").mkdir()
    assert (output_folder(tmp_path / "empty", "demo") / OUTPUT_MARKER).is_file()
    with pytest.raises(OutputFolderError, match=r"made by `refdense train`"):
        output_folder(made, "demo")
    sweeps = output_folder(tmp_path / "sweeps", "sweep")
    assert output_folder(sweeps, "ablate", accepts=("sweep",)) == sweeps  # they share their runs


def test_output_folder_refuses_a_folder_of_the_users_naming_what_is_in_it(tmp_path):
    before = users_folder(tmp_path / "mine")
    with pytest.raises(OutputFolderError, match=r"mine: is not a folder of `refdense train` \(holds notes.txt, plots\)"):
        output_folder(tmp_path / "mine", "train")
    assert snapshot(tmp_path / "mine") == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="file: exists and is not a folder"):
        output_folder(tmp_path / "file", "train")


def test_output_folder_never_takes_the_current_folder_or_one_that_holds_it(tmp_path, monkeypatch):
    inside = tmp_path / "project" / "src"
    inside.mkdir(parents=True)
    monkeypatch.chdir(inside)
    for out in (".", "..", str(tmp_path)):
        with pytest.raises(OutputFolderError, match="is the current folder"):
            output_folder(out, "demo")
    assert list(inside.iterdir()) == []


def test_output_folder_follows_a_symlink_and_refuses_a_dangling_one(tmp_path):
    target = tmp_path / "disk" / "runs"
    target.mkdir(parents=True)
    link = tmp_path / "runs"
    link.symlink_to(target)
    assert output_folder(link, "train") == target.resolve()
    assert link.is_symlink() and (target / OUTPUT_MARKER).is_file()
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputFolderError, match=r"gone: is a link to .*nowhere, which does not exist"):
        output_folder(dangling, "train")
    assert not (tmp_path / "nowhere").exists()


# --------------------------------------------------------------------------- the commands


def tiny_config():
    return from_dict({
        "data": {"dataset": "tiny", "window": 16, "text_encoder": "random"},
        "model": {"dim": 16, "heads": 2, "head_dim": 8, "blocks": 1, "strides": [2, 4], "max_len": 16},
        "optim": {"epochs": 1, "batch_size": 4},
        "run": {"device": "cpu"},
    })


def test_train_refuses_a_folder_that_is_not_a_run_before_writing(tmp_path):
    before = users_folder(tmp_path / "mine")
    with pytest.raises(OutputFolderError, match=r"mine: is not a folder of `refdense train`"):
        train(tiny_config(), tmp_path / "mine", progress=False)
    assert snapshot(tmp_path / "mine") == before


def test_demo_refuses_the_current_folder_and_keeps_whatever_its_run_folders_hold(tmp_path, monkeypatch, capsys):
    clone = tmp_path / "clone"
    (clone / "refdense").mkdir(parents=True)
    (clone / "refdense" / "__init__.py").write_text("# the package source")
    before = snapshot(clone)
    monkeypatch.chdir(clone)
    assert main(["demo", "--out", "."]) == 2
    assert "is the current folder" in capsys.readouterr().err
    assert snapshot(clone) == before
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputFolderError, match=r"clone: is not a folder of `refdense demo` \(holds refdense\)"):
        demo(clone, progress=False)
    # a demo folder whose run folder is not a run: refused, not removed
    out = output_folder(tmp_path / "demo", "demo")
    before = users_folder(out / "refdense")
    with pytest.raises(OutputFolderError, match=r"refdense: is not a folder of `refdense train`"):
        demo(out, progress=False)
    assert snapshot(out / "refdense") == before


@pytest.mark.parametrize("command", ["sweep", "ablate"])
def test_sweep_and_ablate_refuse_a_folder_of_the_users(command, tmp_path):
    before = users_folder(tmp_path / "mine")
    with pytest.raises(OutputFolderError, match=rf"mine: is not a folder of `refdense {command}`"):
        if command == "sweep":
            sweep("rare_share", [0.0], tmp_path / "mine", preset="tiny", seeds=(0,), epochs=1)
        else:
            ablate("tiny", tmp_path / "mine", seeds=(0,), epochs=1, variants=("full",))
    assert snapshot(tmp_path / "mine") == before


def test_synth_writes_through_a_symlink_and_keeps_the_link(tmp_path, capsys):
    target = tmp_path / "disk" / "tiny"
    target.mkdir(parents=True)
    link = tmp_path / "tiny"
    link.symlink_to(target)
    assert main(["synth", "--preset", "tiny", "--out", str(link)]) == 0
    assert link.is_symlink() and (target / "dataset.json").is_file()
    assert main(["synth", "--preset", "tiny", "--seed", "1", "--out", str(link), "--overwrite"]) == 0
    assert link.is_symlink() and "--seed 1" in json.loads((target / "dataset.json").read_text())["source"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "tiny"]  # nothing beside the link
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny"]  # no leftovers beside the target
    capsys.readouterr()


def test_a_users_folder_named_like_a_leftover_is_never_removed(tmp_path):
    mine = tmp_path / f"tiny.old-{dead_pid()}"
    before = users_folder(mine)
    staged = tmp_path / f"tiny.tmp-{dead_pid()}"
    staged.mkdir()
    (staged / "features.h5").write_bytes(b"the user's, named like a temporary")
    synth.generate("tiny", tmp_path / "tiny")
    assert snapshot(mine) == before
    assert (staged / "features.h5").read_bytes() == b"the user's, named like a temporary"
    assert (tmp_path / "tiny" / "dataset.json").is_file()
    assert os.listdir(tmp_path / "tiny").count(".refdense-staging") == 0


def test_evaluate_on_another_dataset_keeps_the_runs_own_predictions(tiny_dataset, tmp_path, one_torch_thread):
    config = tiny_config().with_overrides(f"data.dataset={tiny_dataset}")
    run = tmp_path / "run"
    train(config, run, progress=False)
    own = (run / "predictions-test.npz").read_bytes()
    other = shutil.copytree(tiny_dataset, tmp_path / "elsewhere")
    result = evaluate(run / "checkpoints" / "best.pt", dataset=str(other), device="cpu", progress=False)
    assert result.predictions == run / "predictions-test-on-elsewhere.npz" and result.predictions.is_file()
    assert (run / "predictions-test.npz").read_bytes() == own  # results.md still matches it
    again = evaluate(run / "checkpoints" / "best.pt", dataset=str(tiny_dataset), device="cpu", progress=False)
    assert again.predictions == run / "predictions-test.npz"
    loose = shutil.copy(run / "checkpoints" / "best.pt", tmp_path / "best.pt")
    with pytest.raises(ValueError, match=r"best.pt: is not in the checkpoints/ folder of a run.*--out"):
        evaluate(loose, device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "elsewhere", "run"]


# --------------------------------------------------------------------------- HDF5 from users


def crafted_features(tiny_dataset, tmp_path, craft):
    """A copy of the tiny dataset whose first test video's ``video`` member ``craft(group, name,
    original)`` replaces; returns (dataset folder, member name)."""
    import h5py

    folder = shutil.copytree(tiny_dataset, tmp_path / "crafted")
    with h5py.File(folder / "features.h5", "a") as handle:
        name = sorted(handle["video"])[0]
        original = handle["video"][name][()]
        del handle["video"][name]
        craft(handle["video"], name, original)
    return folder, name


def external_storage(group, name, original):
    secret = group.file.filename.rsplit("/", 1)[0] + "/../secret.bin"
    with open(secret, "wb") as handle:
        handle.write(b"a system file " * (original.nbytes // 14 + 1))
    group.create_dataset(name, shape=original.shape, dtype=original.dtype, external=[(secret, 0, original.nbytes)])


def external_link(group, name, original):
    import h5py

    other = group.file.filename.rsplit("/", 1)[0] + "/../other.h5"
    with h5py.File(other, "w") as handle:
        handle["data"] = original
    group[name] = h5py.ExternalLink(other, "/data")


def soft_link(group, name, original):
    import h5py

    group[name] = h5py.SoftLink(f"/image/{name}")


def virtual_dataset(group, name, original):
    import h5py

    layout = h5py.VirtualLayout(shape=original.shape, dtype=original.dtype)
    layout[:] = h5py.VirtualSource("missing.h5", "data", shape=original.shape)
    group.create_virtual_dataset(name, layout, fillvalue=0)


@pytest.mark.parametrize(
    "craft, message",
    [
        (external_storage, "keeps its values in external files"),
        (external_link, "is an external link"),
        (soft_link, "is a soft link"),
        (virtual_dataset, "is a virtual dataset"),
    ],
)
def test_features_reading_outside_the_file_are_refused_naming_file_and_member(craft, message, tiny_dataset,
                                                                               tmp_path):
    from refdense.data import DenseActionDataset
    from refdense.data.info import DatasetError
    from refdense.prepare.features import FeatureError, FeatureSource

    folder, name = crafted_features(tiny_dataset, tmp_path, craft)
    expected = rf"crafted/features.h5: member /video/{name}: {message}"
    with pytest.raises(DatasetError, match=expected):
        DenseActionDataset(folder, "testing", window=16, train=False)
    with pytest.raises(FeatureError, match=expected):  # prepare's input features
        FeatureSource(folder / "features.h5", "video")


BOMB = """
import resource, sys
from refdense.data import DenseActionDataset
from refdense.data.info import DatasetError
# what is mapped now (torch's libraries) and 1 GiB more: a bomb fails here, not the machine
size = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) << 10
resource.setrlimit(resource.RLIMIT_AS, (size + (1 << 30), size + (1 << 30)))
try:
    DenseActionDataset(sys.argv[1], "testing", window=16, train=False)
except DatasetError as error:
    print(error)
"""


def test_a_declared_bomb_is_refused_before_reading_under_a_memory_limit(tiny_dataset, tmp_path):
    def bomb(group, name, original):  # 10^12 rows, no chunk written: a file of kilobytes
        group.create_dataset(name, shape=(10**12, original.shape[1]), dtype="f4", chunks=(1024, original.shape[1]),
                             compression="gzip")

    folder, name = crafted_features(tiny_dataset, tmp_path, bomb)
    assert (folder / "features.h5").stat().st_size < 1 << 20
    done = subprocess.run([sys.executable, "-c", BOMB, str(folder)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"member /video/{name}: declares shape (1000000000000, 32), over the bound" in done.stdout


def test_a_group_where_a_video_should_be_is_refused_not_reported_as_found(tiny_dataset, tmp_path):
    from refdense.data import DenseActionDataset
    from refdense.data.info import DatasetError
    from refdense.prepare.features import FeatureSource

    folder, name = crafted_features(tiny_dataset, tmp_path, lambda group, name, original: group.create_group(name))
    with pytest.raises(DatasetError, match=rf"member /video/{name}: .*found a group"):
        DenseActionDataset(folder, "testing", window=16, train=False)
    with FeatureSource(folder / "features.h5", "video") as source:  # prepare's inputs: groups are not videos
        assert name not in source.ids and len(source.ids) > 0


def test_a_video_id_that_names_no_member_is_refused_with_its_name(tiny_dataset):
    from refdense.data import read_info
    from refdense.data.features import read_features
    from refdense.data.info import DatasetError

    with pytest.raises(DatasetError, match=r"features.h5: member /video/\.: '\.' is not a valid video id"):
        read_features(tiny_dataset / "features.h5", ["."], read_info(tiny_dataset))


# --------------------------------------------------------------------------- npz from users


def npy_member(archive, name, shape, dtype="<f4", zeros=0):
    """Write ``name.npy`` into the open zip ``archive``: a header declaring ``shape`` followed by
    ``zeros`` zero bytes (streamed, so that a test can craft a bomb without holding it)."""
    import io
    import zipfile

    import numpy as np

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    with archive.open(f"{name}.npy", "w", force_zip64=True) as handle:
        handle.write(header.getvalue())  # the magic string, then the header
        block = bytes(1 << 24)
        for start in range(0, zeros, len(block)):
            handle.write(block[: min(len(block), zeros - start)])
    assert archive.compression == zipfile.ZIP_DEFLATED


NPZ_UNDER_LIMIT = """
import resource, sys
from refdense.metrics import read_predictions
size = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) << 10
resource.setrlimit(resource.RLIMIT_AS, (size + (512 << 20), size + (512 << 20)))  # 512 MiB more at most
try:
    predictions = read_predictions(sys.argv[1])
    print("read", len(predictions.video_ids), "videos")
except ValueError as error:
    print(error)
"""


def read_under_limit(path):
    done = subprocess.run([sys.executable, "-c", NPZ_UNDER_LIMIT, str(path)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_npz_members_declaring_a_bomb_are_refused_and_others_never_decompressed(tmp_path):
    import zipfile

    import numpy as np

    from refdense.metrics import write_predictions

    rng = np.random.default_rng(0)
    good = tmp_path / "good.npz"
    write_predictions(good, [rng.random((5, 3), dtype=np.float32)], [np.eye(5, 3, dtype=np.float32)], ["v"])
    declared = tmp_path / "declared.npz"
    with zipfile.ZipFile(declared, "w", zipfile.ZIP_DEFLATED) as archive:
        npy_member(archive, "scores", (10**12, 3))
    assert declared.stat().st_size < 4096
    assert "scores: declares shape (1000000000000, 3), over the bound" in read_under_limit(declared)
    unused = tmp_path / "unused.npz"  # the good file and a 640 MB member of zeros that no reader asks for
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(unused, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in source.namelist():
            archive.writestr(name, source.read(name))
        npy_member(archive, "junk", (160_000_000,), zeros=640_000_000)
    assert unused.stat().st_size < 4 << 20
    assert read_under_limit(unused).strip() == "read 1 videos"


def test_a_video_twice_in_a_predictions_file_is_refused_not_scored_twice(tmp_path):
    import numpy as np

    from refdense.metrics import read_predictions

    path = tmp_path / "twice.npz"
    scores = np.random.default_rng(0).random((10, 3), dtype=np.float32)
    np.savez(path, scores=scores, labels=(scores > 0.5).astype(np.float32), lengths=np.array([5, 5]),
             video_ids=np.array(["clip", "clip"]))
    with pytest.raises(ValueError, match=r"twice.npz: video_ids: .*'clip'"):
        read_predictions(path)


# --------------------------------------------------------------------------- YAML and JSON

YAML_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefgh", "bcdefghi")
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (YAML_BOMB, "line 2, column 8: aliases (*a) are not accepted"),  # 9**9 strings once expanded
        ("model: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 32 levels"),
        # Python's own words, which differ between 3.10 ("the limit (4300)") and 3.11 ("(4300 digits)")
        ("optim:\n  epochs: " + "9" * 5000 + "\n", "for integer string conversion"),
        (b"optim:\n  lr: \xff\xfe\n", "not UTF-8 text"),
    ],
    ids=["alias-bomb", "deep", "huge-integer", "not-utf8"],
)
def test_a_hostile_config_file_is_refused_naming_the_file(text, message, tmp_path):
    path = tmp_path / "hostile.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert len(str(error.value)) < 300  # the value itself is never printed whole


def test_a_set_value_with_an_alias_is_refused_and_a_long_value_printed_cut():
    with pytest.raises(ConfigError, match=r"^--set optim.lr=\[&a 1, \*a\]: not valid YAML: .*aliases"):
        load_config(overrides=["optim.lr=[&a 1, *a]"])
    with pytest.raises(ConfigError, match=r"optim.lr must be a number, found 'xxx+\.\.\.x+'$") as error:
        load_config(overrides=["optim.lr=" + "x" * 5000])
    assert len(str(error.value)) < 5000 + 200 and str(error.value).count("x") < 200


def test_shown_cuts_long_values_and_names_huge_integers_by_size():
    assert shown(10**5000) == "an integer of about 5001 digits"  # repr() itself raises ValueError
    assert shown(12345) == "12345" and shown("short") == "'short'"
    assert len(shown("y" * 10_000)) <= 80 and len(shown([list(range(100))] * 100)) < 200


def test_deep_or_repeated_json_gets_a_clear_error_naming_the_file(tmp_path):
    classes = ["open door", "close door"]
    deep = '{"open door": ' * 100_000 + "1" + "}" * 100_000
    with pytest.raises(DecompositionError, match="^LLM answer: objects or lists nested too deeply"):
        parse_decomposition_answer(deep, classes)
    twice = '{"open door": {"entity": "door", "motion": "open"}, "open door": {"entity": "x", "motion": "y"}}'
    with pytest.raises(DecompositionError, match="^LLM answer: the key 'open door' appears twice"):
        parse_decomposition_answer(twice, classes)
    path = tmp_path / "decomposition.json"
    path.write_text("[" * 100_000)
    with pytest.raises(DecompositionError, match=f"^{path}: not valid JSON .*nested too deeply"):
        read_decomposition(path)
    path.write_bytes(b'{"format": "\xff"}')
    with pytest.raises(DecompositionError, match=f"^{path}: not valid JSON .*can't decode byte 0xff"):
        read_decomposition(path)
    annotations = tmp_path / "annotations.json"
    annotations.write_text('{"v": ' * 100_000 + "}" * 100_000)
    with pytest.raises(FormatError, match=f"^{annotations}: not valid JSON .*nested too deeply"):
        read_super_events(annotations, ["a"])


# --------------------------------------------------------------------------- official annotations


def test_durations_of_the_wrong_type_are_reported_per_video_like_nan_and_negatives(tmp_path):
    durations = {"null": None, "list": [1, 2], "text": "ten", "bool": True, "negative": -3.0, "good": 10.0}
    path = tmp_path / "charades.json"
    videos = {name: {"subset": "training", "duration": d, "actions": [[0, 1.0, "2"], [0, 1, 2]]}
              for name, d in durations.items()}
    path.write_text(json.dumps(videos))
    raw = read_super_events(path, ["a"])
    assert raw.problems == {"duration not a number": 4, "malformed action": 6}
    assert any(all(piece in detail for piece in (f"{path.name}: video 'list'", "duration", "found [1, 2]"))
               for detail in raw.details["duration not a number"]), raw.details
    for name in durations:
        outcome = annotate_video(name, raw.videos[name], 10, segment_frames=8, fps=8.0, boundary="strict",
                                 drop_empty_training=False)
        if name == "good":
            assert outcome.skipped is None and outcome.annotation.duration == pytest.approx(10.0)
        else:  # skipped and said so, like the negative one; null is not taken from the features
            assert outcome.skipped[0] == "no positive duration" and not outcome.duration_from_features
    csv = tmp_path / "Charades_v1_train.csv"
    csv.write_text("id,actions,length\nA,,twenty\nB,,20\n")
    classes = tmp_path / "Charades_v1_classes.txt"
    classes.write_text("c000 a\n")
    raw = read_charades_csv([csv], classes)
    assert math.isnan(raw.videos["A"]["duration"]) and raw.videos["B"]["duration"] == pytest.approx(20.0)
    assert raw.details["duration not a number"] == [f"{csv}:2: video 'A': duration must be a number of "
                                                   "seconds, found 'twenty'"]


# --------------------------------------------------------------------------- offline downloads


@pytest.mark.course
@pytest.mark.parametrize("hub_offline", [False, True], ids=["HF_HUB_OFFLINE-unset", "HF_HUB_OFFLINE-set"])
@pytest.mark.parametrize("name", ["clip-rn50", "i3d"])
def test_weights_download_offline_fails_in_seconds_and_writes_nothing(name, hub_offline, tmp_path, monkeypatch,
                                                                      capsys):
    """No network (a resolver that hangs, as on a machine without DNS): a clear error within the probe's
    5 seconds, not the hub client's retries, and no folder, lock or metadata file left behind."""
    import huggingface_hub.constants

    from refdense import weights

    def hanging_resolver(address, timeout):
        time.sleep(60)
        raise OSError("unreachable")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", hub_offline)
    monkeypatch.setattr(weights.socket, "create_connection", hanging_resolver)
    started = time.monotonic()
    assert main(["weights", "download", name, "--dir", str(tmp_path / "weights")]) == 2
    assert time.monotonic() - started < weights.PROBE_SECONDS + 3
    message = capsys.readouterr().err
    assert "download failed" in message and "needs internet access" in message
    expected = "HF_HUB_OFFLINE is set" if hub_offline and name == "clip-rn50" else "cannot be reached within 5 s"
    assert expected in message
    assert list(tmp_path.rglob("*")) == []


# --------------------------------------------------------------------------- long videos

LONG_VIDEO = """
import resource, sys
import torch
from refdense.models import ModelConfig, build_model, predict_full_video
torch.set_num_threads(1)
cfg = ModelConfig(dim=16, heads=2, head_dim=8, blocks=1, strides=[2, 4], max_len=16, local_hidden=32,
                  position=sys.argv[1])
model = build_model(cfg, video_dim=8, image_dim=4, num_classes=3, num_entities=2, num_motions=2)
video, image = torch.randn(100_000, 8), torch.randn(100_000, 4)
# what is mapped now and 2 GiB more (one 100,000^2 attention matrix would be 40 GB per head)
size = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) << 10
resource.setrlimit(resource.RLIMIT_AS, (size + (2 << 30), size + (2 << 30)))
probs = predict_full_video(model, video, image)
head = predict_full_video(model, video[:5000], image[:5000])  # its first windows alone
print(tuple(probs.shape), bool(torch.isfinite(probs).all()), float((probs[:4096] - head[:4096]).abs().max()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("position", ["relative", "pat"])
def test_a_100000_segment_video_is_predicted_in_windows_under_a_memory_limit(position):
    done = subprocess.run([sys.executable, "-c", LONG_VIDEO, position], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    shape, finite, difference = done.stdout.split(") ")[0] + ")", *done.stdout.split(") ")[1].split()
    assert shape == "(100000, 3)" and finite == "True" and float(difference) < 1e-5
