/*
 * test_gradcheck.c - every backward kernel against central finite differences.
 *
 * For a layer f and a fixed random vector r, L(x, p) = sum r . f(x, p) is summed in double;
 * its central differences in every input and parameter are compared with the analytic
 * gradients the backward kernels give for dy = r. Each check also proves it can fail: the
 * same comparison with one analytic value off by 5% must be rejected. Covered: conv in every
 * padding mode, flipped, strided, with asymmetric padding and each fused activation (serial
 * and on two threads, whose dW reduction then runs); pooling with padding; global pooling;
 * dense; batchnorm in training and evaluation mode; activations; add; flatten; dropout with a
 * fixed mask; softmax cross-entropy. Backward with accum=1 must add exactly its result.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "rt_kernels.h"

/* ck_assert writes a record for every check that passes (fork mode): checks inside loops over
 * many values go through CHECK, which reports only a failure. */
#define CHECK(cond, ...)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

static uint64_t lcg = 987654321;
static float frand(void) /* [-1, 1) */
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) / 8388608.0 - 1.0);
}

/* A layer under test: x (nx values) and parameters p (np values) to y (ny values). bwd gets
 * dy and fills dx (accum selects += or =) and dp (overwritten). */
typedef struct gc_case gc_case;
struct gc_case {
    const char *name;
    int nx, np, ny;
    void (*fwd)(gc_case *c, const float *x, const float *p, float *y);
    void (*bwd)(gc_case *c, const float *x, const float *p, const float *y, const float *dy,
                float *dx, int accum, float *dp);
    void *ctx;
    float h;            /* finite-difference step */
    float *x, *p;       /* the point where the gradient is checked */
};

static double loss_at(gc_case *c, const float *x, const float *p, const float *r, float *y)
{
    c->fwd(c, x, p, y);
    double s = 0;
    for (int i = 0; i < c->ny; i++)
        s += (double)r[i] * y[i];
    return s;
}

/* Largest |analytic - numeric| / (atol + rtol * max(|a|, |n|)) over one array; > 1 fails. */
static double worst(const float *an, const double *num, int n, double scale, int *where)
{
    const double rtol = 1e-2, atol = 1e-3 * scale;
    double w = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs(an[i] - num[i]) / (atol + rtol * fmax(fabs(an[i]), fabs(num[i])));
        if (e > w) {
            w = e;
            if (where)
                *where = i;
        }
    }
    return w;
}

static double max_abs(const double *v, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* Central differences of L in each entry of v (x or p), in place. A piecewise-linear layer
 * (relu, leaky relu) has kinks where an output crosses 0: when the two evaluations see a
 * different sign pattern the step is shrunk (up to three times) so that it stays on one side,
 * as the analytic gradient does. */
static void numeric(gc_case *c, float *v, int n, const float *r, float *y, double *out)
{
    float *y2 = malloc(sizeof(float) * c->ny);
    for (int i = 0; i < n; i++) {
        float keep = v[i], h = c->h;
        for (int tries = 0;; tries++) {
            v[i] = keep + h;
            double lp = loss_at(c, c->x, c->p, r, y);
            v[i] = keep - h;
            double lm = loss_at(c, c->x, c->p, r, y2);
            v[i] = keep;
            /* the step actually taken, in float */
            out[i] = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
            int same = 1;
            for (int j = 0; j < c->ny && same; j++)
                same = (y[j] > 0) == (y2[j] > 0);
            if (same || tries == 3)
                break;
            h /= 10;
        }
    }
    free(y2);
}

static void gradcheck(gc_case *c)
{
    float *r = malloc(sizeof(float) * c->ny), *y = malloc(sizeof(float) * c->ny);
    float *dx = malloc(sizeof(float) * (c->nx + 1)), *dx2 = malloc(sizeof(float) * (c->nx + 1));
    float *dp = malloc(sizeof(float) * (c->np + 1));
    double *nx = malloc(sizeof(double) * (c->nx + 1)), *np = malloc(sizeof(double) * (c->np + 1));
    for (int i = 0; i < c->ny; i++)
        r[i] = frand();
    c->fwd(c, c->x, c->p, y);
    c->bwd(c, c->x, c->p, y, r, dx, 0, dp);
    numeric(c, c->x, c->nx, r, y, nx);
    numeric(c, c->p, c->np, r, y, np);
    double scale = fmax(max_abs(nx, c->nx), max_abs(np, c->np));
    CHECK(scale > 1e-3, "%s: the gradient is zero, nothing is checked", c->name);
    int wx = 0, wp = 0;
    double ex = worst(dx, nx, c->nx, scale, &wx), ep = worst(dp, np, c->np, scale, &wp);
    CHECK(ex <= 1, "%s: dx[%d] = %.6g, finite differences %.6g", c->name, wx, dx[wx],
                  nx[wx]);
    CHECK(ep <= 1, "%s: dp[%d] = %.6g, finite differences %.6g", c->name, wp, dp[wp],
                  np[wp]);

    /* the check must be able to fail: spoil the largest analytic value by 5% */
    float *spoil = c->nx ? dx : dp;
    int n = c->nx ? c->nx : c->np, big = 0;
    for (int i = 1; i < n; i++)
        if (fabsf(spoil[i]) > fabsf(spoil[big]))
            big = i;
    spoil[big] *= 1.05f;
    CHECK(worst(spoil, c->nx ? nx : np, n, scale, NULL) > 1,
                  "%s: a 5%% error would pass unnoticed", c->name);
    spoil[big] /= 1.05f;

    /* accum = 1 adds its result to what dx held */
    if (c->nx) {
        for (int i = 0; i < c->nx; i++)
            dx2[i] = (float)i;
        c->fwd(c, c->x, c->p, y);
        c->bwd(c, c->x, c->p, y, r, dx2, 1, dp);
        for (int i = 0; i < c->nx; i++)
            CHECK(fabsf(dx2[i] - ((float)i + dx[i])) <= 1e-5f * (1 + i),
                          "%s: accum dx[%d] = %g, expected %g + %g", c->name, i, dx2[i],
                          (double)i, dx[i]);
    }
    free(r), free(y), free(dx), free(dx2), free(dp), free(nx), free(np);
}

static float *rand_array(int n, float lo, float hi)
{
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (int i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (frand() + 1) / 2;
    return v;
}

/* Distinct values 0.05 apart in random order, so a max never changes under a small step. */
static float *distinct_array(int n)
{
    float *v = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++)
        v[i] = 0.05f * (i - n / 2);
    for (int i = n - 1; i > 0; i--) {
        lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
        int j = (int)((lcg >> 33) % (uint64_t)(i + 1));
        float t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    return v;
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

static void check_conv(rt_conv_geom g, int n, int bias, rt_act act, float alpha,
                       rt_threads *tp, const char *name)
{
    g.oh = (g.h + g.pt + g.pb - g.kh) / g.sh + 1;
    g.ow = (g.w + g.pl + g.pr - g.kw) / g.sw + 1;
    ck_assert_int_eq(rt_conv_geom_check(&g, NULL), 0);
    conv_ctx k = {g, n, bias, act, alpha, tp};
    int nw = g.oc * g.c * g.kh * g.kw;
    gc_case c = {name, n * g.c * g.h * g.w, nw + (bias ? g.oc : 0), n * g.oc * g.oh * g.ow,
                 conv_fwd, conv_bwd, &k, 1e-2f, NULL, NULL};
    c.x = rand_array(c.nx, -1, 1);
    c.p = rand_array(c.np, -0.5f, 0.5f);
    gradcheck(&c);
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
            rt_conv_geom g = {2, 5, 6, 3, 0, 0, 3, 2, 2, 1, 1, 0, 2, 1, (rt_padmode)m, flip};
            check_conv(g, 3, 1, RT_ACT_NONE, 0, flip ? tp : NULL, names[m]);
            /* stride 1, symmetric padding, no bias */
            rt_conv_geom g2 = {1, 4, 5, 2, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, (rt_padmode)m, flip};
            check_conv(g2, 2, 0, RT_ACT_NONE, 0, flip ? NULL : tp, names[m]);
        }
    /* stride 2 both ways with padding 2, and a 1x1 pointwise conv (the no-im2col path) */
    rt_conv_geom g3 = {2, 7, 7, 2, 0, 0, 3, 3, 2, 2, 2, 2, 2, 2, RT_PAD_REFLECT, 0};
    check_conv(g3, 2, 1, RT_ACT_NONE, 0, tp, "conv stride 2 reflect 2");
    rt_conv_geom g4 = {3, 4, 4, 2, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 0};
    check_conv(g4, 3, 1, RT_ACT_NONE, 0, tp, "conv 1x1");
    /* more than 64 patch rows: dW by the packed GEMM instead of dot products */
    rt_conv_geom g5 = {8, 4, 3, 3, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, RT_PAD_CIRCULAR, 1};
    check_conv(g5, 2, 1, RT_ACT_NONE, 0, tp, "conv 8 channels");
    rt_conv_geom g6 = {70, 2, 3, 2, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 0};
    check_conv(g6, 2, 1, RT_ACT_NONE, 0, NULL, "conv 1x1 70 channels");
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(conv_activations)
{
    static const rt_act acts[] = {RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_SIGMOID, RT_ACT_TANH};
    static const char *names[] = {"conv+relu", "conv+leakyrelu", "conv+sigmoid", "conv+tanh"};
    for (int a = 0; a < 4; a++) {
        rt_conv_geom g = {2, 5, 5, 2, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, RT_PAD_ZERO, 0};
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
    };
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++)
        for (int max = 0; max < 2; max++) {
            pool_ctx k = {gs[i], 2, max, i % 2 ? tp : NULL};
            gc_case c = {max ? "maxpool" : "avgpool", 2 * gs[i].c * gs[i].h * gs[i].w, 0,
                         2 * gs[i].c * gs[i].oh * gs[i].ow, pool_fwd, pool_bwd, &k, 1e-3f,
                         NULL, NULL};
            c.x = distinct_array(c.nx);
            c.p = NULL;
            gradcheck(&c);
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

START_TEST(global_pooling)
{
    for (int max = 0; max < 2; max++) {
        gpool_ctx k = {2, 3, 7, max};
        gc_case c = {max ? "globalmaxpool" : "globalavgpool", 42, 0, 6, gpool_fwd, gpool_bwd,
                     &k, 1e-3f, NULL, NULL};
        c.x = distinct_array(42);
        gradcheck(&c);
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

START_TEST(dense)
{
    static const rt_act acts[] = {RT_ACT_NONE, RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_SIGMOID,
                                  RT_ACT_TANH, RT_ACT_SOFTMAX /* identity here */};
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int a = 0; a < 6; a++) {
        dense_ctx k = {3, 7, 40, a % 2, acts[a], a % 3 ? tp : NULL};
        gc_case c = {"dense", 21, 280 + (a % 2) * 40, 120, dense_fwd, dense_bwd, &k, 1e-2f,
                     NULL, NULL};
        c.x = rand_array(c.nx, -1, 1);
        c.p = rand_array(c.np, -0.5f, 0.5f);
        gradcheck(&c);
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

START_TEST(batchnorm)
{
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int train = 0; train < 2; train++)
        for (int hw = 1; hw <= 21; hw += 20) { /* BatchNorm1d (hw 1) and 2d */
            bn_ctx k = {4, 3, hw, train, {0.1f, -0.2f, 0.3f, 0}, {0.5f, 1.5f, 2, 1},
                        hw > 1 ? tp : NULL};
            gc_case c = {train ? "batchnorm train" : "batchnorm eval", 4 * 3 * hw, 6,
                         4 * 3 * hw, bn_fwd, bn_bwd, &k, 1e-2f, NULL, NULL};
            c.x = rand_array(c.nx, -2, 2);
            c.p = rand_array(6, 0.5f, 1.5f);
            gradcheck(&c);
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

START_TEST(activations)
{
    static const rt_act acts[] = {RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_SIGMOID, RT_ACT_TANH,
                                  RT_ACT_NONE};
    for (int a = 0; a < 5; a++) {
        ew_ctx k = {acts[a], NULL, 0};
        gc_case c = {"activation", 50, 0, 50, act_fwd, act_bwd, &k, 1e-3f, NULL, NULL};
        c.x = distinct_array(50); /* no value within a step of relu's kink at 0... */
        for (int i = 0; i < 50; i++)
            c.x[i] += 0.025f; /* ...since none is a multiple of 0.05 any more */
        gradcheck(&c);
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

START_TEST(add_dropout_flatten)
{
    ew_ctx k = {RT_ACT_NONE, NULL, 0};
    gc_case a = {"add", 40, 0, 20, add_fwd, add_bwd, &k, 1e-2f, NULL, NULL};
    a.x = rand_array(40, -1, 1);
    gradcheck(&a);
    free(a.x);

    rt_rng r;
    rt_rng_seed(&r, 3);
    k.mask = malloc(sizeof(float) * 30);
    rt_dropout_mask(k.mask, 30, 0.4f, &r);
    gc_case d = {"dropout", 30, 0, 30, drop_fwd, drop_bwd, &k, 1e-2f, NULL, NULL};
    d.x = rand_array(30, -1, 1);
    gradcheck(&d);
    free(d.x), free(k.mask);

    gc_case f = {"flatten", 24, 0, 24, flat_fwd, flat_bwd, &k, 1e-2f, NULL, NULL};
    f.x = rand_array(24, -1, 1);
    gradcheck(&f);
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

START_TEST(softmax_xent)
{
    gc_case c = {"softmax-xent", 15, 0, 1, xent_fwd, xent_bwd, NULL, 1e-2f, NULL, NULL};
    c.x = rand_array(15, -3, 3);
    gradcheck(&c);
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
