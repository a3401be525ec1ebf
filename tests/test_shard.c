/*
 * test_shard.c - the kernels that see a whole global batch while computing only a shard of
 * it (rt_shard, data-parallel training): training-mode batchnorm and dropout. One process
 * plays both shards: the shard's `sum` adds the other shard's part, worked out here in
 * double from its images. Checked against numbers worked by hand and against the same
 * kernels run on the whole batch (whose own tests hold them to a float64 reference and a
 * finite-difference gradient).
 */
#include <check.h>
#include <math.h>
#include <string.h>

#include "rt_kernels.h"

/* One channel, one pixel an image, a global batch of 4 images x = 1, 2, 3, 6: mean 3,
 * biased variance (4 + 1 + 0 + 9) / 4 = 3.5. This process holds images 2 and 3. */
static const float X[4] = {1, 2, 3, 6}, DY[4] = {0.5f, -1, 2, 0.25f};
static int g_calls;
static double g_mean;

/* The other shard (images 0 and 1): its sums, in the order the kernel asks for them. */
static void other_shard(double *v, size_t n)
{
    g_calls++;
    if (g_calls == 1) {            /* forward: the sum of x */
        ck_assert_uint_eq(n, 1);
        v[0] += X[0] + X[1];
        g_mean = v[0] / 4.0;
    } else if (g_calls == 2) {     /* forward: the squared deviations from the global mean */
        ck_assert_uint_eq(n, 1);
        v[0] += (X[0] - g_mean) * (X[0] - g_mean) + (X[1] - g_mean) * (X[1] - g_mean);
    } else {                       /* backward: sums of dy and dy * (x - mean) */
        ck_assert_uint_eq(n, 2);
        v[0] += DY[0] + DY[1];
        v[1] += DY[0] * (X[0] - g_mean) + DY[1] * (X[1] - g_mean);
    }
}

START_TEST(t_batchnorm)
{
    const float gamma = 2.0f, beta = 0.5f, eps = 1e-5f, mom = 0.1f;
    /* the whole batch, no shard */
    float rm = 0, rv = 1, y[4], sm, si, dx[4], dg, db;
    rt_batchnorm_forward_train(X, &gamma, &beta, &rm, &rv, mom, eps, y, &sm, &si, 4, 1, 1);
    rt_batchnorm_backward_train(X, &gamma, &sm, &si, DY, dx, 0, &dg, &db, 4, 1, 1);

    /* the shard of images 2 and 3 */
    g_calls = 0;
    rt_shard sh = {other_shard, 2, 2, 4};
    rt_shard_set(&sh);
    ck_assert_ptr_nonnull(rt_shard_get());
    float rm2 = 0, rv2 = 1, y2[2], sm2, si2, dx2[2], dg2, db2;
    rt_batchnorm_forward_train(X + 2, &gamma, &beta, &rm2, &rv2, mom, eps, y2, &sm2, &si2, 2, 1, 1);
    rt_batchnorm_backward_train(X + 2, &gamma, &sm2, &si2, DY + 2, dx2, 0, &dg2, &db2, 2, 1, 1);
    rt_shard_set(NULL);
    ck_assert_ptr_null(rt_shard_get());
    ck_assert_int_eq(g_calls, 3);

    /* by hand: y = 2 (x - 3) / sqrt(3.5 + eps) + 0.5 -> 0.5 and 6 / sqrt(3.5 + eps) + 0.5 */
    double is = 1.0 / sqrt(3.5 + 1e-5);
    ck_assert_double_eq_tol(y2[0], 0.5, 1e-6);
    ck_assert_double_eq_tol(y2[1], 6.0 * is + 0.5, 1e-6);
    ck_assert_double_eq_tol(sm2, 3.0, 1e-7);
    ck_assert_double_eq_tol(si2, is, 1e-7);
    /* running statistics: 0.9 * 0 + 0.1 * 3, and 0.9 * 1 + 0.1 * (14 / 3) (unbiased) */
    ck_assert_double_eq_tol(rm2, 0.3, 1e-7);
    ck_assert_double_eq_tol(rv2, 0.9 + 0.1 * 14.0 / 3.0, 1e-6);
    /* the same as the whole batch's images 2 and 3 */
    ck_assert_double_eq_tol(y2[0], y[2], 1e-6);
    ck_assert_double_eq_tol(y2[1], y[3], 1e-6);
    ck_assert_double_eq_tol(rv2, rv, 1e-6);
    /* dx = gamma is (dy - mean(dy) - xhat mean(dy xhat)), over the global batch:
     * mean(dy) = 1.75 / 4; sum dy (x - 3) = -1 + 1 + 0 + 0.75 = 0.75 */
    double mdy = 1.75 / 4, mdyx = 0.75 * is / 4;
    for (int i = 0; i < 2; i++) {
        double xhat = (X[2 + i] - 3.0) * is;
        double want = 2.0 * is * (DY[2 + i] - mdy - xhat * mdyx);
        ck_assert_double_eq_tol(dx2[i], want, 1e-6);
        ck_assert_double_eq_tol(dx2[i], dx[2 + i], 1e-6);
    }
    /* the parameter gradients stay this shard's (summed over ranks with the others later):
     * dbeta = 2 + 0.25, dgamma = sum dy xhat = (0 + 0.25 * 3) is; they add up to the whole
     * batch's with the other shard's -0.5 and (0.5 * -2 - 1 * -1) is = 0 */
    ck_assert_double_eq_tol(db2, 2.25, 1e-6);
    ck_assert_double_eq_tol(dg2, 0.75 * is, 1e-6);
    ck_assert_double_eq_tol(db2 - 0.5, db, 1e-6);
    ck_assert_double_eq_tol(dg2, dg, 1e-6);
}
END_TEST

/* Dropout: a shard's masks are the whole batch's masks of its images, and the generator
 * ends where the whole batch's draws leave it. */
START_TEST(t_dropout)
{
    enum { PER = 5, TOTAL = 4 };
    float whole[PER * TOTAL], part[PER * 2];
    rt_rng a, b;
    rt_rng_seed(&a, 42);
    rt_rng_seed(&b, 42);
    rt_dropout_mask(whole, PER * TOTAL, 0.5f, &a);
    rt_shard sh = {NULL, 1, 2, TOTAL}; /* images 1 and 2 of 4 */
    rt_shard_set(&sh);
    rt_dropout_mask(part, PER * 2, 0.5f, &b);
    rt_shard_set(NULL);
    ck_assert_mem_eq(part, whole + PER, sizeof part);
    ck_assert_mem_eq(&a, &b, sizeof a);
    int kept = 0; /* and the masks are masks: 0 or 2, both present */
    for (int i = 0; i < PER * TOTAL; i++) {
        ck_assert(whole[i] == 0.0f || whole[i] == 2.0f);
        kept += whole[i] != 0.0f;
    }
    ck_assert(kept > 0 && kept < PER * TOTAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shard");
    TCase *tc = tcase_create("shard");
    tcase_add_test(tc, t_batchnorm);
    tcase_add_test(tc, t_dropout);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
