"""Every code block of the README runs as written, in order, from a fresh working folder.

Blocks are taken from README.md itself, so the examples cannot drift from the code. Python blocks run each in a
fresh interpreter; bash blocks line by line, with ``python`` meaning this interpreter. The set-up block (the two
commands CI itself runs) is not re-run here. A command whose own comment says it takes many minutes (``~N min``
with N >= 5, or "needs the full run") is started with ``--help`` appended instead: its entry point imports and
its arguments parse, without the half-hour run. Nothing in the text is edited for the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
_LONG = re.compile(r"~(\d+) min|needs the full run")


def readme_blocks() -> list[tuple[str, str]]:
    """``(language, code)`` of README.md's fenced blocks, in order."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer((ROOT / "README.md").read_text())]


def _is_long(comment: str) -> bool:
    return any(m.group(0) == "needs the full run" or int(m.group(1)) >= 5 for m in _LONG.finditer(comment))


def bash_commands(code: str) -> list[str]:
    """The block's commands, each long one (by its comment) turned into a ``--help`` check."""
    commands = []
    for line in code.splitlines():
        command, _, comment = line.partition("#")
        command = command.strip()
        if command:
            commands.append(f"{command} --help" if _is_long(comment) else command)
    return commands


def test_the_blocks_are_found_and_long_commands_recognised() -> None:
    blocks = readme_blocks()
    assert sum(lang == "python" for lang, _ in blocks) >= 3 and sum(lang == "bash" for lang, _ in blocks) >= 3
    assert bash_commands("python -m rewards.pretrained      # rebuilds ... (~35 min on 2 cores)") == [
        "python -m rewards.pretrained --help"
    ]
    assert bash_commands("python -m tasks.collect --out data/demo   # ~20 s") == [
        "python -m tasks.collect --out data/demo"
    ]


def test_every_readme_block_runs_in_order(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "python"  # a script, not a link: a linked venv interpreter would not find its venv
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    launcher.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    work = tmp_path / "work"
    work.mkdir()
    for link in ("benchmarks", "tests"):  # `python benchmarks/run.py` etc. are run from the repository root
        (work / link).symlink_to(ROOT / link)
    ran = []
    for lang, code in readme_blocks():
        if "benchmarks/main.sh" in code and "tests/run.sh" in code:
            continue  # the set-up: CI runs exactly these two commands
        if lang == "python":
            runs = [[sys.executable, "-c", code]]
        elif lang == "bash":
            runs = [["bash", "-c", command] for command in bash_commands(code)]
        else:
            continue
        for argv in runs:
            done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                pytest.fail(f"README block failed ({argv[-1][:200]!r}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
            ran.append(argv[-1])
    assert len(ran) >= 8
