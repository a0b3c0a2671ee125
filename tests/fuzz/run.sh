#!/usr/bin/env bash
# Fuzzes one target for a given time:
#   tests/fuzz/run.sh TARGET SECONDS [extra libFuzzer flags...]
# TARGET: a directory of tests/fuzz/corpus/ (fragment, frame_envelope,
# master_key, config, cert, handshake, ...).
# Configures and builds the `fuzz` preset (clang, libFuzzer, ASan + UBSan)
# if needed, then runs build/fuzz/bin/fuzz_TARGET for SECONDS seconds. The
# seed corpus tests/fuzz/corpus/TARGET is only read; new inputs go to
# build/fuzz/corpus/TARGET (kept between runs), crashes to
# build/fuzz/artifacts/TARGET/. A crash makes the script fail; add the
# crashing input to tests/fuzz/corpus/TARGET/ once fixed so that the
# replay test (fuzz_replay_TARGET) keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET SECONDS [libFuzzer flags...]" >&2
  echo "targets: $(ls tests/fuzz/corpus | tr '\n' ' ')" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
seeds=tests/fuzz/corpus/$target
if [ ! -d "$seeds" ]; then
  echo "$0: no target '$target' (no $seeds)" >&2
  exit 2
fi
if ! command -v clang++ >/dev/null; then
  echo "$0: clang++ not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
[ -f build/fuzz/build.ninja ] || cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j2
work=build/fuzz/corpus/$target
artifacts=build/fuzz/artifacts/$target
mkdir -p "$work" "$artifacts"
exec build/fuzz/bin/fuzz_"$target" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$@" "$work" "$seeds"
