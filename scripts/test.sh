#!/usr/bin/env bash
# The README's test command: installs what is missing, builds the release
# preset (assertions stay on) and runs every test (unit + system) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2
ctest --preset release -j2 --timeout 900 "$@"
