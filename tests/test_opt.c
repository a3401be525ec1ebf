/*
 * test_opt.c - the optimizers against steps worked out by hand and against a float64
 * re-implementation of the update rules of torch.optim.SGD and torch.optim.Adam written
 * here from their documentation.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "cnnrt.h"
#include "rt_kernels.h"

/* ck_assert writes a record for every check that passes (fork mode): checks inside loops over
 * many values go through CHECK, which reports only a failure. */
#define CHECK(cond, ...)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

START_TEST(sgd_hand)
{
    /* lr 0.1, momentum 0.9, weight decay 0.01, p = [1, -2], constant g = [0.5, 0.25].
     * step 1: d = g + 0.01 p = [0.51, 0.23]; buffer = d; p = p - 0.1 d = [0.949, -2.023]
     * step 2: d = [0.5 + 0.00949, 0.25 - 0.02023] = [0.50949, 0.22977]
     *         buffer = 0.9 [0.51, 0.23] + d = [0.96849, 0.43677]
     *         p = [0.949 - 0.096849, -2.023 - 0.043677] = [0.852151, -2.066677] */
    rt_opt_cfg cfg = {RT_OPT_SGD, 0.1f, 0.9f, 0.01f, 0, 0, 0};
    rt_opt *o = rt_opt_create(&cfg, 2);
    float p[2] = {1, -2};
    const float g[2] = {0.5f, 0.25f};
    rt_opt_step(o, p, g);
    ck_assert_float_eq_tol(p[0], 0.949, 1e-6);
    ck_assert_float_eq_tol(p[1], -2.023, 1e-6);
    rt_opt_step(o, p, g);
    ck_assert_float_eq_tol(p[0], 0.852151, 1e-6);
    ck_assert_float_eq_tol(p[1], -2.066677, 1e-6);
    rt_opt_destroy(o);

    /* plain SGD: p - lr g exactly */
    rt_opt_cfg plain = {RT_OPT_SGD, 0.5f, 0, 0, 0, 0, 0};
    o = rt_opt_create(&plain, 2);
    p[0] = 1, p[1] = -2;
    rt_opt_step(o, p, g);
    ck_assert_float_eq(p[0], 0.75f);
    ck_assert_float_eq(p[1], -2.125f);
    rt_opt_destroy(o);
}
END_TEST

START_TEST(adam_hand)
{
    /* With a constant gradient g Adam's bias-corrected moments are exactly g and g^2:
     * step 1: m = 0.1 g, v = 0.001 g^2, mhat = m / 0.1 = g, vhat = v / 0.001 = g^2;
     * step 2: m = 0.19 g, v = 0.001999 g^2, mhat = 0.19 g / (1 - 0.81) = g,
     *         vhat = 0.001999 g^2 / (1 - 0.998001) = g^2.
     * So every step moves p by lr * g / (|g| + eps) = lr * sign(g) (eps 1e-8 is negligible):
     * p = [1, -2], g = [0.5, -0.25], lr 0.01: [0.99, -1.99], then [0.98, -1.98]. */
    rt_opt_cfg cfg = {RT_OPT_ADAM, 0.01f, 0, 0, 0.9f, 0.999f, 1e-8f};
    rt_opt *o = rt_opt_create(&cfg, 2);
    float p[2] = {1, -2};
    const float g[2] = {0.5f, -0.25f};
    rt_opt_step(o, p, g);
    ck_assert_float_eq_tol(p[0], 0.99, 1e-6);
    ck_assert_float_eq_tol(p[1], -1.99, 1e-6);
    rt_opt_step(o, p, g);
    ck_assert_float_eq_tol(p[0], 0.98, 1e-6);
    ck_assert_float_eq_tol(p[1], -1.98, 1e-6);
    rt_opt_destroy(o);
}
END_TEST

/* torch.optim.SGD: g += wd p; b = g (first step) or momentum b + g; p -= lr b. */
static void ref_sgd(double *p, double *b, const double *g, int n, int step, double lr,
                    double mom, double wd)
{
    for (int i = 0; i < n; i++) {
        double d = g[i] + wd * p[i];
        if (mom != 0) {
            b[i] = step == 0 ? d : mom * b[i] + d;
            d = b[i];
        }
        p[i] -= lr * d;
    }
}

/* torch.optim.Adam: g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). */
static void ref_adam(double *p, double *m, double *v, const double *g, int n, int t, double lr,
                     double b1, double b2, double eps, double wd)
{
    for (int i = 0; i < n; i++) {
        double d = g[i] + wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * d;
        v[i] = b2 * v[i] + (1 - b2) * d * d;
        double mhat = m[i] / (1 - pow(b1, t)), vhat = v[i] / (1 - pow(b2, t));
        p[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}

/* A gradient that changes from step to step: g_i(t) = sin(1.3 i + 0.7 t) + 0.3 p_i. */
static void grad_at(const float *p, int n, int t, float *g, double *gd)
{
    for (int i = 0; i < n; i++) {
        g[i] = (float)(sin(1.3 * i + 0.7 * t) + 0.3 * p[i]);
        gd[i] = g[i];
    }
}

START_TEST(against_reference)
{
    enum { N = 6, STEPS = 25 };
    for (int kind = 0; kind < 2; kind++)
        for (int wdi = 0; wdi < 2; wdi++) {
            double wd = wdi ? 0.05 : 0;
            rt_opt_cfg cfg = {kind ? RT_OPT_ADAM : RT_OPT_SGD, kind ? 0.02f : 0.05f, 0.8f,
                              (float)wd, 0.9f, 0.999f, 1e-8f};
            rt_opt *o = rt_opt_create(&cfg, N);
            ck_assert_ptr_nonnull(o);
            float p[N], g[N];
            double pd[N], b[N] = {0}, m[N] = {0}, v[N] = {0}, gd[N];
            for (int i = 0; i < N; i++)
                p[i] = (float)(pd[i] = 0.5 * i - 1.2);
            for (int t = 0; t < STEPS; t++) {
                grad_at(p, N, t, g, gd);
                rt_opt_step(o, p, g);
                if (kind)
                    ref_adam(pd, m, v, gd, N, t + 1, cfg.lr, 0.9, 0.999, 1e-8, wd);
                else
                    ref_sgd(pd, b, gd, N, t, cfg.lr, 0.8, wd);
                for (int i = 0; i < N; i++) {
                    CHECK(fabs(p[i] - pd[i]) < 2e-5, "%s wd %g step %d p[%d]: %.8g vs %.8g",
                                  kind ? "adam" : "sgd", wd, t, i, p[i], pd[i]);
                    p[i] = (float)pd[i]; /* follow the reference so errors do not compound */
                }
            }
            rt_opt_destroy(o);
        }
}
END_TEST

/* The optimizers split over a pool give the same bits as the serial step, for a length
 * that is not a multiple of the blocks and large enough to use the pool. */
START_TEST(pool_same_bits)
{
    const size_t n = 200003;
    char err[RT_ERRLEN];
    rt_threads *tp = rt_threads_create(3, err);
    ck_assert_ptr_nonnull(tp);
    float *p1 = malloc(n * sizeof *p1), *p2 = malloc(n * sizeof *p2);
    float *g = malloc(n * sizeof *g);
    const rt_opt_cfg cfgs[2] = {{RT_OPT_SGD, 0.05f, 0.9f, 1e-3f, 0, 0, 0},
                                {RT_OPT_ADAM, 1e-3f, 0, 1e-2f, 0.9f, 0.999f, 1e-8f}};
    for (int c = 0; c < 2; c++) {
        rt_opt *a = rt_opt_create(&cfgs[c], n), *b = rt_opt_create(&cfgs[c], n);
        ck_assert(a && b);
        uint32_t r = 7;
        for (size_t i = 0; i < n; i++) {
            r = r * 1664525u + 1013904223u;
            p1[i] = p2[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
        }
        for (int step = 0; step < 3; step++) {
            for (size_t i = 0; i < n; i++) {
                r = r * 1664525u + 1013904223u;
                g[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * (step + 1);
            }
            rt_opt_step(a, p1, g);
            rt_opt_step_mt(b, p2, g, tp);
            for (size_t i = 0; i < n; i++)
                CHECK(p1[i] == p2[i], "optimizer %d step %d: parameter %zu differs", c, step, i);
        }
        rt_opt_destroy(a);
        rt_opt_destroy(b);
    }
    free(p1), free(p2), free(g);
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(adam_moves_by_lr)
{
    /* After one step every parameter with a non-zero gradient moves by almost exactly lr,
     * whatever the gradient's size: the scale invariance Adam is known for. Precisely it
     * moves by lr |g| / (|g| + eps), which for g = 1e-3 is 1e-3 * (1 - ~1e-5). */
    rt_opt_cfg cfg = {RT_OPT_ADAM, 0.001f, 0, 0, 0.9f, 0.999f, 1e-8f};
    rt_opt *o = rt_opt_create(&cfg, 3);
    float p[3] = {0, 0, 0};
    const float g[3] = {1e-3f, -7, 250};
    rt_opt_step(o, p, g);
    ck_assert_float_eq_tol(p[0], -0.001 * 1e-3 / (1e-3 + 1e-8), 1e-9);
    ck_assert_float_eq_tol(p[1], 0.001, 1e-9);
    ck_assert_float_eq_tol(p[2], -0.001, 1e-9);
    rt_opt_destroy(o);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("opt");
    TCase *t = tcase_create("optimizers");
    tcase_add_test(t, sgd_hand);
    tcase_add_test(t, adam_hand);
    tcase_add_test(t, against_reference);
    tcase_add_test(t, adam_moves_by_lr);
    tcase_add_test(t, pool_same_bits);
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
