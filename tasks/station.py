"""The simulated bimanual I2RT YAM station, built with ``mujoco.MjSpec``.

The kinematics come from the ``dreamscale-i2rt`` wheel (MIT, a build of I2RT's ``i2rt`` package):
two YAM arms 0.61 m apart with linear_4310 grippers and three RealSense D405 camera bodies. The
wheel's model has no actuators, cameras, collision geometry or keyframe; this module adds them:

* 14 position actuators (6 joints + gripper per arm) with the gains of the real arm's PD loop,
  armature, and gravity compensation on links 2 and up (the real motors compensate gravity too);
* ``top``, ``left_wrist`` and ``right_wrist`` cameras in the optical-frame bodies (D405 ~58° vertical
  field of view);
* decimated visual meshes (``tasks/assets/yam``, derived by ``tasks/assets/make_meshes.py``) and
  primitive collision geoms: finger pads and a palm box. Arm links are visual only;
* a table whose top is the arms' base plane (z = 0).

Tasks add their objects to the spec returned by :func:`build_station_spec` before compiling it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from sarm2_env.constants import ARMS

_STATION_XML = "robot_models/station/yam_station_linear_4310_d405/yam_station_linear_4310_d405.xml"
MESH_DIR = Path(__file__).resolve().parent / "assets" / "yam"

#: Gripper slide-joint travel (m): 0 = closed, GRIPPER_TRAVEL = fully open.
GRIPPER_TRAVEL = 0.04695
#: Position-actuator gains (kp, kv) per arm joint 1..6 and the gripper, as on the real arm's PD loop.
JOINT_GAINS: tuple[tuple[float, float], ...] = (
    (80.0, 5.0),
    (80.0, 5.0),
    (80.0, 5.0),
    (40.0, 1.5),
    (10.0, 1.5),
    (10.0, 1.5),
)
GRIPPER_GAINS = (2000.0, 150.0)
#: Home: tool centre 0.25 m in front of its base, 0.15 m above the table, pointing down, gripper open.
HOME_QPOS = np.array([0.0, 1.4929, 1.3617, -1.4395, 0.0, 0.0, 1.0])

#: Table top is z = 0; the workspace in front of the arms spans x in [0.15, 0.55] m.
TABLE_TOP_Z = 0.0
STATION_CENTER_Y = -0.305


@dataclass(frozen=True)
class CameraSpec:
    """Where a D405 colour stream comes from in the model."""

    name: str
    body: str


CAMERA_SPECS: tuple[CameraSpec, ...] = (
    CameraSpec("top", "top_camera"),
    CameraSpec("left_wrist", "left_camera"),
    CameraSpec("right_wrist", "right_camera"),
)
D405_FOVY_DEG = 58.0


def station_xml_path() -> Path:
    """Path of the YAM station MJCF inside the installed ``i2rt`` package."""
    try:
        root = files("i2rt")
    except ModuleNotFoundError as exc:  # pragma: no cover - install problem
        raise ModuleNotFoundError(
            "the YAM station model comes from the PyPI wheel 'dreamscale-i2rt'; "
            "install it with `pip install dreamscale-i2rt`"
        ) from exc
    return Path(str(root)) / _STATION_XML


def arm_joint_names(arm: str) -> list[str]:
    """The 6 revolute joints of ``arm`` ('left' or 'right')."""
    return [f"{arm}_joint{i}" for i in range(1, 7)]


def build_station_spec() -> mujoco.MjSpec:
    """Return an editable spec of the actuated station with cameras, table and lights."""
    spec = mujoco.MjSpec.from_file(str(station_xml_path()))
    spec.modelname = "sarm2_yam_station"
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.visual.quality.offsamples = 0  # multisampling triples llvmpipe's cost for little gain
    spec.visual.quality.shadowsize = 0
    spec.visual.global_.offwidth = 640
    spec.visual.global_.offheight = 480
    spec.visual.headlight.ambient = [0.45, 0.45, 0.45]
    spec.visual.headlight.diffuse = [0.35, 0.35, 0.35]

    for mesh in spec.meshes:  # decimated visual meshes, shipped with the MIT notice
        mesh.file = str(MESH_DIR / f"{mesh.name}.stl")
    for geom in spec.geoms:  # the CAD meshes are visual only
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH:
            geom.contype = 0
            geom.conaffinity = 0
            geom.group = 1

    for arm in ARMS:
        spec.site(f"tcp_{arm}").rgba = [1, 0, 0, 0]  # a marker for humans, not for the cameras
        _actuate_arm(spec, arm)
        spec.add_exclude(bodyname1=f"{arm}_base", bodyname2=f"{arm}_link1")  # or joint 1 jams
    for cam in CAMERA_SPECS:
        spec.body(cam.body).add_camera(name=cam.name, quat=[0, 1, 0, 0], fovy=D405_FOVY_DEG)

    _add_scenery(spec)
    _add_collision_geoms(spec)
    return spec


def _actuate_arm(spec: mujoco.MjSpec, arm: str) -> None:
    for i, (kp, kv) in enumerate(JOINT_GAINS, start=1):
        joint = spec.joint(f"{arm}_joint{i}")
        joint.armature = 0.05
        joint.damping = [0.5, 0.0, 0.0]
        act = spec.add_actuator(name=f"{arm}_joint{i}", target=joint.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=kp, kv=kv)
        act.ctrlrange = joint.range
        act.ctrllimited = True
    for finger in (7, 8):
        spec.joint(f"{arm}_joint{finger}").armature = 0.01
    grip = spec.add_actuator(name=f"{arm}_gripper", target=f"{arm}_joint7", trntype=mujoco.mjtTrn.mjTRN_JOINT)
    grip.set_to_position(kp=GRIPPER_GAINS[0], kv=GRIPPER_GAINS[1])
    grip.ctrlrange = [0.0, GRIPPER_TRAVEL]
    grip.ctrllimited = True
    grip.forcerange = [-60.0, 60.0]
    grip.forcelimited = True
    for body in ("link2", "link3", "link4", "link5", "gripper", "tip_left", "tip_right", "camera"):
        spec.body(f"{arm}_{body}").gravcomp = 1.0


def _add_scenery(spec: mujoco.MjSpec) -> None:
    wb = spec.worldbody
    spec.add_texture(
        name="floor_tex",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.28, 0.3, 0.33],
        rgb2=[0.22, 0.24, 0.27],
        width=64,
        height=64,
    )
    spec.add_material(name="floor_mat", textures=["", "floor_tex"], texrepeat=[8, 8])
    wb.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[3, 3, 0.1],
        pos=[0, 0, -0.75],
        material="floor_mat",
        contype=0,
        conaffinity=0,
    )
    wb.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.45, 0.62, 0.02],
        pos=[0.33, STATION_CENTER_Y, TABLE_TOP_Z - 0.02],
        rgba=[0.62, 0.55, 0.46, 1],
        friction=[0.8, 0.01, 0.001],
    )
    wb.add_light(
        name="key",
        pos=[0.3, STATION_CENTER_Y, 1.6],
        dir=[0, 0, -1],
        diffuse=[0.5, 0.5, 0.5],
        castshadow=False,
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
    )


def _add_tcp_aligned_box(
    spec: mujoco.MjSpec, data: mujoco.MjData, arm: str, body: str, name: str, offset: list[float], **geom: Any
) -> None:
    """An invisible collision box (group 3) ``name`` on ``body``, centred at ``offset`` in ``arm``'s tool-centre
    frame (columns: x, y along the finger slide, z the approach) and aligned with it; ``geom``: its size and any
    other geom attributes."""
    tcp = data.site(f"tcp_{arm}")
    frame = data.body(body)
    r_body = frame.xmat.reshape(3, 3)
    r_tcp = tcp.xmat.reshape(3, 3)
    centre = tcp.xpos + r_tcp @ np.array(offset)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, (r_body.T @ r_tcp).ravel())
    spec.body(body).add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=r_body.T @ (centre - frame.xpos),
        quat=quat,
        rgba=[0.2, 0.2, 0.2, 0.0],
        group=3,
        **geom,
    )


def _add_collision_geoms(spec: mujoco.MjSpec) -> None:
    """Finger pads and palm boxes, placed from the tool-centre frame at the closed-gripper pose."""
    ref = spec.compile()  # MjSpec.copy() is broken in MuJoCo 4.0; compiling twice is fine
    data = mujoco.MjData(ref)
    mujoco.mj_forward(ref, data)  # qpos = 0: grippers closed, pads touching at the tool centre
    for arm in ARMS:
        for tip, side in ((f"{arm}_tip_left", 1.0), (f"{arm}_tip_right", -1.0)):
            _add_tcp_aligned_box(
                spec,
                data,
                arm,
                tip,
                f"{tip}_pad",
                [0.0, side * 0.0045, -0.012],
                size=[0.011, 0.004, 0.016],
                friction=[1.5, 0.02, 0.002],
                condim=4,
                priority=1,
                solref=[0.004, 1.0],
            )
        _add_tcp_aligned_box(
            spec, data, arm, f"{arm}_gripper", f"{arm}_palm", [0.0, 0.0, -0.075], size=[0.03, 0.05, 0.03]
        )


def add_table_patch(body: Any, name: str, center: Any, half: Any, rgba: list[float]) -> Any:
    """A flat rectangle 1 mm thick lying on the table (a tray, a mat, a marked zone): seen, never touched."""
    return body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=[*center, 0.0005],
        size=[*half, 0.0005],
        rgba=rgba,
        contype=0,
        conaffinity=0,
    )


def attach_flexcomp(
    spec: mujoco.MjSpec, prefix: str, attributes: str, *, damping: float, solref: float, friction: float
) -> None:
    """Attach one MJCF ``flexcomp`` (a cable or a cloth) under ``prefix``: ``attributes`` are its own (name, type,
    layout, pose, radius, mass, colour); its edges are held by equality constraints with ``damping``, and it
    collides on bit 2 only (never with itself; condim 3) with time constant ``solref`` (s) and sliding
    ``friction``."""
    xml = f"""<mujoco><worldbody>
<flexcomp {attributes}>
  <edge equality="true" damping="{damping}"/>
  <contact selfcollide="none" condim="3" solref="{solref} 1" friction="{friction} 0.005 0.0001"
           contype="2" conaffinity="2"/>
</flexcomp></worldbody></mujoco>"""
    spec.attach(mujoco.MjSpec.from_string(xml), frame=spec.worldbody.add_frame(), prefix=prefix)


def add_object_floor(body: Any, name: str, conaffinity: int, friction: list[float]) -> Any:
    """An invisible plane at the table top that only geoms whose ``contype`` shares a bit with ``conaffinity`` touch:
    plane contacts (plane-box, plane-cylinder) are the cheapest and most stable. Drawn in geom group 3 (hidden)."""
    return body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0.45, 0.62, 0.01],
        pos=[0.33, STATION_CENTER_Y, 0.0],
        rgba=[0, 0, 0, 0],
        group=3,
        contype=0,
        conaffinity=conaffinity,
        friction=friction,
    )


def gripper_to_ctrl(opening: np.ndarray | float) -> np.ndarray:
    """Normalised gripper opening (0 closed, 1 open) to slide-joint target (m)."""
    return np.clip(opening, 0.0, 1.0) * GRIPPER_TRAVEL


def ctrl_to_gripper(travel: np.ndarray | float) -> np.ndarray:
    """Slide-joint position (m) to normalised gripper opening in [0, 1]."""
    return np.clip(np.asarray(travel) / GRIPPER_TRAVEL, 0.0, 1.0)
