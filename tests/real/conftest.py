"""Fixtures of the real-station tests: an emulated station (virtual CAN bus + recorded D405 streams).

Tests marked ``hardware`` need the real station and are skipped unless ``--run-hardware`` is given (when running
``pytest tests/real``) or the environment variable ``SARM2_HARDWARE=1`` is set; they read the station config from
``SARM2_STATION_CONFIG`` (default ``real/configs/yam_station.yaml``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HARDWARE_ENV = "SARM2_HARDWARE"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-hardware",
        action="store_true",
        default=False,
        help="run tests marked 'hardware' against the real YAM + D405 station",
    )


def _hardware_enabled(config: pytest.Config) -> bool:
    try:
        flag = bool(config.getoption("--run-hardware"))
    except ValueError:  # the option is registered only when this conftest is loaded at start-up
        flag = False
    return flag or os.environ.get(HARDWARE_ENV, "") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _hardware_enabled(config):
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason=f"needs the real station: pass --run-hardware or set {HARDWARE_ENV}=1")
    for item in items:
        if "hardware" in item.keywords and here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def camera_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the synthetic D405 recordings (written once per session, ~1.5 s)."""
    from real.emulation import EmulatedStation

    path = tmp_path_factory.mktemp("d405_recordings")
    EmulatedStation(path).record_cameras()
    return path


@pytest.fixture()
def fast_safety():
    """Safety settings for tests: short engage and hold, timeouts generous enough for a loaded 2-core CI box."""
    from real.config import SafetyConfig

    return SafetyConfig(
        engage_time_s=0.1,
        hold_time_s=0.15,
        home_velocity=3.0,
        policy_timeout_s=1.0,
        camera_timeout_s=1.0,
        # Generous: a stalled 2-core CI machine must not trip the bus watchdog; the bus-stall test waits it out.
        bus_timeout_s=2.0,
    )


@pytest.fixture()
def station(camera_dir: Path, fast_safety):
    """A started :class:`real.emulation.EmulatedStation` (fake DM motors on virtual CAN, recorded cameras)."""
    from real.emulation import EmulatedStation

    with EmulatedStation(camera_dir, safety=fast_safety, leaders=True) as st:
        yield st


@pytest.fixture()
def make_env(station):
    """``make_env(**kwargs)``: a :class:`RealStationEnv` on the emulated station, closed after the test."""
    from real.env import RealStationEnv

    envs = []

    def make(config=None, **kwargs):
        kwargs.setdefault("listen_keys", False)
        kwargs.setdefault("install_signal_handlers", False)
        kwargs.setdefault("task", "emulated task")
        env = RealStationEnv(config or station.config, **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()
