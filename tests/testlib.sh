# tests/testlib.sh - what the newer shell tests share, sourced after they set `here` and
# `name`: the C locale, the build and source trees (top_builddir and top_srcdir come from
# make check), the programs, a scratch folder removed at exit (made writable first: some
# tests lock files), the pass/fail counters and their helpers.
LC_ALL=C
export LC_ALL
builddir=$(cd "${top_builddir:-$here/..}" && pwd) || exit 99
srcdir=$(cd "${top_srcdir:-$here/..}" && pwd) || exit 99
cnnrun=$builddir/cnnrun
cnnc=$builddir/cnnc
gen=$builddir/tests/gen_nets
# need FILE...: exit 99 (a hard error for make check) unless each is built
need() {
    for p in "$@"; do
        [ -e "$p" ] || { echo "$name: $p is not built" >&2; exit 99; }
    done
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-$name.XXXXXX") || exit 99
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
show() { sed 's/^/   | /' "$1" | head -n 20; }
