#!/usr/bin/env bash
# The home gateway's chunk cache end to end (issue 11): real mistore-dc, two
# mistore-pop and two mistore-agent on loopback inside a private network
# namespace (root; exit 77 = SKIP without it). A file put through gateway
# 1001 is kept in its cache (inserts on /metrics), read back entirely from
# it (hits, no misses) and equal to the original; gateway 2001, started with
# chunk_cache_bytes_max=0, serves the same read from the POPs. Binaries from
# $MISTORE_BIN_DIR.
set -euo pipefail
B="${MISTORE_BIN_DIR:?set MISTORE_BIN_DIR}"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (ip netns)"; exit 77; }
NS="mscache$$"
ip netns add "$NS" 2>/dev/null || { echo "SKIP: no network namespaces"; exit 77; }
D="$(mktemp -d /tmp/chunk-cache-e2e.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
X=(ip netns exec "$NS")
"${X[@]}" ip link set lo up
wait_log() {  # file, pattern
  for _ in $(seq 1 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1"; cat "$1"; exit 1
}
# Secure node links (the default): the DC's CA issues each node a key and
# certificate first (mistore-dc issue creates the CA key the DC then uses).
ident() {  # role id region subscriber|- -> flags
  "$B/mistore-dc" --data-dir="$D/dc" issue "$1" "$2" "$3" "$D/$1$2" "$4" > /dev/null
  echo "--node-key-file=$D/$1$2.key --node-cert-file=$D/$1$2.cert --ca-public-key-file=$D/dc/ca.pub"
}
POP1="$(ident pop 1 r1 -)"; POP2="$(ident pop 2 r2 -)"
GW1="$(ident gateway 1001 r1 alice)"; GW2="$(ident gateway 2001 r2 alice)"
"${X[@]}" "$B/mistore-dc" --listen=127.0.0.1:7000 --data-dir="$D/dc" --metrics-listen=off \
  --admin-listen=off > "$D/dc.log" 2>&1 & pids+=($!)
wait_log "$D/dc.log" 'msg="ready"'
for i in 1 2; do
  v="POP$i"
  # shellcheck disable=SC2086  # the identity flags split on purpose
  "${X[@]}" "$B/mistore-pop" ${!v} --pop-id=$i --region=r$i --listen=127.0.1.$i:7100 \
    --dc=127.0.0.1:7000 --data-dir="$D/pop$i" --k=1 --m=1 --metrics-listen=off \
    > "$D/pop$i.log" 2>&1 & pids+=($!)
  wait_log "$D/pop$i.log" 'msg="ready"'
done
# shellcheck disable=SC2086
"${X[@]}" "$B/mistore-agent" $GW1 --gateway-id=1001 --subscriber=alice --pop=127.0.1.1:7100 \
  --client-listen=127.0.0.1:7300 --data-dir="$D/gw1" --metrics-listen=127.0.0.1:9911 \
  > "$D/gw1.log" 2>&1 & pids+=($!)
# shellcheck disable=SC2086
"${X[@]}" "$B/mistore-agent" $GW2 --gateway-id=2001 --subscriber=alice --pop=127.0.1.2:7100 \
  --client-listen=127.0.0.1:7301 --data-dir="$D/gw2" --metrics-listen=off \
  --chunk-cache-bytes-max=0 > "$D/gw2.log" 2>&1 & pids+=($!)
wait_log "$D/gw1.log" 'msg="registered with POP"'
wait_log "$D/gw2.log" 'msg="registered with POP"'
for a in 7300 7301; do
  printf 'agent = 127.0.0.1:%s\nsubscriber = alice\nkey_file = %s/master.key\nstate_dir = %s/state%s\n' \
    "$a" "$D" "$D" "$a" > "$D/c$a.conf"
done
export MISTORE_PASSPHRASE=pw MISTORE_PWHASH_FAST=1
"${X[@]}" "$B/mistore" --config "$D/c7300.conf" init > /dev/null
head -c 3000000 /dev/urandom > "$D/f"
"${X[@]}" "$B/mistore" --config "$D/c7300.conf" put "$D/f" --name f > /dev/null
metric() {
  "${X[@]}" python3 -c "import urllib.request,sys; t=urllib.request.urlopen('http://127.0.0.1:9911/metrics').read().decode(); print(next(l.split()[1] for l in t.splitlines() if l.startswith(sys.argv[1]+' ')))" "$1"
}
ins="$(metric mistore_agent_chunk_cache_inserts_total)"
[ "${ins%.*}" -ge 1 ] || { echo "FAIL: a put kept nothing in the cache (inserts $ins)"; exit 1; }
"${X[@]}" "$B/mistore" --config "$D/c7300.conf" get f -o "$D/out1" > /dev/null
cmp "$D/f" "$D/out1" || { echo "FAIL: read through the cache differs"; exit 1; }
hits="$(metric mistore_agent_chunk_cache_hits_total)"
miss="$(metric mistore_agent_chunk_cache_misses_total)"
[ "${hits%.*}" = "${ins%.*}" ] && [ "${miss%.*}" = 0 ] ||
  { echo "FAIL: expected $ins hits and no miss, got hits $hits misses $miss"; exit 1; }
"${X[@]}" "$B/mistore" --config "$D/c7301.conf" get f -o "$D/out2" > /dev/null
cmp "$D/f" "$D/out2" || { echo "FAIL: read through the POPs differs"; exit 1; }
[ -z "$(ls -A "$D/gw2/chunk-cache" 2>/dev/null)" ] || { echo "FAIL: cache 0 wrote files"; exit 1; }
echo "chunk cache e2e: $ins chunks kept on put, $hits hits, 0 misses"
