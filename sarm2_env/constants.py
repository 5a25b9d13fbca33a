"""Constants shared by the simulated and real stations and the reward models.

Kept free of heavy imports: ``tasks`` and ``real`` import this module, and ``import sarm2_env``
must stay cheap.
"""

from __future__ import annotations

#: Camera names, in the order every model and dataset uses them.
CAMERAS: tuple[str, str, str] = ("top", "left_wrist", "right_wrist")

#: Arms, in the order their joints appear in ``agent_pos`` and actions.
ARMS: tuple[str, str] = ("left", "right")

#: Per arm: 6 joint angles (rad) + gripper opening normalised to [0, 1] (0 closed, 1 open).
ARM_DOF = 7
STATE_DIM = 2 * ARM_DOF
ACTION_DIM = STATE_DIM
#: Index of each gripper in ``agent_pos`` / actions.
GRIPPER_INDICES: tuple[int, int] = (6, 13)

#: The 22 SARM2 action-primitive classes, in index order (docs/design.md §4). ``dummy`` is the null class.
PRIMITIVES: tuple[str, ...] = (
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
NUM_PRIMITIVES = len(PRIMITIVES)
PRIMITIVE_INDEX: dict[str, int] = {name: i for i, name in enumerate(PRIMITIVES)}

#: The 8 gate groups of the multi-gate MoE head (docs/design.md §4).
PRIMITIVE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("acquire", ("pick_grab", "scoop", "pull")),
    ("release", ("place", "pour_dump")),
    ("translate", ("erase", "zip_unzip", "sweep", "pass")),
    ("insert", ("install", "insert")),
    ("shape_clothes", ("fold_flatten", "hang")),
    ("rotate", ("rotate_turn", "screw_unscrew", "tie", "wrap", "untie", "roll")),
    ("force", ("press", "clamp")),
    ("other", ("dummy",)),
)
NUM_GROUPS = len(PRIMITIVE_GROUPS)
#: Group index of each primitive, by primitive index.
PRIMITIVE_TO_GROUP: tuple[int, ...] = tuple(
    next(g for g, (_, members) in enumerate(PRIMITIVE_GROUPS) if name in members) for name in PRIMITIVES
)
