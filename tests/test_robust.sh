#!/bin/sh
# test_robust.sh - cnnc --check must survive any input: truncated examples, random bytes and
# tokens (from tests/fetest_garbage, fixed seeds), huge lines and files, deep nesting, empty
# files, folders, missing files, NUL bytes, long words. It must exit with 0 or 1 (never 2 or a
# signal), and on 1 its first stderr line must read "FILE[:LINE:COL]: error: ...".
# Also checks the command line itself (--help, usage errors, --dot, --summary).
# Run from the build tree by `make check` (top_srcdir and top_builddir come from the Makefile).

LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "${top_srcdir:-$here/..}" && pwd) || exit 99
builddir=$(cd "${top_builddir:-$here/..}" && pwd) || exit 99
cnnc=$builddir/cnnc
garbage=$builddir/tests/fetest_garbage
for p in "$cnnc" "$garbage"; do
    if [ ! -x "$p" ]; then
        echo "test_robust: $p is not built" >&2
        exit 99
    fi
done

# Each run is limited in time where coreutils' timeout exists: a hang is a failure, not a stuck
# `make check`.
limit=${CNNC_TEST_TIMEOUT:-20}
if command -v timeout >/dev/null 2>&1; then
    tlimit="timeout $limit"
else
    tlimit=
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-robust.XXXXXX") || exit 99
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}

# run NAME FILE WANT [POS]: cnnc --check FILE must exit with a status in WANT ("0 1", "1", "0");
# POS=pos demands a positioned first error line (FILE:LINE:COL: error:); POS=text demands it
# unless the file has no statement at all ("the file defines no layers").
run() {
    name=$1 file=$2 want=$3 pos=${4:-}
    $tlimit "$cnnc" --check "$file" >out 2>err
    rc=$?
    if [ -n "$tlimit" ] && [ "$rc" -eq 124 ]; then
        fail "$name: took more than $limit s"
        return
    fi
    case " $want " in
    *" $rc "*) ;;
    *)
        if [ "$rc" -ge 128 ]; then
            fail "$name: killed by signal $((rc - 128))"
        else
            fail "$name: exit status $rc, expected one of: $want"
        fi
        sed 's/^/   | /' err | head -n 5 | cut -c 1-200
        return ;;
    esac
    if grep -a -q -e 'Sanitizer' -e 'runtime error:' err; then
        fail "$name: sanitizer report"
        head -n 20 err
        return
    fi
    if [ -s out ]; then
        fail "$name: --check wrote to stdout"
        return
    fi
    if [ "$rc" -eq 1 ]; then
        first=$(head -n 1 err | cut -c 1-2000)
        case $file in
        *:*) ;; # the pattern below cannot tell a ':' in the name from the position
        *)
            if ! printf '%s\n' "$first" | grep -a -q -E '^[^:]+(:[0-9]+:[0-9]+)?: error: '; then
                fail "$name: first line '$first'"
                return
            fi
            if [ "$pos" = text ] && printf '%s\n' "$first" | grep -a -q -E '^[^:]+: error: the file defines no layers$'; then
                pos=
            fi
            if [ -n "$pos" ] && ! printf '%s\n' "$first" | grep -a -q -E '^[^:]+:[0-9]+:[0-9]+: error: '; then
                fail "$name: no position in '$first'"
                return
            fi ;;
        esac
    elif [ -s err ]; then
        fail "$name: exit status 0 but stderr is not empty"
        return
    fi
    pass
}

# --- every truncation of each example (a stride keeps the number of runs small; the Check
#     test test_frontend compiles every prefix byte by byte in-process)
for ex in "$srcdir"/examples/*.cnn; do
    base=${ex##*/}
    size=$(wc -c <"$ex")
    step=$((size / 20 + 1))
    k=0
    while [ "$k" -le "$size" ]; do
        head -c "$k" "$ex" >trunc.cnn
        run "$base truncated to $k bytes" trunc.cnn "0 1" text
        k=$((k + step))
    done
    head -c $((size - 1)) "$ex" >trunc.cnn
    run "$base without its last byte" trunc.cnn "0 1" text
    run "$base" "$ex" "0"
done

# --- deterministic garbage: random bytes, printable text, tokens, statement lines, mutants
for mode in bytes text tokens lines; do
    for seed in 1 2 3 4 5 6 7 8; do
        "$garbage" "$mode" "$seed" $((seed * seed * 211 + 10)) >garbage.cnn || { fail "fetest_garbage"; continue; }
        run "$mode seed $seed" garbage.cnn "0 1" text
    done
done
"$garbage" bytes 99 1000000 >garbage.cnn && run "1 MB of random bytes" garbage.cnn "1" pos
for ex in "$srcdir"/examples/*.cnn; do
    for seed in 1 2 3 4; do
        "$garbage" mutate "$seed" "$ex" >mutant.cnn && run "${ex##*/} mutant $seed" mutant.cnn "0 1" text
    done
done

# --- sizes
awk 'BEGIN { printf "input 1x8x8 "; for (i = 0; i < 209715; i++) printf "relu "; print "" }' >longline.cnn
run "1 MB single line of arguments" longline.cnn "1" pos
awk 'BEGIN { for (i = 0; i < 1048576 / 8; i++) printf "flatten;"; print "" }' >longline2.cnn
run "1 MB single line of statements" longline2.cnn "1" pos
awk 'BEGIN { print "input 1x8x8"; for (i = 0; i < 99998; i++) print "relu"; print "dense 2" }' >lines.cnn
run "100000-line valid file" lines.cnn "0"
awk 'BEGIN { print "input 1x8x8"; for (i = 0; i < 100000; i++) print "relu"; print "dense 2" }' >lines.cnn
run "100002 layers" lines.cnn "1" pos
awk 'BEGIN { print "input 1x8x8"; for (i = 0; i < 100000; i++) print "# comment " i; print "flatten" }' >lines.cnn
run "100000 comment lines" lines.cnn "0"
awk 'BEGIN { print "input 1x8x8"; for (i = 0; i < 10000; i++) print "repeat 1 {"; print "relu";
             for (i = 0; i < 10000; i++) print "}"; print "flatten" }' >nest.cnn
run "10000 nested repeats" nest.cnn "1" pos
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "repeat 1 { "; print "" }' >nest.cnn
run "10000 unclosed repeats on one line" nest.cnn "1" pos
awk 'BEGIN { printf "block b() { relu }\ninput 1x8x8\nb"; for (i = 0; i < 10000; i++) printf "("; print "" }' >paren.cnn
run "10000 opening parentheses" paren.cnn "1" pos
printf 'input 3x8x8\nrepeat 1000000000 { conv 3 16 }\nflatten\n' >rep.cnn
run "repeat 1000000000" rep.cnn "1" pos
printf 'input 3x8x8\nrepeat 1000 { repeat 1000 { repeat 1000 { relu } } }\nflatten\n' >rep.cnn
run "repeat 10^9 by nesting" rep.cnn "1" pos
printf 'block b(n) { repeat n { relu } }\ninput 3x8x8\nrepeat 100000 { b(100000) }\nflatten\n' >rep.cnn
run "repeat 10^10 through a block" rep.cnn "1" pos
printf 'input 1x8x8\r\rflatten\r' >cr.cnn
run "CR line ends" cr.cnn "0 1" text

# --- long words
awk 'BEGIN { s = "a"; while (length(s) < 100000) s = s s; print "input 1x8x8"; print s; print "flatten" }' >longid.cnn
run "100000-character layer name" longid.cnn "1" pos
awk 'BEGIN { s = "k"; while (length(s) < 100000) s = s s; print "input 1x8x8"; print "conv 3x3 4 " s "=1"; print "flatten" }' >longkey.cnn
run "100000-character key" longkey.cnn "1" pos
awk 'BEGIN { s = "n"; while (length(s) < 100000) s = s s; print "network " s; print "input 1x8x8"; print "flatten" }' >longname.cnn
run "100000-character network name" longname.cnn "1" pos
awk 'BEGIN { s = "b"; while (length(s) < 100000) s = s s; print "block " s "() { relu }"; print "input 1x8x8"; print s "()"; print "flatten" }' >longblock.cnn
run "100000-character block name" longblock.cnn "0"
awk 'BEGIN { s = "9"; while (length(s) < 100000) s = s s; print "input 1x8x8"; print "flatten"; print "dense " s }' >longnum.cnn
run "100000-digit number" longnum.cnn "1" pos

# --- files that are not text, or not there
: >empty.cnn
run "empty file" empty.cnn "1"
head -c 4096 /dev/zero >nul.cnn
run "4096 NUL bytes" nul.cnn "1" pos
printf 'input 1x8x8\n\000flatten\n' >nul2.cnn
run "a NUL byte inside" nul2.cnn "1" pos
# (several times each: a failure to open once crashed only now and then)
mkdir folder.cnn
for i in 1 2 3 4 5; do
    run "a folder ($i)" folder.cnn "1"
    run "a missing file ($i)" missing.cnn "1"
    run "a file in a missing folder ($i)" no/such/dir/x.cnn "1"
done

# --- the command line
check_cmd() { # check_cmd NAME WANT-STATUS ARGS...
    name=$1 want=$2
    shift 2
    "$cnnc" "$@" >out 2>err
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "cnnc $name: exit status $rc, expected $want"
        return 1
    fi
    pass
    return 0
}
ex=$srcdir/examples
check_cmd "--help" 0 --help && { grep -q 'usage: cnnc' out || fail "--help prints no usage"; }
check_cmd "-h" 0 -h
check_cmd "--version" 0 --version
check_cmd "with no arguments" 2 && { [ -s err ] || fail "cnnc alone says nothing"; }
check_cmd "--frobnicate" 2 --frobnicate "$ex/cnn1.cnn" && { grep -q "unknown option" err || fail "unknown option: no message"; }
check_cmd "two files" 2 "$ex/cnn1.cnn" "$ex/cnn2.cnn"
check_cmd "two modes" 2 --dot --summary "$ex/cnn1.cnn"
check_cmd "-o without a name" 2 "$ex/cnn1.cnn" -o
if check_cmd "--dot" 0 --dot "$ex/resnet_tiny.cnn"; then
    head -n 1 out | grep -q '^digraph' || fail "--dot output does not start with digraph"
    tail -n 1 out | grep -q '^}$' || fail "--dot output does not end with }"
fi
if check_cmd "--summary" 0 --summary "$ex/cnn4.cnn"; then
    grep -q 'Total parameters:          1,629,860' out || fail "cnn4 summary: no 'Total parameters: 1,629,860'"
fi
if check_cmd "--summary -o" 0 "$ex/mlp.cnn" --summary -o summary.txt; then
    [ -s out ] && fail "-o still wrote to stdout"
    grep -q 'Total parameters:          25,232,516' summary.txt || fail "mlp summary: wrong or missing total"
fi
check_cmd "--check of a valid file" 0 --check "$ex/fashion.cnn" && { [ -s out ] || [ -s err ]; } &&
    fail "--check of a valid file printed something"

echo "robustness: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
