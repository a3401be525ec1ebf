/* rt_dist_train.c - what data-parallel training adds to rt_train.c, kept here so that the
 * training loop only calls small hooks: this rank's slice of each global batch, the shard
 * that makes batchnorm and dropout see the global batch, the scaling that makes the summed
 * gradient the global-batch mean, the gradient sum started during backward, and the sums
 * of losses and counts. With one rank (or no MPI) every hook leaves the numbers exactly as
 * before. */
#include "rt_dist.h"
#include "rt_dist_train.h"
#include "rt_kernels.h"

#include <stdio.h>
#include <string.h>

/* the gradient sum of the model being trained (one training at a time per process) */
static rt_dist_sum *g_sum;
static const float *g_sum_of;
static size_t g_sum_n;

int rt_dist_train_check(const rt_model *m, char *err)
{
    /* every rank starts from rank 0's weights (they agree for the same seed; this makes sure) */
    if (rt_dist_bcast_f32(m->params, m->nparams) != 0) {
        snprintf(err, RT_ERRLEN, "MPI broadcast of the initial weights failed");
        return -1;
    }
    return 0;
}

void rt_dist_train_slice(int nb, int *lo, int *n)
{
    size_t a, b;
    rt_dist_slice((size_t)nb, rt_dist_rank(), rt_dist_size(), &a, &b);
    *lo = (int)a;
    *n = (int)(b - a);
}

void rt_dist_train_scale(float *dlogits, int n, int k, int global_n)
{
    if (rt_dist_size() <= 1 || n == global_n)
        return;
    /* the loss's gradient is the mean over this rank's n: times n / global_n it is this
     * rank's share of the global mean, and the sum over ranks is the global mean */
    float s = (float)n / (float)global_n;
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++)
        dlogits[i] *= s;
}

static void shard_sum(double *v, size_t n)
{
    if (rt_dist_sum_f64(v, n) != 0)
        rt_dist_abort("MPI sum of batchnorm's statistics failed");
}

static void grads_ready(void *ctx, size_t from)
{
    if (rt_dist_sum_ready(ctx, from) != 0)
        rt_dist_abort("MPI sum of the gradients failed");
}

int rt_dist_train_begin(rt_model *m, int lo, int n, int total)
{
    if (rt_dist_size() <= 1)
        return 0;
    if (!g_sum || g_sum_of != m->grads || g_sum_n != m->nparams) {
        rt_dist_sum_destroy(g_sum);
        g_sum = rt_dist_sum_create(m->grads, m->nparams, 0);
        g_sum_of = m->grads;
        g_sum_n = m->nparams;
        if (!g_sum)
            return -1;
    }
    rt_dist_sum_begin(g_sum);
    m->grads_ready = grads_ready;
    m->grads_ready_ctx = g_sum;
    rt_shard sh = {shard_sum, lo, n, total};
    rt_shard_set(&sh);
    return 0;
}

int rt_dist_train_grads(rt_model *m, int n)
{
    if (rt_dist_size() <= 1)
        return 0;
    rt_shard_set(NULL);
    m->grads_ready = NULL;
    m->grads_ready_ctx = NULL;
    if (n == 0) /* an empty slice (last batch smaller than the ranks): contributes nothing */
        memset(m->grads, 0, sizeof(float) * m->nparams);
    return rt_dist_sum_finish(g_sum);
}

void rt_dist_train_end(rt_model *m)
{
    rt_shard_set(NULL);
    if (m) {
        m->grads_ready = NULL;
        m->grads_ready_ctx = NULL;
    }
    rt_dist_sum_destroy(g_sum);
    g_sum = NULL;
    g_sum_of = NULL;
    g_sum_n = 0;
}

int rt_dist_train_stats(double *loss_sum, long *correct, long *seen, int *stop)
{
    if (rt_dist_size() <= 1)
        return 0;
    double v[4] = { *loss_sum, (double)*correct, (double)*seen, stop && *stop ? 1.0 : 0.0 };
    if (rt_dist_sum_f64(v, 4) != 0)
        return -1;
    *loss_sum = v[0];
    *correct = (long)v[1];
    *seen = (long)v[2];
    if (stop) /* one rank interrupted: all stop after the same batch */
        *stop = v[3] > 0;
    return 0;
}

int rt_dist_eval_sum(double *loss_sum, long *correct, int *confusion, int k)
{
    if (rt_dist_size() <= 1)
        return 0;
    long seen = 0;
    if (rt_dist_train_stats(loss_sum, correct, &seen, NULL) != 0)
        return -1;
    if (!confusion)
        return 0;
    size_t kk = (size_t)k * (size_t)k;
    double buf[4096];
    for (size_t off = 0; off < kk; off += 4096) {
        size_t m = kk - off < 4096 ? kk - off : 4096;
        for (size_t i = 0; i < m; i++)
            buf[i] = confusion[off + i];
        if (rt_dist_sum_f64(buf, m) != 0)
            return -1;
        for (size_t i = 0; i < m; i++)
            confusion[off + i] = (int)buf[i];
    }
    return 0;
}
