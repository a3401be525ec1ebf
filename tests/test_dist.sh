#!/bin/sh
# test_dist.sh - the MPI tests on 2 ranks of this machine (oversubscribed: 2 cores are shared):
# the order-fixed sums of runtime/dist/, that a failing rank stops the job naming itself, and
# that training on 2 ranks matches one process (same epoch losses; repeated runs same bits).
# Skipped (exit 77, with the reason) when the build has no MPI.
set -u
b=${top_builddir:-.}
if ! grep -q '^#define HAVE_MPI 1' "$b/config.h" 2>/dev/null; then
    echo "SKIP: built without MPI (configure found no Open MPI; Debian: apt-get install openmpi-bin libopenmpi-dev)"
    exit 77
fi
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not on PATH"; exit 77; }
# root in containers and CI; --oversubscribe: 2 ranks on fewer cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe -np 2"
# Open MPI leaks in MPI_Init/MPI_Finalize (libmpi and its dlopen'ed components): in the
# sanitizer build LeakSanitizer is off for these runs; AddressSanitizer and UBSan stay on
# (our own leaks are covered by the one-process tests, which run the same code)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; export ASAN_OPTIONS
pass=0; fail=0
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*"; }

out=$($MPIRUN "$b/tests/test_dist" 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] && ok || ko "test_dist exited $rc"
[ "$(echo "$out" | grep -c ', 0 failed$')" -eq 2 ] && ok || ko "both ranks should report 0 failed"

# a rank that fails stops every rank, and the message names it
out=$(CNNC_DIST_FAIL_RANK=1 $MPIRUN "$b/tests/test_dist" 2>&1); rc=$?
[ $rc -ne 0 ] && ok || ko "a failing rank should fail the job"
echo "$out" | grep -q "rank 1 of 2: told to fail" && ok || ko "the message should name rank 1: $out"

# training: 2 ranks give the 1-process epoch losses (printed to 4 decimals), and two 2-rank
# runs give bit-identical weights (the sums run in a fixed order)
cnnrun=$b/cnnrun; gen=$b/tests/gen_nets
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-dist.XXXXXX") || exit 99
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
cat > "$tmp/d.cnn" <<'EON'
network d
input 1x8x8
conv 3x3 4 relu pad=same
maxpool 2x2
flatten
dense 16 relu
dense 3
EON
"$gen" images "$tmp/ds" 1x8x8 3 30 5 >/dev/null || ko "gen_nets images failed"
train() { # OUT_PREFIX [mpirun...]
    o=$1; shift
    "$@" "$cnnrun" "$tmp/d.cnn" --train "$tmp/ds" --epochs 3 --batch 16 --split 8:2:0 --seed 4 \
        --optimizer sgd --lr 0.1 --threads 1 --no-cache --out "$tmp/$o.w" >"$tmp/$o.log" 2>&1
}
train one || ko "1-process training failed: $(tail -n 3 "$tmp/one.log")"
train two $MPIRUN || ko "2-rank training failed: $(tail -n 3 "$tmp/two.log")"
train again $MPIRUN || ko "2-rank training failed again: $(tail -n 3 "$tmp/again.log")"
# (mpirun gives rank 0 a terminal: the progress bar's carriage returns become line ends)
tr '\r' '\n' <"$tmp/one.log" | grep '^epoch [0-9]*/[0-9]*  train' | sed 's/  *[0-9.]*s .*//' >"$tmp/one.ep"
tr '\r' '\n' <"$tmp/two.log" | grep '^epoch [0-9]*/[0-9]*  train' | sed 's/  *[0-9.]*s .*//' >"$tmp/two.ep"
[ "$(wc -l <"$tmp/one.ep")" -eq 3 ] && ok || ko "1-process run printed no 3 epoch lines"
cmp -s "$tmp/one.ep" "$tmp/two.ep" && ok || ko "epoch losses differ: $(paste -d'|' "$tmp/one.ep" "$tmp/two.ep")"
grep -q "MPI: 2 ranks x 1 thread" "$tmp/two.log" && ok || ko "no '2 ranks x 1 thread' line"
[ -s "$tmp/two.w" ] && cmp -s "$tmp/two.w" "$tmp/again.w" && ok || ko "two 2-rank runs gave different weights"
[ "$(tr '\r' '\n' <"$tmp/two.log" | grep -c '^epoch 1/3  train')" -eq 1 ] && ok || ko "rank 1 printed too (or nobody did)"

echo "test_dist: $pass passed, $fail failed"
[ $fail -eq 0 ]
