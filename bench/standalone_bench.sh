#!/bin/sh
# standalone_bench.sh - inference speed of the standalone file (cnnc --standalone, plain C,
# compiled with cc -O2 and nothing else) against the interpreter (cnnrun --bench), both at
# batch 1 on one thread: the deployment case. For each network: weights from one epoch on
# a tiny generated image set, the standalone file built with bench/sa_bench.c, then R
# interleaved rounds (standalone, cnnrun, standalone, ...) and each one's best round.
#
# usage: bench/standalone_bench.sh [--build DIR] [--rounds R] [--images N] [NET...]
#   NET       names in examples/ (default: fashion cnn1 cnn3 resnet_tiny mobilenet_tiny)
#             or paths of .cnn files
#   --images  images a standalone pass predicts (default 200; cnnrun runs as many steps)
# Prints one line per network: standalone and cnnrun images/s, their ratio, and the
# standalone's GFLOP/s (a multiply-add counts 2, as cnnc --summary does).

LC_ALL=C
export LC_ALL
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=${BUILD:-$top/build}
rounds=3
images=200
nets=
CC=${CC:-cc}
die() { echo "standalone_bench.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --build) [ $# -ge 2 ] || die "--build needs a value"; build=$2; shift 2 ;;
    --rounds) [ $# -ge 2 ] || die "--rounds needs a value"; rounds=$2; shift 2 ;;
    --images) [ $# -ge 2 ] || die "--images needs a value"; images=$2; shift 2 ;;
    -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) nets="$nets $1"; shift ;;
    esac
done
[ -n "$nets" ] || nets="fashion cnn1 cnn3 resnet_tiny mobilenet_tiny"
build=$(cd "$build" 2>/dev/null && pwd) || die "no build folder $build"  # it is used from a scratch folder
for p in cnnc cnnrun tests/gen_nets; do
    [ -x "$build/$p" ] || die "$build/$p is not built (make; make check builds tests/gen_nets; or --build DIR)"
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-sabench.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
printf '%-16s %12s %12s %8s %10s\n' network "sa img/s" "cnnrun img/s" "sa/run" "sa GFLOP/s"
for n in $nets; do
    case $n in *.cnn) cnn=$n ;; *) cnn=$top/examples/$n.cnn ;; esac
    [ -f "$cnn" ] || die "no such network: $n"
    d=$tmp/$(basename "$cnn" .cnn)
    mkdir -p "$d"
    "$build/cnnc" "$cnn" --ir >"$d/ir" || die "cnnc --ir $cnn failed"
    set -- $(awk '$2 == "input" { s = $8 "x" $9 "x" $10 } END { print s, $8 }' "$d/ir")
    shape=$1 k=$2
    name=$(awk 'NR == 1 && $5 == "network" { sub(/,$/, "", $6); print $6 }' "$d/ir")
    "$build/tests/gen_nets" images "$d/data" "$shape" "$k" 2 5 >/dev/null || die "gen_nets images failed"
    (cd "$d" && "$build/cnnrun" "$cnn" --train data --epochs 1 --batch 4 --threads 1 --no-cache --quiet \
        --out W >train.out 2>&1) || die "cnnrun --train $cnn failed: $(tail -n 3 "$d/train.out")"
    "$build/cnnc" "$cnn" --standalone --weights "$d/W" -o "$d/sa.c" 2>/dev/null || die "cnnc --standalone failed"
    $CC -O2 -DSA_FILE="\"$d/sa.c\"" -DSA_NAME="$name" "$here/sa_bench.c" -lm -o "$d/sa_bench" ||
        die "compiling the standalone file failed"
    flops=$("$build/cnnrun" "$cnn" --bench 1 --batch 1 --threads 1 2>/dev/null |
        awk '$1 == "bench" && $2 == "net" { for (i = 3; i < NF; i++) if ($i == "flops-per-image") print $(i + 1) }')
    best_sa=0 best_run=0 r=0
    while [ $r -lt "$rounds" ]; do
        sa=$("$d/sa_bench" "$images" | awk '{ print $3 }')
        run=$("$build/cnnrun" "$cnn" --bench "$images" --batch 1 --threads 1 2>/dev/null |
            awk '$2 == "infer" { print $4 }')
        best_sa=$(awk -v a="$best_sa" -v b="$sa" 'BEGIN { print (b > a ? b : a) }')
        best_run=$(awk -v a="$best_run" -v b="$run" 'BEGIN { print (b > a ? b : a) }')
        r=$((r + 1))
    done
    awk -v n="$name" -v s="$best_sa" -v c="$best_run" -v f="$flops" 'BEGIN {
        printf "%-16s %12.1f %12.1f %8.2f %10.2f\n", n, s, c, (c > 0 ? s / c : 0), s * f / 1e9 }'
done
