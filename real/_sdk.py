"""Lazy imports of the optional hardware packages, and the two seams where we wrap the ``i2rt`` SDK.

* :func:`require` imports ``pyrealsense2`` / ``can`` / ``i2rt`` modules on first use and turns a missing package
  into :class:`~real.errors.MissingDependencyError` with the install command.
* :func:`sdk_can_interface` lets the SDK's own CAN driver run on another python-can interface (the in-process
  ``virtual`` bus of :mod:`real.emulation`). The SDK opens every bus with ``bustype="socketcan"`` hard-coded; while
  the context is active, the ``can`` module *seen by the SDK's two bus-opening modules* is replaced by a proxy
  whose ``interface.Bus`` opens the requested interface. Nothing is patched for ``socketcan`` (the station).
* :func:`sdk_output_to_log` routes the SDK's ``print`` calls to our logger while we call into it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import threading
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

from real.errors import MissingDependencyError

logger = logging.getLogger("real.sdk")

_HINTS = {
    "pyrealsense2": "pip install pyrealsense2  (the wheel also needs the system library libusb-1.0-0)",
    "can": "pip install python-can",
    "i2rt": "pip install dreamscale-i2rt",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``purpose`` and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        hint = _HINTS.get(top, f"pip install {top}")
        raise MissingDependencyError(
            f"{purpose} needs the `{top}` package, which is not importable ({exc}). Install it with `{hint}`, "
            "or all real-station extras with `pip install -e .[real]`."
        ) from exc


# ------------------------------------------------------------------------------------------- bus routing

_ROUTE_LOCK = threading.RLock()
#: Modules of the SDK that call ``can.interface.Bus(bustype="socketcan", ...)``.
_BUS_OPENERS = ("i2rt.motor_drivers.can_interface", "i2rt.motor_config_tool.utils")


class _CanProxy:
    """Stands in for the ``can`` module inside the SDK: everything is the real module except ``interface.Bus``."""

    def __init__(self, can: ModuleType, interface: str) -> None:
        self._can = can
        self._interface = interface

        def bus(*args: Any, bustype: str | None = None, interface: str | None = None, **kwargs: Any) -> Any:
            return can.Bus(*args, interface=self._interface, **kwargs)

        self.interface = SimpleNamespace(Bus=bus)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._can, name)


@contextlib.contextmanager
def sdk_can_interface(interface: str) -> Iterator[None]:
    """Open the SDK's CAN buses on python-can ``interface`` while the context is active (see module docstring)."""
    if interface == "socketcan":
        yield
        return
    can = require("can", "the emulated CAN bus")
    modules = [require(name, "the YAM arm driver") for name in _BUS_OPENERS]
    with _ROUTE_LOCK:
        saved = [(m, m.can) for m in modules]
        proxy = _CanProxy(can, interface)
        for m, _ in saved:
            m.can = proxy
        try:
            yield
        finally:
            for m, original in saved:
                m.can = original


class _LogWriter(io.TextIOBase):
    def __init__(self, level: int) -> None:
        self.level = level

    def write(self, text: str) -> int:
        text = text.strip()
        if text:
            logger.log(self.level, "%s", text)
        return len(text)


@contextlib.contextmanager
def sdk_output_to_log(level: int = logging.DEBUG) -> Iterator[None]:
    """Send what the SDK prints to stdout to the ``real.sdk`` logger instead (library code must not print)."""
    with contextlib.redirect_stdout(_LogWriter(level)):
        yield
