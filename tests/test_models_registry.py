"""The model registry: an architecture defined here, in the test, registers itself and is then
configured, built, trained with CoLV on its declared features and evaluated like the shipped ones."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from refdense.models import (
    Architecture,
    DetectionOutput,
    Detector,
    ModelConfig,
    architecture,
    architectures,
    build_model,
    register,
    unregister,
)
from refdense.models.inputs import select_stream, stream_dims
from refdense.schema import ConfigError
from refdense.train import train
from refdense.train.config import from_dict
from refdense.train.evaluate import readout_path, readout_unavailable

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHIPPED = ("pat", "motion_only", "refdense", "entity_only")


class Toy(Detector):
    """One linear map per segment of the stream it reads, then a linear head: ``(B, T, D_in) -> (B, T, C)``."""

    def __init__(self, cfg: ModelConfig, *, video_dim: int, image_dim: int, num_classes: int) -> None:
        reads_video, reads_image, in_dim = stream_dims(cfg.stream, video_dim, image_dim)
        super().__init__(cfg, video_dim=reads_video, image_dim=reads_image)
        self.stream = cfg.stream
        self.features = nn.Linear(in_dim, cfg.dim)
        self.head = nn.Linear(cfg.dim, num_classes)

    def forward(self, video, image=None, mask=None, *, validate=True) -> DetectionOutput:
        self.check_inputs(video, image, mask, validate=validate)
        features = self.features(select_stream(video, image, self.stream))
        return DetectionOutput(action_logits=self.head(features), action_features=features)


def build_toy(cfg, *, video_dim, image_dim, num_classes, **_):
    return Toy(cfg, video_dim=video_dim, image_dim=image_dim, num_classes=num_classes)


@pytest.fixture
def toy():
    registered = register(Architecture("toy", build_toy, "concat", lambda cfg: {"action": cfg.dim},
                                       summary="a linear detector (a test's)"))
    yield registered
    unregister("toy")


def test_the_shipped_architectures_are_registered_with_what_they_declare():
    assert architectures() == SHIPPED
    assert [architecture(name).stream for name in SHIPPED] == ["video", "concat", None, "concat"]
    cfg = ModelConfig(dim=24)
    assert architecture("refdense").colv_widths(cfg) == {"action": 48, "entity": 24, "motion": 24}
    assert architecture("pat").colv_widths(cfg) == {"action": 24}
    assert architecture("refdense").auxiliary == ("entity", "motion") and architecture("pat").auxiliary == ()
    with pytest.raises(ValueError, match=r"unknown architecture 'toy'; registered: 'pat', 'motion_only'"):
        architecture("toy")


def test_an_unregistered_name_is_refused_by_the_config_with_the_registered_choices():
    with pytest.raises(ConfigError, match=r"model.arch.*'pat', 'motion_only', 'refdense', 'entity_only'.*'toy'"):
        from_dict({"model": {"arch": "toy"}})


def test_a_toy_architecture_defined_here_is_configured_and_built_like_the_shipped_ones(toy):
    assert architectures() == (*SHIPPED, "toy") and architecture("toy") is toy
    cfg = ModelConfig(arch="toy", dim=8)
    assert cfg.stream == "concat" and ModelConfig(arch="toy", inputs="image").stream == "image"
    model = build_model(cfg, video_dim=6, image_dim=5, num_classes=4, num_entities=3, num_motions=3)
    assert isinstance(model, Toy) and model.features.in_features == 11
    out = model(torch.randn(2, 7, 6), torch.randn(2, 7, 5))
    assert out.action_logits.shape == (2, 7, 4) and out.action_features.shape == (2, 7, 8)
    with pytest.raises(ValueError, match="already registered"):
        register(toy)


def test_a_toy_architecture_trains_with_colv_on_the_features_it_declares(toy, writable_tiny_dataset, tmp_path):
    values = {
        "data": {"dataset": str(writable_tiny_dataset), "window": 16, "validation_fraction": 0.125,
                 "text_encoder": "random"},
        "model": {"arch": "toy", "dim": 8, "max_len": 16, "strides": [2, 4]},
        "loss": {"use_entity_labels": False, "use_motion_labels": False, "colv_sets": ["action"]},
        "optim": {"epochs": 2, "batch_size": 4, "lr": 3e-3},
        "run": {"device": "cpu", "seed": 0},
    }
    config = from_dict(values)
    result = train(config, tmp_path / "run", progress=False)
    assert set(result.history[0]["train"]) == {"loss", "bce_action", "colv_action"}
    assert result.history[-1]["train"]["loss"] < result.history[0]["train"]["loss"]
    assert result.predictions.is_file() and not readout_path(result.predictions, "composed").exists()
    assert readout_unavailable(config, "composed") == "model.arch toy has no entity head"
    assert json.loads((tmp_path / "run" / "results.json").read_text())["arch"] == "toy"
    # CoLV on a concept set whose features the architecture does not declare: refused before training
    values["loss"]["colv_sets"] = ["action", "entity"]
    values["loss"]["use_entity_labels"] = True
    with pytest.raises(ValueError, match=r"loss.colv_sets: .*entity.*model.arch 'toy'.*returns: action"):
        train(from_dict(values), tmp_path / "other", progress=False)
