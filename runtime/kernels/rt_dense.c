/*
 * rt_dense.c - fully connected layers, forward and backward, as GEMMs over the batch.
 *
 * Every GEMM here splits the columns of its result over the pool and sums each element over
 * the whole reduction in one fixed order, so dense results do not depend on the thread count.
 */
#include "rt_kernels.h"

int rt_dense_forward(const float *x, const float *w, const float *b, rt_act act, float alpha,
                     float *y, int n, int in, int out, rt_threads *tp)
{
    if (n <= 0)
        return 0;
    /* y[n][out] = x[n][in] * w[out][in]^T */
    if (rt_sgemm_mt(tp, 0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out) != 0)
        return -1;
    for (int s = 0; s < n; s++) {
        float *ys = y + (size_t)s * out;
        if (b)
            rt_add_forward(ys, b, ys, (size_t)out);
        rt_act_forward(act, alpha, ys, ys, (size_t)out);
    }
    return 0;
}

int rt_dense_backward(const float *x, const float *w, const float *dz, float *dx, int accum,
                      float *dw, float *db, int n, int in, int out, rt_threads *tp)
{
    if (db)
        for (int o = 0; o < out; o++) {
            double s = 0.0;
            for (int i = 0; i < n; i++)
                s += dz[(size_t)i * out + o];
            db[o] = (float)s;
        }
    /* dw[out][in] = dz[n][out]^T * x[n][in] */
    if (rt_sgemm_mt(tp, 1, 0, out, in, n, 1.0f, dz, out, x, in, 0.0f, dw, in) != 0)
        return -1;
    /* dx[n][in] (+)= dz[n][out] * w[out][in] */
    if (dx && n > 0 &&
        rt_sgemm_mt(tp, 0, 0, n, in, out, 1.0f, dz, out, w, in, accum ? 1.0f : 0.0f, dx,
                    in) != 0)
        return -1;
    return 0;
}
