/*
 * rt_image_int.h - private declarations of the image decoder (rt_image*.c): the formats it
 * accepts, the size cap checked before any pixel is decoded, and the in-memory entry point
 * that the file loader, the unit tests and the fuzz target (fuzz/fuzz_image.c) share.
 */
#ifndef RT_IMAGE_INT_H
#define RT_IMAGE_INT_H

#include "rt_data_internal.h"

#include <stddef.h>
#include <stdint.h>

/* The cap on an image file's size, checked before decoding (documented in cnnrun(1)): at
 * most RT_IMAGE_FILE_MAX_SIDE pixels on a side (stb_image is built with the same
 * STBI_MAX_DIMENSIONS) and RT_IMAGE_FILE_MAX_PIXELS pixels in all (an 8K UHD frame,
 * 7680x4320, fits), and files of at most RT_IMAGE_FILE_MAX_BYTES. */
#define RT_IMAGE_FILE_MAX_SIDE 16384
#ifndef RT_IMAGE_FILE_MAX_PIXELS /* the fuzz build sets a smaller one, for speed */
#define RT_IMAGE_FILE_MAX_PIXELS (1L << 25)
#endif
#define RT_IMAGE_FILE_MAX_BYTES (256L << 20)

/* The formats that reach a decoder; anything else is refused by its first bytes. */
typedef enum {
    RT_IMG_UNKNOWN = 0,
    RT_IMG_JPEG,        /* FF D8 FF */
    RT_IMG_PNG,         /* 89 'P' 'N' 'G' 0D 0A 1A 0A */
    RT_IMG_BMP,         /* 'B' 'M' */
    RT_IMG_PNM          /* 'P' '5' (PGM) or 'P' '6' (PPM), binary, 8 or 16 bit */
} rt_img_format;

/* The format of a file by its magic bytes. */
rt_img_format rt_image_sniff(const uint8_t *buf, size_t len);

/* Walks a JPEG's marker segments (and skips entropy-coded data) the way stb_image reads
 * them and checks every Huffman table (DHT): at most 256 codes per table, each inside its
 * segment. stb_image trusts these counts (a write past stbi__huffman.size). Returns 0, or
 * -1 with why set to a short reason. */
int rt_jpeg_check(const uint8_t *buf, size_t len, char *why, size_t whylen);

/* Walks a PNG's chunks: each must lie inside the file (stb_image reallocates its buffer to
 * an IDAT's announced length before reading it: 2 GiB for a 100-byte file), the header's
 * size passes the cap, and the image data must not inflate to much more than that size
 * needs. Returns 0, or -1 with why set. */
int rt_png_check(const uint8_t *buf, size_t len, char *why, size_t whylen);

/* Decodes a binary PGM (P5) or PPM (P6) with maxval 1..65535 (two big-endian bytes per
 * sample above 255) to 8-bit samples scaled by 255/maxval (rounded), converted to
 * req_comp channels (1..4) as stb_image's req_comp does. The header is parsed strictly and
 * the file must hold every sample it announces; the size cap applies. Returns the
 * malloc'ed pixels [h][w][req_comp] with *w, *h set, or NULL with why set. */
uint8_t *rt_pnm_decode(const uint8_t *buf, size_t len, int req_comp, int *w, int *h,
                       char *why, size_t whylen);

/* Checks w x h against the cap. Returns 0, or -1 with why set. */
int rt_image_size_ok(long w, long h, char *why, size_t whylen);

/* Decodes an image held in memory (name is only for messages) straight to planar uint8 at
 * the shape, as rt_image_decode does for a file. Returns 0, or -1 with err set to
 * "NAME: not a readable image (REASON)" or another message naming the file. */
int rt_image_decode_mem(const uint8_t *buf, size_t len, const char *name, rt_shape shape,
                        uint8_t *out, char *err);

#endif
