/*
 * test_image.c - unit tests of the image checks and decoders of libcnnrt (rt_image*.c): the
 * two inputs of issue 14 (a truncated 16-bit PGM, a JPEG whose Huffman table has more than
 * 256 codes) and the fuzzer's findings (tests/images/) are refused with a message and
 * skipped by the set loader; PGM/PPM samples are scaled exactly (worked out by hand below);
 * the format check and the size cap. Run sanitized (--enable-sanitizers), an invalid access
 * inside stb_image fails the test, since stb_image is compiled into the runtime.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <stb_image_write.h> /* Debian's libstb, to write test JPEGs and PNGs */

#include "rt_image_int.h"
#include "rt_resize_impl.h" /* the resizing rule itself (static functions) */

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "."
#endif

static char root[256];

static void setup_root(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/cnnc-test-image-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        abort();
    }
}

static void teardown_root(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "test_image: could not remove %s\n", root);
}

static const char *P(const char *rel)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

static void put(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    unsigned char *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Decodes bytes through the file path of the runtime; returns rt_image_decode's result. */
static int decode_bytes(const void *p, size_t n, rt_shape shape, uint8_t *out, char *err)
{
    put(P("img"), p, n);
    return rt_image_decode(P("img"), shape, out, err);
}

/* Checks a refusal: -1 and "FILE: not a readable image (...REASON...)". */
static void assert_refused(const void *p, size_t n, rt_shape shape, const char *reason)
{
    uint8_t out[4 * 16 * 16];
    char err[RT_ERRLEN] = "";
    ck_assert_int_eq(decode_bytes(p, n, shape, out, err), -1);
    char want[RT_ERRLEN];
    snprintf(want, sizeof want, "%s: not a readable image (", P("img"));
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "message: %s", err);
    ck_assert_msg(strstr(err, reason) != NULL, "message %s lacks %s", err, reason);
}

/* ------------------------------------------------------------------ issue 14 */

/* "P5", "8 4", maxval 275 (so 2 bytes a sample: 64 bytes of data), then 5 bytes: 17 in all. */
static const char issue_pgm[] = "P5 \n8 4\n275\n\x01\x02\x03\x04\x05";

START_TEST(issue14_pgm_refused)
{
    ck_assert_uint_eq(sizeof issue_pgm - 1, 17);
    assert_refused(issue_pgm, 17, (rt_shape){3, 8, 8}, "PNM truncated");
    assert_refused(issue_pgm, 17, (rt_shape){3, 8, 8}, "need 64 bytes, the file has 5");
}
END_TEST

/* A 16x16 RGB JPEG from stb_image_write, its first Huffman table given 16, 255 and 255 codes
 * of 14, 15 and 16 bits on top of its own (the counts sum past 256). */
static unsigned char *make_jpeg(size_t *n)
{
    unsigned char rgb[16 * 16 * 3];
    for (int i = 0; i < (int)sizeof rgb; i++)
        rgb[i] = (unsigned char)(i * 7);
    ck_assert(stbi_write_jpg(P("src.jpg"), 16, 16, 3, rgb, 90));
    return slurp(P("src.jpg"), n);
}

static size_t find_marker(const unsigned char *p, size_t n, unsigned char m)
{
    for (size_t i = 2; i + 1 < n; i++)
        if (p[i] == 0xff && p[i + 1] == m)
            return i;
    ck_abort_msg("no marker 0x%02x", m);
    return 0;
}

START_TEST(issue14_jpeg_huffman_refused)
{
    size_t n;
    unsigned char *jpg = make_jpeg(&n);
    uint8_t out[3 * 8 * 8];
    char err[RT_ERRLEN];
    ck_assert_msg(decode_bytes(jpg, n, (rt_shape){3, 8, 8}, out, err) == 0, "%s", err);
    size_t dht = find_marker(jpg, n, 0xc4);
    unsigned char *counts = jpg + dht + 5; /* FF C4, length (2), class/id, 16 counts */
    int sum = 0;
    counts[13] = 16;
    counts[14] = 255;
    counts[15] = 255;
    for (int i = 0; i < 16; i++)
        sum += counts[i];
    ck_assert_int_gt(sum, 256);
    assert_refused(jpg, n, (rt_shape){3, 8, 8}, "Huffman table with");
    free(jpg);
}
END_TEST

START_TEST(jpeg_undefined_table_refused)
{
    size_t n;
    unsigned char *jpg = make_jpeg(&n);
    size_t sos = find_marker(jpg, n, 0xda);
    jpg[sos + 6] = 0x33; /* first component: DC and AC table 3, never defined */
    assert_refused(jpg, n, (rt_shape){3, 8, 8}, "undefined Huffman table");
    free(jpg);
}
END_TEST

/* The fuzzer's findings (fuzz/fuzz_image.c), each refused before stb_image decodes it. */
START_TEST(fuzz_findings_refused)
{
    static const struct { const char *file, *reason; } cases[] = {
        {"fuzz_jpeg_junk_then_bad_huffman.jpg", "Huffman table with"},
        {"fuzz_jpeg_undefined_huffman.jpg", "undefined Huffman table"},
        {"fuzz_png_huge_chunk.png", "past the end of the file"},
        {"fuzz_png_empty_first_idat.png", "empty first IDAT chunk"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1024];
        size_t n;
        snprintf(path, sizeof path, "%s/tests/images/%s", TEST_SRCDIR, cases[i].file);
        unsigned char *p = slurp(path, &n);
        for (int c = 1; c <= 4; c++)
            assert_refused(p, n, (rt_shape){c, 16, 16}, cases[i].reason);
        free(p);
    }
}
END_TEST

/* The set loader skips both issue-14 files with "PATH: not a readable image (...); skipped"
 * and keeps the good images. */
START_TEST(loader_skips_with_warning)
{
    size_t n;
    unsigned char *jpg = make_jpeg(&n);
    size_t dht = find_marker(jpg, n, 0xc4);
    jpg[dht + 5 + 15] = 255;
    jpg[dht + 5 + 14] = 255;
    ck_assert_int_eq(mkdir(P("set"), 0755), 0);
    ck_assert_int_eq(mkdir(P("set/a"), 0755), 0);
    ck_assert_int_eq(mkdir(P("set/b"), 0755), 0);
    unsigned char grey[4] = {0, 85, 170, 255};
    ck_assert(stbi_write_png(P("set/a/good.png"), 2, 2, 1, grey, 2));
    ck_assert(stbi_write_png(P("set/b/good.png"), 2, 2, 1, grey, 2));
    put(P("set/a/bad.pgm"), issue_pgm, 17);
    put(P("set/b/bad.jpg"), jpg, n);
    free(jpg);

    fflush(stderr);
    int fd = open(P("stderr.txt"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    int saved = dup(2);
    dup2(fd, 2);
    close(fd);
    rt_load_opts opts;
    rt_load_opts_defaults(&opts);
    opts.use_cache = 0;
    opts.threads = 2;
    rt_dataset ds;
    char err[RT_ERRLEN];
    int rc = rt_dataset_load(P("set"), (rt_shape){3, 8, 8}, &opts, &ds, err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(ds.n, 2);
    ck_assert_int_eq(ds.nskipped, 2);
    rt_dataset_free(&ds);

    size_t mn;
    char *msg = (char *)slurp(P("stderr.txt"), &mn);
    msg[mn] = 0;
    char want[1024];
    snprintf(want, sizeof want, "%s: not a readable image (PNM truncated", P("set/a/bad.pgm"));
    ck_assert_msg(strstr(msg, want) != NULL, "stderr: %s", msg);
    snprintf(want, sizeof want, "%s: not a readable image (JPEG Huffman table with",
             P("set/b/bad.jpg"));
    ck_assert_msg(strstr(msg, want) != NULL, "stderr: %s", msg);
    ck_assert_msg(strstr(msg, "; skipped") != NULL, "stderr: %s", msg);
    free(msg);
}
END_TEST

/* ------------------------------------------------------------------ PGM/PPM decoding */

/* Decodes a w x 1 PNM at shape c x 1 x w (no resizing) into out. */
static void decode_row(const void *p, size_t n, int c, int w, uint8_t *out)
{
    char err[RT_ERRLEN];
    ck_assert_msg(decode_bytes(p, n, (rt_shape){c, 1, w}, out, err) == 0, "%s", err);
}

START_TEST(pnm_samples_scaled)
{
    uint8_t out[12];
    /* 16-bit, maxval 65535, big-endian: 0 -> 0, 65535 -> 255, 32768 -> (32768 * 255 +
     * 32767) / 65535 = 8388607 / 65535 = 128 (128.0002 rounded down). */
    static const char a[] = "P5\n3 1\n65535\n\x00\x00\xff\xff\x80\x00";
    decode_row(a, sizeof a - 1, 1, 3, out);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(out[1], 255);
    ck_assert_int_eq(out[2], 128);
    /* 16-bit, maxval 1000: 500 -> 127.5 rounds to 128; 1 -> 0.255 -> 0; 999 -> 254.745 ->
     * 255 (integer: (999 * 255 + 500) / 1000 = 255245 / 1000 = 255). */
    static const char b[] = "P5 3 1 1000\n\x01\xf4\x00\x01\x03\xe7";
    decode_row(b, sizeof b - 1, 1, 3, out);
    ck_assert_int_eq(out[0], 128);
    ck_assert_int_eq(out[1], 0);
    ck_assert_int_eq(out[2], 255);
    /* 8-bit, maxval 15 with a comment: 7 -> 119 (7 * 17), 15 -> 255, 1 -> 17. */
    static const char c[] = "P5\n# c\n3 1\n15\n\x07\x0f\x01";
    decode_row(c, sizeof c - 1, 1, 3, out);
    ck_assert_int_eq(out[0], 119);
    ck_assert_int_eq(out[1], 255);
    ck_assert_int_eq(out[2], 17);
    /* PPM to grey, as stb_image: (77 R + 150 G + 29 B) >> 8; pure red 255 -> 19635 >> 8 =
     * 76, green -> 38250 >> 8 = 149, blue -> 7395 >> 8 = 28. */
    static const char d[] = "P6 3 1 255\n\xff\x00\x00\x00\xff\x00\x00\x00\xff";
    decode_row(d, sizeof d - 1, 1, 3, out);
    ck_assert_int_eq(out[0], 76);
    ck_assert_int_eq(out[1], 149);
    ck_assert_int_eq(out[2], 28);
    /* 16-bit PPM at 3 channels, planar out: R plane, G plane, B plane. Maxval 511: 511 ->
     * 255, 0 -> 0, 256 -> (256 * 255 + 255) / 511 = 65535 / 511 = 128 (128.25). */
    static const char e[] = "P6 2 1 511\n\x01\xff\x00\x00\x01\x00\x00\x00\x01\xff\x01\x00";
    decode_row(e, sizeof e - 1, 3, 2, out);
    static const uint8_t want_e[6] = {255, 0, 0, 255, 128, 128};
    ck_assert_mem_eq(out, want_e, 6);
    /* PGM to RGBA: grey copied, alpha 255. */
    static const char f[] = "P5 1 1 255\n\x2a";
    decode_row(f, sizeof f - 1, 4, 1, out);
    static const uint8_t want_f[4] = {42, 42, 42, 255};
    ck_assert_mem_eq(out, want_f, 4);
}
END_TEST

START_TEST(pnm_bad_headers_refused)
{
    rt_shape s = {1, 4, 4};
    static const char cut8[] = "P6 4 4 255\n0123456789";
    assert_refused(cut8, sizeof cut8 - 1, s, "need 48 bytes, the file has 10");
    assert_refused("P5 4 4 0\n", 9, s, "maxval 0 not in 1..65535");
    assert_refused("P5 4 4 65536\n", 13, s, "maxval 65536 not in 1..65535");
    assert_refused("P5 0 4 255\n", 11, s, "0x4 pixels");
    assert_refused("P5 4 x 255\n", 11, s, "bad or missing height");
    assert_refused("P5 4 4", 6, s, "bad or missing height");
    assert_refused("P54 4 255\n", 10, s, "bad or missing width");
    assert_refused("P5 1234567890 4 255\n", 20, s, "bad or missing width");
    assert_refused("P5 4 4 255", 10, s, "bad or missing maxval");
    assert_refused("P5 4 4 255#\n", 12, s, "no white space after maxval");
}
END_TEST

/* ------------------------------------------------------------------ formats and cap */

START_TEST(unknown_formats_refused)
{
    rt_shape s = {3, 4, 4};
    static const char gif[] = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    assert_refused(gif, sizeof gif - 1, s, "unknown format");
    static const char psd[] = "8BPS\x00\x01";
    assert_refused(psd, sizeof psd - 1, s, "unknown format");
    static const char hdr[] = "#?RADIANCE\n";
    assert_refused(hdr, sizeof hdr - 1, s, "unknown format");
    static const char tga[18] = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 24, 0};
    assert_refused(tga, sizeof tga, s, "unknown format");
    assert_refused("P2 1 1 255\n0\n", 13, s, "unknown format"); /* ASCII PGM */
    assert_refused("", 0, s, "unknown format");
    assert_refused("x", 1, s, "unknown format");
}
END_TEST

/* A PNG signature and IHDR of w x h (stb_image does not check CRCs), nothing more. */
static size_t png_header(unsigned char *p, unsigned w, unsigned h)
{
    static const unsigned char head[16] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a,
                                           0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    memcpy(p, head, 16);
    unsigned char *d = p + 16;
    d[0] = w >> 24, d[1] = w >> 16, d[2] = w >> 8, d[3] = w;
    d[4] = h >> 24, d[5] = h >> 16, d[6] = h >> 8, d[7] = h;
    d[8] = 8, d[9] = 0, d[10] = 0, d[11] = 0, d[12] = 0;
    memset(p + 29, 0, 4); /* CRC */
    static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    memcpy(p + 33, iend, 12);
    return 45;
}

START_TEST(size_cap)
{
    rt_shape s = {1, 4, 4};
    /* A side of 16385 or pixels past 2^25 = 33554432 (8192 x 4097 = 33562624). */
    assert_refused("P5 16385 1 255\n", 15, s, "more than the cap of 16384 on a side");
    assert_refused("P5 8192 4097 255\n", 17, s, "8192x4097 pixels, more than the cap");
    unsigned char png[64];
    size_t n = png_header(png, 16385, 1);
    assert_refused(png, n, s, "16385x1 pixels");
    n = png_header(png, 8192, 4097);
    assert_refused(png, n, s, "8192x4097 pixels");
    /* 8192 x 4096 = 2^25 is allowed: the header passes, the missing data is the failure. */
    assert_refused("P5 8192 4096 255\n", 17, s, "PNM truncated");
    ck_assert_int_eq(rt_image_size_ok(8192, 4096, (char[64]){0}, 64), 0);
    ck_assert_int_eq(rt_image_size_ok(16384, 2048, (char[64]){0}, 64), 0);
    ck_assert_int_eq(rt_image_size_ok(16384, 2049, (char[64]){0}, 64), -1);
}
END_TEST

/* A 4x4 grey PNG whose image data inflates to 1 MiB of zeros: 4 rows of a filter byte and
 * 4 samples need 20 bytes; the limit is 2 * (4 * 8 + 1) * 4 + 65536 = 65800. */
START_TEST(png_inflate_bomb_refused)
{
    static unsigned char zeros[1 << 20], z[1 << 16], png[1 << 16];
    uLongf zn = sizeof z;
    ck_assert_int_eq(compress2(z, &zn, zeros, sizeof zeros, 9), Z_OK);
    ck_assert_uint_lt(zn, 2048);
    size_t n = png_header(png, 4, 4) - 12; /* IEND goes after the IDAT */
    unsigned char *c = png + n;
    c[0] = zn >> 24, c[1] = zn >> 16, c[2] = zn >> 8, c[3] = zn;
    memcpy(c + 4, "IDAT", 4);
    memcpy(c + 8, z, zn);
    memset(c + 8 + zn, 0, 4);
    n += 12 + zn;
    static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    memcpy(png + n, iend, 12);
    n += 12;
    assert_refused(png, n, (rt_shape){1, 4, 4}, "PNG data inflates past 65800 bytes");
    /* The same header with 20 bytes of data passes the check (stb_image does not test
     * the CRCs): the image decodes to zeros. */
    zn = sizeof z;
    ck_assert_int_eq(compress2(z, &zn, zeros, 20, 9), Z_OK);
    n = png_header(png, 4, 4) - 12;
    c = png + n;
    c[0] = zn >> 24, c[1] = zn >> 16, c[2] = zn >> 8, c[3] = zn;
    memcpy(c + 4, "IDAT", 4);
    memcpy(c + 8, z, zn);
    memset(c + 8 + zn, 0, 4);
    n += 12 + zn;
    memcpy(png + n, iend, 12);
    n += 12;
    uint8_t out[16];
    char err[RT_ERRLEN];
    ck_assert_msg(decode_bytes(png, n, (rt_shape){1, 4, 4}, out, err) == 0, "%s", err);
    static const uint8_t black[16];
    ck_assert_mem_eq(out, black, 16);
}
END_TEST

START_TEST(good_formats_decode)
{
    /* One 2x2 grey image in PNG, BMP and PGM decodes to the same pixels (JPEG is lossy:
     * within 8 of them). */
    unsigned char grey[4] = {0, 85, 170, 255};
    uint8_t out[4], ref[4];
    char err[RT_ERRLEN];
    rt_shape s = {1, 2, 2};
    static const char pgm[] = "P5 2 2 255\n\x00\x55\xaa\xff";
    ck_assert_msg(decode_bytes(pgm, sizeof pgm - 1, s, ref, err) == 0, "%s", err);
    ck_assert_mem_eq(ref, grey, 4);
    ck_assert(stbi_write_png(P("g.png"), 2, 2, 1, grey, 2));
    ck_assert_msg(rt_image_decode(P("g.png"), s, out, err) == 0, "%s", err);
    ck_assert_mem_eq(out, grey, 4);
    ck_assert(stbi_write_bmp(P("g.bmp"), 2, 2, 1, grey));
    ck_assert_msg(rt_image_decode(P("g.bmp"), s, out, err) == 0, "%s", err);
    ck_assert_mem_eq(out, grey, 4);
    ck_assert(stbi_write_jpg(P("g.jpg"), 2, 2, 1, grey, 100));
    ck_assert_msg(rt_image_decode(P("g.jpg"), s, out, err) == 0, "%s", err);
    for (int i = 0; i < 4; i++)
        ck_assert_int_le(abs(out[i] - grey[i]), 8);
    ck_assert_int_eq(rt_image_decode(P("missing.png"), s, out, err), -1);
    ck_assert_msg(strstr(err, "not a readable image (No such file") != NULL, "%s", err);
}
END_TEST

/* The resizing rule (rt_resize_impl.h), worked by hand. 3 -> 2 pixels: unit 1/4 pixel,
 * radius 6 units, centres at 1 and 7: tent weights 5,3 and 3,5 of 8, i.e. 10240/6144 of
 * 16384; [10 20 40] -> 13.75 and 32.5 -> 14 and 33 (half rounds up). 2 -> 4 (up): unit 1/8,
 * radius 8, centres -2, 2, 6, 10: [0 100] -> 0, 25, 75, 100 (bilinear, pixel centres).
 * 5 -> 2: the area pass by 2 averages columns [0,2) and [2,5): [10..50] -> 15, 40. A 3x2 RGB
 * block to 1x1: area pass by 3 and 2, every channel its own mean. */
START_TEST(resize_rule_by_hand)
{
    int lo[2], wt[2 * RT_RSZ_TAPS];
    rt_rsz_axis(3, 2, lo, wt);
    ck_assert_int_eq(lo[0], 0);
    ck_assert_int_eq(wt[0], 10240);
    ck_assert_int_eq(wt[1], 6144);
    ck_assert_int_eq(wt[2], 0);
    ck_assert_int_eq(lo[1], 1);
    ck_assert_int_eq(wt[RT_RSZ_TAPS], 6144);
    ck_assert_int_eq(wt[RT_RSZ_TAPS + 1], 10240);
    unsigned char a[3] = {10, 20, 40}, b[2];
    ck_assert_int_eq(rt_resize_u8(a, 3, 1, 1, b, 2, 1), 0);
    ck_assert_int_eq(b[0], 14);
    ck_assert_int_eq(b[1], 33);
    unsigned char up[2] = {0, 100}, u4[4];
    ck_assert_int_eq(rt_resize_u8(up, 2, 1, 1, u4, 4, 1), 0);
    ck_assert_int_eq(u4[0], 0);
    ck_assert_int_eq(u4[1], 25);
    ck_assert_int_eq(u4[2], 75);
    ck_assert_int_eq(u4[3], 100);
    /* the same along the other axis */
    ck_assert_int_eq(rt_resize_u8(up, 1, 2, 1, u4, 1, 4), 0);
    ck_assert_int_eq(u4[1], 25);
    ck_assert_int_eq(u4[2], 75);
    unsigned char five[5] = {10, 20, 30, 40, 50}, two[2];
    ck_assert_int_eq(rt_resize_u8(five, 5, 1, 1, two, 2, 1), 0);
    ck_assert_int_eq(two[0], 15);
    ck_assert_int_eq(two[1], 40);
    unsigned char rgb[3 * 2 * 3] = {0, 10, 200, 3, 10, 200, 6, 10, 200, 9, 10, 201, 12, 10, 201, 15, 10, 201};
    unsigned char one[3];
    ck_assert_int_eq(rt_resize_u8(rgb, 3, 2, 3, one, 1, 1), 0);
    ck_assert_int_eq(one[0], 8); /* 45 / 6 = 7.5, rounded up */
    ck_assert_int_eq(one[1], 10);
    ck_assert_int_eq(one[2], 201); /* 1203 / 6 = 200.5 */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("image");
    tcase_add_unchecked_fixture(tc, setup_root, teardown_root);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, issue14_pgm_refused);
    tcase_add_test(tc, issue14_jpeg_huffman_refused);
    tcase_add_test(tc, jpeg_undefined_table_refused);
    tcase_add_test(tc, fuzz_findings_refused);
    tcase_add_test(tc, loader_skips_with_warning);
    tcase_add_test(tc, pnm_samples_scaled);
    tcase_add_test(tc, pnm_bad_headers_refused);
    tcase_add_test(tc, unknown_formats_refused);
    tcase_add_test(tc, size_cap);
    tcase_add_test(tc, png_inflate_bomb_refused);
    tcase_add_test(tc, good_formats_decode);
    tcase_add_test(tc, resize_rule_by_hand);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_ENV);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
