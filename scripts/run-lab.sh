#!/usr/bin/env bash
# The README's main job: installs what is missing, builds, starts a local
# edge hierarchy on loopback (1 DC, 3 POPs, 6 gateway agents per POP, k=4
# m=2) in ./lab, stores a sample folder through a gateway agent, reads it
# back, and shows what happened. The lab keeps running afterwards
# (`tools/mistore-lab down` stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
LAB=${MISTORE_LAB_DIR:-$REPO/lab}
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2
BIN=$REPO/build/release/bin
export MISTORE_BIN_DIR=$BIN

if [ -f "$LAB/lab.json" ]; then tools/mistore-lab down --dir "$LAB" >/dev/null 2>&1 || true; fi
rm -rf "$LAB"
tools/mistore-lab up --dir "$LAB" --detach
mistore() { "$BIN/mistore" --config "$LAB/client.conf" "$@"; }
export MISTORE_PASSPHRASE=${MISTORE_PASSPHRASE:-lab-demo-passphrase}

echo
echo "== creating the subscriber's keys"
mistore init

SAMPLE=$LAB/sample
mkdir -p "$SAMPLE"
cp README.md "$SAMPLE/README.md"
head -c 5000000 /dev/urandom > "$SAMPLE/photo.raw"
printf 'hello from the subscriber\n' > "$SAMPLE/note.txt"
: > "$SAMPLE/empty.txt"

echo
echo "== storing the sample folder $SAMPLE"
for f in "$SAMPLE"/*; do mistore put "$f" --name "sample/$(basename "$f")"; done
printf 'hello again: version 2\n' > "$SAMPLE/note.txt"
mistore put "$SAMPLE/note.txt" --name sample/note.txt

echo
echo "== reading everything back"
OUT=$LAB/readback
mkdir -p "$OUT"
for f in "$SAMPLE"/*; do
  n=$(basename "$f")
  mistore get "sample/$n" -o "$OUT/$n" 2>/dev/null
  cmp -s "$f" "$OUT/$n" && echo "  sample/$n: identical" || { echo "  sample/$n: DIFFERENT"; exit 1; }
done
mistore get sample/note.txt --version 1 -o "$OUT/note.v1" 2>/dev/null
echo "  sample/note.txt version 1 says: $(cat "$OUT/note.v1")"

echo
echo "== objects and versions (mistore ls)"
mistore ls

echo
echo "== where the fragments of sample/photo.raw went (waiting for background placement)"
for _ in $(seq 1 60); do
  summary=$(mistore placement sample/photo.raw | tail -n 1)
  case "$summary" in placed:\ 0/*) ;; placed:\ *) x=${summary#placed: }; x=${x%%/*}; y=${summary#*/}; y=${y%% *}; [ "$x" = "$y" ] && break ;; esac
  sleep 0.5
done
mistore placement sample/photo.raw | awk '{print "  " $0}' | tail -n 14

cat <<TXT

The lab is running (state in $LAB/lab.json; logs in $LAB/logs/). Try:
  export MISTORE_PASSPHRASE=$MISTORE_PASSPHRASE
  $BIN/mistore --config $LAB/client.conf put FILE [--name NAME]
  $BIN/mistore --config $LAB/client.conf get NAME [--version N] -o OUT
  $BIN/mistore --config $LAB/client.conf ls
  tools/mistore-lab status --dir $LAB
  tools/mistore-lab kill gw1002 --dir $LAB      # then read again: still there
  tools/mistore-lab down --dir $LAB
TXT
