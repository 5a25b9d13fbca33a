"""Calibrated physics progress: raw ground truth turned into the units reward models learn.

Reward models are trained on time-linear progress ``t / (T - 1)`` of full-skill demos, while each task's raw
``Evaluation.progress`` is physics progress: flat while an arm reaches or grasps, jumping at sub-goals. The
calibrated progress keeps the physics (it is computed from the current physics state only, so it scores any
policy's rollout, regresses when the scene does, and reaches 1 only at success) but is expressed in demo time:

* a task splits into **stages**, its sub-goals in the order a demo reaches them (reach the plate, grasp it,
  lift it, ...), each with a **fraction** in [0, 1] measured from physics (a gripper's distance to its
  sub-goal, the fraction of ink wiped, the plug's travel, ...);
* each stage carries a **weight**, its mean share of full-skill demo time (the time from the previous
  sub-goal to this one, measured on demos with ``benchmarks/calibrated_progress.py --fit``);
* calibrated progress = sum of weight x fraction, held just below 1 until the task succeeds.

Every task module writes its weights as a constant and computes its stage fractions in a
``calibration_stages()`` method; :func:`calibrated_progress` combines them. The stage fractions never read
the expert's primitive labels or the time step.
"""

from __future__ import annotations

from collections.abc import Mapping

import mujoco
import numpy as np

from sarm2_env.constants import ARMS
from sarm2_env.errors import ConfigError
from tasks.station import HOME_QPOS, arm_joint_names

#: Highest calibrated progress without success: a rollout that looks done but has not succeeded (not yet at
#: rest, one plate short of its slot, ...) stays visibly below a success's 1.
UNSUCCESSFUL_CAP = 0.99
#: Fraction above which a stage counts as completed when measuring time shares on demos.
COMPLETE = 0.98


def stage_weights(**weights: float) -> dict[str, float]:
    """Validated stage weights (stage name -> share of demo time), normalised to sum to 1.

    Written as each task's module constant; raises :class:`ConfigError` on a negative or non-finite weight
    or on an all-zero set (a typo in a constant then fails at import, not in the middle of a benchmark).
    """
    values = np.array(list(weights.values()), dtype=float)
    if not weights or not np.all(np.isfinite(values)) or np.any(values < 0.0) or values.sum() <= 0.0:
        raise ConfigError(f"stage weights must be finite, >= 0 and not all zero; got {weights!r}")
    total = float(values.sum())
    return {name: float(w) / total for name, w in weights.items()}


def calibrated_progress(fractions: Mapping[str, float], weights: Mapping[str, float], success: bool) -> float:
    """Weighted sum of stage ``fractions`` (each clipped to [0, 1]); 1 on ``success``, else at most
    :data:`UNSUCCESSFUL_CAP`.

    ``fractions`` must name exactly the stages of ``weights`` (a :class:`ConfigError` otherwise: a stage
    without a weight would silently count nothing).
    """
    if fractions.keys() != weights.keys():
        raise ConfigError(
            f"stage fractions {sorted(fractions)} do not match the calibrated stage weights {sorted(weights)}"
        )
    if success:
        return 1.0
    total = sum(weights[name] * float(np.clip(f, 0.0, 1.0)) for name, f in fractions.items())
    return float(min(total, UNSUCCESSFUL_CAP))


def approach(distance: float, start_distance: float, arrived: float = 0.0) -> float:
    """Fraction of an approach done: 0 at ``start_distance`` (m), 1 within ``arrived`` of the goal, linear between.

    ``arrived`` is how close counts as there (a tool centre pressing on a box's top stops short of its centre):
    the approach then completes when the arm arrives, not later when the next sub-goal is reached.
    """
    span = max(start_distance - arrived, 1e-6)
    return float(np.clip(1.0 - (distance - arrived) / span, 0.0, 1.0))


def home_tcp_positions(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    """World position (3,) of each arm's tool centre in the home pose (where every episode starts).

    The yardstick of the "reach" stages: an arm's approach to its sub-goal is measured against how far the
    sub-goal is from where the arm starts.
    """
    data = mujoco.MjData(model)
    for arm in ARMS:
        for name, q in zip(arm_joint_names(arm), HOME_QPOS[:6]):
            data.qpos[model.joint(name).qposadr[0]] = q
    mujoco.mj_kinematics(model, data)
    return {arm: data.site_xpos[site].copy() for arm, site in tcp_site_ids(model).items()}


def tcp_site_ids(model: mujoco.MjModel) -> dict[str, int]:
    """Site id of each arm's tool centre (``tcp_left``, ``tcp_right``)."""
    return {arm: model.site(f"tcp_{arm}").id for arm in ARMS}


def gripper_closure(opening: float) -> float:
    """Fraction of a grasp's closing done, from the gripper's opening in [0, 1] (1 = open)."""
    return float(np.clip(1.0 - opening, 0.0, 1.0))
