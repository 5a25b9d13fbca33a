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


def unplug(camera: Any) -> None:
    """Put a running ``D405Camera`` in the state an unplugged camera leaves it: reader stopped, stream failed.

    The reader is stopped and joined the way ``close()`` does it, then fails with librealsense's message. Stopping
    the pipeline under a running reader (what a real unplug does) intermittently aborts the whole test process
    inside librealsense; how the reader turns that error into ``camera.error`` is tested on its own with a
    pipeline stand-in (``tests/real/test_real_camera.py``).
    """
    camera._stop.set()
    if camera._thread is not None:
        camera._thread.join(timeout=TIMEOUT_S)
    camera._fail("the stream failed: No device connected")
