/*
 * test_act_ext.c - the activations relu6, silu, gelu and elu, and channel concatenation:
 * values and derivatives against independent float64 formulas (Phi by numerical integration
 * of the normal density, not by the kernels' erfc) and hand-checked literals, the kinks,
 * central finite differences of the float32 forward, and the same bits for every pool size.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "rt_kernels.h"

/* ck_assert records every passing check (fork mode): loops go through CHECK instead. */
#define CHECK(cond, ...)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

static uint64_t lcg = 1234567;
static float frand(void) /* [-1, 1) */
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) / 8388608.0 - 1.0);
}

static const rt_act NEW_ACTS[] = {RT_ACT_RELU6, RT_ACT_SILU, RT_ACT_GELU, RT_ACT_ELU};
static const char *const NEW_NAMES[] = {"relu6", "silu", "gelu", "elu"};
#define NNEW 4

/* The points of the brief. */
static const float GRID[] = {-7, -3, -1, -0.5f, 0, 0.5f, 1, 3, 6, 7};
#define NGRID 10

/* The kernels take whole blocks of 16 values (RT_VEC) first, then the rest one by one: the
 * checks repeat their points three times over (m values) so each point goes through both. */
static void repeat3(const float *src, int n, float *dst)
{
    for (int i = 0; i < 3 * n; i++)
        dst[i] = src[i % n];
}

/* ------------------------------------------------------------------ float64 references */

static double ref_phi(double x) /* standard normal density */
{
    return exp(-0.5 * x * x) / sqrt(2.0 * 3.14159265358979323846);
}

/* Phi(x) by composite Simpson integration of the density over [x - 12, x] (x <= 0; the rest
 * of the tail is below 1e-30 of it), and 1 - Phi(-x) above 0: independent of erf and erfc. */
static double ref_Phi(double x)
{
    if (x > 0)
        return 1.0 - ref_Phi(-x);
    const int n = 12000;
    const double a = x - 12.0, h = 12.0 / n;
    double s = ref_phi(a) + ref_phi(x);
    for (int i = 1; i < n; i++)
        s += (i % 2 ? 4.0 : 2.0) * ref_phi(a + i * h);
    return s * h / 3.0;
}

static double ref_sig(double x) { return 1.0 / (1.0 + exp(-x)); }

static double ref_f(rt_act a, double alpha, double x)
{
    switch (a) {
    case RT_ACT_RELU6: return fmin(fmax(x, 0.0), 6.0);
    case RT_ACT_SILU: return x * ref_sig(x);
    case RT_ACT_GELU: return x * ref_Phi(x);
    case RT_ACT_ELU: return x > 0 ? x : alpha * (exp(x) - 1.0);
    default: return x;
    }
}

/* The derivatives, with PyTorch's choice at the kinks: relu6 0 at 0 and 6, elu alpha at 0. */
static double ref_df(rt_act a, double alpha, double x)
{
    switch (a) {
    case RT_ACT_RELU6: return x > 0 && x < 6 ? 1.0 : 0.0;
    case RT_ACT_SILU: {
        double s = ref_sig(x);
        return s * (1.0 + x * (1.0 - s));
    }
    case RT_ACT_GELU: return ref_Phi(x) + x * ref_phi(x);
    case RT_ACT_ELU: return x > 0 ? 1.0 : alpha * exp(x);
    default: return 1.0;
    }
}

/* The references themselves against numbers checked by hand / with mpmath at 30 digits, and
 * the integrated Phi against libm's erf where 1 + erf does not cancel. */
START_TEST(references_literals)
{
    ck_assert(fabs(ref_f(RT_ACT_GELU, 0, 1) - 0.8413447460685429) < 1e-12);
    ck_assert(fabs(ref_f(RT_ACT_SILU, 0, 1) - 0.7310585786300049) < 1e-15);
    ck_assert(fabs(ref_f(RT_ACT_ELU, 1, -1) - -0.6321205588285577) < 1e-15);
    ck_assert(fabs(ref_f(RT_ACT_GELU, 0, -7) / -8.958687807200845e-12 - 1) < 1e-8);
    ck_assert(fabs(ref_f(RT_ACT_GELU, 0, -3) / -0.0040496940948902836 - 1) < 1e-10);
    ck_assert(fabs(ref_df(RT_ACT_GELU, 0, 1) - 1.0833154705876863) < 1e-12);
    ck_assert(fabs(ref_df(RT_ACT_GELU, 0, -7) / -6.2663230314666318e-11 - 1) < 1e-8);
    ck_assert(fabs(ref_df(RT_ACT_SILU, 0, 1) - 0.92767051187148673) < 1e-15);
    ck_assert(fabs(ref_df(RT_ACT_SILU, 0, -3) - -0.088104106015169617) < 1e-15);
    ck_assert(fabs(ref_df(RT_ACT_ELU, 1, -1) - 0.36787944117144233) < 1e-15);
    for (double x = -3; x <= 3; x += 0.25)
        CHECK(fabs(ref_Phi(x) - 0.5 * (1.0 + erf(x / sqrt(2.0)))) < 1e-12, "Phi(%g)", x);
    /* the derivative formulas against central differences of the references */
    for (int a = 0; a < NNEW; a++)
        for (double x = -6.9; x < 7; x += 0.6) {
            const double h = 1e-5, alpha = 0.7;
            double num = (ref_f(NEW_ACTS[a], alpha, x + h) - ref_f(NEW_ACTS[a], alpha, x - h)) /
                         (2 * h);
            double an = ref_df(NEW_ACTS[a], alpha, x);
            CHECK(fabs(num - an) <= 1e-7 * fabs(an) + 1e-9, "%s'(%g) = %.12g, differences %.12g",
                  NEW_NAMES[a], x, an, num);
        }
}
END_TEST

/* ------------------------------------------------------------------ exact values */

/* Forward values within 1e-6 relative (0 exactly where the value is 0), and the kernel's
 * own literals at points worked out by hand. */
START_TEST(values_on_grid)
{
    const float alphas[] = {1.0f, 0.5f, 2.0f};
    float x[3 * NGRID];
    repeat3(GRID, NGRID, x);
    for (int a = 0; a < NNEW; a++)
        for (int k = 0; k < (NEW_ACTS[a] == RT_ACT_ELU ? 3 : 1); k++) {
            float y[3 * NGRID];
            rt_act_forward(NEW_ACTS[a], alphas[k], x, y, 3 * NGRID);
            for (int i = 0; i < 3 * NGRID; i++) {
                double want = ref_f(NEW_ACTS[a], alphas[k], x[i]);
                CHECK(fabs(y[i] - want) <= 1e-6 * fabs(want), "%s(%g) alpha %g = %.9g, want %.9g",
                      NEW_NAMES[a], x[i], alphas[k], y[i], want);
                /* rt_act_apply is the same function */
                float v = rt_act_apply(NEW_ACTS[a], alphas[k], x[i]);
                CHECK(memcmp(&v, &y[i], sizeof v) == 0, "%s apply vs forward at %g",
                      NEW_NAMES[a], x[i]);
            }
        }
    float one = 1, m1 = -1, m7 = -7, m3 = -3, seven = 7, three = 3, y;
    rt_act_forward(RT_ACT_GELU, 1, &one, &y, 1);
    ck_assert(fabs(y - 0.8413447460685429) < 1e-6 * 0.85);
    rt_act_forward(RT_ACT_GELU, 1, &m7, &y, 1);
    ck_assert(fabs(y - -8.958687807200845e-12) < 1e-6 * 8.96e-12);
    rt_act_forward(RT_ACT_SILU, 1, &one, &y, 1);
    ck_assert(fabs(y - 0.7310585786300049) < 1e-6 * 0.74);
    rt_act_forward(RT_ACT_SILU, 1, &m3, &y, 1);
    ck_assert(fabs(y - -0.14227761953270034) < 1e-6 * 0.143);
    rt_act_forward(RT_ACT_ELU, 1, &m1, &y, 1);
    ck_assert(fabs(y - -0.6321205588285577) < 1e-6 * 0.64);
    rt_act_forward(RT_ACT_ELU, 0.5f, &m1, &y, 1);
    ck_assert(fabs(y - -0.31606027941427883) < 1e-6 * 0.32);
    rt_act_forward(RT_ACT_RELU6, 0, &seven, &y, 1);
    ck_assert(y == 6.0f);
    rt_act_forward(RT_ACT_RELU6, 0, &three, &y, 1);
    ck_assert(y == 3.0f);
    rt_act_forward(RT_ACT_RELU6, 0, &m3, &y, 1);
    ck_assert(y == 0.0f);
}
END_TEST

/* The gradient kernel for dy on the grid, against the analytic float64 derivative. elu's
 * comes from its output, y + alpha, which carries y's rounding (half an ulp of a value near
 * -alpha): that much absolute slack is allowed there, nothing for the others. */
static void grad_on_grid(rt_act act, float alpha, const float *dyv, int nd)
{
    enum { M = 3 * NGRID };
    float x[M], y[M], dy[M], dx[M];
    repeat3(GRID, NGRID, x);
    rt_act_forward(act, alpha, x, y, M);
    for (int r = 0; r < nd; r++) {
        for (int i = 0; i < M; i++)
            dy[i] = dyv[r];
        rt_act_backward_xy(act, alpha, x, y, dy, dx, M, 0);
        for (int i = 0; i < M; i++) {
            double want = dyv[r] * ref_df(act, alpha, x[i]);
            double slack = act == RT_ACT_ELU ? ldexp(fabs(dyv[r]) * (alpha + 1), -24) : 0;
            CHECK(fabs(dx[i] - want) <= 1e-6 * fabs(want) + slack,
                  "act %d alpha %g: dx at %g = %.9g, want %.9g", act, alpha, x[i], dx[i], want);
        }
    }
}

START_TEST(gradients_on_grid)
{
    const float dys[] = {1.0f, -0.75f, 3.5f};
    grad_on_grid(RT_ACT_RELU6, 0, dys, 3);
    grad_on_grid(RT_ACT_SILU, 0, dys, 3);
    grad_on_grid(RT_ACT_GELU, 0, dys, 3);
    grad_on_grid(RT_ACT_ELU, 1.0f, dys, 3);
    grad_on_grid(RT_ACT_ELU, 0.5f, dys, 3);
    grad_on_grid(RT_ACT_ELU, 2.0f, dys, 3);

    /* literals worked out by hand (gelu'(1) = Phi(1) + phi(1), silu'(1) = s(1)(2 - s(1)),
     * elu'(-1) = e^-1) */
    float one = 1, m1 = -1, d = 1, y, dx;
    rt_act_backward_xy(RT_ACT_GELU, 0, &one, NULL, &d, &dx, 1, 0);
    ck_assert(fabs(dx - 1.0833154705876863) < 1e-6 * 1.09);
    rt_act_backward_xy(RT_ACT_SILU, 0, &one, NULL, &d, &dx, 1, 0);
    ck_assert(fabs(dx - 0.92767051187148673) < 1e-6 * 0.93);
    rt_act_forward(RT_ACT_ELU, 1, &m1, &y, 1);
    rt_act_backward(RT_ACT_ELU, 1, &y, &d, &dx, 1, 0);
    ck_assert(fabs(dx - 0.36787944117144233) < 1e-6 * 0.37);
}
END_TEST

/* At the kinks the derivative is PyTorch's: hardtanh passes the gradient only strictly
 * inside (0, 6); elu takes the x <= 0 side at 0 (alpha). Both the blocked path (16 values)
 * and the value-by-value remainder are looked at. */
START_TEST(kinks)
{
    float x[17], y[17], dy[17], dx[17];
    const float pts[] = {0.0f, -0.0f, 6.0f, nextafterf(6.0f, 0), nextafterf(0, 1), 1e30f,
                         nextafterf(6.0f, 7), -1e-30f};
    const float want6[] = {0, 0, 0, 2, 2, 0, 0, 0};
    for (int i = 0; i < 17; i++) {
        x[i] = pts[i % 8];
        dy[i] = 2.0f;
    }
    rt_act_forward(RT_ACT_RELU6, 0, x, y, 17);
    rt_act_backward_xy(RT_ACT_RELU6, 0, NULL, y, dy, dx, 17, 0);
    for (int i = 0; i < 17; i++)
        CHECK(dx[i] == want6[i % 8], "relu6' at %g = %g, want %g", x[i], dx[i], want6[i % 8]);
    ck_assert(y[5] == 6.0f && y[6] == 6.0f && y[3] == nextafterf(6.0f, 0));

    rt_act_forward(RT_ACT_ELU, 0.5f, x, y, 17);
    rt_act_backward_xy(RT_ACT_ELU, 0.5f, NULL, y, dy, dx, 17, 0);
    for (int i = 0; i < 17; i++) {
        float w = x[i] > 0 ? 2.0f : 1.0f; /* dy * 1 or dy * alpha (x = 0 and -0) */
        CHECK(dx[i] == w, "elu' at %g = %g, want %g", x[i], dx[i], w);
    }
    ck_assert(y[0] == 0.0f && signbit(y[1])); /* elu(-0) = -0 like PyTorch's expm1 */

    /* far tails: no NaN or infinity, the limits */
    const float far[] = {-200, -90, 90, 200};
    for (int a = 0; a < NNEW; a++)
        for (int i = 0; i < 4; i++) {
            float v = rt_act_apply(NEW_ACTS[a], 1, far[i]), d1 = 1, g;
            rt_act_backward_xy(NEW_ACTS[a], 1, &far[i], &v, &d1, &g, 1, 0);
            CHECK(isfinite(v) && isfinite(g), "%s at %g: %g, %g", NEW_NAMES[a], far[i], v, g);
            double lim = far[i] < 0 ? (NEW_ACTS[a] == RT_ACT_ELU ? -1 : 0)
                                    : (NEW_ACTS[a] == RT_ACT_RELU6 ? 6 : far[i]);
            CHECK(fabs(v - lim) <= 1e-6 * fabs(lim) + 1e-30, "%s(%g) = %g", NEW_NAMES[a],
                  far[i], v);
        }
}
END_TEST

/* ------------------------------------------------------------------ finite differences */

static double ulpf(float v) { return nextafterf(fabsf(v), INFINITY) - fabsf(v); }

/* One activation at points away from its kinks: the float32 backward against central
 * differences of the float32 forward (step 1/128, exact in float here), compared in double.
 * Allowed: 1e-3 relative plus the rounding of the two forward values (4 ulp each, divided by
 * the step). Returns how many points a 0.5% error in the analytic value would have failed,
 * so the caller can insist that the comparison is able to fail. */
static int fd_check(rt_act act, float alpha)
{
    static const float P[] = {-7, -3, -2.25f, -1, -0.5f, 0.5f, 1, 2.5f, 3, 5.5f, 7};
    enum { NP = 33 }; /* the 11 points three times */
    const float h = 1.0f / 128;
    float x[NP], y[NP], xp[NP], xm[NP], yp[NP], ym[NP], r[NP], dx[NP];
    repeat3(P, 11, x);
    for (int i = 0; i < NP; i++) {
        xp[i] = x[i] + h;
        xm[i] = x[i] - h;
        r[i] = 0.5f + (frand() + 1) / 2; /* dy in [0.5, 1.5) */
    }
    rt_act_forward(act, alpha, x, y, NP);
    rt_act_forward(act, alpha, xp, yp, NP);
    rt_act_forward(act, alpha, xm, ym, NP);
    rt_act_backward_xy(act, alpha, x, y, r, dx, NP, 0);
    int caught = 0;
    for (int i = 0; i < NP; i++) {
        double step = (double)xp[i] - (double)xm[i];
        double num = (double)r[i] * ((double)yp[i] - (double)ym[i]) / step;
        double round = r[i] * 4 * (ulpf(yp[i]) + ulpf(ym[i])) / step;
        double tol = 1e-3 * fmax(fabs(dx[i]), fabs(num)) + round;
        CHECK(fabs(dx[i] - num) <= tol, "act %d alpha %g at %g: dx %.9g, differences %.9g",
              act, alpha, x[i], dx[i], num);
        double spoiled = dx[i] * 1.005;
        caught += fabs(spoiled - num) > 1e-3 * fmax(fabs(spoiled), fabs(num)) + round;
    }
    return caught;
}

START_TEST(finite_differences)
{
    /* of the 33 values: relu6 is flat at 6 * 3 (where no error can show); elu's slope at -7
     * (e^-7) drowns in the rounding of values near -alpha */
    ck_assert_int_ge(fd_check(RT_ACT_RELU6, 0), 15);
    ck_assert_int_ge(fd_check(RT_ACT_SILU, 0), 33);
    ck_assert_int_ge(fd_check(RT_ACT_GELU, 0), 33);
    ck_assert_int_ge(fd_check(RT_ACT_ELU, 1.0f), 30);
    ck_assert_int_ge(fd_check(RT_ACT_ELU, 0.3f), 30);
}
END_TEST

/* ------------------------------------------------------------------ pools */

static void fill(float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = scale * frand();
}

/* Forward and backward (accum 0 and 1, in place) with the _mt forms on pools of 1, 2 and 3
 * workers and none: the same bits as the serial kernels, on an array long enough to split
 * and not a multiple of the 16-value block. */
START_TEST(pools_same_bits)
{
    const size_t n = 2 * RT_SERIAL_BELOW + 37;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *dy = malloc(n * sizeof *dy);
    float *acc0 = malloc(n * sizeof *acc0), *ref = malloc(n * sizeof *ref);
    float *got = malloc(n * sizeof *got), *refa = malloc(n * sizeof *refa);
    ck_assert(x && y && dy && acc0 && ref && got && refa);
    fill(x, n, 8.0f);
    for (size_t i = 0; i < 64; i++) /* the kinks too */
        x[i * 97] = (float)(i % 4 == 0 ? 0 : i % 4 == 1 ? 6 : i % 4 == 2 ? -0.0 : 1e-3);
    fill(dy, n, 1.0f);
    fill(acc0, n, 1.0f);
    rt_threads *pools[4] = {NULL, rt_threads_create(1, NULL), rt_threads_create(2, NULL),
                            rt_threads_create(3, NULL)};
    ck_assert(pools[1] && pools[2] && pools[3]);
    const rt_act all[] = {RT_ACT_RELU6, RT_ACT_SILU, RT_ACT_GELU, RT_ACT_ELU, RT_ACT_RELU,
                          RT_ACT_SIGMOID};
    for (int a = 0; a < 6; a++) {
        const rt_act act = all[a];
        const float alpha = 0.7f;
        rt_act_forward(act, alpha, x, y, n);
        rt_act_backward_xy(act, alpha, x, y, dy, ref, n, 0);
        memcpy(refa, acc0, n * sizeof *refa);
        rt_act_backward_xy(act, alpha, x, y, dy, refa, n, 1);
        for (int p = 0; p < 4; p++) {
            rt_act_forward_mt(act, alpha, x, got, n, pools[p]);
            CHECK(memcmp(got, y, n * sizeof *y) == 0, "act %d pool %d: forward", act, p);
            memcpy(got, x, n * sizeof *got); /* in place */
            rt_act_forward_mt(act, alpha, got, got, n, pools[p]);
            CHECK(memcmp(got, y, n * sizeof *y) == 0, "act %d pool %d: forward in place", act,
                  p);
            /* output-only activations need no x */
            const float *xin = rt_act_needs_input(act) ? x : NULL;
            rt_act_backward_xy_mt(act, alpha, xin, y, dy, got, n, 0, pools[p]);
            CHECK(memcmp(got, ref, n * sizeof *ref) == 0, "act %d pool %d: backward", act, p);
            memcpy(got, acc0, n * sizeof *got);
            rt_act_backward_xy_mt(act, alpha, xin, y, dy, got, n, 1, pools[p]);
            CHECK(memcmp(got, refa, n * sizeof *ref) == 0, "act %d pool %d: accumulate", act,
                  p);
            memcpy(got, dy, n * sizeof *got); /* in place: dx == dy */
            rt_act_backward_xy_mt(act, alpha, xin, y, got, got, n, 0, pools[p]);
            CHECK(memcmp(got, ref, n * sizeof *ref) == 0, "act %d pool %d: in place", act, p);
            if (!rt_act_needs_input(act)) { /* the old entry point gives the same */
                rt_act_backward_mt(act, alpha, y, dy, got, n, 0, pools[p]);
                CHECK(memcmp(got, ref, n * sizeof *ref) == 0, "act %d pool %d: old form", act,
                      p);
            } else { /* silu and gelu do not read y */
                rt_act_backward_xy_mt(act, alpha, x, NULL, dy, got, n, 0, pools[p]);
                CHECK(memcmp(got, ref, n * sizeof *ref) == 0, "act %d pool %d: y NULL", act, p);
            }
        }
        /* the accumulating form adds exactly its result */
        for (size_t i = 0; i < n; i++)
            CHECK(refa[i] == acc0[i] + ref[i], "act %d: accumulate at %zu", act, i);
        /* the serial kernel on the remainder alone (value by value) gives the block's bits */
        for (size_t i = 0; i < 40; i++) {
            float v, d;
            rt_act_forward(act, alpha, x + i, &v, 1);
            rt_act_backward_xy(act, alpha, x + i, y + i, dy + i, &d, 1, 0);
            CHECK(memcmp(&v, y + i, sizeof v) == 0 && memcmp(&d, ref + i, sizeof d) == 0,
                  "act %d: value %zu alone", act, i);
        }
    }
    for (int p = 1; p < 4; p++)
        rt_threads_destroy(pools[p]);
    free(x), free(y), free(dy), free(acc0), free(ref), free(got), free(refa);
}
END_TEST

/* conv and dense apply the new activations in their epilogue: the same bits as the kernel
 * without activation followed by rt_act_forward, serially and on two workers. */
START_TEST(conv_dense_epilogue)
{
    rt_threads *tp = rt_threads_create(2, NULL);
    ck_assert(tp);
    rt_conv_geom g = {3, 9, 11, 5, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, RT_PAD_ZERO, 0, 1, 1, 1};
    const int n = 2, nx = n * 3 * 9 * 11, nw = 5 * 3 * 9, ny = n * 5 * 9 * 11;
    float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw), b[5];
    float *y0 = malloc(sizeof(float) * ny), *y1 = malloc(sizeof(float) * ny);
    ck_assert(x && w && y0 && y1);
    fill(x, nx, 3.0f);
    fill(w, nw, 1.0f);
    fill(b, 5, 1.0f);
    for (int a = 0; a < NNEW; a++)
        for (int t = 0; t < 2; t++) {
            rt_threads *p = t ? tp : NULL;
            ck_assert_int_eq(rt_conv2d_forward(&g, x, w, b, RT_ACT_NONE, 0, y0, n, p), 0);
            rt_act_forward(NEW_ACTS[a], 0.6f, y0, y0, ny);
            ck_assert_int_eq(rt_conv2d_forward(&g, x, w, b, NEW_ACTS[a], 0.6f, y1, n, p), 0);
            CHECK(memcmp(y0, y1, sizeof(float) * ny) == 0, "conv %s pool %d", NEW_NAMES[a], t);
            /* dense: x as [11][27], w as [5][27] */
            ck_assert_int_eq(rt_dense_forward(x, w, b, RT_ACT_NONE, 0, y0, 11, 27, 5, p), 0);
            rt_act_forward(NEW_ACTS[a], 0.6f, y0, y0, 55);
            ck_assert_int_eq(rt_dense_forward(x, w, b, NEW_ACTS[a], 0.6f, y1, 11, 27, 5, p), 0);
            CHECK(memcmp(y0, y1, sizeof(float) * 55) == 0, "dense %s pool %d", NEW_NAMES[a], t);
        }
    /* and the fused value is the activation of the float64 pre-activation, roughly */
    ck_assert_int_eq(rt_dense_forward(x, w, b, RT_ACT_GELU, 0, y1, 1, 27, 5, NULL), 0);
    for (int o = 0; o < 5; o++) {
        double z = b[o];
        for (int i = 0; i < 27; i++)
            z += (double)x[i] * w[o * 27 + i];
        CHECK(fabs(y1[o] - ref_f(RT_ACT_GELU, 0, z)) < 1e-5 * (1 + fabs(z)), "dense gelu %d", o);
    }
    rt_threads_destroy(tp);
    free(x), free(w), free(y0), free(y1);
}
END_TEST

/* ------------------------------------------------------------------ concatenation */

/* a: 2 channels of 2x2 numbered 0..7 (+100 in the second image), b: 1 channel 10..13
 * (+100): per image y = a's 8 values then b's 4. */
START_TEST(concat_hand)
{
    float a[16], b[8], y[24];
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 8; i++)
            a[s * 8 + i] = (float)(100 * s + i);
        for (int i = 0; i < 4; i++)
            b[s * 4 + i] = (float)(100 * s + 10 + i);
    }
    static const float want[24] = {0,   1,   2,   3,   4,   5,   6,   7,   10,  11,  12,  13,
                                   100, 101, 102, 103, 104, 105, 106, 107, 110, 111, 112, 113};
    memset(y, 0xff, sizeof y);
    rt_concat_forward_mt(a, 2, b, 1, 4, y, 2, NULL);
    for (int i = 0; i < 24; i++)
        CHECK(y[i] == want[i], "y[%d] = %g, want %g", i, y[i], want[i]);

    /* backward: dy[k] = k; da gets dy 0..7 and 12..19, db 8..11 and 20..23 */
    float dy[24], da[16], db[8];
    for (int i = 0; i < 24; i++)
        dy[i] = (float)i;
    static const float wa[16] = {0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 16, 17, 18, 19};
    static const float wb[8] = {8, 9, 10, 11, 20, 21, 22, 23};
    for (int i = 0; i < 16; i++)
        da[i] = -1;
    for (int i = 0; i < 8; i++)
        db[i] = -1;
    rt_concat_backward_mt(dy, 2, 1, 4, da, 0, db, 0, 2, NULL);
    for (int i = 0; i < 16; i++)
        CHECK(da[i] == wa[i], "da[%d] = %g", i, da[i]);
    for (int i = 0; i < 8; i++)
        CHECK(db[i] == wb[i], "db[%d] = %g", i, db[i]);
    /* accumulate into a, overwrite b */
    for (int i = 0; i < 8; i++)
        db[i] = 1000;
    rt_concat_backward_mt(dy, 2, 1, 4, da, 1, db, 0, 2, NULL);
    for (int i = 0; i < 16; i++)
        CHECK(da[i] == 2 * wa[i], "da[%d] += : %g", i, da[i]);
    for (int i = 0; i < 8; i++)
        CHECK(db[i] == wb[i], "db[%d] = : %g", i, db[i]);
    /* a not needed; b accumulates */
    rt_concat_backward_mt(dy, 2, 1, 4, NULL, 0, db, 1, 2, NULL);
    for (int i = 0; i < 8; i++)
        CHECK(db[i] == 2 * wb[i], "db[%d] += : %g", i, db[i]);
    /* b not needed; a left alone by the rest */
    rt_concat_backward_mt(dy, 2, 1, 4, da, 0, NULL, 0, 2, NULL);
    for (int i = 0; i < 16; i++)
        CHECK(da[i] == wa[i], "da[%d] alone: %g", i, da[i]);
    rt_concat_backward_mt(dy, 2, 1, 4, NULL, 0, NULL, 0, 2, NULL); /* nothing to do */
    /* an empty side: cat(a, nothing) is a copy */
    rt_concat_forward_mt(a, 2, NULL, 0, 4, y, 2, NULL);
    ck_assert(memcmp(y, a, sizeof a) == 0);
}
END_TEST

/* Large enough to split: every pool gives the naive loop's result exactly. */
START_TEST(concat_pools)
{
    const int n = 3, ca = 5, cb = 7, hw = 2000, c = ca + cb;
    const size_t na = (size_t)n * ca * hw, nb = (size_t)n * cb * hw, ny = na + nb;
    ck_assert(ny >= RT_SERIAL_BELOW);
    float *a = malloc(na * 4), *b = malloc(nb * 4), *y = malloc(ny * 4), *want = malloc(ny * 4);
    float *dy = malloc(ny * 4), *da = malloc(na * 4), *db = malloc(nb * 4);
    float *a0 = malloc(na * 4), *b0 = malloc(nb * 4);
    ck_assert(a && b && y && want && dy && da && db && a0 && b0);
    fill(a, na, 1), fill(b, nb, 1), fill(dy, ny, 1), fill(a0, na, 1), fill(b0, nb, 1);
    for (int s = 0; s < n; s++)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < hw; i++)
                want[((size_t)s * c + ch) * hw + i] =
                    ch < ca ? a[((size_t)s * ca + ch) * hw + i]
                            : b[((size_t)s * cb + ch - ca) * hw + i];
    rt_threads *pools[4] = {NULL, rt_threads_create(1, NULL), rt_threads_create(2, NULL),
                            rt_threads_create(3, NULL)};
    ck_assert(pools[1] && pools[2] && pools[3]);
    for (int p = 0; p < 4; p++) {
        memset(y, 0, ny * 4);
        rt_concat_forward_mt(a, ca, b, cb, hw, y, n, pools[p]);
        CHECK(memcmp(y, want, ny * 4) == 0, "forward pool %d", p);
        for (int acc = 0; acc < 2; acc++) {
            memcpy(da, a0, na * 4);
            memcpy(db, b0, nb * 4);
            rt_concat_backward_mt(dy, ca, cb, hw, da, acc, db, !acc, n, pools[p]);
            for (int s = 0; s < n; s++)
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < hw; i++) {
                        float g = dy[((size_t)s * c + ch) * hw + i];
                        if (ch < ca) {
                            size_t k = ((size_t)s * ca + ch) * hw + i;
                            CHECK(da[k] == (acc ? a0[k] + g : g), "da pool %d acc %d", p, acc);
                        } else {
                            size_t k = ((size_t)s * cb + ch - ca) * hw + i;
                            CHECK(db[k] == (!acc ? b0[k] + g : g), "db pool %d acc %d", p, !acc);
                        }
                    }
        }
    }
    for (int p = 1; p < 4; p++)
        rt_threads_destroy(pools[p]);
    free(a), free(b), free(y), free(want), free(dy), free(da), free(db), free(a0), free(b0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("act_ext");
    TCase *t = tcase_create("activations");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, references_literals);
    tcase_add_test(t, values_on_grid);
    tcase_add_test(t, gradients_on_grid);
    tcase_add_test(t, kinks);
    tcase_add_test(t, finite_differences);
    tcase_add_test(t, pools_same_bits);
    tcase_add_test(t, conv_dense_epilogue);
    suite_add_tcase(s, t);
    t = tcase_create("concat");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, concat_hand);
    tcase_add_test(t, concat_pools);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
