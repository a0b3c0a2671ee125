#!/bin/sh
# seed_batch.sh: runs mistore-sim over a long range of seeds in chunks and
# keeps going past a failing seed, so that a background run (nice -n 19)
# records exactly which seed ranges ran clean. One line per chunk:
#   clean A..B            every seed in A..B passed the checker
#   FAILED N (log: F)     seed N failed; its report (trace tail) is in F
# Usage: seed_batch.sh SIM START COUNT [OPS] [CHUNK] [FAILDIR]
set -u
sim=$1 start=$2 count=$3 ops=${4:-1000} chunk=${5:-50} faildir=${6:-.}
end=$((start + count))
s=$start
while [ "$s" -lt "$end" ]; do
  n=$chunk
  [ $((s + n)) -gt "$end" ] && n=$((end - s))
  out=$("$sim" --seeds "$n" --start-seed "$s" --ops "$ops" 2>&1)
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "clean $s..$((s + n - 1)) $(date -u +%H:%M:%S)"
    s=$((s + n))
    continue
  fi
  bad=$(printf '%s\n' "$out" | sed -n 's/^seed \([0-9]*\) FAILED.*/\1/p' | head -n 1)
  if [ -z "$bad" ]; then
    echo "ERROR rc=$rc at chunk $s (no failing seed reported)"
    printf '%s\n' "$out" | tail -n 20
    exit 1
  fi
  printf '%s\n' "$out" >"$faildir/seed-$bad.txt"
  [ "$bad" -gt "$s" ] && echo "clean $s..$((bad - 1)) $(date -u +%H:%M:%S)"
  echo "FAILED $bad (log: $faildir/seed-$bad.txt)"
  s=$((bad + 1))
done
echo "done $start..$((end - 1))"
