#!/bin/sh
# test_cnnc_driver.sh - cnnc's driver beyond one file's messages: several files with
# --check (every file's errors, a line naming the failed ones, exit 1 if any fails, 0 and
# silence if none), and the build line printed after -o run exactly as printed: from the
# build tree (cnnc uninstalled), and from a copy installed with make install DESTDIR=...
# (not in the system folders, so the line must carry its own -I/-L/rpath). The built
# program must run (--help exits 0). And the man pages list every option --help lists, with
# --eval's --weights optional in both.
# Run from the build tree by `make check` (top_srcdir, top_builddir come from the Makefile).

here=$(cd "$(dirname "$0")" && pwd)
name=driver
. "$here/testlib.sh"
need "$cnnc"

check() { # check WHAT COMMAND...: passes when the command succeeds
    what=$1
    shift
    if "$@"; then ok; else fail "$what"; fi
}

printf 'input 1x8x8\nflatten\ndense 2\n' >good1.cnn
printf 'input 3x8x8\nconv 3x3 4 pad=same\nglobalavgpool\ndense 3\n' >good2.cnn
printf 'input 1x8x8\nconv 3x3 4 strides=2\nflatten\ndense 2\n' >bad1.cnn
printf 'input 8x8x1\nflatten\ndense 2\n' >bad2.cnn

# --- several files with --check
"$cnnc" good1.cnn good2.cnn --check >out.txt 2>err.txt
rc=$?
check "two valid files: exit 0 (got $rc)" test "$rc" -eq 0
check "two valid files: nothing printed" test ! -s out.txt -a ! -s err.txt

"$cnnc" --check good1.cnn bad1.cnn good2.cnn bad2.cnn >out.txt 2>err.txt
rc=$?
check "two of four failing: exit 1 (got $rc)" test "$rc" -eq 1
check "the first bad file's error" grep -q "^bad1.cnn:2:12: error: unknown key 'strides' for conv$" err.txt
check "the second bad file's error" grep -q "^bad2.cnn:1:7: error: input 8x8x1 puts the channels last" err.txt
check "the line naming the failed files" grep -qx "cnnc: 2 of 4 files have errors: bad1.cnn bad2.cnn" err.txt
check "no error for the good files" test "$(grep -c '^good' err.txt)" -eq 0
check "nothing on stdout" test ! -s out.txt

"$cnnc" good1.cnn missing.cnn --check >out.txt 2>err.txt
rc=$?
check "a missing file fails the check (got $rc)" test "$rc" -eq 1
check "a missing file is named" grep -qx "cnnc: 1 of 2 files have errors: missing.cnn" err.txt

"$cnnc" good1.cnn good2.cnn --summary >out.txt 2>err.txt
rc=$?
check "several files without --check: usage error 2 (got $rc)" test "$rc" -eq 2
check "several files without --check: says why" grep -q "several files go only with --check" err.txt

# --- channels last is caught by cnnrun too (the same front end), before any data is read
"$cnnrun" bad2.cnn --train "$tmp/no-such-dir" >out.txt 2>err.txt
rc=$?
check "cnnrun: channels last is an input error (got $rc)" test "$rc" -eq 1
check "cnnrun: the same hint as cnnc" grep -qx 'hint: channels come first: did you mean `input 1x8x8`?' err.txt

# --- the man pages and --help agree: every option --help lists is in the man page, and
# --eval and --predict take --weights as an option (it defaults to NAME.weights)
cnnrun=$builddir/cnnrun
opts() { grep -o -e '--[a-z][a-z-]*' | sort -u; }
"$cnnc" --help | opts >help_cnnc.txt
"$cnnrun" good1.cnn --help | opts >help_cnnrun.txt
sed 's/\\-/-/g' "$srcdir/doc/cnnc.1" | opts >man_cnnc.txt
sed 's/\\-/-/g' "$srcdir/doc/cnnrun.1" | opts >man_cnnrun.txt
check "cnnc --help lists options (got $(wc -l <help_cnnc.txt))" test "$(wc -l <help_cnnc.txt)" -ge 10
check "cnnrun --help lists options (got $(wc -l <help_cnnrun.txt))" test "$(wc -l <help_cnnrun.txt)" -ge 20
missing=$(comm -23 help_cnnc.txt man_cnnc.txt | tr '\n' ' ')
check "cnnc.1 has every option of cnnc --help (missing: $missing)" test -z "$missing"
missing=$(comm -23 help_cnnrun.txt man_cnnrun.txt | tr '\n' ' ')
check "cnnrun.1 has every option of cnnrun --help (missing: $missing)" test -z "$missing"
man_syn=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' "$srcdir/doc/cnnrun.1" | sed 's/\\-/-/g' | tr '\n' ' ')
check "cnnrun.1: --eval DIR [--weights MODEL], as --help says" \
    sh -c 'printf "%s" "$1" | grep -q -e "--eval .I DIR .RB \[ --weights"' - "$man_syn"
"$cnnrun" good1.cnn --help >help_full.txt
check "cnnrun --help: --eval DIR [--weights FILE]" grep -q -e '--eval DIR \[--weights FILE\]' help_full.txt

# --- the build line, run as printed (from another folder than the C file's)
# buildline DIR CNNC: writes DIR/net.c with CNNC, runs the printed line from $tmp and the program
buildline() {
    where=$1
    shift
    mkdir -p "$tmp/$where/out"
    "$@" "$srcdir/examples/mlp.cnn" -o "$where/out/net.c" >out.txt 2>err.txt
    rc=$?
    check "$where: cnnc -o exits 0 (got $rc: $(cat err.txt))" test "$rc" -eq 0
    line=$(sed -n 's/^cnnc: wrote .*; build it with: //p' err.txt)
    check "$where: a build line is printed" test -n "$line"
    echo "$where: $line"
    # sanitizer builds: the runtime carries ASan/UBSan, so the program must link them too
    if sh -c "$line ${SAN_CFLAGS:-}" >build.txt 2>&1; then ok; else
        fail "$where: the printed line fails: $line"
        sed 's/^/   | /' build.txt | head -n 10
    fi
    check "$where: the program is where the line says" test -x "$where/out/net"
    "$where/out/net" --help >help.txt 2>&1
    rc=$?
    check "$where: the program runs (--help exits $rc)" test "$rc" -eq 0
}

# from the build tree: nothing is installed, no PKG_CONFIG_PATH, no LD_LIBRARY_PATH
(unset PKG_CONFIG_PATH LD_LIBRARY_PATH; buildline uninstalled "$cnnc"; echo "$passed $failed" >counts)
read -r p f <counts
passed=$p failed=$f
check "uninstalled: the line names the build's runtime, not an installed pkg-config" \
    grep -q -e "-L$builddir/.libs" err.txt

# from an install staged with DESTDIR (a prefix outside the system folders as seen from here)
stage=$tmp/stage
if ${MAKE:-make} -C "$builddir" install DESTDIR="$stage" >install.txt 2>&1; then
    ok
    icnnc=$(find "$stage" -type f -name cnnc -perm -u+x | head -n 1)
    ilib=$(dirname "$(find "$stage" -name 'libcnnrt.so*' | head -n 1)")
    check "the install has cnnc" test -n "$icnnc"
    # running the staged cnnc needs its library; the printed line must need nothing
    (buildline installed env LD_LIBRARY_PATH="$ilib" "$icnnc"; echo "$passed $failed" >counts)
    read -r p f <counts
    passed=$p failed=$f
    check "installed: the line names the staged runtime" grep -q -e "-L$stage" err.txt
else
    fail "make install DESTDIR=$stage failed"
    tail -n 10 install.txt
fi

echo "cnnc driver: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
