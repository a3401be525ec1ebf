/*
 * test_conv_winograd.c - the Winograd route of 3x3 stride-1 convolutions
 * (runtime/kernels/rt_conv_winograd.c), F(2x2,3x3) and F(4x4,3x3): forward and input gradient
 * against a float64 direct reference on random data (error bounded), the same bits for 1, 2
 * and 3 workers, a residual add fused into the conv with the bits of the add after it, the
 * shapes the default setting picks, and a finite-difference gradient check
 * through rt_conv2d_backward with the route on (forced on every geometry it can take); the
 * same for the kernel for few channels (rt_conv_wino_small.c, switched off in the other
 * tests so that they cover the chunks), with integer data that it computes exactly.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "conv_compare.h"
#include "conv_gradcheck.h"
#include "gradcheck.h"
#include "rt_kernels.h"

#define CHECK(cond, ...)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

/* max|err| / max|ref| allowed, forward and input gradient, for F(2x2,3x3) (the default
 * tile) and F(4x4,3x3). Measured on these cases (uniform data in [-1, 1), every micro-kernel):
 * F(2x2) at most 5.2e-7 forward, 2.8e-7 dX; F(4x4) 3.2e-6 forward up to 48 channels but
 * 1.4e-5 at 300, 5.3e-6 dX. The issue allows 1e-5 forward and 1e-4 for gradients: F(4x4) is
 * not the default for that reason. */
static const int tiles[] = {2, 4};
static const double fwd_bound[] = {2e-6, 2e-5}, dx_bound[] = {2e-6, 1e-5};

/* Geometries the route takes when forced (the default keeps small ones on the GEMM): odd
 * sizes whose last tiles cross the map's edge, no padding, asymmetric padding up to 2 (dX's padding is then 2 - p),
 * the flip, a depth above the GEMM's 256-deep blocks. Columns: c h w oc pt pb pl pr flip. */
static const int cases[][9] = {
    {16, 9, 7, 16, 1, 1, 1, 1, 0},  {16, 8, 8, 32, 1, 1, 1, 1, 1},
    {20, 11, 13, 17, 0, 0, 0, 0, 0}, {16, 7, 10, 24, 2, 0, 1, 2, 1},
    {32, 16, 16, 16, 0, 2, 2, 0, 0}, {48, 5, 6, 40, 2, 2, 2, 2, 0},
    {17, 32, 32, 16, 1, 1, 1, 1, 0}, {300, 6, 5, 20, 1, 1, 1, 1, 1},
    {24, 10, 9, 20, 1, 1, 1, 1, 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static rt_conv_geom geom_of(const int *k)
{
    rt_conv_geom g = {0};
    g.c = k[0], g.h = k[1], g.w = k[2], g.oc = k[3], g.kh = 3, g.kw = 3;
    g.sh = 1, g.sw = 1;
    g.pt = k[4], g.pb = k[5], g.pl = k[6], g.pr = k[7];
    g.pad = RT_PAD_ZERO;
    g.flip = k[8];
    g.oh = g.h + g.pt + g.pb - 2;
    g.ow = g.w + g.pl + g.pr - 2;
    ck_assert_int_eq(rt_conv_geom_check(&g, NULL), 0);
    return g;
}

static uint64_t lcg = 424242;
static float urand(void) /* [-1, 1) */
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((int)((lcg >> 33) % 2000000) - 1000000) / 1e6f;
}

static float *rand_array(size_t n)
{
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = urand();
    return a;
}

/* y = act(conv + b) and dx = conv^T dz from the definition, in double. */
static void ref_conv(const rt_conv_geom *g, int n, const float *x, const float *w,
                     const float *b, const float *dz, rt_act act, float alpha, double *y,
                     double *dx)
{
    memset(dx, 0, sizeof(double) * n * g->c * g->h * g->w);
    for (int s = 0; s < n; s++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    size_t yi = (((size_t)s * g->oc + o) * g->oh + oy) * g->ow + ox;
                    double acc = b[o];
                    for (int c = 0; c < g->c; c++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = oy + ky - g->pt, ix = ox + kx - g->pl;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                int wy = g->flip ? 2 - ky : ky, wx = g->flip ? 2 - kx : kx;
                                size_t wi = (((size_t)o * g->c + c) * 3 + wy) * 3 + wx;
                                size_t xi = (((size_t)s * g->c + c) * g->h + iy) * g->w + ix;
                                acc += (double)w[wi] * x[xi];
                                dx[xi] += (double)dz[yi] * w[wi];
                            }
                    if (act == RT_ACT_RELU)
                        acc = acc > 0 ? acc : 0;
                    else if (act == RT_ACT_LEAKYRELU)
                        acc = acc > 0 ? acc : alpha * acc;
                    y[yi] = acc;
                }
}

static const char *isas[] = {"avx512", "avx2", "generic"};

/* Whether the kernel for few channels can run: the GEMM's micro-kernel in use is AVX-512. */
static int small_runs(void)
{
    return strcmp(rt_gemm_isa(), "avx512") == 0;
}

/* The checks of winograd_against_reference for tile tiles[ti]. */
static void against_reference(int ti, rt_threads *tp)
{
    static const rt_act acts[] = {RT_ACT_NONE, RT_ACT_RELU, RT_ACT_LEAKYRELU};
    rt_conv_winograd_tile(tiles[ti]);
    const double fb = fwd_bound[ti], xb = dx_bound[ti];
    double worst_y = 0, worst_dx = 0;
    int ran = 0;
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue; /* this CPU lacks it */
        printf("winograd F(%dx%d,3x3): micro-kernel %s\n", tiles[ti], tiles[ti],
               isas[is]);
        ran++;
        for (int t = 0; t < NCASES; t++) {
            const rt_conv_geom g = geom_of(cases[t]);
            const int n = t % 2 ? 3 : 2;
            const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.oh * g.ow;
            float *x = rand_array(nx), *w = rand_array(rt_conv2d_weight_count(&g));
            float *b = rand_array((size_t)g.oc), *dz = rand_array(ny), *dx0 = rand_array(nx);
            double *ry = malloc(ny * 8), *rdx = malloc(nx * 8);
            rt_act act = acts[(t + is) % 3];
            ref_conv(&g, n, x, w, b, dz, act, 0.1f, ry, rdx);
            float *y[2], *dx[2], *dxa = malloc(nx * 4);
            float *dw = malloc(rt_conv2d_weight_count(&g) * 4);
            for (int pool = 0; pool < 2; pool++) {
                rt_threads *p = pool ? tp : NULL;
                for (int on = 1; on >= 0; on--) {
                    rt_conv_use_winograd(on ? 2 : 0);
                    y[on] = malloc(ny * 4), dx[on] = malloc(nx * 4);
                    ck_assert_int_eq(rt_conv2d_forward(&g, x, w, b, act, 0.1f, y[on], n, p), 0);
                    ck_assert_int_eq(
                        rt_conv2d_backward(&g, x, w, dz, dx[on], 0, dw, NULL, n, p), 0);
                    double ey = rel_err(y[on], ry, ny), ex = rel_err(dx[on], rdx, nx);
                    CHECK(ey <= fb, "F%d %s case %d (winograd %d, pool %d): y off by %.3g",
                          tiles[ti], isas[is], t, on, pool, ey);
                    CHECK(ex <= xb,
                          "F%d %s case %d (winograd %d, pool %d): dx off by %.3g", tiles[ti],
                          isas[is], t, on, pool, ex);
                    if (on) {
                        worst_y = fmax(worst_y, ey);
                        worst_dx = fmax(worst_dx, ex);
                    }
                }
                rt_conv_use_winograd(2);
                CHECK(differs(y[0], y[1], ny) && differs(dx[0], dx[1], nx),
                      "%s case %d: winograd gave the GEMM route's bits (not taken?)", isas[is],
                      t);
                memcpy(dxa, dx0, nx * 4);
                ck_assert_int_eq(rt_conv2d_backward(&g, x, w, dz, dxa, 1, dw, NULL, n, p), 0);
                for (size_t i = 0; i < nx; i++)
                    CHECK(dxa[i] == dx0[i] + dx[1][i], "%s case %d: accumulated dx[%zu]",
                          isas[is], t, i);
                for (int on = 0; on < 2; on++)
                    free(y[on]), free(dx[on]);
            }
            free(x), free(w), free(b), free(dz), free(dx0), free(ry), free(rdx), free(dxa);
            free(dw);
        }
    }
    printf("winograd F(%dx%d,3x3): largest error %.3g forward, %.3g input gradient (bounds %g, "
           "%g)\n",
           tiles[ti], tiles[ti], worst_y, worst_dx, fb, xb);
    ck_assert_int_gt(ran, 0);
}

START_TEST(winograd_against_reference)
{
    /* every micro-kernel this CPU has, 1 and 2 workers, each activation the route fuses: y
     * and dx within the bounds of the float64 reference; the route is taken (its bits differ
     * from the GEMM route's, which is within the same bounds); dx accumulated onto dx0 is
     * dx0 + dx, bit for bit */
    const char *before = rt_gemm_isa();
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int ti = 0; ti < 2; ti++)
        against_reference(ti, tp);
    rt_conv_winograd_tile(2);
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(winograd_same_bits_any_pool)
{
    /* a tile's result depends on no other tile: 1, 2 and 3 workers (other chunks) give the
     * same y and dx, bit for bit */
    rt_threads *tp2 = rt_threads_create(2, NULL), *tp3 = rt_threads_create(3, NULL);
    rt_threads *pools[] = {NULL, tp2, tp3};
    for (int tt = 0; tt < 2 * NCASES; tt++) {
        const int t = tt % NCASES;
        rt_conv_winograd_tile(tiles[tt / NCASES]);
        const rt_conv_geom g = geom_of(cases[t]);
        const int n = 5;
        const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.oh * g.ow;
        float *x = rand_array(nx), *w = rand_array(rt_conv2d_weight_count(&g));
        float *b = rand_array((size_t)g.oc), *dz = rand_array(ny);
        float *dw = malloc(rt_conv2d_weight_count(&g) * 4), *y[3], *dx[3];
        for (int p = 0; p < 3; p++) {
            y[p] = malloc(ny * 4), dx[p] = malloc(nx * 4);
            ck_assert_int_eq(
                rt_conv2d_forward(&g, x, w, b, RT_ACT_RELU, 0.0f, y[p], n, pools[p]), 0);
            ck_assert_int_eq(rt_conv2d_backward(&g, x, w, dz, dx[p], 0, dw, NULL, n, pools[p]),
                             0);
        }
        for (int p = 1; p < 3; p++) {
            CHECK(!differs(y[0], y[p], ny), "case %d: y with %d workers differs", t, p + 1);
            CHECK(!differs(dx[0], dx[p], nx), "case %d: dx with %d workers differs", t, p + 1);
        }
        for (int p = 0; p < 3; p++)
            free(y[p]), free(dx[p]);
        free(x), free(w), free(b), free(dz), free(dw);
    }
    rt_conv_winograd_tile(2);
    rt_threads_destroy(tp2);
    rt_threads_destroy(tp3);
}
END_TEST

START_TEST(winograd_forward_res_same_bits)
{
    /* a residual add after the conv (an inference fusion): F(2x2)'s inverse transform adds
     * the residual before the activation, F(4x4) adds it in a pass after, both with the bits
     * of the conv, then rt_add_act_forward_mt; every output written; with a bias and without,
     * 1 and 2 workers */
    static const rt_act acts[] = {RT_ACT_NONE, RT_ACT_RELU, RT_ACT_LEAKYRELU};
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int tt = 0; tt < 2 * NCASES; tt++) {
        const int t = tt % NCASES, n = t % 2 ? 3 : 2;
        rt_conv_winograd_tile(tiles[tt / NCASES]);
        const rt_conv_geom g = geom_of(cases[t]);
        const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.oh * g.ow;
        float *x = rand_array(nx), *w = rand_array(rt_conv2d_weight_count(&g));
        float *b = rand_array((size_t)g.oc), *res = rand_array(ny);
        float *a = malloc(ny * 4), *f = malloc(ny * 4);
        const rt_act act = acts[tt % 3];
        const float *bias = tt % 4 ? b : NULL;
        rt_threads *p = tt % 2 ? tp : NULL;
        for (size_t i = 0; i < ny; i++)
            f[i] = NAN; /* an output left unwritten shows */
        ck_assert_int_eq(rt_conv2d_forward(&g, x, w, bias, RT_ACT_NONE, 0.0f, a, n, p), 0);
        rt_add_act_forward_mt(a, res, act, 0.1f, a, ny, p);
        ck_assert_int_eq(rt_conv2d_forward_res(&g, x, w, bias, res, act, 0.1f, f, n, p), 0);
        for (size_t i = 0; i < ny; i++)
            CHECK(memcmp(&a[i], &f[i], sizeof *a) == 0,
                  "F%d case %d act %d: y[%zu] %.9g (fused) vs %.9g", tiles[tt / NCASES], t,
                  (int)act, i, f[i], a[i]);
        free(x), free(w), free(b), free(res), free(a), free(f);
    }
    rt_conv_winograd_tile(2);
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(winograd_default_shapes)
{
    /* the default setting takes the route where it measured faster only: 32 channels or more
     * on maps a whole number of 8 wide (64 at 16x16, 32 at 8x8), any map from 128 channels
     * (7x7), not 64 at 14x14, and only over batches with at least 8192 tiles x channels
     * (64 at 16x16 over 2 images, not 1; 32 channels at 8x8 over 16, not 15; 128 at 7x7 over
     * 4, not 3); 16 channels at 32x32 by the kernel for few channels, at any batch, where
     * it runs (AVX-512). Bits
     * differ from the GEMM route's where it is taken, same bits where not. The last field is
     * the batch. */
    static const int shapes[][10] = {
        {64, 16, 16, 64, 1, 1, 1, 1, 0, 2},  {32, 8, 8, 48, 1, 1, 1, 1, 0, 16},
        {128, 7, 7, 128, 1, 1, 1, 1, 0, 4},  {16, 32, 32, 16, 1, 1, 1, 1, 0, 4},
        {64, 14, 14, 64, 1, 1, 1, 1, 0, 4},  {24, 16, 16, 64, 1, 1, 1, 1, 0, 6},
        {64, 16, 16, 64, 1, 1, 1, 1, 0, 1},  {32, 8, 8, 48, 1, 1, 1, 1, 0, 15},
        {128, 7, 7, 128, 1, 1, 1, 1, 0, 3}};
    static const int taken[] = {1, 1, 1, -1, 0, 0, 0, 0, 0}; /* -1: where small_runs() */
    rt_conv_winograd_small(1);
    for (int t = 0; t < 9; t++) {
        const int want = taken[t] < 0 ? small_runs() : taken[t];
        const rt_conv_geom g = geom_of(shapes[t]);
        const int n = shapes[t][9];
        const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.oh * g.ow;
        float *x = rand_array(nx), *w = rand_array(rt_conv2d_weight_count(&g));
        float *y[2] = {malloc(ny * 4), malloc(ny * 4)};
        for (int on = 0; on < 2; on++) {
            rt_conv_use_winograd(on);
            ck_assert_int_eq(rt_conv2d_forward(&g, x, w, NULL, RT_ACT_NONE, 0, y[on], n, NULL),
                             0);
        }
        CHECK(differs(y[0], y[1], ny) == want, "shape %d over %d images: route %s", t, n,
              want ? "not taken" : "taken");
        free(x), free(w), free(y[0]), free(y[1]);
    }
    rt_conv_winograd_small(0);
    rt_conv_use_winograd(2);
}
END_TEST

START_TEST(winograd_pool_runs_same_bits)
{
    /* a conv and its max pooling in runs of images (rt_conv2d_forward_pool): with the
     * default rule, 64 channels at 16x16 take the route over 2 images or more, not over one;
     * 17 images run as 16 + 1 on one worker, as one run of 17 on two. Every run takes the
     * route of the whole batch: the pooled bits are those of rt_conv2d_forward over the
     * batch, then the pooling, on 1 and 2 workers */
    static const int shape[9] = {64, 16, 16, 64, 1, 1, 1, 1, 0};
    const rt_conv_geom g = geom_of(shape);
    const rt_pool_geom pg = {.c = 64, .h = 16, .w = 16, .oh = 8, .ow = 8, .kh = 2, .kw = 2,
                             .sh = 2, .sw = 2};
    const int n = 17;
    const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.oh * g.ow;
    const size_t np = (size_t)n * pg.c * pg.oh * pg.ow;
    float *x = rand_array(nx), *w = rand_array(rt_conv2d_weight_count(&g));
    float *b = rand_array((size_t)g.oc), *y = malloc(ny * 4), *ref = malloc(np * 4);
    float *py = malloc(np * 4);
    rt_threads *tp = rt_threads_create(2, NULL);
    rt_conv_use_winograd(1);
    ck_assert_int_eq(rt_conv2d_forward(&g, x, w, b, RT_ACT_RELU, 0.0f, y, n, NULL), 0);
    rt_maxpool_forward(&pg, y, ref, n, NULL);
    for (int workers = 1; workers <= 2; workers++) {
        for (size_t i = 0; i < np; i++)
            py[i] = NAN;
        ck_assert_int_eq(rt_conv2d_forward_pool(&g, x, w, b, RT_ACT_RELU, 0.0f, y, 0, n, &pg, 0,
                                                py, workers == 2 ? tp : NULL),
                         0);
        CHECK(memcmp(py, ref, np * 4) == 0, "%d worker(s): pooled bits differ from the conv's",
              workers);
    }
    rt_conv_use_winograd(2);
    rt_threads_destroy(tp);
    free(x), free(w), free(b), free(y), free(ref), free(py);
}
END_TEST

/* ------------------------------------------------------------------ few channels */

/* Geometries the kernel for few channels (rt_conv_wino_small.c) takes, padding 1: a tile
 * row of several 32-wide segments (64, 96), an image's last work item with one vector of
 * tiles (2x32: one vector; 10 rows: five), output channels past a block of 8 (20, 40),
 * 64 channels on one side, one channel, the flip; 4 input channels or more (fewer go to
 * the direct route). Their input gradients (c and oc swapped) take it too. Columns: c h w
 * oc flip. */
static const int scases[][5] = {
    {16, 32, 32, 16, 0}, {5, 2, 32, 20, 1}, {24, 6, 64, 8, 0}, {64, 4, 32, 24, 1},
    {16, 4, 96, 40, 0},  {8, 10, 32, 64, 0}, {4, 2, 32, 1, 0},
};
#define NSCASES ((int)(sizeof scases / sizeof scases[0]))

static rt_conv_geom sgeom_of(const int *k)
{
    const int full[9] = {k[0], k[1], k[2], k[3], 1, 1, 1, 1, k[4]};
    return geom_of(full);
}

START_TEST(winograd_small_against_reference)
{
    /* each activation, with and without a bias, 1 and 3 images, with every micro-kernel
     * this CPU has: y and dx within F(2x2)'s bounds of the float64 reference; the kernel is
     * taken with the AVX-512 micro-kernel (its bits differ from the chunked route's,
     * RT_CONV_WINOGRAD_SMALL=0), not with the others (the same bits); the same bits on 1, 2
     * and 3 workers; dx accumulated onto dx0 is dx0 + dx bit for bit; a residual fused into
     * it gives the bits of the conv, then the add */
    static const rt_act acts[] = {RT_ACT_NONE, RT_ACT_RELU, RT_ACT_LEAKYRELU};
    const char *before = rt_gemm_isa();
    rt_threads *tp2 = rt_threads_create(2, NULL), *tp3 = rt_threads_create(3, NULL);
    rt_threads *pools[] = {NULL, tp2, tp3};
    double worst_y = 0, worst_dx = 0;
    int ran = 0;
    rt_conv_use_winograd(2);
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue; /* this CPU lacks it */
        ran++;
        for (int t = 0; t < NSCASES; t++) {
            const rt_conv_geom g = sgeom_of(scases[t]);
            const int n = t % 2 ? 1 : 3;
            const rt_act act = acts[(t + is) % 3];
            const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.oh * g.ow;
            float *x = rand_array(nx), *w = rand_array(rt_conv2d_weight_count(&g));
            float *b = rand_array((size_t)g.oc), *dz = rand_array(ny), *dx0 = rand_array(nx);
            float *res = rand_array(ny), *dw = malloc(rt_conv2d_weight_count(&g) * 4);
            float *zero = calloc((size_t)g.oc, 4);
            const float *bias = (t + is) % 2 ? b : NULL;
            double *ry = malloc(ny * 8), *rdx = malloc(nx * 8);
            ref_conv(&g, n, x, w, bias ? b : zero, dz, act, 0.1f, ry, rdx);
            float *y[4], *dx[4];
            for (int k = 0; k < 4; k++) { /* k < 3: the kernel on pools[k]; 3: chunked */
                rt_conv_winograd_small(k < 3);
                y[k] = malloc(ny * 4), dx[k] = malloc(nx * 4);
                rt_threads *p = pools[k < 3 ? k : 1];
                ck_assert_int_eq(rt_conv2d_forward(&g, x, w, bias, act, 0.1f, y[k], n, p), 0);
                ck_assert_int_eq(rt_conv2d_backward(&g, x, w, dz, dx[k], 0, dw, NULL, n, p), 0);
            }
            rt_conv_winograd_small(1);
            const int runs = small_runs();
            const double ey = rel_err(y[0], ry, ny), ex = rel_err(dx[0], rdx, nx);
            CHECK(ey <= fwd_bound[0], "%s case %d: y off by %.3g", isas[is], t, ey);
            CHECK(ex <= dx_bound[0], "%s case %d: dx off by %.3g", isas[is], t, ex);
            worst_y = fmax(worst_y, ey), worst_dx = fmax(worst_dx, ex);
            for (int k = 1; k < 3; k++) {
                CHECK(!differs(y[0], y[k], ny), "%s case %d: y on %d workers differs", isas[is],
                      t, k + 1);
                CHECK(!differs(dx[0], dx[k], nx), "%s case %d: dx on %d workers differs",
                      isas[is], t, k + 1);
            }
            CHECK(differs(y[0], y[3], ny) == runs && differs(dx[0], dx[3], nx) == runs,
                  "%s case %d: kernel %s", isas[is], t, runs ? "not taken" : "taken");
            float *acc = malloc(nx * 4), *f = malloc(ny * 4), *a = malloc(ny * 4);
            memcpy(acc, dx0, nx * 4);
            ck_assert_int_eq(rt_conv2d_backward(&g, x, w, dz, acc, 1, dw, NULL, n, tp2), 0);
            for (size_t i = 0; i < nx; i++)
                CHECK(acc[i] == dx0[i] + dx[0][i], "%s case %d: accumulated dx[%zu]", isas[is],
                      t, i);
            ck_assert_int_eq(rt_conv2d_forward(&g, x, w, bias, RT_ACT_NONE, 0.0f, a, n, tp2), 0);
            rt_add_act_forward_mt(a, res, act, 0.1f, a, ny, tp2);
            for (size_t i = 0; i < ny; i++)
                f[i] = NAN; /* an output left unwritten shows */
            ck_assert_int_eq(rt_conv2d_forward_res(&g, x, w, bias, res, act, 0.1f, f, n, tp2),
                             0);
            CHECK(memcmp(a, f, ny * 4) == 0, "%s case %d: fused residual's bits differ",
                  isas[is], t);
            for (int k = 0; k < 4; k++)
                free(y[k]), free(dx[k]);
            free(x), free(w), free(b), free(dz), free(dx0), free(res), free(dw), free(zero);
            free(ry), free(rdx), free(acc), free(f), free(a);
        }
    }
    printf("winograd for few channels: largest error %.3g forward, %.3g input gradient "
           "(bounds %g, %g)\n", worst_y, worst_dx, fwd_bound[0], dx_bound[0]);
    rt_conv_winograd_small(0);
    ck_assert_int_gt(ran, 0);
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_threads_destroy(tp2);
    rt_threads_destroy(tp3);
}
END_TEST

START_TEST(winograd_small_exact)
{
    /* small integers in, bias, weights and dz: every step of F(2x2,3x3) is exact in float
     * (U has halves and quarters), so y and dx equal the definition's exactly, on every
     * micro-kernel's copy */
    static const int k[5] = {5, 4, 64, 12, 1};
    const rt_conv_geom g = sgeom_of(k);
    const int n = 2;
    const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.oh * g.ow;
    const size_t nw = rt_conv2d_weight_count(&g);
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)g.oc * 4);
    float *dz = malloc(ny * 4), *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4);
    double *ry = malloc(ny * 8), *rdx = malloc(nx * 8);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)((int)(i * 7 % 5) - 2);
    for (size_t i = 0; i < nw; i++)
        w[i] = (float)((int)(i * 3 % 7) - 3);
    for (int o = 0; o < g.oc; o++)
        b[o] = (float)(o % 3 - 1);
    for (size_t i = 0; i < ny; i++)
        dz[i] = (float)((int)(i * 5 % 3) - 1);
    ref_conv(&g, n, x, w, b, dz, RT_ACT_RELU, 0.0f, ry, rdx);
    const char *before = rt_gemm_isa();
    rt_conv_use_winograd(1);
    rt_conv_winograd_small(1);
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue;
        printf("winograd for few channels, exact: micro-kernel %s, kernel %s\n", isas[is],
               small_runs() ? "on" : "off (the implicit GEMM)");
        ck_assert_int_eq(rt_conv2d_forward(&g, x, w, b, RT_ACT_RELU, 0.0f, y, n, NULL), 0);
        ck_assert_int_eq(rt_conv2d_backward(&g, x, w, dz, dx, 0, dw, NULL, n, NULL), 0);
        for (size_t i = 0; i < ny; i++)
            CHECK(y[i] == ry[i], "%s: y[%zu] %.9g, expected %.9g", isas[is], i, y[i], ry[i]);
        for (size_t i = 0; i < nx; i++)
            CHECK(dx[i] == rdx[i], "%s: dx[%zu] %.9g, expected %.9g", isas[is], i, dx[i],
                  rdx[i]);
    }
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_conv_winograd_small(0);
    rt_conv_use_winograd(2);
    free(x), free(w), free(b), free(dz), free(y), free(dx), free(dw), free(ry), free(rdx);
}
END_TEST

START_TEST(winograd_small_default_shapes)
{
    /* the default setting runs the kernel, forward and input gradient, on any batch where
     * min(c, oc) <= 24 and max(c, oc) <= 64, 3x3 "same", the height even and the width a
     * whole number of 32 (its bits then differ from those with it off), where it runs
     * (AVX-512); not at 32 channels each way, 65 on a side, 25 on both, a width of 48, an
     * odd height, no padding; nor with F(4x4) asked for, even with the route forced.
     * Columns: c h w oc pad images taken. */
    static const int shapes[][7] = {
        {16, 32, 32, 16, 1, 1, 1}, {24, 8, 64, 64, 1, 2, 1}, {64, 4, 32, 8, 1, 1, 1},
        {32, 8, 32, 32, 1, 1, 0},  {65, 4, 32, 16, 1, 1, 0}, {16, 4, 32, 65, 1, 1, 0},
        {25, 4, 32, 25, 1, 1, 0},  {16, 8, 48, 16, 1, 1, 0}, {16, 7, 32, 16, 1, 1, 0},
        {16, 10, 34, 16, 0, 1, 0}};
    const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    printf("winograd for few channels: micro-kernel %s, kernel %s\n", rt_gemm_isa(),
           small_runs() ? "runs" : "does not run");
    for (int t = 0; t <= nshapes; t++) {
        const int *k = shapes[t < nshapes ? t : 0], p = k[4];
        const int full[9] = {k[0], k[1], k[2], k[3], p, p, p, p, 0};
        const rt_conv_geom g = geom_of(full);
        const int n = k[5], want = t < nshapes && k[6] && small_runs();
        rt_conv_use_winograd(t < nshapes ? 1 : 2); /* the last: F(4x4), forced */
        rt_conv_winograd_tile(t < nshapes ? 2 : 4);
        const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.oh * g.ow;
        float *x = rand_array(nx), *w = rand_array(rt_conv2d_weight_count(&g));
        float *dz = rand_array(ny), *dw = malloc(rt_conv2d_weight_count(&g) * 4);
        float *y[2] = {malloc(ny * 4), malloc(ny * 4)}, *dx[2] = {malloc(nx * 4), malloc(nx * 4)};
        for (int on = 0; on < 2; on++) {
            rt_conv_winograd_small(on);
            ck_assert_int_eq(rt_conv2d_forward(&g, x, w, NULL, RT_ACT_NONE, 0, y[on], n, NULL),
                             0);
            ck_assert_int_eq(rt_conv2d_backward(&g, x, w, dz, dx[on], 0, dw, NULL, n, NULL), 0);
        }
        CHECK(differs(y[0], y[1], ny) == want, "shape %d: kernel %s", t,
              want ? "not taken" : "taken");
        CHECK(differs(dx[0], dx[1], nx) == want, "shape %d: kernel %s for dx", t,
              want ? "not taken" : "taken");
        free(x), free(w), free(dz), free(dw), free(y[0]), free(y[1]), free(dx[0]), free(dx[1]);
    }
    rt_conv_winograd_tile(2);
    rt_conv_winograd_small(0);
    rt_conv_use_winograd(2);
}
END_TEST

/* ------------------------------------------------------------------ gradient check */

START_TEST(winograd_gradcheck)
{
    /* odd sizes (tiles across the edge), asymmetric padding: dX by the route, dW by the GEMM */
    static const int gcases[][9] = {{16, 5, 6, 16, 1, 1, 1, 0, 0},
                                    {16, 4, 5, 17, 2, 0, 0, 1, 0}};
    rt_conv_use_winograd(2);
    for (int t = 0; t < 4; t++) {
        rt_conv_winograd_tile(tiles[t / 2]);
        gc_conv_check("winograd conv", geom_of(gcases[t % 2]), 2);
    }
    rt_conv_winograd_tile(2);
    static const int scase[5] = {4, 2, 32, 6, 0}; /* the kernel for few channels (AVX-512) */
    rt_conv_winograd_small(1);
    gc_conv_check("winograd conv, few channels", sgeom_of(scase), 2);
    rt_conv_winograd_small(0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conv_winograd");
    TCase *t = tcase_create("winograd");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, winograd_against_reference);
    tcase_add_test(t, winograd_same_bits_any_pool);
    tcase_add_test(t, winograd_forward_res_same_bits);
    tcase_add_test(t, winograd_default_shapes);
    tcase_add_test(t, winograd_pool_runs_same_bits);
    tcase_add_test(t, winograd_small_against_reference);
    tcase_add_test(t, winograd_small_exact);
    tcase_add_test(t, winograd_small_default_shapes);
    tcase_add_test(t, winograd_gradcheck);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    rt_conv_use_winograd(2); /* on every geometry it takes, small ones included */
    rt_conv_winograd_small(0); /* by the chunks; the tests of the kernel for few channels
                                * switch it on */
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_ENV);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
