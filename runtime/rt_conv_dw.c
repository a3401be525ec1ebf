/*
 * rt_conv_dw.c - depthwise convolution (a group per input channel) by direct loops.
 *
 * Each output channel reads a single input channel, so im2col + GEMM would multiply by a
 * one-row matrix; here every kernel tap instead adds a shifted (strided, dilated) input row
 * times its weight to an output row, a loop gcc vectorises. Rows that reach into the
 * padding take the padding mode's cell through rt_pad_index, as im2col does. The work is
 * split by output channel (forward, dW, db) or input channel (dX), so each value is summed
 * by one worker in a fixed order and the bits do not depend on the pool size.
 */
#include "rt_conv_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The input offsets of tap (ky, kx) of output (0, 0): flip pairs weight (ky, kx) with the
 * tap rotated by 180 degrees. */
static int tap_row(const rt_conv_geom *g, int ky)
{
    return (g->flip ? g->kh - 1 - ky : ky) * g->dh - g->pt;
}

static int tap_col(const rt_conv_geom *g, int kx)
{
    return (g->flip ? g->kw - 1 - kx : kx) * g->dw - g->pl;
}

/* d[ox] += wv * s[ox*sw + off] over the output row, padding cells through the mode. */
static void row_axpy(const rt_conv_geom *g, float wv, const float *s, int off, float *d)
{
    const int ow = g->ow, sw = g->sw;
    int lo, hi;
    rt_conv_interior(ow, sw, off, g->w, &lo, &hi);
    for (int ox = 0; ox < lo; ox++) {
        int ix = rt_pad_index(ox * sw + off, g->w, g->pad);
        if (ix >= 0)
            d[ox] += wv * s[ix];
    }
    if (sw == 1) {
        const float *sp = s + off;
        for (int ox = lo; ox < hi; ox++)
            d[ox] += wv * sp[ox];
    } else {
        for (int ox = lo; ox < hi; ox++)
            d[ox] += wv * s[ox * sw + off];
    }
    for (int ox = hi; ox < ow; ox++) {
        int ix = rt_pad_index(ox * sw + off, g->w, g->pad);
        if (ix >= 0)
            d[ox] += wv * s[ix];
    }
}

/* Its transpose: d[ox*sw + off] += wv * s[ox], the padding's share to its source cell. */
static void row_scatter(const rt_conv_geom *g, float wv, const float *s, int off, float *d)
{
    const int ow = g->ow, sw = g->sw;
    int lo, hi;
    rt_conv_interior(ow, sw, off, g->w, &lo, &hi);
    for (int ox = 0; ox < lo; ox++) {
        int ix = rt_pad_index(ox * sw + off, g->w, g->pad);
        if (ix >= 0)
            d[ix] += wv * s[ox];
    }
    if (sw == 1) {
        float *dp = d + off;
        for (int ox = lo; ox < hi; ox++)
            dp[ox] += wv * s[ox];
    } else {
        for (int ox = lo; ox < hi; ox++)
            d[ox * sw + off] += wv * s[ox];
    }
    for (int ox = hi; ox < ow; ox++) {
        int ix = rt_pad_index(ox * sw + off, g->w, g->pad);
        if (ix >= 0)
            d[ix] += wv * s[ox];
    }
}

/* sum over the row of a[ox] * s[ox*sw + off], padding cells through the mode; RT_VEC
 * partial sums so that the contiguous case vectorises. */
static double row_dot(const rt_conv_geom *g, const float *a, const float *s, int off)
{
    const int ow = g->ow, sw = g->sw;
    int lo, hi;
    rt_conv_interior(ow, sw, off, g->w, &lo, &hi);
    float edge = 0.0f;
    for (int ox = 0; ox < lo; ox++) {
        int ix = rt_pad_index(ox * sw + off, g->w, g->pad);
        if (ix >= 0)
            edge += a[ox] * s[ix];
    }
    for (int ox = hi; ox < ow; ox++) {
        int ix = rt_pad_index(ox * sw + off, g->w, g->pad);
        if (ix >= 0)
            edge += a[ox] * s[ix];
    }
    double sum = edge;
    if (sw == 1) {
        const float *sp = s + off;
        float part[RT_VEC] = {0};
        int ox = lo;
        for (; ox + RT_VEC <= hi; ox += RT_VEC)
            for (int k = 0; k < RT_VEC; k++)
                part[k] += a[ox + k] * sp[ox + k];
        for (int k = 0; k < RT_VEC; k++)
            sum += part[k];
        for (; ox < hi; ox++)
            sum += a[ox] * sp[ox];
    } else {
        for (int ox = lo; ox < hi; ox++)
            sum += a[ox] * s[ox * sw + off];
    }
    return sum;
}

/* ------------------------------------------------------------------ forward */

typedef struct {
    const rt_conv_geom *g;
    const float *x, *w, *b, *dz;
    rt_act act;
    float alpha;
    float *y, *dx, *dw, *db;
    int n, accum;
    atomic_int fail;
} dw_job;

static void fwd_task(void *arg, rt_worker *wk)
{
    dw_job *j = arg;
    const rt_conv_geom *g = j->g;
    const int m = g->oc / g->c, P = g->oh * g->ow, KK = g->kh * g->kw;
    int lo, hi; /* items: (image, output channel) */
    rt_split_range(j->n * g->oc, rt_worker_count(wk), rt_worker_id(wk), &lo, &hi);
    for (int it = lo; it < hi; it++) {
        int s = it / g->oc, o = it % g->oc;
        const float *xs = j->x + ((size_t)s * g->c + o / m) * g->h * g->w;
        const float *wo = j->w + (size_t)o * KK;
        float *ys = j->y + ((size_t)s * g->oc + o) * P;
        float bias = j->b ? j->b[o] : 0.0f;
        for (int oy = 0; oy < g->oh; oy++) {
            float *d = ys + (size_t)oy * g->ow;
            for (int ox = 0; ox < g->ow; ox++)
                d[ox] = bias;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = rt_pad_index(oy * g->sh + tap_row(g, ky), g->h, g->pad);
                if (iy < 0)
                    continue;
                for (int kx = 0; kx < g->kw; kx++)
                    row_axpy(g, wo[ky * g->kw + kx], xs + (size_t)iy * g->w, tap_col(g, kx),
                             d);
            }
        }
        rt_act_forward(j->act, j->alpha, ys, ys, (size_t)P);
    }
}

int rt_conv_dw_forward(const rt_conv_geom *g, const float *x, const float *w, const float *b,
                       rt_act act, float alpha, float *y, int n, rt_threads *tp)
{
    dw_job j = {g, x, w, b, NULL, act, alpha, y, NULL, NULL, NULL, n, 0, 0};
    rt_threads_run(tp, fwd_task, &j);
    return 0;
}

/* ------------------------------------------------------------------ backward */

static void bwd_task(void *arg, rt_worker *wk)
{
    dw_job *j = arg;
    const rt_conv_geom *g = j->g;
    const int m = g->oc / g->c, P = g->oh * g->ow, KK = g->kh * g->kw;
    const size_t hw = (size_t)g->h * g->w;
    const int nt = rt_worker_count(wk), tid = rt_worker_id(wk);
    int lo, hi;
    /* dW and db: each output channel over all images, tap sums in double */
    rt_split_range(g->oc, nt, tid, &lo, &hi);
    if (lo < hi) {
        double *acc = rt_worker_scratch(wk, (size_t)KK * sizeof *acc);
        if (!acc) {
            atomic_store(&j->fail, 1);
            return;
        }
        for (int o = lo; o < hi; o++) {
            double sb = 0.0;
            memset(acc, 0, (size_t)KK * sizeof *acc);
            for (int s = 0; s < j->n; s++) {
                const float *xs = j->x + ((size_t)s * g->c + o / m) * hw;
                const float *dzs = j->dz + ((size_t)s * g->oc + o) * P;
                if (j->db)
                    sb += rt_sum(dzs, (size_t)P);
                for (int oy = 0; oy < g->oh; oy++)
                    for (int ky = 0; ky < g->kh; ky++) {
                        int iy = rt_pad_index(oy * g->sh + tap_row(g, ky), g->h, g->pad);
                        if (iy < 0)
                            continue;
                        for (int kx = 0; kx < g->kw; kx++)
                            acc[ky * g->kw + kx] += row_dot(g, dzs + (size_t)oy * g->ow,
                                                            xs + (size_t)iy * g->w,
                                                            tap_col(g, kx));
                    }
            }
            for (int k = 0; k < KK; k++)
                j->dw[(size_t)o * KK + k] = (float)acc[k];
            if (j->db)
                j->db[o] = (float)sb;
        }
    }
    if (!j->dx)
        return;
    /* dX: each input channel of each image, from its m output channels */
    rt_split_range(j->n * g->c, nt, tid, &lo, &hi);
    for (int it = lo; it < hi; it++) {
        int s = it / g->c, ci = it % g->c;
        float *dxc = j->dx + ((size_t)s * g->c + ci) * hw;
        if (!j->accum)
            memset(dxc, 0, hw * sizeof *dxc);
        for (int o = ci * m; o < (ci + 1) * m; o++) {
            const float *dzs = j->dz + ((size_t)s * g->oc + o) * P;
            const float *wo = j->w + (size_t)o * KK;
            for (int oy = 0; oy < g->oh; oy++)
                for (int ky = 0; ky < g->kh; ky++) {
                    int iy = rt_pad_index(oy * g->sh + tap_row(g, ky), g->h, g->pad);
                    if (iy < 0)
                        continue;
                    for (int kx = 0; kx < g->kw; kx++)
                        row_scatter(g, wo[ky * g->kw + kx], dzs + (size_t)oy * g->ow,
                                    tap_col(g, kx), dxc + (size_t)iy * g->w);
                }
        }
    }
}

int rt_conv_dw_backward(const rt_conv_geom *g, const float *x, const float *w, const float *dz,
                        float *dx, int accum, float *dw, float *db, int n, rt_threads *tp)
{
    dw_job j = {g, x, w, NULL, dz, RT_ACT_NONE, 0.0f, NULL, dx, dw, db, n, accum, 0};
    rt_threads_run(tp, bwd_task, &j);
    return atomic_load(&j.fail) ? -1 : 0;
}

size_t rt_conv_dw_scratch_size(const rt_conv_geom *g)
{
    return (size_t)g->kh * g->kw * sizeof(double);
}
