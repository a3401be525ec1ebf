/*
 * fuzz_image.c - libFuzzer target for the runtime's image decoding: every input goes
 * through rt_image_decode_mem, the function the set loaders and --predict use on a file's
 * bytes (format check, size cap, JPEG table check, stb_image or the PNM decoder, channel
 * conversion, resizing). Built by fuzz/build.sh (`make fuzz`) with ASan and UBSan.
 */
#include "rt_image_int.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The channel count varies with the input's length so that every req_comp
     * conversion (1 to 4) is reached; 16x16 makes most inputs go through the resize. */
    static uint8_t out[4 * 16 * 16];
    char err[RT_ERRLEN];
    rt_shape shape = {(int)(size % 4) + 1, 16, 16};
    rt_image_decode_mem(data, size, "fuzz", shape, out, err);
    return 0;
}
