"""Helpers shared by the real-station tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: Upper bound for anything the tests wait for; conditions are polled, durations are never asserted.
TIMEOUT_S = 10.0


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT_S, interval: float = 0.01) -> bool:
    """Poll ``condition`` until it is true (returns True) or ``timeout`` passes (returns False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def wait_until_stable(value: Callable[[], Any], window: float = 0.2, timeout: float = TIMEOUT_S) -> bool:
    """Poll ``value`` until it stays unchanged for ``window`` seconds (True) or ``timeout`` passes (False).

    "Stopped doing X" is checked this way: a counter that still moves never holds still for a whole window,
    whereas comparing it once with an earlier reading passes at the first look.
    """
    deadline = time.monotonic() + timeout
    last, since = value(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.01)
        now = value()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= window:
            return True
    return False
