"""PAT against the published code's own numbers (github faeghehsardari/PAT-ICCVW, commit 37419cdd).

``fixtures/pat_reference_small.npz`` holds what the published PAT computes in float64 on a small
configuration (its ``config`` entry: 4 branches of width 32, 2 blocks, 4 heads, MLP ratio 4, 16-d
input, 7 classes, 32 clips): every parameter under the published state-dict key (``param/<key>``),
an input ``(3, 32, 16)`` channels-last, both heads' logits ``(3, 32, 7)``, the fused probabilities
``sigmoid(0.1 fine + 0.9 coarse)``, labels, and the published training loss
``ASL(coarse) / sum(mask) + 0.1 ASL(fine) / sum(mask)`` (gamma_neg 3, gamma_pos 1, clip 0.05). The
published parameters are copied into the package's PAT through the key map below; the package must
then reproduce the numbers to 1e-9.
"""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from refdense.losses import LossConfig, RefDenseCriterion
from refdense.models import ModelConfig, build_model

FIXTURE = Path(__file__).parent / "fixtures" / "pat_reference_small.npz"
TOLERANCE = 1e-9

# One block: published suffix -> package suffix.
BLOCK_KEYS = {
    "norm1": "attn_norm",
    "Global__Positional_Relational_Block.Er": "attn.position_table",
    "Global__Positional_Relational_Block.q": "attn.to_q",
    "Global__Positional_Relational_Block.kv": "attn.to_kv",
    "Global__Positional_Relational_Block.proj": "attn.to_out",
    "norm2": "local_norm",
    "Local_Relational_Block.linear1": "local.expand",
    "Local_Relational_Block.TC": "local.depthwise",
    "Local_Relational_Block.linear2": "local.project",
}


def branch_keys(projection: str, blocks: str, norm: str, package: str, num_blocks: int) -> dict[str, str]:
    """Published module prefixes of one branch -> package prefixes."""
    keys = {f"{projection}.proj": f"{package}.project", f"{projection}.norm": f"{package}.project_norm",
            norm: f"{package}.norm"}
    for i in range(num_blocks):
        keys.update({f"{blocks}.{i}.{old}": f"{package}.blocks.{i}.{new}" for old, new in BLOCK_KEYS.items()})
    return keys


def key_map(num_blocks: int) -> dict[str, str]:
    """Published module prefix -> package module prefix, for PAT with three coarse branches."""
    keys = branch_keys("FDM.Temporal_Merging_Block_f", "FDM.fine", "FDM.norm_f", "trunk.fine", num_blocks)
    for k in (1, 2, 3):  # coarse branch k of the published code has stride 2**k
        keys.update(branch_keys(f"CDM.Temporal_Merging_Block_c{k}", f"CDM.coarse_{k}", f"CDM.norm_c{k}",
                                f"trunk.coarse.{k - 1}", num_blocks))
        keys[f"Mixer.linear_c{k}"] = f"trunk.mix_coarse.{k - 1}"
    keys["Mixer.linear_fine"] = "trunk.mix_fine"
    keys["Classfication_Module.linear_fine"] = "fine_head"  # (sic) the published attribute name
    keys["Classfication_Module.linear_coarse_1"] = "coarse_head.0"
    keys["Classfication_Module.linear_coarse_2"] = "coarse_head.2"
    return keys


@pytest.fixture(scope="module")
def golden():
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def reference_config(golden):
    return json.loads(str(golden["config"]))


def reference_pat(golden: dict) -> torch.nn.Module:
    """The package's PAT with the published parameters of ``golden`` (the fixture's arrays), float64,
    eval mode, on the CPU (``bench/gpu_check.py`` moves it to CUDA)."""
    ref = json.loads(str(golden["config"]))
    dim = ref["final_embedding_dim"]
    assert set(ref["inter_channels"]) == {dim}  # one width everywhere, as in the paper's configurations
    cfg = ModelConfig(arch="pat", inputs="video", position="pat", dim=dim, heads=ref["head"],
                      head_dim=dim // ref["head"], blocks=ref["num_block"], strides=[2, 4, 8],
                      max_len=ref["num_clips"], local_hidden=dim * ref["mlp_ratio"], fine_weight=0.1)
    torch.manual_seed(0)
    pat = build_model(cfg, video_dim=ref["in_feat_dim"], image_dim=ref["in_feat_dim"],
                      num_classes=ref["num_classes"], num_entities=1, num_motions=1).double().eval()
    prefixes = key_map(ref["num_block"])
    state = {}
    for name, value in golden.items():
        if not name.startswith("param/"):
            continue
        published = name.removeprefix("param/")
        module, _, leaf = published.rpartition(".")
        if published in prefixes:  # a parameter that is a module of its own (the position table)
            target = prefixes[published]
        else:
            target = f"{prefixes[module]}.{leaf}"
        tensor = torch.from_numpy(value)
        if target.startswith(("fine_head.", "coarse_head.")) and leaf == "weight":
            tensor = tensor.squeeze(-1)  # the published 1x1 Conv1d is an nn.Linear here
        assert target not in state, f"{published} maps onto {target} twice"
        state[target] = tensor
    pat.load_state_dict(state, strict=True)  # every package parameter is given, none is left over
    return pat


@pytest.fixture(scope="module")
def model(golden):
    return reference_pat(golden)


def test_the_key_map_is_a_bijection_onto_the_package_parameters(golden, model, reference_config):
    published = {name.removeprefix("param/") for name in golden if name.startswith("param/")}
    assert len(published) == len(model.state_dict())
    shapes = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    assert sum(int(np.prod(shape)) for shape in shapes.values()) == sum(
        golden[f"param/{name}"].size for name in published)


def test_pat_reproduces_the_published_logits_and_probabilities(golden, model):
    video = torch.from_numpy(golden["input"])
    with torch.no_grad():
        out = model(video, None, torch.ones(video.shape[:2], dtype=torch.bool))
    assert out.fine_logits.dtype == torch.float64
    for name, expected in (("fine_logits", golden["fine_logits"]), ("coarse_logits", golden["coarse_logits"])):
        np.testing.assert_allclose(getattr(out, name).numpy(), expected, rtol=0, atol=TOLERANCE, err_msg=name)
    np.testing.assert_allclose(out.action_logits.sigmoid().numpy(), golden["fused_probs"], rtol=0, atol=TOLERANCE)


def test_pat_recipe_reproduces_the_published_training_loss(golden, model):
    video = torch.from_numpy(golden["input"])
    mask = torch.ones(video.shape[:2], dtype=torch.bool)
    with torch.no_grad():
        out = model(video, None, mask)
    recipe = LossConfig(classification="asymmetric", action_heads="separate", fine_head_weight=0.1,
                        use_entity_labels=False, use_motion_labels=False, colv_sets=[])
    batch = SimpleNamespace(labels=torch.from_numpy(golden["labels"]), mask=mask)
    result = RefDenseCriterion(recipe, feature_dim=model.trunk.mix_fine.out_channels)(out, batch)
    assert list(result.terms) == ["bce_coarse", "bce_fine"]
    assert result.total.dtype == torch.float64
    assert abs(result.total.item() - float(golden["loss"])) < TOLERANCE


def test_the_coarse_head_reads_the_coarse_branches_only(golden, model):
    """What the published mixer returns apart: moving the fine path changes the fine head only."""
    video = torch.from_numpy(golden["input"])
    with torch.no_grad():
        before = model(video)
        model.trunk.mix_fine.bias += 1.0
        after = model(video)
        model.trunk.mix_fine.bias -= 1.0
    torch.testing.assert_close(after.coarse_logits, before.coarse_logits, rtol=0, atol=0)
    assert (after.fine_logits - before.fine_logits).abs().min() > 0
