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
# (timeout: a deadlock between ranks fails the test instead of stalling the suite)
MPIRUN="timeout 300 mpirun --oversubscribe -np 2"
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


# --- sync batchnorm and dropout: 20 steps of a network with both give one process's losses
# to 1e-5 relative on 2 ranks (each step's global-batch loss, CNNRT_TEST_STEP_LOSSES), the
# epoch losses within 1 %; a compiled program on 2 ranks gives the interpreter's bits
cat > "$tmp/bn.cnn" <<'EON'
network bn
input 1x8x8
conv 3x3 8 pad=same
batchnorm
relu
maxpool 2x2
conv 3x3 8 relu pad=same
batchnorm
flatten
dropout 0.3
dense 16 relu
dense 3
EON
# (a learning rate that keeps the losses between 1 and 0.02 over the 20 steps: far smaller
# losses would make a relative tolerance meaningless)
bntrain() { # NAME PROGRAM [mpirun...]: 4 epochs of 5 steps (72 training images, batch 16)
    o=$1; p=$2; shift 2
    rm -f "$tmp/$o.steps"
    CNNRT_TEST_STEP_LOSSES="$tmp/$o.steps" "$@" $p --train "$tmp/ds" --epochs 4 --batch 16 \
        --split 8:2:0 --seed 4 --optimizer sgd --lr 0.01 --momentum 0.9 --threads 1 \
        --cache-dir "$tmp/cache" --out "$tmp/$o.w" >"$tmp/$o.log" 2>&1
}
printf 'P5\n8 8\n255\n' > "$tmp/ds/c0/cut.pgm" # a bad image: warned once, by the rank that decoded it
bntrain bn1 "$cnnrun $tmp/bn.cnn" || ko "1-process batchnorm training failed: $(tail -n 3 "$tmp/bn1.log")"
rm -rf "$tmp/cache"
bntrain bn2 "$cnnrun $tmp/bn.cnn" $MPIRUN || ko "2-rank batchnorm training failed: $(tail -n 3 "$tmp/bn2.log")"
[ "$(wc -l <"$tmp/bn1.steps")" -eq 20 ] && [ "$(wc -l <"$tmp/bn2.steps")" -eq 20 ] && ok ||
    ko "want 20 step losses from each run: $(wc -l "$tmp/bn1.steps" "$tmp/bn2.steps")"
worst=$(paste "$tmp/bn1.steps" "$tmp/bn2.steps" | awk '{ d = ($3 - $6) / $3; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g", m }')
awk -v w="$worst" 'BEGIN { exit !(w <= 1e-5) }' && ok || ko "2-rank step losses differ by $worst relative (> 1e-5)"
awk -v w="$worst" 'BEGIN { exit !(w > 0) }' && ok || ko "2-rank step losses are bit-identical to one process's: is the sum over ranks running?"
ep() { tr '\r' '\n' <"$1" | awk '/^epoch [0-9]+\/[0-9]+  train/ { print $5 }'; }
ep "$tmp/bn1.log" >"$tmp/bn1.ep"; ep "$tmp/bn2.log" >"$tmp/bn2.ep"
[ "$(wc -l <"$tmp/bn1.ep")" -eq 4 ] && paste "$tmp/bn1.ep" "$tmp/bn2.ep" |
    awk '{ d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > 0.01) bad = 1 } END { exit bad }' && ok ||
    ko "epoch losses differ by more than 1 %: $(paste -d'|' "$tmp/bn1.ep" "$tmp/bn2.ep" | tr '\n' ' ')"
[ "$(grep -c 'cut.pgm' "$tmp/bn2.log")" -eq 1 ] && ok || ko "the bad image should be named once on 2 ranks: $(grep cut.pgm "$tmp/bn2.log")"
[ "$(ls "$tmp/cache" | wc -l)" -eq 1 ] && ok || ko "one decode cache file expected: $(ls "$tmp/cache")"
bntrain bn3 "$cnnrun $tmp/bn.cnn" $MPIRUN || ko "2-rank run from the cache failed: $(tail -n 3 "$tmp/bn3.log")"
cmp -s "$tmp/bn2.w" "$tmp/bn3.w" && ok || ko "2-rank runs (decoded, then cached) gave different weights"
if "$b/cnnc" "$tmp/bn.cnn" -o "$tmp/bn.c" >"$tmp/cc.log" 2>&1 &&
    ${CC:-cc} -O2 ${SAN_CFLAGS:-} "$tmp/bn.c" -I"${top_srcdir:-.}/runtime/include" -L"$b/.libs" -lcnnrt -lm \
        -Wl,-rpath,"$b/.libs" -o "$tmp/bnprog" >>"$tmp/cc.log" 2>&1; then
    bntrain bnc "$tmp/bnprog" $MPIRUN || ko "2-rank compiled program failed: $(tail -n 3 "$tmp/bnc.log")"
    cmp -s "$tmp/bnc.steps" "$tmp/bn2.steps" && cmp -s "$tmp/bnc.w" "$tmp/bn2.w" && ok ||
        ko "the compiled program on 2 ranks differs from cnnrun on 2 ranks"
else
    ko "cannot build the compiled program: $(tail -n 5 "$tmp/cc.log")"
fi

# 3 ranks: uneven slices of each batch (16 = 6 + 5 + 5), the same losses to 1e-5
bntrain bn3r "$cnnrun $tmp/bn.cnn" timeout 300 mpirun --oversubscribe -np 3 ||
    ko "3-rank batchnorm training failed: $(tail -n 3 "$tmp/bn3r.log")"
worst3=$(paste "$tmp/bn1.steps" "$tmp/bn3r.steps" | awk '{ d = ($3 - $6) / $3; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g", m }')
[ "$(wc -l <"$tmp/bn3r.steps")" -eq 20 ] && awk -v w="$worst3" 'BEGIN { exit !(w <= 1e-5) }' && ok ||
    ko "3-rank step losses differ by $worst3 relative (> 1e-5)"

# a wide batchnorm (1100 channels: its backward sums 2 x 1100 statistics the long way) while
# the gradient sum of the big dense layer above it is already running: same losses, no hang
cat > "$tmp/wide.cnn" <<'EON'
network wide
input 1x8x8
conv 3x3 1100 pad=same bias=false
batchnorm
relu
maxpool 2x2
flatten
dense 16 relu
dense 3
EON
widetrain() { # NAME [mpirun...]
    o=$1; shift
    rm -f "$tmp/$o.steps"
    CNNRT_TEST_STEP_LOSSES="$tmp/$o.steps" "$@" "$cnnrun" "$tmp/wide.cnn" --train "$tmp/ds" --epochs 1 \
        --batch 16 --split 8:2:0 --seed 4 --optimizer sgd --lr 0.05 --threads 1 --no-cache \
        --out "$tmp/$o.w" >"$tmp/$o.log" 2>&1
}
widetrain w1 || ko "1-process wide training failed: $(tail -n 3 "$tmp/w1.log")"
widetrain w2 $MPIRUN || ko "2-rank wide training failed (exit $?): $(tail -n 3 "$tmp/w2.log")"
worstw=$(paste "$tmp/w1.steps" "$tmp/w2.steps" | awk '{ d = ($3 - $6) / $3; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g", m }')
[ "$(wc -l <"$tmp/w2.steps")" -eq 5 ] && awk -v w="$worstw" 'BEGIN { exit !(w <= 1e-5) }' && ok ||
    ko "wide batchnorm on 2 ranks: step losses differ by $worstw relative"

# --- --bench on 2 ranks with batchnorm: the job's rate and the share of communication
$MPIRUN "$cnnrun" "$tmp/bn.cnn" --bench 3 --batch 8 --threads 1 >"$tmp/bench.log" 2>&1 || ko "--bench on 2 ranks failed"
grep -q '^bench net bn .* ranks 2$' "$tmp/bench.log" && grep -q '^bench job images/s [0-9.]* (2 ranks x batch 8) communication [0-9.]*% ' "$tmp/bench.log" &&
    ok || ko "--bench on 2 ranks: $(cat "$tmp/bench.log")"

# --- a rank killed after epoch 2: the job stops naming it, and the checkpoint resumes to
# the weights of an uninterrupted 2-rank run
CNNRT_TEST_KILL_AFTER_EPOCH=2:KILL@1 bntrain kill "$cnnrun $tmp/bn.cnn" $MPIRUN
rc=$?
[ $rc -ne 0 ] && grep -q "rank 1" "$tmp/kill.log" && ok || ko "killed rank 1: exit $rc, $(tail -n 5 "$tmp/kill.log")"
$MPIRUN "$cnnrun" "$tmp/bn.cnn" --resume "$tmp/kill.ckpt" >"$tmp/resume.log" 2>&1 || ko "--resume on 2 ranks after a killed rank: $(tail -n 3 "$tmp/resume.log")"
cmp -s "$tmp/kill.w" "$tmp/bn2.w" && ok || ko "resumed after a killed rank: the weights differ from an uninterrupted run's"
# SIGTERM to rank 1 alone: every rank stops after the same batch, rank 0 says how to resume
CNNRT_TEST_KILL_AFTER_EPOCH=1@1 bntrain term "$cnnrun $tmp/bn.cnn" $MPIRUN
rc=$?
[ $rc -eq 130 ] && grep -q "resume with: mpirun ... " "$tmp/term.log" && ok || ko "SIGTERM to rank 1: exit $rc, $(tail -n 4 "$tmp/term.log")"
$MPIRUN "$cnnrun" "$tmp/bn.cnn" --resume "$tmp/term.ckpt" >"$tmp/resume2.log" 2>&1 &&
    cmp -s "$tmp/term.w" "$tmp/bn2.w" && ok || ko "resumed after SIGTERM: $(tail -n 3 "$tmp/resume2.log")"

# --- a rank that cannot read its data (here: given another folder) stops the job, named
A="$tmp/d.cnn --epochs 1 --batch 16 --threads 1 --no-cache --out $tmp/f.w"
timeout 300 mpirun --oversubscribe -np 1 "$cnnrun" $A --train "$tmp/ds" : -np 1 "$cnnrun" $A --train "$tmp/nothere" >"$tmp/fail.log" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "rank 1 of 2: .*nothere" "$tmp/fail.log" && grep -q "rank 1 of 2: failed with exit status 1" "$tmp/fail.log" &&
    ok || ko "a rank without its data: exit $rc, $(head -n 4 "$tmp/fail.log")"

echo "test_dist: $pass passed, $fail failed"
[ $fail -eq 0 ]
