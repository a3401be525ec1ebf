/*
 * rt_image.c - one image to the network's input: decoding with stb_image (any format it
 * reads, converted to the channel count by its req_comp), resizing with stb_image_resize and
 * the move to planar [c][h][w]. The set loaders and --predict (rt_image_load) share it, so a
 * predicted file sees exactly the conversion the training images saw.
 */
#include "rt_data_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>
#include <stb_image_resize.h>

/* Area-averages w x h pixels down to nw x nh (nw <= w, nh <= h): output pixel (jx, jy)
 * is the rounded mean of source columns [jx*w/nw, (jx+1)*w/nw) and the matching rows, so
 * every source pixel counts once. A cheap pre-pass for large reductions: stb_image_resize
 * spends ~8 ms taking a 1280x720 frame to 128x128 (about as long as decoding it), this
 * pass ~0.5 ms, and stbir then ~0.4 ms on what is left (see rt_pixels_to_planar). */
static int box_shrink(const uint8_t *in, int w, int h, int comp, uint8_t *out, int nw, int nh)
{
    const size_t rowlen = (size_t)w * comp;
    int *xb = malloc(((size_t)nw + 1) * sizeof *xb);
    uint32_t *col = malloc(rowlen * sizeof *col); /* column sums over a band of rows */
    if (!xb || !col) {
        free(xb);
        free(col);
        return -1;
    }
    for (int j = 0; j <= nw; j++)
        xb[j] = (int)((long long)j * w / nw);
    for (int jy = 0; jy < nh; jy++) {
        int y0 = (int)((long long)jy * h / nh), y1 = (int)((long long)(jy + 1) * h / nh);
        /* Sum the band's rows (a contiguous loop the compiler vectorises), then the
         * column blocks of that sum. */
        memset(col, 0, rowlen * sizeof *col);
        for (int y = y0; y < y1; y++) {
            const uint8_t *row = in + (size_t)y * rowlen;
            size_t i = 0;
            for (; i + 16 <= rowlen; i += 16) /* fixed-length blocks: SIMD at plain -O2 */
                for (int k = 0; k < 16; k++)
                    col[i + k] += row[i + k];
            for (; i < rowlen; i++)
                col[i] += row[i];
        }
        uint8_t *o = out + (size_t)jy * nw * comp;
        for (int jx = 0; jx < nw; jx++) {
            uint32_t cnt = (uint32_t)(y1 - y0) * (uint32_t)(xb[jx + 1] - xb[jx]);
            for (int c = 0; c < comp; c++) {
                uint32_t sum = 0;
                for (int x = xb[jx]; x < xb[jx + 1]; x++)
                    sum += col[(size_t)x * comp + c];
                o[jx * comp + c] = (uint8_t)((sum + cnt / 2) / cnt);
            }
        }
    }
    free(xb);
    free(col);
    return 0;
}

int rt_pixels_to_planar(const uint8_t *in, int w, int h, int comp, rt_shape shape,
                        uint8_t *out, char *err)
{
    const int C = shape.c, H = shape.h, W = shape.w;
    if (comp != C && comp != 1) {
        snprintf(err, RT_ERRLEN, "cannot convert %d-channel pixels to %d channels", comp, C);
        return -1;
    }
    /* A source at least twice the target along a side is first area-averaged by the
     * integer factor that leaves it 1 to 2 times the target, then resized by stbir. */
    const uint8_t *src = in;
    uint8_t *tmp = NULL, *pre = NULL;
    int kx = w / W, ky = h / H;
    if (kx >= 2 || ky >= 2) {
        int nw = kx >= 2 ? w / kx : w, nh = ky >= 2 ? h / ky : h;
        pre = malloc((size_t)nw * nh * comp);
        if (!pre || box_shrink(in, w, h, comp, pre, nw, nh) < 0) {
            free(pre);
            snprintf(err, RT_ERRLEN, "out of memory resizing a %dx%d image", w, h);
            return -1;
        }
        in = pre;
        w = nw;
        h = nh;
    }
    /* Resize with the source's channels (grey is cheaper to resize than its copies). */
    src = in;
    if (w != W || h != H) {
        tmp = malloc((size_t)W * H * comp);
        if (!tmp) {
            free(pre);
            snprintf(err, RT_ERRLEN, "out of memory resizing a %dx%d image", w, h);
            return -1;
        }
        if (!stbir_resize_uint8(in, w, h, 0, tmp, W, H, 0, comp)) {
            free(tmp);
            free(pre);
            snprintf(err, RT_ERRLEN, "cannot resize a %dx%d image to %dx%d", w, h, W, H);
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
    free(pre);
    return 0;
}

int rt_image_decode(const char *file, rt_shape shape, uint8_t *out, char *err)
{
    int w, h, comp;
    /* Top row first whatever another part of the program set globally (this thread only). */
    stbi_set_flip_vertically_on_load_thread(0);
    uint8_t *px = stbi_load(file, &w, &h, &comp, shape.c);
    if (!px) {
        const char *why = stbi_failure_reason();
        snprintf(err, RT_ERRLEN, "%s: not a readable image (%s)", file, why ? why : "unknown");
        return -1;
    }
    char why[RT_ERRLEN];
    int rc = rt_pixels_to_planar(px, w, h, shape.c, shape, out, why);
    stbi_image_free(px);
    if (rc < 0)
        snprintf(err, RT_ERRLEN, "%s: %.200s", file, why);
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
