/*
 * rt_lewrite.h - private to libcnnrt (not installed): a buffered writer of little-endian
 * binary files over a FILE, with an optional running CRC-32 and the first error kept, so
 * that a file format is written as a plain sequence of calls and checked once at the end;
 * and the two readers of such integers the formats' readers share.
 */
#ifndef RT_LEWRITE_H
#define RT_LEWRITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* fwrite's contract: returns the count of items written, sets errno on failure. */
typedef size_t (*rt_le_write_fn)(const void *p, size_t size, size_t n, FILE *f);

typedef struct rt_lewriter rt_lewriter;

/* A writer to f through write (NULL: fwrite); NULL when out of memory. */
rt_lewriter *rt_le_create(FILE *f, rt_le_write_fn write);
void rt_le_destroy(rt_lewriter *w);

/* Bytes as they are; 32- and 64-bit unsigned integers; n float32 or int32 values (their
 * bit patterns). After a failure every call does nothing. */
void rt_le_bytes(rt_lewriter *w, const void *p, size_t n);
void rt_le_u32(rt_lewriter *w, uint32_t v);
void rt_le_u64(rt_lewriter *w, uint64_t v);
void rt_le_f32s(rt_lewriter *w, const float *x, size_t n);
void rt_le_i32s(rt_lewriter *w, const int32_t *x, size_t n);

/* The CRC-32 (zlib's crc32) of every byte written from rt_le_crc_begin to rt_le_crc_end. */
void rt_le_crc_begin(rt_lewriter *w);
uint32_t rt_le_crc_end(rt_lewriter *w);

/* Writes out the buffer; returns 0, or -1 when this or any earlier write failed, with the
 * errno of the first failure (EIO when the write function set none) in errno. */
int rt_le_flush(rt_lewriter *w);

/* A little-endian 32- or 64-bit unsigned integer at p. */
static inline uint32_t rt_le_rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rt_le_rd64(const unsigned char *p)
{
    return (uint64_t)rt_le_rd32(p) | (uint64_t)rt_le_rd32(p + 4) << 32;
}

#endif
