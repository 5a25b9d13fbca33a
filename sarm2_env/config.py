"""The base of every frozen hyper-parameter dataclass: a strict dict round trip, named presets, and the
field checks whose messages read the same everywhere ("`field` must be ...; got ...").

Reward models store their config in the checkpoint as a dict and the benchmark builds configs from a preset
name plus overrides, so a misspelled key is an error that names it instead of a silently ignored option.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

from sarm2_env.errors import ConfigError, UnknownNameError

_C = TypeVar("_C", bound="FrozenConfig")


class FrozenConfig:
    """Mixin of a ``@dataclasses.dataclass(frozen=True)`` config.

    Subclasses may set ``presets`` (name -> field overrides) and ``label`` (how errors name the config,
    e.g. ``"BC policy"``; the class name by default) and call the ``_check_*`` helpers in ``__post_init__``.
    """

    #: preset name -> field overrides
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: how error messages name this config (class name when empty)
    label: ClassVar[str] = ""
    #: prefix of field names in error messages (e.g. ``"residual."`` for a nested config)
    field_prefix: ClassVar[str] = ""

    @classmethod
    def _label(cls) -> str:
        return cls.label or cls.__name__

    @classmethod
    def field_names(cls) -> list[str]:
        """The config's fields, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def _reject_unknown(cls, keys: Any, what: str) -> None:
        unknown = sorted(set(keys) - set(cls.field_names()))
        if unknown:
            raise ConfigError(f"{cls._label()}: unknown {what} {unknown}; known: {sorted(cls.field_names())}")

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain values (what a checkpoint or a results file stores)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_C], data: dict[str, Any]) -> _C:
        """Strict: unknown keys are an error naming them."""
        cls._reject_unknown(data, "keys")
        return cls(**data)

    @classmethod
    def preset(cls: type[_C], name: str, **overrides: Any) -> _C:
        """A named preset with optional field overrides."""
        if name not in cls.presets:
            raise UnknownNameError(f"{cls._label()} preset", name, cls.presets)
        return cls.from_dict({**cls.presets[name], **overrides})

    def replace(self: _C, **changes: Any) -> _C:
        """A copy with ``changes``; unknown field names are an error naming them."""
        self._reject_unknown(changes, "option(s)")
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    # --- field checks ----------------------------------------------------------------------------------
    def _fail(self, name: str, expected: str, value: Any) -> None:
        raise ConfigError(f"`{self.field_prefix}{name}` must be {expected}; got {value!r}")

    def _check_positive_ints(self, *names: str) -> None:
        """Each field is an ``int`` >= 1 (``bool`` refused)."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self._fail(name, "an integer >= 1", value)

    def _check_range(self, name: str, lo: float, hi: float, *, hi_open: bool = False) -> None:
        """``lo <= field <= hi`` (``< hi`` with ``hi_open``)."""
        value = getattr(self, name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value
        ok = ok and (value < hi if hi_open else value <= hi)
        if not ok:
            self._fail(name, f"in [{lo}, {hi}{')' if hi_open else ']'}", value)

    def _check_non_negative(self, *names: str) -> None:
        """Each field is a number >= 0."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                self._fail(name, ">= 0", value)

    def _check_positive(self, *names: str) -> None:
        """Each field is a number > 0."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                self._fail(name, "> 0", value)

    def _check_choice(self, name: str, choices: Any) -> None:
        """The field is one of ``choices``."""
        value = getattr(self, name)
        if value not in choices:
            self._fail(name, f"one of {list(choices)}", value)
