/*
 * rt_batchnorm.c - per-channel batch normalisation (BatchNorm2d/1d), forward and backward.
 *
 * The work is split over the pool's workers by images (see run_blocks), so that each core
 * reads what it wrote in the layer before. Each channel's statistics are summed in a fixed
 * order (per image, RT_VEC float partial sums and their total in double; then the images'
 * totals in image order), so the bits do not depend on the split. The variance comes from
 * each image's squared deviations from its own mean, moved exactly to the batch's mean
 * (dev_total): one pass over x from memory, as exact as deviations from the batch's mean.
 * Training mode normalises with the batch's biased variance and moves the running statistics
 * with PyTorch's rule (unbiased variance); evaluation mode uses the running ones. The _act
 * forms run the activation that follows (relu and the others computed from their output) on
 * each block while it is in cache. With a shard set (data-parallel training, rt_shard in
 * rt_kernels.h) the training-mode statistics and the input gradient's sums are the whole
 * global batch's: each is summed here, then over the shards (sync batchnorm).
 */
#include "rt_kernels.h"
#include "rt_simd.h"

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
    double *part;       /* 3 n c: one (image, channel) block's sums, at s*c+ch, n*c+s*c+ch and
                         * 2*n*c+s*c+ch (the third only in the training forward) */
    double *tot;        /* 2 c: their totals over the images (and the shards) */
    float *k;           /* 3 c: per channel, the forward's y = k0 x + k1, or the backward's
                         * dx = k0 dy - k1 (x - mean) - k2 */
} bn_job;

/* sum over a block of (x - m)^2, and of x - m into *e */
static double sum_sqdev(const float *x, size_t n, float m, double *e)
{
    float part[RT_VEC] = {0}, lin[RT_VEC] = {0};
    size_t i = 0;
    for (; i + RT_VEC <= n; i += RT_VEC)
        for (int k = 0; k < RT_VEC; k++) {
            part[k] += (x[i + k] - m) * (x[i + k] - m);
            lin[k] += x[i + k] - m;
        }
    double s = 0.0, l = 0.0;
    for (int k = 0; k < RT_VEC; k++) {
        s += part[k];
        l += lin[k];
    }
    for (; i < n; i++) {
        s += (double)(x[i] - m) * (x[i] - m);
        l += x[i] - m;
    }
    *e = l;
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

/* The work is split over the workers as (image, channel) blocks, image-major, in contiguous
 * runs: each worker takes the same images as the convolutions and elementwise steps around
 * it, whose outputs are still in its core's cache. Each pass stores one block's sums (in
 * double), and the caller adds them up over the images in image order between passes, so
 * the bits depend neither on the split nor on the thread count. */
typedef void (*bn_block_fn)(bn_job *j, int s, int ch, size_t off);

static void run_blocks(bn_job *j, rt_worker *w, bn_block_fn fn)
{
    const size_t hw = (size_t)j->hw;
    int lo, hi;
    rt_split_range(j->n * j->c, rt_worker_count(w), rt_worker_id(w), &lo, &hi);
    for (int it = lo; it < hi; it++)
        fn(j, it / j->c, it % j->c, (size_t)it * hw);
}

/* tot[t * c + ch] = the sum over the images of part[t * n * c + s * c + ch], t = 0, 1 */
static void total_images(bn_job *j, int which)
{
    const int n = j->n, c = j->c;
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += j->part[(size_t)which * n * c + (size_t)i * c + ch];
        j->tot[(size_t)which * c + ch] = s;
    }
}

/* The mean of a block of k values with sum S, rounded to float: the m its deviations are
 * taken from (block_stats) and that sum_total and dev_total must use bit for bit. */
static double block_mean(double S, int k)
{
    return (float)(S / k);
}

/* A block's sum, and the sums of its deviations from its own mean m (rounded to float) and
 * of their squares: the second pass reads the block while it is in cache, so the training
 * forward reads x from memory once for its statistics (a pass for the sum and one for the
 * deviations from the batch's mean, before). dev_total puts the blocks together. */
RT_CLONES static void block_stats(bn_job *j, int s, int ch, size_t off)
{
    const size_t nc = (size_t)j->n * j->c, at = (size_t)s * j->c + ch;
    const double sum = rt_sum(j->x + off, (size_t)j->hw);
    j->part[at] = sum;
    j->part[nc + at] = sum_sqdev(j->x + off, (size_t)j->hw, (float)block_mean(sum, j->hw),
                                 &j->part[2 * nc + at]);
}

/* tot[ch] = the images' sums, each as k m + E (its k values' rounded mean m and their
 * deviations' sum E): far more exact than the sum itself, whose float partial sums of values
 * far from zero round (at a mean of 1000 the mean came out 2e-4 off, and the variance of a
 * spread of 0.001 then 5 % high), summed in image order. */
static void sum_total(bn_job *j)
{
    const int n = j->n, c = j->c;
    const size_t nc = (size_t)n * c;
    const double k = (double)j->hw;
    for (int ch = 0; ch < c; ch++) {
        double t = 0.0;
        for (int i = 0; i < n; i++) {
            const size_t at = (size_t)i * c + ch;
            t += k * block_mean(j->part[at], j->hw) + j->part[2 * nc + at];
        }
        j->tot[ch] = t;
    }
}

/* tot[c + ch] = the images' squared deviations from the batch's mean mu (tot[ch] / cnt):
 * for a block of k values whose deviations from m sum to E and their squares to D,
 * sum (x - mu)^2 = D + 2 (m - mu) E + k (m - mu)^2, exactly; summed in image order, like
 * total_images. E, not S - k m: the block sum S carries the rounding of values far from
 * zero, which the cross term would carry into the variance (1e-4 of it at a mean of 1000
 * and a spread of 0.02, against 1e-6). */
static void dev_total(bn_job *j)
{
    const int n = j->n, c = j->c;
    const size_t nc = (size_t)n * c;
    const double k = (double)j->hw;
    for (int ch = 0; ch < c; ch++) {
        const double mu = j->tot[ch] / j->cnt;
        double t = 0.0;
        for (int i = 0; i < n; i++) {
            const size_t at = (size_t)i * c + ch;
            const double dm = block_mean(j->part[at], j->hw) - mu;
            t += j->part[nc + at] + 2.0 * dm * j->part[2 * nc + at] + k * dm * dm;
        }
        j->tot[(size_t)c + ch] = t;
    }
}

RT_CLONES static void block_affine(bn_job *j, int s, int ch, size_t off)
{
    (void)s;
    affine(j->x + off, j->k[ch], j->k[j->c + ch], j->y + off, (size_t)j->hw);
    if (j->act != RT_ACT_NONE)
        rt_act_forward(j->act, j->alpha, j->y + off, j->y + off, (size_t)j->hw);
}

/* The fused activation's gradient, then the block's sums of dy and dy * (x - mean). */
RT_CLONES static void block_bwd_sums(bn_job *j, int s, int ch, size_t off)
{
    const size_t hw = (size_t)j->hw;
    if (j->act != RT_ACT_NONE)
        rt_act_backward(j->act, j->alpha, j->act_y + off, j->act_dy + off, j->act_dy + off,
                        hw, 0);
    const float *xp = j->x + off, *dp = j->dy + off, mean = j->mean[ch];
    float pa[RT_VEC] = {0}, pb[RT_VEC] = {0};
    size_t i = 0;
    for (; i + RT_VEC <= hw; i += RT_VEC)
        for (int k = 0; k < RT_VEC; k++) {
            pa[k] += dp[i + k];
            pb[k] += dp[i + k] * (xp[i + k] - mean);
        }
    double a = 0.0, b = 0.0;
    for (int k = 0; k < RT_VEC; k++) {
        a += pa[k];
        b += pb[k];
    }
    for (; i < hw; i++) {
        a += dp[i];
        b += (double)dp[i] * (xp[i] - mean);
    }
    j->part[(size_t)s * j->c + ch] = a;
    j->part[(size_t)(j->n + s) * j->c + ch] = b;
}

RT_CLONES static void block_dx(bn_job *j, int s, int ch, size_t off)
{
    (void)s;
    const size_t hw = (size_t)j->hw;
    const float k = j->k[ch], k2 = j->k[j->c + ch], k3 = j->k[2 * j->c + ch];
    const float mean = j->mean[ch];
    const float *xp = j->x + off, *dp = j->dy + off;
    float *op = j->dx + off;
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

static void stats_task(void *arg, rt_worker *w) { run_blocks(arg, w, block_stats); }
static void affine_task(void *arg, rt_worker *w) { run_blocks(arg, w, block_affine); }
static void bwd_sums_task(void *arg, rt_worker *w) { run_blocks(arg, w, block_bwd_sums); }
static void dx_task(void *arg, rt_worker *w) { run_blocks(arg, w, block_dx); }

/* The job's part, tot and k arrays in one allocation (freed by bn_free); -1 when out of
 * memory, before anything is written: the caller reports it as the layer's failure. */
static int bn_alloc(bn_job *j)
{
    const size_t nc = (size_t)j->n * j->c, c = (size_t)j->c;
    j->part = malloc((3 * nc + 2 * c) * sizeof *j->part + 3 * c * sizeof *j->k);
    if (!j->part)
        return -1;
    j->tot = j->part + 3 * nc;
    j->k = (float *)(j->tot + 2 * c);
    return 0;
}

static void bn_free(bn_job *j)
{
    free(j->part);
    j->part = j->tot = NULL;
    j->k = NULL;
}

/* 1/sqrt(var + eps) of a running variance (evaluation mode and the fold) */
static double running_invstd(float var, float eps)
{
    return 1.0 / sqrt((double)var + eps);
}

/* The 1/std a backward uses: the batch's saved one in training, else the running one's. */
static double bwd_invstd(const bn_job *j, int ch)
{
    return j->train ? j->invstd[ch] : running_invstd(j->run_var[ch], j->eps);
}

/* The shard to sum the statistics over (sync batchnorm): only in training, and only when
 * one is set with a sum; NULL otherwise. */
static const rt_shard *sum_shard(const bn_job *j)
{
    const rt_shard *sh = j->train ? rt_shard_get() : NULL;
    return sh && sh->sum ? sh : NULL;
}

/* Forward: in training, the mean, then the squared deviations from it, each summed over the
 * images (and, with a shard set, over the shards: sync batchnorm), then the normalisation;
 * in evaluation, the normalisation with the running statistics. */
static int bn_forward(bn_job *j, rt_threads *tp)
{
    const rt_shard *sh = sum_shard(j);
    const int c = j->c;
    if (bn_alloc(j) != 0)
        return -1;
    if (j->train) {
        j->cnt = (double)(sh ? sh->total : j->n) * j->hw;
        rt_threads_run(tp, stats_task, j);
        sum_total(j);
        if (sh)
            sh->sum(j->tot, (size_t)c);
        dev_total(j); /* around the global batch's mean: each shard's, then their sum */
        if (sh)
            sh->sum(j->tot + c, (size_t)c);
    }
    for (int ch = 0; ch < c; ch++) {
        double mean, invstd;
        if (j->train) {
            mean = j->tot[ch] / j->cnt;
            double var = j->tot[c + ch] / j->cnt;
            invstd = 1.0 / sqrt(var + j->eps);
            double unbiased = j->cnt > 1.0 ? var * j->cnt / (j->cnt - 1.0) : var;
            j->run_mean[ch] =
                (float)((1.0 - j->momentum) * j->run_mean[ch] + j->momentum * mean);
            j->run_var_out[ch] =
                (float)((1.0 - j->momentum) * j->run_var_out[ch] + j->momentum * unbiased);
            j->save_mean[ch] = (float)mean;
            j->save_invstd[ch] = (float)invstd;
        } else {
            mean = j->mean[ch];
            invstd = running_invstd(j->run_var[ch], j->eps);
        }
        j->k[ch] = (float)(j->gamma[ch] * invstd);
        j->k[c + ch] = (float)(j->beta[ch] - mean * j->gamma[ch] * invstd);
    }
    rt_threads_run(tp, affine_task, j);
    bn_free(j);
    return 0;
}

/* Backward: the fused activation's gradient and the sums of dy and dy * (x - mean) over the
 * images, which give the parameter gradients (this shard's: they are summed over the shards
 * with the other gradients later); in training the sums are then summed over the shards for
 * the input gradient. */
static int bn_backward(bn_job *j, rt_threads *tp)
{
    const rt_shard *sh = sum_shard(j);
    const int c = j->c;
    if (bn_alloc(j) != 0)
        return -1;
    j->cnt = (double)(sh ? sh->total : j->n) * j->hw;
    rt_threads_run(tp, bwd_sums_task, j);
    total_images(j, 0);
    total_images(j, 1);
    for (int ch = 0; ch < c; ch++) {
        double invstd = bwd_invstd(j, ch);
        j->dgamma[ch] = (float)(j->tot[c + ch] * invstd); /* sum dy * xhat */
        j->dbeta[ch] = (float)j->tot[ch];
    }
    if (sh)
        sh->sum(j->tot, 2 * (size_t)c);
    if (j->dx) {
        for (int ch = 0; ch < c; ch++) {
            /* training: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)), which is
             * k dy - k2 (x - mean) - k3; evaluation: dx = gamma invstd dy */
            double invstd = bwd_invstd(j, ch);
            j->k[ch] = (float)(j->gamma[ch] * invstd);
            j->k[c + ch] = j->k[2 * c + ch] = 0.0f;
            if (j->train) {
                j->k[c + ch] = (float)(j->gamma[ch] * invstd * invstd * invstd *
                                       j->tot[c + ch] / j->cnt);
                j->k[2 * c + ch] = (float)(j->gamma[ch] * invstd * j->tot[ch] / j->cnt);
            }
        }
        rt_threads_run(tp, dx_task, j);
    }
    bn_free(j);
    return 0;
}

void rt_batchnorm_fold(const float *w, const float *bias, int oc, size_t per_oc,
                       const float *gamma, const float *beta, const float *run_mean,
                       const float *run_var, float eps, float *wf, float *bf)
{
    for (int o = 0; o < oc; o++) {
        double invstd = running_invstd(run_var[o], eps), a = gamma[o] * invstd;
        for (size_t k = 0; k < per_oc; k++)
            wf[(size_t)o * per_oc + k] = (float)(w[(size_t)o * per_oc + k] * a);
        bf[o] = (float)(((bias ? (double)bias[o] : 0.0) - run_mean[o]) * a + beta[o]);
    }
}

int rt_batchnorm_forward_train_mt(const float *x, const float *gamma, const float *beta,
                                  float *run_mean, float *run_var, float momentum, float eps,
                                  float *y, float *save_mean, float *save_invstd, int n,
                                  int c, int hw, rt_threads *tp)
{
    bn_job j = {0};
    j.x = x, j.gamma = gamma, j.beta = beta, j.run_mean = run_mean, j.run_var_out = run_var;
    j.momentum = momentum, j.eps = eps, j.y = y, j.save_mean = save_mean;
    j.save_invstd = save_invstd, j.n = n, j.c = c, j.hw = hw, j.train = 1;
    return bn_forward(&j, tp);
}

int rt_batchnorm_forward_eval_mt(const float *x, const float *gamma, const float *beta,
                                 const float *run_mean, const float *run_var, float eps,
                                 float *y, int n, int c, int hw, rt_threads *tp)
{
    bn_job j = {0};
    j.x = x, j.gamma = gamma, j.beta = beta, j.mean = run_mean, j.run_var = run_var;
    j.eps = eps, j.y = y, j.n = n, j.c = c, j.hw = hw;
    return bn_forward(&j, tp);
}

int rt_batchnorm_backward_train_mt(const float *x, const float *gamma,
                                   const float *save_mean, const float *save_invstd,
                                   const float *dy, float *dx, int accum, float *dgamma,
                                   float *dbeta, int n, int c, int hw, rt_threads *tp)
{
    bn_job j = {0};
    j.x = x, j.gamma = gamma, j.mean = save_mean, j.invstd = save_invstd, j.dy = dy;
    j.dx = dx, j.accum = accum, j.dgamma = dgamma, j.dbeta = dbeta, j.n = n, j.c = c;
    j.hw = hw, j.train = 1;
    return bn_backward(&j, tp);
}

int rt_batchnorm_backward_eval_mt(const float *x, const float *gamma, const float *run_mean,
                                  const float *run_var, float eps, const float *dy, float *dx,
                                  int accum, float *dgamma, float *dbeta, int n, int c,
                                  int hw, rt_threads *tp)
{
    bn_job j = {0};
    j.x = x, j.gamma = gamma, j.mean = run_mean, j.run_var = run_var, j.eps = eps, j.dy = dy;
    j.dx = dx, j.accum = accum, j.dgamma = dgamma, j.dbeta = dbeta, j.n = n, j.c = c;
    j.hw = hw;
    return bn_backward(&j, tp);
}

int rt_batchnorm_act_forward_mt(int training, const float *x, const float *gamma,
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
    return bn_forward(&j, tp);
}

int rt_batchnorm_act_backward_mt(int training, const float *x, const float *gamma,
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
    return bn_backward(&j, tp);
}

int rt_batchnorm_forward_train(const float *x, const float *gamma, const float *beta,
                               float *run_mean, float *run_var, float momentum, float eps,
                               float *y, float *save_mean, float *save_invstd, int n, int c,
                               int hw)
{
    return rt_batchnorm_forward_train_mt(x, gamma, beta, run_mean, run_var, momentum, eps, y,
                                         save_mean, save_invstd, n, c, hw, NULL);
}

int rt_batchnorm_forward_eval(const float *x, const float *gamma, const float *beta,
                              const float *run_mean, const float *run_var, float eps,
                              float *y, int n, int c, int hw)
{
    return rt_batchnorm_forward_eval_mt(x, gamma, beta, run_mean, run_var, eps, y, n, c, hw, NULL);
}

int rt_batchnorm_backward_train(const float *x, const float *gamma, const float *save_mean,
                                const float *save_invstd, const float *dy, float *dx,
                                int accum, float *dgamma, float *dbeta, int n, int c, int hw)
{
    return rt_batchnorm_backward_train_mt(x, gamma, save_mean, save_invstd, dy, dx, accum, dgamma,
                                          dbeta, n, c, hw, NULL);
}

int rt_batchnorm_backward_eval(const float *x, const float *gamma, const float *run_mean,
                               const float *run_var, float eps, const float *dy, float *dx,
                               int accum, float *dgamma, float *dbeta, int n, int c, int hw)
{
    return rt_batchnorm_backward_eval_mt(x, gamma, run_mean, run_var, eps, dy, dx, accum, dgamma,
                                         dbeta, n, c, hw, NULL);
}
