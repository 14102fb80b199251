"""The training step: host synchronisations counted, the non-finite stop without reading the loss,
the optimizer (fused where the device has the kernel), the choice of precision."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from refdense.data.dataset import Batch
from refdense.losses import LossConfig, RefDenseCriterion
from refdense.models import ModelConfig, architecture, build_model
from refdense.train import ConfigError, NonFiniteLossError, distributed
from refdense.train import components
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


@pytest.mark.perf
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
    criterion = RefDenseCriterion(loss, dict(architecture(cfg.arch).colv_widths(cfg)), bank)
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


@pytest.mark.perf
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


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_a_non_finite_loss_stops_at_the_end_of_its_interval_whatever_the_optimizer(optimizer):
    runner = tiny_model_and_criterion()
    data = batches(4)
    data[1].video[0, 0, 0] = float("nan")  # step 2 is not finite; steps 3 and 4 are
    optim = build_optimizer(runner.parameters(), OptimConfig(optimizer=optimizer, lr=1e-3))
    steps = []
    step = optim.step
    optim.step = lambda *args, **kwargs: steps.append(1) or step(*args, **kwargs)  # type: ignore[method-assign]
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 2: .*loss nan, bce_action nan"):
        train_one_epoch(runner, data, optim, **epoch_args("ckpt", log_every=2))
    assert len(steps) == 2  # the interval of steps 1-2 ended the epoch: steps 3 and 4 never ran
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 2: the loss is not finite"):
        train_one_epoch(tiny_model_and_criterion(), data, build_optimizer(runner.parameters(), OptimConfig(
            optimizer=optimizer)), **epoch_args("ckpt", log_every=50))  # found at the end of the epoch


@pytest.mark.parametrize("optimizer, kind", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                             ("sgd", torch.optim.SGD)])
def test_the_optimizer_is_the_one_optim_names_fused_on_the_cpu(optimizer, kind):
    parameters = list(tiny_model_and_criterion().parameters())
    built = build_optimizer(parameters, OptimConfig(optimizer=optimizer, lr=2e-3, weight_decay=1e-4, momentum=0.5))
    assert type(built) is kind and built.defaults["fused"]
    assert built.defaults["lr"] == 2e-3 and built.defaults["weight_decay"] == 1e-4
    assert built.defaults.get("momentum", 0.5) == 0.5  # only SGD has momentum


def test_a_device_without_a_fused_kernel_gets_the_default_implementation(monkeypatch):
    class NoFusedKernel(torch.optim.Adam):
        def __init__(self, params, fused=None, **options):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
            super().__init__(params, **options)

    monkeypatch.setattr(torch.optim, "Adam", NoFusedKernel)
    built = build_optimizer(tiny_model_and_criterion().parameters(), OptimConfig())
    assert type(built) is NoFusedKernel and not built.defaults["fused"]


def test_an_unknown_optimizer_names_the_key_and_the_value():
    with pytest.raises(ConfigError) as caught:
        from_dict({"optim": {"optimizer": "lion"}})
    assert "optim.optimizer" in str(caught.value) and "'lion'" in str(caught.value)
    with pytest.raises(ConfigError, match="optim.momentum"):
        from_dict({"optim": {"optimizer": "sgd", "momentum": 1.5}})


@pytest.mark.parametrize(
    "amx, avx512_bf16, device, capability, chosen",
    [(False, False, "cpu", None, "fp32"), (True, False, "cpu", None, "bf16"), (False, True, "cpu", None, "bf16"),
     (False, False, "cuda", (8, 0), "bf16"), (False, False, "cuda", (9, 0), "bf16"),
     (True, True, "cuda", (7, 5), "fp32")],  # a T4 (7.5) emulates bf16, whatever the CPU has
)
def test_auto_precision_is_bf16_where_it_is_native(monkeypatch, amx, avx512_bf16, device, capability, chosen):
    flags = {"avx2", "avx512f"} | ({"amx_tile", "amx_bf16"} if amx else set()) | ({"avx512_bf16"} if avx512_bf16 else set())
    monkeypatch.setattr(components, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert resolve_precision("auto", torch.device(device)) == chosen
    for explicit in ("fp32", "bf16"):
        assert resolve_precision(explicit, torch.device(device)) == explicit


def test_the_cpu_flags_are_those_linux_reports(monkeypatch, tmp_path):
    import refdense.train.components as module

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    real_path = module.Path
    monkeypatch.setattr(module, "Path", lambda name: cpuinfo if name == "/proc/cpuinfo" else real_path(name))
    module.cpu_flags.cache_clear()
    try:
        assert module.cpu_flags() == {"fpu", "sse", "avx512f", "avx512_bf16"} and module.cpu_has_native_bf16()
        cpuinfo.unlink()
        module.cpu_flags.cache_clear()
        assert module.cpu_flags() == frozenset() and not module.cpu_has_native_bf16()
    finally:
        module.cpu_flags.cache_clear()
