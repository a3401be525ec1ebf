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
