/*
 * rt_conv.c - 2-D convolution forward and backward by im2col + GEMM.
 *
 * Each image is processed in bands of output rows small enough that the band's patch matrix
 * (im2col, which also fills the padding by its mode and flips the kernel for a true
 * convolution) stays in cache for the GEMM. Backward computes dW with the same patch matrix
 * and dX with W^T times the gradient followed by col2im, which sends a padded cell's gradient
 * to the pixel it was copied from. 1x1 stride-1 unpadded convolutions skip im2col.
 */
#include "rt_kernels.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COL_TARGET_FLOATS (64 * 1024) /* a band's patch matrix: about 256 KiB */

int rt_conv_geom_check(const rt_conv_geom *g, char *err)
{
    const char *why = NULL;
    if (g->c < 1 || g->h < 1 || g->w < 1 || g->oc < 1 || g->oh < 1 || g->ow < 1)
        why = "empty input or output";
    else if (g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1)
        why = "kernel and stride must be positive";
    else if (g->pt < 0 || g->pb < 0 || g->pl < 0 || g->pr < 0)
        why = "negative padding";
    else if ((g->oh - 1) * g->sh + g->kh > g->h + g->pt + g->pb ||
             (g->ow - 1) * g->sw + g->kw > g->w + g->pl + g->pr)
        why = "the output size needs windows outside the padded input";
    else if (g->pad == RT_PAD_REFLECT &&
             (g->pt >= g->h || g->pb >= g->h || g->pl >= g->w || g->pr >= g->w))
        why = "reflect padding must be smaller than the input";
    else if (g->pad == RT_PAD_CIRCULAR &&
             (g->pt > g->h || g->pb > g->h || g->pl > g->w || g->pr > g->w))
        why = "circular padding cannot exceed the input size";
    if (!why)
        return 0;
    if (err)
        snprintf(err, RT_ERRLEN, "convolution %dx%dx%d -> %dx%dx%d, kernel %dx%d: %s", g->c,
                 g->h, g->w, g->oc, g->oh, g->ow, g->kh, g->kw, why);
    return -1;
}

/* The range [*lo, *hi) of output columns whose input column ox*sw + off lies in [0, w). */
static void interior(int ow, int sw, int off, int w, int *lo, int *hi)
{
    int a = off >= 0 ? 0 : (-off + sw - 1) / sw;
    int b = w - 1 - off < 0 ? 0 : (w - 1 - off) / sw + 1;
    if (a > ow)
        a = ow;
    if (b > ow)
        b = ow;
    if (b < a)
        b = a;
    *lo = a;
    *hi = b;
}

void rt_im2col(const rt_conv_geom *g, const float *x, int oy0, int oy1, float *col)
{
    const int ow = g->ow, pc = (oy1 - oy0) * ow;
    for (int ci = 0; ci < g->c; ci++)
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                int ey = g->flip ? g->kh - 1 - ky : ky, ex = g->flip ? g->kw - 1 - kx : kx;
                int off = ex - g->pl, lo, hi;
                interior(ow, g->sw, off, g->w, &lo, &hi);
                float *row = col + (size_t)((ci * g->kh + ky) * g->kw + kx) * pc;
                for (int oy = oy0; oy < oy1; oy++) {
                    float *d = row + (size_t)(oy - oy0) * ow;
                    int iy = rt_pad_index(oy * g->sh + ey - g->pt, g->h, g->pad);
                    if (iy < 0) {
                        memset(d, 0, (size_t)ow * sizeof *d);
                        continue;
                    }
                    const float *s = x + ((size_t)ci * g->h + iy) * g->w;
                    for (int ox = 0; ox < lo; ox++) {
                        int ix = rt_pad_index(ox * g->sw + off, g->w, g->pad);
                        d[ox] = ix < 0 ? 0.0f : s[ix];
                    }
                    if (g->sw == 1)
                        memcpy(d + lo, s + lo + off, (size_t)(hi - lo) * sizeof *d);
                    else
                        for (int ox = lo; ox < hi; ox++)
                            d[ox] = s[ox * g->sw + off];
                    for (int ox = hi; ox < ow; ox++) {
                        int ix = rt_pad_index(ox * g->sw + off, g->w, g->pad);
                        d[ox] = ix < 0 ? 0.0f : s[ix];
                    }
                }
            }
}

void rt_col2im(const rt_conv_geom *g, const float *col, int oy0, int oy1, float *dx)
{
    const int ow = g->ow, pc = (oy1 - oy0) * ow;
    for (int ci = 0; ci < g->c; ci++)
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                int ey = g->flip ? g->kh - 1 - ky : ky, ex = g->flip ? g->kw - 1 - kx : kx;
                int off = ex - g->pl, lo, hi;
                interior(ow, g->sw, off, g->w, &lo, &hi);
                const float *row = col + (size_t)((ci * g->kh + ky) * g->kw + kx) * pc;
                for (int oy = oy0; oy < oy1; oy++) {
                    const float *s = row + (size_t)(oy - oy0) * ow;
                    int iy = rt_pad_index(oy * g->sh + ey - g->pt, g->h, g->pad);
                    if (iy < 0)
                        continue;
                    float *d = dx + ((size_t)ci * g->h + iy) * g->w;
                    for (int ox = 0; ox < lo; ox++) {
                        int ix = rt_pad_index(ox * g->sw + off, g->w, g->pad);
                        if (ix >= 0)
                            d[ix] += s[ox];
                    }
                    if (g->sw == 1) {
                        float *dd = d + off;
                        for (int ox = lo; ox < hi; ox++)
                            dd[ox] += s[ox];
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            d[ox * g->sw + off] += s[ox];
                    }
                    for (int ox = hi; ox < ow; ox++) {
                        int ix = rt_pad_index(ox * g->sw + off, g->w, g->pad);
                        if (ix >= 0)
                            d[ix] += s[ox];
                    }
                }
            }
}

/* A 1x1, stride 1, unpadded convolution is a plain GEMM on the image itself. */
static int is_pointwise(const rt_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 &&
           g->pb == 0 && g->pl == 0 && g->pr == 0 && g->oh == g->h && g->ow == g->w;
}

/* Output rows per band so that the band's patch matrix is about COL_TARGET_FLOATS. */
static int band_rows(const rt_conv_geom *g)
{
    size_t per_row = (size_t)g->c * g->kh * g->kw * g->ow;
    int r = (int)(COL_TARGET_FLOATS / (per_row ? per_row : 1));
    if (r < 1)
        r = 1;
    return r > g->oh ? g->oh : r;
}

/* Floats of a band's patch matrix, rounded up to whole cache lines. */
static size_t col_floats(const rt_conv_geom *g)
{
    size_t f = is_pointwise(g) ? 0 : (size_t)g->c * g->kh * g->kw * band_rows(g) * g->ow;
    return (f + 15) / 16 * 16;
}

/* Floats of a worker's dw + db partial in backward. */
static size_t part_floats(const rt_conv_geom *g)
{
    size_t f = (size_t)g->oc * g->c * g->kh * g->kw + (size_t)g->oc;
    return (f + 15) / 16 * 16;
}

/* Forward needs a patch band and GEMM workspace; backward also partials and a dcol band. */
static size_t fwd_bytes(const rt_conv_geom *g)
{
    return col_floats(g) * sizeof(float) + rt_sgemm_ws_size();
}
static size_t bwd_bytes(const rt_conv_geom *g)
{
    return (part_floats(g) + 2 * col_floats(g)) * sizeof(float) + rt_sgemm_ws_size();
}

size_t rt_conv2d_scratch_size(const rt_conv_geom *g)
{
    size_t f = fwd_bytes(g), b = bwd_bytes(g);
    return f > b ? f : b;
}

/* ------------------------------------------------------------------ forward */

typedef struct {
    const rt_conv_geom *g;
    const float *x, *w, *b;
    rt_act act;
    float alpha;
    float *y;
    int n;
    atomic_int fail;
} fwd_job;

static void fwd_task(void *arg, rt_worker *wk)
{
    fwd_job *j = arg;
    const rt_conv_geom *g = j->g;
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow;
    const int rows = band_rows(g), bands = (g->oh + rows - 1) / rows;
    const int pointwise = is_pointwise(g);
    /* work items are (image, band) pairs, split in contiguous runs over the workers */
    int lo, hi;
    rt_split_range(j->n * bands, rt_worker_count(wk), rt_worker_id(wk), &lo, &hi);
    if (lo >= hi)
        return;
    size_t colf = col_floats(g);
    float *col = rt_worker_scratch(wk, fwd_bytes(g));
    if (!col) {
        atomic_store(&j->fail, 1);
        return;
    }
    void *ws = col + colf;
    for (int it = lo; it < hi; it++) {
        int s = it / bands, oy0 = (it % bands) * rows;
        int oy1 = oy0 + rows < g->oh ? oy0 + rows : g->oh, pc = (oy1 - oy0) * g->ow;
        const float *xs = j->x + (size_t)s * g->c * g->h * g->w;
        float *ys = j->y + (size_t)s * g->oc * P + (size_t)oy0 * g->ow;
        const float *bm;
        int ldb;
        if (pointwise) {
            bm = xs + (size_t)oy0 * g->ow;
            ldb = P;
        } else {
            rt_im2col(g, xs, oy0, oy1, col);
            bm = col;
            ldb = pc;
        }
        rt_sgemm_ws(0, 0, g->oc, pc, K, 1.0f, j->w, K, bm, ldb, 0.0f, ys, P, ws);
        for (int o = 0; o < g->oc; o++) {
            float *yo = ys + (size_t)o * P;
            if (j->b) {
                float bo = j->b[o];
                for (int p = 0; p < pc; p++)
                    yo[p] += bo;
            }
            rt_act_forward(j->act, j->alpha, yo, yo, (size_t)pc);
        }
    }
}

int rt_conv2d_forward(const rt_conv_geom *g, const float *x, const float *w, const float *b,
                      rt_act act, float alpha, float *y, int n, rt_threads *tp)
{
    fwd_job j = {g, x, w, b, act, alpha, y, n, 0};
    if (n <= 0)
        return 0;
    rt_threads_run(tp, fwd_task, &j);
    return atomic_load(&j.fail) ? -1 : 0;
}

/* ------------------------------------------------------------------ backward */

typedef struct {
    const rt_conv_geom *g;
    const float *x, *w, *dz;
    float *dx, *dw, *db;
    int accum, n;
    size_t part; /* floats of a worker's dw+db partial at the start of its scratch */
    rt_threads *tp;
    atomic_int fail;
} bwd_job;

static void bwd_task(void *arg, rt_worker *wk)
{
    bwd_job *j = arg;
    const rt_conv_geom *g = j->g;
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow, tid = rt_worker_id(wk);
    const int rows = band_rows(g);
    const int pointwise = is_pointwise(g);
    size_t colf = col_floats(g);
    float *scr = rt_worker_scratch(wk, bwd_bytes(g));
    if (!scr) {
        atomic_store(&j->fail, 1);
        return;
    }
    /* worker 0 sums straight into dw/db; the others into partials added in order later */
    float *dw = tid == 0 ? j->dw : scr;
    float *db = j->db ? (tid == 0 ? j->db : scr + (size_t)g->oc * K) : NULL;
    float *col = scr + j->part, *dcol = col + colf;
    void *ws = dcol + colf;
    memset(dw, 0, (size_t)g->oc * K * sizeof *dw);
    if (db)
        memset(db, 0, (size_t)g->oc * sizeof *db);

    int s0, s1;
    rt_split_range(j->n, rt_worker_count(wk), tid, &s0, &s1);
    for (int s = s0; s < s1; s++) {
        const float *xs = j->x + (size_t)s * g->c * g->h * g->w;
        const float *dzs = j->dz + (size_t)s * g->oc * P;
        float *dxs = j->dx ? j->dx + (size_t)s * g->c * g->h * g->w : NULL;
        if (dxs && !j->accum)
            memset(dxs, 0, (size_t)g->c * g->h * g->w * sizeof *dxs);
        for (int oy0 = 0; oy0 < g->oh; oy0 += rows) {
            int oy1 = oy0 + rows < g->oh ? oy0 + rows : g->oh, pc = (oy1 - oy0) * g->ow;
            const float *dzb = dzs + (size_t)oy0 * g->ow;
            const float *bm;
            int ldb;
            if (pointwise) {
                bm = xs + (size_t)oy0 * g->ow;
                ldb = P;
            } else {
                rt_im2col(g, xs, oy0, oy1, col);
                bm = col;
                ldb = pc;
            }
            /* dW[oc][K] += dZ[oc][band] * patches[K][band]^T */
            rt_sgemm_ws(0, 1, g->oc, K, pc, 1.0f, dzb, P, bm, ldb, 1.0f, dw, K, ws);
            if (db)
                for (int o = 0; o < g->oc; o++) {
                    const float *d = dzb + (size_t)o * P;
                    double sum = 0.0;
                    for (int p = 0; p < pc; p++)
                        sum += d[p];
                    db[o] += (float)sum;
                }
            if (!dxs)
                continue;
            /* dX: W^T[K][oc] * dZ[oc][band], then back to the pixels the patches came from */
            if (pointwise) {
                rt_sgemm_ws(1, 0, K, pc, g->oc, 1.0f, j->w, K, dzb, P, 1.0f,
                            dxs + (size_t)oy0 * g->ow, P, ws);
            } else {
                rt_sgemm_ws(1, 0, K, pc, g->oc, 1.0f, j->w, K, dzb, P, 0.0f, dcol, pc, ws);
                rt_col2im(g, dcol, oy0, oy1, dxs);
            }
        }
    }
}

/* Adds the workers' partials to worker 0's sums, element by element in worker order. */
static void reduce_task(void *arg, rt_worker *wk)
{
    bwd_job *j = arg;
    const rt_conv_geom *g = j->g;
    const int K = g->c * g->kh * g->kw, nt = rt_worker_count(wk);
    int lo, hi;
    rt_split_range((int)j->part, nt, rt_worker_id(wk), &lo, &hi);
    int nw = g->oc * K;
    for (int i = lo; i < hi; i++) {
        float *dst;
        if (i < nw)
            dst = j->dw + i;
        else if (j->db && i < nw + g->oc)
            dst = j->db + (i - nw);
        else
            continue;
        float acc = *dst;
        for (int t = 1; t < nt; t++)
            acc += ((const float *)rt_threads_scratch_of(j->tp, t))[i];
        *dst = acc;
    }
}

int rt_conv2d_backward(const rt_conv_geom *g, const float *x, const float *w, const float *dz,
                       float *dx, int accum, float *dw, float *db, int n, rt_threads *tp)
{
    const int K = g->c * g->kh * g->kw;
    bwd_job j = {g, x, w, dz, dx, dw, db, accum, n, part_floats(g), tp, 0};
    if (n <= 0) {
        memset(dw, 0, (size_t)g->oc * K * sizeof *dw);
        if (db)
            memset(db, 0, (size_t)g->oc * sizeof *db);
        return 0;
    }
    rt_threads_run(tp, bwd_task, &j);
    if (atomic_load(&j.fail))
        return -1;
    if (rt_threads_count(tp) > 1)
        rt_threads_run(tp, reduce_task, &j);
    return 0;
}
