"""Tests of sarm2_env.constants and sarm2_env.errors, and that ``import sarm2_env`` stays cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sarm2_env
from sarm2_env import constants as C
from sarm2_env.errors import (
    ConfigError,
    DatasetError,
    InvalidActionError,
    SARM2Error,
    UnknownNameError,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

DESIGN_PRIMITIVES = (
    "clamp",
    "erase",
    "fold_flatten",
    "hang",
    "insert",
    "install",
    "pass",
    "pick_grab",
    "place",
    "pour_dump",
    "press",
    "pull",
    "roll",
    "rotate_turn",
    "scoop",
    "screw_unscrew",
    "sweep",
    "tie",
    "untie",
    "wrap",
    "zip_unzip",
    "dummy",
)


def test_primitives_are_the_22_design_classes_in_order():
    assert C.PRIMITIVES == DESIGN_PRIMITIVES
    assert C.NUM_PRIMITIVES == 22
    assert C.PRIMITIVES[-1] == "dummy"
    assert C.PRIMITIVE_INDEX == {name: i for i, name in enumerate(DESIGN_PRIMITIVES)}


def test_groups_partition_the_primitives():
    assert C.NUM_GROUPS == len(C.PRIMITIVE_GROUPS) == 8
    names = [name for name, _ in C.PRIMITIVE_GROUPS]
    assert len(set(names)) == 8
    members = [m for _, group in C.PRIMITIVE_GROUPS for m in group]
    assert sorted(members) == sorted(C.PRIMITIVES)  # each primitive in exactly one group
    assert all(len(group) > 0 for _, group in C.PRIMITIVE_GROUPS)


def test_primitive_to_group_agrees_with_groups():
    assert len(C.PRIMITIVE_TO_GROUP) == C.NUM_PRIMITIVES
    for i, name in enumerate(C.PRIMITIVES):
        assert name in C.PRIMITIVE_GROUPS[C.PRIMITIVE_TO_GROUP[i]][1]
    spot = {"dummy": 7, "pick_grab": 0, "erase": 2, "place": 1, "fold_flatten": 4, "press": 6, "insert": 3}
    for name, group in spot.items():
        assert C.PRIMITIVE_TO_GROUP[C.PRIMITIVE_INDEX[name]] == group, name
    assert C.PRIMITIVE_GROUPS[7] == ("other", ("dummy",))


def test_layout_constants():
    assert C.CAMERAS == ("top", "left_wrist", "right_wrist")
    assert C.ARMS == ("left", "right")
    assert C.STATE_DIM == C.ACTION_DIM == 2 * C.ARM_DOF == 14
    assert C.GRIPPER_INDICES == (C.ARM_DOF - 1, 2 * C.ARM_DOF - 1) == (6, 13)


def test_error_hierarchy():
    for cls in (ConfigError, InvalidActionError, UnknownNameError):
        assert issubclass(cls, SARM2Error) and issubclass(cls, ValueError)
    assert issubclass(DatasetError, SARM2Error)
    assert issubclass(SARM2Error, Exception)
    # The package re-exports the same classes.
    assert sarm2_env.ConfigError is ConfigError and sarm2_env.UnknownNameError is UnknownNameError


def test_unknown_name_error_lists_known_names_and_suggests_closest():
    err = UnknownNameError("camera", "topp", C.CAMERAS)
    msg = str(err)
    assert msg.startswith("unknown camera 'topp'")
    assert "known: left_wrist, right_wrist, top." in msg  # sorted
    assert msg.endswith("Did you mean 'top'?")
    assert (err.kind, err.name, err.known) == ("camera", "topp", ["left_wrist", "right_wrist", "top"])
    with pytest.raises(ValueError, match="unknown camera"):
        raise err


def test_unknown_name_error_without_close_match_has_no_hint():
    msg = str(UnknownNameError("backend", "zzzz", ["egl", "osmesa"]))
    assert "known: egl, osmesa." in msg
    assert "Did you mean" not in msg


def test_lazy_make_env_attribute():
    from sarm2_env.make import make_env
    from sarm2_env.wrapper import SARM2RewardWrapper

    assert sarm2_env.make_env is make_env
    assert sarm2_env.SARM2RewardWrapper is SARM2RewardWrapper
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sarm2_env.nope  # noqa: B018


def test_import_sarm2_env_is_cheap():
    code = (
        "import json, sys; import sarm2_env; "
        "print(json.dumps(sorted(m for m in ('torch', 'mujoco', 'gymnasium', 'tasks') if m in sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
