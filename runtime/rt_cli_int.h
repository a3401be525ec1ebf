/*
 * rt_cli_int.h - private to the shared command line (not installed): what rt_cli.c (option
 * parsing, --train/--eval/--predict) shares with rt_cli_bench.c (--bench, --profile) and
 * rt_cli_dump.c (--dump): the program's context, its error message and model building.
 */
#ifndef RT_CLI_INT_H
#define RT_CLI_INT_H

#include "rt_train_int.h"

enum { RT_EXIT_OK = 0, RT_EXIT_RUN = 1, RT_EXIT_USAGE = 2 };

/* The context of one command: names for messages, the network and its model factory. */
typedef struct {
    const char *prog;
    const rt_netdesc *d;
    rt_model_factory make_model;
    void *ctx;
    char default_weights[80];
} rt_cli_env;

#if defined(__GNUC__)
#define RT_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define RT_PRINTF_LIKE(f, a)
#endif

/* "PROG: message" on stderr (stdout flushed first, so the two interleave correctly). */
void rt_cli_error(const rt_cli_env *e, const char *fmt, ...) RT_PRINTF_LIKE(2, 3);
/* The factory's model for batch and threads, or NULL after printing why. */
rt_model *rt_cli_make(const rt_cli_env *e, int batch, int threads, char *err);

/* A deterministic batch: n images of size elements uniform in [0, 1) drawn from an rng
 * seeded with seed, in order, and labels[i] = i % k. */
void rt_cli_random_batch(float *x, int *labels, int n, size_t size, int k, uint64_t seed);

/* --bench STEPS [--profile] */
typedef struct {
    int steps, batch, threads, profile;
    uint64_t seed;
    rt_opt_cfg opt;
} rt_bench_cfg;
int rt_cli_bench(const rt_cli_env *e, const rt_bench_cfg *b);

/* --dump FILE [--train-mode] */
typedef struct {
    const char *file, *weights;   /* weights NULL: rt_init_params from seed */
    int batch, threads, training;
    uint64_t seed;
} rt_dump_cfg;
int rt_cli_dump(const rt_cli_env *e, const rt_dump_cfg *c);

#endif
