/*
 * rt_image.c - one image to the network's input: the file read whole, checked (format by
 * its magic bytes, size cap, rt_image_check.c) and decoded (JPEG, PNG, BMP by the stb_image
 * compiled in rt_stb.c, PGM/PPM by rt_image_pnm.c, converted to the channel count as stbi's
 * req_comp does), resized by rt_resize_impl.h's rule (shared with standalone files) and moved to planar [c][h][w]. The set
 * loaders and --predict (rt_image_load) share it, so a predicted file sees exactly the
 * conversion the training images saw.
 */
#include "rt_image_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STBI_NO_STDIO /* as rt_stb.c builds it: from memory only */
#include <stb_image.h>
#include "rt_resize_impl.h"

int rt_pixels_to_planar(const uint8_t *in, int w, int h, int comp, rt_shape shape,
                        uint8_t *out, char *err)
{
    const int C = shape.c, H = shape.h, W = shape.w;
    if (comp != C && comp != 1) {
        snprintf(err, RT_ERRLEN, "cannot convert %d-channel pixels to %d channels", comp, C);
        return -1;
    }
    /* Resize with the source's channels (grey is cheaper to resize than its copies), by
     * the rule standalone files share (rt_resize_impl.h). */
    const uint8_t *src = in;
    uint8_t *tmp = NULL;
    if (w != W || h != H) {
        tmp = malloc((size_t)W * H * comp);
        if (!tmp || rt_resize_u8(in, w, h, comp, tmp, W, H) != 0) {
            free(tmp);
            snprintf(err, RT_ERRLEN, "out of memory resizing a %dx%d image", w, h);
            return -1;
        }
        src = tmp;
    }
    /* Interleaved to planar. Grey into colour: the colour channels copy the grey, a second
     * (grey+alpha) or fourth (RGBA) channel is an opaque alpha, as stbi's req_comp does. */
    const size_t plane = (size_t)W * H;
    for (int ch = 0; ch < C; ch++) {
        uint8_t *o = out + ch * plane;
        if (comp == C) {
            for (size_t i = 0; i < plane; i++)
                o[i] = src[i * comp + ch];
        } else if ((C == 2 && ch == 1) || (C == 4 && ch == 3)) {
            memset(o, 255, plane);
        } else {
            memcpy(o, src, plane);
        }
    }
    free(tmp);
    return 0;
}

/* Decodes buf with the stb_image of rt_stb.c after its header passed stbi_info and the cap.
 * Returns the pixels [h][w][req_comp] or NULL with why set. */
static uint8_t *stb_decode(const uint8_t *buf, size_t len, const char *format_name,
                           int req_comp, int *w, int *h, char *why, size_t whylen)
{
    int iw, ih, comp, dw, dh;
    /* Top row first (nothing else in the program reaches this copy of stb_image). */
    stbi_set_flip_vertically_on_load_thread(0);
    if (!stbi_info_from_memory(buf, (int)len, &iw, &ih, &comp)) {
        /* stb_image tried its other formats after this one's header failed: say which. */
        snprintf(why, whylen, "corrupt or unsupported %s header", format_name);
        return NULL;
    }
    if (rt_image_size_ok(iw, ih, why, whylen) < 0)
        return NULL;
    uint8_t *px = stbi_load_from_memory(buf, (int)len, &dw, &dh, &comp, req_comp);
    if (!px) {
        const char *r = stbi_failure_reason();
        snprintf(why, whylen, "%s", r ? r : "unknown");
        return NULL;
    }
    if (dw != iw || dh != ih) {
        stbi_image_free(px);
        snprintf(why, whylen, "header says %dx%d, data %dx%d", iw, ih, dw, dh);
        return NULL;
    }
    *w = dw;
    *h = dh;
    return px;
}

int rt_image_decode_mem(const uint8_t *buf, size_t len, const char *name, rt_shape shape,
                        uint8_t *out, char *err)
{
    char why[RT_ERRLEN / 2];
    uint8_t *px = NULL;
    int w = 0, h = 0;
    if (rt_shape_check(shape, err) < 0)
        return -1;
    const rt_img_format fmt = rt_image_sniff(buf, len);
    if (fmt == RT_IMG_UNKNOWN)
        snprintf(why, sizeof why, "unknown format: JPEG, PNG, BMP or binary PGM/PPM expected");
    else if (fmt == RT_IMG_PNM)
        px = rt_pnm_decode(buf, len, shape.c, &w, &h, why, sizeof why);
    else if (len > INT_MAX)
        snprintf(why, sizeof why, "file too large");
    else if ((fmt != RT_IMG_JPEG || rt_jpeg_check(buf, len, why, sizeof why) == 0)
             && (fmt != RT_IMG_PNG || rt_png_check(buf, len, why, sizeof why) == 0))
        px = stb_decode(buf, len,
                        fmt == RT_IMG_JPEG ? "JPEG" : fmt == RT_IMG_PNG ? "PNG" : "BMP",
                        shape.c, &w, &h, why, sizeof why);
    if (!px) {
        snprintf(err, RT_ERRLEN, "%s: not a readable image (%s)", name, why);
        return -1;
    }
    int rc = rt_pixels_to_planar(px, w, h, shape.c, shape, out, why);
    free(px); /* stbi_image_free is free (STBI_FREE is not redefined) */
    if (rc < 0)
        snprintf(err, RT_ERRLEN, "%s: %.200s", name, why);
    return rc;
}

/* Reads a whole file of at most RT_IMAGE_FILE_MAX_BYTES. Returns the malloc'ed bytes with
 * *len set, or NULL with why set. */
static uint8_t *read_file(const char *file, size_t *len, char *why, size_t whylen)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(why, whylen, "%s", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= (size_t)RT_IMAGE_FILE_MAX_BYTES) {
            snprintf(why, whylen, "file larger than %ld MiB", RT_IMAGE_FILE_MAX_BYTES >> 20);
            free(buf);
            fclose(f);
            return NULL;
        }
        uint8_t *more = realloc(buf, cap * 2);
        if (!more)
            free(buf);
        buf = more;
        cap *= 2;
    }
    if (!buf) {
        snprintf(why, whylen, "out of memory");
        fclose(f);
        return NULL;
    }
    if (ferror(f)) {
        snprintf(why, whylen, "read error");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int rt_image_decode(const char *file, rt_shape shape, uint8_t *out, char *err)
{
    char why[RT_ERRLEN / 2];
    size_t len = 0;
    uint8_t *buf = read_file(file, &len, why, sizeof why);
    if (!buf) {
        snprintf(err, RT_ERRLEN, "%s: not a readable image (%s)", file, why);
        return -1;
    }
    int rc = rt_image_decode_mem(buf, len, file, shape, out, err);
    free(buf);
    return rc;
}

int rt_image_load(const char *file, rt_shape shape, float *x, char *err)
{
    if (rt_shape_check(shape, err) < 0)
        return -1;
    size_t n = (size_t)shape.c * shape.h * shape.w;
    uint8_t *px = malloc(n);
    if (!px) {
        snprintf(err, RT_ERRLEN, "%s: out of memory", file);
        return -1;
    }
    int rc = rt_image_decode(file, shape, px, err);
    if (rc == 0)
        for (size_t i = 0; i < n; i++)
            x[i] = px[i] / 255.0f;
    free(px);
    return rc;
}
