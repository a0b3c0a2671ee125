#!/usr/bin/env bash
# Builds the Debian packages (dpkg-deb, no debhelper needed):
#
#   bash packaging/build-deb.sh servers            # mistore-pop, mistore-dc, mistore (client)
#   bash packaging/build-deb.sh agent ARCH         # mistore-agent for a Debian-based gateway
#   bash packaging/build-deb.sh all [ARCH...]      # servers + the agent of each ARCH
#
# servers: the native release build (cmake --preset release; its three
# binaries are built here if missing or stale). Depends: computed by
# dpkg-shlibdeps (libsodium23, libssl3 for the AES-GCM suite, ...). agent ARCH (armhf|arm64|mipsel|native): the static agent of
# cross-toolchains/build.sh ARCH, no Depends. Each daemon gets a hardened
# systemd unit (Type=notify, watchdog), its config in /etc/mistore/ (a
# conffile, from the binary's --print-sample-config, required settings
# commented out), and the `mistore` system user (systemd-sysusers).
# Output: out/packages/<name>_<version>_<arch>.deb, reproducible
# (SOURCE_DATE_EPOCH = last commit).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

version="$(sed -n 's/^project(mistore VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)-1"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
OUT=out/packages
mkdir -p "$OUT"
HOST_DEBARCH=$(dpkg --print-architecture)
maintainer="Mistore <packaging@mistore.invalid>"

subst() {  # subst FILE PKG NAME CONF STATE DESCRIPTION
  sed -e "s|@PKG@|$2|g" -e "s|@NAME@|$3|g" -e "s|@CONF@|$4|g" -e "s|@STATE@|$5|g" \
      -e "s|@DESCRIPTION@|$6|g" "$1"
}

# The binary's sample configuration, with required (empty) settings
# commented out so that the daemon names what is missing.
sample_config() {  # sample_config BINARY [EMULATOR...]
  local bin=$1; shift
  echo "# Mistore settings (name = value). Generated from $(basename "$bin") --print-sample-config;"
  echo "# settings left commented out have no default and must be set."
  echo
  "$@" "$bin" --print-sample-config | sed -E 's/^([a-z_]+) = $/# \1 = (required)/'
}

# make_deb PKG DEBARCH BINARY CONF STATE DESCRIPTION LONG_DESCRIPTION SERVICE(0/1) DEPENDS [EMULATOR...]
make_deb() {
  local pkg=$1 debarch=$2 bin=$3 conf=$4 state=$5 desc=$6 long=$7 service=$8 depends=$9
  shift 9
  local emu=("$@")
  local work; work=$(mktemp -d)
  local d=$work/root
  install -D -m 0755 "$bin" "$d/usr/bin/$(basename "$bin")"
  # Release binaries carry debug info (RelWithDebInfo): ship them stripped,
  # as dh_strip would. The agent firmware is stripped already.
  if [ "$debarch" = "$HOST_DEBARCH" ] && file -b "$bin" | grep -q "not stripped"; then
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$d/usr/bin/$(basename "$bin")"
  fi
  install -d -m 0755 "$d/DEBIAN"
  local conffiles=()
  if [ "$service" = 1 ]; then
    install -d -m 0755 "$d/etc/mistore" "$d/lib/systemd/system" "$d/usr/lib/sysusers.d"
    sample_config "$bin" "${emu[@]}" > "$d/etc/mistore/$conf"
    chmod 0640 "$d/etc/mistore/$conf"
    conffiles+=("/etc/mistore/$conf")
    subst packaging/debian/mistore-daemon.service.in "$pkg" "$pkg" "$conf" "$state" "$desc" \
      > "$d/lib/systemd/system/$pkg.service"
    chmod 0644 "$d/lib/systemd/system/$pkg.service"
    install -m 0644 packaging/debian/sysusers.conf.in "$d/usr/lib/sysusers.d/$pkg.conf"
    local svc; svc=$(subst packaging/debian/service-postinst.sh "$pkg" "$pkg" "$conf" "$state" "$desc")
    subst packaging/debian/postinst.in "$pkg" "$pkg" "$conf" "$state" "$desc" |
      awk -v svc="$svc" '{ if ($0 == "@SERVICE_POSTINST@") print svc; else print }' > "$d/DEBIAN/postinst"
    subst packaging/debian/prerm.in "$pkg" "$pkg" "$conf" "$state" "$desc" > "$d/DEBIAN/prerm"
    subst packaging/debian/postrm.in "$pkg" "$pkg" "$conf" "$state" "$desc" > "$d/DEBIAN/postrm"
    chmod 0755 "$d/DEBIAN/postinst" "$d/DEBIAN/prerm" "$d/DEBIAN/postrm"
    printf '%s\n' "${conffiles[@]}" > "$d/DEBIAN/conffiles"
  fi
  install -d -m 0755 "$d/usr/share/doc/$pkg"
  printf 'Mistore %s, built from the project repository (packaging/build-deb.sh).\n' "$version" |
    gzip -9n > "$d/usr/share/doc/$pkg/changelog.gz"
  local size; size=$(du -sk --apparent-size --exclude=DEBIAN "$d" | cut -f1)
  {
    echo "Package: $pkg"
    echo "Version: $version"
    echo "Architecture: $debarch"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $size"
    [ -n "$depends" ] && echo "Depends: $depends"
    [ "$service" = 1 ] && echo "Recommends: systemd"
    echo "Section: net"
    echo "Priority: optional"
    echo "Description: $desc"
    printf '%s\n' "$long" | fold -s -w 72 | sed 's/^/ /; s/ *$//'
  } > "$d/DEBIAN/control"
  find "$d" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  local deb="$OUT/${pkg}_${version}_${debarch}.deb"
  dpkg-deb --root-owner-group -Zxz --build "$d" "$deb" >/dev/null
  rm -rf "$work"
  echo "build-deb: $deb ($(stat -c %s "$deb") bytes)"
}

# Shared-library Depends of native binaries (dpkg-shlibdeps wants a debian/
# source tree: a throw-away one).
shlibdeps() {
  local tmp; tmp=$(mktemp -d)
  mkdir -p "$tmp/debian"
  printf 'Source: mistore\n\nPackage: mistore\nArchitecture: any\n' > "$tmp/debian/control"
  local abs=(); for b in "$@"; do abs+=("$(readlink -f "$b")"); done
  (cd "$tmp" && dpkg-shlibdeps -O "${abs[@]}" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
  rm -rf "$tmp"
}

build_servers() {
  local bindir=build/release/bin
  cmake --preset release >/dev/null
  cmake --build --preset release -j2 --target mistore-pop mistore-dc mistore
  local dep
  dep=$(shlibdeps "$bindir/mistore-pop"); make_deb mistore-pop "$HOST_DEBARCH" "$bindir/mistore-pop" pop.conf pop \
    "Mistore POP server" \
    "Runs at the network edge: per-object primary/backup replicas, the region's fragment index and caches, and placement of erasure-coded fragments on the region's gateways." \
    1 "$dep"
  dep=$(shlibdeps "$bindir/mistore-dc"); make_deb mistore-dc "$HOST_DEBARCH" "$bindir/mistore-dc" dc.conf dc \
    "Mistore datacenter backend" \
    "Keeps the catalog of names and objects and the cluster map of the Mistore POPs." \
    1 "$dep"
  dep=$(shlibdeps "$bindir/mistore"); make_deb mistore "$HOST_DEBARCH" "$bindir/mistore" "" "" \
    "Mistore client" \
    "The subscriber's command-line client of the Mistore ISP cloud drive: files are chunked and encrypted on the device before anything leaves it." \
    0 "$dep"
}

build_agent() {
  local arch=$1 debarch fw emu=()
  case "$arch" in
    armhf) debarch=armhf; fw=build/cross-armhf/firmware/mistore-agent; emu=(qemu-arm -cpu cortex-a7) ;;
    arm64) debarch=arm64; fw=build/cross-arm64/firmware/mistore-agent; emu=(qemu-aarch64 -cpu cortex-a53) ;;
    mipsel) debarch=mipsel; fw=build/cross-mipsel/firmware/mistore-agent; emu=(qemu-mipsel -cpu 74Kf) ;;
    native) debarch=$HOST_DEBARCH; fw=build/agent-native/firmware/mistore-agent ;;
    *) echo "build-deb: unknown agent arch $arch" >&2; exit 2 ;;
  esac
  [ -f "$fw" ] || { echo "build-deb: $fw missing: run bash cross-toolchains/build.sh $arch" >&2; exit 1; }
  make_deb mistore-agent "$debarch" "$fw" agent.conf agent \
    "Mistore gateway agent" \
    "Keeps erasure-coded, encrypted fragments of the ISP cloud drive on this gateway's disk and relays the subscriber's devices to their POP. Statically linked." \
    1 "" "${emu[@]}"
}

what=${1:-}
shift || true
case "$what" in
  servers) build_servers ;;
  agent) [ $# -ge 1 ] || { echo "usage: build-deb.sh agent ARCH" >&2; exit 2; }; build_agent "$1" ;;
  all) build_servers; for a in "$@"; do build_agent "$a"; done ;;
  *) echo "usage: bash packaging/build-deb.sh servers | agent ARCH | all [ARCH...]" >&2; exit 2 ;;
esac
