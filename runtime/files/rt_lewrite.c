/*
 * rt_lewrite.c - the buffered little-endian writer of weights files and --dump files
 * (rt_lewrite.h): bytes are gathered in a 64 KiB buffer, summed into the CRC and passed to
 * the write function a buffer at a time; the first failure stops all further writing.
 */
#include "rt_lewrite.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct rt_lewriter {
    FILE *f;
    rt_le_write_fn write;
    uLong crc;
    int crc_on;
    int failed, err_no;     /* the first failure and its errno */
    size_t used;
    unsigned char buf[1 << 16];
};

rt_lewriter *rt_le_create(FILE *f, rt_le_write_fn write)
{
    rt_lewriter *w = malloc(sizeof *w);
    if (!w)
        return NULL;
    w->f = f;
    w->write = write ? write : fwrite;
    w->crc = crc32(0L, Z_NULL, 0);
    w->crc_on = 0;
    w->failed = w->err_no = 0;
    w->used = 0;
    return w;
}

void rt_le_destroy(rt_lewriter *w)
{
    free(w);
}

/* Passes the buffer on (and into the CRC); remembers the first failure. */
static void drain(rt_lewriter *w)
{
    if (w->used && !w->failed) {
        if (w->crc_on)
            w->crc = crc32(w->crc, w->buf, (uInt)w->used);
        errno = 0;
        if (w->write(w->buf, 1, w->used, w->f) != w->used) {
            w->failed = 1;
            w->err_no = errno ? errno : EIO;
        }
    }
    w->used = 0;
}

void rt_le_bytes(rt_lewriter *w, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n && !w->failed) {
        if (w->used == sizeof w->buf)
            drain(w);
        size_t k = sizeof w->buf - w->used;
        if (k > n)
            k = n;
        memcpy(w->buf + w->used, b, k);
        w->used += k;
        b += k;
        n -= k;
    }
}

void rt_le_u32(rt_lewriter *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    rt_le_bytes(w, b, 4);
}

void rt_le_u64(rt_lewriter *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    rt_le_bytes(w, b, 8);
}

/* n 32-bit words from p, each stored least significant byte first, converted straight
 * into the buffer; a word that does not fit whole is split as rt_le_bytes would, so the
 * write function always gets full buffers. */
static void words(rt_lewriter *w, const void *p, size_t n)
{
    const unsigned char *src = p;
    while (n && !w->failed) {
        size_t m = (sizeof w->buf - w->used) / 4;
        if (m == 0) {
            uint32_t v;
            memcpy(&v, src, 4);
            rt_le_u32(w, v);
            src += 4;
            n--;
            continue;
        }
        if (m > n)
            m = n;
        unsigned char *dst = w->buf + w->used;
        for (size_t i = 0; i < m; i++) {
            uint32_t v;
            memcpy(&v, src + 4 * i, 4);
            for (int j = 0; j < 4; j++)
                dst[4 * i + j] = (unsigned char)(v >> (8 * j));
        }
        w->used += 4 * m;
        src += 4 * m;
        n -= m;
    }
}

void rt_le_f32s(rt_lewriter *w, const float *x, size_t n)
{
    words(w, x, n);
}

void rt_le_i32s(rt_lewriter *w, const int32_t *x, size_t n)
{
    words(w, x, n);
}

void rt_le_crc_begin(rt_lewriter *w)
{
    drain(w);
    w->crc = crc32(0L, Z_NULL, 0);
    w->crc_on = 1;
}

uint32_t rt_le_crc_end(rt_lewriter *w)
{
    drain(w);
    w->crc_on = 0;
    return (uint32_t)w->crc;
}

int rt_le_flush(rt_lewriter *w)
{
    drain(w);
    if (w->failed) {
        errno = w->err_no;
        return -1;
    }
    return 0;
}
