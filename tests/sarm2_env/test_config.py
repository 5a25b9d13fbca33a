"""FrozenConfig: the strict round trip, presets, replace and field checks every config shares."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pytest

from sarm2_env.config import FrozenConfig
from sarm2_env.errors import ConfigError, UnknownNameError


@dataclasses.dataclass(frozen=True)
class _Demo(FrozenConfig):
    label = "demo"

    steps: int = 10
    rate: float = 0.5
    mode: str = "a"

    presets: ClassVar[dict[str, dict[str, Any]]] = {"small": {}, "fast": {"steps": 2}}

    def __post_init__(self) -> None:
        self._check_positive_ints("steps")
        self._check_range("rate", 0.0, 1.0, hi_open=True)
        self._check_choice("mode", ("a", "b"))


@dataclasses.dataclass(frozen=True)
class _Nested(FrozenConfig):
    field_prefix = "inner."

    n: int = 1

    def __post_init__(self) -> None:
        self._check_positive_ints("n")


def test_round_trip_presets_and_replace():
    config = _Demo.preset("fast", rate=0.25)
    assert config.to_dict() == {"steps": 2, "rate": 0.25, "mode": "a"}
    assert _Demo.from_dict(config.to_dict()) == config
    assert config.replace(mode="b").mode == "b" and config.mode == "a"
    assert _Demo.field_names() == ["steps", "rate", "mode"]


def test_unknown_names_are_errors_that_name_them():
    with pytest.raises(ConfigError, match=r"demo: unknown keys \['stepz'\]; known: \['mode', 'rate', 'steps'\]"):
        _Demo.from_dict({"stepz": 1})
    with pytest.raises(ConfigError, match=r"demo: unknown option\(s\) \['rat'\]"):
        _Demo().replace(rat=0.1)
    with pytest.raises(UnknownNameError, match="fats"):
        _Demo.preset("fats")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": 0}, "`steps` must be an integer >= 1; got 0"),
        ({"steps": True}, "`steps` must be an integer >= 1; got True"),
        ({"rate": 1.0}, r"`rate` must be in \[0.0, 1.0\); got 1.0"),
        ({"mode": "c"}, r"`mode` must be one of \['a', 'b'\]; got 'c'"),
    ],
)
def test_field_checks_name_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        _Demo(**changes)


def test_field_prefix_names_nested_fields():
    with pytest.raises(ConfigError, match=r"`inner.n` must be an integer >= 1"):
        _Nested(n=0)
