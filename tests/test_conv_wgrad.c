/*
 * test_conv_wgrad.c - the weight gradient of 3x3 "same" convolutions by Winograd
 * (runtime/kernels/rt_conv_wino_wgrad.c): dW and db against a float64 reference on random data
 * (error bounded), exactly on small integers (every step of it is exact then), the flip, the
 * same bits run after run and with no pool as on one worker, the shapes and batches the route
 * takes, the micro-kernels it runs with (AVX-512's only), and a finite-difference gradient
 * check through rt_conv2d_backward with it on. On a CPU without AVX-512 the route must not be
 * taken: the tests say so and check that instead.
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

/* max|err| / max|ref| allowed for dW and db. Measured on these cases: at most 4e-7; 2e-7 to
 * 8e-7 for 16 channels at 32x32 from 32 to 512 images on one worker (the implicit GEMM 3e-7
 * to 1.5e-6); the issue allows 1e-4 for gradients. */
#define DW_BOUND 4e-6

/* A 3x3 "same" geometry with zero padding: c, h, w, oc, flip. */
static rt_conv_geom same3(int c, int h, int w, int oc, int flip)
{
    rt_conv_geom g = {0};
    g.c = c, g.h = h, g.w = w, g.oc = oc, g.oh = h, g.ow = w, g.kh = 3, g.kw = 3;
    g.sh = 1, g.sw = 1, g.pt = 1, g.pb = 1, g.pl = 1, g.pr = 1, g.pad = RT_PAD_ZERO;
    g.dh = 1, g.dw = 1, g.groups = 1, g.flip = flip;
    ck_assert_int_eq(rt_conv_geom_check(&g, NULL), 0);
    return g;
}

/* dW and db from the definition, in double (dW's layout [oc][c][3][3], the flip applied). */
static void ref_wgrad(const rt_conv_geom *g, int n, const float *x, const float *dz, double *dw,
                      double *db)
{
    const size_t nw = (size_t)g->oc * g->c * 9;
    memset(dw, 0, nw * sizeof *dw);
    memset(db, 0, (size_t)g->oc * sizeof *db);
    for (int s = 0; s < n; s++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->h; oy++)
                for (int ox = 0; ox < g->w; ox++) {
                    const double d = dz[(((size_t)s * g->oc + o) * g->h + oy) * g->w + ox];
                    db[o] += d;
                    for (int ci = 0; ci < g->c; ci++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                const int iy = oy + ky - 1, ix = ox + kx - 1;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                const int wy = g->flip ? 2 - ky : ky, wx = g->flip ? 2 - kx : kx;
                                dw[(((size_t)o * g->c + ci) * 3 + wy) * 3 + wx] +=
                                    d * x[(((size_t)s * g->c + ci) * g->h + iy) * g->w + ix];
                            }
                }
}

/* Whether the route can run here: the GEMM's micro-kernel in use is AVX-512. */
static int runs(void)
{
    return strcmp(rt_gemm_isa(), "avx512") == 0;
}

/* dW, db of g over n images with the route on or off, on pool tp. */
static void wgrad(const rt_conv_geom *g, int n, const float *x, const float *w, const float *dz,
                  float *dw, float *db, int on, rt_threads *tp)
{
    rt_conv_winograd_wgrad(on);
    ck_assert_int_eq(rt_conv2d_backward(g, x, w, dz, NULL, 0, dw, db, n, tp), 0);
    rt_conv_winograd_wgrad(1);
}

/* Whether the route makes dW for g over n images on pool tp: on random data, dW with it on
 * differs from dW with it off (the implicit GEMM's) in some bit. */
static int taken(const rt_conv_geom *g, int n, rt_threads *tp)
{
    const size_t nx = (size_t)n * g->c * g->h * g->w, ny = (size_t)n * g->oc * g->oh * g->ow;
    const size_t nw = rt_conv2d_weight_count(g);
    float *x = gc_rand_array((int)nx, -1, 1), *w = gc_rand_array((int)nw, -1, 1);
    float *dz = gc_rand_array((int)ny, -1, 1);
    float *dw[2] = {malloc(nw * sizeof(float)), malloc(nw * sizeof(float))};
    float *db = malloc((size_t)g->oc * sizeof *db);
    for (int on = 0; on < 2; on++)
        wgrad(g, n, x, w, dz, dw[on], db, on, tp);
    const int d = differs(dw[0], dw[1], nw);
    free(x), free(w), free(dz), free(dw[0]), free(dw[1]), free(db);
    return d;
}

START_TEST(wgrad_against_reference)
{
    /* channels from 4 to 64 on a side (up to the 1024 pairs), one segment of 32 columns and
     * several (a tile row's neighbours across a segment's edge), the flip, one image (workers
     * with none), 128 images (the float sums' longest here), 1 to 3 workers:
     * dW and db within the bound of the float64 reference; the route's bits differ from the
     * implicit GEMM's (it was taken) where it runs, equal them where it does not; the same
     * bits twice, and with no pool as on a pool of one. Columns: c h w oc flip images. */
    static const int cases[][6] = {{16, 32, 32, 16, 0, 4}, {4, 2, 64, 8, 1, 32},
                                   {8, 6, 96, 12, 0, 8},   {32, 4, 32, 32, 1, 32},
                                   {64, 8, 32, 16, 0, 16}, {12, 4, 128, 4, 1, 8},
                                   {16, 64, 64, 16, 0, 1}, {16, 32, 32, 16, 1, 128}};
    rt_threads *tp1 = rt_threads_create(1, NULL), *tp2 = rt_threads_create(2, NULL);
    rt_threads *tp3 = rt_threads_create(3, NULL);
    rt_threads *pools[] = {tp1, tp2, tp3};
    double worst = 0;
    printf("winograd weight gradient: micro-kernel %s, route %s\n", rt_gemm_isa(),
           runs() ? "runs" : "does not run (no AVX-512)");
    for (int t = 0; t < (int)(sizeof cases / sizeof cases[0]); t++) {
        const int *k = cases[t], n = k[5];
        const rt_conv_geom g = same3(k[0], k[1], k[2], k[3], k[4]);
        const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.h * g.w;
        const size_t nw = rt_conv2d_weight_count(&g);
        float *x = gc_rand_array((int)nx, -1, 1), *w = gc_rand_array((int)nw, -1, 1);
        float *dz = gc_rand_array((int)ny, -1, 1);
        double *rdw = malloc(nw * sizeof *rdw), *rdb = malloc((size_t)g.oc * sizeof *rdb);
        ref_wgrad(&g, n, x, dz, rdw, rdb);
        float *dw = malloc(nw * sizeof *dw), *db = malloc((size_t)g.oc * sizeof *db);
        float *dw2 = malloc(nw * sizeof *dw2), *db2 = malloc((size_t)g.oc * sizeof *db2);
        for (int p = 0; p < 3; p++) {
            wgrad(&g, n, x, w, dz, dw, db, 1, pools[p]);
            const double e = rel_err(dw, rdw, nw), eb = rel_err(db, rdb, (size_t)g.oc);
            CHECK(e <= DW_BOUND, "case %d, %d workers: dW off by %.3g", t, p + 1, e);
            CHECK(eb <= DW_BOUND, "case %d, %d workers: db off by %.3g", t, p + 1, eb);
            worst = fmax(worst, fmax(e, eb));
            wgrad(&g, n, x, w, dz, dw2, db2, 1, pools[p]);
            CHECK(!differs(dw, dw2, nw) && !differs(db, db2, (size_t)g.oc),
                  "case %d, %d workers: other bits on a second run", t, p + 1);
            if (p == 0) {
                wgrad(&g, n, x, w, dz, dw2, db2, 1, NULL);
                CHECK(!differs(dw, dw2, nw) && !differs(db, db2, (size_t)g.oc),
                      "case %d: no pool and a pool of one differ", t);
            }
            wgrad(&g, n, x, w, dz, dw2, db2, 0, pools[p]);
            CHECK(differs(dw, dw2, nw) == runs(), "case %d, %d workers: route %s", t, p + 1,
                  runs() ? "not taken" : "taken");
        }
        free(x), free(w), free(dz), free(rdw), free(rdb), free(dw), free(db), free(dw2);
        free(db2);
    }
    printf("winograd weight gradient: largest error %.3g (bound %g)\n", worst, DW_BOUND);
    rt_threads_destroy(tp1);
    rt_threads_destroy(tp2);
    rt_threads_destroy(tp3);
}
END_TEST

START_TEST(wgrad_exact)
{
    /* small integers in x and dz: the transforms are sums of integers, M's sums stay below
     * 2^24, and G^T M G only halves and quarters them in double, so dW and db equal the
     * definition's exactly, flipped or not, on 1 and 2 workers; and the route ran: on random
     * data of the same shape its bits differ from the implicit GEMM's (where it runs) */
    rt_threads *tp2 = rt_threads_create(2, NULL);
    for (int flip = 0; flip < 2; flip++)
        for (int p = 0; p < 2; p++) {
            const rt_conv_geom g = same3(8, 6, 64, 12, flip);
            const int n = 11;
            const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.h * g.w;
            const size_t nw = rt_conv2d_weight_count(&g);
            float *x = malloc(nx * sizeof *x), *dz = malloc(ny * sizeof *dz);
            float *w = calloc(nw, sizeof *w), *dw = malloc(nw * sizeof *dw);
            float *db = malloc((size_t)g.oc * sizeof *db);
            double *rdw = malloc(nw * sizeof *rdw), *rdb = malloc((size_t)g.oc * sizeof *rdb);
            for (size_t i = 0; i < nx; i++)
                x[i] = (float)((int)(i * 7 % 5) - 2);
            for (size_t i = 0; i < ny; i++)
                dz[i] = (float)((int)(i * 5 % 7) - 3);
            ref_wgrad(&g, n, x, dz, rdw, rdb);
            wgrad(&g, n, x, w, dz, dw, db, 1, p ? tp2 : NULL);
            for (size_t i = 0; i < nw; i++)
                CHECK(dw[i] == rdw[i], "flip %d, pool %d: dW[%zu] %.9g, expected %.9g", flip,
                      p, i, dw[i], rdw[i]);
            for (int o = 0; o < g.oc; o++)
                CHECK(db[o] == rdb[o], "flip %d, pool %d: db[%d] %.9g, expected %.9g", flip, p,
                      o, db[o], rdb[o]);
            CHECK(taken(&g, n, p ? tp2 : NULL) == runs(), "flip %d, pool %d: route %s", flip, p,
                  runs() ? "not taken" : "taken");
            free(x), free(dz), free(w), free(dw), free(db), free(rdw), free(rdb);
        }
    rt_threads_destroy(tp2);
}
END_TEST

START_TEST(wgrad_default_shapes)
{
    /* taken (dW's bits then differ from the implicit GEMM's) at 1024 2x2 tiles over the
     * call's images, not at 3 images of 32x32 (768); up to 1024 channel pairs (32 x 32,
     * 64 x 16), not 1152 (32 x 36); not with channels that are not a whole number of 4, a
     * width of 48, an odd height, stride 2, no padding; never with the switch off; the shape
     * of wgrad_gradcheck. Columns: c h w oc images stride pad taken. */
    static const int shapes[][8] = {
        {16, 32, 32, 16, 4, 1, 1, 1}, {16, 32, 32, 16, 3, 1, 1, 0}, {32, 4, 32, 32, 64, 1, 1, 1},
        {64, 4, 32, 16, 64, 1, 1, 1}, {32, 4, 32, 36, 64, 1, 1, 0}, {6, 4, 32, 16, 64, 1, 1, 0},
        {16, 4, 32, 6, 64, 1, 1, 0},  {16, 4, 48, 16, 64, 1, 1, 0}, {16, 5, 32, 16, 64, 1, 1, 0},
        {16, 8, 64, 16, 64, 2, 1, 0}, {16, 6, 34, 16, 64, 1, 0, 0}, {4, 2, 32, 4, 64, 1, 1, 1}};
    for (int t = 0; t < (int)(sizeof shapes / sizeof shapes[0]); t++) {
        const int *k = shapes[t], n = k[4];
        rt_conv_geom g = same3(k[0], k[1], k[2], k[3], 0);
        g.sh = g.sw = k[5];
        g.pt = g.pb = g.pl = g.pr = k[6];
        g.oh = (g.h + 2 * k[6] - 3 + k[5]) / k[5], g.ow = (g.w + 2 * k[6] - 3 + k[5]) / k[5];
        ck_assert_int_eq(rt_conv_geom_check(&g, NULL), 0);
        const int want = k[7] && runs();
        CHECK(taken(&g, n, NULL) == want, "shape %d: route %s", t, want ? "not taken" : "taken");
    }
    ck_assert_int_eq(rt_conv_winograd_wgrad(0), 1); /* the setting before */
    ck_assert_int_eq(rt_conv_winograd_wgrad(1), 0);
}
END_TEST

START_TEST(wgrad_only_avx512)
{
    /* with each micro-kernel this CPU has: the route is taken with AVX-512's, not with the
     * others (the same bits as with it off) */
    static const char *isas[] = {"avx512", "avx2", "generic"};
    const char *before = rt_gemm_isa();
    const rt_conv_geom g = same3(16, 32, 32, 16, 0);
    int ran = 0;
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue; /* this CPU lacks it */
        ran++;
        CHECK(taken(&g, 4, NULL) == (is == 0), "micro-kernel %s: route %s", isas[is],
              is == 0 ? "not taken" : "taken");
    }
    ck_assert_int_gt(ran, 0);
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
}
END_TEST

/* The gradient check of the weights and bias only (conv_gradcheck.h's layer, relu included,
 * with the input held fixed): the route needs 1024 tiles, and central differences in each
 * of their inputs would take minutes. */
typedef struct {
    gc_conv k; /* first: gc_conv_ref reads the context as a gc_conv */
    const float *x;
    double *xd;
} wg_case;

static void wg_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    (void)x;
    wg_case *k = c->ctx;
    gc_conv_fwd(c, k->x, p, y);
}

static void wg_bwd(gc_case *c, const float *x, const float *p, const float *y, const float *dy,
                   float *dx, int accum, float *dp)
{
    (void)x, (void)dx, (void)accum;
    wg_case *k = c->ctx;
    const size_t nw = rt_conv2d_weight_count(&k->k.g);
    float *dz = malloc(sizeof(float) * c->ny);
    for (int i = 0; i < c->ny; i++) /* through the relu */
        dz[i] = y[i] > 0 ? dy[i] : 0.0f;
    ck_assert_int_eq(rt_conv2d_backward(&k->k.g, k->x, p, dz, NULL, 0, dp, dp + nw, k->k.n, NULL),
                     0);
    free(dz);
}

static uint64_t wg_ref(gc_case *c, const double *x, const double *p, double *y)
{
    (void)x;
    wg_case *k = c->ctx;
    return gc_conv_ref(c, k->xd, p, y);
}

START_TEST(wgrad_gradcheck)
{
    /* 4 -> 4 channels, 2 x 32 maps, 64 images: 1024 tiles, so the route makes dW and db (a
     * shape of wgrad_default_shapes) */
    const rt_conv_geom g = same3(4, 2, 32, 4, 0);
    const int n = 64, nx = n * g.c * g.h * g.w, nw = (int)rt_conv2d_weight_count(&g);
    wg_case k = {{g, n}, NULL, malloc(sizeof(double) * nx)};
    float *x = gc_rand_array(nx, -1, 1);
    for (int i = 0; i < nx; i++)
        k.xd[i] = x[i];
    k.x = x;
    gc_case c = {"winograd weight gradient", 0, n * g.oc * g.h * g.w, 2, {nw, g.oc}, {"w", "b"},
                 wg_fwd, wg_bwd, wg_ref, 1, &k, NULL, NULL};
    c.p = gc_rand_array(gc_np(&c), -0.5f, 0.5f);
    gc_run(&c);
    free(c.p), free(x), free(k.xd);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conv_wgrad");
    TCase *t = tcase_create("wgrad");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, wgrad_against_reference);
    tcase_add_test(t, wgrad_exact);
    tcase_add_test(t, wgrad_default_shapes);
    tcase_add_test(t, wgrad_only_avx512);
    tcase_add_test(t, wgrad_gradcheck);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_ENV);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
