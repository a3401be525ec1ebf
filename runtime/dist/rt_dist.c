/* rt_dist.c - the MPI layer of data-parallel training: start/stop, rank and size, and
 * order-fixed sums (gather each bucket to rank 0, add in rank order, broadcast), chosen over
 * MPI_Allreduce because MPI does not promise the same summation order from run to run.
 * Built without HAVE_MPI it is a one-rank stub: sums and broadcasts leave the data as is. */
#include "config.h"
#include "rt_dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef HAVE_MPI
#include <mpi.h>
#endif

/* floats per bucket: 256 KiB per rank, small enough to pipeline, large enough for bandwidth */
#define RT_DIST_BUCKET 65536

static double g_comm_s;
#ifdef HAVE_MPI
static int g_started; /* 1 when this module called MPI_Init */
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
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
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
    if (g_started && !fin)
        MPI_Finalize();
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

/* One bucket of m elements of size esz: gather to rank 0, sum in rank order, broadcast. */
static int sum_bucket(void *buf, int m, MPI_Datatype type, int is_double, void *scratch,
                      int size, int rank)
{
    if (MPI_Gather(buf, m, type, scratch, m, type, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return -1;
    if (rank == 0) {
        for (int i = 0; i < m; i++) {
            if (is_double) {
                const double *s = scratch;
                double acc = s[i];
                for (int r = 1; r < size; r++)
                    acc += s[(size_t)r * (size_t)m + (size_t)i];
                ((double *)buf)[i] = acc;
            } else {
                const float *s = scratch;
                float acc = s[i];
                for (int r = 1; r < size; r++)
                    acc += s[(size_t)r * (size_t)m + (size_t)i];
                ((float *)buf)[i] = acc;
            }
        }
    }
    return MPI_Bcast(buf, m, type, 0, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

static int sum_any(void *buf, size_t n, size_t esz, MPI_Datatype type, int is_double)
{
    int size = rt_dist_size(), rank = rt_dist_rank();
    if (size <= 1 || n == 0)
        return 0;
    double t0 = now_s();
    size_t bucket = n < RT_DIST_BUCKET ? n : RT_DIST_BUCKET;
    void *scratch = rank == 0 ? malloc((size_t)size * bucket * esz) : NULL;
    if (rank == 0 && !scratch)
        rt_dist_abort("out of memory for the gradient sum");
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += bucket) {
        size_t m = n - off < bucket ? n - off : bucket;
        rc = sum_bucket((char *)buf + off * esz, (int)m, type, is_double, scratch, size, rank);
    }
    free(scratch);
    g_comm_s += now_s() - t0;
    return rc;
}

int rt_dist_sum_f32(float *buf, size_t n) { return sum_any(buf, n, sizeof *buf, MPI_FLOAT, 0); }
int rt_dist_sum_f64(double *buf, size_t n) { return sum_any(buf, n, sizeof *buf, MPI_DOUBLE, 1); }

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
    int r = rt_dist_rank(), n = rt_dist_size();
    fprintf(stderr, "error: rank %d of %d: %s; stopping all ranks\n", r, n, msg);
    fflush(stderr);
    if (n > 1)
        MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

#else /* one process: the stub */

int rt_dist_init(int *argc, char ***argv) { (void)argc; (void)argv; return 0; }
void rt_dist_finalize(void) {}
int rt_dist_rank(void) { return 0; }
int rt_dist_size(void) { return 1; }
int rt_dist_sum_f32(float *buf, size_t n) { (void)buf; (void)n; return 0; }
int rt_dist_sum_f64(double *buf, size_t n) { (void)buf; (void)n; return 0; }
int rt_dist_bcast_f32(float *buf, size_t n) { (void)buf; (void)n; return 0; }

_Noreturn void rt_dist_abort(const char *msg)
{
    fprintf(stderr, "error: rank 0 of 1: %s\n", msg);
    exit(1);
}

#endif
