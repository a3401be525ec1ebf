/*
 * rt_augment.c - random transformations of training images (`augment vflip crop=4
 * rotate=10 scale=0.1 jitter=0.2`), as torchvision's transforms do them: a random crop of
 * the image padded by P zeros, a vertical flip with probability 1/2, a rotation and zoom
 * about the centre with bilinear sampling and zero fill, brightness then contrast jitter
 * (contrast blends with the image's mean), values kept in [0, 1]. Horizontal flips happen
 * when the batch is copied (rt_dataset_batch). Each image draws from its own generator
 * seeded by the run's seed, the epoch and its place in the epoch, so a resumed run and any
 * thread count see the same transformations.
 */
#include "cnnrt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEED_AUGMENT 0x4155474d454e5431ull /* "AUGMENT1" */

int rt_augment_active(const rt_augment_cfg *a)
{
    return a->vflip || a->crop > 0 || a->rotate > 0 || a->scale > 0 || a->jitter > 0;
}

/* A uniform number in [lo, hi] from r (24 random bits). */
static float uniform(rt_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * rt_rng_uniform(r);
}

void rt_augment_draw(const rt_augment_cfg *a, uint64_t seed, int epoch, long pos,
                     rt_augment_params *p)
{
    rt_rng r;
    rt_rng_seed(&r, seed ^ SEED_AUGMENT ^ (0x9e3779b97f4a7c15ull * (uint64_t)(epoch + 1)) ^
                    (0xbf58476d1ce4e5b9ull * (uint64_t)(pos + 1)));
    memset(p, 0, sizeof *p);
    p->scale = p->brightness = p->contrast = 1.0f;
    /* every draw happens whatever is enabled, so one setting never shifts another's */
    p->vflip = a->vflip && (rt_rng_next(&r) >> 63);
    int dy = (int)(rt_rng_next(&r) % (uint64_t)(2 * a->crop + 1));
    int dx = (int)(rt_rng_next(&r) % (uint64_t)(2 * a->crop + 1));
    p->dy = a->crop > 0 ? dy - a->crop : 0;
    p->dx = a->crop > 0 ? dx - a->crop : 0;
    float deg = uniform(&r, -a->rotate, a->rotate), s = uniform(&r, 1 - a->scale, 1 + a->scale);
    float b = uniform(&r, 1 - a->jitter, 1 + a->jitter), c = uniform(&r, 1 - a->jitter, 1 + a->jitter);
    p->degrees = a->rotate > 0 ? deg : 0.0f;
    p->scale = a->scale > 0 ? s : 1.0f;
    p->brightness = a->jitter > 0 ? b : 1.0f;
    p->contrast = a->jitter > 0 ? c : 1.0f;
}

/* Bilinear sample of plane at (u, v) in pixel coordinates, zero outside. */
static float sample(const float *plane, int h, int w, float u, float v)
{
    int x0 = (int)floorf(u), y0 = (int)floorf(v);
    float fx = u - (float)x0, fy = v - (float)y0, s = 0.0f;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            int x = x0 + i, y = y0 + j;
            if (x < 0 || y < 0 || x >= w || y >= h)
                continue;
            float wgt = (i ? fx : 1 - fx) * (j ? fy : 1 - fy);
            s += wgt * plane[(size_t)y * w + x];
        }
    return s;
}

void rt_augment_apply(const rt_augment_params *p, float *x, int c, int h, int w, float *tmp)
{
    const size_t plane = (size_t)h * w, n = (size_t)c * plane;
    /* crop: the image shifted by (dy, dx) inside its zero padding */
    if (p->dy || p->dx) {
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) {
                    int sy = y + p->dy, sx = xx + p->dx;
                    tmp[ch * plane + (size_t)y * w + xx] =
                        sy < 0 || sx < 0 || sy >= h || sx >= w ? 0.0f : x[ch * plane + (size_t)sy * w + sx];
                }
        memcpy(x, tmp, n * sizeof *x);
    }
    if (p->vflip)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h / 2; y++)
                for (int xx = 0; xx < w; xx++) {
                    float *a = x + ch * plane + (size_t)y * w + xx, *b = x + ch * plane + (size_t)(h - 1 - y) * w + xx;
                    float t = *a;
                    *a = *b;
                    *b = t;
                }
    /* rotation (counter-clockwise on the screen) and zoom about the centre: each output
     * pixel samples the input where the inverse transformation takes it */
    if (p->degrees != 0.0f || p->scale != 1.0f) {
        const double th = p->degrees * 3.14159265358979323846 / 180.0;
        const float cs = (float)(cos(th) / p->scale), sn = (float)(sin(th) / p->scale);
        const float cx = (w - 1) * 0.5f, cy = (h - 1) * 0.5f;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) {
                    float dx = (float)xx - cx, dy = (float)y - cy;
                    float u = cx + cs * dx - sn * dy, v = cy + sn * dx + cs * dy;
                    tmp[ch * plane + (size_t)y * w + xx] = sample(x + ch * plane, h, w, u, v);
                }
        memcpy(x, tmp, n * sizeof *x);
    }
    /* brightness, then contrast against the image's mean, within [0, 1] */
    if (p->brightness != 1.0f || p->contrast != 1.0f) {
        double mean = 0;
        for (size_t i = 0; i < n; i++) {
            float v = x[i] * p->brightness;
            x[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            mean += x[i];
        }
        const float m = (float)(mean / (double)n);
        for (size_t i = 0; i < n; i++) {
            float v = (x[i] - m) * p->contrast + m;
            x[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        }
    }
}

void rt_augment_batch(const rt_augment_cfg *a, uint64_t seed, int epoch, long first, float *x,
                      int n, int c, int h, int w, float *tmp)
{
    if (!rt_augment_active(a))
        return;
    const size_t isz = (size_t)c * h * w;
    for (int i = 0; i < n; i++) {
        rt_augment_params p;
        rt_augment_draw(a, seed, epoch, first + i, &p);
        rt_augment_apply(&p, x + (size_t)i * isz, c, h, w, tmp);
    }
}
