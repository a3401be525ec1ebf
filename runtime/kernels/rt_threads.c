/*
 * rt_threads.c - the persistent worker pool behind the parallel kernels.
 *
 * Workers wake when the pool's generation number moves; the caller works as worker 0 and
 * then waits for the others. Both sides first watch the shared counters for a short while
 * (RT_SPIN_US, or the environment's CNNRT_SPIN_US) and only then sleep on a condition
 * variable: a training step hands out hundreds of short tasks, and waking a sleeping thread
 * costs 50-70 us on a virtual machine, more than many of those tasks take. Watching only pays
 * while each thread has a core: when tasks take longer on the clock than on the thread's CPU
 * clock, other programs are taking turns on the cores, and a watching thread would keep the
 * scheduler from moving the awaited one onto its core; the pool then sleeps at once for a
 * while (RT_CROWDED_MS). Each worker keeps a scratch buffer between tasks so kernels do not
 * allocate per call.
 * A pool with as many threads as the process may use cores pins worker i (i >= 1) to the
 * i-th of those cores (CNNRT_PIN=0: not): a worker woken on the core of the thread that
 * woke it otherwise shares that core until the kernel moves it, and on a 2-core virtual
 * machine that was seen to halve the whole run of a small network (Fashion's CNN, batch 32:
 * 9 runs in 16 at 35-41k images/s in inference instead of 64-68k; 1 in 16 pinned). The
 * caller (worker 0) is left free, so that a thread the program starts later inherits its
 * mask; a task that finds it on a worker's core moves it to the free one (keep_caller_free).
 */
#define _GNU_SOURCE 1 /* sched_getaffinity, pthread_attr_setaffinity_np (Linux) */
#include "rt_threads.h"
#include "cnnrt.h"

#include <pthread.h>
#include <sched.h>
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
/* Each waiting side adapts its watch: a wait that ends while watching doubles the next
 * watch (up to the pool's), one that has to sleep quarters it (down to this). When the
 * machine has more runnable threads than cores, the awaited thread is often not running,
 * watching only burns the core it needs, and the watch shrinks to almost nothing. */
#define RT_SPIN_MIN_NS 2000L

/* A thread that got less than this share of the wall-clock time of its last tasks on its CPU
 * clock (RT_PROBE_TASKS tasks, at least RT_PROBE_MIN_NS in all) marks the machine crowded,
 * and nobody watches for RT_CROWDED_MS, twice as long each time it is found crowded again
 * within twice the last pause, up to RT_CROWDED_MAX_MS. The first pause is short: the two
 * threads of a new pool often start on one core, which looks the same for a moment. */
#define RT_PROBE_TASKS 32
#define RT_PROBE_MIN_NS 500000L
#define RT_PROBE_SHARE 0.7
#define RT_CROWDED_MS 5
#define RT_CROWDED_MAX_MS 3200
#define RT_PROBE_MAX_NS 250000000L

static long adapt_spin(long cur, long max, int caught)
{
    if (max <= 0)
        return 0;
    if (caught)
        return cur * 2 > max ? max : cur * 2;
    return cur / 4 < RT_SPIN_MIN_NS ? RT_SPIN_MIN_NS : cur / 4;
}

/* Wall-clock and CPU time of a thread's recent tasks. */
typedef struct {
    long mark_wall, mark_cpu;   /* the start of the current interval */
    long wall, cpu;             /* summed over the intervals since the last check */
    int tasks;
} crowd_probe;

struct rt_worker {
    int tid, n;
    void *scratch;
    size_t scratch_len;
    crowd_probe probe;
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
    atomic_ulong pending;       /* workers 1..n-1 still running the current task */
    atomic_int stop;
    int sleepers;               /* workers asleep on go (under mu) */
    long spin_ns;               /* how long a waiting side may watch before it sleeps */
    long caller_spin_ns;        /* the caller's current watch (adapt_spin) */
    atomic_long crowded_until;  /* CLOCK_MONOTONIC ns: nobody watches before it */
    atomic_long crowded_ns;     /* the length of the last such pause */
    rt_task task;
    void *arg;
    int caller_core;            /* the core the workers leave free (pinned pools), or -1 */
#ifdef __linux__
    cpu_set_t worker_cores;     /* the cores the workers are pinned to */
#endif
};

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static long thread_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/* The watch a side may use now: none while the machine is marked crowded. */
static long watch_budget(rt_threads *tp, long spin)
{
    if (spin <= 0)
        return 0;
    long until = atomic_load_explicit(&tp->crowded_until, memory_order_relaxed);
    return until && now_ns() < until ? 0 : spin;
}

/* Starts a new measuring interval of w's probe (after a sleep, which is not crowding). */
static void probe_mark(rt_worker *w)
{
    w->probe.mark_wall = now_ns();
    w->probe.mark_cpu = thread_cpu_ns();
}

/* Ends w's measuring interval (the thread has not slept since the mark) and, every
 * RT_PROBE_TASKS of them, checks whether it had its core to itself: see the top of the file.
 * An interval longer than RT_PROBE_MAX_NS is left out (the caller did something else: I/O,
 * waiting for data). */
static void probe_point(rt_threads *tp, rt_worker *w)
{
    crowd_probe *p = &w->probe;
    long wall = now_ns(), cpu = thread_cpu_ns();
    if (p->mark_wall && wall - p->mark_wall < RT_PROBE_MAX_NS) {
        p->wall += wall - p->mark_wall;
        p->cpu += cpu - p->mark_cpu;
        p->tasks++;
    }
    p->mark_wall = wall;
    p->mark_cpu = cpu;
    if (p->tasks < RT_PROBE_TASKS || p->wall < RT_PROBE_MIN_NS)
        return;
    if ((double)p->cpu < RT_PROBE_SHARE * (double)p->wall) {
        /* crowded again soon after the last pause: pause twice as long */
        long last = atomic_load_explicit(&tp->crowded_until, memory_order_relaxed);
        long pause = atomic_load_explicit(&tp->crowded_ns, memory_order_relaxed);
        if (last && wall < last + 2 * pause)
            pause = pause * 2 > RT_CROWDED_MAX_MS * 1000000L ? pause : pause * 2;
        else
            pause = RT_CROWDED_MS * 1000000L;
        atomic_store_explicit(&tp->crowded_ns, pause, memory_order_relaxed);
        atomic_store_explicit(&tp->crowded_until, wall + pause, memory_order_relaxed);
    }
    p->wall = p->cpu = 0;
    p->tasks = 0;
}

/* One wait of the watch loop: the first rounds only pause the core (the other side is
 * usually a few microseconds away); later rounds also yield it, so that on a machine with
 * more runnable threads than cores the thread being waited for gets to run. */
static inline void relax(int round)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (round > 128)
        sched_yield();
}

/* Watches *v for up to spin_ns until it equals ref (equal = 1: the caller waiting for the
 * running workers to reach 0) or differs from it (equal = 0: a worker waiting for the
 * generation to move on from the one it ran); returns its last value. */
static unsigned long watch(atomic_ulong *v, unsigned long ref, int equal, long spin_ns)
{
    unsigned long cur = atomic_load_explicit(v, memory_order_acquire);
    if ((cur == ref) == equal || spin_ns <= 0)
        return cur;
    long until = now_ns() + spin_ns;
    for (int i = 1;; i++) {
        relax(i);
        cur = atomic_load_explicit(v, memory_order_acquire);
        if ((cur == ref) == equal || ((i & 63) == 0 && now_ns() > until))
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
    long spin = tp->spin_ns;
    for (;;) {
        unsigned long g = watch(&tp->generation, seen, 0, watch_budget(tp, spin));
        spin = adapt_spin(spin, tp->spin_ns, g != seen);
        if (g == seen) { /* nothing came while watching: sleep until it does */
            pthread_mutex_lock(&tp->mu);
            tp->sleepers++;
            while ((g = atomic_load(&tp->generation)) == seen && !atomic_load(&tp->stop))
                pthread_cond_wait(&tp->go, &tp->mu);
            tp->sleepers--;
            pthread_mutex_unlock(&tp->mu);
            probe_mark(w);
        }
        if (atomic_load(&tp->stop))
            return NULL;
        seen = g;
        /* task and arg were written before the generation moved (release/acquire) */
        tp->task(tp->arg, w);
        if (tp->spin_ns > 0)
            probe_point(tp, w);

        if (atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&tp->mu); /* the caller may be asleep on done */
            pthread_cond_signal(&tp->done);
            pthread_mutex_unlock(&tp->mu);
        }
    }
}

#ifdef __linux__
/* 1 when the workers of a pool of n are to be pinned: CNNRT_PIN is not 0 and the calling
 * thread may run on exactly n cores, which are then in *allowed; else 0. */
static int pin_workers(int n, cpu_set_t *allowed)
{
    const char *env = getenv("CNNRT_PIN");
    return !(env && strcmp(env, "0") == 0) && n >= 2 &&
           sched_getaffinity(0, sizeof *allowed, allowed) == 0 && CPU_COUNT(allowed) == n;
}

/* *one = the i-th core of allowed (worker i's); returns that core's number. */
static int nth_core(const cpu_set_t *allowed, int i, cpu_set_t *one)
{
    CPU_ZERO(one);
    for (int c = 0, k = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, allowed) && k++ == i) {
            CPU_SET(c, one);
            return c;
        }
    return -1;
}

/* The caller found on a worker's core is moved to the core the workers leave free, and its
 * own mask then set back as it was (so that threads it starts later are not confined).
 * A worker that wakes the sleeping caller at the end of a task tends to get it onto its
 * own core, and the kernel took longer than whole short runs to part them: a 16 -> 32
 * channel stride-2 forward ran at 0.61 ms in 12 runs of 12 (20 calls each), 0.29 ms with
 * the caller on the free core. Costs a read of the current core per task, and three
 * system calls when the caller has to move. */
static void keep_caller_free(const rt_threads *tp)
{
    const int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &tp->worker_cores))
        return; /* on its own core, or on one no worker uses (the mask grew since) */
    cpu_set_t mask, one;
    if (sched_getaffinity(0, sizeof mask, &mask) != 0 || !CPU_ISSET(tp->caller_core, &mask))
        return;
    CPU_ZERO(&one);
    CPU_SET(tp->caller_core, &one);
    if (sched_setaffinity(0, sizeof one, &one) == 0)
        sched_setaffinity(0, sizeof mask, &mask);
}
#endif

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
    atomic_init(&tp->crowded_until, 0);
    atomic_init(&tp->crowded_ns, RT_CROWDED_MS * 1000000L);
    tp->spin_ns = RT_SPIN_US * 1000L;
    const char *spin = getenv("CNNRT_SPIN_US");
    if (spin && *spin) {
        char *end;
        long us = strtol(spin, &end, 10);
        if (*end == '\0' && us >= 0 && us <= 1000000)
            tp->spin_ns = us * 1000L;
    }
    tp->caller_spin_ns = tp->spin_ns;
    tp->caller_core = -1;
#ifdef __linux__
    cpu_set_t allowed;
    const int pin = pin_workers(n, &allowed);
    CPU_ZERO(&tp->worker_cores);
    if (pin) {
        cpu_set_t first;
        tp->caller_core = nth_core(&allowed, 0, &first);
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &allowed) && c != tp->caller_core)
                CPU_SET(c, &tp->worker_cores);
    }
#endif
    for (int i = 1; i < n; i++) {
        tp->starts[i].tp = tp;
        tp->starts[i].tid = i;
        pthread_attr_t *pa = NULL;
#ifdef __linux__
        pthread_attr_t attr;
        cpu_set_t one;
        if (pin && pthread_attr_init(&attr) == 0) {
            nth_core(&allowed, i, &one);
            pa = &attr;
            if (pthread_attr_setaffinity_np(&attr, sizeof one, &one) != 0) {
                pthread_attr_destroy(&attr); /* (best effort: unpinned then) */
                pa = NULL;
            }
        }
#endif
        int rc = pthread_create(&tp->threads[i - 1], pa, worker_main, &tp->starts[i]);
        if (pa)
            pthread_attr_destroy(pa);
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
        rt_worker w = {0, 1, NULL, 0, {0, 0, 0, 0, 0}};
        task(arg, &w);
        free(w.scratch);
        return;
    }
    if (tp->n == 1) {
        task(arg, &tp->workers[0]);
        return;
    }
#ifdef __linux__
    if (tp->caller_core >= 0)
        keep_caller_free(tp);
#endif
    tp->task = task;
    tp->arg = arg;
    atomic_store_explicit(&tp->pending, (unsigned long)tp->n - 1, memory_order_relaxed);
    /* under mu, so that a worker going to sleep either sees the new generation or is
     * counted in sleepers and woken */
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->generation, 1, memory_order_release);
    if (tp->sleepers)
        pthread_cond_broadcast(&tp->go);
    pthread_mutex_unlock(&tp->mu);

    rt_worker *me = &tp->workers[0];
    task(arg, me);

    unsigned long left = watch(&tp->pending, 0, 1, watch_budget(tp, tp->caller_spin_ns));
    tp->caller_spin_ns = adapt_spin(tp->caller_spin_ns, tp->spin_ns, left == 0);
    if (left > 0) {
        pthread_mutex_lock(&tp->mu);
        while (atomic_load(&tp->pending) > 0)
            pthread_cond_wait(&tp->done, &tp->mu);
        pthread_mutex_unlock(&tp->mu);
        probe_mark(me);
    } else if (tp->spin_ns > 0) { /* the caller's interval runs from its last return */
        probe_point(tp, me);
    }
}

int rt_threads_watching(rt_threads *tp)
{
    return tp && tp->n > 1 && watch_budget(tp, tp->spin_ns) > 0;
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
