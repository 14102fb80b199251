"""Configuration sections: dataclasses whose fields are checked against their type annotations.

Every configuration refdense reads is validated this one way: the training run
(:class:`refdense.train.TrainConfig` and its sections), :class:`refdense.models.ModelConfig`,
:class:`refdense.losses.LossConfig`, ``dataset.json`` (:class:`refdense.data.DatasetInfo`) and the
synthetic data's :class:`refdense.synth.Dials`.

- A section is a dataclass. Choices are ``Literal[...]``, optional values ``X | None``, lists
  ``list[X]``, fixed pairs ``tuple[X, Y]``, mappings ``Mapping[str, X]``; a field may be a section.
- Its ``__post_init__`` calls :func:`check_fields`, which checks every field against its annotation
  (an int is accepted, and stored, as a float where a float is expected; a float may be written as
  a string such as ``"1e-4"``, which PyYAML reads as a string; lists become tuples where a tuple is
  annotated), then states its own rules with :func:`require`.
- :func:`build` makes a section from a parsed YAML or JSON mapping: unknown keys (with the closest
  known one), missing required keys and bad values raise :class:`ConfigError` naming the source
  (the file or the ``--set``), the dotted key and the value.

Messages read ``SOURCE: key must be EXPECTED, found VALUE``; a section built directly in Python
names its class instead of a source (``ModelConfig.arch must be one of 'refdense', ...``).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import math
import reprlib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file, value or override that cannot be used as it is."""


class FieldError(ConfigError):
    """A field of a section whose value breaks a rule; :func:`build` names its source and full key."""

    def __init__(self, section: str, key: str, problem: str):
        super().__init__(f"{section}.{key} {problem}")
        self.key, self.problem = key, problem


class _ValueProblem(Exception):
    """What is wrong where: ``key`` (the dotted place) and ``problem``; :func:`build` adds the source."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key} {problem}")
        self.key, self.problem = key, problem


_FIELD = object()


def require(section: Any, ok: bool, key: str, expected: str, found: Any = _FIELD) -> None:
    """Raise :class:`FieldError` ``"<key> must be <expected>, found <found>"`` unless ``ok``.

    ``key`` names a field of the dataclass instance ``section``, or a part of one
    (``decomposition[2]``); ``found`` is the value shown, by default the field's.
    """
    if not ok:
        shown_value = getattr(section, key) if found is _FIELD else found
        raise FieldError(type(section).__name__, key, f"must be {expected}, found {shown(shown_value)}")


def check_fields(section: Any) -> None:
    """Check every field of the dataclass instance ``section`` against its annotation, in place.

    Raises :class:`FieldError` for the first field whose value does not fit; converted values
    (floats from ints or numeric strings, tuples from lists) are stored back (frozen dataclasses too).
    """
    hints = typing.get_type_hints(type(section))
    for field in dataclasses.fields(section):
        try:
            value = _check(hints[field.name], getattr(section, field.name), field.name)
        except _ValueProblem as problem:
            raise FieldError(type(section).__name__, problem.key, problem.problem) from None
        object.__setattr__(section, field.name, value)


def build(cls: type[T], data: Any, source: str, prefix: str = "") -> T:
    """The section ``cls`` made from the mapping ``data`` (parsed YAML or JSON); missing keys take their defaults.

    ``source`` names where ``data`` comes from (a file, ``--set optim.lr=1``) and ``prefix`` the
    section's place in a larger one (``"model."``); both go into every error message.
    """
    try:
        return _section(cls, data, prefix)
    except (_ValueProblem, ConfigError) as problem:
        raise ConfigError(f"{source}: {problem}") from None


def _section(cls: type[T], data: Any, prefix: str) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{prefix.rstrip('.') or 'the top level'} must be a mapping of keys, found {shown(data)}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
            hint = f"; did you mean {prefix}{close[0]}?" if close else f"; known keys: {', '.join(fields)}"
            raise ConfigError(f"unknown key {prefix}{key}{hint}")
        values[key] = _check(hints[key], value, f"{prefix}{key}")
    missing = [prefix + name for name, f in fields.items() if name not in values and _required(f)]
    if missing:
        raise ConfigError(f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    try:
        return cls(**values)
    except FieldError as error:  # a rule of the section (require): name the key in the whole config
        raise _ValueProblem(f"{prefix}{error.key}", error.problem) from None


def _check(kind: Any, value: Any, key: str) -> Any:
    """``value`` converted to the annotation ``kind`` (floats from ints, tuples from lists), or
    :class:`_ValueProblem` naming ``key`` (``strides[1]`` for an item of a list)."""
    if dataclasses.is_dataclass(kind):  # a section inside a section
        return value if isinstance(value, kind) else _section(kind, value, prefix=f"{key}.")  # type: ignore[arg-type]
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        literal = [
            choice for a in options if typing.get_origin(a) is Literal for choice in typing.get_args(a)
        ]
        if literal and len(options) == 1:
            if value not in literal:
                raise _ValueProblem(key, f"must be None or one of {_choices(literal)}, found {shown(value)}")
            return value
        problems = []
        for option in options:
            try:
                return _check(option, value, key)
            except _ValueProblem as problem:
                problems.append(problem)
        raise problems[0]
    if origin is Literal:
        if value not in args:
            raise _ValueProblem(key, f"must be one of {_choices(args)}, found {shown(value)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _ValueProblem(key, f"must be a list, found {shown(value)}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _ValueProblem(key, f"must be a list of {len(args)} items, found {shown(list(value))}")
            return tuple(_check(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_check(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (collections.abc.Mapping, dict):
        if not isinstance(value, Mapping):
            raise _ValueProblem(key, f"must be a mapping, found {shown(value)}")
        key_kind, value_kind = args or (Any, Any)
        return {_check(key_kind, k, key): _check(value_kind, v, f"{key}.{k}") for k, v in value.items()}
    if kind is Any:
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise _ValueProblem(key, f"must be true or false, found {shown(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _ValueProblem(key, f"must be an integer, found {shown(value)}")
        return value
    if kind is float:
        return _finite_float(value, key)
    if kind is str:
        if not isinstance(value, str):
            raise _ValueProblem(key, f"must be a string, found {shown(value)}")
        return value
    raise TypeError(f"refdense.schema: no rule to check a value of type {kind!r} (key {key})")


def _finite_float(value: Any, key: str) -> float:
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise _ValueProblem(key, f"must be a number, found {shown(value)}")
    try:
        number = float(number)
    except OverflowError:  # an integer beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise _ValueProblem(key, f"must be a finite number, found {shown(value)}")
    return number


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple = 3, 6, 6, 6
_SHORT.maxstring = _SHORT.maxother = 80


def shown(value: Any) -> str:
    """``repr(value)`` cut to about 80 characters for an error message (nested values, long strings
    and lists abbreviated with ``...``); an integer of over 40 digits is shown by its size (Python
    refuses to write one of over 4300 digits)."""
    if isinstance(value, int) and abs(value).bit_length() > 133:
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    return _SHORT.repr(value)


def _choices(choices: Any) -> str:
    return ", ".join(map(repr, choices))


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
