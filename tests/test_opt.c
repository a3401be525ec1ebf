/*
 * test_opt.c - the optimizers against steps worked out by hand and against a float64
 * re-implementation of the update rules of torch.optim.SGD (with Nesterov), Adam and AdamW
 * written here from their documentation; gradient clipping (clip_grad_norm_) and the
 * label-smoothed cross-entropy against the same formulas in float64.
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
    rt_opt_cfg cfg = {RT_OPT_SGD, 0.1f, 0.9f, 0.01f, 0, 0, 0, 0};
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
    rt_opt_cfg plain = {RT_OPT_SGD, 0.5f, 0, 0, 0, 0, 0, 0};
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
    rt_opt_cfg cfg = {RT_OPT_ADAM, 0.01f, 0, 0, 0.9f, 0.999f, 1e-8f, 0};
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

/* torch.optim.SGD(nesterov=True): g += wd p; b = g or momentum b + g; p -= lr (g + momentum b) */
static void ref_nesterov(double *p, double *b, const double *g, int n, int step, double lr,
                         double mom, double wd)
{
    for (int i = 0; i < n; i++) {
        double d = g[i] + wd * p[i];
        b[i] = step == 0 ? d : mom * b[i] + d;
        p[i] -= lr * (d + mom * b[i]);
    }
}

/* torch.optim.AdamW: p *= 1 - lr wd; then Adam's update on the plain gradient. */
static void ref_adamw(double *p, double *m, double *v, const double *g, int n, int t, double lr,
                      double b1, double b2, double eps, double wd)
{
    for (int i = 0; i < n; i++) {
        p[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
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
                              (float)wd, 0.9f, 0.999f, 1e-8f, 0};
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

/* Nesterov SGD, AdamW and Adam with other betas, 25 steps against the float64 references
 * (a weight decay of 0.05 and 0.2 so that AdamW's decoupled decay differs visibly from L2). */
START_TEST(variants_against_reference)
{
    enum { N = 7, STEPS = 25 };
    for (int kind = 0; kind < 3; kind++)
        for (int wdi = 0; wdi < 2; wdi++) {
            double wd = wdi ? 0.2 : 0.05, b1 = 0.8, b2 = 0.99;
            rt_opt_cfg cfg = {RT_OPT_SGD, 0.05f, 0.7f, (float)wd, (float)b1, (float)b2, 1e-8f, 1};
            if (kind == 1)
                cfg.kind = RT_OPT_ADAMW, cfg.lr = 0.02f, cfg.momentum = 0, cfg.nesterov = 0;
            if (kind == 2)
                cfg.kind = RT_OPT_ADAM, cfg.lr = 0.02f, cfg.momentum = 0, cfg.nesterov = 0;
            rt_opt *o = rt_opt_create(&cfg, N);
            ck_assert_ptr_nonnull(o);
            float p[N], g[N];
            double pd[N], b[N] = {0}, m[N] = {0}, v[N] = {0}, gd[N];
            for (int i = 0; i < N; i++)
                p[i] = (float)(pd[i] = 0.5 * i - 1.2);
            for (int t = 0; t < STEPS; t++) {
                grad_at(p, N, t, g, gd);
                rt_opt_step(o, p, g);
                if (kind == 0)
                    ref_nesterov(pd, b, gd, N, t, cfg.lr, 0.7, wd);
                else if (kind == 1)
                    ref_adamw(pd, m, v, gd, N, t + 1, cfg.lr, b1, b2, 1e-8, wd);
                else
                    ref_adam(pd, m, v, gd, N, t + 1, cfg.lr, b1, b2, 1e-8, wd);
                for (int i = 0; i < N; i++) {
                    CHECK(fabs(p[i] - pd[i]) < 2e-5, "kind %d wd %g step %d p[%d]: %.8g vs %.8g",
                          kind, wd, t, i, p[i], pd[i]);
                    p[i] = (float)pd[i];
                }
            }
            rt_opt_destroy(o);
        }
}
END_TEST

START_TEST(nesterov_adamw_hand)
{
    /* Nesterov, lr 0.1, momentum 0.9, p = 1, g = 0.5 constant, no decay:
     * step 1: b = 0.5, p -= 0.1 (0.5 + 0.45) = 0.905
     * step 2: b = 0.95, p -= 0.1 (0.5 + 0.855) = 0.905 - 0.1355 = 0.7695 */
    rt_opt_cfg cfg = {RT_OPT_SGD, 0.1f, 0.9f, 0, 0, 0, 0, 1};
    rt_opt *o = rt_opt_create(&cfg, 1);
    float p = 1, g = 0.5f;
    rt_opt_step(o, &p, &g);
    ck_assert_float_eq_tol(p, 0.905, 1e-6);
    rt_opt_step(o, &p, &g);
    ck_assert_float_eq_tol(p, 0.7695, 1e-6);
    rt_opt_destroy(o);
    /* AdamW, lr 0.1, wd 0.5, p = 2, g = 1: p = 2 (1 - 0.05) = 1.9, then the Adam step of a
     * constant gradient moves by lr: 1.8. (Adam's L2 would give 2 - 0.1 = 1.9 instead.) */
    rt_opt_cfg w = {RT_OPT_ADAMW, 0.1f, 0, 0.5f, 0.9f, 0.999f, 1e-8f, 0};
    o = rt_opt_create(&w, 1);
    p = 2, g = 1;
    rt_opt_step(o, &p, &g);
    ck_assert_float_eq_tol(p, 1.8, 1e-6);
    /* a new lr applies to the following steps: p = 1.8 (1 - 0.025) - 0.05 = 1.705 */
    rt_opt_set_lr(o, 0.05f);
    rt_opt_step(o, &p, &g);
    ck_assert_float_eq_tol(p, 1.705, 1e-6);
    rt_opt_destroy(o);
}
END_TEST

START_TEST(clip_norm)
{
    /* g = [3, -4, 0]: norm 5; max 1 scales by 1 / (5 + 1e-6) */
    float g[3] = {3, -4, 0};
    ck_assert_double_eq_tol(rt_clip_grad_norm(g, 3, 1.0f), 5.0, 1e-12);
    ck_assert_float_eq_tol(g[0], 3 / (5 + 1e-6), 1e-7);
    ck_assert_float_eq_tol(g[1], -4 / (5 + 1e-6), 1e-7);
    ck_assert_float_eq(g[2], 0);
    /* below the limit (coef >= 1): untouched, bit for bit */
    float h[2] = {0.3f, 0.4f};
    ck_assert_double_eq_tol(rt_clip_grad_norm(h, 2, 0.6f), 0.5, 1e-7);
    ck_assert_float_eq(h[0], 0.3f);
    ck_assert_float_eq(h[1], 0.4f);
    /* a random vector: the clipped norm is max_norm (to float rounding) */
    float r[1000];
    double ss = 0;
    for (int i = 0; i < 1000; i++) {
        r[i] = (float)sin(0.37 * i) * 3;
        ss += (double)r[i] * r[i];
    }
    double before = rt_clip_grad_norm(r, 1000, 2.0f), after = 0;
    ck_assert_double_eq_tol(before, sqrt(ss), 1e-9);
    for (int i = 0; i < 1000; i++)
        after += (double)r[i] * r[i];
    ck_assert_double_eq_tol(sqrt(after), 2.0 * sqrt(ss) / (sqrt(ss) + 1e-6), 1e-5);
}
END_TEST

START_TEST(label_smoothing)
{
    /* torch: loss = -sum_j q_j log p_j with q = (1-e) onehot + e/k, averaged over rows;
     * d/dlogits = (p - q) / n. Worked here in float64 from the logits.
     * By hand for one row l = [0, ln 2, ln 5] (p = [1/8, 2/8, 5/8]), y = 2, e = 0.3:
     * q = [0.1, 0.1, 0.8]; loss = -(0.1 ln(1/8) + 0.1 ln(1/4) + 0.8 ln(5/8))
     *   = 0.5 ln 2 - 0.8 ln 5 + 2.4 ln 2 ... = 2.9 ln 2 - 0.8 ln 5. */
    const float hand[3] = {0, (float)log(2.0), (float)log(5.0)};
    const int yh = 2;
    float d[3];
    double loss = rt_softmax_xent_smooth(hand, &yh, 1, 3, 0.3f, NULL, d, NULL);
    ck_assert_double_eq_tol(loss, 2.9 * log(2.0) - 0.8 * log(5.0), 1e-6);
    ck_assert_float_eq_tol(d[0], 0.125 - 0.1, 1e-6);
    ck_assert_float_eq_tol(d[1], 0.25 - 0.1, 1e-6);
    ck_assert_float_eq_tol(d[2], 0.625 - 0.8, 1e-6);

    enum { N = 4, K = 5 };
    float l[N * K], dl[N * K];
    const int y[N] = {0, 4, 2, 2};
    for (int i = 0; i < N * K; i++)
        l[i] = (float)(2.5 * sin(0.9 * i + 0.4));
    const float eps[3] = {0.0f, 0.1f, 0.25f};
    for (int t = 0; t < 3; t++) {
        int correct = -1;
        loss = rt_softmax_xent_smooth(l, y, N, K, eps[t], NULL, dl, &correct);
        double ref = 0;
        for (int s = 0; s < N; s++) {
            double z = 0;
            for (int j = 0; j < K; j++)
                z += exp((double)l[s * K + j]);
            for (int j = 0; j < K; j++) {
                double pj = exp((double)l[s * K + j]) / z;
                double q = (j == y[s] ? 1.0 - eps[t] : 0.0) + (double)eps[t] / K;
                ref -= q * log(pj) / N;
                CHECK(fabs(dl[s * K + j] - (pj - q) / N) < 1e-7, "e %g row %d dlogit %d: %.9g vs %.9g",
                      eps[t], s, j, dl[s * K + j], (pj - q) / N);
            }
        }
        CHECK(fabs(loss - ref) < 1e-9, "e %g: loss %.12g vs %.12g", eps[t], loss, ref);
        ck_assert_int_ge(correct, 0);
    }
    /* e 0 is the plain loss, bit for bit */
    float d0[N * K];
    ck_assert_double_eq(rt_softmax_xent(l, y, N, K, NULL, d0, NULL),
                        rt_softmax_xent_smooth(l, y, N, K, 0.0f, NULL, dl, NULL));
    for (int i = 0; i < N * K; i++)
        CHECK(d0[i] == dl[i], "dlogit %d differs at e 0", i);
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
    const rt_opt_cfg cfgs[4] = {{RT_OPT_SGD, 0.05f, 0.9f, 1e-3f, 0, 0, 0, 0},
                                {RT_OPT_ADAM, 1e-3f, 0, 1e-2f, 0.9f, 0.999f, 1e-8f, 0},
                                {RT_OPT_SGD, 0.05f, 0.9f, 1e-3f, 0, 0, 0, 1},
                                {RT_OPT_ADAMW, 1e-3f, 0, 1e-2f, 0.9f, 0.999f, 1e-8f, 0}};
    for (int c = 0; c < 4; c++) {
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
    rt_opt_cfg cfg = {RT_OPT_ADAM, 0.001f, 0, 0, 0.9f, 0.999f, 1e-8f, 0};
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
    tcase_add_test(t, variants_against_reference);
    tcase_add_test(t, nesterov_adamw_hand);
    tcase_add_test(t, clip_norm);
    tcase_add_test(t, label_smoothing);
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
