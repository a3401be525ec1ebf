/*
 * set_weights.c - writes chosen values into a cnnc weights file (doc/weights-format.md), for
 * tests that need a network with weights worked out by hand (test_lecture.sh):
 *   set_weights IN OUT V1 V2 ...   every float of IN's tensors, in file order, replaced by
 *                                  V1 V2 ... (exactly as many as IN holds), CRC-32 redone
 * A reader of the documented format written independently of runtime/files/rt_weights.c, with its
 * own bitwise CRC-32 (zlib's polynomial). Exit status 0 written, 2 bad input or usage.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* CRC-32, reflected polynomial 0xEDB88320, as zlib's crc32 */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

static int bad(const char *why)
{
    fprintf(stderr, "set_weights: %s\n", why);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return bad("usage: set_weights IN OUT V1 V2 ...");
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return bad("cannot open the input");
    static unsigned char b[1 << 20];
    size_t len = fread(b, 1, sizeof b, f);
    fclose(f);
    if (len < 40 || len == sizeof b || memcmp(b, "CNNW", 4) != 0)
        return bad("not a weights file (or too large)");
    uint64_t body = rd32(b + 16) | (uint64_t)rd32(b + 20) << 32;
    if (body != len - 40)
        return bad("the body length does not match the file");
    uint32_t tensors = rd32(b + 24), names = rd32(b + 28);
    size_t at = 32, end = 32 + (size_t)body;
    /* the network name, then the class names: u32 length and bytes each */
    for (uint32_t i = 0; i < names + 1; i++) {
        if (at + 4 > end || rd32(b + at) > end - at - 4)
            return bad("a name runs past the body");
        at += 4 + rd32(b + at);
    }
    int next = 3;
    for (uint32_t t = 0; t < tensors; t++) {
        if (at + 12 > end)
            return bad("a tensor header runs past the body");
        uint32_t dims = rd32(b + at + 8);
        at += 12;
        if (dims < 1 || dims > 4 || at + 4 * dims > end)
            return bad("bad tensor dimensions");
        uint64_t count = 1;
        for (uint32_t d = 0; d < dims; d++, at += 4)
            count *= rd32(b + at);
        if (count > (end - at) / 4)
            return bad("tensor values run past the body");
        for (uint64_t i = 0; i < count; i++, at += 4) {
            if (next >= argc)
                return bad("fewer values given than the file holds");
            float v = strtof(argv[next++], NULL);
            uint32_t u;
            memcpy(&u, &v, 4);
            wr32(b + at, u);
        }
    }
    if (at != end)
        return bad("bytes after the last tensor");
    if (next != argc)
        return bad("more values given than the file holds");
    wr32(b + end, crc32_of(b, end));
    f = fopen(argv[2], "wb");
    if (!f || fwrite(b, 1, len, f) != len || fclose(f) != 0)
        return bad("cannot write the output");
    return 0;
}
