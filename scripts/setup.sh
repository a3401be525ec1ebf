#!/bin/sh
# setup.sh - installs the Debian packages cnnc needs (with sudo when not root), then
# configures and builds it out of tree in build/ (or $1). Used by quickstart.sh,
# check.sh and CI, so that there is one list of packages.
# Usage: scripts/setup.sh [BUILD_DIR [configure options...]]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
[ $# -gt 0 ] && shift

PACKAGES="gcc make flex bison autoconf automake libtool pkg-config check libstb-dev zlib1g-dev openmpi-bin libopenmpi-dev"
PACKAGES="$PACKAGES ${CNNC_EXTRA_PACKAGES:-}"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q || echo "setup: apt-get update failed; trying to install anyway" >&2
    # shellcheck disable=SC2086
    $sudo apt-get install -y -q --no-install-recommends $missing
fi

cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
    echo "setup: autoreconf -fi"
    autoreconf -fi
fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ] || [ $# -gt 0 ]; then
    "$top/configure" -q "$@"
fi
make -j"$(nproc 2>/dev/null || echo 2)"
echo "setup: built in $build"
