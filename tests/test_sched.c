/*
 * test_sched.c - the learning-rate schedules and early stopping (rt_sched.c) against values
 * worked out by hand and against float64 re-implementations of torch's schedulers written
 * here from their documentation (CosineAnnealingLR's recursive form, ReduceLROnPlateau's
 * steps), and the training loop using them: the lr of each epoch, early stopping. Also the
 * settings shared by the train { } section and the command line (rt_train_words.c) and
 * the command line's parsing of them into the configuration.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "fake_model.h"
#include "rt_cli_int.h"

#define CHECK(cond, ...)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

static rt_train_cfg cfg_of(rt_sched_kind kind, int epochs, float lr, int warmup)
{
    rt_train_cfg c;
    rt_train_cfg_defaults(&c);
    c.epochs = epochs;
    c.opt.lr = lr;
    c.schedule.kind = kind;
    c.schedule.warmup = warmup;
    return c;
}

/* A history of n epochs with these validation losses (train losses 9 + e, never used). */
static rt_history hist_of(const double *val, int n, int has_val)
{
    rt_history h;
    memset(&h, 0, sizeof h);
    h.epochs = n;
    h.has_val = has_val;
    h.best_epoch = -1;
    h.val_loss = calloc((size_t)n + 1, sizeof(double));
    h.train_loss = calloc((size_t)n + 1, sizeof(double));
    for (int e = 0; e < n; e++) {
        h.val_loss[e] = has_val ? val[e] : 9 + e;
        h.train_loss[e] = has_val ? 9 + e : val[e];
    }
    return h;
}

START_TEST(constant_and_warmup)
{
    rt_train_cfg c = cfg_of(RT_SCHED_CONSTANT, 6, 0.3f, 0);
    for (int e = 0; e < 6; e++)
        ck_assert_double_eq(rt_sched_lr(&c, e, NULL), (double)0.3f);
    /* warmup 2: base * 1/3, base * 2/3, then base */
    c.schedule.warmup = 2;
    ck_assert_double_eq_tol(rt_sched_lr(&c, 0, NULL), 0.1, 1e-7);
    ck_assert_double_eq_tol(rt_sched_lr(&c, 1, NULL), 0.2, 1e-7);
    ck_assert_double_eq_tol(rt_sched_lr(&c, 2, NULL), 0.3, 1e-7);
    ck_assert_double_eq_tol(rt_sched_lr(&c, 5, NULL), 0.3, 1e-7);
}
END_TEST

START_TEST(cosine)
{
    /* by hand: 5 epochs, warmup 1, base 0.1: 0.05 (warmup), then T = 4:
     * 0.1, 0.1 (1 + cos(pi/4)) / 2 = 0.0853553, 0.05, 0.1 (1 - cos(pi/4)) / 2 = 0.0146447 */
    rt_train_cfg c = cfg_of(RT_SCHED_COSINE, 5, 0.1f, 1);
    const double hand[5] = {0.05, 0.1, 0.0853553391, 0.05, 0.0146446609};
    for (int e = 0; e < 5; e++)
        ck_assert_double_eq_tol(rt_sched_lr(&c, e, NULL), hand[e], 1e-7);
    /* torch's recursive form, eta_min 0: lr_t = (1 + cos(pi t/T)) / (1 + cos(pi (t-1)/T))
     * lr_{t-1}, for 30 epochs without warmup */
    c = cfg_of(RT_SCHED_COSINE, 30, 0.02f, 0);
    double lr = (double)0.02f;
    const double pi = acos(-1.0);
    for (int t = 0; t < 30; t++) {
        if (t > 0)
            lr *= (1 + cos(pi * t / 30)) / (1 + cos(pi * (t - 1) / 30));
        CHECK(fabs(rt_sched_lr(&c, t, NULL) - lr) < 1e-12, "epoch %d: %.12g vs %.12g", t,
              rt_sched_lr(&c, t, NULL), lr);
    }
}
END_TEST

START_TEST(step)
{
    /* every 2, gamma 0.5, warmup 1, base 0.4: 0.2 (warmup), 0.4, 0.4, 0.2, 0.2, 0.1, 0.1 */
    rt_train_cfg c = cfg_of(RT_SCHED_STEP, 7, 0.4f, 1);
    c.schedule.every = 2;
    c.schedule.gamma = 0.5f;
    const double hand[7] = {0.2, 0.4, 0.4, 0.2, 0.2, 0.1, 0.1};
    for (int e = 0; e < 7; e++)
        ck_assert_double_eq_tol(rt_sched_lr(&c, e, NULL), hand[e], 1e-7);
}
END_TEST

START_TEST(plateau)
{
    /* patience 1, factor 0.5, base 1. Losses 1, 0.9, 0.95, 0.9, 0.89995, 0.89992, 0.5:
     * after e0 best 1; e1 better (best 0.9); e2 bad 1; e3 0.9 is not below 0.9 (1 - 1e-4):
     * bad 2 > 1: lr 0.5, count restarts; e4 0.89995 is not below 0.89991 (relative
     * threshold; a plain < would call it better): bad 1; e5 bad 2: lr 0.25; e6 better.
     * So epochs 0..7 train with 1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25. */
    const double loss[7] = {1, 0.9, 0.95, 0.9, 0.89995, 0.89992, 0.5};
    const double want[8] = {1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25};
    for (int has_val = 0; has_val < 2; has_val++) {
        rt_history h = hist_of(loss, 7, has_val);
        rt_train_cfg c = cfg_of(RT_SCHED_PLATEAU, 8, 1.0f, 0);
        c.schedule.patience = 1;
        c.schedule.factor = 0.5f;
        for (int e = 0; e < 8; e++)
            CHECK(rt_sched_lr(&c, e, &h) == want[e], "has_val %d epoch %d: %g vs %g", has_val, e,
                  rt_sched_lr(&c, e, &h), want[e]);
        /* pure in the history: only the epochs before `epoch` count */
        h.epochs = 3;
        ck_assert_double_eq(rt_sched_lr(&c, 7, &h), 1.0);
        free(h.val_loss);
        free(h.train_loss);
    }
    /* warmup 2: the warmup epochs are not counted; base 0.3 -> 0.1, 0.2, then the plateau
     * replay over epochs 2.. of losses 5, 5, 5: bad 1, bad 2 > 1 -> 0.3 * 0.5 at epoch 4 */
    const double flat[4] = {1, 0.5, 5, 5};
    rt_history h = hist_of(flat, 4, 1);
    rt_train_cfg c = cfg_of(RT_SCHED_PLATEAU, 8, 0.3f, 2);
    c.schedule.patience = 1;
    c.schedule.factor = 0.5f;
    ck_assert_double_eq_tol(rt_sched_lr(&c, 0, &h), 0.1, 1e-7);
    ck_assert_double_eq_tol(rt_sched_lr(&c, 1, &h), 0.2, 1e-7);
    ck_assert_double_eq_tol(rt_sched_lr(&c, 2, &h), 0.3, 1e-7);
    ck_assert_double_eq_tol(rt_sched_lr(&c, 3, &h), 0.3, 1e-7);
    ck_assert_double_eq_tol(rt_sched_lr(&c, 4, &h), 0.3, 1e-7); /* e2 best, e3 bad 1 */
    free(h.val_loss);
    free(h.train_loss);
    h = hist_of((const double[]){1, 0.5, 5, 5, 5}, 5, 1);
    ck_assert_double_eq_tol(rt_sched_lr(&c, 5, &h), 0.15, 1e-7); /* e4 bad 2 */
    free(h.val_loss);
    free(h.train_loss);
}
END_TEST

START_TEST(early_stopping)
{
    rt_train_cfg c = cfg_of(RT_SCHED_CONSTANT, 10, 0.1f, 0);
    const double loss[5] = {1, 0.8, 0.9, 0.85, 0.7};
    rt_history h = hist_of(loss, 5, 1);
    h.epochs = 4;
    ck_assert_int_eq(rt_sched_stop(&c, &h), 0); /* off */
    c.stop_patience = 2;
    h.epochs = 3;
    ck_assert_int_eq(rt_sched_stop(&c, &h), 0); /* one epoch since the best (e1) */
    h.epochs = 4;
    ck_assert_int_eq(rt_sched_stop(&c, &h), 1); /* two */
    h.epochs = 5;
    ck_assert_int_eq(rt_sched_stop(&c, &h), 0); /* e4 is a new best */
    c.stop_patience = 3;
    h.epochs = 4;
    ck_assert_int_eq(rt_sched_stop(&c, &h), 0);
    free(h.val_loss);
    free(h.train_loss);
    /* an equal loss is no improvement; without validation the training loss decides */
    c.stop_patience = 1;
    h = hist_of((const double[]){2, 2}, 2, 0);
    ck_assert_int_eq(rt_sched_stop(&c, &h), 1);
    free(h.val_loss);
    free(h.train_loss);
}
END_TEST

/* The training loop: the lr of each epoch is the schedule's (recorded in h.lr and used by
 * the optimizer: plain SGD, so the first step moves by exactly lr * gradient), and early
 * stopping ends the run when the criterion stalls. Random labels: nothing to learn, so the
 * validation loss soon stops improving with a large lr. */
START_TEST(loop_uses_schedule_and_stops)
{
    fake_net net;
    fake_net_init(&net, "lin", 1, 2, 2, 3);
    rt_dataset ds;
    memset(&ds, 0, sizeof ds);
    static char *names[] = {"a", "b", "c"};
    enum { N = 60 };
    ds.n = N, ds.c = 1, ds.h = 2, ds.w = 2, ds.nclasses = 3, ds.classnames = names;
    ds.pix = malloc(N * 4);
    ds.label = malloc(N * sizeof(int));
    uint32_t r = 5;
    for (int i = 0; i < N * 4; i++)
        ds.pix[i] = (uint8_t)((r = r * 1664525u + 1013904223u) >> 24);
    for (int i = 0; i < N; i++)
        ds.label[i] = (int)(((r = r * 1664525u + 1013904223u) >> 16) % 3);
    int idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = i;
    rt_split sp = {idx, idx + 40, NULL, 40, 20, 0};
    char err[RT_ERRLEN];

    rt_train_cfg c = cfg_of(RT_SCHED_STEP, 6, 0.2f, 1);
    c.opt.kind = RT_OPT_SGD;
    c.batch = 8;
    c.schedule.every = 2;
    c.schedule.gamma = 0.1f;
    fake_model *f = fake_new(&net.desc, 8, 3);
    rt_history h;
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &c, NULL, &h, err), 0);
    ck_assert_int_eq(h.epochs, 6);
    const double want[6] = {0.1, 0.2, 0.2, 0.02, 0.02, 0.002};
    for (int e = 0; e < 6; e++)
        CHECK(fabs(h.lr[e] - want[e]) < 1e-7, "epoch %d lr %g vs %g", e, h.lr[e], want[e]);
    rt_history_free(&h);
    f->m.destroy(f);

    /* the optimizer steps with it: one epoch of warmup 1 from base 0.3 (lr 0.15) gives the
     * same weights as one constant epoch at lr 0.15 */
    float *pa = NULL;
    for (int run = 0; run < 2; run++) {
        rt_train_cfg one = cfg_of(run ? RT_SCHED_CONSTANT : RT_SCHED_COSINE, 1, run ? 0.15f : 0.3f,
                                  run ? 0 : 1);
        one.opt.kind = RT_OPT_SGD;
        one.batch = 8;
        f = fake_new(&net.desc, 8, 3);
        ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &one, NULL, &h, err), 0);
        ck_assert_double_eq_tol(h.lr[0], 0.15, 1e-7);
        if (!run) {
            pa = malloc(sizeof(float) * f->m.nparams);
            memcpy(pa, f->m.params, sizeof(float) * f->m.nparams);
        } else {
            for (size_t i = 0; i < f->m.nparams; i++)
                CHECK(pa[i] == f->m.params[i], "parameter %zu: %g vs %g", i, pa[i], f->m.params[i]);
        }
        rt_history_free(&h);
        f->m.destroy(f);
    }
    free(pa);

    c = cfg_of(RT_SCHED_CONSTANT, 40, 3.0f, 0);
    c.opt.kind = RT_OPT_SGD;
    c.batch = 8;
    c.stop_patience = 2;
    f = fake_new(&net.desc, 8, 3);
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &c, NULL, &h, err), 0);
    ck_assert_msg(h.epochs < 40, "ran all %d epochs", h.epochs);
    /* the last two epochs did not beat the best before them, no earlier pair did */
    double best = INFINITY;
    int since = 0, stop_at = -1;
    for (int e = 0; e < h.epochs && stop_at < 0; e++) {
        if (h.val_loss[e] < best)
            best = h.val_loss[e], since = 0;
        else if (++since >= 2)
            stop_at = e;
    }
    ck_assert_int_eq(stop_at, h.epochs - 1);
    rt_history_free(&h);
    f->m.destroy(f);
    free(ds.pix);
    free(ds.label);
}
END_TEST

START_TEST(words)
{
    rt_train_cfg c;
    rt_train_cfg_defaults(&c);
    char err[RT_ERRLEN];
    unsigned char given[RT_NWORDS] = {0};
    ck_assert_int_eq(rt_train_word_set(&c, RT_W_OPTIMIZER, "adamw", err), 0);
    ck_assert_int_eq(c.opt.kind, RT_OPT_ADAMW);
    ck_assert_int_eq(rt_train_word_set(&c, RT_W_BETAS, "0.8,0.95", err), 0);
    ck_assert_float_eq(c.opt.beta1, 0.8f);
    ck_assert_float_eq(c.opt.beta2, 0.95f);
    const struct { rt_train_word w; const char *v; } badv[] = {
        {RT_W_OPTIMIZER, "rmsprop"}, {RT_W_LR, "0"}, {RT_W_LR, "1e-3x"}, {RT_W_MOMENTUM, "1"},
        {RT_W_WD, "-0.1"}, {RT_W_BETAS, "0.9"}, {RT_W_BETAS, "0.9,"}, {RT_W_BETAS, ",0.9"},
        {RT_W_BETA1, "1"}, {RT_W_NESTEROV, "1"}, {RT_W_SCHEDULE, "linear"},
        {RT_W_WARMUP, "-1"}, {RT_W_WARMUP, "1.5"}, {RT_W_EVERY, "0"}, {RT_W_GAMMA, "0"},
        {RT_W_GAMMA, "1.5"}, {RT_W_PATIENCE, "x"}, {RT_W_FACTOR, "1"}, {RT_W_STOP, "-2"},
        {RT_W_CLIP, "nan"}, {RT_W_SMOOTHING, "1"}, {RT_W_LR, NULL}};
    for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++) {
        rt_train_cfg before = c;
        CHECK(rt_train_word_set(&c, badv[i].w, badv[i].v, err) == -1, "word %d '%s' accepted",
              badv[i].w, badv[i].v ? badv[i].v : "(null)");
        CHECK(strstr(err, "expected") != NULL, "no valid values in '%s'", err);
        CHECK(!memcmp(&before, &c, sizeof c), "word %d changed the settings", badv[i].w);
    }
    /* augment items */
    rt_augment_cfg a = {0};
    const char *items[] = {"hflip", "vflip", "crop=4", "rotate=10", "scale=0.1", "jitter=0.2"};
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(rt_train_augment_item(&a, items[i], err), 0);
    ck_assert(a.hflip && a.vflip && a.crop == 4);
    ck_assert_float_eq(a.rotate, 10.0f);
    ck_assert_float_eq(a.scale, 0.1f);
    ck_assert_float_eq(a.jitter, 0.2f);
    const char *baditems[] = {"hflip=1", "crop", "crop=0", "rotate=0", "scale=1", "jitter=-1",
                              "flip", ""};
    for (int i = 0; i < 8; i++)
        CHECK(rt_train_augment_item(&a, baditems[i], err) == -1, "'%s' accepted", baditems[i]);
    ck_assert_int_eq(rt_train_augment_item(&a, "none", err), 0);
    ck_assert(!a.hflip && !a.vflip && !a.crop && a.rotate == 0);

    /* the rules between settings; the word at fault comes back */
    rt_train_cfg_defaults(&c);
    ck_assert_int_eq(rt_train_words_check(&c, given, err), -1);
    given[RT_W_MOMENTUM] = 1;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), RT_W_MOMENTUM); /* adam */
    c.opt.kind = RT_OPT_SGD;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), -1);
    c.opt.nesterov = 1;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), RT_W_NESTEROV); /* momentum 0 */
    c.opt.momentum = 0.9f;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), -1);
    given[RT_W_BETA2] = 1;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), RT_W_BETA2);
    rt_train_cfg_defaults(&c);
    memset(given, 0, sizeof given);
    given[RT_W_GAMMA] = 1;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), RT_W_GAMMA);
    c.schedule.kind = RT_SCHED_STEP;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), RT_W_SCHEDULE); /* every */
    c.schedule.every = 3;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), -1);
    given[RT_W_PATIENCE] = 1;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), RT_W_PATIENCE);
    memset(given, 0, sizeof given);
    c.schedule.warmup = c.epochs;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), RT_W_WARMUP);
    c.schedule.warmup = c.epochs - 1;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), -1);
    /* adamw chosen without a decay gets torch's 0.01; a decay given stays */
    c.opt.kind = RT_OPT_ADAMW;
    given[RT_W_OPTIMIZER] = 1;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), -1);
    ck_assert_float_eq(c.opt.weight_decay, 0.01f);
    c.opt.weight_decay = 0;
    given[RT_W_WD] = 1;
    ck_assert_int_eq(rt_train_words_check(&c, given, err), -1);
    ck_assert_float_eq(c.opt.weight_decay, 0.0f);
}
END_TEST

/* The command line's words land in the configuration. */
static int parse(rt_cli_args *a, const rt_train_cfg *defaults, const char *const *args)
{
    static fake_net net;
    fake_net_init(&net, "fakenet", 1, 2, 2, 3);
    rt_cli_env e = {"testprog", &net.desc, fake_factory, &net.desc, "fakenet.weights"};
    static char *argv[64];
    int argc = 0;
    argv[argc++] = "prog";
    while (*args)
        argv[argc++] = (char *)*args++;
    static char *images[64];
    memset(a, 0, sizeof *a);
    a->cfg = *defaults;
    a->images = images;
    return rt_cli_parse(&e, argc, argv, a);
}

START_TEST(cli_words)
{
    rt_train_cfg d;
    rt_train_cfg_defaults(&d);
    rt_cli_args a;
    ck_assert_int_eq(parse(&a, &d, (const char *const[]){"--train", "x", "--optimizer", "sgd",
        "--momentum", "0.8", "--nesterov", "--schedule", "step", "--step-every", "3",
        "--step-gamma", "0.5", "--warmup", "2", "--stop-patience", "4", "--clip-norm", "2.5",
        "--label-smoothing", "0.1", "--augment", "hflip,crop=4,jitter=0.2", NULL}), -1);
    ck_assert_int_eq(a.cfg.opt.kind, RT_OPT_SGD);
    ck_assert_float_eq(a.cfg.opt.momentum, 0.8f);
    ck_assert_int_eq(a.cfg.opt.nesterov, 1);
    ck_assert_int_eq(a.cfg.schedule.kind, RT_SCHED_STEP);
    ck_assert_int_eq(a.cfg.schedule.every, 3);
    ck_assert_float_eq(a.cfg.schedule.gamma, 0.5f);
    ck_assert_int_eq(a.cfg.schedule.warmup, 2);
    ck_assert_int_eq(a.cfg.stop_patience, 4);
    ck_assert_float_eq(a.cfg.clip_norm, 2.5f);
    ck_assert_float_eq(a.cfg.label_smoothing, 0.1f);
    ck_assert(a.cfg.augment.hflip && !a.cfg.augment.vflip && a.cfg.augment.crop == 4);
    ck_assert_float_eq(a.cfg.augment.jitter, 0.2f);

    ck_assert_int_eq(parse(&a, &d, (const char *const[]){"--train", "x", "--optimizer", "adamw",
        "--betas", "0.85,0.99", "--schedule", "plateau", "--plateau-patience", "2",
        "--plateau-factor", "0.5", NULL}), -1);
    ck_assert_int_eq(a.cfg.opt.kind, RT_OPT_ADAMW);
    ck_assert_float_eq(a.cfg.opt.weight_decay, 0.01f); /* torch's default for adamw */
    ck_assert_float_eq(a.cfg.opt.beta1, 0.85f);
    ck_assert_float_eq(a.cfg.opt.beta2, 0.99f);
    ck_assert_int_eq(a.cfg.schedule.patience, 2);
    ck_assert_float_eq(a.cfg.schedule.factor, 0.5f);

    /* the file chose adamw with its own decay: --optimizer adamw keeps it; --augment
     * replaces the file's list */
    d.opt.kind = RT_OPT_ADAMW;
    d.opt.weight_decay = 0.05f;
    d.augment.vflip = 1;
    ck_assert_int_eq(parse(&a, &d, (const char *const[]){"--train", "x", "--optimizer", "adamw",
        "--augment", "hflip", NULL}), -1);
    ck_assert_float_eq(a.cfg.opt.weight_decay, 0.05f);
    ck_assert(a.cfg.augment.hflip && !a.cfg.augment.vflip);
    /* the file's schedule step with every=3: --step-gamma alone is fine */
    rt_train_cfg_defaults(&d);
    d.schedule.kind = RT_SCHED_STEP;
    d.schedule.every = 3;
    ck_assert_int_eq(parse(&a, &d, (const char *const[]){"--train", "x", "--step-gamma", "0.3",
        "--quiet", NULL}), -1);
    ck_assert_float_eq(a.cfg.schedule.gamma, 0.3f);
}
END_TEST

/* The lr of each epoch on the epoch line, and over the loss panel of the plot when it
 * changed (not when constant). */
START_TEST(display)
{
    const double val[3] = {1, 0.9, 0.8};
    rt_history h = hist_of(val, 3, 1);
    h.train_acc = calloc(3, sizeof(double));
    h.val_acc = calloc(3, sizeof(double));
    h.secs = calloc(3, sizeof(double));
    h.lr = calloc(3, sizeof(double));
    h.lr[0] = 0.05, h.lr[1] = 0.1, h.lr[2] = 0.0146447;
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    rt_progress p;
    rt_progress_init(&p, f, 0, 0, 3);
    rt_progress_epoch(&p, &h, 2, "saved");
    fclose(f);
    ck_assert_msg(strstr(buf, "  lr 0.0146  saved\n") != NULL, "epoch line '%s'", buf);
    free(buf);

    char dir[] = "/tmp/cnnc-stest-XXXXXX", file[64], err[RT_ERRLEN], text[200000];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/c.svg", dir);
    for (int constant = 0; constant < 2; constant++) {
        if (constant)
            h.lr[0] = h.lr[1] = h.lr[2] = 0.1;
        ck_assert_int_eq(rt_plot_write(file, &h, "t", err), 0);
        f = fopen(file, "r");
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = 0;
        if (constant)
            ck_assert_ptr_null(strstr(text, "lr (0 to"));
        else
            ck_assert_ptr_nonnull(strstr(text, "lr (0 to 0.1)"));
    }
    unlink(file);
    rmdir(dir);
    free(h.val_loss), free(h.train_loss), free(h.train_acc), free(h.val_acc), free(h.secs);
    free(h.lr);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sched");
    TCase *t = tcase_create("schedules");
    tcase_add_test(t, constant_and_warmup);
    tcase_add_test(t, cosine);
    tcase_add_test(t, step);
    tcase_add_test(t, plateau);
    tcase_add_test(t, early_stopping);
    tcase_add_test(t, loop_uses_schedule_and_stops);
    tcase_add_test(t, words);
    tcase_add_test(t, cli_words);
    tcase_add_test(t, display);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
