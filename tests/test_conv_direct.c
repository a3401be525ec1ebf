/*
 * test_conv_direct.c - the direct convolution of layers with few input channels
 * (runtime/kernels/rt_conv_direct.c): exact results on integer data against a float64
 * reference, random data within a stated bound, the same bits for 1, 2 and 3 workers, and a
 * finite-difference gradient check of dW and db.
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
#include "rt_conv_int.h"
#include "rt_kernels.h"

#define CHECK(cond, ...)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

/* Geometries the direct route takes: RGB and grey 3x3 first layers (padded and not), odd
 * widths (9, 17, 23, 33 columns: vector tails), output channels that are not a multiple of
 * the register blocks (5, 13), strides 1 to 3, dilation 2, 5x5, 1x5 and 2x2 windows,
 * asymmetric padding, true convolution (flip), and maps tall enough that dW takes them in
 * several bands of rows (DW_BAND_BYTES: 37 and 69 rows here), its sums carried from band to
 * band. Columns: c h w oc kh kw sh sw dh dw pt pb pl pr flip. */
static const int cases[][15] = {
    {3, 12, 18, 16, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0},  /* cnn3-like, no padding */
    {1, 10, 9, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},   /* fashion-like, pad same */
    {3, 9, 17, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},   /* odd width, flip */
    {2, 11, 23, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},   /* stride 2 */
    {3, 13, 33, 8, 3, 3, 2, 1, 1, 1, 1, 0, 0, 1, 0},   /* stride 2 x 1, asymmetric pad */
    {1, 12, 20, 7, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1},   /* 5x5 */
    {3, 7, 30, 9, 1, 5, 1, 3, 1, 1, 0, 0, 2, 1, 0},    /* 1x5, stride 3 columns */
    {2, 10, 19, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 0},   /* dilation 2 */
    {3, 8, 16, 4, 2, 2, 1, 1, 1, 1, 0, 1, 1, 0, 1},    /* 2x2 */
    {3, 6, 8, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},    /* 8 columns, 17 channels */
    {3, 100, 41, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},  /* dW in 3 bands of rows, a tail */
    {2, 150, 45, 5, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, 0},  /* stride 2, 2 bands, the last short */
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static rt_conv_geom geom_of(const int *k, rt_padmode pad)
{
    rt_conv_geom g = {0};
    g.c = k[0], g.h = k[1], g.w = k[2], g.oc = k[3], g.kh = k[4], g.kw = k[5];
    g.sh = k[6], g.sw = k[7], g.dh = k[8], g.dw = k[9];
    g.pt = k[10], g.pb = k[11], g.pl = k[12], g.pr = k[13];
    g.pad = pad;
    g.flip = k[14];
    g.groups = 1;
    g.oh = (g.h + g.pt + g.pb - (g.dh * (g.kh - 1) + 1)) / g.sh + 1;
    g.ow = (g.w + g.pl + g.pr - (g.dw * (g.kw - 1) + 1)) / g.sw + 1;
    ck_assert_int_eq(rt_conv_geom_check(&g, NULL), 0);
    return g;
}

static uint64_t lcg = 4242;
static int irand(int lo, int hi) /* [lo, hi] */
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (int)((lcg >> 33) % (uint64_t)(hi - lo + 1));
}

/* The input cell a padded coordinate i (of n) reads, -1 for a zero: written out from the
 * modes' definitions (padding below the size, as the geometry check demands). */
static int src_of(int i, int n, rt_padmode m)
{
    if (i >= 0 && i < n)
        return i;
    switch (m) {
    case RT_PAD_REFLECT:
        return i < 0 ? -i : 2 * n - 2 - i;
    case RT_PAD_REPLICATE:
        return i < 0 ? 0 : n - 1;
    case RT_PAD_CIRCULAR:
        return i < 0 ? i + n : i - n;
    default:
        return -1;
    }
}

/* Forward (pre-activation), dW, db and the sums of the magnitudes of their terms, in double,
 * from the definition. */
static void ref_conv(const rt_conv_geom *g, int n, const float *x, const float *w,
                     const float *b, const float *dz, double *y, double *yabs, double *dw,
                     double *dwabs, double *db)
{
    const int K = g->c * g->kh * g->kw;
    memset(dw, 0, sizeof(double) * g->oc * K);
    memset(dwabs, 0, sizeof(double) * g->oc * K);
    memset(db, 0, sizeof(double) * g->oc);
    for (int s = 0; s < n; s++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    size_t yi = (((size_t)s * g->oc + o) * g->oh + oy) * g->ow + ox;
                    double acc = b[o], mag = fabs(b[o]);
                    for (int c = 0; c < g->c; c++)
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int iy = src_of(oy * g->sh + ky * g->dh - g->pt, g->h, g->pad);
                                int ix = src_of(ox * g->sw + kx * g->dw - g->pl, g->w, g->pad);
                                if (iy < 0 || ix < 0)
                                    continue;
                                int wy = g->flip ? g->kh - 1 - ky : ky;
                                int wx = g->flip ? g->kw - 1 - kx : kx;
                                size_t wi = (((size_t)o * g->c + c) * g->kh + wy) * g->kw + wx;
                                size_t xi = (((size_t)s * g->c + c) * g->h + iy) * g->w + ix;
                                acc += (double)w[wi] * x[xi];
                                mag += fabs((double)w[wi] * x[xi]);
                                dw[wi] += (double)dz[yi] * x[xi];
                                dwabs[wi] += fabs((double)dz[yi] * x[xi]);
                            }
                    y[yi] = acc;
                    yabs[yi] = mag;
                    db[o] += dz[yi];
                }
}

typedef struct {
    rt_conv_geom g;
    int n;
    size_t nx, ny, nw;
    float *x, *w, *b, *dz;
} conv_data;

/* Integer data in [-3, 3] (every sum below 2^24, exact in float), or uniform in [-1, 1). */
static conv_data make_data(const int *k, rt_padmode pad, int n, int integers)
{
    conv_data d;
    d.g = geom_of(k, pad);
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
            all[a][i] = integers ? (float)irand(-3, 3) : (float)irand(-1000000, 999999) / 1e6f;
    return d;
}

static void free_data(conv_data *d)
{
    free(d->x), free(d->w), free(d->b), free(d->dz);
}

typedef struct {
    float *y, *dw, *db;
} conv_out;

/* Forward with act (alpha 0.25) and backward without dX, as a first layer runs. */
static conv_out run(const conv_data *d, rt_act act, rt_threads *tp)
{
    conv_out r;
    r.y = malloc(d->ny * 4), r.dw = malloc(d->nw * 4), r.db = malloc((size_t)d->g.oc * 4);
    ck_assert_int_eq(rt_conv2d_forward(&d->g, d->x, d->w, d->b, act, 0.25f, r.y, d->n, tp), 0);
    ck_assert_int_eq(
        rt_conv2d_backward(&d->g, d->x, d->w, d->dz, NULL, 0, r.dw, r.db, d->n, tp), 0);
    return r;
}

static void free_out(conv_out *r)
{
    free(r->y), free(r->dw), free(r->db);
}

static double act_of(rt_act act, double v)
{
    if (act == RT_ACT_RELU)
        return v > 0 ? v : 0;
    if (act == RT_ACT_LEAKYRELU)
        return v > 0 ? v : 0.25 * v;
    return v;
}

static const char *isas[] = {"avx512", "avx2", "generic"};

START_TEST(direct_takes_the_cases)
{
    /* the cases below test the direct route (forward, and dW for depth >= 9), not the GEMM's;
     * and the switch turns it off and says what it was */
    for (int t = 0; t < NCASES; t++) {
        rt_conv_geom g = geom_of(cases[t], RT_PAD_ZERO);
        CHECK(rt_conv_direct_ok(&g, 0), "case %d not direct", t);
        CHECK(rt_conv_direct_ok(&g, 1) == (g.c * g.kh * g.kw >= 9), "case %d backward", t);
    }
    ck_assert_int_eq(rt_conv_use_direct(0), 1);
    rt_conv_geom g = geom_of(cases[0], RT_PAD_ZERO);
    ck_assert(!rt_conv_direct_ok(&g, 0));
    ck_assert_int_eq(rt_conv_use_direct(1), 0);
    ck_assert(rt_conv_direct_ok(&g, 0));
    g.c = 4; /* depth 36: the GEMM */
    ck_assert(!rt_conv_direct_ok(&g, 0));
}
END_TEST

START_TEST(direct_exact_on_integers)
{
    /* integer data: every float sum is exact, so y (with relu / leaky relu 0.25), dW and db
     * equal the float64 reference exactly whatever the order of the sums: a wrong tap, phase,
     * border, tail or padding cell cannot hide. Every padding mode, each ISA, 1 and 2 workers,
     * 1 image (cut into bands) and 5. */
    static const rt_act acts[] = {RT_ACT_NONE, RT_ACT_RELU, RT_ACT_LEAKYRELU};
    const char *before = rt_gemm_isa();
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue; /* this CPU lacks it: test_kernels reports which */
        for (int t = 0; t < NCASES; t++)
            for (int m = 0; m < RT_NPADS; m++) {
                conv_data d = make_data(cases[t], (rt_padmode)m, (t + m) % 2 ? 5 : 1, 1);
                double *ry = malloc(d.ny * 8), *rya = malloc(d.ny * 8);
                double *rdw = malloc(d.nw * 8), *rabs = malloc(d.nw * 8);
                double *rdb = malloc((size_t)d.g.oc * 8);
                ref_conv(&d.g, d.n, d.x, d.w, d.b, d.dz, ry, rya, rdw, rabs, rdb);
                rt_act act = acts[(t + m + is) % 3];
                conv_out r = run(&d, act, (t + m) % 3 ? tp : NULL);
                for (size_t i = 0; i < d.ny; i++)
                    CHECK(r.y[i] == act_of(act, ry[i]),
                          "%s case %d pad %d: y[%zu] = %g, expected %g", isas[is], t, m, i,
                          r.y[i], act_of(act, ry[i]));
                for (size_t i = 0; i < d.nw; i++)
                    CHECK(r.dw[i] == rdw[i], "%s case %d pad %d: dw[%zu] = %g, expected %g",
                          isas[is], t, m, i, r.dw[i], rdw[i]);
                for (int i = 0; i < d.g.oc; i++)
                    CHECK(r.db[i] == rdb[i], "%s case %d pad %d: db[%d] = %g, expected %g",
                          isas[is], t, m, i, r.db[i], rdb[i]);
                free_out(&r);
                free(ry), free(rya), free(rdw), free(rabs), free(rdb);
                free_data(&d);
            }
    }
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(direct_dw_tail_blind_past_the_map)
{
    /* dW's row tails read columns past the map: an inf there (the input's last column,
     * which only the taps kx = 2 reach) must not reach the sums of kx = 0 and 1, which
     * stay exact, as the reference says; kx = 2 is inf or nan. 17 columns: one valid lane
     * in the tail, the next two reading the inf column; 2 bands of rows on the tall map. */
    static const int k[][15] = {{1, 6, 19, 4, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0},
                                {2, 130, 19, 5, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0}};
    const char *before = rt_gemm_isa();
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue;
        for (int t = 0; t < 2; t++) {
            conv_data d = make_data(k[t], RT_PAD_ZERO, 2, 1);
            ck_assert(rt_conv_direct_ok(&d.g, 1));
            for (size_t r = 0; r < (size_t)d.n * d.g.c * d.g.h; r++)
                d.x[r * d.g.w + d.g.w - 1] = INFINITY;
            double *ry = malloc(d.ny * 8), *rya = malloc(d.ny * 8);
            double *rdw = malloc(d.nw * 8), *rabs = malloc(d.nw * 8);
            double *rdb = malloc((size_t)d.g.oc * 8);
            ref_conv(&d.g, d.n, d.x, d.w, d.b, d.dz, ry, rya, rdw, rabs, rdb);
            float *dw = malloc(d.nw * 4), *db = malloc((size_t)d.g.oc * 4);
            ck_assert_int_eq(
                rt_conv2d_backward(&d.g, d.x, d.w, d.dz, NULL, 0, dw, db, d.n, NULL), 0);
            for (size_t i = 0; i < d.nw; i++)
                if (i % 3 < 2)
                    CHECK(dw[i] == rdw[i], "%s case %d: dw[%zu] = %g, expected %g", isas[is], t,
                          i, dw[i], rdw[i]);
                else
                    CHECK(!isfinite(dw[i]), "%s case %d: dw[%zu] = %g, not inf or nan",
                          isas[is], t, i, dw[i]);
            for (int i = 0; i < d.g.oc; i++)
                CHECK(db[i] == rdb[i], "%s case %d: db[%d] = %g, expected %g", isas[is], t, i,
                      db[i], rdb[i]);
            free(dw), free(db);
            free(ry), free(rya), free(rdw), free(rabs), free(rdb);
            free_data(&d);
        }
    }
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
}
END_TEST

#define BOUND (60.0 / 16777216.0)

START_TEST(direct_random_within_bound)
{
    /* random data in [-1, 1): y, dW and db within BOUND of the sum of the magnitudes of their
     * terms: at most 28 roundings of 2^-24 on a path (27 taps and the bias; a dW lane adds at
     * most 27 products of one image in float, then doubles), so 60 * 2^-24 holds */
    const char *before = rt_gemm_isa();
    rt_threads *tp = rt_threads_create(2, NULL);
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue;
        for (int t = 0; t < NCASES; t++) {
            conv_data d = make_data(cases[t], RT_PAD_ZERO, 4, 0);
            double *ry = malloc(d.ny * 8), *rya = malloc(d.ny * 8);
            double *rdw = malloc(d.nw * 8), *rabs = malloc(d.nw * 8);
            double *rdb = malloc((size_t)d.g.oc * 8);
            ref_conv(&d.g, d.n, d.x, d.w, d.b, d.dz, ry, rya, rdw, rabs, rdb);
            conv_out r = run(&d, RT_ACT_NONE, t % 2 ? tp : NULL);
            for (size_t i = 0; i < d.ny; i++)
                CHECK(fabs(r.y[i] - ry[i]) <= BOUND * rya[i] + 1e-30,
                      "%s case %d: y[%zu] = %.9g, expected %.9g", isas[is], t, i, r.y[i],
                      ry[i]);
            for (size_t i = 0; i < d.nw; i++)
                CHECK(fabs(r.dw[i] - rdw[i]) <= BOUND * rabs[i] + 1e-30,
                      "%s case %d: dw[%zu] = %.9g, expected %.9g", isas[is], t, i, r.dw[i],
                      rdw[i]);
            const double P = (double)d.n * d.g.oh * d.g.ow;
            for (int i = 0; i < d.g.oc; i++)
                CHECK(fabs(r.db[i] - rdb[i]) <= BOUND * P, "%s case %d: db[%d] = %.9g, "
                      "expected %.9g", isas[is], t, i, r.db[i], rdb[i]);
            free_out(&r);
            free(ry), free(rya), free(rdw), free(rabs), free(rdb);
            free_data(&d);
        }
    }
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_threads_destroy(tp);
}
END_TEST

#undef BOUND

static void same_bits(const float *a, const float *b, size_t n, const char *what, int t,
                      int nt)
{
    for (size_t i = 0; i < n; i++)
        CHECK(memcmp(&a[i], &b[i], sizeof *a) == 0, "case %d: %s[%zu] %.9g (%d workers) vs "
              "%.9g (1)", t, what, i, a[i], nt, b[i]);
}

START_TEST(direct_same_bits_any_pool)
{
    /* the documented determinism: every output, dW and db element is summed by one worker
     * in a fixed order, so 2 and 3 workers give the bits of 1 (random data; 1 image cut into
     * bands of rows, and 7 images; dW and db where the direct route makes them) */
    rt_threads *tp[2] = {rt_threads_create(2, NULL), rt_threads_create(3, NULL)};
    for (int t = 0; t < NCASES; t++)
        for (int n = 1; n <= 7; n += 6) {
            conv_data d = make_data(cases[t], RT_PAD_ZERO, n, 0);
            conv_out one = run(&d, RT_ACT_RELU, NULL);
            for (int p = 0; p < 2; p++) {
                conv_out r = run(&d, RT_ACT_RELU, tp[p]);
                same_bits(r.y, one.y, d.ny, "y", t, p + 2);
                if (rt_conv_direct_ok(&d.g, 1)) { /* else dW by the GEMM route */
                    same_bits(r.dw, one.dw, d.nw, "dw", t, p + 2);
                    same_bits(r.db, one.db, (size_t)d.g.oc, "db", t, p + 2);
                }
                free_out(&r);
            }
            free_out(&one);
            free_data(&d);
        }
    rt_threads_destroy(tp[0]);
    rt_threads_destroy(tp[1]);
}
END_TEST

START_TEST(direct_agrees_with_gemm)
{
    /* the same layer with the route switched off (im2col / implicit GEMM) on random data:
     * the two agree within the bound above, and dX (made by the GEMM route in both) too */
    for (int t = 0; t < NCASES; t++) {
        conv_data d = make_data(cases[t], RT_PAD_ZERO, 3, 0);
        conv_out a = run(&d, RT_ACT_NONE, NULL);
        rt_conv_use_direct(0);
        conv_out b = run(&d, RT_ACT_NONE, NULL);
        rt_conv_use_direct(1);
        for (size_t i = 0; i < d.ny; i++)
            CHECK(fabsf(a.y[i] - b.y[i]) <= 1e-5f, "case %d: y[%zu] %.9g vs %.9g", t, i,
                  a.y[i], b.y[i]);
        for (size_t i = 0; i < d.nw; i++)
            CHECK(fabsf(a.dw[i] - b.dw[i]) <= 1e-4f, "case %d: dw[%zu] %.9g vs %.9g", t, i,
                  a.dw[i], b.dw[i]);
        free_out(&a);
        free_out(&b);
        free_data(&d);
    }
}
END_TEST

/* ------------------------------------------------------------------ gradient check */

START_TEST(direct_gradcheck)
{
    /* RGB 3x3 padded with a 19-column tail, 2 channels unpadded with 9 columns */
    static const int gcases[][15] = {{3, 6, 19, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
                                     {2, 7, 11, 3, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0}};
    for (int t = 0; t < 2; t++) {
        rt_conv_geom g = geom_of(gcases[t], RT_PAD_ZERO);
        ck_assert(rt_conv_direct_ok(&g, 1));
        gc_conv_check("direct conv", g, 2);
    }
}
END_TEST

/* rt_conv2d_backward_pool (a first layer's conv with the max pooling and relu after it):
 * dW and db equal those of the pooling's backward with the relu's (rt_maxpool_backward_relu)
 * and then rt_conv2d_backward, bit for bit. Every geometry above (where the direct route
 * makes dW, each worker makes its own dz planes image by image; the grey one takes the
 * GEMM's route through dz) and a 16-channel one (GEMM), under a 2x2 stride-2 pooling and an
 * overlapping padded 3x3 stride-2 one, on relu outputs with zeros and ties; each ISA, 1 to 3
 * workers, 1 and 5 images. */
START_TEST(direct_backward_pool_same_bits)
{
    static const int gemm_case[15] = {16, 8, 10, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    static const int pools[][3] = {{2, 2, 0}, {3, 2, 1}}; /* window, stride, padding */
    const char *before = rt_gemm_isa();
    rt_threads *tps[3] = {NULL, rt_threads_create(2, NULL), rt_threads_create(3, NULL)};
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue; /* this CPU lacks it: test_kernels reports which */
        for (int t = 0; t <= NCASES; t++)
            for (int pk = 0; pk < 2; pk++) {
                const int n = (t + pk + is) % 2 ? 5 : 1;
                conv_data d = make_data(t < NCASES ? cases[t] : gemm_case, RT_PAD_ZERO, n, 0);
                const rt_conv_geom *g = &d.g;
                const int k = pools[pk][0], st = pools[pk][1], pd = pools[pk][2];
                rt_pool_geom pg = {g->oc, g->oh, g->ow, (g->oh + 2 * pd - k) / st + 1,
                                   (g->ow + 2 * pd - k) / st + 1, k, k, st, st, pd, pd, pd, pd};
                if (pg.oh < 1 || pg.ow < 1)
                    continue;
                const size_t npy = (size_t)n * g->oc * pg.oh * pg.ow;
                float *y = malloc(d.ny * 4), *dpy = malloc(npy * 4), *dz = malloc(d.ny * 4);
                float *dw0 = malloc(d.nw * 4), *db0 = malloc((size_t)g->oc * 4);
                float *dw1 = malloc(d.nw * 4), *db1 = malloc((size_t)g->oc * 4);
                for (size_t i = 0; i < d.ny; i++) /* relu outputs: zeros and ties */
                    y[i] = (float)(irand(-2, 4) > 0 ? irand(1, 6) : 0) * 0.5f;
                for (size_t i = 0; i < npy; i++)
                    dpy[i] = (float)irand(-1000000, 999999) / 1e6f;
                for (int w = 0; w < 3; w++) { /* (the GEMM's dW depends on the workers) */
                    rt_maxpool_backward_relu(&pg, y, dpy, dz, n, tps[w]);
                    ck_assert_int_eq(
                        rt_conv2d_backward(g, d.x, d.w, dz, NULL, 0, dw0, db0, n, tps[w]), 0);
                    memset(dz, 0x7f, d.ny * 4); /* what the direct route leaves as it is */
                    memset(dw1, 0x7f, d.nw * 4), memset(db1, 0x7f, (size_t)g->oc * 4);
                    ck_assert_int_eq(rt_conv2d_backward_pool(g, d.x, d.w, &pg, y, dpy, dz, dw1,
                                                             db1, n, tps[w]),
                                     0);
                    CHECK(memcmp(dw0, dw1, d.nw * 4) == 0 &&
                              memcmp(db0, db1, (size_t)g->oc * 4) == 0,
                          "%s case %d pool %d, %d workers, %d images: dW or db differ", isas[is],
                          t, pk, w + 1, n);
                }
                free(y), free(dpy), free(dz), free(dw0), free(db0), free(dw1), free(db1);
                free_data(&d);
            }
    }
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_threads_destroy(tps[1]);
    rt_threads_destroy(tps[2]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conv_direct");
    TCase *t = tcase_create("direct");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, direct_takes_the_cases);
    tcase_add_test(t, direct_exact_on_integers);
    tcase_add_test(t, direct_dw_tail_blind_past_the_map);
    tcase_add_test(t, direct_random_within_bound);
    tcase_add_test(t, direct_same_bits_any_pool);
    tcase_add_test(t, direct_agrees_with_gemm);
    tcase_add_test(t, direct_gradcheck);
    tcase_add_test(t, direct_backward_pool_same_bits);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    rt_conv_use_direct(1); /* whatever RT_CONV_DIRECT says */
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_ENV);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
