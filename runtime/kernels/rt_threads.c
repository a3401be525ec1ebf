/*
 * rt_threads.c - the persistent worker pool behind the parallel kernels.
 *
 * Workers sleep on a condition variable and wake when the pool's generation number moves;
 * the caller works as worker 0 and then waits for the others. Each worker keeps a scratch
 * buffer between tasks so kernels do not allocate per call.
 */
#include "rt_threads.h"
#include "cnnrt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rt_worker {
    int tid, n;
    void *scratch;
    size_t scratch_len;
};

typedef struct {
    rt_threads *tp;
    int tid;
} worker_start;

struct rt_threads {
    int n;
    rt_worker *workers;         /* n of them; [0] is the caller's */
    pthread_t *threads;         /* n - 1 of them */
    worker_start *starts;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long generation;   /* bumped once per task */
    int pending;                /* workers 1..n-1 still running the current task */
    int stop;
    rt_task task;
    void *arg;
};

int rt_threads_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static void *worker_main(void *p)
{
    worker_start *ws = p;
    rt_threads *tp = ws->tp;
    rt_worker *w = &tp->workers[ws->tid];
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&tp->mu);
        while (tp->generation == seen && !tp->stop)
            pthread_cond_wait(&tp->go, &tp->mu);
        if (tp->stop) {
            pthread_mutex_unlock(&tp->mu);
            return NULL;
        }
        seen = tp->generation;
        rt_task task = tp->task;
        void *arg = tp->arg;
        pthread_mutex_unlock(&tp->mu);

        task(arg, w);

        pthread_mutex_lock(&tp->mu);
        if (--tp->pending == 0)
            pthread_cond_signal(&tp->done);
        pthread_mutex_unlock(&tp->mu);
    }
}

rt_threads *rt_threads_create(int n, char *err)
{
    if (n <= 0)
        n = rt_threads_cores();
    rt_threads *tp = calloc(1, sizeof *tp);
    if (!tp) {
        if (err)
            snprintf(err, RT_ERRLEN, "out of memory creating a pool of %d threads", n);
        return NULL;
    }
    tp->n = n;
    tp->workers = calloc((size_t)n, sizeof *tp->workers);
    tp->threads = calloc((size_t)n, sizeof *tp->threads);
    tp->starts = calloc((size_t)n, sizeof *tp->starts);
    if (!tp->workers || !tp->threads || !tp->starts) {
        free(tp->workers);
        free(tp->threads);
        free(tp->starts);
        free(tp);
        if (err)
            snprintf(err, RT_ERRLEN, "out of memory creating a pool of %d threads", n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        tp->workers[i].tid = i;
        tp->workers[i].n = n;
    }
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->go, NULL);
    pthread_cond_init(&tp->done, NULL);
    for (int i = 1; i < n; i++) {
        tp->starts[i].tp = tp;
        tp->starts[i].tid = i;
        int rc = pthread_create(&tp->threads[i - 1], NULL, worker_main, &tp->starts[i]);
        if (rc != 0) {
            if (err)
                snprintf(err, RT_ERRLEN, "cannot start worker thread %d of %d: %s", i, n,
                         strerror(rc));
            tp->n = i; /* only workers 1..i-1 exist: stop and join just those */
            rt_threads_destroy(tp);
            return NULL;
        }
    }
    return tp;
}

void rt_threads_destroy(rt_threads *tp)
{
    if (!tp)
        return;
    pthread_mutex_lock(&tp->mu);
    tp->stop = 1;
    pthread_cond_broadcast(&tp->go);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 1; i < tp->n; i++)
        pthread_join(tp->threads[i - 1], NULL);
    for (int i = 0; i < tp->n; i++)
        free(tp->workers[i].scratch);
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->go);
    pthread_cond_destroy(&tp->done);
    free(tp->workers);
    free(tp->threads);
    free(tp->starts);
    free(tp);
}

int rt_threads_count(const rt_threads *tp)
{
    return tp ? tp->n : 1;
}

void rt_threads_run(rt_threads *tp, rt_task task, void *arg)
{
    if (!tp) {
        rt_worker w = {0, 1, NULL, 0};
        task(arg, &w);
        free(w.scratch);
        return;
    }
    if (tp->n > 1) {
        pthread_mutex_lock(&tp->mu);
        tp->task = task;
        tp->arg = arg;
        tp->pending = tp->n - 1;
        tp->generation++;
        pthread_cond_broadcast(&tp->go);
        pthread_mutex_unlock(&tp->mu);
    }
    task(arg, &tp->workers[0]);
    if (tp->n > 1) {
        pthread_mutex_lock(&tp->mu);
        while (tp->pending > 0)
            pthread_cond_wait(&tp->done, &tp->mu);
        pthread_mutex_unlock(&tp->mu);
    }
}

int rt_worker_id(const rt_worker *w)
{
    return w->tid;
}

int rt_worker_count(const rt_worker *w)
{
    return w->n;
}

void *rt_worker_scratch(rt_worker *w, size_t bytes)
{
    if (bytes == 0)
        bytes = 64;
    if (w->scratch_len < bytes) {
        void *p = NULL;
        free(w->scratch);
        w->scratch = NULL;
        w->scratch_len = 0;
        if (posix_memalign(&p, 64, bytes) != 0)
            return NULL;
        w->scratch = p;
        w->scratch_len = bytes;
    }
    return w->scratch;
}

int rt_threads_reserve(rt_threads *tp, size_t bytes)
{
    if (!tp)
        return 0;
    for (int i = 0; i < tp->n; i++)
        if (!rt_worker_scratch(&tp->workers[i], bytes))
            return -1;
    return 0;
}

void *rt_threads_scratch_of(rt_threads *tp, int t)
{
    if (!tp || t < 0 || t >= tp->n)
        return NULL;
    return tp->workers[t].scratch;
}
