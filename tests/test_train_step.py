"""The training step: host synchronisations counted, the non-finite stop without reading the loss,
fused Adam, the choice of precision."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from refdense.data.dataset import Batch
from refdense.losses import LossConfig, RefDenseCriterion
from refdense.models import ModelConfig, build_model
from refdense.train import NonFiniteLossError, distributed
from refdense.train.components import build_optimizer, resolve_precision
from refdense.train.config import OptimConfig, from_dict
from refdense.train.loop import TrainingStep, train_one_epoch

pytestmark = pytest.mark.usefixtures("one_torch_thread")

aten = torch.ops.aten
VIDEO, IMAGE, CLASSES, ENTITIES, MOTIONS, LENGTH = 12, 10, 5, 3, 4, 16
CPU = distributed.Context(rank=0, world_size=1, device=torch.device("cpu"))


class SyncCounter(TorchDispatchMode):
    """Counts the operations that make the host wait for a tensor's values: a tensor read as a
    Python number (``item``, ``float``, ``bool``, formatting: ``aten._local_scalar_dense``), shapes
    that depend on values (``nonzero``, ``masked_select``, boolean indexing), ``equal``, and
    ``tolist`` / ``numpy`` (patched: they bypass the dispatcher)."""

    SYNCS = {aten._local_scalar_dense, aten.nonzero, aten.masked_select, aten.equal, aten.unique_consecutive,
             aten._unique2, aten.is_nonzero}

    def __init__(self, monkeypatch) -> None:
        super().__init__()
        self.count = 0
        for name in ("tolist", "numpy"):
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counting(original))

    def _counting(self, original):
        def method(tensor, *args, **kwargs):
            self.count += 1
            return original(tensor, *args, **kwargs)

        return method

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in self.SYNCS:
            self.count += 1
        elif func.overloadpacket is aten.index and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1]
        ):
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_the_sync_counter_sees_every_kind_of_host_read(monkeypatch):
    t = torch.tensor([1.0, -2.0, 3.0])
    reads = [lambda: t[0].item(), lambda: float(t[0]), lambda: bool(t[0] > 0), lambda: f"{t.sum():.2f}",
             lambda: t.nonzero(), lambda: t[t > 0], lambda: t.masked_select(t > 0), lambda: torch.equal(t, t),
             lambda: t.tolist(), lambda: t.numpy(), lambda: int(t.argmax())]
    for read in reads:
        counter = SyncCounter(monkeypatch)
        with counter:
            read()
        assert counter.count >= 1
    counter = SyncCounter(monkeypatch)
    with counter:
        (t * 2 + 1).sum().sqrt()
    assert counter.count == 0


def tiny_model_and_criterion(seed: int = 0) -> TrainingStep:
    torch.manual_seed(seed)
    cfg = ModelConfig(dim=16, heads=2, head_dim=8, blocks=1, strides=[2, 4], max_len=LENGTH, local_hidden=32)
    model = build_model(cfg, video_dim=VIDEO, image_dim=IMAGE, num_classes=CLASSES, num_entities=ENTITIES,
                        num_motions=MOTIONS)
    bank = SimpleNamespace(embeddings={s: torch.randn(n, 6) for s, n in
                                       (("action", CLASSES), ("entity", ENTITIES), ("motion", MOTIONS))})
    loss = LossConfig(colv_sets=["entity", "motion"], learnable_temperature=True)
    criterion = RefDenseCriterion(loss, {"action": cfg.action_feature_dim, "entity": 16, "motion": 16}, bank)
    return TrainingStep(model, criterion)


def batches(count: int, seed: int = 1) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        mask = torch.arange(LENGTH) < torch.tensor([[LENGTH], [LENGTH - 5]])

        def labels(width):
            return (torch.rand(2, LENGTH, width, generator=g) < 0.3).float() * mask.unsqueeze(-1)

        out.append(Batch(video=torch.randn(2, LENGTH, VIDEO, generator=g) * mask.unsqueeze(-1),
                         image=torch.randn(2, LENGTH, IMAGE, generator=g) * mask.unsqueeze(-1),
                         labels=labels(CLASSES), entity_labels=labels(ENTITIES), motion_labels=labels(MOTIONS),
                         mask=mask, video_ids=["a", "b"]))
    return out


def config(**run):
    return from_dict({"optim": {"epochs": 1, "lr": 1e-3, "grad_clip": 1.0}, "run": {"device": "cpu", **run}})


def epoch_args(checkpoints: str = "x", **run) -> dict:
    """The keyword arguments of ``train_one_epoch`` for the first epoch of a run of ``config(**run)``."""
    cfg = config(**run)
    return dict(context=CPU, epoch=0, epochs=cfg.optim.epochs, precision=cfg.run.precision,
                grad_clip=cfg.optim.grad_clip, log_every=cfg.run.log_every, checkpoints=Path(checkpoints), quiet=True)


@pytest.mark.parametrize("log_every, syncs", [(2, 3), (50, 1)])
def test_a_training_epoch_waits_for_the_device_once_per_logging_interval(monkeypatch, log_every, syncs):
    runner = tiny_model_and_criterion()
    optimizer = build_optimizer(runner.parameters(), OptimConfig(lr=1e-3))
    counter = SyncCounter(monkeypatch)
    with counter:
        means = train_one_epoch(runner, batches(5), optimizer, **epoch_args(log_every=log_every))
    assert counter.count == syncs  # 5 steps: intervals end after steps 2, 4 and 5, or once at the end
    assert set(means) == {"loss", "bce_action", "bce_entity", "bce_motion", "colv_entity", "colv_motion"}
    # ... and the same step with the values checked waits many times: the checks are what it skips
    counter = SyncCounter(monkeypatch)
    with counter:
        runner(batches(1)[0], validate=True)
    assert counter.count > 3


def test_epoch_means_are_the_means_of_the_steps_losses():
    runner = tiny_model_and_criterion()
    reference = copy.deepcopy(runner)
    data = batches(3)
    torch.manual_seed(5)  # the same dropout masks in both
    means = train_one_epoch(runner, data, build_optimizer(runner.parameters(), OptimConfig(lr=1e-3)),
                            **epoch_args(log_every=2))
    optimizer = build_optimizer(reference.parameters(), OptimConfig(lr=1e-3))
    losses = []
    torch.manual_seed(5)
    for batch in data:
        result = reference(batch, validate=False)
        losses.append(float(result.total.detach()))
        optimizer.zero_grad()
        result.total.backward()
        torch.nn.utils.clip_grad_norm_(list(reference.parameters()), 1.0)
        optimizer.step()
    assert means["loss"] == pytest.approx(sum(losses) / 3, rel=1e-6)


def test_a_non_finite_loss_skips_every_later_update_and_stops_at_the_end_of_the_interval():
    runner = tiny_model_and_criterion()
    after_first_step = copy.deepcopy(runner)
    data = batches(4)
    data[1].video[0, 0, 0] = float("nan")  # step 2 is not finite; steps 3 and 4 are
    optimizer = build_optimizer(runner.parameters(), OptimConfig(lr=1e-3))
    torch.manual_seed(5)  # the same dropout masks in both runs
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 2: the loss is not finite \(loss nan, bce_action nan"):
        train_one_epoch(runner, data, optimizer, **epoch_args("ckpt", log_every=50))
    reference_optimizer = build_optimizer(after_first_step.parameters(), OptimConfig(lr=1e-3))
    torch.manual_seed(5)
    train_one_epoch(after_first_step, data[:1], reference_optimizer, **epoch_args())
    for (name, kept), expected in zip(runner.named_parameters(), after_first_step.parameters()):
        assert torch.equal(kept, expected), name  # the weights of step 1, untouched since
    assert all(int(state["step"]) == 1 for state in optimizer.state.values())


def test_fused_adam_is_the_default_adam_within_float_rounding():
    fused, plain = tiny_model_and_criterion(), tiny_model_and_criterion()
    optimizers = build_optimizer(fused.parameters(), OptimConfig(lr=1e-3, weight_decay=1e-4)), torch.optim.Adam(
        plain.parameters(), lr=1e-3, weight_decay=1e-4, foreach=False)
    assert optimizers[0].defaults["fused"]
    for step, batch in enumerate(batches(4)):
        for runner, optimizer in zip((fused, plain), optimizers):
            torch.manual_seed(step)  # the same dropout masks
            optimizer.zero_grad()
            runner(batch).total.backward()
            optimizer.step()
    for (name, a), b in zip(fused.named_parameters(), plain.parameters()):
        if name.endswith("to_kv.bias"):
            # the key bias moves every score of a query equally: its true gradient is 0, and Adam
            # scales the float noise of that 0 up to a full step; compare the value half
            a, b = a.chunk(2)[1], b.chunk(2)[1]
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    "amx, avx512_bf16, device, chosen",
    [(False, False, "cpu", "fp32"), (True, False, "cpu", "bf16"), (False, True, "cpu", "bf16"),
     (False, False, "cuda", "bf16")],
)
def test_auto_precision_is_bf16_where_it_is_native(monkeypatch, amx, avx512_bf16, device, chosen):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert resolve_precision("auto", torch.device(device)) == chosen
    for explicit in ("fp32", "bf16"):
        assert resolve_precision(explicit, torch.device(device)) == explicit
