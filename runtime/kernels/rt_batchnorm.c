/*
 * rt_batchnorm.c - per-channel batch normalisation (BatchNorm2d/1d), forward and backward.
 *
 * Channels are independent, so they are split over the pool's workers. Each channel's
 * statistics are summed in a fixed order (RT_VEC float partial sums, then their total in
 * double), so the bits do not depend on the split. Training mode normalises with the batch's
 * biased variance and moves the running statistics with PyTorch's rule (unbiased variance);
 * evaluation mode uses the running ones. The _act forms run the activation that follows
 * (relu and the others computed from their output) on each channel while it is in cache.
 * With a shard set (data-parallel training, rt_shard in rt_kernels.h) the training-mode
 * statistics and the input gradient's sums are the whole global batch's: each is summed
 * here, then over the shards, between two passes over the channels (sync batchnorm).
 */
#include "rt_kernels.h"
#include "rt_simd.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    const float *x, *gamma, *beta, *dy, *mean, *invstd; /* mean/invstd: saved or running */
    const float *run_var;
    float *run_mean, *run_var_out, *y, *dx, *dgamma, *dbeta, *save_mean, *save_invstd;
    const float *act_y; /* backward with a fused activation: its output */
    float *act_dy;      /* and dy, turned into dy * act'(y) in place */
    rt_act act;         /* RT_ACT_NONE, or the fused activation */
    float momentum, eps, alpha;
    int n, c, hw, accum, train;
    double cnt;         /* values per channel in the (global) batch */
    double *gs;         /* sharded: 2c sums over the global batch (see fwd_sharded) */
} bn_job;

/* sum over a channel of (x - m)^2 */
static double sum_sqdev(const float *x, size_t n, float m)
{
    float part[RT_VEC] = {0};
    size_t i = 0;
    for (; i + RT_VEC <= n; i += RT_VEC)
        for (int k = 0; k < RT_VEC; k++)
            part[k] += (x[i + k] - m) * (x[i + k] - m);
    double s = 0.0;
    for (int k = 0; k < RT_VEC; k++)
        s += part[k];
    for (; i < n; i++)
        s += (double)(x[i] - m) * (x[i] - m);
    return s;
}

/* y = a x + b over n values */
static void affine(const float *x, float a, float b, float *y, size_t n)
{
    size_t i = 0;
    for (; i + RT_VEC <= n; i += RT_VEC) {
        float t[RT_VEC];
        for (int k = 0; k < RT_VEC; k++)
            t[k] = a * x[i + k] + b;
        for (int k = 0; k < RT_VEC; k++)
            y[i + k] = t[k];
    }
    for (; i < n; i++)
        y[i] = a * x[i] + b;
}

RT_CLONES static void fwd_channel(bn_job *j, int ch)
{
    const size_t hw = (size_t)j->hw, stride = (size_t)j->c * hw;
    double mean, invstd;
    if (j->train) {
        const double cnt = j->cnt;
        double sum = 0.0, sq = 0.0;
        if (j->gs) { /* sharded: the global batch's sums */
            sum = j->gs[ch];
            sq = j->gs[j->c + ch];
        } else {
            for (int s = 0; s < j->n; s++)
                sum += rt_sum(j->x + s * stride + ch * hw, hw);
        }
        mean = sum / cnt;
        for (int s = 0; !j->gs && s < j->n; s++)
            sq += sum_sqdev(j->x + s * stride + ch * hw, hw, (float)mean);
        double var = sq / cnt;
        invstd = 1.0 / sqrt(var + j->eps);
        double unbiased = cnt > 1.0 ? var * cnt / (cnt - 1.0) : var;
        j->run_mean[ch] = (float)((1.0 - j->momentum) * j->run_mean[ch] + j->momentum * mean);
        j->run_var_out[ch] =
            (float)((1.0 - j->momentum) * j->run_var_out[ch] + j->momentum * unbiased);
        j->save_mean[ch] = (float)mean;
        j->save_invstd[ch] = (float)invstd;
    } else {
        mean = j->mean[ch];
        invstd = 1.0 / sqrt((double)j->run_var[ch] + j->eps);
    }
    float a = (float)(j->gamma[ch] * invstd);
    float b = (float)(j->beta[ch] - mean * j->gamma[ch] * invstd);
    for (int s = 0; s < j->n; s++) {
        float *yp = j->y + s * stride + ch * hw;
        affine(j->x + s * stride + ch * hw, a, b, yp, hw);
        if (j->act != RT_ACT_NONE)
            rt_act_forward(j->act, j->alpha, yp, yp, hw);
    }
}

/* Sums of dy and dy * (x - mean) over one channel. */
static void channel_sums(const bn_job *j, int ch, float mean, double *sdy, double *sdyx)
{
    const size_t hw = (size_t)j->hw, stride = (size_t)j->c * hw;
    double a = 0.0, b = 0.0;
    for (int s = 0; s < j->n; s++) {
        const float *xp = j->x + s * stride + ch * hw, *dp = j->dy + s * stride + ch * hw;
        float pa[RT_VEC] = {0}, pb[RT_VEC] = {0};
        size_t i = 0;
        for (; i + RT_VEC <= hw; i += RT_VEC)
            for (int k = 0; k < RT_VEC; k++) {
                pa[k] += dp[i + k];
                pb[k] += dp[i + k] * (xp[i + k] - mean);
            }
        for (int k = 0; k < RT_VEC; k++) {
            a += pa[k];
            b += pb[k];
        }
        for (; i < hw; i++) {
            a += dp[i];
            b += (double)dp[i] * (xp[i] - mean);
        }
    }
    *sdy = a;
    *sdyx = b;
}

/* Backward, first half: the fused activation's gradient, this batch's sums of dy and
 * dy * (x - mean), and from them the parameter gradients (summed over shards with the
 * other gradients later, so they stay this shard's). */
RT_CLONES static void bwd_sums(bn_job *j, int ch, double *sdy, double *sdyx)
{
    const size_t hw = (size_t)j->hw, stride = (size_t)j->c * hw;
    double invstd = j->train ? j->invstd[ch] : 1.0 / sqrt((double)j->run_var[ch] + j->eps);
    if (j->act != RT_ACT_NONE)
        for (int s = 0; s < j->n; s++)
            rt_act_backward(j->act, j->alpha, j->act_y + s * stride + ch * hw,
                            j->act_dy + s * stride + ch * hw, j->act_dy + s * stride + ch * hw,
                            hw, 0);
    channel_sums(j, ch, j->mean[ch], sdy, sdyx);
    j->dgamma[ch] = (float)(*sdyx * invstd); /* sum dy * xhat */
    j->dbeta[ch] = (float)*sdy;
}

/* Backward, second half: the input gradient from the (global) sums. */
RT_CLONES static void bwd_dx(bn_job *j, int ch, double sdy, double sdyx)
{
    const size_t hw = (size_t)j->hw, stride = (size_t)j->c * hw;
    const double cnt = j->cnt;
    float mean = j->mean[ch];
    double invstd = j->train ? j->invstd[ch] : 1.0 / sqrt((double)j->run_var[ch] + j->eps);
    /* training: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)), which is
     * k dy - k2 (x - mean) - k3; evaluation: dx = gamma invstd dy */
    float k = (float)(j->gamma[ch] * invstd), k2 = 0.0f, k3 = 0.0f;
    if (j->train) {
        k2 = (float)(j->gamma[ch] * invstd * invstd * invstd * sdyx / cnt);
        k3 = (float)(j->gamma[ch] * invstd * sdy / cnt);
    }
    for (int s = 0; s < j->n; s++) {
        const float *xp = j->x + s * stride + ch * hw, *dp = j->dy + s * stride + ch * hw;
        float *op = j->dx + s * stride + ch * hw;
        size_t i = 0;
        for (; i + RT_VEC <= hw; i += RT_VEC) {
            float t[RT_VEC];
            for (int q = 0; q < RT_VEC; q++)
                t[q] = k * dp[i + q] - k2 * (xp[i + q] - mean) - k3;
            if (j->accum)
                for (int q = 0; q < RT_VEC; q++)
                    op[i + q] += t[q];
            else
                for (int q = 0; q < RT_VEC; q++)
                    op[i + q] = t[q];
        }
        for (; i < hw; i++) {
            float d = k * dp[i] - k2 * (xp[i] - mean) - k3;
            op[i] = j->accum ? op[i] + d : d;
        }
    }
}

static void bwd_channel(bn_job *j, int ch)
{
    double sdy, sdyx;
    bwd_sums(j, ch, &sdy, &sdyx);
    if (j->dx)
        bwd_dx(j, ch, sdy, sdyx);
}

static void fwd_task(void *arg, rt_worker *w)
{
    bn_job *j = arg;
    int lo, hi;
    rt_split_range(j->c, rt_worker_count(w), rt_worker_id(w), &lo, &hi);
    for (int ch = lo; ch < hi; ch++)
        fwd_channel(j, ch);
}

static void bwd_task(void *arg, rt_worker *w)
{
    bn_job *j = arg;
    int lo, hi;
    rt_split_range(j->c, rt_worker_count(w), rt_worker_id(w), &lo, &hi);
    for (int ch = lo; ch < hi; ch++)
        bwd_channel(j, ch);
}

/* ---- sharded (sync batchnorm): the passes over the channels with sums between them */

RT_CLONES static void sum_task(void *arg, rt_worker *w) /* gs[ch] = this shard's sum of x */
{
    bn_job *j = arg;
    const size_t hw = (size_t)j->hw, stride = (size_t)j->c * hw;
    int lo, hi;
    rt_split_range(j->c, rt_worker_count(w), rt_worker_id(w), &lo, &hi);
    for (int ch = lo; ch < hi; ch++) {
        double sum = 0.0;
        for (int s = 0; s < j->n; s++)
            sum += rt_sum(j->x + s * stride + ch * hw, hw);
        j->gs[ch] = sum;
    }
}

RT_CLONES static void sqdev_task(void *arg, rt_worker *w) /* gs[c + ch] = sum of (x - global mean)^2 */
{
    bn_job *j = arg;
    const size_t hw = (size_t)j->hw, stride = (size_t)j->c * hw;
    int lo, hi;
    rt_split_range(j->c, rt_worker_count(w), rt_worker_id(w), &lo, &hi);
    for (int ch = lo; ch < hi; ch++) {
        float mean = (float)(j->gs[ch] / j->cnt);
        double sq = 0.0;
        for (int s = 0; s < j->n; s++)
            sq += sum_sqdev(j->x + s * stride + ch * hw, hw, mean);
        j->gs[j->c + ch] = sq;
    }
}

static void bwd_sums_task(void *arg, rt_worker *w)
{
    bn_job *j = arg;
    int lo, hi;
    rt_split_range(j->c, rt_worker_count(w), rt_worker_id(w), &lo, &hi);
    for (int ch = lo; ch < hi; ch++)
        bwd_sums(j, ch, &j->gs[ch], &j->gs[j->c + ch]);
}

static void bwd_dx_task(void *arg, rt_worker *w)
{
    bn_job *j = arg;
    int lo, hi;
    rt_split_range(j->c, rt_worker_count(w), rt_worker_id(w), &lo, &hi);
    for (int ch = lo; ch < hi; ch++)
        bwd_dx(j, ch, j->gs[ch], j->gs[j->c + ch]);
}

static double *shard_sums(int c)
{
    double *gs = malloc(2 * (size_t)c * sizeof *gs);
    if (!gs) { /* a kernel has no error path: as an allocation failure anywhere else */
        fprintf(stderr, "error: out of memory for batchnorm's sums over the ranks\n");
        abort();
    }
    return gs;
}

/* Training forward: the mean, then the squared deviations from it, each summed over the
 * shards, then the normalisation of this shard's images with the global statistics. */
static void fwd_train(bn_job *j, rt_threads *tp)
{
    const rt_shard *sh = rt_shard_get();
    j->cnt = (double)j->n * j->hw;
    if (!sh || !sh->sum) {
        rt_threads_run(tp, fwd_task, j);
        return;
    }
    j->cnt = (double)sh->total * j->hw;
    j->gs = shard_sums(j->c);
    rt_threads_run(tp, sum_task, j);
    sh->sum(j->gs, (size_t)j->c);
    rt_threads_run(tp, sqdev_task, j);
    sh->sum(j->gs + j->c, (size_t)j->c);
    rt_threads_run(tp, fwd_task, j);
    free(j->gs);
    j->gs = NULL;
}

/* Training backward: this shard's sums, summed over the shards, then dx. */
static void bwd_train(bn_job *j, rt_threads *tp)
{
    const rt_shard *sh = rt_shard_get();
    j->cnt = (double)j->n * j->hw;
    if (!sh || !sh->sum) {
        rt_threads_run(tp, bwd_task, j);
        return;
    }
    j->cnt = (double)sh->total * j->hw;
    j->gs = shard_sums(j->c);
    rt_threads_run(tp, bwd_sums_task, j);
    sh->sum(j->gs, 2 * (size_t)j->c);
    if (j->dx)
        rt_threads_run(tp, bwd_dx_task, j);
    free(j->gs);
    j->gs = NULL;
}

void rt_batchnorm_fold(const float *w, const float *bias, int oc, size_t per_oc,
                       const float *gamma, const float *beta, const float *run_mean,
                       const float *run_var, float eps, float *wf, float *bf)
{
    for (int o = 0; o < oc; o++) {
        double invstd = 1.0 / sqrt((double)run_var[o] + eps), a = gamma[o] * invstd;
        for (size_t k = 0; k < per_oc; k++)
            wf[(size_t)o * per_oc + k] = (float)(w[(size_t)o * per_oc + k] * a);
        bf[o] = (float)(((bias ? (double)bias[o] : 0.0) - run_mean[o]) * a + beta[o]);
    }
}

void rt_batchnorm_forward_train_mt(const float *x, const float *gamma, const float *beta,
                                   float *run_mean, float *run_var, float momentum, float eps,
                                   float *y, float *save_mean, float *save_invstd, int n,
                                   int c, int hw, rt_threads *tp)
{
    bn_job j = {0};
    j.x = x, j.gamma = gamma, j.beta = beta, j.run_mean = run_mean, j.run_var_out = run_var;
    j.momentum = momentum, j.eps = eps, j.y = y, j.save_mean = save_mean;
    j.save_invstd = save_invstd, j.n = n, j.c = c, j.hw = hw, j.train = 1;
    fwd_train(&j, tp);
}

void rt_batchnorm_forward_eval_mt(const float *x, const float *gamma, const float *beta,
                                  const float *run_mean, const float *run_var, float eps,
                                  float *y, int n, int c, int hw, rt_threads *tp)
{
    bn_job j = {0};
    j.x = x, j.gamma = gamma, j.beta = beta, j.mean = run_mean, j.run_var = run_var;
    j.eps = eps, j.y = y, j.n = n, j.c = c, j.hw = hw;
    rt_threads_run(tp, fwd_task, &j);
}

void rt_batchnorm_backward_train_mt(const float *x, const float *gamma,
                                    const float *save_mean, const float *save_invstd,
                                    const float *dy, float *dx, int accum, float *dgamma,
                                    float *dbeta, int n, int c, int hw, rt_threads *tp)
{
    bn_job j = {0};
    j.x = x, j.gamma = gamma, j.mean = save_mean, j.invstd = save_invstd, j.dy = dy;
    j.dx = dx, j.accum = accum, j.dgamma = dgamma, j.dbeta = dbeta, j.n = n, j.c = c;
    j.hw = hw, j.train = 1;
    bwd_train(&j, tp);
}

void rt_batchnorm_backward_eval_mt(const float *x, const float *gamma, const float *run_mean,
                                   const float *run_var, float eps, const float *dy, float *dx,
                                   int accum, float *dgamma, float *dbeta, int n, int c,
                                   int hw, rt_threads *tp)
{
    bn_job j = {0};
    j.x = x, j.gamma = gamma, j.mean = run_mean, j.run_var = run_var, j.eps = eps, j.dy = dy;
    j.dx = dx, j.accum = accum, j.dgamma = dgamma, j.dbeta = dbeta, j.n = n, j.c = c;
    j.hw = hw;
    rt_threads_run(tp, bwd_task, &j);
}

void rt_batchnorm_act_forward_mt(int training, const float *x, const float *gamma,
                                 const float *beta, float *run_mean, float *run_var,
                                 float momentum, float eps, float *y, float *save_mean,
                                 float *save_invstd, rt_act act, float alpha, int n, int c,
                                 int hw, rt_threads *tp)
{
    bn_job j = {0};
    j.x = x, j.gamma = gamma, j.beta = beta, j.eps = eps, j.y = y, j.n = n, j.c = c;
    j.hw = hw, j.act = act, j.alpha = alpha;
    if (training) {
        j.run_mean = run_mean, j.run_var_out = run_var, j.momentum = momentum;
        j.save_mean = save_mean, j.save_invstd = save_invstd, j.train = 1;
    } else {
        j.mean = run_mean, j.run_var = run_var;
    }
    if (training)
        fwd_train(&j, tp);
    else
        rt_threads_run(tp, fwd_task, &j);
}

void rt_batchnorm_act_backward_mt(int training, const float *x, const float *gamma,
                                  const float *mean, const float *invstd, const float *run_var,
                                  float eps, const float *y, rt_act act, float alpha, float *dy,
                                  float *dx, int accum, float *dgamma, float *dbeta, int n,
                                  int c, int hw, rt_threads *tp)
{
    bn_job j = {0};
    j.x = x, j.gamma = gamma, j.mean = mean, j.dy = dy, j.dx = dx, j.accum = accum;
    j.dgamma = dgamma, j.dbeta = dbeta, j.n = n, j.c = c, j.hw = hw;
    j.act = act, j.alpha = alpha, j.act_y = y, j.act_dy = dy;
    if (training)
        j.invstd = invstd, j.train = 1;
    else
        j.run_var = run_var, j.eps = eps;
    if (training)
        bwd_train(&j, tp);
    else
        rt_threads_run(tp, bwd_task, &j);
}

void rt_batchnorm_forward_train(const float *x, const float *gamma, const float *beta,
                                float *run_mean, float *run_var, float momentum, float eps,
                                float *y, float *save_mean, float *save_invstd, int n, int c,
                                int hw)
{
    rt_batchnorm_forward_train_mt(x, gamma, beta, run_mean, run_var, momentum, eps, y,
                                  save_mean, save_invstd, n, c, hw, NULL);
}

void rt_batchnorm_forward_eval(const float *x, const float *gamma, const float *beta,
                               const float *run_mean, const float *run_var, float eps,
                               float *y, int n, int c, int hw)
{
    rt_batchnorm_forward_eval_mt(x, gamma, beta, run_mean, run_var, eps, y, n, c, hw, NULL);
}

void rt_batchnorm_backward_train(const float *x, const float *gamma, const float *save_mean,
                                 const float *save_invstd, const float *dy, float *dx,
                                 int accum, float *dgamma, float *dbeta, int n, int c, int hw)
{
    rt_batchnorm_backward_train_mt(x, gamma, save_mean, save_invstd, dy, dx, accum, dgamma,
                                   dbeta, n, c, hw, NULL);
}

void rt_batchnorm_backward_eval(const float *x, const float *gamma, const float *run_mean,
                                const float *run_var, float eps, const float *dy, float *dx,
                                int accum, float *dgamma, float *dbeta, int n, int c, int hw)
{
    rt_batchnorm_backward_eval_mt(x, gamma, run_mean, run_var, eps, dy, dx, accum, dgamma,
                                  dbeta, n, c, hw, NULL);
}
