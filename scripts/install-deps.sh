#!/usr/bin/env bash
# Installs every Debian package that building and testing Mistore needs.
# Idempotent: packages already present are skipped; apt-get runs only when
# something is missing. Needs root (or sudo) on Debian 12.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libuv1-dev libprotobuf-dev protobuf-compiler libsqlite3-dev libsodium-dev libssl-dev
  libjerasure-dev libgf-complete-dev libisal-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 procps prometheus chromium
  iproute2 python3-matplotlib
  postgresql libpq-dev
  # The CI fuzz step (tests/fuzz/ci.sh): clang with libFuzzer and the
  # sanitizer runtimes, llvm-symbolizer for readable crash stacks.
  clang libclang-rt-14-dev llvm
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
