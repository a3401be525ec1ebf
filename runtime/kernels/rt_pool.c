/*
 * rt_pool.c - max, average and global pooling, forward and backward.
 *
 * Windowed pooling works plane by plane (one channel of one image), and planes are split over
 * the pool's workers; no two planes share memory, so results do not depend on the split.
 * Max pooling never lets a padded cell win and routes gradients to the first maximum of each
 * window; average pooling counts zero padding in its divisor (PyTorch's count_include_pad).
 */
#include "rt_kernels.h"
#include "rt_simd.h"

#include <float.h>
#include <string.h>

typedef enum { MAX_FWD, MAX_BWD, AVG_FWD, AVG_BWD } pool_op;

/* Max backward of one plane through 2x2 windows at stride 2 (rt_pool_tiled2.h). */
typedef void (*tiled2_fn)(const rt_pool_geom *g, const float *x, const float *dy, float *dx,
                          int relu);

typedef struct {
    pool_op op;
    const rt_pool_geom *g;
    const float *x, *dy;
    float *y, *dx;
    int accum, planes;
    int relu; /* max backward: x is a relu's output, and its backward is applied too */
    tiled2_fn tiled2;
} pool_job;

static int imax(int a, int b)
{
    return a > b ? a : b;
}
static int imin(int a, int b)
{
    return a < b ? a : b;
}

/* Index in the plane of the first maximum of the window at (oy, ox) over real cells only,
 * or -1 if the window holds none. */
static int window_argmax(const rt_pool_geom *g, const float *x, int oy, int ox)
{
    int y0 = oy * g->sh - g->pt, ya = imax(y0, 0), yb = imin(y0 + g->kh, g->h);
    int x0 = ox * g->sw - g->pl, xa = imax(x0, 0), xb = imin(x0 + g->kw, g->w);
    int best = -1;
    for (int iy = ya; iy < yb; iy++)
        for (int ix = xa; ix < xb; ix++) {
            int i = iy * g->w + ix;
            if (best < 0 || x[i] > x[best])
                best = i;
        }
    return best;
}

/* Output columns [*lo, *hi) whose windows lie wholly inside the input columns. */
static void inner_cols(const rt_pool_geom *g, int *lo, int *hi)
{
    int a = (g->pl + g->sw - 1) / g->sw;          /* first ox with ox*sw - pl >= 0 */
    int b = g->w + g->pl - g->kw < 0 ? 0 : (g->w + g->pl - g->kw) / g->sw + 1;
    *lo = imin(a, g->ow);
    *hi = imax(imin(b, g->ow), *lo);
}

/* The common 2x2 stride-2 window: the first maximum of a b / c d in reading order, written
 * with selects rather than branches (after a relu, ties and zeros make branches random). */
static inline int argmax4(float a, float b, float c, float d)
{
    int i = 0, gt;
    float m = a;
    gt = b > m;
    m = gt ? b : m;
    i = gt ? 1 : i;
    gt = c > m;
    m = gt ? c : m;
    i = gt ? 2 : i;
    gt = d > m;
    i = gt ? 3 : i;
    return i;
}

/* One output row of 2x2 stride-2 max pooling from input rows r0 and r1: blocks of 8
 * outputs staged in a local array, which gcc -O2 vectorizes (see rt_kernels.h). */
static void max2x2_row(const float *r0, const float *r1, float *y, int n)
{
    int o = 0;
    for (; o + 8 <= n; o += 8) {
        float t[8];
        for (int k = 0; k < 8; k++) {
            const float *p0 = r0 + 2 * (o + k), *p1 = r1 + 2 * (o + k);
            float m1 = p0[1] > p0[0] ? p0[1] : p0[0], m2 = p1[1] > p1[0] ? p1[1] : p1[0];
            t[k] = m2 > m1 ? m2 : m1;
        }
        for (int k = 0; k < 8; k++)
            y[o + k] = t[k];
        if (o + 8 < n && o + 16 > n && n >= 8)
            o = n - 16; /* the tail as the last 8 outputs (again the same values) */
    }
    for (; o < n; o++) {
        const float *p0 = r0 + 2 * o, *p1 = r1 + 2 * o;
        float m1 = p0[1] > p0[0] ? p0[1] : p0[0], m2 = p1[1] > p1[0] ? p1[1] : p1[0];
        y[o] = m2 > m1 ? m2 : m1;
    }
}

static void max_fwd_plane(const rt_pool_geom *g, const float *x, float *y)
{
    int lo, hi;
    inner_cols(g, &lo, &hi);
    const int fast2 = g->kh == 2 && g->kw == 2 && g->sw == 2;
    for (int oy = 0; oy < g->oh; oy++) {
        float *yr = y + oy * g->ow;
        int y0 = oy * g->sh - g->pt, inside = y0 >= 0 && y0 + g->kh <= g->h;
        for (int ox = 0; ox < g->ow; ox++) {
            if (inside && ox == lo && hi > lo) {
                /* windows wholly inside the input: no clipping, no padding */
                /* r: the first inner window's top-left cell */
                const float *r = x + y0 * g->w + (lo * g->sw - g->pl);
                if (fast2) {
                    max2x2_row(r, r + g->w, yr + lo, hi - lo);
                } else {
                    for (int o = lo; o < hi; o++) {
                        const float *w0 = r + (o - lo) * g->sw;
                        float m = w0[0];
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                float v = w0[ky * g->w + kx];
                                m = v > m ? v : m;
                            }
                        yr[o] = m;
                    }
                }
                ox = hi - 1;
                continue;
            }
            int best = window_argmax(g, x, oy, ox);
            yr[ox] = best < 0 ? 0.0f : x[best];
        }
    }
}

static void max_bwd_plane(const rt_pool_geom *g, const float *x, const float *dy, float *dx,
                          int relu)
{
    int lo, hi;
    inner_cols(g, &lo, &hi);
    const int fast2 = g->kh == 2 && g->kw == 2 && g->sw == 2;
    for (int oy = 0; oy < g->oh; oy++) {
        const float *dr = dy + oy * g->ow;
        int y0 = oy * g->sh - g->pt, inside = y0 >= 0 && y0 + g->kh <= g->h;
        for (int ox = 0; ox < g->ow; ox++) {
            if (inside && fast2 && ox == lo && hi > lo) {
                size_t at = (size_t)y0 * g->w + (lo * g->sw - g->pl);
                const float *r = x + at;
                float *d = dx + at;
                for (int o = 0; o < hi - lo; o++) {
                    int i = argmax4(r[2 * o], r[2 * o + 1], r[g->w + 2 * o],
                                    r[g->w + 2 * o + 1]);
                    size_t at_i = (size_t)(i >> 1) * g->w + 2 * o + (i & 1);
                    if (!relu || r[at_i] > 0.0f)
                        d[at_i] += dr[lo + o];
                }
                ox = hi - 1;
                continue;
            }
            int best = window_argmax(g, x, oy, ox);
            if (best >= 0 && (!relu || x[best] > 0.0f))
                dx[best] += dr[ox];
        }
    }
}

/* Cells of the window inside the padded input: the divisor of count_include_pad. */
static int avg_count(const rt_pool_geom *g, int y0, int x0)
{
    int ya = imax(y0, -g->pt), yb = imin(y0 + g->kh, g->h + g->pb);
    int xa = imax(x0, -g->pl), xb = imin(x0 + g->kw, g->w + g->pr);
    int n = (yb - ya) * (xb - xa);
    return n > 0 ? n : 1;
}

static void avg_fwd_plane(const rt_pool_geom *g, const float *x, float *y)
{
    for (int oy = 0; oy < g->oh; oy++) {
        int y0 = oy * g->sh - g->pt, ya = imax(y0, 0), yb = imin(y0 + g->kh, g->h);
        for (int ox = 0; ox < g->ow; ox++) {
            int x0 = ox * g->sw - g->pl, xa = imax(x0, 0), xb = imin(x0 + g->kw, g->w);
            float s = 0.0f;
            for (int iy = ya; iy < yb; iy++)
                for (int ix = xa; ix < xb; ix++)
                    s += x[iy * g->w + ix];
            y[oy * g->ow + ox] = s / (float)avg_count(g, y0, x0);
        }
    }
}

static void avg_bwd_plane(const rt_pool_geom *g, const float *dy, float *dx)
{
    for (int oy = 0; oy < g->oh; oy++) {
        int y0 = oy * g->sh - g->pt, ya = imax(y0, 0), yb = imin(y0 + g->kh, g->h);
        for (int ox = 0; ox < g->ow; ox++) {
            int x0 = ox * g->sw - g->pl, xa = imax(x0, 0), xb = imin(x0 + g->kw, g->w);
            float d = dy[oy * g->ow + ox] / (float)avg_count(g, y0, x0);
            for (int iy = ya; iy < yb; iy++)
                for (int ix = xa; ix < xb; ix++)
                    dx[iy * g->w + ix] += d;
        }
    }
}

/* Four windows at once with 128-bit GNU C vectors (SSE2 on x86-64, NEON on arm64): the
 * even and odd columns of each row are pulled apart, each pair's winner is found by compares
 * and masks, and the gradients are interleaved back. Blocks of outputs: the tail is scalar. */
#ifdef RT_HAVE_V4
/* Windows o .. o+3 of rows r (top) and r + w (bottom); gradients dr[o..o+3]. */
static inline void max_bwd_2x2_v4(const float *r0, const float *r1, const float *dr,
                                  float *d0, float *d1, int relu)
{
    rt_v4 t0 = rt_ld4(r0), t1 = rt_ld4(r0 + 4), b0 = rt_ld4(r1), b1 = rt_ld4(r1 + 4);
    rt_v4 a = __builtin_shufflevector(t0, t1, 0, 2, 4, 6);
    rt_v4 b = __builtin_shufflevector(t0, t1, 1, 3, 5, 7);
    rt_v4 c = __builtin_shufflevector(b0, b1, 0, 2, 4, 6);
    rt_v4 e = __builtin_shufflevector(b0, b1, 1, 3, 5, 7);
    /* the first maximum in reading order a b / c e, as argmax4 */
    rt_v4i bgt = b > a, egt = e > c;
    rt_v4 mab = (rt_v4)((bgt & (rt_v4i)b) | (~bgt & (rt_v4i)a));
    rt_v4 mce = (rt_v4)((egt & (rt_v4i)e) | (~egt & (rt_v4i)c));
    rt_v4i bot = mce > mab;
    rt_v4 v = rt_ld4(dr);
    if (relu) /* over relu outputs, a window whose maximum is 0 passes nothing */
        v = rt_keep4((mab > 0.0f) | (mce > 0.0f), v);
    rt_v4 ga = rt_keep4(~bot & ~bgt, v), gb = rt_keep4(~bot & bgt, v);
    rt_v4 gc = rt_keep4(bot & ~egt, v), ge = rt_keep4(bot & egt, v);
    rt_st4(d0, __builtin_shufflevector(ga, gb, 0, 4, 1, 5));
    rt_st4(d0 + 4, __builtin_shufflevector(ga, gb, 2, 6, 3, 7));
    rt_st4(d1, __builtin_shufflevector(gc, ge, 0, 4, 1, 5));
    rt_st4(d1 + 4, __builtin_shufflevector(gc, ge, 2, 6, 3, 7));
}

#endif

/* The max backward of a plane through 2x2 windows at stride 2, once for the baseline
 * (4-wide blocks) and, with gcc on x86-64, once for AVX-512 (16- and 8-wide blocks as well:
 * rt_pool_tiled2.h), picked per call with the GEMM's instruction set (rt_gemm_isa, so
 * RT_GEMM_ISA and rt_gemm_use_isa reach it too). Selection only: the same bits either way. */
#define TILED2_NAME tiled2_generic
#define TILED2_WIDE 0
#include "rt_pool_tiled2.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(RT_HAVE_V4)
#define TILED2_AVX512 1
/* the whole copy, its wide blocks included, compiled for AVX-512: a GNU C vector helper
 * compiled apart for the baseline and only then inlined has been lowered lane by lane */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw")
#define TILED2_NAME tiled2_avx512
#define TILED2_WIDE 1
#include "rt_pool_tiled2.h"
#pragma GCC pop_options
#endif

static tiled2_fn tiled2_now(void)
{
#ifdef TILED2_AVX512
    if (strcmp(rt_gemm_isa(), "avx512") == 0 && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
        return tiled2_avx512;
#endif
    return tiled2_generic;
}

RT_CLONES static void pool_task(void *arg, rt_worker *wk)
{
    pool_job *j = arg;
    const rt_pool_geom *g = j->g;
    size_t in = (size_t)g->h * g->w, out = (size_t)g->oh * g->ow;
    int lo, hi;
    rt_split_range(j->planes, rt_worker_count(wk), rt_worker_id(wk), &lo, &hi);
    const int tiled2 = g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->pt == 0 &&
                       g->pl == 0 && 2 * g->oh <= g->h && 2 * g->ow <= g->w;
    for (int p = lo; p < hi; p++) {
        if (j->op == MAX_BWD && !j->accum && tiled2) {
            j->tiled2(g, j->x + p * in, j->dy + p * out, j->dx + p * in, j->relu);
            continue;
        }
        if ((j->op == MAX_BWD || j->op == AVG_BWD) && !j->accum)
            memset(j->dx + p * in, 0, in * sizeof(float));
        switch (j->op) {
        case MAX_FWD: max_fwd_plane(g, j->x + p * in, j->y + p * out); break;
        case MAX_BWD:
            max_bwd_plane(g, j->x + p * in, j->dy + p * out, j->dx + p * in, j->relu);
            break;
        case AVG_FWD: avg_fwd_plane(g, j->x + p * in, j->y + p * out); break;
        case AVG_BWD: avg_bwd_plane(g, j->dy + p * out, j->dx + p * in); break;
        }
    }
}

static void run(pool_op op, const rt_pool_geom *g, const float *x, const float *dy, float *y,
                float *dx, int accum, int relu, int n, rt_threads *tp)
{
    pool_job j = {op, g, x, dy, y, dx, accum, n * g->c, relu, tiled2_now()};
    if (j.planes > 0)
        rt_threads_run(tp, pool_task, &j);
}

void rt_maxpool_forward(const rt_pool_geom *g, const float *x, float *y, int n,
                        rt_threads *tp)
{
    run(MAX_FWD, g, x, NULL, y, NULL, 0, 0, n, tp);
}

void rt_maxpool_backward(const rt_pool_geom *g, const float *x, const float *dy, float *dx,
                         int accum, int n, rt_threads *tp)
{
    run(MAX_BWD, g, x, dy, NULL, dx, accum, 0, n, tp);
}

void rt_maxpool_backward_relu(const rt_pool_geom *g, const float *x, const float *dy,
                              float *dx, int n, rt_threads *tp)
{
    run(MAX_BWD, g, x, dy, NULL, dx, 0, 1, n, tp);
}

void rt_avgpool_forward(const rt_pool_geom *g, const float *x, float *y, int n,
                        rt_threads *tp)
{
    run(AVG_FWD, g, x, NULL, y, NULL, 0, 0, n, tp);
}

void rt_avgpool_backward(const rt_pool_geom *g, const float *dy, float *dx, int accum, int n,
                         rt_threads *tp)
{
    run(AVG_BWD, g, NULL, dy, NULL, dx, accum, 0, n, tp);
}

/* ------------------------------------------------------------------ global pooling */

void rt_globalavgpool_forward(const float *x, float *y, int n, int c, int hw)
{
    for (size_t p = 0; p < (size_t)n * c; p++) {
        const float *xp = x + p * hw;
        double s = 0.0;
        for (int i = 0; i < hw; i++)
            s += xp[i];
        y[p] = (float)(s / hw);
    }
}

void rt_globalavgpool_backward(const float *dy, float *dx, int accum, int n, int c, int hw)
{
    for (size_t p = 0; p < (size_t)n * c; p++) {
        float d = dy[p] / (float)hw, *dp = dx + p * hw;
        for (int i = 0; i < hw; i++)
            dp[i] = accum ? dp[i] + d : d;
    }
}

/* Index of the first maximum of x[0..hw). */
static int first_max(const float *x, int hw)
{
    int best = 0;
    for (int i = 1; i < hw; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

void rt_globalmaxpool_forward(const float *x, float *y, int n, int c, int hw)
{
    for (size_t p = 0; p < (size_t)n * c; p++)
        y[p] = x[p * hw + first_max(x + p * hw, hw)];
}

void rt_globalmaxpool_backward(const float *x, const float *dy, float *dx, int accum, int n,
                               int c, int hw)
{
    for (size_t p = 0; p < (size_t)n * c; p++) {
        float *dp = dx + p * hw;
        if (!accum)
            memset(dp, 0, (size_t)hw * sizeof *dp);
        dp[first_max(x + p * hw, hw)] += dy[p];
    }
}
