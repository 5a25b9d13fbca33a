#!/usr/bin/env bash
# The test suite, from a fresh clone: set up, then run pytest (extra arguments go to pytest).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../benchmarks/bootstrap.sh"
cd "$ROOT"
# Headless Chromium + its driver for the annotation page's browser test (tests/agents/test_annotate_web.py;
# it drives /usr/bin/chromium through /usr/bin/chromedriver with Selenium and never downloads a browser).
browser_missing=()
for pkg in chromium chromium-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || browser_missing+=("$pkg")
done
if [ ${#browser_missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "[setup] installing ${browser_missing[*]} (browser test of the annotation page)"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${browser_missing[@]}" >/dev/null; } \
      || echo "[setup] warning: could not install ${browser_missing[*]}; the browser test will be skipped" \
        "(or fail where SARM2_REQUIRE_BROWSER=1, as in CI)" >&2
  else
    echo "[setup] warning: cannot install ${browser_missing[*]} without apt-get; the browser test will be skipped" >&2
  fi
fi
ruff check .
mypy  # the packages, configured in pyproject.toml ([tool.mypy])
python -m pytest -q "$@"
