"""InceptionI3d: the layout of the community's checkpoints, the published network's outputs, safe loading.

Two fixtures come from the published definition (piergiaj/pytorch-i3d, ``pytorch_i3d.py``), read and
run outside this repository; no code of it is here:

- ``fixtures/i3d_rgb_state_dict.json``: the keys and shapes of ``InceptionI3d(400, in_channels=3)``,
  the layout of ``rgb_imagenet.pt``;
- ``fixtures/i3d_golden.npz``: what that definition computes (``extract_features`` and the logits)
  with the weights of :func:`seeded_state` on the input of :func:`golden_input`.
"""

from __future__ import annotations

import json
import math
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from refdense.prepare.i3d import InceptionI3d, feature_count, load_i3d, same_padding
from refdense.weights import MissingWeightsError

FIXTURES = Path(__file__).parent / "fixtures"
PUBLISHED = json.loads((FIXTURES / "i3d_rgb_state_dict.json").read_text())["keys"]


def seeded_state(shapes: dict[str, list[int]], seed: int = 0, drop_counters: bool = False) -> OrderedDict:
    """Weights for ``shapes`` from a seeded numpy generator, in key order: He-normal convolutions,
    batch-norm scales and running variances in [0.5, 1.5), small biases and running means."""
    rng = np.random.default_rng(seed)
    state = OrderedDict()
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            if not drop_counters:
                state[key] = torch.tensor(0)
            continue
        if key.endswith(("running_var", "bn.weight")):
            values = rng.uniform(0.5, 1.5, shape)
        elif key.endswith("conv3d.weight"):
            values = rng.normal(0.0, math.sqrt(2.0 / math.prod(shape[1:])), shape)
        else:
            values = rng.normal(0.0, 0.1, shape)
        state[key] = torch.from_numpy(values.astype(np.float32))
    return state


def golden_input() -> torch.Tensor:
    """17 frames of 224 x 224 uniform noise in [-1, 1]: (1, 3, 17, 224, 224)."""
    return torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (1, 3, 17, 224, 224)).astype(np.float32))


def with_classes(shapes: dict[str, list[int]], num_classes: int) -> dict[str, list[int]]:
    changed = dict(shapes)
    changed["logits.conv3d.weight"] = [num_classes] + shapes["logits.conv3d.weight"][1:]
    changed["logits.conv3d.bias"] = [num_classes]
    return changed


def test_state_dict_has_the_published_keys_and_shapes():
    ours = {key: list(value.shape) for key, value in InceptionI3d(400).state_dict().items()}
    assert ours == PUBLISHED
    charades = {key: list(value.shape) for key, value in InceptionI3d(157).state_dict().items()}
    assert charades == with_classes(PUBLISHED, 157)


def test_same_padding_is_tensorflows():
    assert same_padding(224, 7, 2) == (2, 3)  # even size: kernel - stride = 5, the odd one at the back
    assert same_padding(17, 7, 2) == (3, 3)  # odd size: kernel - size % stride = 6
    assert same_padding(112, 3, 2) == (0, 1)
    assert same_padding(9, 1, 1) == (0, 0) and same_padding(5, 3, 1) == (1, 1)


def test_outputs_equal_the_published_network():
    golden = np.load(FIXTURES / "i3d_golden.npz")
    model = InceptionI3d(400).eval()
    model.load_state_dict(seeded_state(PUBLISHED))
    with torch.inference_mode():
        features = model.features(golden_input())
        logits = model.logits(features)
    assert features.shape == (1, 1024, feature_count(17), 1, 1) == (1, 1024, 2, 1, 1)
    # float sums differ in the last bits between CPUs; the values reach about 60
    np.testing.assert_allclose(features[0, :, :, 0, 0].T.numpy(), golden["features"], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(logits[0, :, :, 0, 0].T.numpy(), golden["logits"], rtol=1e-4, atol=1e-3)


def test_feature_count_is_one_per_8_frames_minus_one():
    assert [feature_count(n) for n in (8, 9, 16, 17, 24, 720)] == [0, 1, 1, 2, 2, 89]


@pytest.mark.parametrize("num_classes, legacy", [(400, True), (157, False)])
def test_loads_checkpoints_of_both_pytorch_formats_without_counters(tmp_path, num_classes, legacy):
    """rgb_imagenet.pt (400 logits) and rgb_charades.pt (157) were written by PyTorch 0.3: the old
    serialisation, no num_batches_tracked. Both read with weights_only; so do files of PyTorch 2."""
    state = seeded_state(with_classes(PUBLISHED, num_classes), seed=3, drop_counters=True)
    path = tmp_path / "rgb.pt"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    model = load_i3d(path)
    assert model.num_classes == num_classes and not model.training
    for key, value in state.items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


def test_missing_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(MissingWeightsError) as info:
        load_i3d(tmp_path / "rgb_charades.pt")
    message = str(info.value)
    for words in ("rgb_charades.pt", "not found", "refdense weights download i3d", "--video-weights"):
        assert words in message


def test_other_checkpoints_are_refused_with_the_difference(tmp_path):
    flow = dict(seeded_state(PUBLISHED))
    flow["Conv3d_1a_7x7.conv3d.weight"] = torch.zeros(64, 2, 7, 7, 7)
    torch.save(flow, tmp_path / "flow.pt")
    with pytest.raises(ValueError, match="2-channel input .optical flow."):
        load_i3d(tmp_path / "flow.pt")
    partial = dict(seeded_state(PUBLISHED))
    del partial["Mixed_5c.b3b.conv3d.weight"]
    partial["Mixed_6a.b0.conv3d.weight"] = torch.zeros(1)
    partial["Mixed_4b.b0.bn.bias"] = torch.zeros(7)
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"missing Mixed_5c.b3b.conv3d.weight.*unexpected Mixed_6a.b0.conv3d.weight.*"
                                         r"Mixed_4b.b0.bn.bias \(7,\).*\(192,\)"):
        load_i3d(tmp_path / "partial.pt")
    torch.save({"model": {"a": torch.zeros(1)}}, tmp_path / "nested.pt")
    with pytest.raises(ValueError, match="expected a state dict of tensors"):
        load_i3d(tmp_path / "nested.pt")


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_checkpoint_runs_no_code(tmp_path):
    marker = tmp_path / "payload-ran"
    with open(tmp_path / "crafted.pt", "wb") as handle:
        pickle.dump({"Conv3d_1a_7x7.conv3d.weight": Payload(marker)}, handle, protocol=2)
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        load_i3d(tmp_path / "crafted.pt")
    assert not marker.exists()
