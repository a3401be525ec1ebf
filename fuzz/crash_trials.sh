#!/bin/sh
# crash_trials.sh - kill -9 at random moments of a short training that checkpoints every
# epoch (issue 12's crash tests), TRIALS times (default 100): after each kill the last
# checkpoint must load and `--resume` must finish with weights identical (cmp) to an
# uninterrupted run's; a kill before the first checkpoint must leave none (or a whole one).
# Minutes of work: run by hand, not by make check.
#   usage: fuzz/crash_trials.sh [BUILD_DIR] [TRIALS]
LC_ALL=C
export LC_ALL
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd) || exit 2
trials=${2:-100}
cnnrun=$build/cnnrun
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-crash.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2
"$build/tests/gen_nets" images data 1x16x16 4 150 3 >/dev/null || exit 2
cat > n.cnn <<'EOF2'
network n
input 1x16x16
conv 3x3 8 relu pad=same
batchnorm
maxpool 2x2
dropout 0.2
flatten
dense 4
train {
    optimizer adam lr=0.003
    batch 4
    epochs 5
    augment hflip crop=2
}
EOF2
run() { "$cnnrun" n.cnn --no-cache --threads 1 "$@"; }
t0=$(date +%s.%N)
run --train data --out full.weights --quiet >/dev/null 2>&1 || { echo "the uninterrupted run failed"; exit 1; }
span=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
echo "crash trials: an uninterrupted run takes ${span}s; $trials trials, each killed at a random moment in it"
ok=0 bad=0 early=0 seed=1
i=0
while [ $i -lt "$trials" ]; do
    i=$((i + 1))
    rm -f t.weights t.ckpt
    # cnnrun itself in the background (not a function's subshell), so the kill reaches it
    "$cnnrun" n.cnn --no-cache --threads 1 --train data --out t.weights --quiet >/dev/null 2>&1 &
    pid=$!
    wait_s=$(awk -v s="$span" -v i="$i" 'BEGIN { srand(i); printf "%.3f", rand() * s }')
    sleep "$wait_s"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if [ ! -e t.ckpt ]; then
        early=$((early + 1))
        continue
    fi
    if run --resume t.ckpt >r.out 2>&1 || grep -q "finished all its" r.out; then
        if [ -e t.weights ] && cmp -s t.weights full.weights; then ok=$((ok + 1)); else
            bad=$((bad + 1)); echo "trial $i (killed after ${wait_s}s): resumed weights differ"; fi
    else
        bad=$((bad + 1)); echo "trial $i (killed after ${wait_s}s): --resume failed:"; sed 's/^/   | /' r.out | head -5
    fi
done
echo "crash trials: $trials trials: $ok resumed to identical weights, $early killed before the first checkpoint, $bad failed"
[ $bad -eq 0 ]
