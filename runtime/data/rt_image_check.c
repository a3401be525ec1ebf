/*
 * rt_image_check.c - what an image file must pass before any decoder sees it: its format
 * by the magic bytes (only JPEG, PNG, BMP and binary PGM/PPM go on), its size against the
 * cap, for JPEG the Huffman tables and for PNG the chunks that stb_image would otherwise
 * trust.
 */
#include "rt_image_int.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

rt_img_format rt_image_sniff(const uint8_t *buf, size_t len)
{
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return RT_IMG_JPEG;
    if (len >= 8 && memcmp(buf, png, 8) == 0)
        return RT_IMG_PNG;
    if (len >= 2 && buf[0] == 'B' && buf[1] == 'M')
        return RT_IMG_BMP;
    if (len >= 2 && buf[0] == 'P' && (buf[1] == '5' || buf[1] == '6'))
        return RT_IMG_PNM;
    return RT_IMG_UNKNOWN;
}

int rt_image_size_ok(long w, long h, char *why, size_t whylen)
{
    if (w < 1 || h < 1 || w > RT_IMAGE_FILE_MAX_SIDE || h > RT_IMAGE_FILE_MAX_SIDE
        || w * h > RT_IMAGE_FILE_MAX_PIXELS) {
        snprintf(why, whylen, "%ldx%ld pixels, more than the cap of %d on a side and %ld in all",
                 w, h, RT_IMAGE_FILE_MAX_SIDE, (long)RT_IMAGE_FILE_MAX_PIXELS);
        return -1;
    }
    return 0;
}

/* Checks one DHT segment's payload of n bytes, of which the first have are in p (stb_image
 * reads zeros past the end of a cut-off file, and so does this): tables of a class/id
 * byte, 16 code counts and that many symbols, exactly filling the payload. */
static int jpeg_dht_ok(const uint8_t *p, size_t have, size_t n, unsigned *defined, char *why,
                       size_t whylen)
{
#define DHT_BYTE(i) ((i) < have ? p[i] : 0)
    size_t at = 0;
    while (at < n) {
        if (n - at < 17) {
            snprintf(why, whylen, "JPEG Huffman table header cut short");
            return -1;
        }
        if ((DHT_BYTE(at) >> 4) > 1 || (DHT_BYTE(at) & 15) > 3) {
            snprintf(why, whylen, "JPEG Huffman table class/id 0x%02x", DHT_BYTE(at));
            return -1;
        }
        size_t codes = 0;
        for (size_t i = 1; i <= 16; i++)
            codes += DHT_BYTE(at + i);
        if (codes > 256) {
            snprintf(why, whylen, "JPEG Huffman table with %zu codes (256 at most)", codes);
            return -1;
        }
        if (n - at - 17 < codes) {
            snprintf(why, whylen, "JPEG Huffman table symbols cut short");
            return -1;
        }
        *defined |= 1u << ((DHT_BYTE(at) >> 4) * 4 + (DHT_BYTE(at) & 15));
        at += 17 + codes;
    }
    return 0;
#undef DHT_BYTE
}

/* Checks that a scan header (SOS payload, have of its n bytes in p, zeros past) only uses
 * Huffman tables defined before it: stb_image decodes with whatever an undefined table's
 * memory holds (an index far outside it). A baseline scan uses both tables of each of
 * its components; a progressive one its DC table in a first DC scan (Ss = 0, Ah = 0) and
 * its AC table in an AC scan (Ss > 0), as stbi__decode_block_prog_dc/ac do. */
static int jpeg_sos_ok(const uint8_t *p, size_t have, size_t n, int progressive,
                       unsigned defined, char *why, size_t whylen)
{
#define SOS_BYTE(i) ((i) < have ? p[i] : 0)
    const size_t ns = SOS_BYTE(0);
    if (n < 1 + 2 * ns + 3)
        return 0; /* stb_image refuses it ("bad SOS len") */
    const int ss = SOS_BYTE(1 + 2 * ns), ah = SOS_BYTE(3 + 2 * ns) >> 4;
    for (size_t i = 0; i < ns; i++) {
        const int td = SOS_BYTE(2 + 2 * i) >> 4, ta = SOS_BYTE(2 + 2 * i) & 15;
        const int need_dc = !progressive || (ss == 0 && ah == 0);
        const int need_ac = !progressive || ss > 0;
        if ((need_dc && (td > 3 || !(defined >> td & 1)))
            || (need_ac && (ta > 3 || !(defined >> (4 + ta) & 1)))) {
            snprintf(why, whylen, "JPEG scan uses an undefined Huffman table");
            return -1;
        }
    }
    return 0;
#undef SOS_BYTE
}

/* Inflates the IDAT data n bytes at a time into a scratch buffer, only counting: 1 when it
 * comes to more than limit bytes, else 0 (also for a stream zlib cannot read: stb_image
 * reports that). */
typedef struct {
    z_stream z;
    unsigned long long out, limit;
    int over, done;
} png_inflate;

static void png_feed(png_inflate *pi, const uint8_t *p, size_t n)
{
    unsigned char scratch[16384];
    pi->z.next_in = (Bytef *)p;
    pi->z.avail_in = (uInt)n;
    while (!pi->done && !pi->over && pi->z.avail_in > 0) {
        pi->z.next_out = scratch;
        pi->z.avail_out = sizeof scratch;
        int rc = inflate(&pi->z, Z_NO_FLUSH);
        pi->out += sizeof scratch - pi->z.avail_out;
        if (pi->out > pi->limit)
            pi->over = 1;
        if (rc != Z_OK)
            pi->done = 1; /* the stream's end, or an error stb_image will report */
    }
}

int rt_png_check(const uint8_t *buf, size_t len, char *why, size_t whylen)
{
    size_t pos = 8; /* past the signature */
    png_inflate pi;
    memset(&pi, 0, sizeof pi);
    /* The size cap on the header's width and height, so that the message says so; from
     * them the most the image data can inflate to (16-bit RGBA, a filter byte a row,
     * doubled for interlacing's extra rows, plus 64 KiB). A 100 KB "zlib bomb" would
     * otherwise have stb_image allocate 100 MB, growing as it inflates. */
    if (len >= 24 && memcmp(buf + 12, "IHDR", 4) == 0) {
        const long w = (long)buf[16] << 24 | buf[17] << 16 | buf[18] << 8 | buf[19];
        const long h = (long)buf[20] << 24 | buf[21] << 16 | buf[22] << 8 | buf[23];
        if (rt_image_size_ok(w, h, why, whylen) < 0)
            return -1;
        pi.limit = 2ull * ((unsigned long long)w * 8 + 1) * (unsigned long long)h + 65536;
    } else {
        pi.done = 1; /* no IHDR first: stb_image refuses it */
    }
    if (!pi.done && inflateInit(&pi.z) != Z_OK) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    int rc = 0, seen_idat = 0;
    while (len - pos >= 8) {
        const size_t n = (size_t)buf[pos] << 24 | (size_t)buf[pos + 1] << 16
                         | (size_t)buf[pos + 2] << 8 | buf[pos + 3];
        if (len - pos - 8 < 4 || n > len - pos - 12) {
            snprintf(why, whylen, "PNG chunk of %zu bytes past the end of the file", n);
            rc = -1;
            break;
        }
        if (memcmp(buf + pos + 4, "IEND", 4) == 0)
            break;
        if (memcmp(buf + pos + 4, "IDAT", 4) == 0) {
            /* stb_image adds the offset to its still NULL buffer for an empty first IDAT
             * (undefined behaviour): such a file, legal but never written by encoders,
             * is refused. */
            if (n == 0 && !seen_idat) {
                snprintf(why, whylen, "PNG with an empty first IDAT chunk");
                rc = -1;
                break;
            }
            seen_idat = 1;
            png_feed(&pi, buf + pos + 8, n);
        }
        if (pi.over) {
            snprintf(why, whylen, "PNG data inflates past %llu bytes (its image needs less)",
                     pi.limit);
            rc = -1;
            break;
        }
        pos += 12 + n;
    }
    if (pi.limit)
        inflateEnd(&pi.z);
    return rc; /* 0 also when cut off between chunks: stb_image reports that */
}

int rt_jpeg_check(const uint8_t *buf, size_t len, char *why, size_t whylen)
{
    if (len < 2 || buf[0] != 0xff || buf[1] != 0xd8) {
        snprintf(why, whylen, "not a JPEG");
        return -1;
    }
    size_t pos = 2;
    int header = 1; /* before the frame header (SOF0..2), as stbi__decode_jpeg_header */
    int progressive = 0;
    unsigned defined = 0; /* bit 4 * class + id: the Huffman tables defined so far */
    for (;;) {
        /* A marker: 0xFF, any number of 0xFF fill bytes, the code. Before the frame
         * header stb_image skips other bytes between segments looking for the next 0xFF
         * (and so does this walk); after it, stb_image stops reading there. */
        if (header)
            while (pos < len && buf[pos] != 0xff)
                pos++;
        if (pos >= len || buf[pos] != 0xff)
            return 0;
        while (pos < len && buf[pos] == 0xff)
            pos++;
        if (pos >= len)
            return 0;
        const uint8_t m = buf[pos++];
        if (m == 0xd9) /* EOI */
            return 0;
        if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) /* TEM, RSTn: no segment */
            continue;
        if (len - pos < 2) /* a truncated file: stb_image reads zeros from here on */
            return 0;
        const size_t seg = (size_t)buf[pos] << 8 | buf[pos + 1];
        if (seg < 2) {
            snprintf(why, whylen, "JPEG segment 0x%02x of length %zu", m, seg);
            return -1;
        }
        const size_t have = len - pos - 2 < seg - 2 ? len - pos - 2 : seg - 2;
        if (m == 0xc4 && jpeg_dht_ok(buf + pos + 2, have, seg - 2, &defined, why, whylen) < 0)
            return -1;
        if (m == 0xda
            && jpeg_sos_ok(buf + pos + 2, have, seg - 2, progressive, defined, why, whylen) < 0)
            return -1;
        if (header && m >= 0xc0 && m <= 0xc2) {
            /* payload: precision, height, width (big-endian); the cap applies */
            if (have >= 5 && rt_image_size_ok((long)buf[pos + 5] << 8 | buf[pos + 6],
                                              (long)buf[pos + 3] << 8 | buf[pos + 4], why,
                                              whylen) < 0)
                return -1;
            header = 0;
            progressive = m == 0xc2;
        }
        if (len - pos < seg)
            return 0;
        pos += seg;
        if (m == 0xda) {
            /* Entropy-coded data up to the next marker: 0xFF followed by neither 0x00 (a
             * stuffed byte) nor RSTn; fill bytes 0xFF are part of the marker. stb_image
             * stops its bit reader at the same place, or earlier and then looks for the
             * first 0xFF, which is a stuffed byte or RSTn (it stops) or this marker. */
            while (pos < len) {
                if (buf[pos] != 0xff) {
                    pos++;
                    continue;
                }
                size_t q = pos + 1;
                while (q < len && buf[q] == 0xff)
                    q++;
                if (q < len && (buf[q] == 0x00 || (buf[q] >= 0xd0 && buf[q] <= 0xd7))) {
                    pos = q + 1;
                    continue;
                }
                break; /* pos is at the 0xFF of the next marker (or q is at the end) */
            }
        }
    }
}
