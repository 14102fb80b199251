"""What a run is made of, built from its config: the dataset folder, the model, the criterion.

Shared by training (:mod:`refdense.train.loop`) and evaluation (:mod:`refdense.train.evaluate`), so
that a checkpoint is always loaded into exactly what it was trained as.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from refdense.data import DatasetInfo
from refdense.losses import LossConfig, RefDenseCriterion
from refdense.models import Detector, ModelConfig, architecture, build_model

if TYPE_CHECKING:
    from refdense.train.config import OptimConfig


def open_dataset_dir(dataset: str) -> Path:
    """The folder of ``data.dataset``: an existing folder, or a synthetic preset generated on first use."""
    from refdense.synth import PRESETS, default_dataset

    path = Path(dataset).expanduser()
    if (path / "dataset.json").is_file():
        return path
    if dataset in PRESETS:
        return default_dataset(dataset)
    raise ValueError(
        f"data.dataset: {dataset!r} is neither a dataset folder (no {path / 'dataset.json'}) nor a synthetic "
        f"preset ({', '.join(PRESETS)})"
    )


def dataset_signature(info: DatasetInfo) -> dict:
    """What a model depends on in a dataset (stored in checkpoints, checked on load): the feature
    widths, and the class, entity and motion names, whose order is the order of the model's outputs."""
    return {
        "video_dim": info.video_dim,
        "image_dim": info.image_dim,
        "classes": list(info.classes),
        "entities": list(info.entities),
        "motions": list(info.motions),
    }


def check_signature(found: dict, info: DatasetInfo, what: str) -> None:
    """Raise ValueError when a checkpoint's dataset signature ``found`` differs from ``info``'s."""
    wrong = []
    for key, value in dataset_signature(info).items():
        stored = found.get(key)
        if stored == value:
            continue
        if isinstance(value, list) and isinstance(stored, list) and len(stored) == len(value):
            i = next(i for i, (a, b) in enumerate(zip(stored, value)) if a != b)
            wrong.append(f"{key}[{i}] {stored[i]!r} in the checkpoint, {value[i]!r} in dataset {info.name!r}")
        elif isinstance(value, list) and isinstance(stored, list):
            wrong.append(f"{len(stored)} {key} in the checkpoint, {len(value)} in dataset {info.name!r}")
        else:
            wrong.append(f"{key} {stored!r} in the checkpoint, {value!r} in dataset {info.name!r}")
    if wrong:
        raise ValueError(f"{what} does not fit this dataset: {'; '.join(wrong)}")


def build_detector(model_cfg: ModelConfig, info: DatasetInfo) -> Detector:
    """The detection model for ``info``'s feature widths and class counts."""
    return build_model(
        model_cfg,
        video_dim=info.video_dim,
        image_dim=info.image_dim,
        num_classes=info.num_classes,
        num_entities=info.num_entities,
        num_motions=info.num_motions,
    )


def build_criterion(
    loss_cfg: LossConfig,
    model_cfg: ModelConfig,
    info: DatasetInfo,
    dataset_dir: Path,
    text_encoder: str,
    text_weights: str | None = None,
) -> RefDenseCriterion:
    """The training objective of a model built from ``model_cfg``.

    CoLV projects each concept set's features from the width the architecture declares
    (``Architecture.colv_widths``); CoLV on a set whose features the model does not return is a
    ``ValueError``. The text bank (prompt embeddings of the class, entity and motion names) is loaded
    only when a CoLV term is on; :func:`refdense.text.text_bank_for` caches it in the dataset folder (the
    encoder, with ``text_weights``, runs only when the bank is not there yet).
    """
    text_bank = None
    if loss_cfg.active_colv_sets():
        from refdense.text import text_bank_for

        text_bank = text_bank_for(dataset_dir, info, text_encoder, text_weights)
    widths = architecture(model_cfg.arch).colv_widths(model_cfg)
    missing = [name for name in loss_cfg.active_colv_sets() if name not in widths]
    if missing:
        raise ValueError(
            f"loss.colv_sets: CoLV on {', '.join(missing)} needs those features, which model.arch "
            f"{model_cfg.arch!r} does not return (it returns: {', '.join(widths) or 'none'})"
        )
    return RefDenseCriterion(loss_cfg, dict(widths), text_bank)


#: The CPU feature flags (Linux's names) of native bf16 arithmetic: AMX tiles, AVX512-BF16.
NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as Linux reports them (``/proc/cpuinfo``); empty where there is no
    such file (another system: its CPU is then taken to have no native bf16)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    lines = (line.partition(":")[2] for line in text.splitlines() if line.startswith("flags"))
    return frozenset(next(lines, "").split())


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively: AMX-BF16 or AVX512-BF16 (:data:`NATIVE_BF16_FLAGS`)."""
    return not NATIVE_BF16_FLAGS.isdisjoint(cpu_flags())


#: The oldest CUDA compute capability with bf16 tensor cores (Ampere).
BF16_COMPUTE_CAPABILITY = (8, 0)

#: ``run.precision``: bf16 autocast, float32, or ``"auto"`` (see :func:`resolve_precision`).
Precision = Literal["auto", "bf16", "fp32"]


def resolve_precision(precision: Precision, device: torch.device) -> Precision:
    """``"bf16"`` or ``"fp32"``: ``precision`` itself unless it is ``"auto"``, which picks bf16 autocast
    where the hardware computes in bf16: CUDA GPUs of compute capability 8.0 or newer (Ampere on: A100,
    L4, H100) and CPUs with native bf16 (``cpu_has_native_bf16``); float32 elsewhere. An older GPU
    (Colab's T4, 7.5) and an AVX2-only CPU emulate bf16 and run slower in it than in float32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        native = torch.cuda.get_device_capability(device) >= BF16_COMPUTE_CAPABILITY
    else:
        native = device.type == "cpu" and cpu_has_native_bf16()
    return "bf16" if native else "fp32"


def autocast(device: torch.device, precision: Precision) -> torch.autocast:
    """bf16 autocast when ``resolve_precision(precision, device)`` is ``"bf16"``; otherwise a no-op context."""
    enabled = resolve_precision(precision, device) == "bf16"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def build_optimizer(
    parameters: Iterable[torch.nn.Parameter], optim_cfg: OptimConfig
) -> torch.optim.Optimizer:
    """The run's optimizer: ``optim.optimizer`` (adam, adamw, sgd) with ``optim.lr``,
    ``optim.weight_decay`` (and ``optim.momentum`` for sgd), on parameters already on their device.

    Fused where PyTorch has a fused kernel for the device (CPU and CUDA among them): one kernel
    updates every parameter, the same update as the default implementation to float rounding.
    Elsewhere PyTorch's default implementation."""
    parameters = list(parameters)
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    options: dict = {"lr": optim_cfg.lr, "weight_decay": optim_cfg.weight_decay}
    if optim_cfg.optimizer == "sgd":
        options["momentum"] = optim_cfg.momentum
    try:
        return kinds[optim_cfg.optimizer](parameters, fused=True, **options)
    except RuntimeError as error:  # PyTorch refuses fused=True for a device without the kernel
        if "fused" not in str(error):
            raise
        return kinds[optim_cfg.optimizer](parameters, **options)
