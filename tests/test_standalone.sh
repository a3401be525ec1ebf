#!/bin/sh
# test_standalone.sh - `cnnc --standalone` (inference in plain C with the weights baked in)
# against cnnrun. For examples/resnet_tiny.cnn, fashion.cnn, the four networks of the new
# kinds (mobilenet_tiny, dilated, resnet_proj, inception_tiny), tests/repro/standalone_no_conv.cnn,
# tests/repro/standalone_tails.cnn and CNNC_SA_NETS
# (default 12) random networks from tests/gen_nets: train one epoch with cnnrun on a tiny
# generated image set, generate the standalone file, compile it with -DNAME_MAIN
# -std=c11 -Wall -Wextra -Werror -pedantic linking only libc and libm (-nodefaultlibs -lc -lm,
# and ldd must list nothing else), then
#   - its main on the images (and on copies of other sizes, which it must resize as cnnrun
#     does) must give cnnrun --predict's class for every image and its
#     probability (cnnrun prints two decimals of a percent, the standalone four of the
#     probability: 1e-4 apart at most, plus 1e-4 for the two roundings);
#   - NAME_predict, built into tests/emit_sa_harness.c, on the inputs of a cnnrun --dump
#     with the same weights, must give the softmax of cnnrun's logits within 1e-5, and
#     NAME_predict_batch and NAME_predict_ctx (two contexts in turns) its exact bits; so
#     must each other copy of the file's loops (-DNAME_ONLY_AVX2 where the CPU has AVX2,
#     -DNAME_NO_CLONES: portable GNU C vectors, -DNAME_NO_VECTORS: plain C);
#   - sa.h is written beside sa.c, which includes it, and sa.c has no writable static but
#     NAME_predict's own context;
#   - its PGM/PPM reader: a 16-bit copy (maxval 4095) of an image gives cnnrun --predict's
#     class and probability; a cut-off copy, issue 14's 17-byte PGM and a maxval 0 file are
#     refused with "FILE: not a readable image (...)" and a nonzero exit.
# Under a sanitizer build ($SAN_CFLAGS) the standalone file is also run sanitized. Without
# clang on PATH the test fails unless CNNC_NO_CLANG=1.
# Last line: "standalone: N passed, M failed". Run by `make check` (see test_emit.sh).

LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "${top_srcdir:-$here/..}" && pwd) || exit 99
builddir=$(cd "${top_builddir:-$here/..}" && pwd) || exit 99
cnnc=$builddir/cnnc
cnnrun=$builddir/cnnrun
gen=$builddir/tests/gen_nets
harness_c=$srcdir/tests/emit_sa_harness.c
for p in "$cnnc" "$cnnrun" "$gen"; do
    if [ ! -x "$p" ]; then
        echo "test_standalone: $p is not built" >&2
        exit 99
    fi
done
[ -f "$harness_c" ] || { echo "test_standalone: $harness_c is missing" >&2; exit 99; }
CC=${CC:-cc}
SAN_CFLAGS=${SAN_CFLAGS:-}
nets=${CNNC_SA_NETS:-12}
seed=${CNNC_SA_SEED:-2}
limit=${CNNC_TEST_TIMEOUT:-120}
if command -v timeout >/dev/null 2>&1; then tlimit="timeout $limit"; else tlimit=; fi
have_clang=0
command -v clang >/dev/null 2>&1 && have_clang=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-standalone.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99
start=$(date +%s)

passed=0
failed=0
fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}
show() { sed 's/^/   | /' "$1" | head -n "${2:-12}" | cut -c 1-240; }
sanitized() { grep -a -q -e 'Sanitizer' -e 'runtime error:' "$@" 2>/dev/null; }

# Without clang the standalone files are not checked with it: said loudly, and a failure
# unless CNNC_NO_CLANG=1 (as test_emit.sh).
if [ $have_clang = 0 ]; then
    echo "test_standalone: *** clang is not installed: the standalone C is NOT checked with clang ***"
    if [ "${CNNC_NO_CLANG:-}" = 1 ]; then
        echo "test_standalone: CNNC_NO_CLANG=1: going on with $CC alone"
    else
        fail "clang missing (install clang, or set CNNC_NO_CLANG=1 to test with $CC alone)"
    fi
fi

# same_predictions SA_OUT RUN_OUT: for each image the standalone's "FILE: CLASS PROB" and
# cnnrun's "FILE: CLASS P%  (then CLASS2 P2%, ...)" agree; a different class is accepted only
# for a near tie (cnnrun's runner-up, less than 2e-4 below).
same_predictions() {
    awk -v tol=2e-4 '
        FNR == NR { cls[$1] = $2; p[$1] = $3; n++; next }
        {
            file = $1; seen++
            if (!(file in cls)) { print "no standalone line for " file; bad = 1; next }
            rp = $3; sub(/%$/, "", rp); rp /= 100
            d = p[file] - rp; if (d < 0) d = -d
            if (cls[file] == $2) {
                if (d > tol) { print file " probability " p[file] " vs " rp; bad = 1 }
            } else {
                second = $5; sp = $6; sub(/,$/, "", sp); sub(/\)$/, "", sp); sub(/%$/, "", sp); sp /= 100
                if (second != cls[file] || rp - sp > tol) {
                    print file " class " cls[file] " (" p[file] ") vs cnnrun " $2 " (" rp ")"; bad = 1
                }
            }
        }
        END { if (seen != n || n == 0) { print n " standalone lines, " seen " from cnnrun"; bad = 1 }; exit bad }
    ' "$1" "$2"
}

# pnm_inputs IN.pgm|ppm DIR: writes DIR/deep.EXT (IN as 16-bit samples, maxval 4095:
# v -> 16 v + v / 16), DIR/cut.EXT (deep less its last byte), DIR/issue14.pgm (header "P5",
# "8 4", maxval 275, 5 bytes of the 64 announced) and DIR/maxval0.pgm.
cat >pnm_inputs.c <<'PNMEOF'
#include <stdio.h>
#include <string.h>
static unsigned char in[1 << 22], out[1 << 23];
static int put(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    return !f || fwrite(p, 1, n, f) != n || fclose(f) != 0;
}
int main(int argc, char **argv)
{
    FILE *f = argc == 3 ? fopen(argv[1], "rb") : NULL;
    int w, h, maxv;
    char m;
    if (!f || fscanf(f, "P%c %d %d %d", &m, &w, &h, &maxv) != 4 || fgetc(f) == EOF || maxv != 255)
        return 1;
    size_t n = (size_t)w * h * (m == '6' ? 3 : 1);
    if (n > sizeof in || fread(in, 1, n, f) != n)
        return 1;
    int k = snprintf((char *)out, 64, "P%c\n%d %d\n4095\n", m, w, h);
    for (size_t i = 0; i < n; i++) {
        unsigned s = in[i] * 16u + in[i] / 16u;
        out[k++] = (unsigned char)(s >> 8);
        out[k++] = (unsigned char)s;
    }
    const char *ext = m == '6' ? "ppm" : "pgm";
    char deep[16], cut[16];
    snprintf(deep, sizeof deep, "deep.%s", ext);
    snprintf(cut, sizeof cut, "cut.%s", ext);
    static const char issue[] = "P5 \n8 4\n275\n\x01\x02\x03\x04\x05";
    return put(argv[2], deep, out, k) || put(argv[2], cut, out, k - 1)
           || put(argv[2], "issue14.pgm", issue, sizeof issue - 1)
           || put(argv[2], "maxval0.pgm", "P5 1 1 0\n\0", 10);
}
PNMEOF
if ! $CC -std=c11 -O1 pnm_inputs.c -o pnm_inputs >pnm_inputs.cc 2>&1; then
    echo "test_standalone: cannot compile its PGM/PPM helper" >&2
    cat pnm_inputs.cc >&2
    exit 99
fi

# only_libc_libm BINARY: ldd lists the C library, libm, the loader and the vDSO, nothing else
only_libc_libm() {
    ldd "$1" >ldd.out 2>&1 || return 1
    ! grep -v -E 'linux-vdso|linux-gate|ld-linux|ld64|libc\.so|libm\.so' ldd.out | grep -q .
}

check_sa() { # LABEL NET PER_CLASS DUMP_BATCH
    label=$1 net=$2 per=$3 batch=$4
    d=$tmp/$label
    mkdir -p "$d" || return
    t0=$(date +%s)
    if ! "$cnnc" "$net" --ir >"$d/ir" 2>"$d/ir.err" || [ -s "$d/ir.err" ]; then
        fail "$label: cnnc --ir failed"
        show "$d/ir.err"
        return
    fi
    set -- $(awk '$2 == "input" { s = $8 " " $9 " " $10 } END { print s, $8 }' "$d/ir")
    c=$1 h=$2 w=$3 k=$4
    name=$(awk 'NR == 1 && $5 == "network" { sub(/,$/, "", $6); print $6 }' "$d/ir")
    ds=$d/data
    mkdir -p "$ds" && "$gen" images "$ds" "${c}x${h}x${w}" "$k" "$per" 11 || {
        fail "$label: gen_nets images failed"
        return
    }
    # --- weights: one epoch with the interpreter (a small learning rate keeps the
    #     probabilities away from 0 and 1, where they would tell little)
    if ! (cd "$d" && $tlimit "$cnnrun" "$net" --train "$ds" --epochs 1 --batch 4 --seed 5 --threads 1 --no-cache \
        --optimizer adam --lr 0.001 --quiet --out W >train.out 2>&1) || sanitized "$d/train.out"; then
        fail "$label: cnnrun --train failed"
        show "$d/train.out"
        return
    fi
    # --- the standalone file, compiled four ways
    if ! $tlimit "$cnnc" "$net" --standalone --weights "$d/W" -o "$d/sa.c" >"$d/cnnc.out" 2>&1 || [ ! -s "$d/sa.c" ] ||
        sanitized "$d/cnnc.out"; then
        fail "$label: cnnc --standalone failed"
        show "$d/cnnc.out"
        return
    fi
    # --- its header beside it, and no writable static outside NAME_predict's own context
    #     (NAME_predict_ctx must be safe in two threads with two contexts)
    if [ ! -s "$d/sa.h" ] || ! grep -q "^#include \"sa.h\"" "$d/sa.c" || ! grep -q "_predict_batch(" "$d/sa.h"; then
        fail "$label: no sa.h with the interface beside sa.c, or sa.c does not include it"
        return
    fi
    statics=$(sed "/^#ifdef ${name}_MAIN/,\$d" "$d/sa.c" | grep -E '^[[:space:]]*static [^(]*;' | grep -v 'static const' |
        grep -v -x "    static ${name}_ctx ctx;")
    if [ -n "$statics" ]; then
        fail "$label: sa.c has writable statics besides ${name}_predict's context: $statics"
        return
    fi
    # gcc (only libc and libm), clang, the harness and the sanitized build side by side
    flags="-std=c11 -Wall -Wextra -Werror -pedantic -O2"
    # shellcheck disable=SC2086
    $CC $flags -D"${name}_MAIN" "$d/sa.c" -nodefaultlibs -lc -lm -o "$d/sa" >"$d/sa.cc" 2>&1 &
    p1=$!
    runs="sa"
    if [ $have_clang = 1 ]; then
        # shellcheck disable=SC2086
        clang $flags -D"${name}_MAIN" "$d/sa.c" -lm -o "$d/sa_clang" >"$d/sa_clang.cc" 2>&1 &
        p2=$!
        runs="$runs sa_clang"
    fi
    # the harness includes the file without its main, as a user's program would (sa_san,
    # below, runs the same code sanitized)
    # shellcheck disable=SC2086
    $CC $flags -DSA_FILE="\"$d/sa.c\"" -DSA_NAME="$name" "$harness_c" -lm -o "$d/harness" >"$d/harness.cc" 2>&1
    p3=$?
    if [ -n "$SAN_CFLAGS" ]; then
        # shellcheck disable=SC2086
        $CC $flags $SAN_CFLAGS -D"${name}_MAIN" "$d/sa.c" -lm -o "$d/sa_san" >"$d/sa_san.cc" 2>&1
        p4=$?
        runs="$runs sa_san"
    fi
    wait $p1
    p1=$?
    if [ $p1 -ne 0 ] || [ -s "$d/sa.cc" ]; then
        fail "$label: $CC -D${name}_MAIN ... -nodefaultlibs -lc -lm: failed or warned"
        show "$d/sa.cc"
        return
    fi
    if ! only_libc_libm "$d/sa"; then
        fail "$label: the standalone program needs more than libc and libm"
        show ldd.out
        return
    fi
    if [ $have_clang = 1 ]; then
        wait $p2
        p2=$?
        if [ $p2 -ne 0 ] || [ -s "$d/sa_clang.cc" ]; then
            fail "$label: clang -D${name}_MAIN: failed or warned"
            show "$d/sa_clang.cc"
            return
        fi
    fi
    if [ $p3 -ne 0 ] || [ -s "$d/harness.cc" ]; then
        fail "$label: compiling the harness with the standalone file failed or warned"
        show "$d/harness.cc"
        return
    fi
    if [ -n "$SAN_CFLAGS" ] && { [ $p4 -ne 0 ] || [ -s "$d/sa_san.cc" ]; }; then
        fail "$label: sanitized build failed or warned"
        show "$d/sa_san.cc"
        return
    fi
    # --- the images, by cnnrun and by each build of the standalone main: the training set
    #     and one image a class with the other channel count (grey into colour and back)
    oc=3
    [ "$c" = 3 ] && oc=1
    "$gen" images "$d/other" "${oc}x${h}x${w}" "$k" 1 13 || {
        fail "$label: gen_nets images failed"
        return
    }
    # and images of other sizes, which both must resize alike (rt_resize_impl.h): larger
    # (the area pass, then the tent filter down) and smaller (the tent filter up)
    "$gen" images "$d/big" "${c}x$((2 * h + 3))x$((3 * w + 1))" "$k" 1 17 &&
        "$gen" images "$d/small" "${c}x$(((h + 1) / 2))x$((w - w / 3))" "$k" 1 19 || {
        fail "$label: gen_nets images (other sizes) failed"
        return
    }
    find "$ds" "$d/other" "$d/big" "$d/small" -type f | sort >"$d/images"
    # shellcheck disable=SC2046
    if ! $tlimit "$cnnrun" "$net" --predict $(cat "$d/images") --weights "$d/W" --threads 1 >"$d/run.out" 2>"$d/run.err" ||
        sanitized "$d/run.err"; then
        fail "$label: cnnrun --predict failed"
        show "$d/run.err"
        return
    fi
    for r in $runs; do
        # shellcheck disable=SC2046
        if ! $tlimit "$d/$r" $(cat "$d/images") >"$d/$r.out" 2>"$d/$r.err" || sanitized "$d/$r.err"; then
            fail "$label: $r failed on the images"
            show "$d/$r.err"
            return
        fi
        if ! same_predictions "$d/$r.out" "$d/run.out" >"$d/cmp.out"; then
            fail "$label: $r and cnnrun --predict disagree"
            show "$d/cmp.out"
            return
        fi
    done
    # --- 16-bit and broken PGM/PPM files
    mkdir -p "$d/pnm" && ./pnm_inputs "$(head -n 1 "$d/images")" "$d/pnm" || {
        fail "$label: pnm_inputs failed"
        return
    }
    deep=$(ls "$d"/pnm/deep.*)
    if ! $tlimit "$cnnrun" "$net" --predict "$deep" --weights "$d/W" --threads 1 >"$d/deep.run" 2>"$d/deep.err" ||
        sanitized "$d/deep.err"; then
        fail "$label: cnnrun --predict on a 16-bit PGM/PPM failed"
        show "$d/deep.err"
        return
    fi
    for r in $runs; do
        if ! $tlimit "$d/$r" "$deep" >"$d/$r.deep" 2>"$d/$r.err" || sanitized "$d/$r.err" ||
            ! same_predictions "$d/$r.deep" "$d/deep.run" >"$d/cmp.out"; then
            fail "$label: $r on a 16-bit PGM/PPM: failed or disagrees with cnnrun"
            show "$d/$r.err"
            show "$d/cmp.out"
            return
        fi
        for bad in $(ls "$d"/pnm/cut.*) "$d/pnm/issue14.pgm" "$d/pnm/maxval0.pgm"; do
            $tlimit "$d/$r" "$bad" >"$d/$r.bad" 2>"$d/$r.err"
            rc=$?
            if [ $rc -eq 0 ] || [ $rc -gt 2 ] || sanitized "$d/$r.err" || [ -s "$d/$r.bad" ] ||
                ! grep -q "^$bad: not a readable image (" "$d/$r.err"; then
                fail "$label: $r on $(basename "$bad"): exit $rc, expected 1 and \"FILE: not a readable image (...)\""
                show "$d/$r.err"
                return
            fi
        done
    done
    # --- full precision on a random batch
    if ! (cd "$d" && $tlimit "$cnnrun" "$net" --dump D --weights W --seed 9 --batch "$batch" >dump.out 2>&1) ||
        sanitized "$d/dump.out"; then
        fail "$label: cnnrun --dump --weights failed"
        show "$d/dump.out"
        return
    fi
    if ! $tlimit "$d/harness" "$d/D" 1e-5 >"$d/h.out" 2>&1 || sanitized "$d/h.out"; then
        fail "$label: NAME_predict and cnnrun's logits disagree"
        show "$d/h.out"
        return
    fi
    # --- the file's other copies of its loops, on the same dump: AVX2 (when the CPU has
    #     it), the portable 4-float vectors (NAME_NO_CLONES) and plain C (NAME_NO_VECTORS)
    for v in ONLY_AVX2 NO_CLONES NO_VECTORS; do
        [ $v = ONLY_AVX2 ] && ! grep -q -w avx2 /proc/cpuinfo 2>/dev/null && continue
        # shellcheck disable=SC2086
        if ! $CC $flags -D"${name}_$v" -DSA_FILE="\"$d/sa.c\"" -DSA_NAME="$name" "$harness_c" -lm -o "$d/h_$v" \
            >"$d/h_$v.cc" 2>&1 || [ -s "$d/h_$v.cc" ]; then
            fail "$label: the harness with -D${name}_$v failed or warned"
            show "$d/h_$v.cc"
            return
        fi
        if ! $tlimit "$d/h_$v" "$d/D" 1e-5 >"$d/h_$v.out" 2>&1; then
            fail "$label: NAME_predict built with -D${name}_$v and cnnrun's logits disagree"
            show "$d/h_$v.out"
            return
        fi
    done
    nimg=$(wc -l <"$d/images")
    echo "ok   $label (${c}x${h}x${w}, $k classes): $nimg images same class and probability ($runs);" \
        "16-bit PGM/PPM agrees, 3 broken ones refused;" \
        "dump: $(head -n 1 "$d/h.out") (and the AVX2, NO_CLONES, NO_VECTORS copies), $(($(date +%s) - t0)) s"
    passed=$((passed + 1))
    rm -rf "$d"
}

check_sa resnet_tiny "$srcdir/examples/resnet_tiny.cnn" 2 4
check_sa fashion "$srcdir/examples/fashion.cnn" 2 8
check_sa mobilenet_tiny "$srcdir/examples/mobilenet_tiny.cnn" 2 4
check_sa dilated "$srcdir/examples/dilated.cnn" 2 4
check_sa resnet_proj "$srcdir/examples/resnet_proj.cnn" 2 4
check_sa inception_tiny "$srcdir/examples/inception_tiny.cnn" 2 4
# no conv, no activation: the file's unused helpers must not warn (found by gen_nets)
check_sa no_conv "$srcdir/tests/repro/standalone_no_conv.cnn" 2 4
# row tails of whole vectors that compute columns again, poolings on vectors of pairs
check_sa tails "$srcdir/tests/repro/standalone_tails.cnn" 2 3
mkdir -p nets
if "$gen" nets nets "$seed" "$nets" >nets.list; then
    while read -r file _rest; do
        check_sa "${file%.cnn}" "$tmp/nets/$file" 4 8
    done <nets.list
else
    fail "gen_nets nets failed"
fi

# A missing weights file writes nothing.
"$cnnc" "$srcdir/examples/fashion.cnn" --standalone --weights "$tmp/none" -o none.c >out 2>&1
rc=$?
if [ $rc -ne 1 ] || [ -e none.c ]; then
    fail "--standalone with a missing weights file: exit $rc (expected 1) or wrote none.c"
else
    echo "ok   --standalone with a missing weights file: exit 1, nothing written"
    passed=$((passed + 1))
fi

echo "time: $(($(date +%s) - start)) s"
echo "standalone: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
