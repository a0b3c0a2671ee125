#!/usr/bin/env bash
# Builds the OpenWrt package of the gateway agent, without the OpenWrt SDK:
#
#   bash packaging/build-ipk.sh armhf|arm64|mipsel|native [AGENT_BINARY]
#
# AGENT_BINARY defaults to the stripped static agent that
# cross-toolchains/build.sh made (build/cross-<target>/firmware/mistore-agent,
# build/agent-native/firmware/mistore-agent for native). Writes
# out/packages/mistore-agent_<version>_<openwrt-arch>.ipk: a gzip'd tar of
# ./debian-binary, ./data.tar.gz and ./control.tar.gz (as OpenWrt's
# ipkg-build lays it out), reproducible (owner root, sorted, mtime of the
# last commit). OPENWRT_ARCH overrides the package architecture.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

target=${1:-}
case "$target" in
  # Debian's armhf baseline (ARMv7, VFPv3-D16, no NEON) runs on every
  # cortex-a7/a9/a15 OpenWrt target; the most common opkg arch name is used.
  armhf) oarch=${OPENWRT_ARCH:-arm_cortex-a7_neon-vfpv4}; build=build/cross-armhf ;;
  arm64) oarch=${OPENWRT_ARCH:-aarch64_cortex-a53}; build=build/cross-arm64 ;;
  # Debian's mipsel is hard-float; OpenWrt's mipsel_24kc kernels emulate the
  # FPU (CONFIG_MIPS_FP_SUPPORT), and the agent does no floating point on its
  # data path. See docs/packaging.md.
  mipsel) oarch=${OPENWRT_ARCH:-mipsel_24kc}; build=build/cross-mipsel ;;
  native) oarch=${OPENWRT_ARCH:-x86_64}; build=build/agent-native ;;
  *) echo "usage: bash packaging/build-ipk.sh armhf|arm64|mipsel|native [AGENT_BINARY]" >&2; exit 2 ;;
esac
agent=${2:-$build/firmware/mistore-agent}
[ -f "$agent" ] || { echo "build-ipk: $agent missing: run bash cross-toolchains/build.sh $target" >&2; exit 1; }

version="$(sed -n 's/^project(mistore VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)-1"
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
out=out/packages
mkdir -p "$out"
pkg="$out/mistore-agent_${version}_${oarch}.ipk"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data=$work/data ctl=$work/control
install -D -m 0755 "$agent" "$data/usr/bin/mistore-agent"
install -D -m 0755 packaging/openwrt/mistore.init "$data/etc/init.d/mistore"
install -D -m 0600 packaging/openwrt/mistore.config "$data/etc/config/mistore"
install -D -m 0755 packaging/openwrt/uci2conf "$data/usr/libexec/mistore/uci2conf"

installed_size=$(du -sb --apparent-size "$data" | cut -f1)
mkdir -p "$ctl"
cat > "$ctl/control" <<EOF
Package: mistore-agent
Version: $version
Depends: procd
Source: mistore
License: proprietary
Section: net
Architecture: $oarch
Installed-Size: $installed_size
Maintainer: Mistore <packaging@mistore.invalid>
Description: Mistore gateway agent: keeps erasure-coded, encrypted fragments
 of the ISP cloud drive on this gateway's disk and relays the subscriber's
 devices to their POP. Fully static binary; settings in /etc/config/mistore.
EOF
echo "/etc/config/mistore" > "$ctl/conffiles"
install -m 0755 packaging/openwrt/postinst "$ctl/postinst"
install -m 0755 packaging/openwrt/prerm "$ctl/prerm"
echo "2.0" > "$work/debian-binary"

tarit() {  # tarit DIR OUT.tar.gz: reproducible gzip'd tar of DIR's contents
  (cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
     sed 's|^|./|' |
     tar --no-recursion --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
         --format=gnu -cf - -T - | gzip -9n > "$2")
}
tarit "$data" "$work/data.tar.gz"
tarit "$ctl" "$work/control.tar.gz"
(cd "$work" && tar --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --format=gnu \
   -cf - ./debian-binary ./data.tar.gz ./control.tar.gz | gzip -9n > "$ROOT/$pkg.tmp")
mv "$pkg.tmp" "$pkg"
echo "build-ipk: $pkg ($(stat -c %s "$pkg") bytes, Installed-Size $installed_size)"
