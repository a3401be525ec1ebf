/* rt_dist.c - the MPI layer of data-parallel training: start/stop, rank and size, and
 * order-fixed sums (gather each bucket to rank 0, add in rank order, broadcast), chosen over
 * MPI_Allreduce because MPI does not promise the same summation order from run to run.
 * Built without HAVE_MPI it is a one-rank stub: sums and broadcasts leave the data as is. */
#include "config.h"
#include "rt_dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef HAVE_MPI
#include <mpi.h>
#endif

/* values per bucket (1 MiB of floats): small enough to start while backward runs, large
 * enough for the network's bandwidth */
#define RT_DIST_BUCKET 262144
/* values (over all ranks) up to which a sum is one all-gather (sum_short) */
#define RT_DIST_SHORT 4096

static double g_comm_s;
#ifdef HAVE_MPI
static int g_started; /* 1 when this module called MPI_Init */
/* The two phases of the order-fixed sum, each on its own communicator (see below), for
 * each of two lanes: lane 0 the sum that runs during backward (the gradient), lane 1 the
 * blocking sums, which may run while lane 0's collectives are in flight (batchnorm's
 * statistics in backward) and so must not share its communicators. */
enum { LANE_OVERLAP, LANE_BLOCKING, NLANES };
static MPI_Comm g_comm_a2a[NLANES] = {MPI_COMM_NULL, MPI_COMM_NULL},
                g_comm_ag[NLANES] = {MPI_COMM_NULL, MPI_COMM_NULL};
#endif

void rt_dist_slice(size_t n, int rank, int size, size_t *lo, size_t *hi)
{
    size_t s = size > 0 ? (size_t)size : 1, r = rank > 0 ? (size_t)rank : 0;
    size_t base = n / s, extra = n % s;
    *lo = r * base + (r < extra ? r : extra);
    *hi = *lo + base + (r < extra ? 1 : 0);
}

double rt_dist_comm_seconds(void) { return g_comm_s; }
int rt_dist_is_root(void) { return rt_dist_rank() == 0; }

#ifdef HAVE_MPI

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Started by mpirun (Open MPI, or a PMI/PMIx launcher such as srun)? A program started on its
 * own stays one process and never calls MPI_Init: no cost, and callers such as the unit tests
 * may run the command line many times in one process (MPI cannot be started twice). */
static int launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int rt_dist_init(int *argc, char ***argv)
{
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited || !launched_by_mpi())
        return 0;
    /* worker threads exist, but only the main thread calls MPI */
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "error: MPI_Init failed\n");
        return -1;
    }
    g_started = 1;
    atexit(rt_dist_finalize); /* every rank must reach MPI_Finalize, whatever path exits */
    /* an error in a collective stops the whole job (the default, said explicitly) */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    return 0;
}

void rt_dist_finalize(void)
{
    if (!g_started)
        return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (g_started && !fin) {
        for (int l = 0; l < NLANES; l++)
            if (g_comm_a2a[l] != MPI_COMM_NULL) {
                MPI_Comm_free(&g_comm_a2a[l]);
                MPI_Comm_free(&g_comm_ag[l]);
            }
        MPI_Finalize();
    }
    g_started = 0;
}

int rt_dist_rank(void)
{
    int inited = 0, fin = 0, r = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin)
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int rt_dist_size(void)
{
    int inited = 0, fin = 0, n = 1;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin)
        MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

/* ------------------------------------------------------------ the order-fixed sum
 *
 * A sum of n values works in buckets. Each bucket is cut into one chunk per rank; rank q
 * receives chunk q of every rank (MPI_Ialltoallv), adds the pieces in rank order 0, 1, ...
 * and sends its summed chunk to all (MPI_Iallgatherv): 2(N-1)/N of the data crosses the
 * network, as in a ring allreduce, and every bit of the result is fixed by the rank order.
 * The two phases use their own communicators so that every rank starts each phase's
 * collectives in the same order (bucket order) whatever the timing. */

struct rt_dist_sum {
    void *buf;             /* the values, n of them */
    size_t n, esz, bucket;
    int is_double, size, rank, nb;
    int lane;              /* whose communicators (LANE_...) */
    int started;           /* buckets whose exchange was started (from the top down) */
    int summed;            /* buckets whose chunk was added up and gather started */
    char *scratch;         /* this rank's chunk of every rank, per bucket */
    int *cnt, *off;        /* per bucket: size counts and offsets of the chunks */
    MPI_Request *a2a, *ag; /* per bucket */
    MPI_Datatype type;
};

/* out[i] = pieces[0][i] + pieces[1][i] + ... + pieces[size-1][i], added in that order:
 * pieces holds size runs of m values, one per rank. */
static void add_in_rank_order(const void *pieces, void *out, size_t m, int size, int is_double)
{
    for (size_t i = 0; i < m; i++) {
        if (is_double) {
            const double *p = pieces;
            double acc = p[i];
            for (int r = 1; r < size; r++)
                acc += p[(size_t)r * m + i];
            ((double *)out)[i] = acc;
        } else {
            const float *p = pieces;
            float acc = p[i];
            for (int r = 1; r < size; r++)
                acc += p[(size_t)r * m + i];
            ((float *)out)[i] = acc;
        }
    }
}

/* bucket b covers [lo, hi) counted from the end (the last layers' gradients are ready first) */
static void bucket_range(const rt_dist_sum *s, int b, size_t *lo, size_t *hi)
{
    size_t top = s->n - (size_t)b * s->bucket;
    *hi = top;
    *lo = top > s->bucket ? top - s->bucket : 0;
}

static rt_dist_sum *sum_create(void *buf, size_t n, int is_double, int lane)
{
    rt_dist_sum *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->lane = lane;
    s->buf = buf;
    s->n = n;
    s->is_double = is_double;
    s->esz = is_double ? sizeof(double) : sizeof(float);
    s->type = is_double ? MPI_DOUBLE : MPI_FLOAT;
    s->size = rt_dist_size();
    s->rank = rt_dist_rank();
    s->bucket = RT_DIST_BUCKET;
    s->nb = n ? (int)((n + s->bucket - 1) / s->bucket) : 0;
    if (s->size <= 1 || s->nb == 0)
        return s;
    /* collective: every rank creates its sums in the same order */
    if (g_comm_a2a[lane] == MPI_COMM_NULL &&
        (MPI_Comm_dup(MPI_COMM_WORLD, &g_comm_a2a[lane]) != MPI_SUCCESS ||
         MPI_Comm_dup(MPI_COMM_WORLD, &g_comm_ag[lane]) != MPI_SUCCESS)) {
        free(s);
        return NULL;
    }
    size_t nb = (size_t)s->nb, sz = (size_t)s->size;
    s->cnt = malloc(nb * sz * 2 * sizeof *s->cnt);
    s->a2a = malloc(nb * sizeof *s->a2a);
    s->ag = malloc(nb * sizeof *s->ag);
    /* rank q's chunk of a bucket is at most ceil(bucket / size): size of them per bucket */
    size_t chunk = (s->bucket + sz - 1) / sz;
    s->scratch = malloc(nb * sz * chunk * s->esz);
    if (!s->cnt || !s->a2a || !s->ag || !s->scratch) {
        rt_dist_sum_destroy(s);
        return NULL;
    }
    s->off = s->cnt + nb * sz;
    for (int b = 0; b < s->nb; b++) {
        size_t lo, hi, clo, chi;
        bucket_range(s, b, &lo, &hi);
        for (int q = 0; q < s->size; q++) {
            rt_dist_slice(hi - lo, q, s->size, &clo, &chi);
            s->cnt[(size_t)b * sz + (size_t)q] = (int)(chi - clo);
            s->off[(size_t)b * sz + (size_t)q] = (int)clo;
        }
    }
    return s;
}

rt_dist_sum *rt_dist_sum_create(void *buf, size_t n, int is_double)
{
    return sum_create(buf, n, is_double, LANE_OVERLAP);
}

void rt_dist_sum_destroy(rt_dist_sum *s)
{
    if (!s)
        return;
    free(s->cnt);
    free(s->a2a);
    free(s->ag);
    free(s->scratch);
    free(s);
}

static char *bucket_scratch(const rt_dist_sum *s, int b)
{
    size_t chunk = (s->bucket + (size_t)s->size - 1) / (size_t)s->size;
    return s->scratch + (size_t)b * (size_t)s->size * chunk * s->esz;
}

/* Starts the exchange of bucket b: every rank's chunk q goes to rank q. */
static int start_exchange(rt_dist_sum *s, int b)
{
    size_t lo, hi, sz = (size_t)s->size;
    bucket_range(s, b, &lo, &hi);
    const int *cnt = s->cnt + (size_t)b * sz, *off = s->off + (size_t)b * sz;
    int mine = cnt[s->rank];
    int rcnt[s->size], roff[s->size];
    for (int q = 0; q < s->size; q++) {
        rcnt[q] = mine;
        roff[q] = q * mine;
    }
    return MPI_Ialltoallv((char *)s->buf + lo * s->esz, cnt, off, s->type, bucket_scratch(s, b),
                          rcnt, roff, s->type, g_comm_a2a[s->lane], &s->a2a[b]) == MPI_SUCCESS ? 0 : -1;
}

/* Adds this rank's chunk of bucket b over the ranks in rank order and starts sending it to
 * all. */
static int sum_and_share(rt_dist_sum *s, int b)
{
    size_t lo, hi, sz = (size_t)s->size;
    bucket_range(s, b, &lo, &hi);
    const int *cnt = s->cnt + (size_t)b * sz, *off = s->off + (size_t)b * sz;
    int m = cnt[s->rank];
    size_t at = lo + (size_t)off[s->rank];
    add_in_rank_order(bucket_scratch(s, b), (char *)s->buf + at * s->esz, (size_t)m, s->size,
                      s->is_double);
    return MPI_Iallgatherv(MPI_IN_PLACE, 0, s->type, (char *)s->buf + lo * s->esz, cnt, off,
                           s->type, g_comm_ag[s->lane], &s->ag[b]) == MPI_SUCCESS ? 0 : -1;
}

/* Moves every started bucket on as far as it can without waiting (wait = 0) or to the end. */
static int advance(rt_dist_sum *s, int wait)
{
    while (s->summed < s->started) {
        int done = 0;
        if (wait) {
            if (MPI_Wait(&s->a2a[s->summed], MPI_STATUS_IGNORE) != MPI_SUCCESS)
                return -1;
            done = 1;
        } else if (MPI_Test(&s->a2a[s->summed], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            return -1;
        }
        if (!done)
            return 0;
        if (sum_and_share(s, s->summed) != 0)
            return -1;
        s->summed++;
    }
    return 0;
}

void rt_dist_sum_begin(rt_dist_sum *s)
{
    s->started = s->summed = 0;
}

int rt_dist_sum_ready(rt_dist_sum *s, size_t from)
{
    if (s->size <= 1 || s->nb == 0)
        return 0;
    double t0 = now_s();
    int rc = 0;
    while (rc == 0 && s->started < s->nb) {
        size_t lo, hi;
        bucket_range(s, s->started, &lo, &hi);
        if (lo < from)
            break;
        rc = start_exchange(s, s->started);
        s->started += rc == 0;
    }
    if (rc == 0)
        rc = advance(s, 0);
    g_comm_s += now_s() - t0;
    return rc;
}

int rt_dist_sum_finish(rt_dist_sum *s)
{
    if (s->size <= 1 || s->nb == 0)
        return 0;
    int rc = rt_dist_sum_ready(s, 0);
    double t0 = now_s();
    if (rc == 0)
        rc = advance(s, 1);
    if (rc == 0 && MPI_Waitall(s->nb, s->ag, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
        rc = -1;
    g_comm_s += now_s() - t0;
    return rc;
}

/* A short sum (loss and counts, batchnorm's statistics: latency-bound) in one collective:
 * every rank gathers every rank's values and adds them in rank order itself. */
static int sum_short(void *buf, size_t n, int is_double)
{
    int size = rt_dist_size();
    double all[RT_DIST_SHORT]; /* doubles, or floats in its first half */
    double t0 = now_s();
    int rc = MPI_Allgather(buf, (int)n, is_double ? MPI_DOUBLE : MPI_FLOAT, all, (int)n,
                           is_double ? MPI_DOUBLE : MPI_FLOAT, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
    if (rc == 0)
        add_in_rank_order(all, buf, n, size, is_double);
    g_comm_s += now_s() - t0;
    return rc;
}

static int sum_any(void *buf, size_t n, int is_double)
{
    if (rt_dist_size() <= 1 || n == 0)
        return 0;
    if (n * (size_t)rt_dist_size() <= RT_DIST_SHORT)
        return sum_short(buf, n, is_double);
    rt_dist_sum *s = sum_create(buf, n, is_double, LANE_BLOCKING);
    if (!s)
        rt_dist_abort("out of memory for a sum over the ranks");
    rt_dist_sum_begin(s);
    int rc = rt_dist_sum_finish(s);
    rt_dist_sum_destroy(s);
    return rc;
}

int rt_dist_sum_f32(float *buf, size_t n) { return sum_any(buf, n, 0); }
int rt_dist_sum_f64(double *buf, size_t n) { return sum_any(buf, n, 1); }

int rt_dist_allgather(void *buf, size_t item, size_t n)
{
    int size = rt_dist_size();
    if (size <= 1 || n == 0)
        return 0;
    if (item > (size_t)INT_MAX || n / (size_t)size + 1 > (size_t)INT_MAX)
        return -1;
    double t0 = now_s();
    /* counts in items (one type of `item` bytes: an image) keep MPI's int counts small */
    MPI_Datatype t;
    if (MPI_Type_contiguous((int)item, MPI_BYTE, &t) != MPI_SUCCESS || MPI_Type_commit(&t) != MPI_SUCCESS)
        return -1;
    int cnt[size], off[size];
    for (int q = 0; q < size; q++) {
        size_t lo, hi;
        rt_dist_slice(n, q, size, &lo, &hi);
        cnt[q] = (int)(hi - lo);
        off[q] = (int)lo;
    }
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, t, buf, cnt, off, t, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
    MPI_Type_free(&t);
    g_comm_s += now_s() - t0;
    return rc;
}

int rt_dist_all(int flag)
{
    double v = flag ? 1.0 : 0.0;
    if (rt_dist_sum_f64(&v, 1) != 0)
        rt_dist_abort("a vote over the ranks failed");
    return v == (double)rt_dist_size();
}

int rt_dist_bcast_f32(float *buf, size_t n)
{
    if (rt_dist_size() <= 1)
        return 0;
    double t0 = now_s();
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += RT_DIST_BUCKET) {
        size_t m = n - off < RT_DIST_BUCKET ? n - off : RT_DIST_BUCKET;
        rc = MPI_Bcast(buf + off, (int)m, MPI_FLOAT, 0, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
    }
    g_comm_s += now_s() - t0;
    return rc;
}

_Noreturn void rt_dist_abort(const char *msg)
{
    rt_dist_abort_status(msg, 1);
}

_Noreturn void rt_dist_abort_status(const char *msg, int status)
{
    int r = rt_dist_rank(), n = rt_dist_size();
    fprintf(stderr, "error: rank %d of %d: %s; stopping all ranks\n", r, n, msg);
    fflush(stderr);
    if (n > 1)
        MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

#else /* one process: the stub */

int rt_dist_init(int *argc, char ***argv) { (void)argc; (void)argv; return 0; }
void rt_dist_finalize(void) {}
int rt_dist_rank(void) { return 0; }
int rt_dist_size(void) { return 1; }
int rt_dist_sum_f32(float *buf, size_t n) { (void)buf; (void)n; return 0; }
int rt_dist_sum_f64(double *buf, size_t n) { (void)buf; (void)n; return 0; }
int rt_dist_bcast_f32(float *buf, size_t n) { (void)buf; (void)n; return 0; }
int rt_dist_allgather(void *buf, size_t item, size_t n) { (void)buf; (void)item; (void)n; return 0; }
int rt_dist_all(int flag) { return flag != 0; }

struct rt_dist_sum { int unused; };
rt_dist_sum *rt_dist_sum_create(void *buf, size_t n, int is_double)
{
    (void)buf; (void)n; (void)is_double;
    return calloc(1, sizeof(rt_dist_sum));
}
void rt_dist_sum_destroy(rt_dist_sum *s) { free(s); }
void rt_dist_sum_begin(rt_dist_sum *s) { (void)s; }
int rt_dist_sum_ready(rt_dist_sum *s, size_t from) { (void)s; (void)from; return 0; }
int rt_dist_sum_finish(rt_dist_sum *s) { (void)s; return 0; }

_Noreturn void rt_dist_abort(const char *msg)
{
    rt_dist_abort_status(msg, 1);
}

_Noreturn void rt_dist_abort_status(const char *msg, int status)
{
    fprintf(stderr, "error: rank 0 of 1: %s\n", msg);
    exit(status);
}

#endif
