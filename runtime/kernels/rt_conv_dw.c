/*
 * rt_conv_dw.c - depthwise convolution (a group per input channel) by direct loops.
 *
 * Each output channel reads a single input channel, so im2col + GEMM would multiply by a
 * one-row matrix. Here the input channel is first copied into a plane with its padding
 * filled by the mode; every output is then its bias plus a short sum over the kernel taps at
 * fixed offsets in that plane, summed for a block of outputs at a time. Backward sums the
 * gradient into a padded plane the same way and folds the padding back onto the pixels it
 * copied. Loops over unknown lengths vectorise at -O2 only when staged in local arrays of
 * constant size, hence the blocks of BLK. The work is split by output channel (forward, dW,
 * db) or input channel (dX), so each value is summed by one worker in a fixed order and the
 * bits do not depend on the pool size.
 */
#include "rt_conv_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BLK 16 /* outputs summed at once */

typedef struct {
    const rt_conv_geom *g;
    const float *x, *w, *b, *dz;
    rt_act act;
    float alpha;
    float *y, *dx, *dw, *db;
    int n, accum;
    atomic_int fail;
} dw_job;

/* A worker's scratch: the padded plane, the padded gradient plane, the taps' offsets in
 * the plane and the dW sums. */
typedef struct {
    float *plane, *grad;
    int *off;
    double *acc;
} dw_scratch;

static size_t plane_floats(const rt_conv_geom *g)
{
    return ((size_t)(g->h + g->pt + g->pb) * (g->w + g->pl + g->pr) + 15) / 16 * 16;
}

size_t rt_conv_dw_scratch_size(const rt_conv_geom *g)
{
    size_t kk = ((size_t)g->kh * g->kw + 15) / 16 * 16;
    return 2 * plane_floats(g) * sizeof(float) + kk * (sizeof(int) + sizeof(double));
}

static int take_scratch(rt_worker *wk, const rt_conv_geom *g, dw_scratch *s)
{
    size_t pf = plane_floats(g), kk = ((size_t)g->kh * g->kw + 15) / 16 * 16;
    char *p = rt_worker_scratch(wk, rt_conv_dw_scratch_size(g));
    if (!p)
        return -1;
    s->acc = (double *)p;
    s->plane = (float *)(p + kk * sizeof(double));
    s->grad = s->plane + pf;
    s->off = (int *)(s->grad + pf);
    return 0;
}

/* The offset of each tap in the padded plane, relative to output (0, 0): flip pairs
 * weight (ky, kx) with the tap rotated by 180 degrees. */
static void tap_offsets(const rt_conv_geom *g, int *off)
{
    const int pw = g->w + g->pl + g->pr;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++) {
            int ey = g->flip ? g->kh - 1 - ky : ky, ex = g->flip ? g->kw - 1 - kx : kx;
            off[ky * g->kw + kx] = ey * g->dh * pw + ex * g->dw;
        }
}

/* Channel src [h][w] into the plane [h+pt+pb][w+pl+pr], padding cells by the mode. */
static void pad_plane(const rt_conv_geom *g, const float *src, float *plane)
{
    const int pw = g->w + g->pl + g->pr, ph = g->h + g->pt + g->pb;
    for (int py = 0; py < ph; py++) {
        float *d = plane + (size_t)py * pw;
        int iy = rt_pad_index(py - g->pt, g->h, g->pad);
        if (iy < 0) {
            memset(d, 0, (size_t)pw * sizeof *d);
            continue;
        }
        const float *s = src + (size_t)iy * g->w;
        for (int px = 0; px < g->pl; px++) {
            int ix = rt_pad_index(px - g->pl, g->w, g->pad);
            d[px] = ix < 0 ? 0.0f : s[ix];
        }
        memcpy(d + g->pl, s, (size_t)g->w * sizeof *d);
        for (int px = g->pl + g->w; px < pw; px++) {
            int ix = rt_pad_index(px - g->pl, g->w, g->pad);
            d[px] = ix < 0 ? 0.0f : s[ix];
        }
    }
}

/* Adds the gradient plane to dst [h][w]: each padded cell's share goes to its source. */
static void fold_plane(const rt_conv_geom *g, const float *plane, float *dst)
{
    const int pw = g->w + g->pl + g->pr, ph = g->h + g->pt + g->pb;
    /* the interior first, then the padding in plane order: a fixed order of additions */
    for (int iy = 0; iy < g->h; iy++)
        rt_grad_pass(plane + (size_t)(iy + g->pt) * pw + g->pl, dst + (size_t)iy * g->w,
                     (size_t)g->w, 1);
    if (g->pad == RT_PAD_ZERO)
        return;
    for (int py = 0; py < ph; py++) {
        int iy = rt_pad_index(py - g->pt, g->h, g->pad);
        int inner = py >= g->pt && py < g->pt + g->h;
        if (iy < 0)
            continue;
        for (int px = 0; px < pw; px++) {
            if (inner && px == g->pl) {
                px += g->w - 1; /* the interior, done above */
                continue;
            }
            int ix = rt_pad_index(px - g->pl, g->w, g->pad);
            if (ix >= 0)
                dst[(size_t)iy * g->w + ix] += plane[(size_t)py * pw + px];
        }
    }
}

/* ------------------------------------------------------------------ forward */

/* Output row oy of a channel: d[ox] = bias + sum_t wt[t] * plane[oy*sh*pw + ox*sw + off[t]]. */
static void fwd_row(const rt_conv_geom *g, const float *plane, const float *wt, const int *off,
                    float bias, int oy, float *d)
{
    const int pw = g->w + g->pl + g->pr, nt = g->kh * g->kw, sw = g->sw, ow = g->ow;
    const float *base = plane + (size_t)oy * g->sh * pw;
    int ox = 0;
    if (sw == 1)
        for (; ox + BLK <= ow; ox += BLK) {
            float acc[BLK];
            for (int k = 0; k < BLK; k++)
                acc[k] = bias;
            for (int t = 0; t < nt; t++) {
                const float *s = base + off[t] + ox, wv = wt[t];
                for (int k = 0; k < BLK; k++)
                    acc[k] += wv * s[k];
            }
            memcpy(d + ox, acc, sizeof acc);
        }
    for (; ox < ow; ox++) {
        float a = bias;
        for (int t = 0; t < nt; t++)
            a += wt[t] * base[(size_t)ox * sw + off[t]];
        d[ox] = a;
    }
}

static void fwd_task(void *arg, rt_worker *wk)
{
    dw_job *j = arg;
    const rt_conv_geom *g = j->g;
    const int m = g->oc / g->c, P = g->oh * g->ow, nt = g->kh * g->kw;
    int lo, hi; /* items: (image, output channel) */
    rt_split_range(j->n * g->oc, rt_worker_count(wk), rt_worker_id(wk), &lo, &hi);
    if (lo >= hi)
        return;
    dw_scratch sc;
    if (take_scratch(wk, g, &sc) != 0) {
        atomic_store(&j->fail, 1);
        return;
    }
    tap_offsets(g, sc.off);
    int padded = -1; /* the (image, input channel) in the plane */
    for (int it = lo; it < hi; it++) {
        int s = it / g->oc, o = it % g->oc, src = s * g->c + o / m;
        if (src != padded)
            pad_plane(g, j->x + (size_t)src * g->h * g->w, sc.plane), padded = src;
        float *ys = j->y + ((size_t)s * g->oc + o) * P;
        for (int oy = 0; oy < g->oh; oy++)
            fwd_row(g, sc.plane, j->w + (size_t)o * nt, sc.off, j->b ? j->b[o] : 0.0f, oy,
                    ys + (size_t)oy * g->ow);
        rt_act_forward(j->act, j->alpha, ys, ys, (size_t)P);
    }
}

int rt_conv_dw_forward(const rt_conv_geom *g, const float *x, const float *w, const float *b,
                       rt_act act, float alpha, float *y, int n, rt_threads *tp)
{
    dw_job j = {g, x, w, b, NULL, act, alpha, y, NULL, NULL, NULL, n, 0, 0};
    rt_threads_run(tp, fwd_task, &j);
    return atomic_load(&j.fail) ? -1 : 0;
}

/* ------------------------------------------------------------------ backward */

/* dW and db of output channel o over all images: per tap, BLK partial sums over the output
 * columns in blocks, added up in double after each image. */
static void dw_channel(const dw_job *j, dw_scratch *sc, int o)
{
    const rt_conv_geom *g = j->g;
    const int m = g->oc / g->c, P = g->oh * g->ow, nt = g->kh * g->kw;
    const int pw = g->w + g->pl + g->pr, sw = g->sw, ow = g->ow;
    const int full = sw == 1 ? ow / BLK * BLK : 0; /* columns done in blocks */
    double sb = 0.0;
    memset(sc->acc, 0, (size_t)nt * sizeof *sc->acc);
    for (int s = 0; s < j->n; s++) {
        const float *dzs = j->dz + ((size_t)s * g->oc + o) * P;
        pad_plane(g, j->x + ((size_t)s * g->c + o / m) * g->h * g->w, sc->plane);
        if (j->db)
            sb += rt_sum(dzs, (size_t)P);
        for (int t = 0; t < nt; t++) {
            float part[BLK] = {0}, rest = 0.0f;
            for (int oy = 0; oy < g->oh; oy++) {
                const float *dr = dzs + (size_t)oy * ow;
                const float *xs = sc->plane + (size_t)oy * g->sh * pw + sc->off[t];
                for (int ox = 0; ox < full; ox += BLK)
                    for (int k = 0; k < BLK; k++)
                        part[k] += dr[ox + k] * xs[ox + k];
                for (int ox = full; ox < ow; ox++)
                    rest += dr[ox] * xs[(size_t)ox * sw];
            }
            double a = rest;
            for (int k = 0; k < BLK; k++)
                a += part[k];
            sc->acc[t] += a;
        }
    }
    for (int t = 0; t < nt; t++)
        j->dw[(size_t)o * nt + t] = (float)sc->acc[t];
    if (j->db)
        j->db[o] = (float)sb;
}

/* dX of input channel ci of image s: its m output channels' gradients through the taps,
 * summed in the padded gradient plane, then folded onto the channel. */
static void dx_channel(const dw_job *j, dw_scratch *sc, int s, int ci)
{
    const rt_conv_geom *g = j->g;
    const int m = g->oc / g->c, P = g->oh * g->ow, nt = g->kh * g->kw;
    const int pw = g->w + g->pl + g->pr, sw = g->sw, ow = g->ow;
    const size_t hw = (size_t)g->h * g->w;
    float *dxc = j->dx + ((size_t)s * g->c + ci) * hw;
    memset(sc->grad, 0, (size_t)(g->h + g->pt + g->pb) * pw * sizeof *sc->grad);
    for (int o = ci * m; o < (ci + 1) * m; o++) {
        const float *dzs = j->dz + ((size_t)s * g->oc + o) * P;
        const float *wo = j->w + (size_t)o * nt;
        for (int oy = 0; oy < g->oh; oy++) {
            const float *dr = dzs + (size_t)oy * ow;
            float *base = sc->grad + (size_t)oy * g->sh * pw;
            for (int t = 0; t < nt; t++) {
                float *d = base + sc->off[t];
                const float wv = wo[t];
                int ox = 0;
                if (sw == 1)
                    for (; ox + BLK <= ow; ox += BLK) {
                        float v[BLK];
                        for (int k = 0; k < BLK; k++)
                            v[k] = d[ox + k] + wv * dr[ox + k];
                        memcpy(d + ox, v, sizeof v);
                    }
                for (; ox < ow; ox++)
                    d[(size_t)ox * sw] += wv * dr[ox];
            }
        }
    }
    if (!j->accum)
        memset(dxc, 0, hw * sizeof *dxc);
    fold_plane(g, sc->grad, dxc);
}

static void bwd_task(void *arg, rt_worker *wk)
{
    dw_job *j = arg;
    const rt_conv_geom *g = j->g;
    const int nt = rt_worker_count(wk), tid = rt_worker_id(wk);
    dw_scratch sc;
    if (take_scratch(wk, g, &sc) != 0) {
        atomic_store(&j->fail, 1);
        return;
    }
    tap_offsets(g, sc.off);
    int lo, hi;
    rt_split_range(g->oc, nt, tid, &lo, &hi);
    for (int o = lo; o < hi; o++)
        dw_channel(j, &sc, o);
    if (!j->dx)
        return;
    rt_split_range(j->n * g->c, nt, tid, &lo, &hi);
    for (int it = lo; it < hi; it++)
        dx_channel(j, &sc, it / g->c, it % g->c);
}

int rt_conv_dw_backward(const rt_conv_geom *g, const float *x, const float *w, const float *dz,
                        float *dx, int accum, float *dw, float *db, int n, rt_threads *tp)
{
    dw_job j = {g, x, w, NULL, dz, RT_ACT_NONE, 0.0f, NULL, dx, dw, db, n, accum, 0};
    rt_threads_run(tp, bwd_task, &j);
    return atomic_load(&j.fail) ? -1 : 0;
}
