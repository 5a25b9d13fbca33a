"""The import layer order (docs/design.md §2): a module imports only from its own layer or the ones below.

Every import counts, including the ones deferred into functions (a deferred import against the order is still a
circular dependency, only hidden). Within a layer, packages do not import each other (``tasks``, ``rewards`` and
``real`` are peers). A second check imports every module below ``tasks`` in a fresh interpreter and asserts that
it neither registered the envs nor picked an OpenGL backend: importing ``tasks`` is the only import with a side
effect.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sarm2_env", "tasks", "rewards", "real", "agents", "benchmarks")

#: (rank, layer, module patterns), lowest first. The most specific pattern wins, so ``sarm2_env.*`` is the
#: env-facing rest of that package once its base and data modules are named.
LAYERS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        0,
        "base",
        (
            "sarm2_env.constants",
            "sarm2_env.errors",
            "sarm2_env.atomic",
            "sarm2_env.stats",
            "sarm2_env.actions",
            "sarm2_env.config",
            "sarm2_env.policy",
        ),
    ),
    (1, "data", ("sarm2_env.dataset",)),
    (2, "tasks", ("tasks", "tasks.*")),
    (2, "rewards", ("rewards", "rewards.*")),
    (2, "real", ("real", "real.*")),
    (3, "env", ("sarm2_env", "sarm2_env.*", "rewards.pretrained")),
    (4, "agents", ("agents", "agents.*")),
    (5, "benchmarks", ("benchmarks", "benchmarks.*")),
)


def layer_of(module: str) -> tuple[int, str]:
    """``(rank, layer)`` of a dotted module name, by its most specific pattern."""
    best: tuple[int, int, str] | None = None
    for rank, name, patterns in LAYERS:
        for pattern in patterns:
            if fnmatch.fnmatchcase(module, pattern):
                specificity = len(pattern) + (0 if "*" in pattern else 1000)
                if best is None or specificity > best[0]:
                    best = (specificity, rank, name)
    assert best is not None, f"module {module} is in no layer: add it to LAYERS"
    return best[1], best[2]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _existing_module(dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is a module or package of ours (``from a.b import c`` may name a
    submodule ``c`` or an attribute of ``a.b``)."""
    while dotted:
        base = ROOT.joinpath(*dotted.split("."))
        if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES and (target := _existing_module(name)):
                out.append((node.lineno, target))
    return out


def import_violations() -> list[str]:
    """Every import against the layer order, as ``file:line module [layer] -> target [layer]``."""
    bad = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module_name(path)
            rank, name = layer_of(module)
            for line, target in sorted(set(_imports(path))):
                target_rank, target_name = layer_of(target)
                upward = target_rank > rank
                sideways = target_rank == rank and target_name != name
                if upward or sideways:
                    where = path.relative_to(ROOT)
                    bad.append(f"{where}:{line} {module} [{name}] -> {target} [{target_name}]")
    return bad


def test_no_import_goes_against_the_layer_order() -> None:
    bad = import_violations()
    assert not bad, "imports against the layer order (docs/design.md §2):\n" + "\n".join(bad)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an upward import in a parsed file is reported."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from benchmarks.metrics import value_mse\n")
    assert _imports(probe) == [(2, "benchmarks.metrics")]
    assert layer_of("sarm2_env.stats") == (0, "base") and layer_of("sarm2_env.wrapper") == (3, "env")
    assert layer_of("benchmarks.metrics")[0] > layer_of("agents.spiral")[0]


def test_modules_below_tasks_import_without_side_effects() -> None:
    """Importing the base, data, reward-model and real-station layers registers no env and picks no GL backend."""
    quiet = [
        _module_name(p)
        for package in ("sarm2_env", "rewards", "real")
        for p in sorted((ROOT / package).rglob("*.py"))
        if layer_of(_module_name(p))[0] <= 2 and "checkpoints" not in p.parts
    ]
    code = (
        "import importlib, os, sys\n"
        f"for m in {quiet!r}: importlib.import_module(m)\n"
        "import gymnasium as gym\n"
        "loaded = sorted(m for m in sys.modules if m == 'tasks' or m.startswith('tasks.') or m == 'mujoco')\n"
        "assert not loaded, loaded\n"
        "assert not [k for k in gym.registry if k.startswith('SARM2/')]\n"
        "assert 'MUJOCO_GL' not in os.environ, os.environ['MUJOCO_GL']\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
