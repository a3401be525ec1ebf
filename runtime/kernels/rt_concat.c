/*
 * rt_concat.c - channel concatenation of two tensors (torch.cat(dim=1)) and its backward,
 * split over a thread pool.
 *
 * Per image the output holds a's channels then b's. The work is a list of channel rows of
 * hw values, each copied (or added) whole, so any pool size gives the same bits; arrays
 * under RT_SERIAL_BELOW values run on the calling thread.
 */
#include "rt_kernels.h"

typedef struct {
    const float *a, *b; /* forward: the two inputs */
    const float *dy;    /* backward: the gradient of the output */
    float *y, *da, *db;
    int ca, cb, hw, n;
    int acc_a, acc_b;
} cat_job;

/* dst (+)= src over hw values. */
static void row_put(float *dst, const float *src, int hw, int accum)
{
    if (accum)
        rt_grad_pass(src, dst, (size_t)hw, 1);
    else
        memcpy(dst, src, (size_t)hw * sizeof *dst);
}

/* Row r of the output (image r / c, channel r % c) and where it comes from or goes to. */
static void cat_fwd_task(void *arg, rt_worker *w)
{
    const cat_job *j = arg;
    const int c = j->ca + j->cb;
    int lo, hi;
    rt_split_range(j->n * c, rt_worker_count(w), rt_worker_id(w), &lo, &hi);
    for (int r = lo; r < hi; r++) {
        const int s = r / c, ch = r % c;
        const float *src = ch < j->ca ? j->a + ((size_t)s * j->ca + ch) * j->hw
                                      : j->b + ((size_t)s * j->cb + (ch - j->ca)) * j->hw;
        memcpy(j->y + (size_t)r * j->hw, src, (size_t)j->hw * sizeof *j->y);
    }
}

static void cat_bwd_task(void *arg, rt_worker *w)
{
    const cat_job *j = arg;
    const int c = j->ca + j->cb;
    int lo, hi;
    rt_split_range(j->n * c, rt_worker_count(w), rt_worker_id(w), &lo, &hi);
    for (int r = lo; r < hi; r++) {
        const int s = r / c, ch = r % c;
        const float *src = j->dy + (size_t)r * j->hw;
        if (ch < j->ca) {
            if (j->da)
                row_put(j->da + ((size_t)s * j->ca + ch) * j->hw, src, j->hw, j->acc_a);
        } else if (j->db) {
            row_put(j->db + ((size_t)s * j->cb + (ch - j->ca)) * j->hw, src, j->hw, j->acc_b);
        }
    }
}

static rt_threads *cat_pool(int c, int hw, int n, rt_threads *tp)
{
    return (size_t)n * (size_t)c * (size_t)hw >= RT_SERIAL_BELOW ? tp : NULL;
}

void rt_concat_forward_mt(const float *a, int ca, const float *b, int cb, int hw, float *y,
                          int n, rt_threads *tp)
{
    if (n <= 0 || hw <= 0 || ca + cb <= 0)
        return;
    cat_job j = {a, b, NULL, y, NULL, NULL, ca, cb, hw, n, 0, 0};
    rt_threads_run(cat_pool(ca + cb, hw, n, tp), cat_fwd_task, &j);
}

void rt_concat_backward_mt(const float *dy, int ca, int cb, int hw, float *da, int acc_a,
                           float *db, int acc_b, int n, rt_threads *tp)
{
    if (n <= 0 || hw <= 0 || ca + cb <= 0 || (!da && !db))
        return;
    cat_job j = {NULL, NULL, dy, NULL, da, db, ca, cb, hw, n, acc_a, acc_b};
    rt_threads_run(cat_pool(ca + cb, hw, n, tp), cat_bwd_task, &j);
}
