"""Training and evaluation: one typed config, one loop, run directories, checkpoints, resume, DDP.

- :mod:`refdense.train.config`: :class:`TrainConfig`, :func:`load_config` (YAML + ``--set`` overrides).
- :mod:`refdense.train.loop`: :func:`train` (the loop notebook 09 teaches).
- :mod:`refdense.train.result`: :class:`TrainResult` (what ``train`` returns), :class:`NonFiniteLossError`.
- :mod:`refdense.train.evaluate`: :func:`evaluate` a checkpoint on a split.
- :mod:`refdense.train.checkpoint`: what a checkpoint holds, writing and reading it.
- :mod:`refdense.train.distributed`: ``torchrun`` support (DistributedDataParallel).
- :mod:`refdense.train.demo` and :mod:`refdense.train.ablate`: the main job and the ablations
  (``refdense.train.demo.demo``, ``refdense.train.ablate.ablate``: each function shares its
  module's name, so the package does not bind them).
- :mod:`refdense.train.sweep`: a component's gain against a mechanism dial of the synthetic data.

Importing the package loads only the config and the evaluation (whose function ``evaluate`` shares
its module's name, so it is bound here once); the other names load their module on first use, so
that ``import refdense.train.checkpoint`` loads neither the synthetic benchmark nor a plotting library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from refdense.train.config import ConfigError, TrainConfig, load_config
from refdense.train.evaluate import Evaluation, evaluate

if TYPE_CHECKING:
    from refdense.train.loop import train
    from refdense.train.result import NonFiniteLossError, TrainResult

# name -> the module that defines it, imported when the name is first asked for
LAZY = {
    "NonFiniteLossError": "refdense.train.result",
    "TrainResult": "refdense.train.result",
    "train": "refdense.train.loop",
}

__all__ = [
    "ConfigError",
    "Evaluation",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "load_config",
    "train",
]


def __getattr__(name: str) -> Any:
    if name not in LAZY:
        raise AttributeError(f"module 'refdense.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(LAZY[name]), name)
    globals()[name] = value
    return value
