#!/usr/bin/env bash
# Shared set-up for the README's two commands: system GL libraries for headless rendering, a virtual
# environment in .venv, and the toolkit installed into it. Idempotent: reruns only redo what changed.
# Override the venv location with SARM2_VENV and the interpreter with PYTHON.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SARM2_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

# 1. EGL/Mesa for MuJoCo's headless renderer (llvmpipe on a CPU machine); libusb for the RealSense SDK.
missing=()
for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri libglx-mesa0 libusb-1.0-0; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "[setup] installing ${missing[*]} (headless OpenGL for MuJoCo)"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[setup] warning: cannot install ${missing[*]} without apt-get; rendering needs EGL or OSMesa" >&2
  fi
fi

# 2. The virtual environment and the toolkit (torch pinned first so pip keeps the CPU build).
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.sarm2-install-stamp"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/benchmarks/bootstrap.sh" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing the toolkit into $VENV (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import torch, mujoco, gymnasium, i2rt, tasks, rewards.encoders, matplotlib" || { echo "[setup] install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
