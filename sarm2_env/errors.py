"""Typed errors. Each names the field, what was expected and what was got."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


class SARM2Error(Exception):
    """Base class of every error the toolkit raises on purpose."""


class ConfigError(SARM2Error, ValueError):
    """A configuration value is out of range or of the wrong type."""


def check_range(name: str, value: object, low: float, high: float, hint: str = "") -> float:
    """``value`` as a float in [``low``, ``high``], or a :class:`ConfigError` naming ``name``; bools, strings and
    NaN are refused. ``hint`` is added after the range in the message."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"`{name}` must be a number in [{low:g}, {high:g}]{hint}; got {value!r}")
    return float(value)


def check_fraction(name: str, value: object, hint: str = "") -> float:
    """``value`` as a float in [0, 1] (a skill, a variability, a jitter level), or a :class:`ConfigError`
    naming ``name``; bools, strings and NaN are refused. ``hint`` is added after the range in the message."""
    return check_range(name, value, 0.0, 1.0, hint)


def check_positive_int(name: str, value: object, hint: str = "") -> int:
    """``value`` as an integer >= 1 (a count, a rate, a step limit), or a :class:`ConfigError` naming ``name``;
    bools and floats are refused. ``hint`` is added after the range in the message."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"`{name}` must be an integer >= 1{hint}; got {value!r}")
    return value


def key_mismatch(got: Iterable[str], expected: Iterable[str]) -> str | None:
    """``None`` where ``got`` holds exactly the ``expected`` keys, else the suffix an error message adds to name the
    difference: ``" (missing [...])"`` (in ``expected``'s order) and/or ``" (unknown [...])"`` (sorted)."""
    got, expected = list(got), list(expected)
    missing = [k for k in expected if k not in got]
    unknown = sorted(set(got) - set(expected))
    if not missing and not unknown:
        return None
    return (f" (missing {missing})" if missing else "") + (f" (unknown {unknown})" if unknown else "")


class InvalidActionError(SARM2Error, ValueError):
    """An action has the wrong shape, dtype or non-finite values."""


class DatasetError(SARM2Error):
    """A dataset file is missing, corrupt, or does not match what the reader expects."""


class UnknownNameError(SARM2Error, ValueError):
    """A task, backend or camera name is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str], aliases: Mapping[str, str] | None = None) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        if not close and aliases:  # e.g. a short task name "PulPlug" -> "SARM2/PullPlug-v0"
            lowered = {alias.lower(): target for alias, target in aliases.items()}
            match = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.7)
            close = [lowered[match[0]]] if match else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known)}.{hint}")
        self.kind, self.name, self.known = kind, name, known


class InputShapeError(SARM2Error, ValueError):
    """An image, embedding or state given to an encoder or reward model has the wrong shape, dtype or values."""


class CheckpointError(SARM2Error):
    """A reward-model checkpoint is missing, corrupt, or does not fit the encoder or task it is used with."""


class WeightsNotFoundError(SARM2Error, FileNotFoundError):
    """Pretrained weights were asked for but are not on disk; the message says what path to pass."""


class NonFiniteError(SARM2Error, ValueError):
    """A model produced or was given NaN or infinite values."""


class WorkerError(SARM2Error, RuntimeError):
    """A parallel worker (e.g. a Ray rollout actor) failed; the message names it and what it was doing."""


class WorkerTimeoutError(WorkerError, TimeoutError):
    """A parallel worker did not answer in time; the message names it and what it was doing."""
