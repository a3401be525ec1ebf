/*
 * rt_data_pool.c - the worker pool the loaders decode and convert images with: how many
 * threads a load uses, and a run of n jobs where workers take the next index from a shared
 * counter. Its own file so that the IDX reader and the image decoder share it without one
 * including the other.
 */
#include "rt_data_internal.h"
#include "rt_threads.h"

#include <stdatomic.h>

int rt_data_threads(const rt_load_opts *opts, int jobs)
{
    int t = opts && opts->threads > 0 ? opts->threads : rt_threads_cores();
    if (t > 64)
        t = 64;
    if (t > jobs)
        t = jobs;
    return t < 1 ? 1 : t;
}

/* Images differ in cost (frame sizes, formats), so workers take the next index from a
 * shared counter rather than fixed ranges; the result does not depend on who took what. */
typedef struct {
    atomic_int next;
    int n;
    void (*job)(void *ctx, int i);
    void *ctx;
} pool_job;

static void pool_task(void *arg, rt_worker *w)
{
    (void)w;
    pool_job *p = arg;
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n)
            break;
        p->job(p->ctx, i);
    }
}

void rt_pool_run(int n, int nthreads, void (*job)(void *ctx, int i), void *ctx)
{
    pool_job p;
    atomic_init(&p.next, 0);
    p.n = n;
    p.job = job;
    p.ctx = ctx;
    /* A pool that cannot be started only means working alone (a NULL pool runs serially). */
    rt_threads *tp = nthreads > 1 ? rt_threads_create(nthreads, NULL) : NULL;
    rt_threads_run(tp, pool_task, &p);
    rt_threads_destroy(tp);
}
