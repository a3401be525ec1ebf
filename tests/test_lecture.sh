#!/bin/sh
# test_lecture.sh - the lecture's strided, padded convolution end to end, through all three
# ways of running a network: `cnnrun --dump`, the program `cnnc -o` generates, and the
# `cnnc --standalone` file. The network is one layer, `conv 2x2 1 pad=1 stride=3x2
# bias=false` on a 1x3x3 input, its weights set to 0 1 2 3 (tests/set_weights).
#
# Worked by hand: the image 0..8 padded with zeros is the 5x5
#     0 0 0 0 0 / 0 0 1 2 0 / 0 3 4 5 0 / 0 6 7 8 0 / 0 0 0 0 0
# and the kernel [[0 1] [2 3]] moves 3 rows down and 2 columns across: output 2x2
# ((5-2)/3+1 = 2, (5-2)/2+1 = 2), windows at rows 0,3 and columns 0,2:
#     (0,0): 0 0 / 0 0                         -> 0
#     (0,1): 0 0 / 1 2  -> 2*1 + 3*2           -> 8
#     (1,0): 0 6 / 0 0  -> 1*6                 -> 6
#     (1,1): 7 8 / 0 0  -> 0*7 + 1*8           -> 8          [[0 8] [6 8]]
# For any image x the same windows give [3 x00, 2 x01 + 3 x02, x20, x22]: that is what the
# dumps (random images) must hold; the standalone file is run on the image 0..8 itself and
# must give logits 0 8 6 8 (seen through its softmax: log(p_k / p_0) = 8, 6, 8).
# Last line "lecture: N passed, M failed".

LC_ALL=C
export LC_ALL
here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "${top_srcdir:-$here/..}" && pwd) || exit 99
builddir=$(cd "${top_builddir:-$here/..}" && pwd) || exit 99
cnnc=$builddir/cnnc
cnnrun=$builddir/cnnrun
gen=$builddir/tests/gen_nets
setw=$builddir/tests/set_weights
cmpdump=$builddir/tests/cmp_dump
for p in "$cnnc" "$cnnrun" "$gen" "$setw" "$cmpdump"; do
    [ -x "$p" ] || { echo "test_lecture: $p is not built" >&2; exit 99; }
done
CC=${CC:-cc}
SAN_CFLAGS=${SAN_CFLAGS:-}
PKG_CONFIG_PATH=$builddir/runtime${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
if ! rtflags=$(${PKG_CONFIG:-pkg-config} --cflags --libs cnnrt-uninstalled); then
    echo "test_lecture: pkg-config finds no cnnrt-uninstalled.pc in $builddir/runtime" >&2
    exit 99
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-lecture.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { # check WHAT COMMAND...
    what=$1
    shift
    if "$@"; then ok; else fail "$what"; fi
}

cat > lecture.cnn <<'EOF'
network lecture
input 1x3x3
conv 2x2 1 pad=1 stride=3x2 bias=false
flatten
EOF

# a weights file of the right structure (one epoch on a tiny set), then the weights 0 1 2 3
"$gen" images ds 1x3x3 4 2 11 >/dev/null &&
    "$cnnrun" lecture.cnn --train ds --epochs 1 --batch 2 --split 1:0:0 --threads 1 --quiet \
        --out trained.weights >train.log 2>&1 &&
    "$setw" trained.weights lecture.weights 0 1 2 3
rc=$?
check "weights 0 1 2 3 written (exit $rc: $(tail -n 3 train.log))" test $rc -eq 0
check "set_weights refuses too few values" sh -c '! "$1" trained.weights x.weights 0 1 2 2>/dev/null' sh "$setw"

# dump_is_lecture FILE: params 0 1 2 3 and, for both images, logits = the formula above
dump_is_lecture() {
    [ "$(wc -c <"$1")" -eq 200 ] || { echo "   | $1: $(wc -c <"$1") bytes, expected 200"; return 1; }
    { od -An -v -tf4 -j 48 -N 72 "$1"; od -An -v -tf4 -j 128 -N 32 "$1"; od -An -v -tf4 -j 168 -N 16 "$1"; } |
        tr -s ' \n' '\n\n' | grep . | awk '
        { v[NR - 1] = $1 + 0 }
        function near(a, b) { return (a - b < 0 ? b - a : a - b) <= 1e-5 * (1 + (b < 0 ? -b : b)) }
        END {
            if (NR != 30) { print "   | " NR " values read, expected 30"; exit 1 }
            for (k = 0; k < 4; k++)
                if (!near(v[26 + k], k)) { print "   | weight " k " is " v[26 + k]; exit 1 }
            for (s = 0; s < 2; s++) {
                x = 9 * s; l = 18 + 4 * s
                want[0] = 3 * v[x]; want[1] = 2 * v[x + 1] + 3 * v[x + 2]
                want[2] = v[x + 6]; want[3] = v[x + 8]
                for (k = 0; k < 4; k++)
                    if (!near(v[l + k], want[k])) {
                        print "   | image " s " logit " k " is " v[l + k] ", by hand " want[k]; exit 1 }
            }
        }'
}

"$cnnrun" lecture.cnn --dump run.dump --weights lecture.weights --batch 2 --seed 3 \
    --threads 1 >run.log 2>&1
check "cnnrun --dump runs ($(tail -n 2 run.log))" test $? -eq 0
check "cnnrun --dump gives the lecture's numbers" dump_is_lecture run.dump

"$cnnc" lecture.cnn -o lecture.c >cnnc.log 2>&1 &&
    # shellcheck disable=SC2086
    $CC -std=c11 -O2 $SAN_CFLAGS lecture.c $rtflags -o lecture >cc.log 2>&1
rc=$?
check "the generated program builds ($(tail -n 3 cnnc.log cc.log))" test $rc -eq 0
./lecture --dump gen.dump --weights lecture.weights --batch 2 --seed 3 --threads 1 >gen.log 2>&1
check "the generated program's --dump runs ($(tail -n 2 gen.log))" test $? -eq 0
check "the generated program gives the lecture's numbers" dump_is_lecture gen.dump
check "the generated program's dump equals cnnrun's" "$cmpdump" run.dump gen.dump 1e-6 -q

# cmp_dump's negative controls: a logit off in its last bit passes 1e-6 but not 0 and is not
# called bit-identical; a gradient off by far fails; a truncated file is malformed (2)
patch() { # patch FILE OFFSET BYTE(octal): overwrite one byte
    printf "\\$3" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
cp run.dump ulp.dump && cp run.dump far.dump
b=$(od -An -v -to1 -j 128 -N 1 run.dump | tr -d ' ')
patch ulp.dump 128 "$(printf '%03o' $(( (0$b) ^ 1 )))"
patch far.dump 199 101
head -c 150 run.dump >short.dump
"$cmpdump" run.dump ulp.dump 1e-6 -q >cmp1.out 2>&1
check "cmp_dump accepts a 1-ulp logit at 1e-6" test $? -eq 0
check "cmp_dump does not call it bit-identical" sh -c '! grep -q "^bit-identical" cmp1.out'
"$cmpdump" run.dump ulp.dump 0 -q >/dev/null 2>&1
check "cmp_dump rejects a 1-ulp logit at tolerance 0" test $? -eq 1
"$cmpdump" run.dump far.dump 1e-6 -q >/dev/null 2>&1
check "cmp_dump rejects a wrong gradient" test $? -eq 1
"$cmpdump" run.dump short.dump 1e-6 -q >/dev/null 2>&1
check "cmp_dump calls a truncated dump malformed" test $? -eq 2

cat > harness.c <<'EOF'
#include "lecture_sa.c"
#include <math.h>
#include <stdio.h>
int main(void)
{
    const float img[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    float p[4];
    if (lecture_predict(img, p) < 0)
        return 2;
    for (int k = 1; k < 4; k++)
        printf("%.6f\n", log((double)p[k] / p[0]));
    return 0;
}
EOF
"$cnnc" lecture.cnn --standalone --weights lecture.weights -o lecture_sa.c >sa.log 2>&1 &&
    # shellcheck disable=SC2086
    $CC -std=c11 -O2 $SAN_CFLAGS harness.c -lm -o harness >>sa.log 2>&1
rc=$?
check "the standalone file builds ($(tail -n 3 sa.log))" test $rc -eq 0
./harness >sa.out 2>&1
check "the standalone file runs ($(head -n 2 sa.out))" test $? -eq 0
check "the standalone file gives logits 0 8 6 8 on the image 0..8 (log-ratios: $(tr '\n' ' ' <sa.out))" \
    awk 'BEGIN { w[1] = 8; w[2] = 6; w[3] = 8 }
         { d = $1 - w[NR]; if (d < 0) d = -d; if (d > 1e-4) bad = 1 }
         END { exit bad || NR != 3 }' sa.out

echo "lecture: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
