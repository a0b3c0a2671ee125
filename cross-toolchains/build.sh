#!/usr/bin/env bash
# Builds and tests the gateway agent for one target, from a bare Debian 12:
#
#   bash cross-toolchains/build.sh armhf|arm64|mipsel|native [--no-test] [--no-install]
#
#  1. installs what the target needs (cross-toolchains/install-cross-deps.sh);
#  2. configures build/cross-<target> (build/agent-native for native) with the
#     target's toolchain file, MISTORE_AGENT_ONLY=ON (the agent, shared/ and
#     their unit tests) and MISTORE_STATIC_AGENT=ON (fully static agent),
#     MinSizeRel (MS_ASSERT stays on: it does not depend on NDEBUG);
#  3. builds with -j2 (the stripped agent lands in <build>/firmware/) and
#     checks the agent: statically linked, no getaddrinfo/NSS, no SQLite;
#  4. builds the OpenWrt package (packaging/build-ipk.sh <target>);
#  5. runs ctest: the unit tests of shared/ and the packaging/footprint tests
#     (tests/packaging), under qemu-user for cross targets through
#     CMAKE_CROSSCOMPILING_EMULATOR.
# Every step's wall time is printed and kept in <build>/timings.txt.
# MISTORE_BUILD_JOBS / MISTORE_CTEST_JOBS (default 2 each): parallel jobs of
# the build and of ctest (1 when the machine is shared with other builds).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

target=${1:-}
shift || true
run_tests=1
install=1
for a in "$@"; do
  case "$a" in
    --no-test) run_tests=0 ;;
    --no-install) install=0 ;;
    *) echo "build.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
case "$target" in
  armhf) triple=arm-linux-gnueabihf ;;
  arm64) triple=aarch64-linux-gnu ;;
  mipsel) triple=mipsel-linux-gnu ;;
  s390x) triple=s390x-linux-gnu ;;  # big-endian check of the unit tests only
  native) triple="" ;;
  *) echo "usage: bash cross-toolchains/build.sh armhf|arm64|mipsel|native|s390x [--no-test] [--no-install]" >&2; exit 2 ;;
esac

if [ "$target" = native ]; then
  BUILD=build/agent-native
  toolchain=()
  STRIP=strip NM=nm
else
  BUILD=build/cross-$target
  toolchain=(-DCMAKE_TOOLCHAIN_FILE="$ROOT/cross-toolchains/$target.cmake")
  STRIP=$triple-strip NM=$triple-nm
fi
mkdir -p "$BUILD"
TIMINGS=$BUILD/timings.txt
: > "$TIMINGS"
step() {  # step NAME command...
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  printf '%-10s %-10s %7.1f s\n' "$target" "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" | tee -a "$TIMINGS"
}

if [ $install = 1 ]; then
  step install bash cross-toolchains/install-cross-deps.sh "$target"
fi

# Flags from a toolchain file are cached at the first configure: start the
# tree afresh when a toolchain file changed since.
if [ -f "$BUILD/CMakeCache.txt" ] && [ -n "$(find cross-toolchains -maxdepth 1 \( -name common.cmake -o -name "$target.cmake" \) -newer "$BUILD/CMakeCache.txt")" ]; then
  echo "build.sh: toolchain files changed: reconfiguring $BUILD from scratch"
  rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"
fi
step configure cmake -S . -B "$BUILD" -G Ninja "${toolchain[@]}" \
  -DCMAKE_BUILD_TYPE=MinSizeRel -DMISTORE_AGENT_ONLY=ON -DMISTORE_STATIC_AGENT=ON \
  -DMISTORE_EC_SOURCE_DIR="$ROOT/build/src-deb" >/dev/null
step build cmake --build "$BUILD" -j"${MISTORE_BUILD_JOBS:-2}"

# ---- the firmware binary ---------------------------------------------------
# tests/packaging/CMakeLists.txt strips the static agent into firmware/.
fw=$BUILD/firmware
desc=$(file -b "$fw/mistore-agent")
echo "firmware: $fw/mistore-agent: $desc"
case "$desc" in
  *"statically linked"*) ;;
  *) echo "build.sh: $fw/mistore-agent is not statically linked" >&2; exit 1 ;;
esac
# Static glibc would dlopen NSS modules of another glibc for name look-ups:
# the agent must parse numeric addresses only, and no NSS code may be linked
# (gateway-agent/static_no_nss.c). dlopen itself is always there: static
# glibc's own start-up (rtld_static_init) and iconv (gconv_dl) reference it.
bad=$("$NM" "$BUILD/bin/mistore-agent" | grep -Ei ' (getaddrinfo|gethostbyname[_r0-9]*|getpw[a-z_]*|getgr(nam|gid|ent)[_r]*|getservby[a-z_]*|__nss_[a-z_0-9]*|sqlite3_[a-z_]*)$' || true)
if [ -n "$bad" ]; then
  echo "build.sh: the static agent links name-service/SQLite symbols:" >&2
  echo "$bad" >&2
  exit 1
fi
size=$(stat -c %s "$fw/mistore-agent")
echo "$target mistore-agent stripped static: $size bytes" | tee "$fw/size.txt"

if [ "$target" != s390x ]; then
  step ipk bash packaging/build-ipk.sh "$target"
fi

if [ $run_tests = 1 ]; then
  step ctest ctest --test-dir "$BUILD" -j"${MISTORE_CTEST_JOBS:-2}" --output-on-failure --timeout 600
fi
echo "build.sh: $target done; timings in $TIMINGS"
