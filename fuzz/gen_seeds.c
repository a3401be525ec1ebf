/*
 * gen_seeds.c - writes the small seed images of the image fuzz target (fuzz/corpus/): JPEG
 * (baseline, and progressive when built with -DSEED_LIBJPEG -ljpeg), PNG (8 and 16 bit),
 * BMP, PGM and PPM (8 and 16 bit, maxval other than 255), cut-off copies of some, and the
 * two inputs of issue 14. Run by fuzz/build.sh; usage: gen_seeds DIR.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* only some of the static writer functions are used */
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#ifdef SEED_LIBJPEG
#include <jpeglib.h>
#endif

static const char *dir;

static void put(const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static unsigned char *slurp(const char *name, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    static unsigned char buf[1 << 16];
    if (!f) {
        perror(path);
        exit(1);
    }
    *n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

/* Writes NAME cut to its first `keep` bytes as NAME's stem + "_cut". */
static void cut(const char *name, const char *cutname, size_t keep)
{
    size_t n;
    unsigned char *p = slurp(name, &n);
    put(cutname, p, keep < n ? keep : n / 2);
}

static void chunk(unsigned char *out, size_t *n, const char *type, const unsigned char *d,
                  uint32_t len)
{
    unsigned char *o = out + *n;
    o[0] = len >> 24, o[1] = len >> 16, o[2] = len >> 8, o[3] = len;
    memcpy(o + 4, type, 4);
    memcpy(o + 8, d, len);
    uint32_t crc = crc32(0, o + 4, 4 + len);
    o[8 + len] = crc >> 24, o[9 + len] = crc >> 16, o[10 + len] = crc >> 8, o[11 + len] = crc;
    *n += 12 + len;
}

/* Issue 14: a copy of a JPEG whose first Huffman table announces 16 + 255 + 255 codes of
 * lengths 14 to 16 on top of its own (256 at most fit in stb_image's tables). */
static void bad_huffman(const char *name, const char *badname)
{
    size_t n;
    unsigned char *p = slurp(name, &n);
    for (size_t i = 2; i + 21 < n; i++)
        if (p[i] == 0xff && p[i + 1] == 0xc4) {
            p[i + 5 + 13] = 16;
            p[i + 5 + 14] = 255;
            p[i + 5 + 15] = 255;
            put(badname, p, n);
            return;
        }
    fprintf(stderr, "gen_seeds: no Huffman table in %s\n", name);
    exit(1);
}

/* A 16-bit RGB PNG of w x h (filter 0 on every row). */
static void png16(const char *name, int w, int h)
{
    unsigned char raw[4096], z[4096], out[8192];
    size_t r = 0, n = 8;
    for (int y = 0; y < h; y++) {
        raw[r++] = 0;
        for (int x = 0; x < w * 3; x++) {
            unsigned v = (unsigned)(x * 4099 + y * 13001) & 0xffff;
            raw[r++] = v >> 8;
            raw[r++] = v & 255;
        }
    }
    uLongf zn = sizeof z;
    compress(z, &zn, raw, r);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    memcpy(out, sig, 8);
    unsigned char ihdr[13] = {0, 0, 0, (unsigned char)w, 0, 0, 0, (unsigned char)h, 16, 2, 0, 0, 0};
    chunk(out, &n, "IHDR", ihdr, 13);
    chunk(out, &n, "IDAT", z, (uint32_t)zn);
    chunk(out, &n, "IEND", NULL, 0);
    put(name, out, n);
}

/* A binary PNM: magic 5 or 6, w x h, maxval; 2 bytes a sample above 255. */
static void pnm(const char *name, int magic, int w, int h, int maxval, size_t cut_to)
{
    unsigned char buf[4096];
    int n = snprintf((char *)buf, sizeof buf, "P%d\n# seed\n%d %d\n%d\n", magic, w, h, maxval);
    int ch = magic == 6 ? 3 : 1, bps = maxval > 255 ? 2 : 1;
    for (int i = 0; i < w * h * ch; i++) {
        unsigned v = (unsigned)(i * 2654435761u >> 7) % (unsigned)(maxval + 1);
        if (bps == 2)
            buf[n++] = v >> 8;
        buf[n++] = v & 255;
    }
    put(name, buf, cut_to && cut_to < (size_t)n ? cut_to : (size_t)n);
}

#ifdef SEED_LIBJPEG
static void progressive_jpeg(const char *name, int w, int h, const unsigned char *rgb)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *mem = NULL;
    unsigned long size = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &size);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 80, TRUE);
    jpeg_simple_progression(&c);
    c.optimize_coding = TRUE;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    put(name, mem, size);
    free(mem);
}
#endif

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    unsigned char rgba[16 * 16 * 4];
    for (int i = 0; i < (int)sizeof rgba; i++)
        rgba[i] = (unsigned char)(i * 37 + (i >> 4) * 11);
    char path[1024];
#define P(name) (snprintf(path, sizeof path, "%s/%s", dir, name), path)
    if (!stbi_write_jpg(P("grey8.jpg"), 8, 8, 1, rgba, 90)
        || !stbi_write_jpg(P("rgb9x7.jpg"), 9, 7, 3, rgba, 75)
        || !stbi_write_png(P("grey4.png"), 4, 4, 1, rgba, 4)
        || !stbi_write_png(P("rgba5x3.png"), 5, 3, 4, rgba, 5 * 4)
        || !stbi_write_png(P("ga3.png"), 3, 3, 2, rgba, 3 * 2)
        || !stbi_write_bmp(P("rgb4.bmp"), 4, 4, 3, rgba)
        || !stbi_write_bmp(P("rgba3.bmp"), 3, 2, 4, rgba)) {
        fprintf(stderr, "gen_seeds: cannot write into %s\n", dir);
        return 1;
    }
    png16("rgb16.png", 3, 2);
    cut("rgb9x7.jpg", "rgb9x7_cut.jpg", 300);
    cut("rgba5x3.png", "rgba5x3_cut.png", 40);
    cut("rgb4.bmp", "rgb4_cut.bmp", 60);
    pnm("grey.pgm", 5, 4, 3, 255, 0);
    pnm("grey_max15.pgm", 5, 3, 3, 15, 0);
    pnm("grey16.pgm", 5, 3, 2, 65535, 0);
    pnm("rgb.ppm", 6, 3, 3, 255, 0);
    pnm("rgb16_max1000.ppm", 6, 2, 2, 1000, 0);
    pnm("grey16_cut.pgm", 5, 4, 4, 1023, 30);
    pnm("rgb_cut.ppm", 6, 4, 4, 255, 25);
    /* Issue 14: a 16-bit PGM of 8x4 with 5 bytes of its 64 (17 bytes in all). */
    static const char issue_pgm[] = "P5 \n8 4\n275\n\x01\x02\x03\x04\x05";
    put("issue14_16bit_cut.pgm", issue_pgm, sizeof issue_pgm - 1);
    bad_huffman("grey8.jpg", "issue14_bad_huffman.jpg");
#ifdef SEED_LIBJPEG
    progressive_jpeg("rgb12_progressive.jpg", 12, 10, rgba);
#endif
    return 0;
}
