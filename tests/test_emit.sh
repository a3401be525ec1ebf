#!/bin/sh
# test_emit.sh - the C generator against the interpreter. For every example network and
# CNNC_EMIT_NETS (default 50) random ones from tests/gen_nets (fixed seed): `cnnc -o net.c`,
# compile it warning-free with $CC (and $SAN_CFLAGS) and with clang, then the generated
# program and cnnrun must give the same --dump (one forward/loss/backward pass, in eval and in
# training mode; each field within 1e-5 relative, bit-identical expected) and the same
# training (per-epoch losses, final weights file) on a tiny generated image set. Also: an
# invalid network must not produce C. One line per network; last line "N passed, M failed".
# Run from the build tree by `make check` (top_srcdir, top_builddir, CC and SAN_CFLAGS come
# from the Makefile). Without clang on PATH the test fails unless CNNC_NO_CLANG=1.

LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "${top_srcdir:-$here/..}" && pwd) || exit 99
builddir=$(cd "${top_builddir:-$here/..}" && pwd) || exit 99
cnnc=$builddir/cnnc
cnnrun=$builddir/cnnrun
gen=$builddir/tests/gen_nets
cmpdump=$builddir/tests/cmp_dump
for p in "$cnnc" "$cnnrun" "$gen" "$cmpdump"; do
    if [ ! -x "$p" ]; then
        echo "test_emit: $p is not built" >&2
        exit 99
    fi
done
CC=${CC:-cc}
SAN_CFLAGS=${SAN_CFLAGS:-}
nets=${CNNC_EMIT_NETS:-50}
seed=${CNNC_EMIT_SEED:-1}
limit=${CNNC_TEST_TIMEOUT:-120}
if command -v timeout >/dev/null 2>&1; then tlimit="timeout $limit"; else tlimit=; fi

# The runtime as a generated program finds it in the build tree (runtime/cnnrt-uninstalled.pc).
PKG_CONFIG_PATH=$builddir/runtime${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
pkgconfig=${PKG_CONFIG:-pkg-config}
if ! rtflags=$($pkgconfig --cflags --libs cnnrt-uninstalled) || ! rtcflags=$($pkgconfig --cflags cnnrt-uninstalled)
then
    echo "test_emit: $pkgconfig finds no cnnrt-uninstalled.pc in $builddir/runtime" >&2
    exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-emit.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99
start=$(date +%s)

passed=0
failed=0
fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}
# show FILE: the first lines of a log, indented
show() { sed 's/^/   | /' "$1" | head -n "${2:-12}" | cut -c 1-240; }

# A sanitizer report or a crash in a log is a failure even with exit status 0.
sanitized() { grep -a -q -e 'Sanitizer' -e 'runtime error:' "$@" 2>/dev/null; }

have_clang=0
if command -v clang >/dev/null 2>&1; then
    have_clang=1
    # clang's sanitizer runtime cannot join gcc's in one process (and vice versa): under a
    # sanitizer build, the other compiler only compiles.
    clang_links=1
    if [ -n "$SAN_CFLAGS" ] && ! $CC --version 2>/dev/null | grep -q -i clang; then clang_links=0; fi
else
    echo "test_emit: ********************************************************************"
    echo "test_emit: *** clang is not installed: the generated C is NOT checked with clang ***"
    echo "test_emit: ********************************************************************"
    if [ "${CNNC_NO_CLANG:-}" = 1 ]; then
        echo "test_emit: CNNC_NO_CLANG=1: going on with $CC alone"
    else
        fail "clang missing (install clang, or set CNNC_NO_CLANG=1 to test with $CC alone)"
    fi
fi

# dataset C H W K PER: the folder of a tiny image set (made once per shape and class count)
dataset() {
    ds=$tmp/data/$1x$2x$3-$4-$5
    if [ ! -d "$ds" ]; then
        mkdir -p "$ds" && "$gen" images "$ds" "$1x$2x$3" "$4" "$5" 7 || return 1
    fi
    echo "$ds"
}

# near A B: the files of per-epoch losses agree to 1e-4 relative (one unit of the last
# printed digit allowed for the rounding).
near() {
    paste -d ' ' "$1" "$2" | awk '{
        n = NF / 2
        if (NF % 2) bad = 1
        for (i = 1; i <= n; i++) {
            a = $i; b = $(i + n)
            if (a == b) continue
            if (a !~ /^-?[0-9.]+$/ || b !~ /^-?[0-9.]+$/) { bad = 1; continue }
            d = a - b; if (d < 0) d = -d
            m = a < 0 ? -a : a; mb = b < 0 ? -b : b; if (mb > m) m = mb
            if (d > 1e-4 * m + 1.0001e-4) bad = 1
        }
    } END { exit bad }'
}

# losses FILE: the numbers of the epoch lines (train loss, train acc, val loss, val acc)
losses() {
    awk '$1 == "epoch" { line = ""; for (i = 2; i <= NF; i++) if ($i == "loss" || $i == "acc") line = line " " $(i + 1); print line }' "$1"
}

# check_net LABEL FILE [cnnc options]: the whole comparison for one network
check_net() {
    label=$1 net=$2
    shift 2
    d=$tmp/$label
    mkdir -p "$d/gen" "$d/run" || return
    t0=$(date +%s)
    note=
    # --- generate and compile
    if ! $tlimit "$cnnc" "$net" -o "$d/net.c" "$@" >"$d/cnnc.out" 2>&1 || [ ! -s "$d/net.c" ] ||
        sanitized "$d/cnnc.out"; then
        fail "$label: cnnc -o failed"
        show "$d/cnnc.out"
        return
    fi
    # its input shape, classes, parameters and FLOPs as cnnc reports them
    if ! "$cnnc" "$net" --ir >"$d/ir" 2>"$d/ir.err" || ! "$cnnc" "$net" --summary >"$d/summary" 2>>"$d/ir.err" ||
        [ -s "$d/ir.err" ]; then
        fail "$label: cnnc --ir or --summary failed"
        show "$d/ir.err"
        return
    fi
    set -- $(awk '$2 == "input" { s = $8 " " $9 " " $10 } END { print s, $8 }' "$d/ir")
    flops=$(awk '/^Forward FLOPs/ { print $(NF - 1) }' "$d/summary")
    params=$(awk '/^Total parameters:/ { gsub(",", "", $3); print $3 }' "$d/summary")
    # shellcheck disable=SC2086
    $CC -std=c11 -Wall -Wextra -Werror -O2 $SAN_CFLAGS "$d/net.c" $rtflags -o "$d/net" >"$d/cc.out" 2>&1 &
    ccpid=$!
    clang_ok=0
    if [ $have_clang = 1 ]; then
        if [ $clang_links = 1 ]; then
            # shellcheck disable=SC2086
            clang -std=c11 -Wall -Wextra -Werror -O2 "$d/net.c" $rtflags -o "$d/net_clang" >"$d/clang.out" 2>&1
        else
            # shellcheck disable=SC2086
            clang -std=c11 -Wall -Wextra -Werror -O2 -c "$d/net.c" $rtcflags -o "$d/net_clang.o" >"$d/clang.out" 2>&1
        fi
        clang_rc=$?
    fi
    # the build line cnnc prints uses the compiler's default (GNU) dialect, where libm
    # declares more names (y0, y1, j0, ...): the generated names must not collide with them
    # shellcheck disable=SC2086
    $CC -fsyntax-only -Wall -Wextra -Werror "$d/net.c" $rtcflags >"$d/gnu.out" 2>&1
    wait $ccpid
    cc_rc=$?
    if [ -s "$d/gnu.out" ]; then cat "$d/gnu.out" >>"$d/cc.out"; fi
    if [ $cc_rc -ne 0 ] || [ -s "$d/cc.out" ]; then
        fail "$label: $CC: exit $cc_rc or warnings"
        show "$d/cc.out"
        return
    fi
    if [ $have_clang = 1 ]; then
        if [ $clang_rc -ne 0 ] || [ -s "$d/clang.out" ]; then
            fail "$label: clang: exit $clang_rc or warnings"
            show "$d/clang.out"
            return
        fi
        # the clang build runs the dumps too, but for the 25-million-parameter mlp (writing
        # its 200 MB dumps is most of this test's time)
        [ $clang_links = 1 ] && [ "$params" -lt 10000000 ] && clang_ok=1
    fi
    # --- one forward/backward pass, in eval and in training mode (the programs run side by
    #     side: the large examples spend their time writing 200 MB dumps)
    dumps=
    for mode in eval train; do
        tm=
        [ $mode = train ] && tm=--train-mode
        (cd "$d/gen" && $tlimit ../net --dump A --seed 3 --batch 3 $tm >out 2>err) &
        gpid=$!
        if [ $clang_ok = 1 ]; then
            (cd "$d/gen" && $tlimit ../net_clang --dump C --seed 3 --batch 3 $tm >cout 2>cerr) &
            cpid=$!
        fi
        (cd "$d/run" && $tlimit "$cnnrun" "$net" --dump B --seed 3 --batch 3 $tm >out 2>err)
        rrc=$?
        wait $gpid
        grc=$?
        crc=0
        if [ $clang_ok = 1 ]; then
            wait $cpid
            crc=$?
        fi
        if [ $grc -ne 0 ] || [ $rrc -ne 0 ] || sanitized "$d/gen/err" "$d/run/err"; then
            fail "$label: --dump ($mode mode): exit $grc (generated), $rrc (cnnrun)"
            show "$d/gen/err"
            show "$d/run/err"
            return
        fi
        if cmp -s "$d/gen/A" "$d/run/B"; then
            dumps="$dumps $mode=same"
        elif "$cmpdump" "$d/gen/A" "$d/run/B" 1e-5 >"$d/cmp.out" 2>&1; then
            dumps="$dumps $mode=near"
            note="$note; $mode dump not bit-identical"
        else
            fail "$label: --dump ($mode mode) differs"
            show "$d/cmp.out" 20
            return
        fi
        if [ $clang_ok = 1 ]; then
            if [ $crc -ne 0 ]; then
                fail "$label: clang build: --dump ($mode mode) exit $crc"
                show "$d/gen/cerr"
                return
            fi
            if ! cmp -s "$d/gen/C" "$d/run/B"; then
                if "$cmpdump" "$d/gen/C" "$d/run/B" 1e-5 >"$d/cmp.out" 2>&1; then
                    note="$note; clang $mode dump not bit-identical"
                else
                    fail "$label: clang build: --dump ($mode mode) differs"
                    show "$d/cmp.out" 20
                    return
                fi
            fi
        fi
        rm -f "$d/gen/A" "$d/gen/C" "$d/run/B"
    done
    # --- training on a tiny image set of the network's input size and classes
    # 64 images (about 45 to train on: > 20 steps in 2 epochs of batch 4); 3 a class for
    # the large examples (the lecture's 3x128x128 networks) to keep the test quick
    per=$(((64 + $4 - 1) / $4))
    if awk "BEGIN { exit !($flops > 20) }"; then per=3; fi
    ds=$(dataset "$1" "$2" "$3" "$4" "$per") || {
        fail "$label: gen_nets images failed"
        return
    }
    topt="--train $ds --epochs 2 --batch 4 --seed 5 --threads 1 --no-cache --out W"
    # shellcheck disable=SC2086
    (cd "$d/gen" && $tlimit ../net $topt >out 2>err) &
    gpid=$!
    # shellcheck disable=SC2086
    (cd "$d/run" && $tlimit "$cnnrun" "$net" $topt >out 2>err)
    rrc=$?
    wait $gpid
    grc=$?
    # a network whose training diverges must do so in both, at the same step
    if [ $grc = 1 ] && [ $rrc = 1 ] && grep -q 'diverged' "$d/run/err" &&
        [ "$(sed 's/^[^:]*: //' "$d/gen/err")" = "$(sed 's/^[^:]*: //' "$d/run/err")" ]; then
        note="$note; training diverged in both alike: $(head -n 1 "$d/run/err" | sed 's/^[^:]*: //')"
        : >"$d/gen/W"
        : >"$d/run/W"
    elif [ $grc -ne 0 ] || [ $rrc -ne 0 ] || sanitized "$d/gen/err" "$d/run/err"; then
        fail "$label: --train: exit $grc (generated), $rrc (cnnrun)"
        show "$d/gen/err"
        show "$d/run/err"
        return
    fi
    # the same lines but for the times
    for w in gen run; do
        sed -E 's/([0-9]+h)?([0-9]+m)?[0-9]+(\.[0-9]+)?s\b/TIME/g' "$d/$w/out" >"$d/$w/norm"
        losses "$d/$w/out" >"$d/$w/losses"
    done
    steps=$(awk '$1 == "images:" { print $5 }' "$d/run/out")
    steps=$(((steps + 3) / 4 * 2))
    if [ ! -s "$d/run/losses" ]; then
        fail "$label: --train printed no epoch lines"
        show "$d/run/out"
        return
    fi
    if cmp -s "$d/gen/norm" "$d/run/norm" && cmp -s "$d/gen/W" "$d/run/W"; then
        training="training bit-identical"
    elif near "$d/gen/losses" "$d/run/losses"; then
        if cmp -s "$d/gen/W" "$d/run/W"; then
            training="training: same weights, output differs"
        else
            training="training: losses within 1e-4, weights NOT bit-identical"
        fi
        note="$note; $training"
        diff "$d/gen/norm" "$d/run/norm" | head -n 6 | sed 's/^/   | /'
    else
        fail "$label: training differs"
        diff "$d/gen/norm" "$d/run/norm" | head -n 20 | sed 's/^/   | /'
        return
    fi
    first=$(awk 'NR == 1 { print $1 }' "$d/run/losses")
    last=$(awk 'END { print $1 }' "$d/run/losses")
    clang_word=
    [ $clang_ok = 1 ] && clang_word=", clang too"
    [ $have_clang = 1 ] && [ $clang_ok = 0 ] && clang_word=", clang compiled and linked only"
    [ $have_clang = 1 ] && [ $clang_links = 0 ] && clang_word=", clang compiled only (sanitizer build)"
    echo "ok   $label ($1x$2x$3, $4 classes): dumps$dumps$clang_word; $training ($steps steps, loss $first -> $last), $(($(date +%s) - t0)) s${note:+ NOTE${note#;}}"
    passed=$((passed + 1))
    rm -rf "$d"
}

for ex in "$srcdir"/examples/*.cnn; do
    name=${ex##*/}
    check_net "${name%.cnn}" "$ex"
done

# Random networks: each must be valid (`cnnc --check`) and agree with gen_nets' own count.
mkdir -p nets
if ! "$gen" nets nets "$seed" "$nets" >nets.list; then
    fail "gen_nets nets failed"
fi
i=0
while read -r file _shape _classes params _flops; do
    if ! "$cnnc" --check "nets/$file" >check.out 2>&1 || [ -s check.out ]; then
        fail "${file%.cnn}: gen_nets wrote an invalid network (cnnc --check)"
        show check.out
        sed 's/^/   > /' "nets/$file"
        continue
    fi
    have=$("$cnnc" "nets/$file" --summary | awk '/^Total parameters:/ { gsub(",", "", $3); print $3 }')
    if [ "$have" != "$params" ]; then
        fail "${file%.cnn}: cnnc counts $have parameters, gen_nets $params"
        continue
    fi
    # every fifth network with small static buffers (the training batch is 4)
    i=$((i + 1))
    if [ $((i % 5)) = 0 ]; then
        check_net "${file%.cnn}" "$tmp/nets/$file" --max-batch 4
    else
        check_net "${file%.cnn}" "$tmp/nets/$file"
    fi
done <nets.list

# --max-batch is a limit the program states, not an overflow.
if "$cnnc" "$srcdir/examples/fashion.cnn" -o small.c --max-batch 2 >/dev/null 2>&1 &&
    $CC -std=c11 $SAN_CFLAGS small.c $rtflags -o small >/dev/null 2>&1; then
    if ./small --dump D --batch 3 >out 2>err; then
        fail "a program built with --max-batch 2 ran a batch of 3"
    elif ! grep -q 'at most 2' err || sanitized err; then
        fail "a batch beyond --max-batch: unclear message or sanitizer report"
        show err
    else
        echo "ok   --max-batch 2: a batch of 3 is refused ($(head -n 1 err | cut -c 1-100))"
        passed=$((passed + 1))
    fi
else
    fail "--max-batch 2: cnnc or $CC failed"
fi

# An invalid network produces no C: exit 1, no output file, no temporary left over; an
# existing output file is left as it was.
bad=0
for f in "$srcdir"/tests/invalid/*.cnn; do
    rm -f out.c out.c.*
    $tlimit "$cnnc" "$f" -o out.c >out 2>err
    rc=$?
    if [ $rc -ne 1 ] || [ -e out.c ] || ls out.c.* >/dev/null 2>&1 || sanitized err; then
        fail "invalid ${f##*/}: cnnc -o exit $rc (expected 1) or wrote out.c"
        bad=1
    fi
done
printf 'input 1x4x4\nconv 9x9 2\nflatten\n' >bad.cnn
echo "/* keep */" >keep.c
"$cnnc" bad.cnn -o keep.c >/dev/null 2>&1
rc=$?
if [ $rc -ne 1 ] || [ "$(cat keep.c)" != "/* keep */" ]; then
    fail "cnnc bad.cnn -o keep.c: exit $rc (expected 1) or changed keep.c"
    bad=1
fi
if [ $bad = 0 ]; then
    echo "ok   invalid networks: no C written"
    passed=$((passed + 1))
fi

echo "time: $(($(date +%s) - start)) s"
echo "emit equivalence: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
