#!/usr/bin/env bash
# Installs what the gateway cross builds need on Debian 12, for one or more
# targets:  bash cross-toolchains/install-cross-deps.sh armhf [arm64 mipsel]
# ("native": the static agent of the build host; "s390x": a big-endian host
# for the unit tests only).
#
#   - the cross g++ (g++-<triple>) and qemu-user (tests run under qemu through
#     CMAKE_CROSSCOMPILING_EMULATOR: binfmt_misc is not available here);
#   - the target's -dev packages through multiarch (dpkg --add-architecture):
#     libuv, libsodium, protobuf-lite, sqlite3 (unit tests only), gtest/gmock.
#     The build host's protoc stays the one that runs (protobuf-compiler:amd64);
#   - the Debian source packages of gf-complete and jerasure (deb-src lines are
#     added if absent), unpacked in build/src-deb: Debian ships no static
#     archives of them, so the build compiles their .c files into static
#     libraries of its own (cross-toolchains/static-deps.cmake). Fetching,
#     checksums and the error messages that name why a file is missing
#     (e.g. the mirror's 404 for jerasure's Debian diff): src-deb.sh.
#
# Multi-Arch: same packages (linux-libc-dev, libssl3, ...) must have the same
# version on every architecture. When the foreign architecture's index lacks
# the host's installed version (a stale or half-synced mirror), apt refuses;
# this script then pins the package on both architectures to the newest
# version both indexes carry (possibly a downgrade of a header package on the
# host) and retries. Idempotent: apt runs only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
HOST_ARCH=$(dpkg --print-architecture)

triple_of() {
  case "$1" in
    armhf) echo arm-linux-gnueabihf ;;
    arm64) echo aarch64-linux-gnu ;;
    mipsel) echo mipsel-linux-gnu ;;
    s390x) echo s390x-linux-gnu ;;
    native) echo native ;;
    *) echo "install-cross-deps: unknown target '$1' (armhf, arm64, mipsel, s390x, native)" >&2; exit 2 ;;
  esac
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(armhf)

# ---- package lists ------------------------------------------------------
host_pkgs=(build-essential cmake ninja-build pkg-config protobuf-compiler
           libjerasure-dev libgf-complete-dev libuv1-dev libsodium-dev
           libprotobuf-dev libsqlite3-dev libgtest-dev libgmock-dev
           dpkg-dev file python3)
target_pkgs=()
for t in "${targets[@]}"; do
  tr=$(triple_of "$t")
  [ "$t" = native ] && continue
  host_pkgs+=("g++-$tr" qemu-user)
  if ! dpkg --print-foreign-architectures | grep -qx "$t"; then
    echo "install-cross-deps: dpkg --add-architecture $t"
    $SUDO dpkg --add-architecture "$t"
  fi
  for p in libuv1-dev libsodium-dev libprotobuf-dev libsqlite3-dev libgtest-dev libgmock-dev pkgconf; do
    target_pkgs+=("$p:$t")
  done
done

installed() {  # pkg[:arch] -> 0 if installed
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for p in "${host_pkgs[@]}" "${target_pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done

apt_updated=0
apt_update() {
  [ $apt_updated = 1 ] && return 0
  # A foreign architecture's security index may fail to download (mirror in
  # mid-sync): apt-get update then exits non-zero but the other indexes are
  # usable, so that is not fatal here.
  $SUDO apt-get update -qq || echo "install-cross-deps: apt-get update reported errors (continuing with the indexes it got)"
  apt_updated=1
}

# Newest version of $1 present in the indexes of both architectures $2 and $3.
common_version() {
  local p=$1 a=$2 b=$3
  comm -12 <(apt-cache madison "$p:$a" | awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -u) \
           <(apt-cache madison "$p:$b" | awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -u) |
    sort -V -r | while read -r v; do echo "$v"; break; done
}

if [ ${#missing[@]} -gt 0 ]; then
  apt_update
  echo "install-cross-deps: installing ${missing[*]}"
  request=("${missing[@]}")
  pinned=()
  for attempt in 1 2 3 4 5 6 7 8; do
    if out=$($SUDO apt-get install -s -y --no-install-recommends --allow-downgrades "${request[@]}" 2>&1); then
      break
    fi
    # "libc6-dev:armhf : Depends: linux-libc-dev:armhf but it is not going to be installed"
    mapfile -t blocked < <(printf '%s\n' "$out" |
      sed -n 's/.*Depends: \([^ :]*\):\([a-z0-9]*\).*but it is not going to be installed.*/\1 \2/p' | sort -u)
    if [ ${#blocked[@]} -eq 0 ]; then printf '%s\n' "$out" >&2; exit 1; fi
    for b in "${blocked[@]}"; do
      set -- $b
      p=$1 a=$2
      v=$(common_version "$p" "$HOST_ARCH" "$a")
      if [ -z "$v" ]; then echo "install-cross-deps: no common version of $p for $HOST_ARCH and $a" >&2; exit 1; fi
      echo "install-cross-deps: pinning Multi-Arch:same $p to $v on $HOST_ARCH and $a"
      request+=("$p:$HOST_ARCH=$v" "$p:$a=$v")
      pinned+=("$v")
    done
  done
  # Never remove host packages to make room: a host package that depends on
  # a pinned one at its old version (libssl-dev on libssl3) moves to the
  # pinned version too.
  for attempt in 1 2 3; do
    out=$($SUDO apt-get install -s -y --no-install-recommends --allow-downgrades "${request[@]}" 2>&1) || true
    mapfile -t removed < <(printf '%s\n' "$out" | sed -n 's/^Remv \([^ ]*\) .*/\1/p')
    [ ${#removed[@]} -eq 0 ] && break
    for r in "${removed[@]}"; do
      keep="$r"
      for v in "${pinned[@]}"; do
        if apt-cache madison "$r" | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$v"; then keep="$r=$v"; fi
      done
      request+=("$keep")
    done
  done
  if printf '%s\n' "$out" | grep -q '^Remv '; then
    printf '%s\n' "$out" | grep '^Remv ' >&2
    echo "install-cross-deps: refusing to remove the host packages above" >&2; exit 1
  fi
  $SUDO apt-get install -y -qq --no-install-recommends --allow-downgrades "${request[@]}"
else
  echo "install-cross-deps: all packages present for ${targets[*]}"
fi

# ---- gf-complete and jerasure sources ------------------------------------
SRC_DIR=build/src-deb
mkdir -p "$SRC_DIR"
have_src() { [ -f "$SRC_DIR/$1.dir" ] && [ -d "$SRC_DIR/$(cat "$SRC_DIR/$1.dir")" ]; }
add_deb_src() {
  if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "install-cross-deps: adding deb-src lines (/etc/apt/sources.list.d/mistore-deb-src.sources)"
    $SUDO tee /etc/apt/sources.list.d/mistore-deb-src.sources >/dev/null <<'EOF'
# Added by mistore cross-toolchains/install-cross-deps.sh: source packages of
# gf-complete and jerasure (compiled into the static gateway agent).
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt_updated=0
  fi
  apt_update
}
# The fetching itself, its checks and its error messages: src-deb.sh.
. cross-toolchains/src-deb.sh
fetch_src() {
  have_src "$1" || add_deb_src
  src_fetch "$1" || exit 1
}
fetch_src gf-complete
fetch_src jerasure
echo "install-cross-deps: sources: $SRC_DIR/$(cat $SRC_DIR/gf-complete.dir) $SRC_DIR/$(cat $SRC_DIR/jerasure.dir)"
