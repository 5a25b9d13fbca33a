"""Station config: the shipped example loads; unknown keys, wrong types and out-of-range values are typed errors."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from real.config import (
    DEFAULT_HOME,
    ArmConfig,
    CameraConfig,
    LabelConfig,
    SafetyConfig,
    StationConfig,
    arm_joint_range,
    load_station_config,
)
from sarm2_env.constants import ARMS, CAMERAS
from sarm2_env.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "real" / "configs" / "yam_station.yaml"


@pytest.fixture(scope="module")
def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_example_config_loads() -> None:
    config = load_station_config(EXAMPLE)
    assert sorted(config.arms) == sorted(ARMS) and sorted(config.cameras) == sorted(CAMERAS)
    assert config.control_hz == 30 and config.image_size == (128, 128) and config.dt == pytest.approx(1 / 30)
    assert all(isinstance(c.serial, str) for c in config.cameras.values())
    left = config.arms["left"]
    assert left.interface == "socketcan" and not left.allow_flash_write  # flash writes are opt-in
    assert config.leaders is not None and config.leaders["left"].handle == "teaching_handle"
    assert config.source == str(EXAMPLE)
    assert config.labels.bindings()["g"] == "pick_grab"


def test_arm_range_and_home_match_the_simulated_station() -> None:
    from tasks.station import HOME_QPOS

    np.testing.assert_allclose(DEFAULT_HOME, HOME_QPOS)
    r = arm_joint_range("yam")
    assert r.shape == (6, 2) and np.all(r[:, 0] < r[:, 1])
    np.testing.assert_allclose(r[0], [-2.61799, 3.14159], atol=1e-5)


def _set(data: dict, path: str, value) -> dict:
    data = copy.deepcopy(data)
    keys = path.split(".")
    node = data
    for key in keys[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


_DELETE = object()

BAD = [
    ("colour_hz", 30, "unknown key 'colour_hz'"),
    ("control_hz", 0, "`control_hz` must be a number in (0, 250]"),
    ("image_size", [8, 8], "`image_size` must be an int or [height, width]"),
    ("arms.left.chanel", "x", "did you mean 'channel'?"),
    ("arms.left.channel", "", "`arms.left.channel` must be a non-empty string"),
    ("arms.left.interface", "pcan", "`arms.left.interface` must be one of"),
    ("arms.left.gripper_type", "no_gripper", "`arms.left.gripper_type` must be one of"),
    ("arms.left.joint_limits", [[-4.0, 1.0]] + [[0.0, 1.0]] * 5, "`arms.left.joint_limits[0]` must lie inside"),
    ("arms.left.joint_limits", [[1.0, -1.0]] + [[0.0, 1.0]] * 5, "must have low < high"),
    ("arms.left.joint_limits", [[0.0, 1.0]] * 5, "a list of 6 [low, high] pairs"),
    ("arms.left.home", [0.0] * 6, "`arms.left.home` must be a list of 7 finite numbers"),
    ("arms.left.home", [3.0, 1.49, 1.36, -1.44, 0.0, 0.0, 1.0], "`arms.left.home` must lie inside `joint_limits`"),
    ("arms.left.home", [0.0, 1.49, 1.36, -1.44, 0.0, 0.0, 1.5], "gripper opening) must be in [0, 1]"),
    ("arms.left.calibrate_gripper", False, "`arms.left.gripper_limits` must be the gripper motor positions"),
    ("arms.left.check_motor_config", "yes", "`arms.left.check_motor_config` must be true or false"),
    ("arms.left.check_motor_types", False, "`arms.left.check_motor_config` must be false unless `check_motor_types`"),
    ("arms.right", _DELETE, "`arms` must be a mapping with exactly the keys"),
    ("cameras.top.serial", 218622270001, "quote it in YAML"),
    ("cameras.top.fps", 1000, "`cameras.top.fps` must be an integer in [1, 90]"),
    ("cameras.left_wrist.serial", "000000000001", "distinct serials"),
    ("cameras.wrist", {"serial": "9"}, "`cameras` must be a mapping with exactly the keys"),
    ("leaders.left.handle", "joystick", "`leaders.left.handle` must be one of"),
    ("leaders.right.channel", "can_follower_l", "distinct CAN channels"),
    ("safety.max_joint_velocity", -1.0, "`safety.max_joint_velocity` must be a positive number"),
    ("safety.gripper_range", [0.5, 0.2], "`safety.gripper_range` must be [min, max]"),
    ("safety.estop_signals", ["SIGFOO"], "must name POSIX signals"),
    ("safety.damping_kd", [9.0] * 7, "`safety.damping_kd` must be 7 gains in [0, 5]"),
    ("safety.estop_keys", ["s"], "must differ from the label keys"),
    ("labels.primitive_keys", {"x": "juggle"}, "SARM2 primitive names"),
    ("labels.primitive_keys", {"s": "place"}, "bound twice"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[f"{p}={v!r:.20}" for p, v, _ in BAD])
def test_bad_values_are_typed_errors_naming_the_field(example: dict, path: str, value, message: str) -> None:
    data = _set(example, path, value)
    with pytest.raises(ConfigError) as err:
        StationConfig.from_dict(data)
    assert message in str(err.value)


def test_allow_flash_write_needs_the_config_check(example: dict) -> None:
    data = _set(example, "arms.left.check_motor_config", False)
    data = _set(data, "arms.left.allow_flash_write", True)
    with pytest.raises(ConfigError, match="`arms.left.allow_flash_write` must be false unless"):
        StationConfig.from_dict(data)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_station_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("arms: [unclosed")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_station_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="YAML mapping"):
        load_station_config(tmp_path / "list.yaml")


def test_relative_playback_files_resolve_against_the_config(tmp_path: Path, example: dict) -> None:
    data = _set(example, "cameras.top.playback_file", "recordings/top.db3")
    (tmp_path / "station.yaml").write_text(yaml.safe_dump(data))
    config = load_station_config(tmp_path / "station.yaml")
    assert config.cameras["top"].playback_file == str(tmp_path.resolve() / "recordings" / "top.db3")


@pytest.mark.parametrize("package", ["pyrealsense2", "can"])
def test_a_missing_optional_package_names_the_install_command(monkeypatch, package: str) -> None:
    from real.arm import YAMArm
    from real.camera import D405Camera
    from real.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    with pytest.raises(
        MissingDependencyError, match=f"pip install {'pyrealsense2' if package != 'can' else 'python-can'}"
    ):
        if package == "can":
            YAMArm(ArmConfig(channel="vcan_x", interface="virtual", gripper_limits=(0.0, 1.0))).open()
        else:
            D405Camera(CameraConfig(serial="1")).open()


def test_dataclasses_validate_when_built_in_code() -> None:
    with pytest.raises(ConfigError, match="`serial` must be a non-empty string"):
        CameraConfig(serial="")
    with pytest.raises(ConfigError, match="`max_joint_delta` must be a positive number"):
        SafetyConfig(max_joint_delta=0.0)
    with pytest.raises(ConfigError, match="`release_key` must differ"):
        SafetyConfig(release_key="e")
    with pytest.raises(ConfigError, match="distinct"):
        LabelConfig(success_key="n")
    arm = ArmConfig(channel="can0", gripper_limits=(0.0, 2.0))
    assert arm.limits().shape == (6, 2)
    with pytest.raises(Exception, match="cannot assign"):
        arm.channel = "can1"  # frozen
