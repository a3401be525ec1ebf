/*
 * rt_threads.c - the persistent worker pool behind the parallel kernels.
 *
 * Workers wake when the pool's generation number moves; the caller works as worker 0 and
 * then waits for the others. Both sides first watch the shared counters for a short while
 * (RT_SPIN_US, or the environment's CNNRT_SPIN_US) and only then sleep on a condition
 * variable: a training step hands out hundreds of short tasks, and waking a sleeping thread
 * costs 50-70 us on a virtual machine, more than many of those tasks take. Each worker keeps
 * a scratch buffer between tasks so kernels do not allocate per call.
 */
#include "rt_threads.h"
#include "cnnrt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a waiting side watches before it sleeps, in microseconds. Long enough to span
 * the serial work between two tasks of a step; short enough that an idle pool (data
 * loading, an epoch's report) costs a core for only this long. */
#define RT_SPIN_US 200

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
    atomic_ulong generation;    /* bumped once per task, after task and arg are set */
    atomic_int pending;         /* workers 1..n-1 still running the current task */
    atomic_int stop;
    int sleepers;               /* workers asleep on go (under mu) */
    long spin_ns;               /* how long a waiting side watches before it sleeps */
    rt_task task;
    void *arg;
};

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Watches *v until it differs from `old` or spin_ns pass; returns its last value. */
static unsigned long watch_ulong(atomic_ulong *v, unsigned long old, long spin_ns)
{
    unsigned long cur = atomic_load_explicit(v, memory_order_acquire);
    if (cur != old || spin_ns <= 0)
        return cur;
    long until = now_ns() + spin_ns;
    for (int i = 1;; i++) {
        cpu_relax();
        cur = atomic_load_explicit(v, memory_order_acquire);
        if (cur != old || ((i & 63) == 0 && now_ns() > until))
            return cur;
    }
}

static int watch_pending(atomic_int *v, long spin_ns)
{
    int cur = atomic_load_explicit(v, memory_order_acquire);
    if (cur == 0 || spin_ns <= 0)
        return cur;
    long until = now_ns() + spin_ns;
    for (int i = 1;; i++) {
        cpu_relax();
        cur = atomic_load_explicit(v, memory_order_acquire);
        if (cur == 0 || ((i & 63) == 0 && now_ns() > until))
            return cur;
    }
}

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
        unsigned long g = watch_ulong(&tp->generation, seen, tp->spin_ns);
        if (g == seen) { /* nothing came while watching: sleep until it does */
            pthread_mutex_lock(&tp->mu);
            tp->sleepers++;
            while ((g = atomic_load(&tp->generation)) == seen && !atomic_load(&tp->stop))
                pthread_cond_wait(&tp->go, &tp->mu);
            tp->sleepers--;
            pthread_mutex_unlock(&tp->mu);
        }
        if (atomic_load(&tp->stop))
            return NULL;
        seen = g;
        /* task and arg were written before the generation moved (release/acquire) */
        tp->task(tp->arg, w);

        if (atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&tp->mu); /* the caller may be asleep on done */
            pthread_cond_signal(&tp->done);
            pthread_mutex_unlock(&tp->mu);
        }
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
    atomic_init(&tp->generation, 0);
    atomic_init(&tp->pending, 0);
    atomic_init(&tp->stop, 0);
    tp->spin_ns = RT_SPIN_US * 1000L;
    const char *spin = getenv("CNNRT_SPIN_US");
    if (spin && *spin) {
        char *end;
        long us = strtol(spin, &end, 10);
        if (*end == '\0' && us >= 0 && us <= 1000000)
            tp->spin_ns = us * 1000L;
    }
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
    atomic_store(&tp->stop, 1);
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
        tp->task = task;
        tp->arg = arg;
        atomic_store_explicit(&tp->pending, tp->n - 1, memory_order_relaxed);
        /* under mu, so that a worker going to sleep either sees the new generation or is
         * counted in sleepers and woken */
        pthread_mutex_lock(&tp->mu);
        atomic_fetch_add_explicit(&tp->generation, 1, memory_order_release);
        if (tp->sleepers)
            pthread_cond_broadcast(&tp->go);
        pthread_mutex_unlock(&tp->mu);
    }
    task(arg, &tp->workers[0]);
    if (tp->n > 1 && watch_pending(&tp->pending, tp->spin_ns) > 0) {
        pthread_mutex_lock(&tp->mu);
        while (atomic_load(&tp->pending) > 0)
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
