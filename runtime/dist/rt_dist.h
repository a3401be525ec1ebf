/* rt_dist.h - data-parallel training over MPI: which rank this process is, how many there
 * are, and a sum over ranks in a fixed order so that repeated runs are bit-identical.
 * Without MPI (configure --without-mpi) the same calls describe one rank and do nothing. */
#ifndef RT_DIST_H
#define RT_DIST_H

#include <stddef.h>

/* Starts MPI when built with it and launched by mpirun (otherwise: one rank, no MPI_Init);
 * safe to call more than once, and MPI_Finalize runs at exit.
 * Returns 0, or -1 with a message on stderr. */
int rt_dist_init(int *argc, char ***argv);
/* Ends MPI if rt_dist_init started it. */
void rt_dist_finalize(void);
int rt_dist_rank(void);
int rt_dist_size(void);
/* 1 when this process should print, write files and plot (rank 0, or the only process). */
int rt_dist_is_root(void);

/* buf[i] <- sum over ranks r = 0, 1, ..., size-1 (in that order, starting from rank 0's
 * value) of rank r's buf[i]. Every rank gets the same bits whatever the timing. Works in
 * buckets, each reduce-scattered and gathered again (see rt_dist.c). 0 or -1. */
int rt_dist_sum_f32(float *buf, size_t n);
/* The same for doubles (loss sums, counts of correct answers). */
int rt_dist_sum_f64(double *buf, size_t n);
/* The same sum started piece by piece while the values are still being computed (the
 * gradient during backward): values are summed in buckets from the end of buf down.
 * rt_dist_sum_ready(s, from) says buf[from..n) is final and starts every bucket inside it
 * (and moves started ones on without waiting); rt_dist_sum_finish starts the rest and
 * waits for all. The result is the bits of rt_dist_sum_f32/f64 whatever the ready points,
 * and the blocking sums may run while one is in flight (they use other communicators). One
 * such sum at a time; create is collective (every rank in the same order); it returns NULL
 * when out of memory; begin before each new sum. */
typedef struct rt_dist_sum rt_dist_sum;
rt_dist_sum *rt_dist_sum_create(void *buf, size_t n, int is_double);
void rt_dist_sum_begin(rt_dist_sum *s);
int rt_dist_sum_ready(rt_dist_sum *s, size_t from);
int rt_dist_sum_finish(rt_dist_sum *s);
void rt_dist_sum_destroy(rt_dist_sum *s);
/* buf holds n items of `item` bytes, of which this rank filled its slice (rt_dist_slice):
 * afterwards every rank holds all n. 0 or -1. */
int rt_dist_allgather(void *buf, size_t item, size_t n);
/* 1 when flag is nonzero on every rank (a vote, so that all ranks take the same path). */
int rt_dist_all(int flag);
/* Copies root's buf to every rank (initial weights). 0 or -1. */
int rt_dist_bcast_f32(float *buf, size_t n);
/* Seconds spent inside the reductions and broadcasts since the start (for --bench). */
double rt_dist_comm_seconds(void);

/* Rank r's slice [*lo, *hi) of n items split as evenly as possible (the first n % size
 * ranks take one more), so that rank order concatenates the slices back into 0..n-1. */
void rt_dist_slice(size_t n, int rank, int size, size_t *lo, size_t *hi);

/* Stops the whole job: prints "rank R: MSG" and, under MPI, aborts every rank (mpirun exits
 * with status, 1 for rt_dist_abort). */
_Noreturn void rt_dist_abort(const char *msg);
_Noreturn void rt_dist_abort_status(const char *msg, int status);

#endif
