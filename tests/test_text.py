"""Tests of refdense.text: prompts, the three encoders, and the cached text bank."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from refdense.text import (
    CLIP_MODEL,
    MissingWeightsError,
    TextBank,
    build_text_bank,
    load_text_encoder,
    make_prompt,
    prompt_name,
    text_bank_for,
    text_bank_path,
)
from refdense.weights import resolve_checkpoint

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download in a test

INFO = SimpleNamespace(
    classes=["CloseUpTalkToCamera", "hold_bag", "PickUp"], entities=["bag", "camera"], motions=["talk", "hold", "pick up"]
)


@pytest.mark.parametrize(
    "name, words",
    [
        ("CloseUpTalkToCamera", "close up talk to camera"),
        ("hold_bag", "hold bag"),
        ("Lifting-Clean", "lifting clean"),
        ("TVRemote", "tv remote"),
        ("3DPrinter", "3d printer"),
        ("  Holding a   bag ", "holding a bag"),
        ("NoHuman", "no human"),
    ],
)
def test_prompt_name_turns_class_names_into_words(name, words):
    assert prompt_name(name) == words
    assert make_prompt(name) == f"a photo of {words}"


def test_prompt_name_rejects_empty_names():
    with pytest.raises(ValueError, match=r"expected a non-empty class name, found ''"):
        prompt_name("")


def test_random_encoder_is_seeded_labelled_and_word_based():
    encoder = load_text_encoder("random")
    assert encoder.name == "random" and "tests only" in encoder.description
    a = encoder.encode(["a photo of hold bag", "a photo of pick up", "a photo of hold bag"])
    assert a.shape == (3, encoder.dim) and a.dtype == torch.float32
    torch.testing.assert_close(a[0], a[2])
    torch.testing.assert_close(a, load_text_encoder("random").encode(
        ["a photo of hold bag", "a photo of pick up", "a photo of hold bag"]))
    assert not torch.allclose(a[0], a[1])
    with pytest.raises(ValueError, match=r"expected weights=None, found 'x.pt'"):
        load_text_encoder("random", weights="x.pt")
    with pytest.raises(ValueError, match=r"'clip', 'minilm', 'random', 'random_orthonormal'.*'bert'"):
        load_text_encoder("bert")


def test_random_orthonormal_anchors_share_no_structure():
    encoder = load_text_encoder("random_orthonormal")
    assert encoder.name == "random_orthonormal" and "CoLV control" in encoder.description
    prompts = [f"a photo of red {shape}" for shape in ("cube", "ball", "cone")] + ["a photo of red cube"]
    anchors = encoder.encode(prompts)
    assert anchors.shape == (4, 384) and anchors.dtype == torch.float32
    torch.testing.assert_close(anchors[:3] @ anchors[:3].T, torch.eye(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(anchors[3], anchors[0])  # the same prompt, the same anchor
    torch.testing.assert_close(anchors, load_text_encoder("random_orthonormal").encode(prompts))
    # MiniLM gives prompts with a shared word shared structure; the control gives none
    minilm = torch.nn.functional.normalize(load_text_encoder("minilm").encode(prompts[:3]), dim=1)
    assert (minilm @ minilm.T)[0, 1] > 0.3
    with pytest.raises(ValueError, match="at most 384 distinct texts .* found 385"):
        encoder.encode([f"a photo of thing {k}" for k in range(385)])
    with pytest.raises(ValueError, match="text encoder 'random_orthonormal' has no weights"):
        load_text_encoder("random_orthonormal", weights="x.pt")
    # a bank of the control: each concept set's anchors orthonormal; the config key accepts it
    from refdense.synth import dataset_info
    from refdense.text import build_text_bank
    from refdense.train.config import from_dict

    bank = build_text_bank(encoder, dataset_info("tiny"))
    for concept in ("action", "entity", "motion"):
        rows = bank.embeddings[concept]
        torch.testing.assert_close(rows @ rows.T, torch.eye(len(rows)), atol=1e-6, rtol=0)
    assert from_dict({"data": {"text_encoder": "random_orthonormal"}}).data.text_encoder == "random_orthonormal"


def test_minilm_loads_offline_and_embeds_semantically():
    encoder = load_text_encoder("minilm")
    assert encoder.name == "minilm" and encoder.dim == 384
    e = torch.nn.functional.normalize(
        encoder.encode(["a photo of a cup", "a photo of a mug", "a photo of running"]), dim=-1
    )
    assert e.shape == (3, 384)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # related concepts are closer than unrelated ones


def test_minilm_weights_folder_must_be_a_sentence_transformers_model(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"expected a sentence-transformers model folder .*found"):
        load_text_encoder("minilm", weights=tmp_path)


# ---------------------------------------------------------------------------------------------
# CLIP: a random-weight RN50 checkpoint stands for OpenAI's weights (never downloaded in tests)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory):
    """A randomly initialised open_clip RN50 saved as a float16 state dict (about 200 MB), and its model."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model(CLIP_MODEL, pretrained=None, force_quick_gelu=True).eval()
    folder = tmp_path_factory.mktemp("clip")
    path = folder / "open_clip_pytorch_model.bin"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)
    model.half().float()  # the same rounding as the saved weights
    return path, model


@pytest.mark.course
def test_clip_loads_a_weights_file_and_the_open_clip_cache(clip_checkpoint, tmp_path, monkeypatch):
    import huggingface_hub.constants
    import open_clip

    path, model = clip_checkpoint
    prompts = [make_prompt(n) for n in INFO.classes]
    with torch.no_grad():
        expected = model.encode_text(open_clip.get_tokenizer(CLIP_MODEL)(prompts))

    from_file = load_text_encoder("clip", weights=path)
    assert from_file.name == "clip" and from_file.dim == 1024 and str(path) in from_file.description
    torch.testing.assert_close(from_file.encode(prompts), expected)
    del from_file

    # the Hugging Face cache layout that open_clip reads for RN50 / openai
    repo = tmp_path / "hub" / "models--timm--resnet50_clip.openai"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "open_clip_pytorch_model.bin").symlink_to(path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    from_cache = load_text_encoder("clip")
    assert "cache" in from_cache.description
    torch.testing.assert_close(from_cache.encode(prompts), expected)


@pytest.mark.course
def test_clip_weights_folder_resolves_to_its_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "RN50.pt").write_bytes(b"")
    assert resolve_checkpoint(tmp_path) == tmp_path / "RN50.pt"
    (tmp_path / "open_clip_pytorch_model.bin").write_bytes(b"")
    assert resolve_checkpoint(tmp_path) == tmp_path / "open_clip_pytorch_model.bin"
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.pt").write_bytes(b"")
    (other / "b.safetensors").write_bytes(b"")
    with pytest.raises(MissingWeightsError, match=r"expected one checkpoint .*found \['a.pt', 'b.safetensors'\]"):
        resolve_checkpoint(other)
    with pytest.raises(MissingWeightsError, match=r"weights path '.*missing' does not exist"):
        load_text_encoder("clip", weights=tmp_path / "missing")


@pytest.mark.course
def test_clip_missing_weights_error_says_how_to_get_them(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(MissingWeightsError) as info:
        load_text_encoder("clip")
    message = str(info.value)
    assert "CLIP RN50" in message and "'openai'" in message and "HF_HUB_OFFLINE is set" in message
    assert "refdense weights download clip-rn50" in message
    assert "--set data.text_weights=PATH" in message and "--text-weights" not in message
    assert "--set data.text_encoder=minilm" in message


@pytest.mark.course
def test_clip_without_network_fails_at_once_without_trying_the_hub(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE unset and no network: one short probe, no download (the hub client retries for ~50 s)."""
    import huggingface_hub.constants
    import open_clip

    from refdense import weights

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    probes = []

    def unreachable(address, timeout):
        probes.append(timeout)
        raise OSError("network is unreachable")

    def must_not_download(*args, **kwargs):
        raise AssertionError("open_clip was asked to download")

    monkeypatch.setattr(weights.socket, "create_connection", unreachable)
    monkeypatch.setattr(open_clip, "create_model", must_not_download)
    with pytest.raises(MissingWeightsError, match=r"(?s)https://huggingface.co.*data.text_weights"):
        load_text_encoder("clip")
    assert probes == [weights.PROBE_SECONDS] and weights.PROBE_SECONDS <= 5


@pytest.mark.course
def test_the_config_key_text_weights_reaches_the_encoder(clip_checkpoint, tmp_path):
    from refdense.train.components import build_criterion
    from refdense.train.config import load_config

    path, _ = clip_checkpoint
    config = load_config(overrides=["data.text_encoder=clip", f"data.text_weights={path.parent}"])
    assert config.data.text_weights == str(path.parent)
    criterion = build_criterion(config.loss, config.model, INFO, tmp_path, config.data.text_encoder,
                                config.data.text_weights)
    bank = TextBank.load(text_bank_path(tmp_path, "clip"))
    assert str(path) in bank.description and criterion.text_entity.shape == (2, 1024)


@pytest.mark.course
def test_clip_rejects_a_file_that_is_not_an_rn50_checkpoint(tmp_path):
    bad = tmp_path / "wrong.pt"
    torch.save({"weight": torch.zeros(2)}, bad)
    with pytest.raises(ValueError, match=r"CLIP RN50.*wrong.pt"):
        load_text_encoder("clip", weights=bad)


# ---------------------------------------------------------------------------------------------
# Text bank
# ---------------------------------------------------------------------------------------------


def test_text_bank_is_built_once_cached_and_reloaded(tmp_path, monkeypatch):
    bank = text_bank_for(tmp_path, INFO, "random")
    path = text_bank_path(tmp_path, "random")
    assert path.is_file() and not list(tmp_path.glob("*.tmp-*"))
    assert bank.encoder == "random" and "tests only" in bank.description
    assert bank.names == {"action": INFO.classes, "entity": INFO.entities, "motion": INFO.motions}
    assert {k: tuple(v.shape) for k, v in bank.embeddings.items()} == {"action": (3, 64), "entity": (2, 64), "motion": (3, 64)}
    assert bank.prompts("action")[0] == "a photo of close up talk to camera"
    torch.testing.assert_close(bank.embeddings["motion"], load_text_encoder("random").encode(bank.prompts("motion")))

    # the second call reads the cache and never runs the encoder
    import refdense.text

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran although the bank is cached")

    monkeypatch.setattr(refdense.text, "load_text_encoder", no_encoder)
    again = text_bank_for(tmp_path, INFO, "random")
    assert again.names == bank.names
    for concept in bank.embeddings:
        torch.testing.assert_close(again.embeddings[concept], bank.embeddings[concept])


def test_a_stale_bank_is_an_error_naming_the_difference_and_rebuild_fixes_it(tmp_path):
    text_bank_for(tmp_path, INFO, "random")
    changed = SimpleNamespace(classes=INFO.classes, entities=["bag", "cup"], motions=INFO.motions)
    with pytest.raises(ValueError, match=r"entity.*\['bag', 'cup'\].*\['bag', 'camera'\].*text_bank-random.pt.*rebuild=True"):
        text_bank_for(tmp_path, changed, "random")
    rebuilt = text_bank_for(tmp_path, changed, "random", rebuild=True)
    assert rebuilt.names["entity"] == ["bag", "cup"]
    assert text_bank_for(tmp_path, changed, "random").names["entity"] == ["bag", "cup"]


def test_a_bank_of_another_encoder_is_an_error(tmp_path):
    bank = build_text_bank(load_text_encoder("random"), INFO)
    bank.save(text_bank_path(tmp_path, "minilm"))  # e.g. a file renamed by hand
    with pytest.raises(ValueError, match=r"'random'.*'minilm'"):
        text_bank_for(tmp_path, INFO, "minilm")


def test_an_unreadable_bank_file_is_reported(tmp_path):
    text_bank_path(tmp_path, "random").write_text("not a bank")
    with pytest.raises(ValueError, match=r"text_bank-random.pt: not a readable text bank"):
        text_bank_for(tmp_path, INFO, "random")
    torch.save({"format": "other"}, text_bank_path(tmp_path, "random"))
    with pytest.raises(ValueError, match=r"'refdense-text-bank/1'.*'other'"):
        TextBank.load(text_bank_path(tmp_path, "random"))


def test_text_bank_feeds_the_criterion(tmp_path):
    from refdense.losses import LossConfig, RefDenseCriterion

    bank = text_bank_for(tmp_path, INFO, "random")
    criterion = RefDenseCriterion(LossConfig(colv_sets=["action", "entity", "motion"]), 8, bank)
    assert criterion.projections["entity"].out_features == bank.dim
    torch.testing.assert_close(criterion.text_motion, bank.embeddings["motion"])
