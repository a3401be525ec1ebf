/*
 * test_conv_implicit.c - the implicit-GEMM route of zero-padded convolutions
 * (runtime/kernels/rt_conv.c): exact results on integer data against a float64 reference,
 * the same bits as the im2col route on random data, and a finite-difference gradient check.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "conv_gradcheck.h"
#include "gradcheck.h"
#include "rt_kernels.h"

#define CHECK(cond, ...)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

/* Geometries the route takes: one slab per image (32x32), several bands (64x64), folded
 * small maps (8x8, 5x6), patch depths above the GEMM's 256-deep blocks (32 and 30 channels
 * of 3x3), asymmetric and zero padding, 2x2, 5x5 and 1x3 kernels; dW's tiles for few (up
 * to 16) and more (24, 40) output channels; strides 2 and 3 (phase planes), folded, whole
 * and in bands. Maps whose rows are whole vectors or whole half vectors go straight into
 * the output (rt_gemm_implicit_rows): on AVX-512, 32, 64, 16 and 48 wide by vectors, 8 and
 * 24 by halves; on AVX2, 12 by halves; the 16-wide 5-row case has a tail of half a tile (80
 * pixels) and of one channel (9). Rows cut into vectors the last of which is partial (13,
 * 29, 41 and 61 wide on AVX-512; also 7 on AVX2, and 41 there ends in a vector of one):
 * 13 with a tile's second vector past the end,
 * 29 with two depth blocks (the second adds to the stored partial vectors) and 10 output
 * channels (a tile of 2 rows). At a column stride of 2 both column phases are filled in one
 * pass (fill_pairs): left padding 0, 1 and 2, odd widths (9 with a 2x2 kernel: the last
 * column is read by no window), plane rows of 4 to 49 floats (a whole number of 8-float
 * steps and not), a row stride of 3. Columns: c h w oc kh kw sh sw
 * pt pb pl pr flip. */
static const int cases[][13] = {
    {16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 0}, {16, 64, 64, 16, 3, 3, 1, 1, 1, 1, 1, 1, 0},
    {8, 8, 8, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1},    {32, 8, 8, 9, 3, 3, 1, 1, 1, 1, 1, 1, 0},
    {30, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},    {3, 9, 7, 5, 2, 2, 1, 1, 0, 1, 1, 0, 0},
    {4, 11, 13, 6, 5, 5, 1, 1, 2, 2, 2, 2, 1},   {5, 7, 9, 3, 1, 3, 1, 1, 0, 0, 1, 1, 0},
    {2, 6, 5, 3, 3, 3, 1, 1, 0, 0, 0, 0, 0},     {3, 10, 40, 4, 3, 3, 1, 1, 2, 0, 0, 2, 0},
    {12, 6, 7, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1},   {16, 32, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 0},
    {8, 9, 11, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1},    {5, 12, 10, 7, 5, 3, 2, 3, 2, 1, 0, 2, 0},
    {32, 96, 96, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1}, {9, 10, 9, 5, 4, 4, 3, 2, 3, 0, 1, 2, 0},
    {4, 5, 16, 9, 3, 3, 1, 1, 1, 1, 1, 1, 0},  {5, 6, 24, 8, 3, 3, 1, 1, 1, 1, 1, 1, 0},
    {6, 7, 12, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {32, 9, 29, 10, 3, 3, 1, 1, 1, 1, 1, 1, 0},
    {16, 7, 63, 5, 3, 3, 1, 1, 0, 0, 0, 0, 0}, {4, 6, 43, 4, 3, 3, 1, 1, 0, 0, 0, 0, 1},
    {6, 11, 13, 7, 5, 5, 2, 2, 2, 2, 2, 2, 0}, {3, 9, 40, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1},
    {4, 8, 9, 5, 2, 2, 2, 2, 0, 0, 0, 0, 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static rt_conv_geom geom_of(const int *k)
{
    rt_conv_geom g = {0};
    g.c = k[0], g.h = k[1], g.w = k[2], g.oc = k[3], g.kh = k[4], g.kw = k[5];
    g.sh = k[6], g.sw = k[7];
    g.pt = k[8], g.pb = k[9], g.pl = k[10], g.pr = k[11];
    g.pad = RT_PAD_ZERO;
    g.flip = k[12];
    g.oh = (g.h + g.pt + g.pb - g.kh) / g.sh + 1;
    g.ow = (g.w + g.pl + g.pr - g.kw) / g.sw + 1;
    ck_assert_int_eq(rt_conv_geom_check(&g, NULL), 0);
    return g;
}

static uint64_t lcg = 12345;
static int irand(int lo, int hi) /* [lo, hi] */
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (int)((lcg >> 33) % (uint64_t)(hi - lo + 1));
}

/* Conv forward and backward from the definitions, in double. */
static void ref_conv(const rt_conv_geom *g, int n, const float *x, const float *w,
                     const float *b, const float *dz, double *y, double *dx, double *dw,
                     double *db, double *dwabs)
{
    const int K = g->c * g->kh * g->kw;
    memset(dx, 0, sizeof(double) * n * g->c * g->h * g->w);
    memset(dw, 0, sizeof(double) * g->oc * K);
    memset(dwabs, 0, sizeof(double) * g->oc * K);
    memset(db, 0, sizeof(double) * g->oc);
    for (int s = 0; s < n; s++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    size_t yi = (((size_t)s * g->oc + o) * g->oh + oy) * g->ow + ox;
                    double acc = b[o];
                    for (int c = 0; c < g->c; c++)
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int iy = oy * g->sh + ky - g->pt, ix = ox * g->sw + kx - g->pl;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                int wy = g->flip ? g->kh - 1 - ky : ky;
                                int wx = g->flip ? g->kw - 1 - kx : kx;
                                size_t wi = (((size_t)o * g->c + c) * g->kh + wy) * g->kw + wx;
                                size_t xi = (((size_t)s * g->c + c) * g->h + iy) * g->w + ix;
                                acc += (double)w[wi] * x[xi];
                                dw[wi] += (double)dz[yi] * x[xi];
                                dwabs[wi] += fabs((double)dz[yi] * x[xi]);
                                dx[xi] += (double)dz[yi] * w[wi];
                            }
                    y[yi] = acc;
                    db[o] += dz[yi];
                }
}

typedef struct {
    rt_conv_geom g;
    int n;
    size_t nx, ny, nw;
    float *x, *w, *b, *dz;
} conv_data;

/* Integer data in [-2, 2] (every sum below 2^24 is exact in float), or uniform in [-1, 1). */
static conv_data make_data(const int *k, int n, int integers)
{
    conv_data d;
    d.g = geom_of(k);
    d.n = n;
    d.nx = (size_t)n * d.g.c * d.g.h * d.g.w;
    d.ny = (size_t)n * d.g.oc * d.g.oh * d.g.ow;
    d.nw = rt_conv2d_weight_count(&d.g);
    d.x = malloc(d.nx * 4), d.w = malloc(d.nw * 4), d.b = malloc((size_t)d.g.oc * 4);
    d.dz = malloc(d.ny * 4);
    float *all[] = {d.x, d.w, d.b, d.dz};
    size_t len[] = {d.nx, d.nw, (size_t)d.g.oc, d.ny};
    for (int a = 0; a < 4; a++)
        for (size_t i = 0; i < len[a]; i++)
            all[a][i] = integers ? (float)irand(-2, 2) : (float)irand(-1000000, 999999) / 1e6f;
    return d;
}

static void free_data(conv_data *d)
{
    free(d->x), free(d->w), free(d->b), free(d->dz);
}

/* The layer's outputs: y (act after bias), dx (with accum onto dx0 when given), dw, db. */
typedef struct {
    float *y, *dx, *dw, *db;
} conv_out;

static conv_out run(const conv_data *d, rt_act act, const float *dx0, rt_threads *tp)
{
    conv_out r;
    r.y = malloc(d->ny * 4), r.dx = malloc(d->nx * 4), r.dw = malloc(d->nw * 4);
    r.db = malloc((size_t)d->g.oc * 4);
    for (size_t i = 0; i < d->ny; i++) /* an output left unwritten shows (malloc may hand */
        r.y[i] = NAN;                  /* back the last run's right answers) */
    if (dx0)
        memcpy(r.dx, dx0, d->nx * 4);
    else
        for (size_t i = 0; i < d->nx; i++)
            r.dx[i] = NAN;
    ck_assert_int_eq(rt_conv2d_forward(&d->g, d->x, d->w, d->b, act, 0.1f, r.y, d->n, tp), 0);
    ck_assert_int_eq(
        rt_conv2d_backward(&d->g, d->x, d->w, d->dz, r.dx, dx0 != NULL, r.dw, r.db, d->n, tp),
        0);
    return r;
}

static void free_out(conv_out *r)
{
    free(r->y), free(r->dx), free(r->dw), free(r->db);
}

static const char *isas[] = {"avx512", "avx2", "generic"};

START_TEST(implicit_exact_on_integers)
{
    /* integer data: every float sum is exact, so the results equal the float64 reference
     * exactly, whatever the order of the sums (a wrong tap, border or fold cannot hide) */
    const char *before = rt_gemm_isa();
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue; /* this CPU lacks it: test_kernels reports which */
        for (int t = 0; t < NCASES; t++) {
            conv_data d = make_data(cases[t], t % 2 ? 5 : 2, 1);
            double *ry = malloc(d.ny * 8), *rdx = malloc(d.nx * 8), *rdw = malloc(d.nw * 8);
            double *rdb = malloc((size_t)d.g.oc * 8), *rabs = malloc(d.nw * 8);
            ref_conv(&d.g, d.n, d.x, d.w, d.b, d.dz, ry, rdx, rdw, rdb, rabs);
            conv_out r = run(&d, RT_ACT_NONE, NULL, t % 2 ? tp : NULL);
            for (size_t i = 0; i < d.ny; i++)
                CHECK(r.y[i] == ry[i], "%s case %d: y[%zu] = %g, expected %g", isas[is], t, i,
                      r.y[i], ry[i]);
            for (size_t i = 0; i < d.nx; i++)
                CHECK(r.dx[i] == rdx[i], "%s case %d: dx[%zu] = %g, expected %g", isas[is], t,
                      i, r.dx[i], rdx[i]);
            for (size_t i = 0; i < d.nw; i++)
                CHECK(r.dw[i] == rdw[i], "%s case %d: dw[%zu] = %g, expected %g", isas[is], t,
                      i, r.dw[i], rdw[i]);
            for (int i = 0; i < d.g.oc; i++)
                CHECK(r.db[i] == rdb[i], "%s case %d: db[%d] = %g, expected %g", isas[is], t, i,
                      r.db[i], rdb[i]);
            free_out(&r);
            free(ry), free(rdx), free(rdw), free(rdb), free(rabs);
            free_data(&d);
        }
    }
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_threads_destroy(tp);
}
END_TEST

static void same_bits(const float *a, const float *b, size_t n, const char *what, int t)
{
    for (size_t i = 0; i < n; i++)
        CHECK(memcmp(&a[i], &b[i], sizeof *a) == 0, "case %d: %s[%zu] %.9g (implicit) vs %.9g",
              t, what, i, a[i], b[i]);
}

/* dW from both routes against the float64 reference: within 2e-5 of the sum of the
 * magnitudes of its terms (float sums over up to 20480 pixels; the implicit route adds them
 * in another order than the im2col one). */
static void dw_close(const conv_data *d, const float *a, const float *b, int t)
{
    double *ry = malloc(d->ny * 8), *rdx = malloc(d->nx * 8), *rdw = malloc(d->nw * 8);
    double *rdb = malloc((size_t)d->g.oc * 8), *rabs = malloc(d->nw * 8);
    ref_conv(&d->g, d->n, d->x, d->w, d->b, d->dz, ry, rdx, rdw, rdb, rabs);
    for (size_t i = 0; i < d->nw; i++) {
        CHECK(fabs(a[i] - rdw[i]) <= 2e-5 * rabs[i], "case %d: dw[%zu] %.9g (implicit) vs %.9g",
              t, i, a[i], rdw[i]);
        CHECK(fabs(b[i] - rdw[i]) <= 2e-5 * rabs[i], "case %d: dw[%zu] %.9g (im2col) vs %.9g",
              t, i, b[i], rdw[i]);
    }
    free(ry), free(rdx), free(rdw), free(rdb), free(rabs);
}

START_TEST(implicit_same_bits_as_im2col)
{
    /* random data: the implicit GEMM of the forward (and of dX, a forward) sums the same
     * products in the same order as the im2col route, with bias and fused or separate
     * activations, and dx accumulated; dW and db, summed in another order, are compared with
     * the float64 reference */
    static const rt_act acts[] = {RT_ACT_NONE, RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_TANH};
    const char *before = rt_gemm_isa();
    rt_threads *tp = rt_threads_create(2, NULL);
    int first = 1; /* dW against the reference on the first micro-kernel this CPU has */
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue;
        for (int t = 0; t < NCASES; t++) {
            conv_data d = make_data(cases[t], t % 2 ? 2 : 5, 0);
            float *dx0 = malloc(d.nx * 4);
            for (size_t i = 0; i < d.nx; i++)
                dx0[i] = (float)irand(-1000, 1000) / 1000.0f;
            rt_act act = acts[(t + is) % 4];
            rt_threads *p = (t + is) % 2 ? tp : NULL;
            for (int acc = 0; acc < 2; acc++) {
                rt_conv_use_implicit(1);
                conv_out a = run(&d, act, acc ? dx0 : NULL, p);
                rt_conv_use_implicit(0);
                conv_out b = run(&d, act, acc ? dx0 : NULL, p);
                rt_conv_use_implicit(1);
                same_bits(a.y, b.y, d.ny, "y", t);
                same_bits(a.dx, b.dx, d.nx, "dx", t);
                if (acc == 0 && first)
                    dw_close(&d, a.dw, b.dw, t);
                for (int i = 0; i < d.g.oc; i++)
                    CHECK(fabsf(a.db[i] - b.db[i]) <= 1e-5f * (float)(d.n * d.g.oh * d.g.ow),
                          "case %d: db[%d] %.9g (implicit) vs %.9g", t, i, a.db[i], b.db[i]);
                free_out(&a);
                free_out(&b);
            }
            free(dx0);
            free_data(&d);
        }
        first = 0;
    }
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(implicit_unpadded_any_mode)
{
    /* without padding the padding mode does not matter: reflect, replicate and circular
     * layers take the implicit route (and dX by correlation) too, with the bits of the
     * zero-padded layer and of the im2col route */
    static const int unpadded[][13] = {{6, 9, 8, 20, 3, 3, 1, 1, 0, 0, 0, 0, 1},
                                       {9, 12, 11, 5, 3, 3, 2, 2, 0, 0, 0, 0, 0}};
    for (int t = 0; t < 2; t++) {
        conv_data d = make_data(unpadded[t], 3, 0);
        conv_out z = run(&d, RT_ACT_RELU, NULL, NULL);
        for (int m = RT_PAD_REFLECT; m <= RT_PAD_CIRCULAR; m++) {
            d.g.pad = (rt_padmode)m;
            ck_assert_int_eq(rt_conv_geom_check(&d.g, NULL), 0);
            for (int on = 0; on < 2; on++) {
                rt_conv_use_implicit(on);
                conv_out r = run(&d, RT_ACT_RELU, NULL, NULL);
                same_bits(r.y, z.y, d.ny, "y", t);
                same_bits(r.dx, z.dx, d.nx, "dx", t);
                if (on) { /* dW by the same route as the zero-padded layer's */
                    same_bits(r.dw, z.dw, d.nw, "dw", t);
                    same_bits(r.db, z.db, (size_t)d.g.oc, "db", t);
                }
                free_out(&r);
            }
            rt_conv_use_implicit(1);
        }
        free_out(&z);
        free_data(&d);
    }
}
END_TEST

/* ------------------------------------------------------------------ gradient check */

START_TEST(forward_res_same_bits)
{
    /* a conv with the residual add after it: the tiles' epilogue adds the residual (maps
     * whose tiles go straight into y: rows of whole vectors, half vectors, or vectors the
     * last one partial) or a pass does after the conv (the others, and the
     * im2col route), always with the bits of the conv then the add (rt_add_act_forward_mt),
     * for every activation, micro-kernel and pool size, with a bias and without (then the
     * residual is the epilogue's only work when there is no activation) */
    static const rt_act acts[] = {RT_ACT_NONE, RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_TANH};
    const char *before = rt_gemm_isa();
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue;
        for (int t = 0; t < NCASES; t++)
            for (int route = 0; route < 2; route++) {
                conv_data d = make_data(cases[t], t % 2 ? 2 : 3, 0);
                rt_act act = acts[(t + is + route) % 4];
                rt_threads *p = (t + is) % 2 ? tp : NULL;
                const float *bias = (t + route) % 3 ? d.b : NULL;
                float *res = malloc(d.ny * 4), *a = malloc(d.ny * 4), *b = malloc(d.ny * 4);
                for (size_t i = 0; i < d.ny; i++) {
                    res[i] = (float)irand(-1000000, 999999) / 1e6f;
                    b[i] = NAN; /* an output left unwritten shows */
                }
                rt_conv_use_implicit(route == 0);
                ck_assert_int_eq(rt_conv2d_forward(&d.g, d.x, d.w, bias, RT_ACT_NONE, 0.0f, a,
                                                   d.n, p), 0);
                rt_add_act_forward_mt(a, res, act, 0.1f, a, d.ny, p);
                ck_assert_int_eq(rt_conv2d_forward_res(&d.g, d.x, d.w, bias, res, act, 0.1f, b,
                                                       d.n, p), 0);
                rt_conv_use_implicit(1);
                for (size_t i = 0; i < d.ny; i++)
                    CHECK(memcmp(&a[i], &b[i], sizeof *a) == 0,
                          "%s case %d route %d act %d: y[%zu] %.9g (fused) vs %.9g", isas[is], t,
                          route, (int)act, i, b[i], a[i]);
                free(res), free(a), free(b);
                free_data(&d);
            }
    }
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(implicit_gradcheck)
{
    /* a folded small map with asymmetric padding, a two-image band, a stride of 2 */
    static const int gcases[][13] = {{3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 0, 0},
                                     {2, 7, 9, 3, 2, 2, 1, 1, 0, 1, 1, 0, 0},
                                     {3, 7, 8, 4, 3, 3, 2, 2, 1, 1, 1, 1, 0}};
    for (int t = 0; t < 3; t++)
        gc_conv_check("implicit conv", geom_of(gcases[t]), 3);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conv_implicit");
    TCase *t = tcase_create("implicit");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, implicit_exact_on_integers);
    tcase_add_test(t, implicit_same_bits_as_im2col);
    tcase_add_test(t, implicit_unpadded_any_mode);
    tcase_add_test(t, forward_res_same_bits);
    tcase_add_test(t, implicit_gradcheck);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    /* the routes under test here, not Winograd's (test_conv_winograd.c), whose rounding
     * differs: with it on, both sides of a bit comparison would take it */
    rt_conv_use_winograd(0);
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_ENV);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
