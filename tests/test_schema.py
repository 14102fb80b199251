"""refdense.schema: the one way configuration sections are checked, when built and when read."""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from typing import Literal, Mapping

import pytest

from refdense.data import DatasetInfo, StreamInfo
from refdense.losses import LossConfig
from refdense.models import ModelConfig
from refdense.schema import ConfigError, FieldError, build, check_fields, require
from refdense.synth import Dials
from refdense.train.config import DataConfig, OptimConfig, RunConfig, TrainConfig


@dataclass(frozen=True)
class Port:
    number: int
    protocol: Literal["tcp", "udp"] = "tcp"

    def __post_init__(self) -> None:
        check_fields(self)
        require(self, 0 < self.number < 65536, "number", "an integer in (0, 65536)")


@dataclass
class Server:
    name: str
    ports: Mapping[str, Port] = field(default_factory=dict)
    weights: tuple[float, float] = (1.0, 1.0)
    mode: Literal["fast", "safe"] | None = None
    main: Port = field(default_factory=lambda: Port(80))

    def __post_init__(self) -> None:
        check_fields(self)


def test_build_checks_and_converts_every_value():
    server = build(Server, {"name": "a", "ports": {"web": {"number": 443}}, "weights": [1, "2e-1"],
                            "main": {"number": 8080, "protocol": "udp"}}, source="s.yaml")
    assert server == Server("a", {"web": Port(443)}, (1.0, 0.2), None, Port(8080, "udp"))
    assert isinstance(server.weights, tuple) and isinstance(server.weights[0], float)


@pytest.mark.parametrize("data, key, value", [
    ({}, "missing key name", None),
    ({"name": "a", "mdoe": "fast"}, "mdoe", "did you mean mode?"),
    ({"name": "a", "mode": "slow"}, "mode", "'fast', 'safe', found 'slow'"),
    ({"name": "a", "weights": [1]}, "weights", "2 items, found [1]"),
    ({"name": "a", "weights": [1, "x"]}, "weights[1]", "found 'x'"),
    ({"name": "a", "ports": {"web": {"number": 0}}}, "ports.web.number", "(0, 65536), found 0"),
    ({"name": "a", "main": {"number": 1, "protocol": "icmp"}}, "main.protocol", "'tcp', 'udp', found 'icmp'"),
    ({"name": "a", "main": 80}, "main", "found 80"),
    (["name"], "the top level", "found ['name']"),
])
def test_build_names_the_source_the_key_and_the_value(data, key, value):
    with pytest.raises(ConfigError) as caught:
        build(Server, data, source="s.yaml")
    message = str(caught.value)
    assert message.startswith("s.yaml: ") and key in message and (value is None or value in message), message


def test_a_section_made_in_python_names_its_class():
    with pytest.raises(FieldError, match=r"^Port\.protocol .*'tcp', 'udp'.*'TCP'$"):
        Port(1, "TCP")  # type: ignore[arg-type]
    with pytest.raises(FieldError, match=r"^Port\.number .*\(0, 65536\).*70000$"):
        Port(70000)
    with pytest.raises(FieldError, match=r"^Server\.name must be a string, found 3$"):
        Server(3)  # type: ignore[arg-type]


# Free-text string fields of the package's sections (paths, names, a device matched by a pattern) and
# ModelConfig.arch, a choice among the registered architectures (refdense.models.registry, checked in its
# __post_init__: the set grows with each registration); every other string field is a choice among
# fixed values, so it is typed Literal.
FREE_TEXT = {"DataConfig.dataset", "DataConfig.text_weights", "RunConfig.device", "DatasetInfo.name",
             "DatasetInfo.source", "DatasetInfo.format", "StreamInfo.encoder", "ModelConfig.arch"}


@pytest.mark.parametrize("section", [DataConfig, OptimConfig, RunConfig, TrainConfig, ModelConfig, LossConfig,
                                     DatasetInfo, StreamInfo, Dials], ids=lambda s: s.__name__)
def test_the_package_sections_are_checked_this_way(section):
    assert "check_fields(self)" in inspect.getsource(section.__post_init__), f"{section.__name__} bypasses refdense.schema"
    hints = typing.get_type_hints(section)
    strings = {f"{section.__name__}.{name}" for name, kind in hints.items() if kind in (str, str | None)}
    assert strings <= FREE_TEXT, f"type the choices of {sorted(strings - FREE_TEXT)} as Literal[...]"
