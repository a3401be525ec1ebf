/* test_dist.c - runs under mpirun -np 2 (tests/test_dist.sh): rank/size, the slices of a
 * batch, and the order-fixed sums of rt_dist.c checked against exact sums in double (a sum
 * of two floats is exact in double, so its float rounding is the one right answer).
 * Plain checks instead of Check: Check forks, which MPI does not allow. */
#include "rt_dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_pass, g_fail;
#define EXPECT(c, ...) do { if (c) g_pass++; else { g_fail++; \
    fprintf(stderr, "rank %d: FAIL %s:%d: ", rt_dist_rank(), __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* rank r's value at i: different on every rank, signs and magnitudes mixed */
static float val(int r, size_t i)
{
    return (float)((r + 1) * sin((double)i * 0.37 + r) * pow(10.0, (double)(i % 7) - 3.0));
}

int main(int argc, char **argv)
{
    if (rt_dist_init(&argc, &argv) != 0)
        return 1;
    int rank = rt_dist_rank(), size = rt_dist_size();
    if (argc == 2) { /* test_dist N: time the sum of N floats (doc/scaling.md), no tests */
        size_t n = (size_t)strtoull(argv[1], NULL, 10);
        float *g = calloc(n ? n : 1, sizeof *g);
        if (!g)
            rt_dist_abort("out of memory");
        rt_dist_sum_f32(g, n); /* warm-up */
        double t0 = rt_dist_comm_seconds();
        for (int i = 0; i < 20; i++)
            rt_dist_sum_f32(g, n);
        if (rank == 0)
            printf("%zu floats on %d ranks: %.3f ms a sum\n", n, size,
                   1e3 * (rt_dist_comm_seconds() - t0) / 20);
        free(g);
        rt_dist_finalize();
        return 0;
    }
    EXPECT(size == 2, "size %d, want 2 (run with mpirun -np 2)", size);
    EXPECT(rank >= 0 && rank < size, "rank %d", rank);
    EXPECT(rt_dist_is_root() == (rank == 0), "is_root");

    /* slices: 7 over 2 -> [0,4) [4,7); 1 over 2 -> [0,1) [1,1) */
    size_t lo, hi;
    rt_dist_slice(7, 0, 2, &lo, &hi); EXPECT(lo == 0 && hi == 4, "slice 7/0: %zu %zu", lo, hi);
    rt_dist_slice(7, 1, 2, &lo, &hi); EXPECT(lo == 4 && hi == 7, "slice 7/1: %zu %zu", lo, hi);
    rt_dist_slice(1, 1, 2, &lo, &hi); EXPECT(lo == 1 && hi == 1, "slice 1/1: %zu %zu", lo, hi);
    rt_dist_slice(10, 2, 3, &lo, &hi); EXPECT(lo == 7 && hi == 10, "slice 10/2of3: %zu %zu", lo, hi);

    /* test_dist.sh: one rank fails while the other waits in a sum; the job must stop */
    const char *fr = getenv("CNNC_DIST_FAIL_RANK");
    if (fr && atoi(fr) == rank)
        rt_dist_abort("told to fail (CNNC_DIST_FAIL_RANK)");

    /* a float sum longer than two buckets, with a ragged last bucket */
    size_t n = 2 * 262144 + 17;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!a || !b)
        rt_dist_abort("out of memory");
    for (size_t i = 0; i < n; i++)
        a[i] = val(rank, i);
    memcpy(b, a, n * sizeof *a);
    EXPECT(rt_dist_sum_f32(a, n) == 0, "sum_f32 failed");
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double exact = 0;
        for (int r = 0; r < size; r++)
            exact += (double)val(r, i);
        if (a[i] != (float)exact)
            bad++;
    }
    EXPECT(bad == 0, "%zu of %zu float sums differ from the exact sum", bad, n);
    /* again: the same bits */
    EXPECT(rt_dist_sum_f32(b, n) == 0, "sum_f32 failed");
    EXPECT(memcmp(a, b, n * sizeof *a) == 0, "two sums of the same data differ");

    /* the same sum started piece by piece, as during backward: same bits, twice over (the
     * second round reuses the object, as every training step does) */
    float *c = malloc(n * sizeof *c);
    rt_dist_sum *ov = rt_dist_sum_create(c, n, 0);
    EXPECT(c && ov, "rt_dist_sum_create failed");
    size_t points[] = { n - 5, n - 262144, n - 300000, n / 3, 1, 0 };
    for (int round = 0; c && ov && round < 2; round++) {
        /* as backward does: values below the ready point are not final yet (garbage here),
         * and each ready point finalises the values above it */
        for (size_t i = 0; i < n; i++)
            c[i] = -1e30f;
        size_t done = n;
        rt_dist_sum_begin(ov);
        for (int p = 0; p < 6; p++) {
            for (size_t i = points[p]; i < done; i++)
                c[i] = val(rank, i);
            done = points[p];
            if (p == 2 && rank == 1) { /* rank 1 comes late: rank 0's buckets wait for it */
                struct timespec ts = {0, 20 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            EXPECT(rt_dist_sum_ready(ov, points[p]) == 0, "ready failed");
            if (p == 2) {
                /* a blocking sum while buckets are in flight, as batchnorm's backward does,
                 * long enough for the bucket path: rank 1, late, finds rank 0's part of the
                 * buckets there and moves them on first; rank 0 goes straight to this sum */
                size_t nd = 3000;
                double *dd = malloc(nd * sizeof *dd);
                EXPECT(dd != NULL, "out of memory");
                for (size_t i = 0; dd && i < nd; i++)
                    dd[i] = (double)(rank + 1) * (double)i;
                EXPECT(dd && rt_dist_sum_f64(dd, nd) == 0, "nested sum failed");
                size_t badd = 0;
                for (size_t i = 0; dd && i < nd; i++)
                    badd += dd[i] != 3.0 * (double)i;
                EXPECT(badd == 0, "nested sum: %zu wrong", badd);
                free(dd);
            }
        }
        EXPECT(rt_dist_sum_finish(ov) == 0, "finish failed");
        EXPECT(memcmp(a, c, n * sizeof *a) == 0, "round %d: the overlapped sum differs", round);
    }
    rt_dist_sum_destroy(ov);
    free(c);

    /* gathering each rank's slice of items: 7 items of 3 bytes */
    unsigned char items[21];
    memset(items, 0xee, sizeof items);
    rt_dist_slice(7, rank, size, &lo, &hi);
    for (size_t i = lo * 3; i < hi * 3; i++)
        items[i] = (unsigned char)(i * 5 + 1);
    EXPECT(rt_dist_allgather(items, 3, 7) == 0, "allgather failed");
    size_t badi = 0;
    for (size_t i = 0; i < 21; i++)
        badi += items[i] != (unsigned char)(i * 5 + 1);
    EXPECT(badi == 0, "%zu gathered bytes wrong", badi);
    EXPECT(rt_dist_all(1) == 1 && rt_dist_all(rank == 0) == 0, "votes");

    /* doubles: counts and loss sums */
    double d[3] = { 1.0 + rank, 0.5 * rank, -3.25 };
    EXPECT(rt_dist_sum_f64(d, 3) == 0, "sum_f64 failed");
    EXPECT(d[0] == 3.0 && d[1] == 0.5 && d[2] == -6.5, "f64 sums %g %g %g", d[0], d[1], d[2]);

    /* broadcast: root's values everywhere */
    float w[5];
    for (int i = 0; i < 5; i++)
        w[i] = rank == 0 ? 1.5f * (float)i : -1.0f;
    EXPECT(rt_dist_bcast_f32(w, 5) == 0, "bcast failed");
    EXPECT(w[0] == 0.0f && w[4] == 6.0f, "bcast got %g %g", w[0], w[4]);
    EXPECT(rt_dist_comm_seconds() > 0, "no communication time counted");

    free(a);
    free(b);
    printf("rank %d: %d passed, %d failed\n", rank, g_pass, g_fail);
    rt_dist_finalize();
    return g_fail ? 1 : 0;
}
