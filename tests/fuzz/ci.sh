#!/usr/bin/env bash
# The CI fuzz step (scripts/test.sh runs it after ctest): builds the `fuzz`
# preset (clang, libFuzzer, ASan + UBSan, -fno-sanitize-recover) and fuzzes
# every target for a bounded time, one after the other:
#   tests/fuzz/ci.sh [SECONDS_PER_TARGET=25]
# Targets: every directory under tests/fuzz/corpus/ (one per fuzz_*.cc).
# Each run starts from the seed corpus (read only) plus what earlier runs in
# this build tree found (build/fuzz/corpus/TARGET). A crash, leak, UBSan
# report, timeout (-timeout=10 s per input) or out-of-memory fails this
# script; the reproducer is written to build/fuzz/artifacts/TARGET/ and its
# path printed in the log (re-run it with build/fuzz/bin/fuzz_TARGET PATH).
# Every target is run even after a failure, so one log shows all of them.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-25}
if ! command -v clang++ >/dev/null; then
  echo "fuzz-ci: clang++ not found (scripts/install-deps.sh installs clang)" >&2
  exit 2
fi
start=$(date +%s)
[ -f build/fuzz/build.ninja ] || cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j2
echo "fuzz-ci: built in $(($(date +%s) - start)) s; ${seconds} s per target"
failed=()
for dir in tests/fuzz/corpus/*/; do
  target=$(basename "$dir")
  log=build/fuzz/ci-$target.log
  artifacts=build/fuzz/artifacts/$target
  rm -rf "$artifacts"
  if bash tests/fuzz/run.sh "$target" "$seconds" >"$log" 2>&1; then
    # The last stats line: "#N DONE cov: ... corp: ... exec/s: ...".
    echo "fuzz-ci: $target ok: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
  else
    failed+=("$target")
    echo "fuzz-ci: $target FAILED; last 40 lines of $log:" >&2
    tail -n 40 "$log" >&2
    for a in "$artifacts"/*; do
      [ -e "$a" ] && echo "fuzz-ci: reproducer: $a (build/fuzz/bin/fuzz_$target $a)" >&2
    done
  fi
done
echo "fuzz-ci: done in $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-ci: FAILED targets: ${failed[*]}" >&2
  exit 1
fi
