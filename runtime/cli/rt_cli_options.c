/*
 * rt_cli_options.c - the options of the shared command line: their table (name, value,
 * the commands they apply to, what a valid value is), the usage text, and strict parsing
 * into rt_cli_args: a wrong option says which and what is valid ("did you mean"), exit 2.
 */
#include "rt_cli_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *arg;        /* NULL: a flag */
    int modes;              /* commands it applies to */
    const char *what;       /* what a valid value is, for messages */
} opt_def;

static const opt_def opts[RT_NOPTS] = {
    [RT_O_TRAIN] = {"--train", "DIR", RT_M_ALL, "an image folder, Kaggle download or IDX set"},
    [RT_O_EVAL] = {"--eval", "DIR", RT_M_ALL, "an image folder, Kaggle download or IDX set"},
    [RT_O_PREDICT] = {"--predict", "IMAGE...", RT_M_ALL, "one or more image files"},
    [RT_O_WEIGHTS] = {"--weights", "FILE", RT_M_EVAL | RT_M_PREDICT | RT_M_DUMP,
                      "a weights file"},
    [RT_O_OUT] = {"--out", "FILE", RT_M_TRAIN, "a file name"},
    [RT_O_EPOCHS] = {"--epochs", "N", RT_M_TRAIN, "a whole number from 1 to 1000000"},
    [RT_O_BATCH] = {"--batch", "B", RT_M_TRAIN | RT_M_EVAL | RT_M_BENCH | RT_M_DUMP,
                    "a whole number from 1 to 65536"},
    [RT_O_LR] = {"--lr", "X", RT_M_TRAIN, "a number greater than 0, e.g. 0.001 or 1e-3"},
    [RT_O_OPTIMIZER] = {"--optimizer", "sgd|adam|adamw", RT_M_TRAIN, "sgd, adam or adamw"},
    [RT_O_MOMENTUM] = {"--momentum", "M", RT_M_TRAIN, "a number from 0 up to (not including) 1"},
    [RT_O_WD] = {"--weight-decay", "W", RT_M_TRAIN, "a number, 0 or more"},
    [RT_O_SEED] = {"--seed", "S", RT_M_TRAIN | RT_M_EVAL | RT_M_BENCH | RT_M_DUMP,
                   "a whole number from 0 to 2^64-1"},
    [RT_O_THREADS] = {"--threads", "T", RT_M_ALL, "a whole number from 0 (all cores) to 1024"},
    [RT_O_SPLIT] = {"--split", "A:B:C", RT_M_TRAIN | RT_M_EVAL,
                    "three whole numbers A:B:C (train:validation:test), e.g. 7:2:1, with A >= 1"},
    [RT_O_AUGMENT] = {"--augment", "LIST", RT_M_TRAIN,
                      "a comma-separated list of hflip, vflip, crop=PIXELS, rotate=DEGREES, "
                      "scale=F, jitter=F, or none"},
    [RT_O_REPORT] = {"--report", "FILE.md", RT_M_TRAIN, "a file name"},
    [RT_O_PLOT] = {"--plot", "FILE.png|.svg", RT_M_TRAIN, "a file name ending in .png or .svg"},
    [RT_O_CACHEDIR] = {"--cache-dir", "D", RT_M_TRAIN | RT_M_EVAL, "a folder"},
    [RT_O_NOCACHE] = {"--no-cache", NULL, RT_M_TRAIN | RT_M_EVAL, NULL},
    [RT_O_ALL] = {"--all", NULL, RT_M_EVAL, NULL},
    [RT_O_QUIET] = {"--quiet", NULL, RT_M_ALL, NULL},
    [RT_O_HELP] = {"--help", NULL, RT_M_ALL, NULL},
    [RT_O_VERSION] = {"--version", NULL, RT_M_ALL, NULL},
    [RT_O_BENCH] = {"--bench", "STEPS", RT_M_ALL, "a whole number of steps from 1 to 1000000"},
    [RT_O_PROFILE] = {"--profile", NULL, RT_M_BENCH, NULL},
    [RT_O_DUMP] = {"--dump", "FILE", RT_M_ALL, "a file name"},
    [RT_O_TRAINMODE] = {"--train-mode", NULL, RT_M_DUMP, NULL},
    [RT_O_CHECKPOINT] = {"--checkpoint", "FILE", RT_M_TRAIN, "a file name"},
    [RT_O_RESUME] = {"--resume", "FILE", RT_M_TRAIN, "a checkpoint file"},
    [RT_O_INIT] = {"--init", "WEIGHTS", RT_M_TRAIN, "a weights file of this network"},
    [RT_O_LOG] = {"--log", "FILE.csv", RT_M_TRAIN, "a file name"},
    [RT_O_VAL] = {"--val", "DIR", RT_M_TRAIN, "a folder with one sub-folder of images per class"},
    [RT_O_TEST] = {"--test", "DIR", RT_M_TRAIN, "a folder with one sub-folder of images per class"},
    [RT_O_FORMAT] = {"--format", "text|csv|json", RT_M_PREDICT, "text, csv or json"},
    [RT_O_SCHEDULE] = {"--schedule", "KIND", RT_M_TRAIN, "constant, cosine, step or plateau"},
    [RT_O_WARMUP] = {"--warmup", "N", RT_M_TRAIN, "a whole number of epochs, 0 or more"},
    [RT_O_STEPEVERY] = {"--step-every", "N", RT_M_TRAIN, "a whole number of epochs, 1 or more"},
    [RT_O_STEPGAMMA] = {"--step-gamma", "G", RT_M_TRAIN,
                        "a number greater than 0 and at most 1, e.g. 0.1"},
    [RT_O_PPATIENCE] = {"--plateau-patience", "N", RT_M_TRAIN,
                        "a whole number of epochs, 0 or more"},
    [RT_O_PFACTOR] = {"--plateau-factor", "F", RT_M_TRAIN,
                      "a number between 0 and 1 (both excluded), e.g. 0.1"},
    [RT_O_STOPPAT] = {"--stop-patience", "N", RT_M_TRAIN,
                      "a whole number of epochs, 0 (off) or more"},
    [RT_O_BETAS] = {"--betas", "B1,B2", RT_M_TRAIN,
                    "two numbers from 0 up to (not including) 1, e.g. 0.9,0.999"},
    [RT_O_NESTEROV] = {"--nesterov", NULL, RT_M_TRAIN, NULL},
    [RT_O_CLIPNORM] = {"--clip-norm", "X", RT_M_TRAIN, "a number, 0 (off) or more, e.g. 1.0"},
    [RT_O_SMOOTHING] = {"--label-smoothing", "E", RT_M_TRAIN,
                        "a number from 0 up to (not including) 1, e.g. 0.1"},
};

const char *rt_cli_option_name(int o)
{
    return o >= 0 && o < RT_NOPTS ? opts[o].name : "";
}

int rt_cli_option_takes_value(int o)
{
    return o >= 0 && o < RT_NOPTS && opts[o].arg != NULL;
}

/* The options that set a word shared with the train { } section (rt_train_words.c). */
static const struct { rt_cli_opt opt; rt_train_word word; } word_opts[] = {
    {RT_O_OPTIMIZER, RT_W_OPTIMIZER}, {RT_O_LR, RT_W_LR}, {RT_O_MOMENTUM, RT_W_MOMENTUM},
    {RT_O_WD, RT_W_WD}, {RT_O_BETAS, RT_W_BETAS}, {RT_O_NESTEROV, RT_W_NESTEROV},
    {RT_O_SCHEDULE, RT_W_SCHEDULE}, {RT_O_WARMUP, RT_W_WARMUP}, {RT_O_STEPEVERY, RT_W_EVERY},
    {RT_O_STEPGAMMA, RT_W_GAMMA}, {RT_O_PPATIENCE, RT_W_PATIENCE}, {RT_O_PFACTOR, RT_W_FACTOR},
    {RT_O_STOPPAT, RT_W_STOP}, {RT_O_CLIPNORM, RT_W_CLIP}, {RT_O_SMOOTHING, RT_W_SMOOTHING},
};
enum { NWORD_OPTS = sizeof word_opts / sizeof word_opts[0] };

/* ------------------------------------------------------------ messages and --help */

static int usage_error(const rt_cli_env *e, const char *fmt, ...) RT_PRINTF_LIKE(2, 3);
static int usage_error(const rt_cli_env *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rt_cli_verror(e, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for the list of options.\n", e->prog);
    return RT_EXIT_USAGE;
}

/* The --help text, with the network's sizes and the defaults in effect (c). */
static void usage(const rt_cli_env *e, const rt_train_cfg *c, FILE *f)
{
    const rt_netdesc *d = e->d;
    rt_shape in = d->layers[0].out;
    char split[40], augment[200];
    rt_cli_fmt_split(split, sizeof split, c->split);
    rt_cli_fmt_augment(augment, sizeof augment, &c->augment);
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
            "  --optimizer sgd|adam|adamw  optimizer (default %s); adamw: decoupled weight\n"
            "                         decay as torch.optim.AdamW (default 0.01)\n"
            "  --lr X                 learning rate (default %g)\n"
            "  --momentum M           SGD momentum, 0 <= M < 1 (default %g)\n"
            "  --nesterov             SGD with Nesterov momentum (needs --momentum > 0)\n"
            "  --betas B1,B2          Adam and AdamW betas (default %g,%g)\n"
            "  --weight-decay W       weight decay: L2 for sgd and adam, decoupled for adamw\n"
            "                         (default %g)\n"
            "  --schedule KIND        learning rate per epoch: constant, cosine (to 0 over\n"
            "                         the run), step or plateau (default %s)\n"
            "  --warmup N             first N epochs ramp linearly: lr (e+1)/(N+1) in epoch e\n"
            "  --step-every N         step: multiply the lr by --step-gamma every N epochs\n"
            "  --step-gamma G         step: the factor, 0 < G <= 1 (default %g)\n"
            "  --plateau-patience N   plateau: multiply the lr by --plateau-factor after more\n"
            "                         than N epochs without a better validation loss\n"
            "                         (default %d)\n"
            "  --plateau-factor F     plateau: the factor, 0 < F < 1 (default %g)\n"
            "  --stop-patience N      stop after N epochs without a better validation loss\n"
            "                         (default %d, 0: never)\n"
            "  --clip-norm X          clip the gradient's global L2 norm to X (0: off)\n"
            "  --label-smoothing E    cross-entropy with label smoothing E, 0 <= E < 1\n"
            "  --augment LIST         random changes of training images, comma-separated:\n"
            "                         hflip, vflip, crop=PIXELS, rotate=DEGREES, scale=F,\n"
            "                         jitter=F, or none (default %s)\n"
            "  --out FILE             where the best weights are saved (default %s)\n"
            "  --report FILE.md       append the results row to a Markdown table\n"
            "  --plot FILE            loss and accuracy curves per epoch, .png or .svg\n"
            "  --log FILE.csv         one line per epoch: lr, losses, accuracies, seconds\n"
            "  --checkpoint FILE      where the run is saved after every epoch (default: the\n"
            "                         --out path with .ckpt for its extension)\n"
            "  --resume FILE          continue the run a checkpoint saved, bit for bit as if\n"
            "                         never stopped (alone, or with the same arguments)\n"
            "  --init WEIGHTS         start from trained weights (fine-tuning)\n"
            "  --val DIR, --test DIR  validation and test images from their own folders (one\n"
            "                         sub-folder per class) instead of a split of DIR\n"
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
            "  --all                  --eval every image (the default for a folder that is not\n"
            "                         split; --split A:B:C scores that split's test part)\n"
            "DIR may also hold train/, val/ (or valid/) and test/ folders, each with one\n"
            "sub-folder per class: they are the split (--eval scores test/).\n"
            "\n"
            "Classifying (--predict IMAGE|FOLDER...): folders are walked in name order;\n"
            "  --format text|csv|json one line per image (default text)\n"
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
            "bit for bit. Ctrl-C (or SIGTERM) stops training and prints the command that\n"
            "resumes it. Exit status: 0 success, 1 an error in the data, weights or files,\n"
            "2 a wrong command line, 130 interrupted. Under `mpirun -np N` (when built with\n"
            "MPI) training is data-parallel: the batch is the global one, --threads is per\n"
            "rank, and the losses are one process's to rounding (see the manual page).\n",
            e->prog, e->prog, e->prog, e->prog, e->prog, d->name, d->nparams, in.c, in.h, in.w,
            rt_netdesc_classes(d), c->epochs, c->batch, rt_cli_opt_name(c->opt.kind),
            (double)c->opt.lr, (double)c->opt.momentum, (double)c->opt.beta1,
            (double)c->opt.beta2, (double)c->opt.weight_decay,
            rt_sched_kind_name(c->schedule.kind), (double)c->schedule.gamma,
            c->schedule.patience, (double)c->schedule.factor, c->stop_patience, augment,
            e->default_weights, split,
            (unsigned long long)c->seed, e->default_weights, c->threads);
}

/* ------------------------------------------------------------ parsing */

static int bad_value(const rt_cli_env *e, rt_cli_opt o, const char *v)
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

static int parse_value(const rt_cli_env *e, rt_cli_args *c, rt_cli_opt o, const char *v)
{
    long l;
    rt_train_cfg *g = &c->cfg;
    switch (o) {
    case RT_O_TRAIN:
    case RT_O_EVAL:
        c->dir = v;
        break;
    case RT_O_WEIGHTS: c->weights = v; break;
    case RT_O_DUMP: c->dump = v; break;
    case RT_O_BENCH:
        if (parse_long(v, 1, 1000000, &l) < 0)
            return bad_value(e, o, v);
        c->bench_steps = (int)l;
        break;
    case RT_O_OUT: c->out = v; break;
    case RT_O_CHECKPOINT: c->checkpoint = v; break;
    case RT_O_RESUME: c->resume = v; break;
    case RT_O_INIT: c->init = v; break;
    case RT_O_LOG: c->log = v; break;
    case RT_O_VAL: c->val_dir = v; break;
    case RT_O_TEST: c->test_dir = v; break;
    case RT_O_FORMAT:
        if (!strcmp(v, "text"))
            c->format = 0;
        else if (!strcmp(v, "csv"))
            c->format = 1;
        else if (!strcmp(v, "json"))
            c->format = 2;
        else
            return bad_value(e, o, v);
        break;
    case RT_O_REPORT: c->report = v; break;
    case RT_O_CACHEDIR: c->cache_dir = v; break;
    case RT_O_PLOT: {
        size_t n = strlen(v);
        if (n < 5 || (strcmp(v + n - 4, ".png") && strcmp(v + n - 4, ".svg") &&
                      strcmp(v + n - 4, ".PNG") && strcmp(v + n - 4, ".SVG")))
            return bad_value(e, o, v);
        c->plot = v;
        break;
    }
    case RT_O_EPOCHS:
        if (parse_long(v, 1, 1000000, &l) < 0)
            return bad_value(e, o, v);
        g->epochs = (int)l;
        break;
    case RT_O_BATCH:
        if (parse_long(v, 1, 65536, &l) < 0)
            return bad_value(e, o, v);
        g->batch = (int)l;
        break;
    case RT_O_THREADS:
        if (parse_long(v, 0, 1024, &l) < 0)
            return bad_value(e, o, v);
        g->threads = (int)l;
        break;
    case RT_O_SEED: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (*v < '0' || *v > '9' || *end || errno)
            return bad_value(e, o, v);
        g->seed = (uint64_t)s;
        break;
    }
    case RT_O_SPLIT:
        if (parse_split(v, g->split) < 0)
            return bad_value(e, o, v);
        break;
    case RT_O_AUGMENT: {
        /* the list replaces the file's: each item of "hflip,crop=4" in turn */
        char item[64], err[RT_ERRLEN];
        memset(&g->augment, 0, sizeof g->augment);
        for (const char *p = v;; p++) {
            size_t n = strcspn(p, ",");
            if (n == 0 || n >= sizeof item)
                return bad_value(e, o, v);
            memcpy(item, p, n);
            item[n] = 0;
            if (rt_train_augment_item(&g->augment, item, err) < 0)
                return usage_error(e, "%s: %s", opts[o].name, err);
            p += n;
            if (!*p)
                break;
        }
        break;
    }
    default:
        for (int k = 0; k < NWORD_OPTS; k++)
            if (word_opts[k].opt == o) {
                char err[RT_ERRLEN];
                if (rt_train_word_set(g, word_opts[k].word, v, err) < 0)
                    return bad_value(e, o, v);
            }
        break;
    }
    return 0;
}

/* The option that selects a mode, e.g. "--eval" for RT_M_EVAL. */
static const char *mode_word(int mode)
{
    return mode == RT_M_TRAIN ? "--train" : mode == RT_M_EVAL ? "--eval" : mode == RT_M_PREDICT
           ? "--predict" : mode == RT_M_BENCH ? "--bench" : "--dump";
}

/* "--train, --eval and --dump" for the modes set in mask. */
static void mode_list(int mask, char *buf, size_t n)
{
    int count = 0, total = 0;
    for (int m = 1; m <= RT_M_DUMP; m <<= 1)
        total += (mask & m) != 0;
    buf[0] = 0;
    for (int m = 1; m <= RT_M_DUMP; m <<= 1)
        if (mask & m) {
            size_t len = strlen(buf);
            snprintf(buf + len, n - len, "%s%s", count == 0 ? "" : count == total - 1
                     ? " and " : ", ", mode_word(m));
            count++;
        }
}

/* Fills c from argv; returns -1 to go on, or an exit code (help, version, usage error). */
int rt_cli_parse(const rt_cli_env *e, int argc, char **argv, rt_cli_args *c)
{
    const rt_opt_kind kind0 = c->cfg.opt.kind; /* the file's: --optimizer may change it */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h"))
            a = "--help";
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            if (c->mode == RT_M_PREDICT)
                return usage_error(e, "unexpected argument '%s': the images to classify "
                                   "follow --predict directly", a);
            return usage_error(e, "unexpected argument '%s'", a);
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        int o;
        for (o = 0; o < RT_NOPTS; o++)
            if (strlen(opts[o].name) == len && !strncmp(opts[o].name, a, len))
                break;
        if (o == RT_NOPTS) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(len < 60 ? len : 60), a);
            int best = -1, bd = 3;
            for (int k = 0; k < RT_NOPTS; k++) {
                int dd = rt_edit_distance(name, opts[k].name);
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
        if (o == RT_O_HELP)
            return usage(e, &c->cfg, stdout), RT_EXIT_OK;
        if (o == RT_O_VERSION) {
            printf("%s: cnnc runtime %s, weights format %d\n", e->prog, RT_VERSION,
                   RT_WEIGHTS_VERSION);
            return RT_EXIT_OK;
        }
        if (c->given[o] && o != RT_O_PREDICT)
            return usage_error(e, "%s is given twice", opts[o].name);
        c->given[o] = 1;
        if (!opts[o].arg) {
            if (eq)
                return usage_error(e, "%s takes no value", opts[o].name);
            if (o == RT_O_NOCACHE)
                c->no_cache = 1;
            else if (o == RT_O_ALL)
                c->all = 1;
            else if (o == RT_O_QUIET)
                c->quiet = 1;
            else if (o == RT_O_PROFILE)
                c->profile = 1;
            else if (o == RT_O_TRAINMODE)
                c->train_mode = 1;
            else if (o == RT_O_NESTEROV)
                c->cfg.opt.nesterov = 1;
            continue;
        }
        if (o == RT_O_TRAIN || o == RT_O_EVAL || o == RT_O_PREDICT || o == RT_O_BENCH ||
            o == RT_O_DUMP) {
            int m = o == RT_O_TRAIN ? RT_M_TRAIN : o == RT_O_EVAL ? RT_M_EVAL
                    : o == RT_O_PREDICT ? RT_M_PREDICT : o == RT_O_BENCH ? RT_M_BENCH
                    : RT_M_DUMP;
            if (c->mode && c->mode != m)
                return usage_error(e, "choose one of --train, --eval, --predict, --bench and "
                                   "--dump");
            c->mode = m;
        }
        if (o == RT_O_PREDICT) {   /* all following words that are not options */
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
        int rc = parse_value(e, c, (rt_cli_opt)o, v);
        if (rc)
            return rc;
    }
    if (!c->mode && c->given[RT_O_RESUME])
        c->mode = RT_M_TRAIN; /* --resume FILE alone continues a training run */
    if (!c->mode)
        return usage_error(e, "nothing to do: give --train DIR, --eval DIR, "
                           "--predict IMAGE..., --bench STEPS or --dump FILE");
    for (int o = 0; o < RT_NOPTS; o++)
        if (c->given[o] && !(opts[o].modes & c->mode)) {
            char uses[80];
            mode_list(opts[o].modes, uses, sizeof uses);
            return usage_error(e, "%s does not apply to %s (it is for %s)", opts[o].name,
                               mode_word(c->mode), uses);
        }
    if (c->mode == RT_M_TRAIN) {
        /* the rules between settings, the same as the train { } section's; the optimizer
         * chosen here or in the file, each setting given here */
        unsigned char given[RT_NWORDS] = {0};
        for (int k = 0; k < NWORD_OPTS; k++)
            given[word_opts[k].word] = (unsigned char)c->given[word_opts[k].opt];
        /* adamw's default decay only when adamw is new here, not the file's own choice */
        given[RT_W_OPTIMIZER] = c->given[RT_O_OPTIMIZER] && c->cfg.opt.kind != kind0;
        char err[RT_ERRLEN];
        int w = rt_train_words_check(&c->cfg, given, err);
        if (w >= 0) {
            const char *name = "--optimizer";
            for (int k = 0; k < NWORD_OPTS; k++)
                if ((int)word_opts[k].word == w)
                    name = opts[word_opts[k].opt].name;
            return usage_error(e, "%s: %s", name, err);
        }
    }
    return -1;
}
