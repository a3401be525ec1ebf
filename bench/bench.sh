#!/bin/sh
# bench.sh - training and inference speed of the lecture's five networks (examples/mlp,
# cnn1..cnn4; input 3x128x128) with the cnnc interpreter (`cnnrun NET --bench`) and with
# the same architecture in PyTorch (bench/torch_bench.py), side by side in one table; with
# --extra, more implementations that print the same "bench ..." lines (e.g. the programs
# cnnc compiles) get columns of their own. See bench/README.md for reading the output.
#
# usage: bench/bench.sh [--steps N] [--repeat R] [--batch B] [--threads T] [--build DIR] [--profile]
#                       [--no-torch] [--extra 'LABEL[@NET]:COMMAND']... [NET...]
#   NET       names in examples/ (default: mlp cnn1 cnn2 cnn3 cnn4) or paths of .cnn files
#   --extra   COMMAND is run as `COMMAND STEPS --batch B --threads T`, after replacing
#             {net} by the network's name and {cnn} by its .cnn path; with @NET only for
#             that network. E.g. --extra 'compiled:./{net} --bench' or
#             --extra 'compiled@cnn4:./cnn4 --bench'
#   --repeat  run every implementation R times, in rounds (cnnrun, torch, extras; then
#             torch, extras, cnnrun; then extras, cnnrun, torch; ...), and report each
#             one's best round; each run's rate is already the median of its STEPS steps
#   --profile also per-layer forward/backward milliseconds of cnnrun and PyTorch, and our
#             1024^3 SGEMM rate with each layer's forward and backward GFLOP/s as a share of it
#             (bench/nets/ holds vgg_bn64 and resnet_bn32, issue 9's batchnorm networks)
# Defaults: 5 steps, batch 32, 2 threads, build folder $BUILD or /tmp/build-bench.
# The python is /usr/bin/python3 (Debian's, with torch), or $PYTHON.

LC_ALL=C
export LC_ALL
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=${BUILD:-/tmp/build-bench}
python=${PYTHON:-/usr/bin/python3}
steps=5
repeat=1
batch=32
threads=2
profile=
torch=1
extras=
nets=

die() { echo "bench.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --steps) [ $# -ge 2 ] || die "--steps needs a value"; steps=$2; shift 2 ;;
    --repeat) [ $# -ge 2 ] || die "--repeat needs a value"; repeat=$2; shift 2 ;;
    --batch) [ $# -ge 2 ] || die "--batch needs a value"; batch=$2; shift 2 ;;
    --threads) [ $# -ge 2 ] || die "--threads needs a value"; threads=$2; shift 2 ;;
    --build) [ $# -ge 2 ] || die "--build needs a value"; build=$2; shift 2 ;;
    --extra) [ $# -ge 2 ] || die "--extra needs a value"
        case $2 in *:*) ;; *) die "--extra wants LABEL[@NET]:COMMAND, not '$2'" ;; esac
        extras="$extras$2
"
        shift 2 ;;
    --profile) profile=--profile; shift ;;
    --no-torch) torch=; shift ;;
    -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) nets="$nets $1"; shift ;;
    esac
done
[ -n "$nets" ] || nets="mlp cnn1 cnn2 cnn3 cnn4"
case $steps in ''|*[!0-9]*|0) die "--steps wants a whole number from 1, not '$steps'" ;; esac
case $repeat in ''|*[!0-9]*|0) die "--repeat wants a whole number from 1, not '$repeat'" ;; esac
[ -x "$build/cnnrun" ] || die "$build/cnnrun is not built (use --build DIR or \$BUILD)"
out=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-bench.XXXXXX") || exit 1

# value KEY FILE WHAT: the largest number after KEY on FILE's "bench WHAT" lines (one
# per round: the best round), or "-"
value() {
    awk -v key="$1" -v what="$3" '$1 == "bench" && $2 == what {
        for (i = 3; i < NF; i++) if ($i == key && (!found || $(i + 1) + 0 > best + 0)) {
            best = $(i + 1); found = 1 } }
        END { print found ? best : "-" }' "$2"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-";
                                           else printf "%.2f", a / b }'; }

# the table header: fixed columns, then two per extra label
labels=$(printf '%s' "$extras" | sed 's/[@:].*//' | awk '!seen[$0]++')
head="| model | cnnrun train img/s | torch train img/s | ratio | cnnrun infer img/s | torch infer img/s | ratio | cnnrun GFLOP/s train / infer |"
rule="|---|---:|---:|---:|---:|---:|---:|---:|"
for l in $labels; do
    head="$head $l train img/s | $l infer img/s |"
    rule="$rule---:|---:|"
done
rows=

t0=$(date +%s)
for net in $nets; do
    case $net in
    *.cnn) cnn=$net; net=$(basename "$net" .cnn) ;;
    *) cnn=$top/examples/$net.cnn ;;
    esac
    [ -f "$cnn" ] || die "no network file $cnn"
    : >"$out/$net.cnnrun"
    : >"$out/$net.torch"
    for l in $labels; do : >"$out/$net.extra-$l"; done
    # rounds: every implementation once per round, so a slow spell hits them all alike; the
    # order turns by one each round (cnnrun torch extras, torch extras cnnrun, ...), so that
    # none always runs right after the same other
    run_cnnrun() {
        echo "== $net: cnnrun (round $round of $repeat)" >&2
        "$build/cnnrun" "$cnn" --bench "$steps" --batch "$batch" --threads "$threads" $profile \
            >>"$out/$net.cnnrun" 2>&1 || echo "bench.sh: cnnrun failed on $net, see $out/$net.cnnrun" >&2
    }
    run_torch() {
        [ -n "$torch" ] || return 0
        echo "== $net: torch (round $round of $repeat)" >&2
        BUILD=$build "$python" "$here/torch_bench.py" "$cnn" --bench "$steps" --batch "$batch" \
            --threads "$threads" $profile >>"$out/$net.torch" 2>&1 ||
            echo "bench.sh: torch_bench.py failed on $net, see $out/$net.torch" >&2
    }
    run_extras() {
        printf '%s' "$extras" | while IFS= read -r spec; do
            sl=${spec%%:*}
            cmd=${spec#*:}
            only=
            case $sl in *@*) only=${sl#*@}; sl=${sl%%@*} ;; esac
            [ -z "$only" ] || [ "$only" = "$net" ] || continue
            cmd=$(printf '%s' "$cmd" | sed "s|{net}|$net|g; s|{cnn}|$cnn|g")
            echo "== $net: $sl (round $round of $repeat): $cmd $steps --batch $batch --threads $threads" >&2
            sh -c "$cmd $steps --batch $batch --threads $threads" >>"$out/$net.extra-$sl" 2>&1 ||
                echo "bench.sh: '$cmd' failed on $net, see $out/$net.extra-$sl" >&2
        done
    }
    round=1
    while [ "$round" -le "$repeat" ]; do
        case $(( (round - 1) % 3 )) in
        0) run_cnnrun; run_torch; run_extras ;;
        1) run_torch; run_extras; run_cnnrun ;;
        2) run_extras; run_cnnrun; run_torch ;;
        esac
        round=$((round + 1))
    done
    ct=$(value images/s "$out/$net.cnnrun" train)
    ci=$(value images/s "$out/$net.cnnrun" infer)
    tt=$(value images/s "$out/$net.torch" train)
    ti=$(value images/s "$out/$net.torch" infer)
    row="| $net | $ct | $tt | $(ratio "$ct" "$tt") | $ci | $ti | $(ratio "$ci" "$ti") | $(value gflops "$out/$net.cnnrun" train) / $(value gflops "$out/$net.cnnrun" infer) |"
    for l in $labels; do
        f=$out/$net.extra-$l
        row="$row $(value images/s "$f" train) | $(value images/s "$f" infer) |"
    done
    rows="$rows$row
"
done
t1=$(date +%s)

echo
echo "Speed at batch $batch, $threads threads, median of $steps timed steps after warm-up, best of $repeat round(s) ($(uname -m), $(nproc) cores):"
echo "ratio = cnnrun / torch (above 1: cnnrun faster)"
echo
echo "$head"
echo "$rule"
printf '%s' "$rows"
if [ -n "$profile" ]; then
    for net in $nets; do
        net=$(basename "$net" .cnn)
        echo
        echo "Per-layer ms for a batch of $batch, each layer alone ($net); our 1024^3 SGEMM in the same run:" \
            "$(value gflops "$out/$net.cnnrun" gemm) GFLOP/s (best round); % GEMM: the layer's GFLOP/s as a share of it:"
        echo "| layer | cnnrun fwd | torch fwd | cnnrun bwd | torch bwd | cnnrun fwd GFLOP/s | fwd % GEMM | cnnrun bwd GFLOP/s | bwd % GEMM |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        awk '
            FNR == 1 { file++ }
            $1 == "bench" && $2 == "layer" {
                id = $3 " " $4 " " $5
                for (i = 6; i < NF; i++) v[$i] = $(i + 1)
                if (file == 1) { order[++n] = id; cf[id] = v["fwd-ms"]; cb[id] = v["bwd-ms"]; cg[id] = v["fwd-gflops"]
                                 cfp[id] = v["fwd-gemm-pct"]; cbg[id] = v["bwd-gflops"]; cbp[id] = v["bwd-gemm-pct"] }
                else { tf[id] = v["fwd-ms"]; tb[id] = v["bwd-ms"] }
            }
            END { for (k = 1; k <= n; k++) { id = order[k]
                    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", id, cf[id], (id in tf) ? tf[id] : "-",
                           cb[id], (id in tb) ? tb[id] : "-", cg[id], cfp[id], cbg[id], cbp[id] } }' \
            "$out/$net.cnnrun" "$out/$net.torch"
    done
fi
echo
echo "($((t1 - t0)) s; raw output in $out)"
