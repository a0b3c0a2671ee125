#!/usr/bin/env bash
# The README's test command: installs what is missing, builds the release
# preset (assertions stay on) and runs every test (unit, simulator, system)
# with ctest; then cross-builds the gateway agent for armhf and runs its
# unit tests under qemu-user, runs the agent from its .ipk with a real POP,
# and checks the packages; then fuzzes every libFuzzer target for a bounded
# time under ASan + UBSan (tests/fuzz/ci.sh; MISTORE_FUZZ_SECONDS per
# target, default 25; a crash fails the run and names its reproducer).
# MISTORE_SKIP_CROSS=1 / MISTORE_SKIP_FUZZ=1 leave those steps out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2
ctest --preset release -j2 --timeout 900 "$@"
if [ "${MISTORE_SKIP_CROSS:-0}" != 1 ]; then
  bash cross-toolchains/build.sh armhf
  # The agent out of the armhf .ipk, under qemu-arm, with a real POP.
  python3 tests/packaging/test_ipk_real_pop.py
  bash packaging/build-deb.sh all armhf
  python3 tests/packaging/test_deb.py
fi
if [ "${MISTORE_SKIP_FUZZ:-0}" != 1 ]; then
  bash tests/fuzz/ci.sh "${MISTORE_FUZZ_SECONDS:-25}"
fi
