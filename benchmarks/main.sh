#!/usr/bin/env bash
# The toolkit's main job, from a fresh clone: set up, then run the reward-model benchmark on its embedded
# defaults (benchmarks/configs/quick.yaml: every task, every CPU-capable backend; <= 30 min on 2 cores).
# Extra arguments go to benchmarks/run.py (e.g. --config full, --backends sarm2,rewind, --force train).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
python benchmarks/run.py "$@"
