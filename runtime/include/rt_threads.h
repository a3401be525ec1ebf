/*
 * rt_threads.h - a small persistent pthread pool for the heavy kernels of libcnnrt.
 *
 * A pool of n workers (the calling thread is worker 0) runs one task at a time on all of
 * them; each worker owns a scratch buffer that persists between tasks, so kernels need no
 * malloc per call. How work is split is decided by the kernel from (tid, n) alone, so the
 * same thread count always gives the same partition and, with fixed-order reductions, the
 * same bits.
 */
#ifndef RT_THREADS_H
#define RT_THREADS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt_threads rt_threads;

/* What a task sees: its index, the number of workers, and its own scratch. */
typedef struct rt_worker rt_worker;
typedef void (*rt_task)(void *arg, rt_worker *w);

/* A pool of n workers (n <= 0: one per online core). Returns NULL if out of memory or
 * threads cannot be started (then err, if not NULL, holds a message of RT_ERRLEN bytes).
 * On Linux, when n equals the number of cores the calling thread may run on, worker i >= 1
 * is pinned to the i-th of them (not with CNNRT_PIN=0; see cnnrun(1)). */
rt_threads *rt_threads_create(int n, char *err);
void rt_threads_destroy(rt_threads *tp);
/* Number of workers; 1 for a NULL pool. */
int rt_threads_count(const rt_threads *tp);
/* Number of online cores (at least 1). */
int rt_threads_cores(void);

/* Runs task(arg, w) once on every worker and returns when all have finished. The caller
 * runs worker 0. With tp == NULL the task runs once, serially, with a temporary scratch.
 * Not reentrant: a task must not call rt_threads_run on the same pool. */
void rt_threads_run(rt_threads *tp, rt_task task, void *arg);

/* 1 when the pool's threads now watch for their next task before they sleep (see
 * CNNRT_SPIN_US in cnnrun(1)); 0 when watching is off, or paused because the threads have
 * lately had less CPU time than wall-clock time. For tests and diagnostics. */
int rt_threads_watching(rt_threads *tp);

int rt_worker_id(const rt_worker *w);
int rt_worker_count(const rt_worker *w);
/* This worker's scratch of at least bytes (64-byte aligned), grown as needed; its content
 * is not preserved when it grows. Returns NULL only if out of memory. */
void *rt_worker_scratch(rt_worker *w, size_t bytes);
/* Grows every worker's scratch to at least bytes now, so that later tasks asking for no
 * more cannot fail. Returns 0, or -1 if out of memory. Not while a task runs. */
int rt_threads_reserve(rt_threads *tp, size_t bytes);
/* Worker t's scratch as left by the last task (for fixed-order reductions after a run);
 * NULL for a NULL pool. */
void *rt_threads_scratch_of(rt_threads *tp, int t);

/* Splits [0, total) into n nearly equal parts; part i is [*lo, *hi). */
static inline void rt_split_range(int total, int n, int i, int *lo, int *hi)
{
    int q = total / n, r = total % n;
    *lo = i * q + (i < r ? i : r);
    *hi = *lo + q + (i < r);
}

/* Worker w's part of [0, n) when it is cut into whole blocks of `block` elements (the last
 * block may be short), as nearly equal in blocks as possible: [*lo, *hi), empty when
 * *lo == *hi. Elementwise loops use it so that vector blocks never straddle two workers. */
static inline void rt_worker_blocks(const rt_worker *w, size_t n, size_t block, size_t *lo,
                                    size_t *hi)
{
    size_t nw = (size_t)rt_worker_count(w), t = (size_t)rt_worker_id(w);
    size_t blocks = (n + block - 1) / block, per = blocks / nw, extra = blocks % nw;
    *lo = block * (t * per + (t < extra ? t : extra));
    *hi = *lo + block * (per + (t < extra));
    if (*hi > n)
        *hi = n;
    if (*lo > *hi)
        *lo = *hi;
}

/* Elementwise work on fewer values than this runs on the calling thread: waking the
 * workers would cost more than it saves. */
#define RT_SERIAL_BELOW 65536

#ifdef __cplusplus
}
#endif
#endif
