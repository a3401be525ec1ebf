#!/bin/sh
# test_cli_tools.sh - `cnnrun NET --bench` and `cnnrun NET --dump` end to end on tiny
# networks: the bench lines and their FLOP count (worked out by hand below), the profile
# lines, the dump's size and header for the layout documented in runtime/cli/rt_cli_dump.c,
# determinism for a seed, eval vs training mode, exit status 2 for usage errors, and
# --help and --version (the version configure.ac gives).
# Run from the build tree by `make check` (top_srcdir, top_builddir come from the Makefile).

LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
builddir=${top_builddir:-$here/..}
builddir=$(cd "$builddir" && pwd) || exit 99
srcdir=$(cd "${top_srcdir:-$here/..}" && pwd) || exit 99
cnnrun=$builddir/cnnrun
if [ ! -x "$cnnrun" ]; then
    echo "test_cli_tools: $cnnrun is not built" >&2
    exit 99
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-clitools.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { # check WHAT COMMAND...: passes when the command succeeds
    what=$1
    shift
    if "$@"; then ok; else fail "$what"; fi
}

# Forward FLOPs per image by the rule of src/front/shape.c (multiply-add 2; bias, activation,
# pooling window element, residual add, batchnorm scale or shift 1 per output element):
#   conv 3x3 2 relu on 1x6x6 -> 2x4x4 (32 outputs): 2*1*9*32 + 32 bias + 32 relu = 640
#   batchnorm on 32 values: 2*32 = 64
#   maxpool 2x2 -> 2x2x2 (8 outputs): 4*8 = 32
#   dropout, flatten: 0
#   dense 3 tanh bias=false on 8 inputs: 2*8*3 + 3 tanh = 51            total 787
# Parameters: conv 18 + 2, batchnorm 2 + 2, dense 24: 48; state: batchnorm 2 + 2 = 4.
cat > tiny.cnn <<'EOF'
network tiny
input 1x6x6
conv 3x3 2 relu
batchnorm
maxpool 2x2
dropout 0.5
flatten
dense 3 tanh bias=false
EOF
#   conv 3x3 2 pad=same bias=false on 2x5x5 -> 2x5x5 (50): 2*2*9*50 = 1800
#   residual { relu }: the relu 50 + the add 50 = 100
#   avgpool 3x3 stride=2 pad=1 -> 2x3x3 (18 outputs): 9*18 = 162
#   globalmaxpool on 18 values: 18
#   dense 4 sigmoid on 2 inputs: 2*2*4 + 4 bias + 4 sigmoid = 24           total 2104
cat > flops.cnn <<'EOF'
network flops
input 2x5x5
conv 3x3 2 pad=same bias=false
residual { relu }
avgpool 3x3 stride=2 pad=1
globalmaxpool
dense 4 sigmoid
EOF

# ------------------------------------------------------------ --bench
"$cnnrun" tiny.cnn --bench 1 --batch 2 --threads 1 >out.txt 2>err.txt
rc=$?
check "--bench exits 0 (got $rc: $(cat err.txt))" test "$rc" -eq 0
num='[0-9][0-9]*\(\.[0-9]*\)\{0,1\}'
check "--bench prints the train line" grep -q "^bench train images/s $num gflops $num " out.txt
check "--bench prints the infer line" grep -q "^bench infer images/s $num gflops $num" out.txt
check "--bench counts 787 FLOPs per image for tiny" \
    grep -q "^bench net tiny params 48 input 1x6x6 classes 3 flops-per-image 787 batch 2 " out.txt
check "--bench states that training counts 3x the forward" grep -q "3x the forward" out.txt
check "--bench prints nothing on stderr" test ! -s err.txt
"$cnnrun" flops.cnn --bench 1 --batch 1 --threads 1 >out.txt 2>err.txt
check "--bench counts 2104 FLOPs per image for flops.cnn" \
    grep -q "^bench net flops .* flops-per-image 2104 " out.txt

"$cnnrun" tiny.cnn --bench 1 --batch 2 --threads 1 --profile >out.txt 2>err.txt
rc=$?
check "--profile exits 0 (got $rc: $(cat err.txt))" test "$rc" -eq 0
check "--profile prints one line per layer (6)" test "$(grep -c '^bench layer ' out.txt)" -eq 6
check "--profile names the first layer" \
    grep -q "^bench layer 1 conv 2x4x4 line 3 mflops 0.001 fwd-ms $num bwd-ms $num " out.txt
check "--profile prints its sums" grep -q "^bench profile fwd-ms $num bwd-ms $num optimizer-ms" out.txt

# ------------------------------------------------------------ --dump
# u32 at byte offset $2 of file $1, little-endian, from single bytes (host independent)
u32() {
    set -- $(od -An -tu1 -j "$2" -N 4 "$1")
    echo $(($1 + 256 * $2 + 65536 * $3 + 16777216 * $4))
}
# Size: 48 header + x 4*2*36 + labels 4*2 + logits 4*2*3 + loss 8 + params and grads 2*4*48
# + state before and after 2*4*4 = 48 + 288 + 8 + 24 + 8 + 384 + 32 = 792.
"$cnnrun" tiny.cnn --dump a.bin --seed 5 --batch 2 --threads 1 >out.txt 2>err.txt
rc=$?
check "--dump exits 0 (got $rc: $(cat err.txt))" test "$rc" -eq 0
check "--dump writes 792 bytes (got $(wc -c <a.bin))" test "$(wc -c <a.bin)" -eq 792
check "--dump starts with CNND" test "$(head -c 4 a.bin)" = CNND
check "version 1" test "$(u32 a.bin 4)" -eq 1
check "n 2" test "$(u32 a.bin 8)" -eq 2
check "c h w 1 6 6" test "$(u32 a.bin 12) $(u32 a.bin 16) $(u32 a.bin 20)" = "1 6 6"
check "3 classes" test "$(u32 a.bin 24)" -eq 3
check "eval mode" test "$(u32 a.bin 28)" -eq 0
check "48 parameters (u64)" test "$(u32 a.bin 32) $(u32 a.bin 36)" = "48 0"
check "4 state values (u64)" test "$(u32 a.bin 40) $(u32 a.bin 44)" = "4 0"
check "labels 0 1 (i % k) after x" test "$(u32 a.bin 336) $(u32 a.bin 340)" = "0 1"
# eval mode leaves the running statistics alone: state before == state after
check "eval mode: state after == state before" \
    test "$(od -An -tx1 -j 760 -N 16 a.bin)" = "$(od -An -tx1 -j 776 -N 16 a.bin)"
# the initial running variance is 1.0f = 0x3f800000 (mean 0 first, then variance)
check "initial running variance 1" test "$(u32 a.bin 768)" -eq 1065353216

"$cnnrun" tiny.cnn --dump b.bin --seed 5 --batch 2 --threads 1 >/dev/null 2>&1
check "the same seed gives the same dump" cmp -s a.bin b.bin
"$cnnrun" tiny.cnn --dump c.bin --seed 6 --batch 2 --threads 1 >/dev/null 2>&1
check "another seed gives another dump" test "$(cmp -s a.bin c.bin; echo $?)" -eq 1
"$cnnrun" tiny.cnn --dump t.bin --seed 5 --batch 2 --threads 1 --train-mode >/dev/null 2>&1
check "--train-mode is recorded" test "$(u32 t.bin 28)" -eq 1
check "--train-mode: the same x" \
    test "$(od -An -tx1 -j 48 -N 288 a.bin)" = "$(od -An -tx1 -j 48 -N 288 t.bin)"
check "--train-mode moves the running statistics" \
    test "$(od -An -tx1 -j 760 -N 16 t.bin)" != "$(od -An -tx1 -j 776 -N 16 t.bin)"

"$cnnrun" tiny.cnn --dump nodir/x.bin >out.txt 2>err.txt
rc=$?
check "an unwritable dump file exits 1 (got $rc)" test "$rc" -eq 1
check "... naming the file" grep -q "nodir/x.bin" err.txt

# ------------------------------------------------------------ usage errors exit 2
usage() { # usage WHAT-STDERR-HAS ARGS...
    want=$1
    shift
    "$cnnrun" tiny.cnn "$@" >out.txt 2>err.txt
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q -- "$want" err.txt; then
        ok
    else
        fail "cnnrun tiny.cnn $* exits $rc (want 2), stderr: $(cat err.txt)"
    fi
}
usage "--bench needs a value" --bench
usage "--dump needs a value" --dump
usage "--bench needs a value" --bench --batch 2
usage "--bench: '0' is not valid" --bench 0
usage "--bench: 'x' is not valid" --bench x
usage "--batch: '0' is not valid" --bench 1 --batch 0
usage "--profile does not apply to --dump" --dump f.bin --profile
usage "--train-mode does not apply to --bench" --bench 1 --train-mode
usage "--lr does not apply to --bench" --bench 1 --lr 0.1
usage "--weights does not apply to --bench" --bench 1 --weights w
usage "choose one of" --bench 1 --dump f.bin
usage "given twice" --dump a --dump b
check "no dump file after usage errors" test ! -e f.bin

# ------------------------------------------------------------ --help, --version
"$cnnrun" --help >out.txt 2>err.txt
rc=$?
check "--help exits 0 (got $rc)" test "$rc" -eq 0
check "--help writes nothing on stderr" test ! -s err.txt
check "--help starts with the usage" grep -q "^usage: cnnrun NET.cnn --train DIR" out.txt
check "--help shows --eval and --predict" grep -q -e "^ *cnnrun NET.cnn --eval DIR" out.txt
check "--help points to NET.cnn --help" grep -q "'cnnrun NET.cnn --help' lists every option" out.txt
# with a network: every option, and the defaults of its train section (tiny has none)
"$cnnrun" tiny.cnn --help >out.txt 2>err.txt
rc=$?
check "tiny.cnn --help exits 0 (got $rc)" test "$rc" -eq 0
check "tiny.cnn --help writes nothing on stderr" test ! -s err.txt
for mode in --train --eval --predict --bench --dump; do
    check "tiny.cnn --help shows the $mode usage" grep -q "^.*cnnrun tiny.cnn $mode " out.txt
done
for opt in --epochs --batch --optimizer --lr --momentum --weight-decay --augment --out \
    --report --plot --split --seed --cache-dir --no-cache --all --bench --profile --dump \
    --train-mode --weights --threads --quiet --help --version \
    --schedule --warmup --step-every --step-gamma --plateau-patience --plateau-factor \
    --stop-patience --betas --nesterov --clip-norm --label-smoothing; do
    check "tiny.cnn --help describes $opt" grep -q -e "^  $opt " out.txt
done
check "tiny.cnn --help names the default weights file" grep -q "default tiny.weights" out.txt
version=$(sed -n 's/^AC_INIT(\[cnnc\], \[\([^]]*\)\].*/\1/p' "$srcdir/configure.ac")
"$cnnrun" --version >out.txt 2>err.txt
rc=$?
check "--version exits 0 (got $rc)" test "$rc" -eq 0
check "--version prints 'cnnrun $version' (got '$(cat out.txt)')" \
    test -n "$version" -a "$(cat out.txt)" = "cnnrun $version"
check "--version writes nothing on stderr" test ! -s err.txt

echo "test_cli_tools: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
