"""Helpers shared by the real-station tests."""

from __future__ import annotations

import time
from collections.abc import Callable

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
