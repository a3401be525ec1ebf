/*
 * rt_cli_int.h - private to the shared command line (not installed): the parsed options
 * (rt_cli_options.c), the helpers several commands share (rt_cli_env.c), and the commands
 * themselves, which rt_cli_main (rt_cli.c) dispatches to. Commands use only the helpers.
 */
#ifndef RT_CLI_INT_H
#define RT_CLI_INT_H

#include "rt_train_int.h"

#include <stdarg.h>

enum { RT_EXIT_OK = 0, RT_EXIT_RUN = 1, RT_EXIT_USAGE = 2, RT_EXIT_INTERRUPTED = 130 };

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

/* ------------------------------------------------------------ options (rt_cli_options.c) */

/* The commands, as bits: an option names the commands it applies to. */
enum { RT_M_TRAIN = 1, RT_M_EVAL = 2, RT_M_PREDICT = 4, RT_M_BENCH = 8, RT_M_DUMP = 16,
       RT_M_ALL = 31 };

typedef enum {
    RT_O_TRAIN, RT_O_EVAL, RT_O_PREDICT, RT_O_WEIGHTS, RT_O_OUT, RT_O_EPOCHS, RT_O_BATCH,
    RT_O_LR, RT_O_OPTIMIZER, RT_O_MOMENTUM, RT_O_WD, RT_O_SEED, RT_O_THREADS, RT_O_SPLIT,
    RT_O_AUGMENT, RT_O_REPORT, RT_O_PLOT, RT_O_CACHEDIR, RT_O_NOCACHE, RT_O_ALL, RT_O_QUIET,
    RT_O_HELP, RT_O_VERSION, RT_O_BENCH, RT_O_PROFILE, RT_O_DUMP, RT_O_TRAINMODE,
    RT_O_CHECKPOINT, RT_O_RESUME, RT_O_INIT, RT_O_LOG, RT_O_VAL, RT_O_TEST, RT_O_FORMAT,
    /* schedules, stopping, optimizer and loss details (words of rt_train_words.c) */
    RT_O_SCHEDULE, RT_O_WARMUP, RT_O_STEPEVERY, RT_O_STEPGAMMA, RT_O_PPATIENCE, RT_O_PFACTOR,
    RT_O_STOPPAT, RT_O_BETAS, RT_O_NESTEROV, RT_O_CLIPNORM, RT_O_SMOOTHING,
    RT_NOPTS
} rt_cli_opt;

/* Everything the command line said. */
typedef struct {
    int mode;                   /* one RT_M_ bit */
    const char *dir;            /* --train DIR, --eval DIR */
    char **images;              /* --predict IMAGE...: room for argc entries */
    int nimages;
    const char *weights, *out, *report, *plot, *cache_dir;
    int no_cache, all, quiet;
    int bench_steps, profile;   /* --bench STEPS, --profile */
    const char *dump;           /* --dump FILE */
    int train_mode;             /* --train-mode */
    rt_train_cfg cfg;
    rt_train_cfg cfg0;          /* the defaults the command line started from */
    int given[RT_NOPTS];        /* which options appeared */
    const char *checkpoint;     /* --checkpoint FILE (NULL: --out with .ckpt) */
    const char *resume;         /* --resume FILE */
    const char *init;           /* --init WEIGHTS: fine-tune from trained weights */
    const char *log;            /* --log FILE.csv */
    const char *val_dir, *test_dir; /* --val DIR, --test DIR: the validation and test parts */
    int format;                 /* --predict --format: 0 text, 1 csv, 2 json */
    int nargs;                  /* the run's own arguments, stored in its checkpoints */
    char **args;
} rt_cli_args;

/* Fills a from argv (a->cfg holds the defaults, a->images room for argc entries); returns
 * -1 to go on, or an exit code after --help, --version or a usage error (printed). */
int rt_cli_parse(const rt_cli_env *e, int argc, char **argv, rt_cli_args *a);
/* An option's name ("--lr") and whether it takes a value. */
const char *rt_cli_option_name(int o);
int rt_cli_option_takes_value(int o);
/* --resume FILE: a replaced by the arguments stored in the checkpoint (which live in
 * *stored: rt_names_free(*stored, *nstored)), after checking that any other settings the
 * command line gave are the same. Returns -1 to go on, or an exit code (printed). */
int rt_cli_resume_args(const rt_cli_env *e, char *prog, rt_cli_args *a, char ***stored,
                       int *nstored);
/* The checkpoint file of a run: --checkpoint, else --out's path with .ckpt in place of
 * its extension (buf of n bytes). */
const char *rt_cli_checkpoint_path(const rt_cli_env *e, const rt_cli_args *a, char *buf,
                                   size_t n);

/* ------------------------------------------------------------ shared helpers (rt_cli_env.c) */

/* "PROG: message" on stderr (stdout flushed first, so the two interleave correctly). */
void rt_cli_error(const rt_cli_env *e, const char *fmt, ...) RT_PRINTF_LIKE(2, 3);
/* The same with a va_list (the usage error adds its "Try --help" line after it). */
void rt_cli_verror(const rt_cli_env *e, const char *fmt, va_list ap);
/* "sgd", "adam" or "adamw". */
const char *rt_cli_opt_name(rt_opt_kind k);
/* "7:2:1". */
void rt_cli_fmt_split(char *buf, size_t n, const int s[3]);
/* "hflip crop=4", or "none". */
void rt_cli_fmt_augment(char *buf, size_t n, const rt_augment_cfg *a);
/* The factory's model for batch and threads, or NULL after printing why. */
rt_model *rt_cli_make(const rt_cli_env *e, int batch, int threads, char *err);
/* Loads a->dir for the network; 0, or -1 after printing why (also for a data set with
 * another number of classes than the network's, or no images). */
int rt_cli_load_data(const rt_cli_env *e, const rt_cli_args *a, rt_dataset *ds, char *err);
/* Warns when the class names wn[0..nw) of weights file wfile (NULL: none stored) are not
 * the data set's. */
void rt_cli_check_names(const rt_cli_env *e, char **wn, int nw, const rt_dataset *ds,
                        const char *wfile);
/* A deterministic batch: n images of size elements uniform in [0, 1) drawn from an rng
 * seeded with seed, in order, and labels[i] = i % k. */
void rt_cli_random_batch(float *x, int *labels, int n, size_t size, int k, uint64_t seed);

/* ------------------------------------------------------------ the commands */

/* Each returns the exit code. --train DIR (rt_cli_train.c) */
int rt_cli_train(const rt_cli_env *e, const rt_cli_args *a);
/* --eval DIR, --predict IMAGE... (rt_cli_eval.c) */
int rt_cli_eval(const rt_cli_env *e, const rt_cli_args *a);
int rt_cli_predict(const rt_cli_env *e, const rt_cli_args *a);

/* --bench STEPS [--profile] (rt_cli_bench.c) */
typedef struct {
    int steps, batch, threads, profile;
    uint64_t seed;
    rt_opt_cfg opt;
} rt_bench_cfg;
int rt_cli_bench(const rt_cli_env *e, const rt_bench_cfg *b);

/* --dump FILE [--train-mode] (rt_cli_dump.c) */
typedef struct {
    const char *file, *weights;   /* weights NULL: rt_init_params from seed */
    int batch, threads, training;
    uint64_t seed;
} rt_dump_cfg;
int rt_cli_dump(const rt_cli_env *e, const rt_dump_cfg *c);

/* ------------------------------------- the collapse note after training (rt_cli_collapse.c) */

enum { RT_COLLAPSE_MIN_EPOCHS = 5 };    /* shorter runs are not judged */
#define RT_COLLAPSE_LOSS_FRAC 0.9       /* of ln K: a loss this high learned nothing */
/* The class every test image is predicted as (conf: k x k, rows true), or -1. */
int rt_collapse_only_class(const int *conf, int k);
/* That class when the rule of rt_cli_collapse.c says the network collapsed, else -1. */
int rt_collapse_judge(const int *conf, int k, int ntest, const rt_history *h);
/* Prints the note, with the advice that fits d, when rt_collapse_judge says so. */
void rt_collapse_note(FILE *out, const rt_netdesc *d, const int *conf, int k, int ntest,
                      const rt_history *h, char **classnames);

#endif
