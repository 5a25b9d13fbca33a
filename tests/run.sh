#!/usr/bin/env bash
# The test suite, from a fresh clone: set up, then run pytest (extra arguments go to pytest).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../benchmarks/bootstrap.sh"
cd "$ROOT"
ruff check .
python -m pytest -q "$@"
