"""Base class of every simulated task: the YAM station, the spaces of docs/design.md §3, rendering.

A task subclass adds its objects to the station spec (:meth:`YamTaskEnv._build_task`), randomises
them (:meth:`YamTaskEnv._reset_task`) and says how far the task has come
(:meth:`YamTaskEnv.evaluate`, the single source of truth for ``success`` and ``progress``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces
from typing_extensions import override

from sarm2_env.actions import JOINT_OVERSHOOT, check_action, station_spaces  # noqa: F401 (re-export)
from sarm2_env.constants import ARMS, CAMERAS, PRIMITIVE_INDEX
from sarm2_env.errors import ConfigError, check_range
from tasks.calibration import home_tcp_positions, tcp_site_ids
from tasks.grasping import WeldGrasp
from tasks.jitter import SceneJitter
from tasks.rendering import MultiCameraRenderer
from tasks.station import (
    GRIPPER_TRAVEL,
    HOME_QPOS,
    arm_joint_names,
    build_station_spec,
    ctrl_to_gripper,
    gripper_to_ctrl,
)


@dataclass(frozen=True)
class Evaluation:
    """Ground truth of one state: ``progress`` in [0, 1], ``success``, and task-specific terms.

    ``progress`` is raw physics progress (flat while an arm reaches, jumping at sub-goals);
    ``calibrated_progress`` is the same physics in demo-time units (:mod:`tasks.calibration`), ``None`` for a
    task that does not compute it.
    """

    progress: float
    success: bool
    terms: dict[str, float] = field(default_factory=dict)
    calibrated_progress: float | None = None


#: Observation modes (ManiSkill-style): camera views + joints (the default, what a real station gives), the
#: flat privileged simulator state (joints first, then the task's objects; no rendering), or both.
OBS_MODES = ("pixels", "state", "pixels+state")


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by ``yaw`` about the world vertical."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


#: The widest ``pose_range`` a task accepts (twice the registered randomisation ranges).
MAX_POSE_RANGE = 2.0


def _parse_image_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size: tuple = (image_size, image_size)
    elif isinstance(image_size, (tuple, list)):
        size = tuple(image_size)
    else:  # 64.0, None, "64": refused here, not as a TypeError deep inside
        size = ()
    if len(size) != 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 16 <= s <= 1024 for s in size
    ):
        raise ConfigError(
            f"`image_size` must be an int or (height, width) with values in [16, 1024]; got {image_size!r}"
        )
    return int(size[0]), int(size[1])


def _layout(blocks: list[tuple[str, np.ndarray]]) -> tuple[tuple[str, int], ...]:
    return tuple((name, len(v)) for name, v in blocks)


class YamTaskEnv(gym.Env):
    """A manipulation task on the simulated bimanual YAM station with three D405 cameras.

    Args:
        render_mode: ``None`` or ``"rgb_array"`` (the three views side by side).
        image_size: camera resolution, an int (square) or ``(height, width)``; default 128.
        control_hz: control rate; physics runs at 500 Hz underneath. Must divide 500.
        terminate_on_success: end the episode (``terminated=True``) once ``info["success"]``.
        obs_mode: ``"pixels"`` (default): ``{"pixels": {top, left_wrist, right_wrist}, "agent_pos"}``;
            ``"state"``: one flat ``float32`` vector, ``agent_pos`` (14) then the task's privileged state
            (:meth:`task_state`; layout in :attr:`state_layout` and the task card), and nothing is rendered;
            ``"pixels+state"``: the pixels dict plus ``"state"`` (that same vector). A sim-only mode: a real
            station has no privileged state. :meth:`render_views` renders the cameras in any mode.
        camera_jitter: in [0, 1], default 0 (off): each reset moves every camera's mount by up to 2 cm and
            tilts it by up to 4 degrees, times this value (:mod:`tasks.jitter`).
        lighting_jitter: in [0, 1], default 0 (off): each reset scales the light by up to +-40 %, tilts it by up
            to 25 degrees and shifts the ambient level, times this value. Neither changes the physics or the
            task's initial state for a seed, only the pixels.
        pose_range: in [0, :data:`MAX_POSE_RANGE`], default 1: scales every object position and yaw range of the
            task's randomisation (the task card's "Randomisation"; not its other draws such as ink strokes or
            scrap scatter). 1 is the task as registered, the same initial state for a seed; 0 puts every object
            at its nominal pose; 2 doubles the ranges (the widest setting the scripted experts were measured on,
            per task, in docs/tasks.md).

    Actions outside the joint limits are clipped, as the real arm's driver does; ``info["action/clipped"]``
    counts the values clipped on that step (the real station reports the same key).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    #: Set by subclasses.
    task_name: ClassVar[str] = ""
    instruction: ClassVar[str] = ""
    #: Whether the task simulates deformables (flexcomp cloth or cable): its speed target is lower.
    deformable: ClassVar[bool] = False
    #: The rigid body both grippers grasp through weld assists (:class:`tasks.grasping.WeldGrasp`), or None. Where
    #: set, the welds are added after :meth:`_build_task`, the assists are ``grasps`` (``{arm: WeldGrasp}``), and
    #: they are released at every reset (after :meth:`_reset_task`) and driven every step (before
    #: :meth:`_before_physics`).
    grasped_body: ClassVar[str | None] = None
    #: The task's grasp assists (tasks with several objects or cloth key their own).
    grasps: dict[Any, Any]

    @property
    def max_episode_steps(self) -> int:
        """The task's registered episode limit (its :data:`tasks.TASK_TABLE` line), in control steps at 10 Hz;
        600 for a subclass that is not in the table."""
        from tasks import TASK_TABLE

        return next((e.max_episode_steps for e in TASK_TABLE if e.name == self.task_name), 600)

    def __init__(
        self,
        render_mode: str | None = None,
        image_size: int | tuple[int, int] = 128,
        control_hz: int = 10,
        terminate_on_success: bool = True,
        obs_mode: str = "pixels",
        camera_jitter: float = 0.0,
        lighting_jitter: float = 0.0,
        pose_range: float = 1.0,
    ) -> None:
        if obs_mode not in OBS_MODES:
            from sarm2_env.errors import UnknownNameError

            raise UnknownNameError("obs_mode", str(obs_mode), OBS_MODES)
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"`render_mode` must be None or 'rgb_array'; got {render_mode!r}")
        self.height, self.width = _parse_image_size(image_size)
        if not isinstance(control_hz, (int, np.integer)) or control_hz <= 0 or 500 % control_hz:
            raise ConfigError(f"`control_hz` must be a positive divisor of 500 (e.g. 10, 25, 50); got {control_hz!r}")
        self.render_mode = render_mode
        self.obs_mode = obs_mode
        self.control_hz = int(control_hz)
        self.terminate_on_success = terminate_on_success
        self.pose_range = check_range("pose_range", pose_range, 0.0, MAX_POSE_RANGE, " (1 = as registered)")
        self.metadata = {**self.metadata, "render_fps": self.control_hz}

        spec = build_station_spec()
        self._build_task(spec)
        if self.grasped_body is not None:
            WeldGrasp.add_for_arms(spec, self.grasped_body)
        self.model: mujoco.MjModel = spec.compile()
        self.data = mujoco.MjData(self.model)
        self._jitter = SceneJitter(self.model, camera=camera_jitter, lighting=lighting_jitter)
        #: What the last reset's scene jitter drew (empty when jitter is off).
        self.jitter_drawn: dict[str, float] = {}
        self.n_substeps = int(round(1.0 / (self.control_hz * self.model.opt.timestep)))

        self._arm_qadr = np.array([self.model.joint(n).qposadr[0] for arm in ARMS for n in arm_joint_names(arm)])
        self._grip_qadr = np.array([self.model.joint(f"{arm}_joint7").qposadr[0] for arm in ARMS])
        self._finger_qadr = np.array([self.model.joint(f"{arm}_joint{j}").qposadr[0] for arm in ARMS for j in (7, 8)])
        joint_lo = np.concatenate([self._arm_range(arm)[0] for arm in ARMS])
        joint_hi = np.concatenate([self._arm_range(arm)[1] for arm in ARMS])
        lo = np.insert(joint_lo, [6, 12], 0.0).astype(np.float32)
        hi = np.insert(joint_hi, [6, 12], 1.0).astype(np.float32)
        self.action_space, self.observation_space = station_spaces(lo, hi, self.height, self.width)
        self.home_action = np.concatenate([HOME_QPOS, HOME_QPOS]).astype(np.float32)
        self._tcp = tcp_site_ids(self.model)  # each arm's tool-centre site
        if self.grasped_body is not None:
            self.grasps = WeldGrasp.for_arms(self.model, self.grasped_body)
        self._home_tcp = home_tcp_positions(self.model)  # where they start: the yardstick of the "reach" stages
        self._renderer: MultiCameraRenderer | None = None
        #: renderers at other square sizes than the observation's, for reward models trained at another resolution
        self._sized_renderers: dict[int, MultiCameraRenderer] = {}
        self._last_pixels: dict[str, np.ndarray] | None = None
        self._elapsed_steps = 0
        self._clipped = 0  # action values clipped to the joint limits on the last step
        #: Name of the primitive an expert is executing, reported as ``info["primitive"]`` when set.
        self.current_primitive: str | None = None
        self._state_layout: tuple[tuple[str, int], ...] | None = None
        self._episode_started = False
        if obs_mode != "pixels":
            # The state's size depends on what subclasses build after this __init__: known on first use.
            self._pixel_space, self._observation_space = self._observation_space, None

    # ------------------------------------------------------------------ spaces
    @property
    def observation_space(self) -> spaces.Space:  # type: ignore[override]
        """See the class docstring; in the state modes it is built on first use (the state's size is the task's)."""
        if self._observation_space is None:
            try:
                size = sum(n for _, n in self.state_layout)
            except AttributeError as exc:  # or hasattr() would report "no observation space" and hide the cause
                raise RuntimeError(f"{self.task_name}: building the state observation failed: {exc}") from exc
            flat = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
            pixel_space = self._pixel_space
            self._observation_space = (
                flat if self.obs_mode == "state" else spaces.Dict({**pixel_space.spaces, "state": flat})
            )
        return self._observation_space

    @observation_space.setter
    def observation_space(self, space: spaces.Space) -> None:
        self._observation_space = space

    @property
    def state_layout(self) -> tuple[tuple[str, int], ...]:
        """``(name, size)`` of each block of the flat state vector (``obs_mode`` ``"state"``/``"pixels+state"``)."""
        if self._state_layout is None:
            if self._episode_started:
                self._state_layout = _layout(self._state_blocks())
            else:
                self._state_layout = self._probe_state_layout()
        return self._state_layout

    # ------------------------------------------------------------------ task hooks
    def _build_task(self, spec: mujoco.MjSpec) -> None:
        """Add the task's objects, equalities and sites to the station spec."""

    def _reset_task(self) -> None:
        """Randomise the task's initial state with ``self.np_random`` (qpos already at home)."""

    def _before_physics(self, action: np.ndarray) -> None:
        """Called once per control step before the physics substeps (grasp assists other than
        :attr:`grasped_body`'s, etc.)."""

    def _after_physics(self) -> None:
        """Called once per control step after the physics substeps (ink wiping, etc.)."""

    def evaluate(self) -> Evaluation:
        """Ground-truth progress and success of the current physics state."""
        raise NotImplementedError

    def _task_state_extra(self) -> list[tuple[str, np.ndarray]]:
        """Task-specific blocks of the privileged state beyond the generic ones (e.g. the ink left on a board)."""
        return []

    # ------------------------------------------------------------------ privileged state
    def task_state_blocks(self, ev: Evaluation | None = None) -> list[tuple[str, np.ndarray]]:
        """The task's privileged state as named blocks, in a fixed order:

        every free object's position (3) and quaternion (4, w x y z), every other named task joint's position,
        every flex's vertex positions (cloth or cable keypoints, 3 per vertex), the task's own blocks
        (:meth:`_task_state_extra`), then ``evaluate()``'s terms in name order (grasp flags, ink cleared,
        folds, ...). ``ev`` reuses an evaluation of the current state.
        """
        m, d = self.model, self.data
        blocks: list[tuple[str, np.ndarray]] = []
        for j in range(m.njnt):
            name = m.joint(j).name
            if not name or name.startswith(tuple(f"{arm}_" for arm in ARMS)):
                continue
            adr, kind = m.jnt_qposadr[j], int(m.jnt_type[j])
            if kind == mujoco.mjtJoint.mjJNT_FREE:
                blocks += [(f"{name}/pos", d.qpos[adr : adr + 3]), (f"{name}/quat", d.qpos[adr + 3 : adr + 7])]
            elif kind in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
                blocks.append((f"{name}/qpos", d.qpos[adr : adr + 1]))
        for f in range(m.nflex):
            start, count = m.flex_vertadr[f], m.flex_vertnum[f]
            name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_FLEX, f) or f"flex{f}"
            blocks.append((f"{name}/vertices", d.flexvert_xpos[start : start + count]))
        blocks += self._task_state_extra()
        terms = (ev or self.evaluate()).terms
        blocks += [(f"eval/{k}", np.array([terms[k]])) for k in sorted(terms)]
        return [(name, np.asarray(v, dtype=np.float32).ravel()) for name, v in blocks]

    def task_state(self, ev: Evaluation | None = None) -> np.ndarray:
        """The flat state vector of ``obs_mode="state"``: ``agent_pos`` (14) then :meth:`task_state_blocks`."""
        blocks = self._state_blocks(ev)
        layout = _layout(blocks)
        if self._state_layout is None:
            self._state_layout = layout
        elif layout != self._state_layout:
            raise RuntimeError(f"{self.task_name}: the state layout changed from {self._state_layout} to {layout}")
        return np.concatenate([v for _, v in blocks]).astype(np.float32)

    def _state_blocks(self, ev: Evaluation | None = None) -> list[tuple[str, np.ndarray]]:
        return [("agent_pos", self.agent_pos()), *self.task_state_blocks(ev)]

    def _probe_state_layout(self) -> tuple[tuple[str, int], ...]:
        # Task blocks may depend on what reset() builds, so probe a reset state before the first episode; then
        # forget the probe's seed so the first reset() without a seed draws fresh entropy, as if it never happened.
        self._observe = lambda ev=None: {}  # type: ignore[method-assign]  # nothing rendered while probing
        try:
            self.reset(seed=0)
            layout = _layout(self._state_blocks())
        finally:
            del self._observe
            self._np_random, self._np_random_seed = None, None
            self._episode_started = False
        return layout

    # ------------------------------------------------------------------ gym API
    @override
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._arm_qadr] = np.concatenate([HOME_QPOS[:6], HOME_QPOS[:6]])
        self.data.qpos[self._finger_qadr] = GRIPPER_TRAVEL
        self.data.ctrl[:] = self._action_to_ctrl(self.home_action)
        self._reset_task()
        if self.grasped_body is not None:
            self.reset_grasp_assists(self.grasps)
        if self._jitter.active:  # before mj_forward, which places the cameras and lights
            self._jitter.reseed(seed)
            self.jitter_drawn = self._jitter.apply()
        mujoco.mj_forward(self.model, self.data)
        self._episode_started = True
        self._elapsed_steps = 0
        self._clipped = 0
        self.current_primitive = None
        ev = self.evaluate()
        return self._observe(ev), self._info(ev)

    @override
    def step(self, action):
        action = self._validate_action(action)
        self.data.ctrl[:] = self._action_to_ctrl(action)
        if self.grasped_body is not None:
            self.update_grasp_assists(self.grasps)
        self._before_physics(action)
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        self._after_physics()
        self._elapsed_steps += 1
        if not np.all(np.isfinite(self.data.qpos)):
            raise RuntimeError(f"{self.task_name}: simulation diverged at step {self._elapsed_steps}")
        ev = self.evaluate()
        obs = self._observe(ev)
        terminated = bool(ev.success and self.terminate_on_success)
        return obs, float(ev.success), terminated, False, self._info(ev)

    @override
    def render(self):
        if self.render_mode != "rgb_array":
            return None
        pixels = self._last_pixels if self._last_pixels is not None else self._render_pixels()
        return np.concatenate([pixels[cam] for cam in CAMERAS], axis=1)

    @override
    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        for renderer in self._sized_renderers.values():
            renderer.close()
        self._sized_renderers.clear()

    # ------------------------------------------------------------------ helpers
    @property
    def elapsed_steps(self) -> int:
        """Control steps since the last reset."""
        return self._elapsed_steps

    def agent_pos(self) -> np.ndarray:
        """The 14-d proprioceptive state: per arm 6 joint angles (rad) + gripper opening in [0, 1]."""
        joints = self.data.qpos[self._arm_qadr].reshape(2, 6)
        grip = ctrl_to_gripper(self.data.qpos[self._grip_qadr]).reshape(2, 1)
        return np.concatenate([joints, grip], axis=1).reshape(-1).astype(np.float32)

    def set_free_pose(self, qpos_adr: int, pos, yaw: float = 0.0) -> None:
        """Put the body of the free joint at ``qpos_adr`` at ``pos`` (3,), turned by ``yaw`` about world z."""
        self.data.qpos[qpos_adr : qpos_adr + 3] = pos
        self.data.qpos[qpos_adr + 3 : qpos_adr + 7] = yaw_quat(yaw)

    def place_flex(self, qpos_adrs: np.ndarray, rest: np.ndarray, shift: np.ndarray, yaw: float) -> None:
        """Lay flex vertices flat, turned by ``yaw`` about their centroid and moved by ``shift`` (x, y).

        Each vertex's joint stores its offset from the build position ``rest (N, 3)``; ``qpos_adrs (N,)``.
        """
        centre = rest[:, :2].mean(axis=0)
        c, s = np.cos(yaw), np.sin(yaw)
        target = (rest[:, :2] - centre) @ np.array([[c, s], [-s, c]]) + centre + shift
        offsets = np.zeros((len(rest), 3))
        offsets[:, :2] = target - rest[:, :2]
        for adr, off in zip(qpos_adrs, offsets):
            self.data.qpos[adr : adr + 3] = off

    def pose_offset(self, half_width: float, size: int | tuple[int, ...] | None = None) -> Any:
        """An object's position or yaw offset: uniform within +-``half_width`` x :attr:`pose_range`, from the
        episode's generator (one float, or an array of ``size``). At ``pose_range`` 1 it draws exactly what
        ``np_random.uniform(-half_width, half_width, size)`` would."""
        w = float(half_width) * self.pose_range
        return self.np_random.uniform(-w, w, size)

    def scatter_flex(self, qpos_adrs: np.ndarray, rest: np.ndarray, shift: tuple[float, float], yaw: float) -> None:
        """:meth:`place_flex` at a shift drawn uniformly within +-``shift`` (x, then y) and a yaw within +-``yaw``
        (rad), each times :attr:`pose_range`, drawn from the episode's generator in that order."""
        drawn = np.array([self.pose_offset(shift[0]), self.pose_offset(shift[1])])
        self.place_flex(qpos_adrs, rest, drawn, self.pose_offset(yaw))

    def flex_vertices(self, body_prefix: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``n`` vertex bodies of an attached flex (``<body_prefix>0``, ``<body_prefix>1``, ...): their body
        ids (N,), their joints' qpos addresses (N,) and their build positions (N, 3), the ``rest`` of
        :meth:`place_flex`."""
        bodies = np.array([self.model.body(f"{body_prefix}{i}").id for i in range(n)])
        qpos_adrs = np.array([self.model.jnt_qposadr[self.model.body_jntadr[b]] for b in bodies])
        return bodies, qpos_adrs, self.model.body_pos[bodies].copy()

    def update_grasp_assists(self, assists: dict[str, Any]) -> None:
        """Drive one grasp assist per arm (``{arm: WeldGrasp | PinchGrasp}``) with that arm's gripper command:
        closing on contact engages it, opening releases it."""
        cmd = self.gripper_command()
        for arm, assist in assists.items():
            assist.update(self.model, self.data, float(cmd[ARMS.index(arm)]))

    def reset_grasp_assists(self, assists: dict[Any, Any]) -> None:
        """Let go with every grasp assist of ``assists`` (its values: ``WeldGrasp | PinchGrasp``) for a new
        episode."""
        for assist in assists.values():
            assist.reset(self.data)

    def gripper_command(self) -> np.ndarray:
        """Commanded opening (0 closed, 1 open) of the left and right grippers."""
        idx = [self.model.actuator(f"{arm}_gripper").id for arm in ARMS]
        return self.data.ctrl[idx] / GRIPPER_TRAVEL

    def _arm_range(self, arm: str) -> tuple[np.ndarray, np.ndarray]:
        ids = [self.model.joint(n).id for n in arm_joint_names(arm)]
        return self.model.jnt_range[ids, 0], self.model.jnt_range[ids, 1]

    def _validate_action(self, action) -> np.ndarray:
        arr = check_action(action)
        # Targets outside the joint limits are clipped, as the real arm's driver does; info["action/clipped"]
        # counts the clipped values of this step (the real station reports its clamps as info["safety/..."]).
        clipped = np.clip(arr, self.action_space.low, self.action_space.high)
        self._clipped = int(np.count_nonzero(clipped != arr))
        return clipped

    def _action_to_ctrl(self, action: np.ndarray) -> np.ndarray:
        per_arm = np.asarray(action, dtype=np.float64).reshape(2, 7).copy()
        per_arm[:, 6] = gripper_to_ctrl(per_arm[:, 6])
        return per_arm.reshape(-1)

    def _render_pixels(self) -> dict[str, np.ndarray]:
        if self._renderer is None:
            self._renderer = MultiCameraRenderer(self.model, CAMERAS, self.height, self.width)
        return self._renderer.render(self.data)

    def render_views(self, image_size: int | None = None) -> dict[str, np.ndarray]:
        """The three camera views of the current state, ``{camera: (H, W, 3) uint8}``, in any ``obs_mode``.

        What a reward wrapper calls when the observation carries no pixels; the views are rendered once per
        state (an observation that already rendered them is reused). ``image_size`` renders square views of that
        side instead of the env's own size (a reward model trained at another resolution); those are rendered on
        every call.
        """
        if image_size is not None and (image_size, image_size) != (self.height, self.width):
            side, _ = _parse_image_size(image_size)
            if side not in self._sized_renderers:
                self._sized_renderers[side] = MultiCameraRenderer(self.model, CAMERAS, side, side)
            return self._sized_renderers[side].render(self.data)
        if self._last_pixels is None:
            self._last_pixels = self._render_pixels()
        return self._last_pixels

    def _observe(self, ev: Evaluation | None = None) -> dict[str, Any] | np.ndarray:
        if self.obs_mode == "state":
            self._last_pixels = None  # the state changed; nothing is rendered until someone asks
            return self.task_state(ev)
        self._last_pixels = self._render_pixels()
        obs: dict[str, Any] = {"pixels": self._last_pixels, "agent_pos": self.agent_pos()}
        if self.obs_mode == "pixels+state":
            obs["state"] = self.task_state(ev)
        return obs

    def _info(self, ev: Evaluation) -> dict[str, Any]:
        # Calibrated progress (tasks.calibration) sits next to the raw one, for tasks that compute it.
        calibrated = (
            {}
            if ev.calibrated_progress is None
            else {"calibrated_progress": float(np.clip(ev.calibrated_progress, 0, 1))}
        )
        info: dict[str, Any] = {
            "success": bool(ev.success),
            "progress": float(np.clip(ev.progress, 0.0, 1.0)),
            **calibrated,
            "task": self.instruction,
            "action/clipped": self._clipped,
            **{f"eval/{k}": float(v) for k, v in ev.terms.items()},
        }
        if self.current_primitive is not None:
            if self.current_primitive not in PRIMITIVE_INDEX:
                raise ConfigError(
                    f"`current_primitive` must be one of the 22 SARM2 primitives; got {self.current_primitive!r}"
                )
            info["primitive"] = self.current_primitive
        return info
