#!/usr/bin/env bash
# CI smoke run of the netlab evaluation (ctest netlab_smoke): 3 regions (the
# writer's, the backup's and a third one that reads remotely) x 4 gateways,
# 1 MB objects, one repetition of a few scenarios; results in a temp dir,
# not docs/. Exits 77 (ctest SKIP) when network namespaces are unavailable.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d /tmp/netlab-smoke.XXXXXX)"
trap 'rm -rf "$out"' EXIT
set +e
"$here/run" --regions 3 --gateways 4 --sizes 1M --reps 1 --delta-size 0 \
  --scenarios read_local_pop,read_remote_pop,read_home_cache,read_gateways,read_gw_down,write_hg_dc,read_dc_tier \
  --labs cached,stripe,dc --out "$out" "$@"
rc=$?
set -e
if [ $rc -eq 77 ]; then exit 77; fi
cat "$out/netlab-results.md" 2>/dev/null || true
[ $rc -eq 0 ] || { echo "netlab smoke: run failed (exit $rc)"; exit 1; }
# Every scenario of the smoke run measured, with a finite ratio to its limit.
python3 - "$out/netlab-results.csv" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["lab"]]
want = {"write_hg_pb", "read_local_pop", "read_remote_pop", "read_home_cache",
        "write_hg_pb_hg_stripe", "read_gateways_stripe", "read_gw_down_stripe",
        "write_hg_dc", "read_dc_tier"}
got = {r["scenario"] for r in rows if r["median_s"]}
missing = want - got
if missing:
    sys.exit(f"netlab smoke: no measurement for {sorted(missing)}")
for r in rows:
    ratio = float(r["ratio"])
    # A ratio below 1 would mean the limit formula (or the link emulation) is
    # wrong; far above it means the system or the harness broke.
    if not 0.9 <= ratio <= 20:
        sys.exit(f"netlab smoke: {r['scenario']}: ratio {ratio} outside 0.9..20")
print(f"netlab smoke: {len(rows)} scenarios measured")
PY
