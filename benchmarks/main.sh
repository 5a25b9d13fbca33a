#!/usr/bin/env bash
# The toolkit's main job, from a fresh clone: set up, then run it on its embedded defaults.
# Until the benchmark harness lands, the main job collects and summarises a small demo dataset
# of scripted-expert episodes for every registered task (about a minute on 2 CPU cores).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
python -m tasks.collect --preset demo --out "${SARM2_DATA:-data/demo}" "$@"
