/*
 * test_gradcheck.c - every backward kernel against central finite differences of a float64
 * reference forward of the same layer (gradcheck.h): each gradient tensor within 1e-3
 * relative, and each check proven to reject that tensor 0.5 % off. Differences are never
 * taken in float, so the result does not depend on the optimisation level. Covered: conv in
 * every padding mode, flipped, strided, with asymmetric padding and each fused activation
 * (serial and on two threads, whose dW reduction then runs); pooling with padding; global
 * pooling; dense; batchnorm in training and evaluation mode; activations; add; flatten;
 * dropout with a fixed mask; softmax cross-entropy. Backward with accum=1 must add exactly
 * its result.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "gradcheck.h"
#include "rt_kernels.h"

#define CHECK GC_CHECK

/* act(v) in double; *h folds in the branch taken (relu and leaky relu have a kink at 0) */
static double ref_act(rt_act act, double alpha, double v, uint64_t *h)
{
    switch (act) {
    case RT_ACT_RELU: *h = gc_hash(*h, v > 0); return v > 0 ? v : 0;
    case RT_ACT_LEAKYRELU: *h = gc_hash(*h, v > 0); return v > 0 ? v : alpha * v;
    case RT_ACT_SIGMOID: return 1 / (1 + exp(-v));
    case RT_ACT_TANH: return tanh(v);
    default: return v;
    }
}

static int act_kinked(rt_act act)
{
    return act == RT_ACT_RELU || act == RT_ACT_LEAKYRELU;
}

/* ------------------------------------------------------------------ conv */

typedef struct {
    rt_conv_geom g;
    int n, bias;
    rt_act act;
    float alpha;
    rt_threads *tp;
} conv_ctx;

static void conv_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    conv_ctx *k = c->ctx;
    size_t nw = (size_t)k->g.oc * k->g.c * k->g.kh * k->g.kw;
    ck_assert_int_eq(rt_conv2d_forward(&k->g, x, p, k->bias ? p + nw : NULL, k->act, k->alpha,
                                       y, k->n, k->tp), 0);
}

static void conv_bwd(gc_case *c, const float *x, const float *p, const float *y,
                     const float *dy, float *dx, int accum, float *dp)
{
    conv_ctx *k = c->ctx;
    size_t nw = (size_t)k->g.oc * k->g.c * k->g.kh * k->g.kw;
    float *dz = malloc(sizeof(float) * c->ny);
    rt_act_backward(k->act, k->alpha, y, dy, dz, (size_t)c->ny, 0);
    ck_assert_int_eq(rt_conv2d_backward(&k->g, x, p, dz, dx, accum, dp, k->bias ? dp + nw : NULL,
                                        k->n, k->tp), 0);
    free(dz);
}

/* The padded input's index for i in [-pad, n + pad), written from the modes' definitions
 * (PyTorch's): reflect mirrors about the edge cells without repeating them, replicate repeats
 * the edge, circular wraps around; zero padding has no cell (-1). */
static int ref_pad(int i, int n, rt_padmode m)
{
    if (i >= 0 && i < n)
        return i;
    switch (m) {
    case RT_PAD_REFLECT: {
        if (n == 1)
            return 0;
        int period = 2 * (n - 1), k = ((i % period) + period) % period;
        return k < n ? k : period - k;
    }
    case RT_PAD_REPLICATE: return i < 0 ? 0 : n - 1;
    case RT_PAD_CIRCULAR: return ((i % n) + n) % n;
    default: return -1;
    }
}

/* y[b][o][oy][ox] = act(bias[o] + sum over ci, ky, kx of w[o][ci][ky][kx] times the padded
 * input at (oy sh + ky' - pt, ox sw + kx' - pl), where ky' = ky, or kh-1-ky when flipped) */
static uint64_t conv_ref(gc_case *c, const double *x, const double *p, double *y)
{
    conv_ctx *k = c->ctx;
    const rt_conv_geom *g = &k->g;
    const double *w = p, *bias = k->bias ? p + (size_t)g->oc * g->c * g->kh * g->kw : NULL;
    uint64_t h = 0;
    for (int b = 0; b < k->n; b++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    double s = bias ? bias[o] : 0;
                    for (int ci = 0; ci < g->c; ci++)
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int ey = g->flip ? g->kh - 1 - ky : ky;
                                int ex = g->flip ? g->kw - 1 - kx : kx;
                                int iy = ref_pad(oy * g->sh + ey - g->pt, g->h, g->pad);
                                int ix = ref_pad(ox * g->sw + ex - g->pl, g->w, g->pad);
                                if (iy < 0 || ix < 0)
                                    continue;
                                s += w[((o * g->c + ci) * g->kh + ky) * g->kw + kx] *
                                     x[((b * g->c + ci) * g->h + iy) * g->w + ix];
                            }
                    y[((b * g->oc + o) * g->oh + oy) * g->ow + ox] = ref_act(k->act, k->alpha, s, &h);
                }
    return h;
}

static void check_conv(rt_conv_geom g, int n, int bias, rt_act act, float alpha,
                       rt_threads *tp, const char *name)
{
    g.oh = (g.h + g.pt + g.pb - g.kh) / g.sh + 1;
    g.ow = (g.w + g.pl + g.pr - g.kw) / g.sw + 1;
    ck_assert_int_eq(rt_conv_geom_check(&g, NULL), 0);
    conv_ctx k = {g, n, bias, act, alpha, tp};
    int nw = g.oc * g.c * g.kh * g.kw;
    gc_case c = {name, n * g.c * g.h * g.w, n * g.oc * g.oh * g.ow, bias ? 2 : 1,
                 {nw, g.oc}, {"w", "b"}, conv_fwd, conv_bwd, conv_ref, act_kinked(act), &k,
                 NULL, NULL};
    c.x = gc_rand_array(c.nx, -1, 1);
    c.p = gc_rand_array(gc_np(&c), -0.5f, 0.5f);
    gc_run(&c);
    free(c.x), free(c.p);
}

START_TEST(conv_modes)
{
    static const char *names[] = {"conv zero", "conv reflect", "conv replicate",
                                  "conv circular"};
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int m = 0; m < 4; m++)
        for (int flip = 0; flip < 2; flip++) {
            /* asymmetric padding (top 1, bottom 0, left 2, right 1), stride 2 down 1 across,
             * a non-square kernel, three images (split 2 + 1 over two threads) */
            rt_conv_geom g = {2, 5, 6, 3, 0, 0, 3, 2, 2, 1, 1, 0, 2, 1, (rt_padmode)m, flip, 1, 1, 1};
            check_conv(g, 3, 1, RT_ACT_NONE, 0, flip ? tp : NULL, names[m]);
            /* stride 1, symmetric padding, no bias */
            rt_conv_geom g2 = {1, 4, 5, 2, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, (rt_padmode)m, flip, 1, 1, 1};
            check_conv(g2, 2, 0, RT_ACT_NONE, 0, flip ? NULL : tp, names[m]);
        }
    /* stride 2 both ways with padding 2, and a 1x1 pointwise conv (the no-im2col path) */
    rt_conv_geom g3 = {2, 7, 7, 2, 0, 0, 3, 3, 2, 2, 2, 2, 2, 2, RT_PAD_REFLECT, 0, 1, 1, 1};
    check_conv(g3, 2, 1, RT_ACT_NONE, 0, tp, "conv stride 2 reflect 2");
    rt_conv_geom g4 = {3, 4, 4, 2, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 0, 1, 1, 1};
    check_conv(g4, 3, 1, RT_ACT_NONE, 0, tp, "conv 1x1");
    /* more than 64 patch rows: dW by the packed GEMM instead of dot products */
    rt_conv_geom g5 = {8, 4, 3, 3, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, RT_PAD_CIRCULAR, 1, 1, 1, 1};
    check_conv(g5, 2, 1, RT_ACT_NONE, 0, tp, "conv 8 channels");
    rt_conv_geom g6 = {70, 2, 3, 2, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 0, 1, 1, 1};
    check_conv(g6, 2, 1, RT_ACT_NONE, 0, NULL, "conv 1x1 70 channels");
    /* small maps fold the batch into one GEMM: 16 channels (144 patch rows, packed dW) on
     * 4x4, five images split 3 + 2, reflect padding; and a non-fused activation */
    rt_conv_geom g7 = {16, 4, 4, 3, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, RT_PAD_REFLECT, 0, 1, 1, 1};
    check_conv(g7, 5, 1, RT_ACT_NONE, 0, tp, "conv folded 16 channels");
    check_conv(g7, 5, 1, RT_ACT_TANH, 0, NULL, "conv folded 16 channels + tanh");
    /* maps of 128 pixels and more are not folded: one GEMM per band of an image, dW by dot
     * products (27 patch rows) and by the packed GEMM (72) */
    rt_conv_geom g8 = {3, 12, 12, 2, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, RT_PAD_ZERO, 0, 1, 1, 1};
    check_conv(g8, 2, 1, RT_ACT_NONE, 0, tp, "conv 12x12 unfolded");
    rt_conv_geom g9 = {8, 12, 12, 2, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, RT_PAD_REPLICATE, 0, 1, 1, 1};
    check_conv(g9, 3, 1, RT_ACT_NONE, 0, tp, "conv 12x12 unfolded 8 channels");
    /* zero padding, stride 1: dX as the forward convolution of dZ with the rotated kernel;
     * asymmetric padding (2 / 0 rows, 1 / 1 columns) and a 3x2 kernel, plain and flipped */
    for (int flip = 0; flip < 2; flip++) {
        rt_conv_geom g10 = {3, 5, 6, 4, 0, 0, 3, 2, 1, 1, 2, 0, 1, 1, RT_PAD_ZERO, flip, 1, 1, 1};
        check_conv(g10, 3, 1, RT_ACT_NONE, 0, tp, "conv dX by correlation");
    }
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(conv_activations)
{
    static const rt_act acts[] = {RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_SIGMOID, RT_ACT_TANH};
    static const char *names[] = {"conv+relu", "conv+leakyrelu", "conv+sigmoid", "conv+tanh"};
    for (int a = 0; a < 4; a++) {
        rt_conv_geom g = {2, 5, 5, 2, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, RT_PAD_ZERO, 0, 1, 1, 1};
        check_conv(g, 2, 1, acts[a], 0.1f, NULL, names[a]);
    }
}
END_TEST

/* ------------------------------------------------------------------ pooling */

typedef struct {
    rt_pool_geom g;
    int n, max;
    rt_threads *tp;
} pool_ctx;

static void pool_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    (void)p;
    pool_ctx *k = c->ctx;
    if (k->max)
        rt_maxpool_forward(&k->g, x, y, k->n, k->tp);
    else
        rt_avgpool_forward(&k->g, x, y, k->n, k->tp);
}

static void pool_bwd(gc_case *c, const float *x, const float *p, const float *y,
                     const float *dy, float *dx, int accum, float *dp)
{
    (void)p, (void)y, (void)dp;
    pool_ctx *k = c->ctx;
    if (k->max)
        rt_maxpool_backward(&k->g, x, dy, dx, accum, k->n, k->tp);
    else
        rt_avgpool_backward(&k->g, dy, dx, accum, k->n, k->tp);
}

/* max over the window's real cells (0 if none), or the sum over them divided by the cells of
 * the window inside the padded input (count_include_pad); the hash folds in every argmax */
static uint64_t pool_ref(gc_case *c, const double *x, const double *p, double *y)
{
    (void)p;
    pool_ctx *k = c->ctx;
    const rt_pool_geom *g = &k->g;
    uint64_t h = 0;
    for (int pl = 0; pl < k->n * g->c; pl++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                double m = 0, s = 0;
                int best = -1, cnt = 0;
                for (int ky = 0; ky < g->kh; ky++)
                    for (int kx = 0; kx < g->kw; kx++) {
                        int iy = oy * g->sh - g->pt + ky, ix = ox * g->sw - g->pl + kx;
                        if (iy >= -g->pt && iy < g->h + g->pb && ix >= -g->pl &&
                            ix < g->w + g->pr)
                            cnt++;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                            continue;
                        double v = x[(pl * g->h + iy) * g->w + ix];
                        s += v;
                        if (best < 0 || v > m)
                            m = v, best = iy * g->w + ix;
                    }
                y[(pl * g->oh + oy) * g->ow + ox] = k->max ? (best < 0 ? 0 : m) : s / cnt;
                h = gc_hash(h, (uint64_t)(best + 1));
            }
    return k->max ? h : 0;
}

START_TEST(pooling)
{
    rt_threads *tp = rt_threads_create(2, NULL);
    /* c h w oh ow kh kw sh sw pt pb pl pr */
    static const rt_pool_geom gs[] = {
        {2, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0}, /* plain */
        {2, 5, 6, 3, 4, 3, 3, 2, 2, 1, 1, 1, 1}, /* padded, overlapping */
        {1, 5, 5, 3, 2, 2, 3, 2, 3, 1, 0, 0, 1}, /* asymmetric */
        {1, 5, 5, 3, 3, 2, 2, 2, 2, 0, 0, 0, 0}, /* overhanging (ceil-mode size) */
        {2, 5, 7, 2, 3, 2, 2, 2, 2, 0, 0, 0, 0}, /* last row and column in no window */
        {1, 4, 20, 2, 10, 2, 2, 2, 2, 0, 0, 0, 0}, /* 2x2 fast path, vector blocks and tail */
    };
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++)
        for (int max = 0; max < 2; max++) {
            pool_ctx k = {gs[i], 2, max, i % 2 ? tp : NULL};
            gc_case c = {max ? "maxpool" : "avgpool", 2 * gs[i].c * gs[i].h * gs[i].w,
                         2 * gs[i].c * gs[i].oh * gs[i].ow, 0, {0}, {NULL}, pool_fwd,
                         pool_bwd, pool_ref, max, &k, NULL, NULL};
            c.x = gc_distinct_array(c.nx);
            c.p = NULL;
            gc_run(&c);
            free(c.x);
        }
    rt_threads_destroy(tp);
}
END_TEST

typedef struct {
    int n, c, hw, max;
} gpool_ctx;

static void gpool_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    (void)p;
    gpool_ctx *k = c->ctx;
    if (k->max)
        rt_globalmaxpool_forward(x, y, k->n, k->c, k->hw);
    else
        rt_globalavgpool_forward(x, y, k->n, k->c, k->hw);
}

static void gpool_bwd(gc_case *c, const float *x, const float *p, const float *y,
                      const float *dy, float *dx, int accum, float *dp)
{
    (void)p, (void)y, (void)dp;
    gpool_ctx *k = c->ctx;
    if (k->max)
        rt_globalmaxpool_backward(x, dy, dx, accum, k->n, k->c, k->hw);
    else
        rt_globalavgpool_backward(dy, dx, accum, k->n, k->c, k->hw);
}

static uint64_t gpool_ref(gc_case *c, const double *x, const double *p, double *y)
{
    (void)p;
    gpool_ctx *k = c->ctx;
    uint64_t h = 0;
    for (int pl = 0; pl < k->n * k->c; pl++) {
        const double *v = x + pl * k->hw;
        double s = 0, m = v[0];
        int best = 0;
        for (int i = 0; i < k->hw; i++) {
            s += v[i];
            if (v[i] > m)
                m = v[i], best = i;
        }
        y[pl] = k->max ? m : s / k->hw;
        h = gc_hash(h, (uint64_t)best);
    }
    return k->max ? h : 0;
}

START_TEST(global_pooling)
{
    for (int max = 0; max < 2; max++) {
        gpool_ctx k = {2, 3, 7, max};
        gc_case c = {max ? "globalmaxpool" : "globalavgpool", 42, 6, 0, {0}, {NULL},
                     gpool_fwd, gpool_bwd, gpool_ref, max, &k, NULL, NULL};
        c.x = gc_distinct_array(42);
        gc_run(&c);
        free(c.x);
    }
}
END_TEST

/* ------------------------------------------------------------------ dense */

typedef struct {
    int n, in, out, bias;
    rt_act act;
    rt_threads *tp;
} dense_ctx;

static void dense_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    dense_ctx *k = c->ctx;
    ck_assert_int_eq(rt_dense_forward(x, p, k->bias ? p + k->in * k->out : NULL, k->act, 0.2f, y,
                                      k->n, k->in, k->out, k->tp), 0);
}

static void dense_bwd(gc_case *c, const float *x, const float *p, const float *y,
                      const float *dy, float *dx, int accum, float *dp)
{
    dense_ctx *k = c->ctx;
    float *dz = malloc(sizeof(float) * c->ny);
    rt_act_backward(k->act, 0.2f, y, dy, dz, (size_t)c->ny, 0);
    ck_assert_int_eq(rt_dense_backward(x, p, dz, dx, accum, dp,
                                       k->bias ? dp + k->in * k->out : NULL, k->n, k->in,
                                       k->out, k->tp), 0);
    free(dz);
}

static uint64_t dense_ref(gc_case *c, const double *x, const double *p, double *y)
{
    dense_ctx *k = c->ctx;
    uint64_t h = 0;
    for (int b = 0; b < k->n; b++)
        for (int o = 0; o < k->out; o++) {
            double s = k->bias ? p[k->in * k->out + o] : 0;
            for (int i = 0; i < k->in; i++)
                s += x[b * k->in + i] * p[o * k->in + i];
            y[b * k->out + o] = ref_act(k->act, 0.2, s, &h);
        }
    return h;
}

START_TEST(dense)
{
    static const rt_act acts[] = {RT_ACT_NONE, RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_SIGMOID,
                                  RT_ACT_TANH, RT_ACT_SOFTMAX /* identity here */};
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int a = 0; a < 6; a++) {
        dense_ctx k = {3, 7, 40, a % 2, acts[a], a % 3 ? tp : NULL};
        gc_case c = {"dense", 21, 120, 1 + a % 2, {280, 40}, {"w", "b"}, dense_fwd, dense_bwd,
                     dense_ref, act_kinked(acts[a]), &k, NULL, NULL};
        c.x = gc_rand_array(c.nx, -1, 1);
        c.p = gc_rand_array(gc_np(&c), -0.5f, 0.5f);
        gc_run(&c);
        free(c.x), free(c.p);
    }
    rt_threads_destroy(tp);
}
END_TEST

/* ------------------------------------------------------------------ batchnorm */

typedef struct {
    int n, c, hw, train;
    float rm[4], rv[4];
    rt_threads *tp;
} bn_ctx;

/* parameters: gamma [c] then beta [c] */
static void bn_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    bn_ctx *k = c->ctx;
    if (k->train) {
        float rm[4], rv[4], sm[4], si[4]; /* running stats are a side effect: keep them */
        memcpy(rm, k->rm, sizeof rm);
        memcpy(rv, k->rv, sizeof rv);
        rt_batchnorm_forward_train_mt(x, p, p + k->c, rm, rv, 0.1f, 1e-5f, y, sm, si, k->n, k->c,
                                   k->hw, k->tp);
    } else {
        rt_batchnorm_forward_eval_mt(x, p, p + k->c, k->rm, k->rv, 1e-5f, y, k->n, k->c, k->hw,
                                  k->tp);
    }
}

static void bn_bwd(gc_case *c, const float *x, const float *p, const float *y,
                   const float *dy, float *dx, int accum, float *dp)
{
    (void)y;
    bn_ctx *k = c->ctx;
    if (k->train) {
        float rm[4], rv[4], sm[4], si[4], *tmp = malloc(sizeof(float) * c->ny);
        memcpy(rm, k->rm, sizeof rm);
        memcpy(rv, k->rv, sizeof rv);
        rt_batchnorm_forward_train_mt(x, p, p + k->c, rm, rv, 0.1f, 1e-5f, tmp, sm, si, k->n, k->c,
                                   k->hw, k->tp);
        rt_batchnorm_backward_train_mt(x, p, sm, si, dy, dx, accum, dp, dp + k->c, k->n, k->c,
                                    k->hw, k->tp);
        free(tmp);
    } else {
        rt_batchnorm_backward_eval_mt(x, p, k->rm, k->rv, 1e-5f, dy, dx, accum, dp, dp + k->c,
                                   k->n, k->c, k->hw, k->tp);
    }
}

/* training: each channel normalised by its batch mean and biased variance; evaluation: by
 * the running ones; then gamma xhat + beta */
static uint64_t bn_ref(gc_case *c, const double *x, const double *p, double *y)
{
    bn_ctx *k = c->ctx;
    for (int ch = 0; ch < k->c; ch++) {
        double mean = k->rm[ch], var = k->rv[ch], cnt = (double)k->n * k->hw;
        if (k->train) {
            double s = 0, q = 0;
            for (int b = 0; b < k->n; b++)
                for (int i = 0; i < k->hw; i++)
                    s += x[(b * k->c + ch) * k->hw + i];
            mean = s / cnt;
            for (int b = 0; b < k->n; b++)
                for (int i = 0; i < k->hw; i++) {
                    double d = x[(b * k->c + ch) * k->hw + i] - mean;
                    q += d * d;
                }
            var = q / cnt;
        }
        for (int b = 0; b < k->n; b++)
            for (int i = 0; i < k->hw; i++) {
                int at = (b * k->c + ch) * k->hw + i;
                y[at] = p[ch] * (x[at] - mean) / sqrt(var + 1e-5) + p[k->c + ch];
            }
    }
    return 0;
}

START_TEST(batchnorm)
{
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int train = 0; train < 2; train++)
        for (int hw = 1; hw <= 21; hw += 20) { /* BatchNorm1d (hw 1) and 2d */
            bn_ctx k = {4, 3, hw, train, {0.1f, -0.2f, 0.3f, 0}, {0.5f, 1.5f, 2, 1},
                        hw > 1 ? tp : NULL};
            gc_case c = {train ? "batchnorm train" : "batchnorm eval", 4 * 3 * hw, 4 * 3 * hw,
                         2, {3, 3}, {"gamma", "beta"}, bn_fwd, bn_bwd, bn_ref, 0, &k, NULL,
                         NULL};
            c.x = gc_rand_array(c.nx, -2, 2);
            c.p = gc_rand_array(6, 0.5f, 1.5f);
            gc_run(&c);
            free(c.x), free(c.p);
        }
    rt_threads_destroy(tp);
}
END_TEST

/* ------------------------------------------------------------------ elementwise */

typedef struct {
    rt_act act;
    float *mask;
    int half;
} ew_ctx;

static void act_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    (void)p;
    rt_act_forward(((ew_ctx *)c->ctx)->act, 0.1f, x, y, (size_t)c->nx);
}

static void act_bwd(gc_case *c, const float *x, const float *p, const float *y,
                    const float *dy, float *dx, int accum, float *dp)
{
    (void)x, (void)p, (void)dp;
    rt_act_backward(((ew_ctx *)c->ctx)->act, 0.1f, y, dy, dx, (size_t)c->nx, accum);
}

static uint64_t act_ref(gc_case *c, const double *x, const double *p, double *y)
{
    (void)p;
    uint64_t h = 0;
    for (int i = 0; i < c->nx; i++)
        y[i] = ref_act(((ew_ctx *)c->ctx)->act, 0.1, x[i], &h);
    return h;
}

START_TEST(activations)
{
    static const rt_act acts[] = {RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_SIGMOID, RT_ACT_TANH,
                                  RT_ACT_NONE};
    for (int a = 0; a < 5; a++) {
        ew_ctx k = {acts[a], NULL, 0};
        gc_case c = {"activation", 50, 50, 0, {0}, {NULL}, act_fwd, act_bwd, act_ref,
                     act_kinked(acts[a]), &k, NULL, NULL};
        c.x = gc_distinct_array(50); /* no value within a step of relu's kink at 0... */
        for (int i = 0; i < 50; i++)
            c.x[i] += 0.025f; /* ...since none is a multiple of 0.05 any more */
        gc_run(&c);
        free(c.x);
    }
}
END_TEST

static void add_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    (void)p;
    rt_add_forward(x, x + c->ny, y, (size_t)c->ny);
}

static void add_bwd(gc_case *c, const float *x, const float *p, const float *y,
                    const float *dy, float *dx, int accum, float *dp)
{
    (void)x, (void)p, (void)y, (void)dp;
    /* both inputs receive dy, as the executor passes it to src and src2 */
    rt_grad_pass(dy, dx, (size_t)c->ny, accum);
    rt_grad_pass(dy, dx + c->ny, (size_t)c->ny, accum);
}

static uint64_t add_ref(gc_case *c, const double *x, const double *p, double *y)
{
    (void)p;
    for (int i = 0; i < c->ny; i++)
        y[i] = x[i] + x[c->ny + i];
    return 0;
}

static void drop_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    (void)p;
    rt_dropout_forward(x, ((ew_ctx *)c->ctx)->mask, y, (size_t)c->nx);
}

static void drop_bwd(gc_case *c, const float *x, const float *p, const float *y,
                     const float *dy, float *dx, int accum, float *dp)
{
    (void)x, (void)p, (void)y, (void)dp;
    rt_dropout_backward(dy, ((ew_ctx *)c->ctx)->mask, dx, (size_t)c->nx, accum);
}

static uint64_t drop_ref(gc_case *c, const double *x, const double *p, double *y)
{
    (void)p;
    for (int i = 0; i < c->nx; i++)
        y[i] = x[i] * ((ew_ctx *)c->ctx)->mask[i];
    return 0;
}

static void flat_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    (void)p;
    memcpy(y, x, sizeof(float) * c->nx);
}

static void flat_bwd(gc_case *c, const float *x, const float *p, const float *y,
                     const float *dy, float *dx, int accum, float *dp)
{
    (void)x, (void)p, (void)y, (void)dp;
    rt_grad_pass(dy, dx, (size_t)c->nx, accum);
}

static uint64_t flat_ref(gc_case *c, const double *x, const double *p, double *y)
{
    (void)p;
    memcpy(y, x, sizeof(double) * c->nx);
    return 0;
}

START_TEST(add_dropout_flatten)
{
    ew_ctx k = {RT_ACT_NONE, NULL, 0};
    gc_case a = {"add", 40, 20, 0, {0}, {NULL}, add_fwd, add_bwd, add_ref, 0, &k, NULL, NULL};
    a.x = gc_rand_array(40, -1, 1);
    gc_run(&a);
    free(a.x);

    rt_rng r;
    rt_rng_seed(&r, 3);
    k.mask = malloc(sizeof(float) * 30);
    rt_dropout_mask(k.mask, 30, 0.4f, &r);
    gc_case d = {"dropout", 30, 30, 0, {0}, {NULL}, drop_fwd, drop_bwd, drop_ref, 0, &k, NULL,
                 NULL};
    d.x = gc_rand_array(30, -1, 1);
    gc_run(&d);
    free(d.x), free(k.mask);

    gc_case f = {"flatten", 24, 24, 0, {0}, {NULL}, flat_fwd, flat_bwd, flat_ref, 0, &k, NULL,
                 NULL};
    f.x = gc_rand_array(24, -1, 1);
    gc_run(&f);
    free(f.x);
}
END_TEST

/* ------------------------------------------------------------------ softmax cross-entropy */

static const int xent_labels[3] = {2, 0, 4};

static void xent_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    (void)p;
    y[0] = (float)rt_softmax_xent(x, xent_labels, 3, c->nx / 3, NULL, NULL, NULL);
}

static void xent_bwd(gc_case *c, const float *x, const float *p, const float *y,
                     const float *dy, float *dx, int accum, float *dp)
{
    (void)p, (void)y, (void)dp;
    float d[15];
    rt_softmax_xent(x, xent_labels, 3, c->nx / 3, NULL, d, NULL);
    for (int i = 0; i < c->nx; i++)
        dx[i] = accum ? dx[i] + dy[0] * d[i] : dy[0] * d[i];
}

/* the mean over the batch of log(sum exp(l)) - l[label] */
static uint64_t xent_ref(gc_case *c, const double *x, const double *p, double *y)
{
    (void)p;
    int k = c->nx / 3;
    double t = 0;
    for (int s = 0; s < 3; s++) {
        double e = 0;
        for (int j = 0; j < k; j++)
            e += exp(x[s * k + j]);
        t += log(e) - x[s * k + xent_labels[s]];
    }
    y[0] = t / 3;
    return 0;
}

START_TEST(softmax_xent)
{
    gc_case c = {"softmax-xent", 15, 1, 0, {0}, {NULL}, xent_fwd, xent_bwd, xent_ref, 0, NULL,
                 NULL, NULL};
    c.x = gc_rand_array(15, -3, 3);
    gc_run(&c);
    free(c.x);
}
END_TEST

/* The same with label smoothing 0.1 (torch's CrossEntropyLoss(label_smoothing=0.1)):
 * the reference is the cross-entropy against the smoothed target q = 0.9 onehot + 0.1/k,
 * -sum_j q_j log softmax_j, written independently of rt_loss.c's (1-e) CE + e mean form. */
#define XENT_LS 0.1

static void xent_ls_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    (void)p;
    y[0] = (float)rt_softmax_xent_smooth(x, xent_labels, 3, c->nx / 3, (float)XENT_LS, NULL, NULL,
                                         NULL);
}

static void xent_ls_bwd(gc_case *c, const float *x, const float *p, const float *y,
                        const float *dy, float *dx, int accum, float *dp)
{
    (void)p, (void)y, (void)dp;
    float d[15];
    rt_softmax_xent_smooth(x, xent_labels, 3, c->nx / 3, (float)XENT_LS, NULL, d, NULL);
    for (int i = 0; i < c->nx; i++)
        dx[i] = accum ? dx[i] + dy[0] * d[i] : dy[0] * d[i];
}

static uint64_t xent_ls_ref(gc_case *c, const double *x, const double *p, double *y)
{
    (void)p;
    int k = c->nx / 3;
    double t = 0;
    for (int s = 0; s < 3; s++) {
        double z = 0;
        for (int j = 0; j < k; j++)
            z += exp(x[s * k + j]);
        for (int j = 0; j < k; j++) {
            double q = (j == xent_labels[s] ? 1 - XENT_LS : 0) + XENT_LS / k;
            t -= q * (x[s * k + j] - log(z));
        }
    }
    y[0] = t / 3;
    return 0;
}

START_TEST(softmax_xent_smoothed)
{
    gc_case c = {"softmax-xent-ls", 15, 1, 0, {0}, {NULL}, xent_ls_fwd, xent_ls_bwd, xent_ls_ref,
                 0, NULL, NULL, NULL};
    c.x = gc_rand_array(15, -3, 3);
    gc_run(&c);
    free(c.x);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gradcheck");
    TCase *t = tcase_create("layers");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, conv_modes);
    tcase_add_test(t, conv_activations);
    tcase_add_test(t, pooling);
    tcase_add_test(t, global_pooling);
    tcase_add_test(t, dense);
    tcase_add_test(t, batchnorm);
    tcase_add_test(t, activations);
    tcase_add_test(t, add_dropout_flatten);
    tcase_add_test(t, softmax_xent);
    tcase_add_test(t, softmax_xent_smoothed);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
