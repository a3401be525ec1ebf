#!/bin/sh
# fuzz/build.sh - builds the libFuzzer target for the runtime's image decoding (fuzz_image.c
# with rt_image*.c and the stb_image of rt_stb.c, all under ASan+UBSan) and the seed
# generator, and writes the seeds. Run by `make fuzz` (never by the default build or
# `make check`). Needs clang with libFuzzer (Debian: clang libclang-rt-14-dev).
#   usage: fuzz/build.sh [OUTDIR]   (default: fuzz-out in the current folder)
#   FUZZ_TIME=S also runs the target for S seconds on one core, new inputs in OUTDIR/corpus.
set -e
srcdir=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-fuzz-out}
mkdir -p "$out/corpus" "$out/seeds"
out=$(cd "$out" && pwd)
CLANG=${CLANG:-clang}
stb=$(pkg-config --cflags stb)
flags="-g -O2 -std=c11 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -fno-omit-frame-pointer"
san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
rt=$srcdir/runtime/data
inc="-I$srcdir/runtime/include -I$srcdir/runtime/data -I$srcdir/runtime/kernels"
# The pixel cap is lowered to 2^14 here (the side cap stays 16384): the same checks and
# decoders, but a 4 KB file announcing 2^25 pixels would be decoded (from zeros) for
# seconds, and the fuzzer spent its time there.
#
# Two checks are reported and not fatal inside stb_image only, both in the JPEG entropy
# decoder and both out of reach of any check made before decoding (they depend on the
# coded data itself; upstream fixed them after Debian's 2022 snapshot):
#  - a shift by 24 - code_bits after code_bits went negative at the end of corrupt data
#    (the shifted value is then always 0: past a marker it feeds zero bytes);
#  - signed overflow of the DC coefficient times its quantiser (dc * dequant[0]), which
#    rt_stb.c is compiled with -fwrapv for (defined wrap-around, then cut to a short).
# fuzz/known/ holds an input for each. The run's log lists each place once ("runtime
# error"): any other place is a finding.
$CLANG $flags $san -fsanitize-recover=shift-exponent,signed-integer-overflow -fwrapv \
    -DRT_IMAGE_FILE_MAX_PIXELS='(1L << 14)' $inc $stb -c "$rt/rt_stb.c" -o "$out/rt_stb.o"
$CLANG $flags $san -DRT_IMAGE_FILE_MAX_PIXELS='(1L << 14)' $inc $stb -o "$out/fuzz_image" \
    "$srcdir/fuzz/fuzz_image.c" "$rt/rt_image.c" "$rt/rt_image_check.c" "$rt/rt_image_pnm.c" \
    "$out/rt_stb.o" "$rt/rt_data_util.c" -lz -lm
# Progressive JPEG seeds need libjpeg (Debian: libjpeg-dev); without it, baseline only.
jpeg=
if printf '#include <stdio.h>\n#include <jpeglib.h>\nint main(void){return 0;}\n' \
    | $CLANG -x c - -ljpeg -o "$out/.jpegtest" 2>/dev/null; then
    jpeg="-DSEED_LIBJPEG -ljpeg"
fi
rm -f "$out/.jpegtest"
$CLANG $flags $stb -o "$out/gen_seeds" "$srcdir/fuzz/gen_seeds.c" -lz $jpeg
"$out/gen_seeds" "$out/seeds"
echo "fuzz: built $out/fuzz_image; seeds in $out/seeds and $srcdir/fuzz/corpus"
if [ -n "${FUZZ_TIME:-}" ]; then
    "$out/fuzz_image" -max_total_time="$FUZZ_TIME" -max_len=4096 -print_final_stats=1 \
        "$out/corpus" "$out/seeds" "$srcdir/fuzz/corpus"
fi

# The readers' targets (fuzz_readers.c, one per reader): the whole runtime and front end
# built once more by clang with ASan, UBSan and libFuzzer's coverage, static, in OUTDIR/obj.
# FUZZ_RUNS=N runs each target N executions on its seeds (the short run CI makes).
obj=$out/obj
mkdir -p "$obj"
(cd "$obj" && { [ -f Makefile ] || "$srcdir/configure" -q --disable-shared --without-mpi CC="$CLANG" \
        CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"; } &&
    make -s -j2 grammar/cnn_parse.h grammar/cnn_lex.h src/gen/resize_text.h &&
    make -s -j2 libcnnrt.la libcnnfront.la) >"$out/obj.log" 2>&1 ||
    { echo "fuzz: building the instrumented libraries failed (see $out/obj.log)"; exit 1; }
for t in cnn weights checkpoint idx csv cache; do
    T=$(echo "$t" | tr a-z A-Z)
    $CLANG $flags $san -DTARGET_$T $inc -I"$srcdir/src/front" -I"$srcdir/src" -I"$obj/grammar" \
        -I"$srcdir/grammar" -o "$out/fuzz_$t" "$srcdir/fuzz/fuzz_readers.c" \
        "$obj/.libs/libcnnfront.a" "$obj/.libs/libcnnrt.a" -lz -lm -lpthread
    mkdir -p "$out/corpus_$t"
    [ $t = cnn ] || FUZZ_WRITE_SEED="$out/corpus_$t" "$out/fuzz_$t" >/dev/null 2>&1 ||
        { echo "fuzz: fuzz_$t could not write its seed"; exit 1; }
done
# seeds: the examples and tests for .cnn; files the tests write for the rest
cp "$srcdir"/examples/*.cnn "$srcdir"/tests/invalid/*.cnn "$out/corpus_cnn/" 2>/dev/null
echo "fuzz: built $out/fuzz_cnn, fuzz_weights, fuzz_checkpoint, fuzz_idx, fuzz_csv, fuzz_cache"
if [ -n "${FUZZ_RUNS:-}" ]; then
    for t in cnn weights checkpoint idx csv cache; do
        extra=
        [ $t = cnn ] && extra="-dict=$srcdir/fuzz/cnn.dict"
        "$out/fuzz_$t" -runs="$FUZZ_RUNS" -max_len=4096 $extra -print_final_stats=1 -artifact_prefix="$out/" \
            "$out/corpus_$t" >"$out/run_$t.log" 2>&1 ||
            { echo "fuzz: fuzz_$t found a crash:"; tail -n 30 "$out/run_$t.log"; exit 1; }
        echo "fuzz: fuzz_$t $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/run_$t.log" | grep -o '[0-9]*$') runs, $(grep -o 'cov: [0-9]*' "$out/run_$t.log" | tail -n 1), no crash"
    done
fi
