"""PAT, RefDense and the ablation architectures: sizes, masking, switches, inference, bad input."""

import dataclasses
import functools

import pytest
import torch
import torch.nn.functional as F
import yaml

from refdense.models import (
    PAT,
    DetectionOutput,
    MaskedConv1d,
    ModelConfig,
    RefDense,
    build_model,
    complexity,
    predict_full_video,
    predict_full_videos,
)
from refdense.models.blocks import upsample_linear

VIDEO, IMAGE, CLASSES, ENTITIES, MOTIONS = 12, 10, 5, 3, 4
FIELDS = [f.name for f in dataclasses.fields(DetectionOutput)]


def tiny(**changes) -> ModelConfig:
    base = dict(dim=16, heads=2, head_dim=8, blocks=1, strides=[2, 4], max_len=16, local_hidden=32)
    return ModelConfig(**{**base, **changes})


def make(cfg: ModelConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(
        cfg, video_dim=VIDEO, image_dim=IMAGE, num_classes=CLASSES, num_entities=ENTITIES, num_motions=MOTIONS
    )
    return model.eval()


def inputs(batch: int = 2, length: int = 16, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, VIDEO, generator=g), torch.randn(batch, length, IMAGE, generator=g)


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@functools.cache
def charades(arch: str) -> torch.nn.Module:
    """Charades-sized model on the meta device (shapes only: counting needs no weights), built once."""
    with torch.device("meta"):
        return build_model(
            ModelConfig(arch=arch), video_dim=1024, image_dim=1024, num_classes=157, num_entities=38, num_motions=38
        )


def test_pat_parameter_counts_match_the_paper_configurations():
    assert count(charades("pat")) == 70_821_690  # SPEC section 2, Charades
    with torch.device("meta"):
        multithumos = build_model(
            ModelConfig(arch="pat", blocks=4, fine_weight=0.2),
            video_dim=1024,
            image_dim=1024,
            num_classes=65,
            num_entities=28,
            num_motions=50,
        )
    assert count(multithumos) == 91_829_890  # "91.8 M"


def test_refdense_parameter_count_is_pat_trunk_plus_entity_branch_cross_attention_and_heads():
    d, hidden, c_in = 512, 4096, 1024
    attention = 4 * d * d + 4 * d  # Wq, Wkv, Wo with biases (8 heads x 64 = 512)
    local = d * hidden + hidden + 4 * hidden + hidden * d + d  # Linear, depthwise k3, Linear
    block = lambda rows: 2 * 2 * d + attention + 64 * rows + local  # noqa: E731  two LayerNorms + table
    projection = c_in * d * 3 + d + 2 * d
    entity_branch = projection + block(256) + 2 * d
    cross = 9 + 3  # cross-attentions: 3 blocks in the fine and in each of 3 coarse branches
    heads = (d * 38 + 38) * 2 + (2 * d * 157 + 157)
    pat_heads = (d * 157 + 157) + (d * d + d) + (d * 157 + 157)
    expected = count(charades("pat")) - pat_heads + entity_branch + cross * (attention + 2 * d) + heads
    assert count(charades("refdense")) == expected == 90_077_417


def test_pat_forward_costs_9_03_gmacs_at_t256():
    params, gmacs = complexity(charades("pat"), 1024, 1024, T=256)
    assert params == 70_821_690
    assert gmacs == pytest.approx(9.03, abs=0.005)  # SPEC section 2 (torch FlopCounter)


@pytest.mark.parametrize("arch", ["refdense", "pat", "entity_only", "motion_only"])
def test_forward_returns_detection_output_with_the_documented_shapes(arch):
    model = make(tiny(arch=arch))
    video, image = inputs(batch=2, length=11)
    out = model(video, image, None)
    assert isinstance(out, DetectionOutput)
    assert out.action_logits.shape == (2, 11, CLASSES)
    if arch == "refdense":
        assert out.entity_logits.shape == (2, 11, ENTITIES) and out.motion_logits.shape == (2, 11, MOTIONS)
        assert out.entity_features.shape == out.motion_features.shape == (2, 11, 16)
        torch.testing.assert_close(out.action_features, torch.cat([out.entity_features, out.motion_features], -1))
    else:
        assert out.entity_logits is None and out.motion_logits is None and out.motion_features is None
        assert out.action_features.shape == (2, 11, 16)
    assert out.action_features.shape[-1] == tiny(arch=arch).action_feature_dim


@pytest.mark.parametrize("position", ["pat", "relative"])
@pytest.mark.parametrize("arch", ["refdense", "pat", "entity_only"])
def test_padding_changes_no_valid_output(arch, position):
    model = make(tiny(arch=arch, position=position))
    video, image = inputs(batch=2, length=16)
    n = 11  # not a multiple of the strides: the coarse ends and the up-sampling are exercised
    alone = model(video[:1, :n], image[:1, :n], None)
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[0, n:] = False
    padded = model(video, image, mask)
    junk_video, junk_image = video.clone(), image.clone()
    junk_video[0, n:], junk_image[0, n:] = float("nan"), 1e6
    junk = model(junk_video, junk_image, mask)
    for name in FIELDS:
        a, p, j = getattr(alone, name), getattr(padded, name), getattr(junk, name)
        if a is None:
            continue
        torch.testing.assert_close(p[:1, :n], a, atol=1e-5, rtol=1e-4, msg=name)
        torch.testing.assert_close(j[:1, :n], p[:1, :n], atol=1e-5, rtol=1e-4, msg=name)
        assert torch.isfinite(p).all()


@pytest.mark.parametrize(
    "shape", [dict(kernel_size=3, padding=1), dict(kernel_size=3, padding=1, stride=4),
              dict(kernel_size=3, padding=1, groups=6), dict(kernel_size=5, padding=4, dilation=2)]
)
def test_masked_conv_is_conv1d_on_the_transposed_input_without_copies(shape):
    torch.manual_seed(0)
    conv = MaskedConv1d(6, 12, **shape).double()
    x = torch.randn(2, 13, 6, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(13) < torch.tensor([[13], [9]])
    out = conv(x, mask)
    zeroed = x.masked_fill(~mask.unsqueeze(-1), 0.0)
    expected = torch.nn.Conv1d.forward(conv, zeroed.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(out.square().sum(), (x, conv.weight, conv.bias))
    expected_grads = torch.autograd.grad(expected.square().sum(), (x, conv.weight, conv.bias))
    for a, b in zip(grads, expected_grads):
        torch.testing.assert_close(a, b)
    # in float32 the output comes back in the (B, T, C) layout, not as a transposed view
    assert conv.float()(x.detach().float(), mask).is_contiguous()


def test_upsampling_is_torch_linear_interpolation_on_full_sequences():
    x = torch.randn(2, 4, 3)
    full = torch.ones(2, 4, dtype=torch.bool)
    expected = F.interpolate(x.transpose(1, 2), size=16, mode="linear", align_corners=False).transpose(1, 2)
    torch.testing.assert_close(upsample_linear(x, 4, 16, full), expected)


def test_upsampling_coordinates_stay_exact_in_bf16():
    x = torch.randn(1, 32, 4)
    full = torch.ones(1, 32, dtype=torch.bool)
    expected = upsample_linear(x, 8, 256, full)
    torch.testing.assert_close(upsample_linear(x.bfloat16(), 8, 256, full).float(), expected, atol=0.03, rtol=0.02)


def _outputs_equal(a: DetectionOutput, b: DetectionOutput, skip=()) -> None:
    for name in FIELDS:
        if name in skip:
            continue
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            torch.testing.assert_close(x, y, msg=name)


def _shared_keys(full: torch.nn.Module, ablated: torch.nn.Module) -> set[str]:
    return set(full.state_dict()) - set(ablated.state_dict())


def test_no_cross_attention_removes_exactly_the_cross_attention():
    full, ablated = make(tiny()), make(tiny(cross_attention=False), seed=5)
    removed = _shared_keys(full, ablated)
    assert removed and all(".cross" in key for key in removed)
    assert not set(ablated.state_dict()) - set(full.state_dict())
    assert len([k for k in removed if k.endswith("cross.to_q.weight")]) == 1 * 3  # one block x 3 branches
    ablated.load_state_dict({k: v for k, v in full.state_dict().items() if k not in removed})
    video, image = inputs()
    with_cross = full(video, image)
    torch.testing.assert_close(ablated(video, image).entity_features, with_cross.entity_features)
    assert not torch.allclose(ablated(video, image).motion_features, with_cross.motion_features)
    with torch.no_grad():  # silence the cross-attention: what is left is the ablated network
        for name, p in full.named_parameters():
            if ".cross.to_out" in name:
                p.zero_()
    _outputs_equal(full(video, image), ablated(video, image))


@pytest.mark.parametrize("switch, field", [("entity_head", "entity_logits"), ("motion_head", "motion_logits")])
def test_auxiliary_head_switches_remove_only_their_head(switch, field):
    full, ablated = make(tiny()), make(tiny(**{switch: False}), seed=5)
    removed = _shared_keys(full, ablated)
    assert removed == {f"{switch}.weight", f"{switch}.bias"}
    ablated.load_state_dict({k: v for k, v in full.state_dict().items() if k not in removed})
    video, image = inputs()
    out = ablated(video, image)
    assert getattr(out, field) is None
    _outputs_equal(full(video, image), out, skip={field})


def test_position_switch_changes_only_the_bias_tables():
    pat, relative = make(tiny(position="pat")), make(tiny(position="relative"))
    shapes = {k: v.shape for k, v in pat.state_dict().items()}
    changed = {k for k, v in relative.state_dict().items() if v.shape != shapes[k]}
    assert set(relative.state_dict()) == set(shapes)
    assert changed == {k for k in shapes if k.endswith("position_table")}
    assert relative.state_dict()["entity.blocks.0.attn.position_table"].shape == (2 * 16 - 1, 8)
    assert relative.state_dict()["motion.coarse.1.blocks.0.attn.position_table"].shape == (2 * 4 - 1, 8)


@pytest.mark.parametrize("stream, width", [("video", VIDEO), ("image", IMAGE), ("concat", VIDEO + IMAGE)])
def test_pat_inputs_switch_changes_only_the_input_projection(stream, width):
    model = make(tiny(arch="pat", inputs=stream))
    reference = make(tiny(arch="pat", inputs="video"))
    assert model.trunk.fine.project.weight.shape == (16, width, 3)
    differ = {k for k, v in model.state_dict().items() if v.shape != reference.state_dict()[k].shape}
    assert differ <= {"trunk.fine.project.weight"}
    video, image = inputs()
    assert model(video if stream != "image" else None, image if stream != "video" else None).action_logits.shape == (
        2,
        16,
        CLASSES,
    )


def test_motion_only_is_pat_on_concatenated_features():
    motion_only, pat_concat = make(tiny(arch="motion_only")), make(tiny(arch="pat", inputs="concat"))
    assert type(motion_only) is PAT
    video, image = inputs()
    _outputs_equal(motion_only(video, image), pat_concat(video, image))


def test_entity_only_is_the_action_entity_branch_with_an_action_head():
    refdense, entity_only = make(tiny()), make(tiny(arch="entity_only", inputs="image"), seed=3)
    own = {k: v for k, v in refdense.state_dict().items() if k.startswith("entity.")}
    assert set(entity_only.state_dict()) == set(own) | {"action_head.weight", "action_head.bias"}
    entity_only.load_state_dict({**own, "action_head.weight": entity_only.action_head.weight, "action_head.bias": entity_only.action_head.bias})
    video, image = inputs()
    out = entity_only(None, image)
    torch.testing.assert_close(out.action_features, refdense(video, image).entity_features)
    assert make(tiny(arch="entity_only")).entity.project.weight.shape == (16, VIDEO + IMAGE, 3)  # Table 3 default


def test_fine_weight_mixes_the_two_heads_linearly():
    video, image = inputs()
    logits = {w: make(tiny(arch="pat", fine_weight=w))(video, image).action_logits for w in (0.0, 0.3, 1.0)}
    torch.testing.assert_close(logits[0.3], 0.3 * logits[1.0] + 0.7 * logits[0.0])
    assert not torch.allclose(logits[0.0], logits[1.0])


def test_fusion_kernel_widens_only_the_action_head():
    wide = make(tiny(fusion_kernel=3))
    narrow = make(tiny())
    assert wide.action_head.weight.shape == (CLASSES, 32, 3)
    differ = {k for k, v in wide.state_dict().items() if v.shape != narrow.state_dict()[k].shape}
    assert differ == {"action_head.weight"}


def test_dropout_is_active_in_training_mode_only():
    model = make(tiny(arch="pat"))
    video, image = inputs()
    first, second = model(video, image).action_logits, model(video, image).action_logits
    torch.testing.assert_close(first, second)
    model.train()
    assert not torch.allclose(model(video, image).action_logits, model(video, image).action_logits)


@pytest.mark.parametrize("position", ["pat", "relative"])
def test_predict_full_video_covers_every_segment_window_by_window(position):
    model = make(tiny(arch="refdense", position=position))
    model.train()
    video, image = inputs(batch=1, length=37)
    probs = predict_full_video(model, video[0], image[0].numpy())
    assert model.training  # mode restored
    assert probs.shape == (37, CLASSES) and probs.dtype == torch.float32
    assert torch.all((probs > 0) & (probs < 1))
    model.eval()
    if position == "pat":  # windows [0, 16), [16, 32) and the short tail [32, 37), each alone
        parts = [model(video[:, a:b], image[:, a:b]).action_logits[0] for a, b in ((0, 16), (16, 32), (32, 37))]
        expected = torch.cat(parts).sigmoid()
    else:
        expected = model(video, image).action_logits[0].sigmoid()
    torch.testing.assert_close(probs, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("position", ["pat", "relative"])
@pytest.mark.parametrize("arch", ["refdense", "pat"])
def test_videos_predicted_together_get_what_each_gets_alone(arch, position):
    model = make(tiny(arch=arch, position=position))
    g = torch.Generator().manual_seed(3)
    # shorter than a window, exactly one, several with a short tail; small batches force several
    lengths = [5, 16, 37, 1, 16, 23, 9]
    videos = [(torch.randn(n, VIDEO, generator=g), torch.randn(n, IMAGE, generator=g).numpy()) for n in lengths]
    alone = [predict_full_video(model, video, image) for video, image in videos]
    for budget in (4096, 40):
        together = predict_full_videos(model, videos, max_batch_segments=budget)
        assert [p.shape for p in together] == [(n, CLASSES) for n in lengths]
        for a, b in zip(alone, together):
            torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)


def test_predict_full_video_rejects_bad_videos():
    model = make(tiny())
    video, image = inputs(batch=1, length=20)
    with pytest.raises(ValueError, match=r"same length T, found 20 and 19"):
        predict_full_video(model, video[0], image[0, :19])
    with pytest.raises(ValueError, match=r"video must have shape \(T, 12\) for one video, found \(1, 20, 12\)"):
        predict_full_video(model, video, image[0])
    with pytest.raises(ValueError, match="at least one segment, found T=0"):
        predict_full_video(model, video[0, :0], image[0, :0])
    with pytest.raises(ValueError, match=r"image must have shape \(T, 10\) for one video, found \(20, 12\)"):
        predict_full_video(model, video[0], video[0])  # image features of the wrong width
    with pytest.raises(ValueError, match=r"reads image features of shape \(T, 10\), found None"):
        predict_full_video(model, video[0], None)


def test_forward_and_backward_under_bf16_autocast():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = make(tiny()).train().to(device)
    video, image = (x.to(device) for x in inputs())
    mask = torch.ones(2, 16, dtype=torch.bool, device=device)
    mask[1, 9:] = False
    with torch.autocast(device, dtype=torch.bfloat16):
        out = model(video, image, mask)
        loss = sum(getattr(out, name).float().mean() for name in ("action_logits", "entity_logits", "motion_logits"))
    loss.backward()
    assert out.action_logits.dtype == torch.bfloat16
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda v, i, m: (v[..., :-1], i, m), r"video must have shape \(B, T, 12\), found \(2, 16, 11\)"),
        (lambda v, i, m: (v, i[:, :-1], m), r"image must have shape \(2, 16, 10\), found \(2, 15, 10\)"),
        (lambda v, i, m: (v.long(), i, m), "video must have the model's dtype torch.float32, found torch.int64"),
        (lambda v, i, m: (v, i.half(), m), "image must have the model's dtype torch.float32, found torch.float16"),
        (lambda v, i, m: (v, i, m.float()), "mask must be a bool tensor of shape \\(2, 16\\), found torch.float32"),
        (lambda v, i, m: (v, i, m[:, :-1]), r"mask must have shape \(2, 16\), found \(2, 15\)"),
        (lambda v, i, m: (v, i, m & torch.tensor([[True], [False]])), r"found none in batch element\(s\) \[1\]"),
        (lambda v, i, m: (v, i, m & (torch.arange(16) != 3)), r"valid segment after padding in batch element\(s\) \[0, 1\]"),
        (lambda v, i, m: (torch.cat([v, v], 1), torch.cat([i, i], 1), torch.cat([m, m], 1)), "max_len=16 .*found 32"),
    ],
)
def test_bad_input_names_expected_and_found(change, message):
    model = make(tiny())
    video, image = inputs()
    with pytest.raises(ValueError, match=message):
        model(*change(video, image, torch.ones(2, 16, dtype=torch.bool)))


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(arch="mlad"), "arch must be one of"),
        (dict(arch="refdense", inputs="video"), "inputs must be None for arch='refdense'"),
        (dict(arch="pat", inputs="audio"), "inputs must be None or one of"),
        (dict(position="absolute"), "position must be one of"),
        (dict(strides=[2, 3]), "divide max_len=16"),
        (dict(heads=0), "heads must be a positive integer, found 0"),
        (dict(fusion_kernel=2), "fusion_kernel must be odd"),
        (dict(input_dropout=1.0), r"input_dropout must be in \[0, 1\)"),
        (dict(cross_attention="no"), "cross_attention must be true or false"),
    ],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny(**changes)


def test_config_round_trips_through_yaml_and_rejects_unknown_keys():
    cfg = tiny(arch="pat", inputs="concat", position="relative")
    assert ModelConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match=r"unknown ModelConfig field\(s\) \['layers'\]"):
        ModelConfig.from_dict({"layers": 3})
    with pytest.raises(ValueError, match="num_entities must be a positive integer, found 0"):
        build_model(tiny(), video_dim=4, image_dim=4, num_classes=2, num_entities=0, num_motions=2)


def test_refdense_is_the_default_architecture():
    assert isinstance(make(tiny()), RefDense)
