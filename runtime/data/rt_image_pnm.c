/*
 * rt_image_pnm.c - binary PGM/PPM (P5/P6) decoding, done here rather than by stb_image:
 * its 2022 PNM reader trusts the header (a truncated or 16-bit file is read past its
 * buffer), ignores maxval and reads 16-bit samples in the wrong byte order.
 */
#include "rt_image_int.h"

#include <stdio.h>
#include <stdlib.h>

static int pnm_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Skips white space and '#' comments (to the end of their line) before a header field;
 * at least one white space character or comment must separate fields. Returns 0, or -1
 * when the header ends there. */
static int pnm_skip(const uint8_t *buf, size_t len, size_t *pos)
{
    size_t p = *pos;
    if (p >= len || (!pnm_space(buf[p]) && buf[p] != '#'))
        return -1;
    while (p < len && (pnm_space(buf[p]) || buf[p] == '#')) {
        if (buf[p] == '#')
            while (p < len && buf[p] != '\n' && buf[p] != '\r')
                p++;
        else
            p++;
    }
    *pos = p;
    return p < len ? 0 : -1;
}

/* Reads a decimal field of 1 to 9 digits ending at a white space or '#'. Returns the value,
 * or -1 when there is none or it is longer. */
static long pnm_number(const uint8_t *buf, size_t len, size_t *pos)
{
    size_t p = *pos;
    long v = 0;
    int digits = 0;
    while (p < len && buf[p] >= '0' && buf[p] <= '9') {
        if (++digits > 9)
            return -1;
        v = v * 10 + (buf[p] - '0');
        p++;
    }
    if (digits == 0 || p >= len || (!pnm_space(buf[p]) && buf[p] != '#'))
        return -1;
    *pos = p;
    return v;
}

/* One sample of n (1 or 3) at px converted to req_comp channels as stb_image does
 * (stbi__convert_format: grey from RGB is (77 R + 150 G + 29 B) >> 8, alpha is 255). */
static void pnm_convert(const uint8_t *px, int n, int req_comp, uint8_t *o)
{
    uint8_t g = n == 1 ? px[0] : (uint8_t)((px[0] * 77 + px[1] * 150 + px[2] * 29) >> 8);
    switch (req_comp) {
    case 1:
        o[0] = g;
        break;
    case 2:
        o[0] = g;
        o[1] = 255;
        break;
    default:
        o[0] = px[0];
        o[1] = n == 1 ? px[0] : px[1];
        o[2] = n == 1 ? px[0] : px[2];
        if (req_comp == 4)
            o[3] = 255;
        break;
    }
}

uint8_t *rt_pnm_decode(const uint8_t *buf, size_t len, int req_comp, int *w, int *h,
                       char *why, size_t whylen)
{
    if (len < 2 || buf[0] != 'P' || (buf[1] != '5' && buf[1] != '6')) {
        snprintf(why, whylen, "not a binary PGM/PPM");
        return NULL;
    }
    if (req_comp < 1 || req_comp > 4) {
        snprintf(why, whylen, "cannot give %d channels", req_comp);
        return NULL;
    }
    const int n = buf[1] == '6' ? 3 : 1;
    size_t pos = 2;
    long f[3];
    for (int k = 0; k < 3; k++) {
        if (pnm_skip(buf, len, &pos) < 0 || (f[k] = pnm_number(buf, len, &pos)) < 0) {
            snprintf(why, whylen, "PNM header: bad or missing %s",
                     k == 0 ? "width" : k == 1 ? "height" : "maxval");
            return NULL;
        }
    }
    /* Exactly one white space character ends the header; the raster follows. */
    if (!pnm_space(buf[pos])) {
        snprintf(why, whylen, "PNM header: no white space after maxval");
        return NULL;
    }
    pos++;
    if (f[0] < 1 || f[1] < 1) {
        snprintf(why, whylen, "PNM header: %ldx%ld pixels", f[0], f[1]);
        return NULL;
    }
    if (f[2] < 1 || f[2] > 65535) {
        snprintf(why, whylen, "PNM header: maxval %ld not in 1..65535", f[2]);
        return NULL;
    }
    if (rt_image_size_ok(f[0], f[1], why, whylen) < 0)
        return NULL;
    const long maxval = f[2];
    const int bps = maxval > 255 ? 2 : 1;
    const size_t npix = (size_t)f[0] * (size_t)f[1];
    const size_t need = npix * n * bps; /* below 2^25 * 6: no overflow */
    if (len - pos < need) {
        snprintf(why, whylen, "PNM truncated: %ldx%ld %s samples need %zu bytes, the file has %zu",
                 f[0], f[1], bps == 2 ? "16-bit" : "8-bit", need, len - pos);
        return NULL;
    }
    uint8_t *out = malloc(npix * req_comp);
    if (!out) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    const uint8_t *s = buf + pos;
    const unsigned long half = (unsigned long)maxval / 2;
    for (size_t i = 0; i < npix; i++) {
        uint8_t px[3];
        for (int c = 0; c < n; c++, s += bps) {
            unsigned long v = bps == 2 ? (unsigned long)s[0] << 8 | s[1] : s[0];
            if (v > (unsigned long)maxval)
                v = (unsigned long)maxval; /* a sample above maxval counts as white */
            px[c] = (uint8_t)((v * 255 + half) / (unsigned long)maxval);
        }
        pnm_convert(px, n, req_comp, out + i * req_comp);
    }
    *w = (int)f[0];
    *h = (int)f[1];
    return out;
}
