#!/usr/bin/env bash
# Prepares everything a real Apache Mesos 1.11.0 "local" cluster (master +
# agents in one Python 2.7 process) needs, following
# shared/reference/mesos/AVAILABILITY.md §2 and §6. All artefacts live in a
# cache outside the repository; nothing binary is ever committed.
#
# Usage: setup.sh [--quiet]
#   Prints the cache directory on stdout when done. Progress goes to stderr
#   (suppressed by --quiet); errors always go to stderr.
# Exit codes: 0 ready; 2 Python 2.7 is not available (this route is closed on
#   this machine, callers may skip); 1 any other failure.
set -euo pipefail

QUIET=0
if [ "${1:-}" = "--quiet" ]; then QUIET=1; fi

CACHE="${STRIDE_REAL_MESOS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stride/real-mesos}"

# Pinned artefacts. The tarballs are the "1.11.0.linux-x86_64" dumb builds on
# PyPI; pinning them means a changed upload can never slip in unnoticed.
SCHED_REQ="mesos.scheduler==1.11.0.linux-x86_64"
SCHED_TGZ="mesos.scheduler-1.11.0.linux-x86_64.tar.gz"
SCHED_SHA256="1d376f20bca6d05ee8b90c1c123a452b28753497ccc2f1c80ea3ac94c12e8f6e"
IFACE_REQ="mesos.interface==1.11.0.linux-x86_64"
IFACE_TGZ="mesos.interface-1.11.0.linux-x86_64.tar.gz"
IFACE_SHA256="d31d3d303089abeb0a40f25267801e782343dcffb0e7454e23c223bd4e3f5e80"
PY2_DEPS=("protobuf==3.17.3" "six")
APT_PKGS=(libsvn1 libapr1 libaprutil1 libsasl2-2 zlib1g)
# Bump when the recipe changes so existing caches are rebuilt.
RECIPE="stride-real-mesos recipe 1 $SCHED_SHA256 $IFACE_SHA256 ${PY2_DEPS[*]}"

SITE="$CACHE/site"
DEPS="$CACHE/deps"
SHIM="$CACHE/shim"
DL="$CACHE/dl"
MARKER="$CACHE/COMPLETE"
LOG="$CACHE/setup.log"
SO="$SITE/mesos/scheduler/_scheduler.so"

STEP="start"
DIED=0
say() { if [ "$QUIET" = 0 ]; then echo "real-mesos setup: $*" >&2; fi; }
die() {
  DIED=1
  echo "real-mesos setup: FAILED at step '$STEP': $*" >&2
  if [ -s "$LOG" ]; then
    echo "real-mesos setup: last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2 || true
  fi
  exit "${2:-1}"
}
# Unexpected failures (set -e) still name the step they happened in.
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$DIED" = 0 ]; then
    echo "real-mesos setup: FAILED at step '$STEP' (exit $rc); see $LOG" >&2
  fi
}
trap on_exit EXIT
# Runs a command with its output in the log, so failures can show it.
run() { echo "+ $*" >>"$LOG"; "$@" >>"$LOG" 2>&1; }

# --- Python 2.7 -----------------------------------------------------------
# The extension is a CPython 2.7 module; Debian 12 has no Python 2, but the
# image ships pyenv 2.7.18. Look in every place pyenv is usually put.
is_py27() { [ -x "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)' >/dev/null 2>&1; }
find_py27() {
  local c roots=()
  if [ -n "${STRIDE_PYTHON27:-}" ]; then
    if is_py27 "$STRIDE_PYTHON27"; then echo "$STRIDE_PYTHON27"; return 0; fi
    return 1
  fi
  if command -v pyenv >/dev/null 2>&1; then roots+=("$(pyenv root 2>/dev/null || true)"); fi
  roots+=("${PYENV_ROOT:-}" "$HOME/.pyenv" /root/.pyenv /usr/local/pyenv /opt/pyenv)
  for c in "${roots[@]}"; do
    [ -n "$c" ] || continue
    if is_py27 "$c/versions/2.7.18/bin/python"; then echo "$c/versions/2.7.18/bin/python"; return 0; fi
  done
  # Any other 2.7 as a last resort (still a CPython 2.7 ABI).
  local r
  for r in "${roots[@]}"; do
    [ -n "$r" ] || continue
    for c in "$r"/versions/2.7.*/bin/python; do
      if is_py27 "$c"; then echo "$c"; return 0; fi
    done
  done
  c="$(command -v python2.7 2>/dev/null || true)"
  if [ -n "$c" ] && is_py27 "$c"; then echo "$c"; return 0; fi
  return 1
}

mkdir -p "$CACHE"

# Fast path without the lock: the marker is written last and atomically, so
# if it matches, everything it vouches for is in place.
fast_ok() {
  [ -f "$MARKER" ] || return 1
  [ "$(head -n 1 "$MARKER")" = "$RECIPE" ] || return 1
  local py; py="$(sed -n 2p "$MARKER")"
  [ -x "$py" ] || return 1
  # An explicitly chosen interpreter must be the one the deps were built for.
  if [ -n "${STRIDE_PYTHON27:-}" ] && [ "$STRIDE_PYTHON27" != "$py" ]; then return 1; fi
  # The Debian libraries can vanish with a fresh machine while $HOME stays.
  local n
  n="$(dpkg-query -W -f='${Status}\n' "${APT_PKGS[@]}" 2>/dev/null | grep -c 'install ok installed' || true)"
  [ "$n" = "${#APT_PKGS[@]}" ]
}
if fast_ok; then
  trap - EXIT
  echo "$CACHE"
  exit 0
fi

# Serialise concurrent set-ups (parallel tests): the loser waits, then finds
# the marker written by the winner.
exec 9>"$CACHE/.lock"
STEP="lock"
flock -w 900 9 || die "could not lock $CACHE/.lock within 900 s"
if fast_ok; then
  trap - EXIT
  echo "$CACHE"
  exit 0
fi
: >"$LOG"

STEP="find Python 2.7"
PY27="$(find_py27)" || {
  if [ -n "${STRIDE_PYTHON27:-}" ]; then
    echo "real-mesos setup: STRIDE_PYTHON27='$STRIDE_PYTHON27' is not a Python 2.7 interpreter." >&2
    trap - EXIT
    exit 2
  fi
  echo "real-mesos setup: Python 2.7 not found (looked for pyenv 2.7.18 under \$(pyenv root), \$PYENV_ROOT, ~/.pyenv, /root/.pyenv, /usr/local/pyenv, /opt/pyenv, and python2.7 on PATH; or set STRIDE_PYTHON27). The real-Mesos route is unavailable here." >&2
  trap - EXIT
  exit 2
}
say "python 2.7: $PY27"
rm -f "$MARKER"

# --- Debian packages -------------------------------------------------------
STEP="apt packages"
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
{ command -v readelf && command -v objdump; } >/dev/null 2>&1 || missing+=(binutils)
command -v ldd >/dev/null 2>&1 || missing+=(libc-bin)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]} with apt-get"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install ${missing[*]}"
    SUDO="sudo -n"
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Try without refreshing the lists first (fast); refresh once on failure.
  if ! run $SUDO apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"; then
    run $SUDO apt-get update -o DPkg::Lock::Timeout=300 || die "apt-get update failed"
    run $SUDO apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" \
      || die "apt-get install ${missing[*]} failed"
  fi
fi

# --- PyPI tarballs -----------------------------------------------------------
STEP="download mesos tarballs"
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
fetch_tgz() { # requirement file sha
  local req="$1" file="$2" sha="$3" tmp
  if sha_ok "$DL/$file" "$sha"; then return 0; fi
  rm -f "$DL/$file"
  mkdir -p "$DL"
  tmp="$(mktemp -d "$CACHE/piptmp.XXXXXX")"
  say "downloading $req"
  # pip refuses to install these dumb builds: it saves the archive into -d
  # and then fails in egg_info ("does not appear to be a Python project").
  # So its exit status means nothing here; the sha256 below is the check.
  TMPDIR="$tmp" run "$PY27" -m pip download --no-deps --no-clean --disable-pip-version-check \
    -d "$DL" "$req" || true
  rm -rf "$tmp"
  [ -f "$DL/$file" ] || die "pip did not download $file"
  sha_ok "$DL/$file" "$sha" || die "sha256 mismatch for $DL/$file (expected $sha, got $(sha256sum "$DL/$file" | cut -d' ' -f1))"
}
fetch_tgz "$SCHED_REQ" "$SCHED_TGZ" "$SCHED_SHA256"
fetch_tgz "$IFACE_REQ" "$IFACE_TGZ" "$IFACE_SHA256"

# --- assemble $SITE/mesos ------------------------------------------------------
STEP="assemble site/mesos"
say "assembling $SITE"
rm -rf "$SITE" "$CACHE/unpack"
mkdir -p "$CACHE/unpack/s" "$CACHE/unpack/i" "$SITE/mesos"
# Unpack the verified archives ourselves rather than relying on where pip
# left its temporary tree.
run tar -xzf "$DL/$SCHED_TGZ" -C "$CACHE/unpack/s" || die "cannot unpack $SCHED_TGZ"
run tar -xzf "$DL/$IFACE_TGZ" -C "$CACHE/unpack/i" || die "cannot unpack $IFACE_TGZ"
src_s="$CACHE/unpack/s/usr/local/lib/python2.7/dist-packages/mesos/scheduler"
src_i="$CACHE/unpack/i/usr/local/lib/python2.7/dist-packages/mesos/interface"
if [ ! -f "$src_s/_scheduler.so" ] || [ ! -f "$src_s/__init__.py" ]; then die "unexpected layout in $SCHED_TGZ"; fi
if [ ! -f "$src_i/mesos_pb2.py" ] || [ ! -f "$src_i/__init__.py" ]; then die "unexpected layout in $IFACE_TGZ"; fi
mkdir -p "$SITE/mesos/scheduler" "$SITE/mesos/interface"
# A plain (empty) package __init__ instead of the nspkg .pth files, which
# Python only honours inside a real site-packages directory.
: >"$SITE/mesos/__init__.py"
cp "$src_s/__init__.py" "$src_s/_scheduler.so" "$SITE/mesos/scheduler/"
cp "$src_i/__init__.py" "$src_i/mesos_pb2.py" "$SITE/mesos/interface/"
rm -rf "$CACHE/unpack"

# --- Python 2 dependencies ---------------------------------------------------------
STEP="python2 deps (${PY2_DEPS[*]})"
say "installing ${PY2_DEPS[*]} for Python 2.7"
rm -rf "$DEPS" "$DEPS.tmp"
run "$PY27" -m pip install --disable-pip-version-check --no-warn-script-location \
  --target "$DEPS.tmp" "${PY2_DEPS[@]}" || die "pip install ${PY2_DEPS[*]} failed"
# The google namespace .pth is not read from a --target directory.
mkdir -p "$DEPS.tmp/google"
: >"$DEPS.tmp/google/__init__.py"
mv "$DEPS.tmp" "$DEPS"

# --- stub libraries ------------------------------------------------------------
# _scheduler.so was linked against OpenSSL 1.0 and a libcurl exporting
# CURL_OPENSSL_3; Debian 12 has neither. Nothing calls them while TLS is off
# and nothing is fetched, so stubs that merely satisfy the loader suffice.
# They are generated from the binary's own undefined symbols each time.
STEP="stub libraries"
say "building stub libraries in $SHIM"
rm -rf "$SHIM" "$SHIM.tmp"
mkdir -p "$SHIM.tmp"
# "flags|NAME@VERSION" of every undefined OpenSSL/curl import. objdump -T
# lists the same imports as `readelf --dyn-syms` (AVAILABILITY.md §2.2) but
# takes 0.3 s instead of 6 s on this 122 MB binary; readelf stays as the
# fallback should objdump's format ever differ. The flags tell functions
# ("F") from data: a stub function cannot stand in for data.
objdump -T "$SO" 2>>"$LOG" | sed -nE \
  's/^[0-9a-f]+ (.{7}) \*UND\*[[:space:]]+[0-9a-f]+[[:space:]]+\(?((OPENSSL|CURL)_[^)[:space:]]+)\)?[[:space:]]+([^[:space:]]+)$/\1|\4@\2/p' \
  >"$SHIM.tmp/imports.raw" || die "objdump failed on $SO"
if [ ! -s "$SHIM.tmp/imports.raw" ]; then
  readelf --dyn-syms -W "$SO" 2>>"$LOG" \
    | awk '$7 == "UND" && $8 ~ /@(OPENSSL|CURL)/ { print ($4 == "FUNC" ? "F" : "O") "|" $8 }' \
    >"$SHIM.tmp/imports.raw" || die "readelf failed on $SO"
fi
cut -d'|' -f2 "$SHIM.tmp/imports.raw" | sort -u >"$SHIM.tmp/imports.txt"
n_ssl="$(grep -c '@OPENSSL' "$SHIM.tmp/imports.txt" || true)"
n_curl="$(grep -c '@CURL' "$SHIM.tmp/imports.txt" || true)"
if [ "$n_ssl" -eq 0 ] || [ "$n_curl" -eq 0 ]; then
  die "no OpenSSL/curl imports found in $SO (objdump/readelf output changed?)"
fi
nonfunc="$(grep -v '^[^|]*F[^|]*|' "$SHIM.tmp/imports.raw" | cut -d'|' -f2 | tr '\n' ' ' || true)"
[ -z "$nonfunc" ] || die "OpenSSL/curl imports that are not functions: $nonfunc"
rm -f "$SHIM.tmp/imports.raw"

gen_stub() { # prefix-regex out.c out.map
  local re="$1" c="$2" map="$3"
  {
    echo "/* Generated by setup.sh from the imports of _scheduler.so. */"
    grep -E "@$re" "$SHIM.tmp/imports.txt" | cut -d@ -f1 | while read -r name; do
      case "$name" in
        curl_easy_perform) echo "long $name(void) { return 1; /* CURLE_UNSUPPORTED_PROTOCOL */ }" ;;
        curl_easy_strerror) echo "const char *$name(void) { return \"curl is a stub in this test set-up\"; }" ;;
        *) echo "long $name(void) { return 0; }" ;;
      esac
    done
  } >"$c"
  # One version node per version, each inheriting the previous one, in the
  # order the versions sort (1.0.0 < 1.0.1 < 1.0.2).
  local prev="" v
  : >"$map"
  # shellcheck disable=SC2013 # version names contain no blanks
  for v in $(grep -E "@$re" "$SHIM.tmp/imports.txt" | cut -d@ -f2 | sort -u); do
    {
      echo "$v {"
      echo "  global:"
      grep -E "@$v\$" "$SHIM.tmp/imports.txt" | cut -d@ -f1 | sed 's/.*/    &;/'
      if [ -z "$prev" ]; then echo "  local: *;"; fi
      echo "}${prev:+ $prev};"
    } >>"$map"
    prev="$v"
  done
}
gen_stub 'OPENSSL' "$SHIM.tmp/openssl_stub.c" "$SHIM.tmp/openssl.map"
gen_stub 'CURL' "$SHIM.tmp/curl_stub.c" "$SHIM.tmp/curl.map"
build_so() { # soname src map
  run gcc -shared -fPIC -O0 -w -o "$SHIM.tmp/$1" -Wl,-soname,"$1" -Wl,--version-script="$3" "$2" \
    || die "gcc failed building $1"
}
build_so libssl.so.1.0.0 "$SHIM.tmp/openssl_stub.c" "$SHIM.tmp/openssl.map"
build_so libcrypto.so.1.0.0 "$SHIM.tmp/openssl_stub.c" "$SHIM.tmp/openssl.map"
build_so libcurl.so.4 "$SHIM.tmp/curl_stub.c" "$SHIM.tmp/curl.map"
mv "$SHIM.tmp" "$SHIM"
say "stubs: $n_ssl OpenSSL and $n_curl curl functions"

# --- verification -------------------------------------------------------------------
STEP="verify ldd"
LD_LIBRARY_PATH="$SHIM" ldd "$SO" >"$CACHE/ldd.txt" 2>&1 || die "ldd failed: $(cat "$CACHE/ldd.txt")"
if grep -Eiq 'not found|version .* not|no version information' "$CACHE/ldd.txt"; then
  die "unresolved libraries or versions: $(grep -Ei 'not found|version' "$CACHE/ldd.txt")"
fi

STEP="verify python import"
# Python 2 loads extensions with RTLD_NOW, so the import binds every symbol
# for real (ldd only checks libraries and versions).
env PYTHONPATH="$SITE:$DEPS" LD_LIBRARY_PATH="$SHIM" "$PY27" -c \
  'from mesos.interface import Scheduler, mesos_pb2; from mesos.scheduler import MesosSchedulerDriver' \
  >>"$LOG" 2>&1 || die "python 2.7 cannot import mesos.scheduler / mesos.interface"

STEP="write marker"
cat >"$CACHE/env.sh.tmp" <<EOF
# Generated by setup.sh: paths of the real-Mesos set-up.
STRIDE_REAL_MESOS_PY27='$PY27'
STRIDE_REAL_MESOS_SITE='$SITE'
STRIDE_REAL_MESOS_DEPS='$DEPS'
STRIDE_REAL_MESOS_SHIM='$SHIM'
EOF
mv "$CACHE/env.sh.tmp" "$CACHE/env.sh"
printf '%s\n%s\n' "$RECIPE" "$PY27" >"$MARKER.tmp"
mv "$MARKER.tmp" "$MARKER"
say "done"
trap - EXIT
echo "$CACHE"
