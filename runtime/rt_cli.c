/*
 * rt_cli.c - the command line shared by cnnrun and every generated program: --train,
 * --eval, --predict, --bench and --dump with their options, checked strictly (a wrong
 * option says which and what is valid, exit 2), then the first three commands built from
 * the data, training, weights and report services (--bench and --dump live in
 * rt_cli_bench.c and rt_cli_dump.c). With those two files, the only place in libcnnrt
 * that prints results.
 */
#include "rt_cli_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_RUN = 1, EXIT_USAGE = 2 };
enum { M_TRAIN = 1, M_EVAL = 2, M_PREDICT = 4, M_BENCH = 8, M_DUMP = 16, M_ALL = 31 };

typedef enum {
    O_TRAIN, O_EVAL, O_PREDICT, O_WEIGHTS, O_OUT, O_EPOCHS, O_BATCH, O_LR, O_OPTIMIZER,
    O_MOMENTUM, O_WD, O_SEED, O_THREADS, O_SPLIT, O_AUGMENT, O_REPORT, O_PLOT, O_CACHEDIR,
    O_NOCACHE, O_ALL, O_QUIET, O_HELP, O_VERSION, O_BENCH, O_PROFILE, O_DUMP, O_TRAINMODE,
    NOPTS
} opt_id;

typedef struct {
    const char *name;
    const char *arg;        /* NULL: a flag */
    int modes;              /* commands it applies to */
    const char *what;       /* what a valid value is, for messages */
} opt_def;

static const opt_def opts[NOPTS] = {
    [O_TRAIN] = {"--train", "DIR", M_ALL, "an image folder, Kaggle download or IDX set"},
    [O_EVAL] = {"--eval", "DIR", M_ALL, "an image folder, Kaggle download or IDX set"},
    [O_PREDICT] = {"--predict", "IMAGE...", M_ALL, "one or more image files"},
    [O_WEIGHTS] = {"--weights", "FILE", M_EVAL | M_PREDICT | M_DUMP, "a weights file"},
    [O_OUT] = {"--out", "FILE", M_TRAIN, "a file name"},
    [O_EPOCHS] = {"--epochs", "N", M_TRAIN, "a whole number from 1 to 1000000"},
    [O_BATCH] = {"--batch", "B", M_TRAIN | M_EVAL | M_BENCH | M_DUMP,
                 "a whole number from 1 to 65536"},
    [O_LR] = {"--lr", "X", M_TRAIN, "a number greater than 0, e.g. 0.001 or 1e-3"},
    [O_OPTIMIZER] = {"--optimizer", "sgd|adam", M_TRAIN, "sgd or adam"},
    [O_MOMENTUM] = {"--momentum", "M", M_TRAIN, "a number from 0 up to (not including) 1"},
    [O_WD] = {"--weight-decay", "W", M_TRAIN, "a number, 0 or more"},
    [O_SEED] = {"--seed", "S", M_TRAIN | M_EVAL | M_BENCH | M_DUMP,
                "a whole number from 0 to 2^64-1"},
    [O_THREADS] = {"--threads", "T", M_ALL, "a whole number from 0 (all cores) to 1024"},
    [O_SPLIT] = {"--split", "A:B:C", M_TRAIN | M_EVAL,
                 "three whole numbers A:B:C (train:validation:test), e.g. 7:2:1, with A >= 1"},
    [O_AUGMENT] = {"--augment", "hflip|none", M_TRAIN, "hflip or none"},
    [O_REPORT] = {"--report", "FILE.md", M_TRAIN, "a file name"},
    [O_PLOT] = {"--plot", "FILE.png|.svg", M_TRAIN, "a file name ending in .png or .svg"},
    [O_CACHEDIR] = {"--cache-dir", "D", M_TRAIN | M_EVAL, "a folder"},
    [O_NOCACHE] = {"--no-cache", NULL, M_TRAIN | M_EVAL, NULL},
    [O_ALL] = {"--all", NULL, M_EVAL, NULL},
    [O_QUIET] = {"--quiet", NULL, M_ALL, NULL},
    [O_HELP] = {"--help", NULL, M_ALL, NULL},
    [O_VERSION] = {"--version", NULL, M_ALL, NULL},
    [O_BENCH] = {"--bench", "STEPS", M_ALL, "a whole number of steps from 1 to 1000000"},
    [O_PROFILE] = {"--profile", NULL, M_BENCH, NULL},
    [O_DUMP] = {"--dump", "FILE", M_ALL, "a file name"},
    [O_TRAINMODE] = {"--train-mode", NULL, M_DUMP, NULL},
};

/* Everything the command line said. */
typedef struct {
    int mode;
    const char *dir;
    char **images;
    int nimages;
    const char *weights, *out, *report, *plot, *cache_dir;
    int no_cache, all, quiet;
    int bench_steps, profile;   /* --bench STEPS, --profile */
    const char *dump;           /* --dump FILE */
    int train_mode;             /* --train-mode */
    rt_train_cfg cfg;
    int given[NOPTS];       /* which options appeared */
} cli;

typedef rt_cli_env env;

/* ------------------------------------------------------------ messages */

#define PRINTF_LIKE RT_PRINTF_LIKE(2, 3)

void rt_cli_error(const env *e, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: ", e->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int usage_error(const env *e, const char *fmt, ...) PRINTF_LIKE;
static int usage_error(const env *e, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: ", e->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for the list of options.\n", e->prog);
    return EXIT_USAGE;
}

static const char *opt_name(rt_opt_kind k)
{
    return k == RT_OPT_SGD ? "sgd" : "adam";
}

static void fmt_split(char *buf, size_t n, const int s[3])
{
    snprintf(buf, n, "%d:%d:%d", s[0], s[1], s[2]);
}

static void usage(const env *e, const rt_train_cfg *c, FILE *f)
{
    const rt_netdesc *d = e->d;
    rt_shape in = d->layers[0].out;
    char split[40];
    fmt_split(split, sizeof split, c->split);
    fprintf(f,
            "Usage: %s --train DIR [options]\n"
            "       %s --eval DIR [--weights FILE] [options]\n"
            "       %s --predict IMAGE... [--weights FILE]\n"
            "       %s --bench STEPS [--batch B] [--threads T] [--profile]\n"
            "       %s --dump FILE [--seed S] [--batch B] [--weights FILE] [--train-mode]\n"
            "Train the network on an image set, evaluate trained weights on one, classify\n"
            "image files, measure its speed, or dump one forward and backward pass.\n"
            "\n"
            "Network %s: %zu parameters, input %dx%dx%d (channels x height x width), "
            "%d classes.\n"
            "DIR is a folder with one sub-folder of images per class, a Kaggle Tom & Jerry\n"
            "download (with ground_truth.csv), or an IDX set (*-idx3-ubyte[.gz], e.g. MNIST).\n"
            "Images are scaled to the network's input size.\n"
            "\n"
            "Training (--train):\n"
            "  --epochs N             epochs to train (default %d)\n"
            "  --batch B              minibatch size (default %d; also for --eval, --bench\n"
            "                         and --dump)\n"
            "  --optimizer sgd|adam   optimizer (default %s)\n"
            "  --lr X                 learning rate (default %g)\n"
            "  --momentum M           SGD momentum, 0 <= M < 1 (default %g)\n"
            "  --weight-decay W       L2 weight decay (default %g)\n"
            "  --augment hflip|none   random horizontal flips of training images (default %s)\n"
            "  --out FILE             where the best weights are saved (default %s)\n"
            "  --report FILE.md       append the results row to a Markdown table\n"
            "  --plot FILE            loss and accuracy curves per epoch, .png or .svg\n"
            "\n"
            "Data (--train, --eval):\n"
            "  --split A:B:C          train:validation:test ratios (default %s); an IDX set\n"
            "                         keeps its own test set and splits the rest A:B\n"
            "  --seed S               seed of the split, initial weights, shuffling and\n"
            "                         dropout, and of the random batch of --bench and --dump\n"
            "                         (default %llu)\n"
            "  --cache-dir D          where decoded images are cached\n"
            "                         (default $XDG_CACHE_HOME/cnnc or ~/.cache/cnnc)\n"
            "  --no-cache             decode the images again and write no cache\n"
            "  --all                  --eval every image, not only the test split\n"
            "\n"
            "Speed and equivalence checks (no data needed; see bench/README.md):\n"
            "  --bench STEPS          time STEPS training steps (forward, loss, backward,\n"
            "                         optimizer) and STEPS inference batches on a seeded\n"
            "                         random batch, after 2 warm-up steps; prints lines\n"
            "                         'bench train images/s X gflops Y ...' and 'bench infer ...'\n"
            "                         from the median step (training FLOPs counted as 3x the\n"
            "                         forward FLOPs)\n"
            "  --profile              with --bench: each layer's forward and backward time,\n"
            "                         measured on the interpreter\n"
            "  --dump FILE            initialise the parameters from --seed (or load --weights),\n"
            "                         run one eval-mode forward, the loss and backward on a\n"
            "                         seeded random batch, and write the inputs, labels, logits,\n"
            "                         loss, parameters, gradients and batchnorm statistics to\n"
            "                         FILE (binary, layout in bench/README.md)\n"
            "  --train-mode           with --dump: a training-mode forward (batch statistics,\n"
            "                         dropout) instead\n"
            "\n"
            "Common:\n"
            "  --weights FILE         weights for --eval and --predict (default %s);\n"
            "                         --dump uses none unless given\n"
            "  --threads T            threads, 0 = all cores (default %d)\n"
            "  --quiet                no progress display or loading messages\n"
            "  --help                 this text\n"
            "  --version              the runtime's version\n"
            "\n"
            "The training keeps the weights of the epoch with the lowest validation loss and\n"
            "reports them on the test split as | Model | Val Loss | Val Acc | Test Loss |\n"
            "Test Acc | Runtime |. The same seed and thread count give the same results,\n"
            "bit for bit. Exit status: 0 success, 1 an error in the data, weights or files,\n"
            "2 a wrong command line.\n",
            e->prog, e->prog, e->prog, e->prog, e->prog, d->name, d->nparams, in.c, in.h, in.w,
            rt_netdesc_classes(d), c->epochs, c->batch, opt_name(c->opt.kind),
            (double)c->opt.lr, (double)c->opt.momentum, (double)c->opt.weight_decay,
            c->augment_hflip ? "hflip" : "none", e->default_weights, split,
            (unsigned long long)c->seed, e->default_weights, c->threads);
}

/* ------------------------------------------------------------ parsing */

/* Edit distance, to suggest the option that was meant. */
static int distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 40 || m > 40)
        return 99;
    int row[41];
    for (size_t j = 0; j <= m; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

static int bad_value(const env *e, opt_id o, const char *v)
{
    return usage_error(e, "%s: '%s' is not valid; expected %s", opts[o].name, v, opts[o].what);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_float(const char *s, double lo, double hi, int lo_open, int hi_open,
                       float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi || (lo_open && v == lo) ||
        (hi_open && v == hi))
        return -1;
    *out = (float)v;
    return 0;
}

static int parse_split(const char *s, int out[3])
{
    long v[3];
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        char *end;
        if (*p < '0' || *p > '9')
            return -1;
        errno = 0;
        v[i] = strtol(p, &end, 10);
        if (errno || v[i] > 1000000 || (i < 2 && *end != ':') || (i == 2 && *end))
            return -1;
        p = end + 1;
    }
    if (v[0] < 1)
        return -1;
    for (int i = 0; i < 3; i++)
        out[i] = (int)v[i];
    return 0;
}

static int parse_value(const env *e, cli *c, opt_id o, const char *v)
{
    long l;
    rt_train_cfg *g = &c->cfg;
    switch (o) {
    case O_TRAIN:
    case O_EVAL:
        c->dir = v;
        break;
    case O_WEIGHTS: c->weights = v; break;
    case O_DUMP: c->dump = v; break;
    case O_BENCH:
        if (parse_long(v, 1, 1000000, &l) < 0)
            return bad_value(e, o, v);
        c->bench_steps = (int)l;
        break;
    case O_OUT: c->out = v; break;
    case O_REPORT: c->report = v; break;
    case O_CACHEDIR: c->cache_dir = v; break;
    case O_PLOT: {
        size_t n = strlen(v);
        if (n < 5 || (strcmp(v + n - 4, ".png") && strcmp(v + n - 4, ".svg") &&
                      strcmp(v + n - 4, ".PNG") && strcmp(v + n - 4, ".SVG")))
            return bad_value(e, o, v);
        c->plot = v;
        break;
    }
    case O_EPOCHS:
        if (parse_long(v, 1, 1000000, &l) < 0)
            return bad_value(e, o, v);
        g->epochs = (int)l;
        break;
    case O_BATCH:
        if (parse_long(v, 1, 65536, &l) < 0)
            return bad_value(e, o, v);
        g->batch = (int)l;
        break;
    case O_THREADS:
        if (parse_long(v, 0, 1024, &l) < 0)
            return bad_value(e, o, v);
        g->threads = (int)l;
        break;
    case O_LR:
        if (parse_float(v, 0, 1e6, 1, 0, &g->opt.lr) < 0)
            return bad_value(e, o, v);
        break;
    case O_MOMENTUM:
        if (parse_float(v, 0, 1, 0, 1, &g->opt.momentum) < 0)
            return bad_value(e, o, v);
        break;
    case O_WD:
        if (parse_float(v, 0, 1e6, 0, 0, &g->opt.weight_decay) < 0)
            return bad_value(e, o, v);
        break;
    case O_SEED: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (*v < '0' || *v > '9' || *end || errno)
            return bad_value(e, o, v);
        g->seed = (uint64_t)s;
        break;
    }
    case O_SPLIT:
        if (parse_split(v, g->split) < 0)
            return bad_value(e, o, v);
        break;
    case O_OPTIMIZER:
        if (!strcmp(v, "sgd"))
            g->opt.kind = RT_OPT_SGD;
        else if (!strcmp(v, "adam"))
            g->opt.kind = RT_OPT_ADAM;
        else
            return bad_value(e, o, v);
        break;
    case O_AUGMENT:
        if (!strcmp(v, "hflip"))
            g->augment_hflip = 1;
        else if (!strcmp(v, "none"))
            g->augment_hflip = 0;
        else
            return bad_value(e, o, v);
        break;
    default:
        break;
    }
    return 0;
}

/* The option that selects a mode, e.g. "--eval" for M_EVAL. */
static const char *mode_word(int mode)
{
    return mode == M_TRAIN ? "--train" : mode == M_EVAL ? "--eval" : mode == M_PREDICT
           ? "--predict" : mode == M_BENCH ? "--bench" : "--dump";
}

/* "--train, --eval and --dump" for the modes set in mask. */
static void mode_list(int mask, char *buf, size_t n)
{
    int count = 0, total = 0;
    for (int m = 1; m <= M_DUMP; m <<= 1)
        total += (mask & m) != 0;
    buf[0] = 0;
    for (int m = 1; m <= M_DUMP; m <<= 1)
        if (mask & m) {
            size_t len = strlen(buf);
            snprintf(buf + len, n - len, "%s%s", count == 0 ? "" : count == total - 1
                     ? " and " : ", ", mode_word(m));
            count++;
        }
}

/* Fills c from argv; returns -1 to go on, or an exit code (help, version, usage error). */
static int parse(const env *e, int argc, char **argv, cli *c)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h"))
            a = "--help";
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            if (c->mode == M_PREDICT)
                return usage_error(e, "unexpected argument '%s': the images to classify "
                                   "follow --predict directly", a);
            return usage_error(e, "unexpected argument '%s'", a);
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        int o;
        for (o = 0; o < NOPTS; o++)
            if (strlen(opts[o].name) == len && !strncmp(opts[o].name, a, len))
                break;
        if (o == NOPTS) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(len < 60 ? len : 60), a);
            int best = -1, bd = 3;
            for (int k = 0; k < NOPTS; k++) {
                int dd = distance(name, opts[k].name);
                if (dd < bd) {
                    bd = dd;
                    best = k;
                }
            }
            if (best >= 0)
                return usage_error(e, "unknown option '%s' (did you mean %s?)", name,
                                   opts[best].name);
            return usage_error(e, "unknown option '%s'", name);
        }
        if (o == O_HELP)
            return usage(e, &c->cfg, stdout), EXIT_OK;
        if (o == O_VERSION) {
            printf("%s: cnnc runtime %s, weights format %d\n", e->prog, RT_VERSION,
                   RT_WEIGHTS_VERSION);
            return EXIT_OK;
        }
        if (c->given[o] && o != O_PREDICT)
            return usage_error(e, "%s is given twice", opts[o].name);
        c->given[o] = 1;
        if (!opts[o].arg) {
            if (eq)
                return usage_error(e, "%s takes no value", opts[o].name);
            if (o == O_NOCACHE)
                c->no_cache = 1;
            else if (o == O_ALL)
                c->all = 1;
            else if (o == O_QUIET)
                c->quiet = 1;
            else if (o == O_PROFILE)
                c->profile = 1;
            else if (o == O_TRAINMODE)
                c->train_mode = 1;
            continue;
        }
        if (o == O_TRAIN || o == O_EVAL || o == O_PREDICT || o == O_BENCH || o == O_DUMP) {
            int m = o == O_TRAIN ? M_TRAIN : o == O_EVAL ? M_EVAL : o == O_PREDICT ? M_PREDICT
                    : o == O_BENCH ? M_BENCH : M_DUMP;
            if (c->mode && c->mode != m)
                return usage_error(e, "choose one of --train, --eval, --predict, --bench and "
                                   "--dump");
            c->mode = m;
        }
        if (o == O_PREDICT) {   /* all following words that are not options */
            if (eq && eq[1])
                c->images[c->nimages++] = (char *)eq + 1;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0 &&
                   strcmp(argv[i + 1], "-h") != 0)
                c->images[c->nimages++] = argv[++i];
            if (!c->nimages)
                return usage_error(e, "--predict needs %s", opts[o].what);
            continue;
        }
        const char *v;
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
            v = argv[++i];
        else
            return usage_error(e, "%s needs a value: %s", opts[o].name, opts[o].what);
        if (!*v)
            return usage_error(e, "%s needs a value: %s", opts[o].name, opts[o].what);
        int rc = parse_value(e, c, (opt_id)o, v);
        if (rc)
            return rc;
    }
    if (!c->mode)
        return usage_error(e, "nothing to do: give --train DIR, --eval DIR, "
                           "--predict IMAGE..., --bench STEPS or --dump FILE");
    for (int o = 0; o < NOPTS; o++)
        if (c->given[o] && !(opts[o].modes & c->mode)) {
            char uses[80];
            mode_list(opts[o].modes, uses, sizeof uses);
            return usage_error(e, "%s does not apply to %s (it is for %s)", opts[o].name,
                               mode_word(c->mode), uses);
        }
    if (c->given[O_MOMENTUM] && c->cfg.opt.kind != RT_OPT_SGD)
        return usage_error(e, "--momentum applies to --optimizer sgd only (the optimizer is "
                           "%s)", opt_name(c->cfg.opt.kind));
    return -1;
}

/* ------------------------------------------------------------ shared steps */

static int load_data(const env *e, const cli *c, rt_dataset *ds, char *err)
{
    rt_load_opts lo = {c->cfg.threads, !c->no_cache, c->cache_dir, c->quiet};
    if (rt_dataset_load(c->dir, e->d->layers[0].out, &lo, ds, err) < 0) {
        rt_cli_error(e, "%s", err);
        return -1;
    }
    int k = rt_netdesc_classes(e->d);
    if (ds->nclasses != k) {
        rt_cli_error(e, "%s has %d classes but network '%s' has %d outputs", c->dir, ds->nclasses,
              e->d->name, k);
        rt_dataset_free(ds);
        return -1;
    }
    if (ds->n == 0) {
        rt_cli_error(e, "%s holds no images", c->dir);
        rt_dataset_free(ds);
        return -1;
    }
    return 0;
}

rt_model *rt_cli_make(const env *e, int batch, int threads, char *err)
{
    err[0] = 0;
    rt_model *m = e->make_model(e->ctx, batch, threads, err);
    if (!m)
        rt_cli_error(e, "cannot build the network: %s", err[0] ? err : "unknown error");
    return m;
}

static void destroy(rt_model *m)
{
    rt_model_destroy(m);
}

/* The class names the weights were trained with must be the data set's. */
static void check_names(const env *e, char **wn, int nw, const rt_dataset *ds,
                        const char *wfile)
{
    if (!wn)
        return;
    int same = nw == ds->nclasses;
    for (int i = 0; same && i < nw; i++)
        same = ds->classnames && ds->classnames[i] && !strcmp(wn[i], ds->classnames[i]);
    if (!same) {
        fflush(stdout);
        fprintf(stderr, "%s: warning: %s was trained on classes", e->prog, wfile);
        for (int i = 0; i < nw; i++)
            fprintf(stderr, "%s %s", i ? "," : "", wn[i]);
        fprintf(stderr, " but the data has");
        for (int i = 0; i < ds->nclasses; i++)
            fprintf(stderr, "%s %s", i ? "," : "", ds->classnames ? ds->classnames[i] : "?");
        fprintf(stderr, "\n");
    }
}

/* ------------------------------------------------------------ --train */

/* Fails early, before hours of training, if file could not be created where it should go:
 * creates and removes a temporary file beside it. */
static int probe_writable(const env *e, const char *what, const char *file)
{
    size_t n = strlen(file);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return -1;
    memcpy(tmp, file, n);
    memcpy(tmp + n, ".probe-XXXXXX", 14);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rt_cli_error(e, "cannot write %s %s: %s", what, file, strerror(errno));
        free(tmp);
        return -1;
    }
    close(fd);
    unlink(tmp);
    free(tmp);
    return 0;
}

typedef struct {
    const env *e;
    const rt_dataset *ds;
    rt_progress prog;
    const char *out;
    int save_failed;        /* the last save after an improvement failed */
} train_ctx;

static void on_batch(void *ctx, int epoch, int batch, int nbatches, double loss, double acc)
{
    train_ctx *t = ctx;
    rt_progress_batch(&t->prog, epoch, batch, nbatches, loss, acc);
}

/* The class every prediction of a confusion matrix falls in, or -1 if there are several
 * or the images hold only one true class (then one prediction may well be right). */
static int single_prediction(const int *conf, int k)
{
    int only = -1, classes = 0;
    for (int t = 0; t < k; t++) {
        int seen = 0;
        for (int p = 0; p < k; p++)
            if (conf[t * k + p] > 0) {
                if (only >= 0 && only != p)
                    return -1;
                only = p;
                seen = 1;
            }
        classes += seen;
    }
    return classes >= 2 ? only : -1;
}

static int on_epoch(void *ctx, const rt_history *h, int epoch, int improved,
                    const rt_model *m, char *err)
{
    train_ctx *t = ctx;
    const char *note = NULL;
    (void)err;
    if (improved) {
        char serr[RT_ERRLEN];
        if (rt_weights_save_named(t->out, m, t->ds->classnames, t->ds->nclasses, serr) < 0) {
            if (t->prog.live && !t->prog.quiet)
                fputc('\n', t->prog.f);
            t->prog.width = 0;
            rt_cli_error(t->e, "warning: %s; training goes on with the best weights kept in memory",
                  serr);
            t->save_failed = 1;
            note = "best (not saved)";
        } else {
            t->save_failed = 0;
            note = "saved";
        }
    }
    rt_progress_epoch(&t->prog, h, epoch, note);
    return 0;
}

static int cmd_train(const env *e, cli *c)
{
    double t0 = rt_now();
    char err[RT_ERRLEN];
    const rt_netdesc *d = e->d;
    rt_train_cfg *g = &c->cfg;
    int k = rt_netdesc_classes(d);
    const char *out = c->out ? c->out : e->default_weights;
    rt_dataset ds;
    rt_split sp;
    if (probe_writable(e, "weights file", out) < 0 ||
        (c->report && probe_writable(e, "report", c->report) < 0) ||
        (c->plot && probe_writable(e, "plot", c->plot) < 0))
        return EXIT_RUN;
    if (load_data(e, c, &ds, err) < 0)
        return EXIT_RUN;
    if (rt_split_make(&ds, g->split, g->seed, &sp, err) < 0) {
        rt_cli_error(e, "%s", err);
        rt_dataset_free(&ds);
        return EXIT_RUN;
    }
    int rc = EXIT_OK;
    rt_history h = {0};
    int *conf = NULL;
    rt_model *m = NULL;
    char split[40];
    fmt_split(split, sizeof split, g->split);
    if (sp.ntrain == 0) {
        rt_cli_error(e, "the split %s leaves no training images out of %d", split, ds.n);
        rc = EXIT_RUN;
        goto out;
    }
    m = rt_cli_make(e, g->batch, g->threads, err);
    if (!m) {
        rc = EXIT_RUN;
        goto out;
    }
    rt_init_params(d, m->params, m->state, g->seed);

    if (!c->quiet) {
        printf("%s: %zu parameters, input %dx%dx%d, %d classes\n", d->name, d->nparams,
               d->layers[0].out.c, d->layers[0].out.h, d->layers[0].out.w, k);
        printf("images: %d in %s; %d train, %d validation, %d test (split %s, seed %llu)\n",
               ds.n, c->dir, sp.ntrain, sp.nval, sp.ntest, split, (unsigned long long)g->seed);
        printf("training: %d epoch%s, batch %d, %s lr %g", g->epochs, g->epochs == 1 ? "" : "s",
               g->batch, opt_name(g->opt.kind), (double)g->opt.lr);
        if (g->opt.kind == RT_OPT_SGD && g->opt.momentum > 0)
            printf(" momentum %g", (double)g->opt.momentum);
        if (g->opt.weight_decay > 0)
            printf(" weight decay %g", (double)g->opt.weight_decay);
        printf("%s; best weights to %s\n", g->augment_hflip ? ", random flips" : "", out);
        if (sp.nval == 0)
            printf("note: no validation images: the best epoch is chosen by training loss\n");
        fflush(stdout);
    }

    train_ctx tc = {e, &ds, {0}, out, 0};
    rt_progress_init(&tc.prog, stdout, isatty(fileno(stdout)), c->quiet, g->epochs);
    rt_train_hooks hooks = {&tc, on_batch, on_epoch};
    if (rt_train_run(m, &ds, &sp, g, &hooks, &h, err) < 0) {
        if (tc.prog.live && tc.prog.width)
            fputc('\n', stdout);
        rt_cli_error(e, "%s", err);
        rc = EXIT_RUN;
        goto out;
    }
    if (tc.save_failed) {   /* one more try at the end; the disk may have room now */
        if (rt_weights_save_named(out, m, ds.classnames, ds.nclasses, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = EXIT_RUN;
        } else {
            tc.save_failed = 0;
        }
    }
    int b = h.best_epoch;
    if (b < 0) {
        rt_cli_error(e, "no epoch gave a finite %s loss; no weights kept", h.has_val ? "validation"
                                                                               : "training");
        rc = EXIT_RUN;
        goto out;
    }
    if (h.has_val)
        printf("\nbest epoch %d of %d: val loss %.4f, val accuracy %.2f%%", b + 1, h.epochs,
               h.val_loss[b], 100 * h.val_acc[b]);
    else
        printf("\nbest epoch %d of %d (by training loss, no validation images): train loss "
               "%.4f", b + 1, h.epochs, h.train_loss[b]);
    printf("; %s%s\n", tc.save_failed ? "NOT saved" : "weights in ", tc.save_failed ? "" : out);
    double tl = -1, ta = 0;
    conf = calloc((size_t)k * k, sizeof *conf);
    if (!conf) {
        rt_cli_error(e, "out of memory");
        rc = EXIT_RUN;
        goto out;
    }
    if (sp.ntest > 0) {
        if (rt_evaluate(m, &ds, sp.test, sp.ntest, &tl, &ta, conf, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = EXIT_RUN;
            goto out;
        }
        printf("test: loss %.4f, accuracy %.2f%% (%d images)\n\n", tl, 100 * ta, sp.ntest);
        printf("Confusion matrix on the test images (rows: true class, columns: predicted):\n");
        rt_confusion_print(stdout, conf, k, ds.classnames);
        int only = single_prediction(conf, k);
        if (only >= 0 && sp.ntest > 1)
            printf("\nnote: the network predicts '%s' for all %d test images: it has collapsed "
                   "to one class.\nWith relu layers this usually means their units died early "
                   "(an update pushed them below\nzero for every image) and cannot recover. "
                   "It depends on the initial weights and on\nrounding: try another --seed, a "
                   "smaller --lr, or batchnorm after the convolutions.\n",
                   ds.classnames[only], sp.ntest);
    } else {
        printf("test: no test images (split %s)\n", split);
    }
    double secs = rt_now() - t0;
    char row[512];
    rt_report_row(row, sizeof row, d->name, h.has_val ? h.val_loss[b] : -1, h.val_acc[b],
                  tl, ta, secs);
    printf("\n%s\n%s\n", rt_report_header(), row);
    fflush(stdout);
    if (c->report) {
        if (rt_report_append(c->report, row, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = EXIT_RUN;
        } else if (!c->quiet) {
            printf("row appended to %s\n", c->report);
        }
    }
    if (c->plot) {
        if (rt_plot_write(c->plot, &h, d->name, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = EXIT_RUN;
        } else if (!c->quiet) {
            printf("curves written to %s\n", c->plot);
        }
    }
out:
    free(conf);
    rt_history_free(&h);
    destroy(m);
    rt_split_free(&sp);
    rt_dataset_free(&ds);
    return rc;
}

/* ------------------------------------------------------------ --eval */

static int cmd_eval(const env *e, cli *c)
{
    char err[RT_ERRLEN];
    const rt_netdesc *d = e->d;
    rt_train_cfg *g = &c->cfg;
    int k = rt_netdesc_classes(d);
    const char *wfile = c->weights ? c->weights : e->default_weights;
    rt_dataset ds;
    rt_split sp = {0};
    int *idx = NULL, n = 0, rc = EXIT_OK;
    int *conf = NULL;
    char **wn = NULL;
    int nw = 0;
    rt_model *m = rt_cli_make(e, g->batch, g->threads, err);
    if (!m)
        return EXIT_RUN;
    /* the weights first: a wrong file fails before a long data load */
    if (rt_weights_load_named(wfile, m, &wn, &nw, err) < 0) {
        rt_cli_error(e, "%s", err);
        destroy(m);
        return EXIT_RUN;
    }
    if (load_data(e, c, &ds, err) < 0) {
        rt_names_free(wn, nw);
        destroy(m);
        return EXIT_RUN;
    }
    check_names(e, wn, nw, &ds, wfile);
    char split[40];
    fmt_split(split, sizeof split, g->split);
    if (c->all) {
        idx = malloc(sizeof *idx * (size_t)ds.n);
        if (!idx) {
            rt_cli_error(e, "out of memory");
            rc = EXIT_RUN;
            goto out;
        }
        for (int i = 0; i < ds.n; i++)
            idx[i] = i;
        n = ds.n;
    } else {
        if (rt_split_make(&ds, g->split, g->seed, &sp, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = EXIT_RUN;
            goto out;
        }
        if (sp.ntest == 0) {
            rt_cli_error(e, "the split %s leaves no test images; use --all or another --split",
                         split);
            rc = EXIT_RUN;
            goto out;
        }
        n = sp.ntest;
    }
    conf = calloc((size_t)k * k, sizeof *conf);
    if (!conf) {
        rt_cli_error(e, "out of memory");
        rc = EXIT_RUN;
        goto out;
    }
    double loss, acc;
    if (rt_evaluate(m, &ds, c->all ? idx : sp.test, n, &loss, &acc, conf, err) < 0) {
        rt_cli_error(e, "%s", err);
        rc = EXIT_RUN;
        goto out;
    }
    long correct = 0;
    for (int i = 0; i < k; i++)
        correct += conf[(size_t)i * k + i];
    if (c->all)
        printf("%s on %s: all %d images\n", wfile, c->dir, n);
    else
        printf("%s on %s: the %d test images of split %s, seed %llu\n", wfile, c->dir, n, split,
               (unsigned long long)g->seed);
    printf("loss %.4f, accuracy %.2f%% (%ld of %d correct)\n\n", loss, 100 * acc, correct, n);
    printf("Confusion matrix (rows: true class, columns: predicted):\n");
    rt_confusion_print(stdout, conf, k, ds.classnames);
out:
    free(conf);
    free(idx);
    rt_names_free(wn, nw);
    rt_split_free(&sp);
    rt_dataset_free(&ds);
    destroy(m);
    return rc;
}

/* ------------------------------------------------------------ --predict */

static int cmd_predict(const env *e, cli *c)
{
    char err[RT_ERRLEN];
    const rt_netdesc *d = e->d;
    int k = rt_netdesc_classes(d);
    rt_shape in = d->layers[0].out;
    const char *wfile = c->weights ? c->weights : e->default_weights;
    char **wn = NULL;
    int nw = 0, rc = EXIT_OK;
    rt_model *m = rt_cli_make(e, 1, c->cfg.threads, err);
    if (!m)
        return EXIT_RUN;
    if (rt_weights_load_named(wfile, m, &wn, &nw, err) < 0) {
        rt_cli_error(e, "%s", err);
        destroy(m);
        return EXIT_RUN;
    }
    if (wn && nw != k) {
        fflush(stdout);
        fprintf(stderr, "%s: warning: %s names %d classes, the network has %d; using numbers\n",
                e->prog, wfile, nw, k);
        rt_names_free(wn, nw);
        wn = NULL;
        nw = 0;
    }
    float *x = malloc(sizeof(float) * (size_t)in.c * in.h * in.w);
    float *logits = malloc(sizeof(float) * (size_t)k);
    float *probs = malloc(sizeof(float) * (size_t)k);
    int *order = malloc(sizeof(int) * (size_t)k);
    if (!x || !logits || !probs || !order) {
        rt_cli_error(e, "out of memory");
        rc = EXIT_RUN;
        goto out;
    }
    int top = k < 3 ? k : 3;
    for (int i = 0; i < c->nimages; i++) {
        const char *file = c->images[i];
        if (rt_image_load(file, in, x, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = EXIT_RUN;
            continue;
        }
        if (m->forward(m->self, x, 1, 0, logits) != 0) {
            rt_cli_error(e, "%s: forward pass failed", file);
            rc = EXIT_RUN;
            continue;
        }
        int label = 0, correct;
        rt_softmax_xent(logits, &label, 1, k, probs, NULL, &correct);
        for (int j = 0; j < k; j++)
            order[j] = j;
        for (int a = 0; a < top; a++)       /* partial selection sort: the top classes */
            for (int j = a + 1; j < k; j++)
                if (probs[order[j]] > probs[order[a]]) {
                    int t = order[a];
                    order[a] = order[j];
                    order[j] = t;
                }
        char name[32];
        for (int a = 0; a < top; a++) {
            const char *cn = wn ? wn[order[a]] : (snprintf(name, sizeof name, "class %d",
                                                           order[a]), name);
            if (a == 0)
                printf("%s: %s %.2f%%", file, cn, 100.0 * probs[order[a]]);
            else
                printf("%s%s %.2f%%", a == 1 ? "  (then " : ", ", cn, 100.0 * probs[order[a]]);
        }
        printf("%s\n", top > 1 ? ")" : "");
        fflush(stdout);
    }
out:
    free(x);
    free(logits);
    free(probs);
    free(order);
    rt_names_free(wn, nw);
    destroy(m);
    return rc;
}

/* ------------------------------------------------------------ entry */

int rt_cli_main(int argc, char **argv, const char *prog, const rt_netdesc *d,
                const rt_train_cfg *defaults, rt_model_factory make_model, void *ctx)
{
    env e = {prog && *prog ? prog : (argc > 0 ? argv[0] : "cnnrun"), d, make_model, ctx, ""};
    snprintf(e.default_weights, sizeof e.default_weights, "%s.weights",
             d->name[0] ? d->name : "model");
    cli c;
    memset(&c, 0, sizeof c);
    if (defaults)
        c.cfg = *defaults;
    else
        rt_train_cfg_defaults(&c.cfg);
    c.images = malloc(sizeof(char *) * (size_t)(argc > 0 ? argc : 1));
    if (!c.images) {
        rt_cli_error(&e, "out of memory");
        return EXIT_RUN;
    }
    int rc = parse(&e, argc, argv, &c);
    if (rc < 0) {
        switch (c.mode) {
        case M_TRAIN: rc = cmd_train(&e, &c); break;
        case M_EVAL: rc = cmd_eval(&e, &c); break;
        case M_BENCH: {
            rt_bench_cfg b = {c.bench_steps, c.cfg.batch, c.cfg.threads, c.profile,
                              c.cfg.seed, c.cfg.opt};
            rc = rt_cli_bench(&e, &b);
            break;
        }
        case M_DUMP: {
            rt_dump_cfg dc = {c.dump, c.weights, c.cfg.batch, c.cfg.threads, c.train_mode,
                              c.cfg.seed};
            rc = rt_cli_dump(&e, &dc);
            break;
        }
        default: rc = cmd_predict(&e, &c); break;
        }
    }
    free(c.images);
    fflush(stdout);
    return rc;
}
