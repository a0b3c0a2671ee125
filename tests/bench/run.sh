#!/usr/bin/env bash
# Runs mistore-bench from the release build and prints the markdown tables of
# docs/benchmarks.md (MB/s, ratio to memcpy, sum-of-stages bounds, targets):
#   tests/bench/run.sh [Google Benchmark flags, e.g. --benchmark_repetitions=3]
# Builds the release preset first if needed. Raw results: build/release/bench.json.
# Run it on an otherwise idle machine: the two-thread figure is real time.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f build/release/build.ninja ] || cmake --preset release >/dev/null
cmake --build --preset release -j2 --target mistore-bench >/dev/null
out=build/release/bench.json
build/release/bin/mistore-bench --benchmark_out="$out" --benchmark_out_format=json "$@" >&2
python3 tests/bench/report.py "$out"
