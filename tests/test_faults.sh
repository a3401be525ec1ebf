#!/bin/sh
# test_faults.sh - fault injection (issue 12): tests/faultshim.so (LD_PRELOAD) makes the
# n-th call that writes a file (fopen/fdopen for writing, mkstemp, fwrite, fputs, fflush,
# fsync, fclose, rename) fail with ENOSPC (every n), EIO and EINTR (every 4th n), swept over
# every n of: a training run that saves weights, checkpoints, a --log, a --report, a --plot
# and the decode cache; cnnc -o; cnnc --standalone (NET.c and NET.h). After each faulty run:
# no crash (exit 0, 1 or 2), a message naming the error when something was not written,
# no temporary file left behind, and every file either exactly as it was before or whole
# (a weights file that --eval loads, a checkpoint whose checksum holds, a complete CSV,
# Markdown table and SVG, C that compiles). Run by `make check`.
# Last line: "faults: N runs, P passed, F failed".

here=$(cd "$(dirname "$0")" && pwd)
name=faults
. "$here/testlib.sh"
cnnrun=$builddir/.libs/cnnrun
cnnc=$builddir/.libs/cnnc
shim=$builddir/tests/.libs/faultshim.so
[ -f "$shim" ] || shim=$builddir/tests/faultshim.so
LD_LIBRARY_PATH=$builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
# a sanitizer build puts its runtime first; the shim comes after it
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
export ASAN_OPTIONS
runs=0
need "$shim" "$cnnrun" "$cnnc" "$gen"

"$gen" images data 1x10x10 3 6 7 >/dev/null || { echo "gen_nets failed"; exit 99; }
cat > n.cnn <<'EOF2'
network n
input 1x10x10
conv 3x3 4 relu pad=same
maxpool 2x2
flatten
dense 3
train {
    batch 6
    epochs 2
}
EOF2
train() { "$cnnrun" n.cnn --train data --out w.weights --log l.csv --report r.md --plot p.svg \
    --cache-dir cache --threads 1 --quiet "$@"; }

# the files as they were before each run: from a run with another seed
train --seed 9 >/dev/null 2>&1 || { echo "the first run failed"; exit 99; }
mkdir prev
cp w.weights w.ckpt l.csv r.md p.svg prev/
rm -rf cache

# each file whole or as it was
whole() { # whole FILE: 0 when valid
    case $1 in
    w.weights) "$cnnrun" n.cnn --eval data --weights w.weights --no-cache --threads 1 >/dev/null 2>&1 ;;
    w.ckpt) "$cnnrun" n.cnn --resume w.ckpt --seed 77 >ck.out 2>&1
        grep -q "was not a setting" ck.out ;;
    l.csv) head -n 1 l.csv | grep -q "^epoch,lr," && awk -F, 'NF != 7 { exit 1 }' l.csv ;;
    r.md) awk 'NR == 1 && !/^\| Model/ { exit 1 } !/^\|/ { exit 1 }' r.md ;;
    p.svg) tail -n 1 p.svg | grep -q "</svg>" ;;
    esac
}
check_files() { # check_files LABEL FILE...
    label=$1
    shift
    for f in "$@"; do
        if [ -e "prev/$f" ] && cmp -s "$f" "prev/$f"; then continue; fi
        [ -e "$f" ] || { fail "$label: $f is gone"; return 1; }
        whole "$f" || { fail "$label: $f is neither as it was nor whole"; return 1; }
    done
    leftover=$(ls -a . cache 2>/dev/null | grep -e '\.tmp-' -e '\.probe-' | head -n 3)
    [ -z "$leftover" ] || { fail "$label: temporary files left: $leftover"; return 1; }
    return 0
}
# the message when the run did not go through cleanly
check_message() { # check_message LABEL RC ERRNO_TEXT
    if [ "$2" -gt 2 ]; then fail "$1: exit $2 (a crash?)"; show err; return 1; fi
    if grep -q -e "Sanitizer" -e "runtime error:" err; then fail "$1: sanitizer report"; show err; return 1; fi
    if [ "$2" -ne 0 ] || grep -q warning err; then
        grep -q "$3" err || { fail "$1: exit $2 without '$3'"; show err; return 1; }
    fi
    return 0
}
# a run that exits 0 without a warning wrote every file anew (no silent failure)
written() { # written LABEL RC FILE...
    label=$1
    [ "$2" -ne 0 ] && return 0
    grep -q warning err && return 0
    shift 2
    for f in "$@"; do
        cmp -s "$f" "prev/$f" && { fail "$label: exit 0, no warning, but $f was not written"; return 1; }
    done
    return 0
}
errtext() {
    case $1 in ENOSPC) echo "No space left on device" ;; EIO) echo "Input/output error" ;;
    *) echo "Interrupted system call" ;; esac
}

# --- training
rm -f count
FAULT_COUNT_FILE=$tmp/count LD_PRELOAD=$shim train >/dev/null 2>&1
total=$(tail -n 1 count)
[ "${total:-0}" -gt 20 ] || { echo "test_faults: the shim saw ${total:-no} calls"; exit 99; }
n=1
while [ $n -le "$total" ]; do
    for e in ENOSPC EIO EINTR; do
        [ $e = ENOSPC ] || [ $((n % 4)) -eq 0 ] || continue
        cp prev/* .
        rm -rf cache
        FAULT_AT=$n FAULT_ERRNO=$e LD_PRELOAD=$shim train >out 2>err
        rc=$?
        runs=$((runs + 1))
        check_message "train, call $n $e" $rc "$(errtext $e)" &&
            check_files "train, call $n $e" w.weights w.ckpt l.csv r.md p.svg &&
            written "train, call $n $e" $rc w.weights w.ckpt l.csv r.md p.svg &&
            passed=$((passed + 1))
    done
    n=$((n + 1))
done
# the decode cache a faulty run left: a later run uses or rebuilds it and trains alike
cp prev/* .
rm -rf cache
train --seed 3 >/dev/null 2>&1 && cp w.weights clean.weights
for n in 1 2 3 4 5 6; do
    rm -rf cache
    FAULT_AT=$n LD_PRELOAD=$shim train --seed 3 >/dev/null 2>err
    runs=$((runs + 1))
    if train --seed 3 >/dev/null 2>err && cmp -s w.weights clean.weights; then
        passed=$((passed + 1)); else fail "cache after call $n failed: the next run differs"; show err; fi
done

# --- cnnc -o and --standalone
# the previous files: another batch size, other weights (so a file written anew differs)
"$cnnc" n.cnn -o prev/n.c --max-batch 3 2>/dev/null &&
    "$cnnc" n.cnn --standalone --weights prev/w.weights -o prev/s.c 2>/dev/null ||
    { echo "cnnc failed"; exit 99; }
echo "/* the previous header */" >>prev/s.h
for mode in program standalone; do
    rm -f count
    if [ $mode = program ]; then set -- n.cnn -o n.c; files="n.c"; else
        set -- n.cnn --standalone --weights w.weights -o s.c; files="s.c s.h"; fi
    FAULT_COUNT_FILE=$tmp/count LD_PRELOAD=$shim "$cnnc" "$@" >/dev/null 2>&1
    total=$(tail -n 1 count)
    n=1
    while [ $n -le "${total:-0}" ]; do
        cp prev/n.c prev/s.c prev/s.h . 2>/dev/null
        FAULT_AT=$n LD_PRELOAD=$shim "$cnnc" "$@" >out 2>err
        rc=$?
        runs=$((runs + 1))
        ok=1
        check_message "cnnc $mode, call $n" $rc "No space left on device" || ok=0
        [ $ok = 1 ] && { written "cnnc $mode, call $n" $rc $files || ok=0; }
        for f in $files; do
            cmp -s "$f" "prev/$f" && continue
            case $f in
            *.c) ${CC:-cc} -fsyntax-only -I"$srcdir/runtime/include" "$f" 2>/dev/null ||
                { fail "cnnc $mode, call $n: $f is neither as it was nor C that compiles"; ok=0; } ;;
            *.h) tail -n 1 "$f" | grep -q "^#endif" || { fail "cnnc $mode, call $n: $f is neither as it was nor whole"; ok=0; } ;;
            esac
        done
        [ $ok = 1 ] && passed=$((passed + 1))
        n=$((n + 1))
    done
done

echo "faults: $runs runs, $passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -eq $runs ]
