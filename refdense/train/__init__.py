"""Training and evaluation: one typed config, one loop, run directories, checkpoints, resume, DDP.

- :mod:`refdense.train.config`: :class:`TrainConfig`, :func:`load_config` (YAML + ``--set`` overrides).
- :mod:`refdense.train.loop`: :func:`train` (the loop notebook 09 teaches), :class:`TrainResult`.
- :mod:`refdense.train.evaluate`: :func:`evaluate` a checkpoint on a split.
- :mod:`refdense.train.distributed`: ``torchrun`` support (DistributedDataParallel).
- :mod:`refdense.train.demo` and :mod:`refdense.train.ablate`: the main job and the ablations.
- :mod:`refdense.train.sweep`: a component's gain against a mechanism dial of the synthetic data.
"""

from refdense.train.ablate import ablate
from refdense.train.config import ConfigError, TrainConfig, load_config
from refdense.train.demo import demo
from refdense.train.evaluate import Evaluation, evaluate
from refdense.train.loop import NonFiniteLossError, TrainResult, train

__all__ = [
    "ConfigError",
    "Evaluation",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "ablate",
    "demo",
    "evaluate",
    "load_config",
    "train",
]
