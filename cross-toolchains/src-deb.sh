# Fetching Debian's source packages of gf-complete and jerasure (sourced by
# install-cross-deps.sh; tests/packaging/test_src_deb.py sources it with a
# stand-in apt-get). Only Debian's archive, through apt: nothing else is
# downloaded.
#
#   src_fetch NAME   unpacks NAME's source package into $SRC_DIR/NAME-UPVER
#                    and writes that folder's name to $SRC_DIR/NAME.dir
#
# apt checks the .dsc against the signed Sources index; this file checks each
# tarball against the .dsc's Checksums-Sha256. When a file is missing, the
# message names it, the URL apt tried and the cause read from apt's answer
# (404 from the mirror, a mirror in mid-sync, no deb-src line, no network).
#
# Debian's diff (NAME_VER.debian.tar.xz) absent from the mirror (seen on this
# machine's mirror for jerasure: 404): the upstream tarball alone is used, a
# warning says so at every run and $SRC_DIR/NAME.note records it, on two
# conditions checked here: the upstream headers are byte-identical to the
# installed Debian -dev package's (the diff changes no interface), and
# MISTORE_REQUIRE_DEBIAN_DIFF is not 1 (then it is an error). Once the diff is
# on the mirror, `rm -r build/src-deb` fetches it.
#
# Variables: SRC_DIR (required), APT_GET (default apt-get),
# SRC_DEV_INCLUDE (where the -dev headers are; default /usr/include).

APT_GET=${APT_GET:-apt-get}
SRC_DEV_INCLUDE=${SRC_DEV_INCLUDE:-/usr/include}

src_say() { echo "install-cross-deps: $*" >&2; }

# src_cause LOG FILE: why apt could not fetch FILE, from apt's output in LOG.
src_cause() {
  local log=$1 file=$2 line
  line=$(grep -F "Failed to fetch" "$log" 2>/dev/null | grep -F "$(printf '%s' "$file" | sed 's/+/%2b/g')" | head -1)
  [ -n "$line" ] || line=$(grep -F "Failed to fetch" "$log" 2>/dev/null | grep -F "$file" | head -1)
  case "$line" in
    *" 404 "*|*"404  Not Found"*|*"404 Not Found"*)
      echo "the mirror answered 404 Not Found for $(src_url "$line") (listed in the signed .dsc, absent from the mirror: mirror sync in progress, or an incomplete mirror)" ;;
    *"unexpected size"*|*"Hash Sum mismatch"*|*"Mirror sync in progress"*)
      echo "the mirror served a file that does not match the signed index ($(src_url "$line")): mirror sync in progress" ;;
    *"Could not resolve"*|*"Temporary failure resolving"*|*"Connection failed"*|*"Could not connect"*|*"timed out"*)
      echo "the mirror could not be reached ($(printf '%s' "$line" | sed 's/^E: //')): no network or no DNS" ;;
    "")
      if grep -q "You must put some 'deb-src' URIs\|must put some 'source' URIs" "$log" 2>/dev/null; then
        echo "apt has no deb-src (source) entries for this distribution"
      elif grep -q "Unable to find a source package" "$log" 2>/dev/null; then
        echo "the Sources index has no such source package (deb-src for bookworm main missing, or apt-get update did not fetch the Sources index)"
      else
        echo "apt did not say why; its output is in $log"
      fi ;;
    *) echo "apt: $(printf '%s' "$line" | sed 's/^E: //')" ;;
  esac
}
src_url() { printf '%s\n' "$1" | grep -o 'https\?://[^ ]*' | head -1; }

# src_files DSC: "sha256 name" for each file the .dsc lists.
src_files() {
  sed -n '/^Checksums-Sha256:/,/^[A-Z-]*:/p' "$1" | awk 'NF == 3 && length($1) == 64 && $1 ~ /^[0-9a-f]+$/ { print $1, $3 }'
}

src_fetch() {
  local name=$1 log dsc ver upver dir sum f orig="" diff="" missing_diff="" cause
  if [ -f "$SRC_DIR/$name.dir" ] && [ -d "$SRC_DIR/$(cat "$SRC_DIR/$name.dir")" ]; then
    [ -f "$SRC_DIR/$name.note" ] && src_say "WARNING: $(cat "$SRC_DIR/$name.note")"
    return 0
  fi
  log=$SRC_DIR/$name.apt-source.log
  (cd "$SRC_DIR" && "$APT_GET" source --download-only "$name") > "$log" 2>&1 || true
  grep '^[EW]: ' "$log" | grep -v unsandboxed >&2 || true
  dsc=$(ls "$SRC_DIR/${name}"_*.dsc 2>/dev/null | sort -V | tail -1)
  if [ -z "$dsc" ]; then
    src_say "ERROR: cannot fetch Debian's source package $name: $(src_cause "$log" "${name}_")."
    src_say "The static agent compiles $name from it (Debian ships no static archive); nothing else is downloaded."
    return 1
  fi
  ver=${dsc##*/${name}_}; ver=${ver%.dsc}; upver=${ver%-*}
  while read -r sum f; do
    case "$f" in
      *.orig.tar.*) orig=$f ;;
      *.debian.tar.*|*.diff.gz) diff=$f ;;
    esac
    if [ ! -f "$SRC_DIR/$f" ]; then
      cause=$(src_cause "$log" "$f")
      if [ "$f" = "$diff" ]; then
        missing_diff=$cause
      else
        src_say "ERROR: $name $ver: $f (listed in ${dsc##*/}) could not be fetched: $cause."
        src_say "The static agent cannot be built without it; retry later or use another Debian mirror (/etc/apt/sources.list.d)."
        return 1
      fi
    elif ! echo "$sum  $SRC_DIR/$f" | sha256sum -c --quiet - >/dev/null 2>&1; then
      src_say "ERROR: $name $ver: $SRC_DIR/$f does not match the SHA-256 in ${dsc##*/} (a truncated or stale download: delete it and re-run)."
      return 1
    fi
  done < <(src_files "$dsc")
  [ -n "$orig" ] || { src_say "ERROR: ${dsc##*/} lists no upstream tarball"; return 1; }
  dir="$name-$upver"
  rm -rf "${SRC_DIR:?}/$dir" "$SRC_DIR/$name.note"
  if [ -z "$missing_diff" ]; then
    if ! (cd "$SRC_DIR" && dpkg-source --no-check -x "${dsc##*/}" "$dir") > "$SRC_DIR/$name.dpkg-source.log" 2>&1; then
      src_say "ERROR: dpkg-source could not unpack ${dsc##*/}:"
      cat "$SRC_DIR/$name.dpkg-source.log" >&2
      return 1
    fi
    echo "$dir" > "$SRC_DIR/$name.dir"
    return 0
  fi
  # Debian's diff is missing: the verified upstream tarball alone, if allowed.
  src_say "Debian's diff of $name $ver is unavailable: $missing_diff."
  if [ "${MISTORE_REQUIRE_DEBIAN_DIFF:-0}" = 1 ]; then
    src_say "ERROR: MISTORE_REQUIRE_DEBIAN_DIFF=1: not building $name without Debian's changes; retry once the mirror has the file, or use another Debian mirror."
    return 1
  fi
  mkdir -p "$SRC_DIR/$dir"
  tar xf "$SRC_DIR/$orig" -C "$SRC_DIR/$dir" --strip-components=1
  local h n other changed="" compared=0
  for h in "$SRC_DIR/$dir"/include/*.h; do
    n=${h##*/}
    for other in "$SRC_DEV_INCLUDE/$n" "$SRC_DEV_INCLUDE/$name/$n"; do
      [ -f "$other" ] || continue
      compared=$((compared + 1))
      cmp -s "$h" "$other" || changed="$changed $other"
    done
  done
  if [ $compared = 0 ]; then
    rm -rf "${SRC_DIR:?}/$dir"
    src_say "ERROR: no installed header of $name's Debian -dev package to compare the upstream tarball with (in $SRC_DEV_INCLUDE): install lib$name-dev, or retry once the mirror has $diff."
    return 1
  fi
  if [ -n "$changed" ]; then
    rm -rf "${SRC_DIR:?}/$dir"
    src_say "ERROR: the upstream headers of $name differ from the installed Debian package's ($changed): Debian's diff changes its interface, so it cannot be left out. Retry once the mirror has $diff, or use another Debian mirror."
    return 1
  fi
  echo "$name $ver is built from the upstream tarball alone (SHA-256 checked against the .dsc), without Debian's diff $diff: $missing_diff. Its headers equal the installed Debian -dev package's. MISTORE_REQUIRE_DEBIAN_DIFF=1 makes this an error; rm -r $SRC_DIR fetches again." > "$SRC_DIR/$name.note"
  src_say "WARNING: $(cat "$SRC_DIR/$name.note")"
  echo "$dir" > "$SRC_DIR/$name.dir"
}
