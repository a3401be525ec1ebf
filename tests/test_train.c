/*
 * test_train.c - the training loop, evaluation, reports, plots and the command line, with
 * a hand-written linear model (fake_model.h) on tiny in-memory sets: learning, determinism,
 * per-epoch shuffling, eval mode for validation, best-weights restoration, confusion
 * counts, the Markdown row, the curves, the CLI's exit codes and messages, and its
 * --bench and --dump tools (the dump's contents recomputed here) and the FLOP count.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image.h>
#include <stb_image_write.h>

#include "cnnrt.h"
#include "fake_model.h"
#include "rt_train_int.h"

/* ------------------------------------------------------------ in-memory data */

static uint32_t lcg(uint32_t *r)
{
    *r = *r * 1664525u + 1013904223u;
    return *r >> 8;
}

/* n images c x h x w, all zero, labels 0; the caller fills them. */
static void ds_alloc(rt_dataset *ds, int n, int c, int h, int w, int k)
{
    static char *names[] = {"alpha", "beta", "gamma", "delta"};
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->nclasses = k;
    ds->classnames = names;
    ds->pix = calloc((size_t)n * c * h * w, 1);
    ds->label = calloc((size_t)n, sizeof(int));
}

static void ds_release(rt_dataset *ds)
{
    free(ds->pix);
    free(ds->label);
}

/* Separable 3-class set of 1x2x2 images: class j has pixel j bright, the rest dim. */
static void ds_separable(rt_dataset *ds, int n, uint32_t seed)
{
    ds_alloc(ds, n, 1, 2, 2, 3);
    uint32_t r = seed;
    for (int i = 0; i < n; i++) {
        int j = i % 3;
        ds->label[i] = j;
        for (int p = 0; p < 4; p++)
            ds->pix[4 * i + p] = (uint8_t)(p == j ? 180 + lcg(&r) % 76 : lcg(&r) % 90);
    }
}

/* train [0, a), val [a, b), test [b, n) */
static void split_ranges(rt_split *sp, int a, int b, int n)
{
    sp->ntrain = a;
    sp->nval = b - a;
    sp->ntest = n - b;
    sp->train = malloc(sizeof(int) * (size_t)(a ? a : 1));
    sp->val = malloc(sizeof(int) * (size_t)(b - a ? b - a : 1));
    sp->test = malloc(sizeof(int) * (size_t)(n - b ? n - b : 1));
    for (int i = 0; i < a; i++)
        sp->train[i] = i;
    for (int i = a; i < b; i++)
        sp->val[i - a] = i;
    for (int i = b; i < n; i++)
        sp->test[i - b] = i;
}

static void split_release(rt_split *sp)
{
    free(sp->train);
    free(sp->val);
    free(sp->test);
}

static rt_train_cfg cfg_adam(int epochs, int batch, float lr, uint64_t seed)
{
    rt_train_cfg c;
    rt_train_cfg_defaults(&c);
    c.epochs = epochs;
    c.batch = batch;
    c.opt.lr = lr;
    c.seed = seed;
    return c;
}

/* Mean cross-entropy and correct count of the model in eval mode over idx, in float64
 * from the logits: the independent reference for rt_evaluate. */
static double ref_loss(fake_model *f, const rt_dataset *ds, const int *idx, int n, int *correct)
{
    int in = ds->c * ds->h * ds->w, k = ds->nclasses;
    float x[64], logits[8];
    double sum = 0;
    *correct = 0;
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < in; p++)
            x[p] = ds->pix[(size_t)idx[i] * in + p] / 255.0f;
        long before = f->fwd_eval;
        f->m.forward(f, x, 1, 0, logits);
        f->fwd_eval = before;
        double mx = logits[0], z = 0;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (logits[j] > mx) {
                mx = logits[j];
                best = j;
            }
        for (int j = 0; j < k; j++)
            z += exp((double)logits[j] - mx);
        sum += -((double)logits[ds->label[idx[i]]] - mx - log(z));
        *correct += best == ds->label[idx[i]];
    }
    return sum / n;
}

/* ------------------------------------------------------------ training */

START_TEST(learns_separable_set)
{
    fake_net net;
    fake_net_init(&net, "lin", 1, 2, 2, 3);
    rt_dataset ds;
    ds_separable(&ds, 150, 1);
    rt_split sp;
    split_ranges(&sp, 90, 120, 150);
    fake_model *f = fake_new(&net.desc, 8, 3);
    rt_train_cfg cfg = cfg_adam(10, 8, 0.05f, 1);
    rt_history h;
    char err[RT_ERRLEN];
    double loss, acc;
    int c0;
    double before = ref_loss(f, &ds, sp.test, sp.ntest, &c0);
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), 0);
    ck_assert_int_eq(h.epochs, 10);
    ck_assert_int_eq(h.has_val, 1);
    ck_assert_int_eq(rt_evaluate(&f->m, &ds, sp.test, sp.ntest, &loss, &acc, NULL, err), 0);
    ck_assert_msg(acc > 0.9, "test accuracy %g", acc);
    int c1;
    double ref = ref_loss(f, &ds, sp.test, sp.ntest, &c1);
    ck_assert_double_eq_tol(loss, ref, 1e-5);
    ck_assert_double_eq_tol(acc, (double)c1 / sp.ntest, 1e-12);
    ck_assert_msg(ref < before * 0.5, "loss %g -> %g", before, ref);
    /* the train loss of the last epoch is below the first */
    ck_assert(h.train_loss[9] < h.train_loss[0]);
    ck_assert(h.train_acc[9] > 0.9);
    rt_history_free(&h);
    f->m.destroy(f);
    split_release(&sp);
    ds_release(&ds);
}
END_TEST

/* Runs 4 epochs of SGD and returns the history and final parameters. */
static void run_seed(uint64_t seed, rt_history *h, float *params, uint64_t *dseed)
{
    fake_net net;
    fake_net_init(&net, "lin", 1, 2, 2, 3);
    rt_dataset ds;
    ds_separable(&ds, 60, 2);
    rt_split sp;
    split_ranges(&sp, 40, 50, 60);
    fake_model *f = fake_new(&net.desc, 6, 3);
    rt_train_cfg cfg = cfg_adam(4, 6, 0.1f, seed);
    cfg.opt.kind = RT_OPT_SGD;
    cfg.opt.momentum = 0.9f;
    cfg.augment.hflip = 1;
    char err[RT_ERRLEN];
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, h, err), 0);
    memcpy(params, f->m.params, sizeof(float) * net.desc.nparams);
    ck_assert_int_eq(f->seeded, 1);
    *dseed = f->dropout_seed;
    f->m.destroy(f);
    split_release(&sp);
    ds_release(&ds);
}

START_TEST(same_seed_same_run)
{
    rt_history a, b, c;
    float pa[15], pb[15], pc[15];
    uint64_t da, db, dc;
    run_seed(5, &a, pa, &da);
    run_seed(5, &b, pb, &db);
    run_seed(6, &c, pc, &dc);
    ck_assert_int_eq(memcmp(a.train_loss, b.train_loss, 4 * sizeof(double)), 0);
    ck_assert_int_eq(memcmp(a.val_loss, b.val_loss, 4 * sizeof(double)), 0);
    ck_assert_int_eq(memcmp(a.train_acc, b.train_acc, 4 * sizeof(double)), 0);
    ck_assert_int_eq(memcmp(pa, pb, sizeof pa), 0);
    ck_assert(da == db);
    /* another seed shuffles, flips and seeds dropout differently */
    ck_assert_int_ne(memcmp(a.train_loss, c.train_loss, 4 * sizeof(double)), 0);
    ck_assert(da != dc);
    rt_history_free(&a);
    rt_history_free(&b);
    rt_history_free(&c);
}
END_TEST

/* A checkpoint hook that writes epoch `at`'s checkpoint to a file and keeps copies of what
 * it was given, to compare with what rt_checkpoint_read gives back. */
typedef struct {
    const char *file;
    int at;
    rt_train_state copy;
    float params[15];
} ck_watch;

static int ck_hook(void *ctx, const rt_train_state *s, const rt_history *h, const rt_model *m,
                   char *err)
{
    ck_watch *w = ctx;
    if (s->epoch != w->at)
        return 0;
    char *args[2] = {"--train", "somewhere"};
    if (rt_checkpoint_write(w->file, m, s, h, 2, args, err) < 0)
        return -1;
    w->copy = *s;
    w->copy.order = malloc(sizeof(int) * (size_t)s->ntrain);
    w->copy.opt_state = malloc(sizeof(float) * s->opt_floats);
    memcpy(w->copy.order, s->order, sizeof(int) * (size_t)s->ntrain);
    memcpy(w->copy.opt_state, s->opt_state, sizeof(float) * s->opt_floats);
    w->copy.best_params = w->copy.best_state = NULL;
    memcpy(w->params, m->params, sizeof w->params);
    return 0;
}

/* 4 epochs of SGD with momentum and flips, against 2 epochs checkpointed, then a new model
 * read from the checkpoint and run on: the same parameters, bit for bit; the checkpoint
 * gives back exactly what the hook was given; Adam's moments go through export/import. */
START_TEST(checkpoint_round_trip)
{
    for (int adam = 0; adam <= 1; adam++) {
        fake_net net;
        fake_net_init(&net, "lin", 1, 2, 2, 3);
        rt_dataset ds;
        ds_separable(&ds, 60, 2);
        rt_split sp;
        split_ranges(&sp, 40, 50, 60);
        rt_train_cfg cfg = cfg_adam(4, 6, 0.1f, 3);
        if (!adam) {
            cfg.opt.kind = RT_OPT_SGD;
            cfg.opt.momentum = 0.9f;
        }
        cfg.augment.hflip = 1;
        char err[RT_ERRLEN], file[] = "/tmp/cnnc-ckpt-XXXXXX";
        int fd = mkstemp(file);
        ck_assert_int_ge(fd, 0);
        close(fd);
        rt_history h;
        fake_model *full = fake_new(&net.desc, 6, 3);
        rt_init_params(&net.desc, full->m.params, full->m.state, 3);
        ck_assert_int_eq(rt_train_run(&full->m, &ds, &sp, &cfg, NULL, &h, err), 0);
        rt_history_free(&h);

        fake_model *a = fake_new(&net.desc, 6, 3);
        rt_init_params(&net.desc, a->m.params, a->m.state, 3);
        ck_watch w = {.file = file, .at = 2};
        rt_train_hooks hk = {.ctx = &w, .checkpoint = ck_hook};
        cfg.epochs = 2;
        ck_assert_int_eq(rt_train_run(&a->m, &ds, &sp, &cfg, &hk, &h, err), 0);
        rt_history_free(&h);

        fake_model *b = fake_new(&net.desc, 6, 3);
        rt_train_state rs;
        rt_history rh;
        ck_assert_int_eq(rt_checkpoint_read(file, &b->m, &rs, &rh, err), 0);
        ck_assert_int_eq(rs.epoch, 2);
        ck_assert_int_eq(rh.epochs, 2);
        ck_assert_int_eq(memcmp(&rs.rng, &w.copy.rng, sizeof rs.rng), 0);
        ck_assert_int_eq(rs.ntrain, 40);
        ck_assert_int_eq(memcmp(rs.order, w.copy.order, sizeof(int) * 40), 0);
        ck_assert_int_eq(rs.opt_step, w.copy.opt_step);
        ck_assert_int_eq(rs.opt_step, 2 * 7); /* 40 images in batches of 6: 7 a epoch */
        ck_assert_uint_eq(rs.opt_floats, adam ? 30 : 15);
        ck_assert_int_eq(memcmp(rs.opt_state, w.copy.opt_state, sizeof(float) * rs.opt_floats), 0);
        ck_assert_int_eq(memcmp(b->m.params, w.params, sizeof w.params), 0);
        int nargs;
        char **args;
        ck_assert_int_eq(rt_checkpoint_args(file, &net.desc, &nargs, &args, err), 0);
        ck_assert_int_eq(nargs, 2);
        ck_assert_str_eq(args[1], "somewhere");
        rt_names_free(args, nargs);
        cfg.epochs = 4;
        rt_train_hooks hr = {.resume = &rs, .resume_history = &rh};
        ck_assert_int_eq(rt_train_run(&b->m, &ds, &sp, &cfg, &hr, &h, err), 0);
        ck_assert_int_eq(h.epochs, 4);
        ck_assert_int_eq(memcmp(b->m.params, full->m.params, sizeof(float) * net.desc.nparams), 0);
        ck_assert_int_eq(memcmp(b->m.state, full->m.state, sizeof(float) * net.desc.nstate), 0);
        /* another network's model refuses the file */
        fake_net other;
        fake_net_init(&other, "lin", 1, 2, 2, 4);
        fake_model *o = fake_new(&other.desc, 6, 4);
        rt_train_state os;
        rt_history oh;
        ck_assert_int_eq(rt_checkpoint_read(file, &o->m, &os, &oh, err), -1);
        ck_assert_msg(strstr(err, "belongs to another network") != NULL, "%s", err);
        o->m.destroy(o);
        rt_history_free(&h);
        rt_history_free(&rh);
        rt_train_state_free(&rs);
        free(w.copy.order);
        free(w.copy.opt_state);
        unlink(file);
        full->m.destroy(full);
        a->m.destroy(a);
        b->m.destroy(b);
        split_release(&sp);
        ds_release(&ds);
    }
}
END_TEST

/* Each image's first pixel is its index: the model's record shows the visiting order. */
START_TEST(each_epoch_a_new_permutation)
{
    enum { N = 60, NTRAIN = 40, NVAL = 12, E = 3, B = 7 };
    fake_net net;
    fake_net_init(&net, "lin", 1, 1, 2, 2);
    rt_dataset ds;
    ds_alloc(&ds, N, 1, 1, 2, 2);
    for (int i = 0; i < N; i++) {
        ds.pix[2 * i] = (uint8_t)i;
        ds.pix[2 * i + 1] = (uint8_t)(100 + i);
        ds.label[i] = i % 2;
    }
    rt_split sp;
    split_ranges(&sp, NTRAIN, NTRAIN + NVAL, N);
    fake_model *f = fake_new(&net.desc, B, 3);
    rt_train_cfg cfg = cfg_adam(E, B, 0.01f, 11);
    rt_history h;
    char err[RT_ERRLEN];
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), 0);
    ck_assert_int_eq(f->nseen, E * NTRAIN);
    ck_assert_int_eq(f->fwd_train, E * NTRAIN);
    ck_assert_int_eq(f->fwd_eval, E * NVAL);     /* validation in eval mode, every epoch */
    int order[E][NTRAIN];
    for (int e = 0; e < E; e++) {
        int count[N] = {0};
        for (int i = 0; i < NTRAIN; i++) {
            int v = (int)lrintf(f->seen[e * NTRAIN + i] * 255.0f);
            ck_assert_int_ge(v, 0);
            ck_assert_int_lt(v, NTRAIN);         /* never a validation or test image */
            count[v]++;
            order[e][i] = v;
        }
        for (int i = 0; i < NTRAIN; i++)
            ck_assert_int_eq(count[i], 1);
    }
    int ident = 1, same01 = 1, same12 = 1;
    for (int i = 0; i < NTRAIN; i++) {
        ident &= order[0][i] == i;
        same01 &= order[0][i] == order[1][i];
        same12 &= order[1][i] == order[2][i];
    }
    ck_assert(!ident && !same01 && !same12);
    rt_history_free(&h);
    f->m.destroy(f);
    split_release(&sp);
    ds_release(&ds);
}
END_TEST

/* Images [10, 250]: the first pixel the model sees is 10 unflipped, 250 mirrored. */
static void count_flips(int augment, long *plain, long *flipped)
{
    fake_net net;
    fake_net_init(&net, "lin", 1, 1, 2, 2);
    rt_dataset ds;
    ds_alloc(&ds, 100, 1, 1, 2, 2);
    for (int i = 0; i < 100; i++) {
        ds.pix[2 * i] = 10;
        ds.pix[2 * i + 1] = 250;
        ds.label[i] = i % 2;
    }
    rt_split sp;
    split_ranges(&sp, 100, 100, 100);
    fake_model *f = fake_new(&net.desc, 10, 3);
    rt_train_cfg cfg = cfg_adam(4, 10, 0.01f, 3);
    cfg.augment.hflip = augment;
    rt_history h;
    char err[RT_ERRLEN];
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), 0);
    ck_assert_int_eq(h.has_val, 0);
    *plain = *flipped = 0;
    for (long i = 0; i < f->nseen; i++) {
        int v = (int)lrintf(f->seen[i] * 255.0f);
        ck_assert(v == 10 || v == 250);
        *(v == 10 ? plain : flipped) += 1;
    }
    rt_history_free(&h);
    f->m.destroy(f);
    split_release(&sp);
    ds_release(&ds);
}

START_TEST(hflip_augmentation)
{
    long plain, flipped;
    count_flips(0, &plain, &flipped);
    ck_assert_int_eq(plain, 400);
    ck_assert_int_eq(flipped, 0);
    count_flips(1, &plain, &flipped);
    ck_assert_int_eq(plain + flipped, 400);
    /* a fair coin: 400 tosses fall in [140, 260] with probability 1 - 3e-9 */
    ck_assert_msg(flipped > 140 && flipped < 260, "%ld of 400 flipped", flipped);
}
END_TEST

/* What the hooks saw of each epoch. */
typedef struct {
    fake_model *f;
    const rt_dataset *ds;
    const rt_split *sp;
    float params[16][15];
    float state[16][3];
    double val_ref[16];
    int improved[16];
    int batches, nbatches_seen;
} watch;

static void watch_batch(void *ctx, int epoch, int batch, int nbatches, double loss, double acc)
{
    watch *w = ctx;
    (void)epoch;
    (void)loss;
    ck_assert(acc >= 0 && acc <= 1);
    ck_assert_int_eq(batch, w->batches % nbatches);
    w->batches++;
    w->nbatches_seen = nbatches;
}

static int watch_epoch(void *ctx, const rt_history *h, int e, int improved, const rt_model *m,
                       char *err)
{
    watch *w = ctx;
    (void)err;
    ck_assert_int_eq(h->epochs, e + 1);
    memcpy(w->params[e], m->params, sizeof w->params[e]);
    memcpy(w->state[e], m->state, sizeof w->state[e]);
    w->improved[e] = improved;
    int c;
    w->val_ref[e] = ref_loss(w->f, w->ds, w->sp->val, w->sp->nval, &c);
    ck_assert_double_eq_tol(h->val_loss[e], w->val_ref[e], 1e-5);
    ck_assert_double_eq_tol(h->val_acc[e], (double)c / w->sp->nval, 1e-12);
    return 0;
}

/* The validation labels contradict the training labels: as training fits the one, the
 * other gets worse, so the best epoch is an early one and must be restored. */
START_TEST(best_weights_restored)
{
    enum { E = 8 };
    fake_net net;
    fake_net_init(&net, "lin", 1, 2, 2, 3);
    rt_dataset ds;
    ds_separable(&ds, 90, 4);
    for (int i = 60; i < 90; i++)
        ds.label[i] = (ds.label[i] + 1) % 3;
    rt_split sp;
    split_ranges(&sp, 60, 90, 90);
    fake_model *f = fake_new(&net.desc, 5, 3);
    rt_train_cfg cfg = cfg_adam(E, 5, 0.02f, 1);
    watch w = {.f = f, .ds = &ds, .sp = &sp};
    rt_train_hooks hooks = {.ctx = &w, .batch_done = watch_batch, .epoch_done = watch_epoch};
    rt_history h;
    char err[RT_ERRLEN];
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, &hooks, &h, err), 0);
    ck_assert_int_eq(w.batches, E * 12);
    ck_assert_int_eq(w.nbatches_seen, 12);
    int best = 0;
    for (int e = 1; e < E; e++)
        if (w.val_ref[e] < w.val_ref[best])
            best = e;
    ck_assert_int_eq(h.best_epoch, best);
    ck_assert_int_lt(best, E - 1);          /* else the test would prove nothing */
    for (int e = 0; e < E; e++) {           /* improved exactly at each new minimum */
        int newmin = 1;
        for (int j = 0; j < e; j++)
            newmin &= w.val_ref[e] < w.val_ref[j];
        ck_assert_int_eq(w.improved[e], newmin);
    }
    ck_assert_int_eq(memcmp(f->m.params, w.params[best], sizeof w.params[best]), 0);
    ck_assert_int_eq(memcmp(f->m.state, w.state[best], sizeof w.state[best]), 0);
    ck_assert_int_ne(memcmp(w.params[E - 1], w.params[best], sizeof w.params[best]), 0);
    rt_history_free(&h);
    f->m.destroy(f);
    split_release(&sp);
    ds_release(&ds);
}
END_TEST

START_TEST(no_validation_uses_train_loss)
{
    fake_net net;
    fake_net_init(&net, "lin", 1, 2, 2, 3);
    rt_dataset ds;
    ds_separable(&ds, 30, 5);
    rt_split sp;
    split_ranges(&sp, 24, 24, 30);
    fake_model *f = fake_new(&net.desc, 4, 3);
    rt_train_cfg cfg = cfg_adam(5, 4, 0.3f, 1);   /* a large step: the loss may bounce */
    rt_history h;
    char err[RT_ERRLEN];
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), 0);
    ck_assert_int_eq(h.has_val, 0);
    ck_assert_int_eq(f->fwd_eval, 0);
    int best = 0;
    for (int e = 1; e < 5; e++)
        if (h.train_loss[e] < h.train_loss[best])
            best = e;
    ck_assert_int_eq(h.best_epoch, best);
    rt_history_free(&h);
    f->m.destroy(f);
    split_release(&sp);
    ds_release(&ds);
}
END_TEST

START_TEST(bad_configurations)
{
    fake_net net;
    fake_net_init(&net, "lin", 1, 2, 2, 3);
    rt_dataset ds;
    ds_separable(&ds, 30, 5);
    rt_split sp;
    split_ranges(&sp, 0, 20, 30);
    fake_model *f = fake_new(&net.desc, 4, 3);
    rt_history h;
    char err[RT_ERRLEN];
    rt_train_cfg cfg = cfg_adam(2, 4, 0.01f, 1);
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), -1);
    ck_assert_msg(strstr(err, "no training images") != NULL, "%s", err);
    split_release(&sp);
    split_ranges(&sp, 20, 25, 30);
    cfg.batch = 5;                          /* larger than the model's max batch */
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), -1);
    ck_assert_msg(strstr(err, "batch size 5") != NULL, "%s", err);
    cfg.batch = 4;
    f->m.params[0] = NAN;                   /* the loss is NaN from the first batch */
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), -1);
    ck_assert_msg(strstr(err, "diverged at epoch 1, batch 1") != NULL, "%s", err);
    ck_assert_int_eq(h.best_epoch, -1);
    rt_history_free(&h);
    ds.label[3] = 7;                        /* a label the network cannot output */
    cfg.opt.lr = 0.01f;
    for (int i = 0; i < 15; i++)
        f->m.params[i] = 0;
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), -1);
    ck_assert_msg(strstr(err, "label 7") != NULL, "%s", err);
    rt_history_free(&h);
    f->m.destroy(f);
    split_release(&sp);
    ds_release(&ds);
}
END_TEST

/* A forward that works for its first `fail_after` calls and then fails, as a model whose
 * kernel runs out of scratch memory would. */
static int fail_after;
static int failing_forward(void *self, const float *x, int n, int training, float *logits)
{
    if (fail_after-- <= 0)
        return -1;
    return fake_forward(self, x, n, training, logits);
}

/* A backward that works for its first `bwd_fail_after` calls and then fails as a model's
 * does (rt_model): a message in err, every gradient NaN. */
static int bwd_fail_after;
static int failing_backward(void *self, const float *dl, int n)
{
    fake_model *f = self;
    if (bwd_fail_after-- > 0)
        return fake_backward(self, dl, n);
    snprintf(f->m.err, sizeof f->m.err, "layer 1 (dense, line 2): out of memory in backward");
    for (size_t k = 0; k < f->m.nparams; k++)
        f->m.grads[k] = NAN;
    return -1;
}

/* Images of another shape than the network's input, and a forward or a backward that fails:
 * each stops training and evaluation with a message (and nothing leaks, as the sanitizer
 * build sees); the NaN gradients of a failed backward never reach the weights. */
START_TEST(shape_mismatch_and_forward_failure)
{
    fake_net net;
    fake_net_init(&net, "lin", 1, 2, 3, 3); /* takes 1x2x3 */
    rt_dataset ds;
    ds_separable(&ds, 30, 5);               /* images 1x2x2 */
    rt_split sp;
    split_ranges(&sp, 20, 25, 30);
    fake_model *f = fake_new(&net.desc, 4, 3);
    rt_history h;
    char err[RT_ERRLEN];
    rt_train_cfg cfg = cfg_adam(2, 4, 0.01f, 1);
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), -1);
    ck_assert_msg(strstr(err, "the images are 1x2x2 but the network takes 1x2x3") != NULL, "%s",
                  err);
    ck_assert_int_eq(f->fwd_train + f->fwd_eval, 0);
    rt_history_free(&h);
    double loss, acc;
    ck_assert_int_eq(rt_evaluate(&f->m, &ds, sp.test, sp.ntest, &loss, &acc, NULL, err), -1);
    ck_assert_msg(strstr(err, "the images are 1x2x2 but the network takes 1x2x3") != NULL, "%s",
                  err);
    f->m.destroy(f);

    fake_net_init(&net, "lin", 1, 2, 2, 3); /* the right shape, a forward that fails */
    f = fake_new(&net.desc, 4, 3);
    f->m.forward = failing_forward;
    fail_after = 5 + 2; /* epoch 1: 5 training batches and 2 validation ones; then fails */
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), -1);
    ck_assert_msg(strstr(err, "forward pass failed at epoch 2") != NULL, "%s", err);
    rt_history_free(&h);
    fail_after = 0;
    ck_assert_int_eq(rt_evaluate(&f->m, &ds, sp.test, sp.ntest, &loss, &acc, NULL, err), -1);
    ck_assert_msg(strstr(err, "forward pass failed") != NULL, "%s", err);
    f->m.destroy(f);

    f = fake_new(&net.desc, 4, 3); /* a backward that fails in epoch 2's third step */
    f->m.backward = failing_backward;
    bwd_fail_after = 5 + 2;
    ck_assert_int_eq(rt_train_run(&f->m, &ds, &sp, &cfg, NULL, &h, err), -1);
    ck_assert_msg(strstr(err, "backward pass failed at epoch 2: layer 1 (dense, line 2): out "
                              "of memory in backward") != NULL, "%s", err);
    for (size_t k = 0; k < f->m.nparams; k++)
        ck_assert_msg(isfinite(f->m.params[k]), "weight %zu is %g after a failed backward", k,
                      f->m.params[k]);
    rt_history_free(&h);
    f->m.destroy(f);
    split_release(&sp);
    ds_release(&ds);
}
END_TEST

/* With weights W[j][p] = (p == j), the prediction is the brightest of pixels 0..2. */
START_TEST(confusion_counts)
{
    /* (true, predicted) pairs, by construction of the pixels */
    static const int pairs[][2] = {{0, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 2}, {2, 2},
                                   {2, 2}, {2, 2}, {2, 0}, {1, 1}, {0, 2}};
    enum { N = sizeof pairs / sizeof pairs[0] };
    fake_net net;
    fake_net_init(&net, "lin", 1, 2, 2, 3);
    rt_dataset ds;
    ds_alloc(&ds, N, 1, 2, 2, 3);
    int idx[N];
    for (int i = 0; i < N; i++) {
        ds.label[i] = pairs[i][0];
        for (int p = 0; p < 4; p++)
            ds.pix[4 * i + p] = (uint8_t)(p == pairs[i][1] ? 200 : 20 + 10 * p);
        idx[i] = i;
    }
    fake_model *f = fake_new(&net.desc, 4, 3);
    memset(f->m.params, 0, sizeof(float) * 15);
    for (int j = 0; j < 3; j++)
        f->m.params[j * 4 + j] = 1;
    int conf[9];
    double loss, acc;
    char err[RT_ERRLEN];
    ck_assert_int_eq(rt_evaluate(&f->m, &ds, idx, N, &loss, &acc, conf, err), 0);
    static const int want[9] = {2, 1, 1, 0, 2, 1, 1, 0, 3};
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(conf[i], want[i]);
    ck_assert_double_eq_tol(acc, 7.0 / 11, 1e-12);
    int c;
    ck_assert_double_eq_tol(loss, ref_loss(f, &ds, idx, N, &c), 1e-6);
    ck_assert_int_eq(c, 7);
    ck_assert_int_eq(f->fwd_train, 0);      /* eval mode only */
    ck_assert_int_eq(f->fwd_eval, N);
    f->m.destroy(f);
    ds_release(&ds);
}
END_TEST

/* ------------------------------------------------------------ reports */

START_TEST(durations)
{
    char b[32];
    rt_fmt_duration(0, b, sizeof b);
    ck_assert_str_eq(b, "0.0s");
    rt_fmt_duration(4.24, b, sizeof b);
    ck_assert_str_eq(b, "4.2s");
    rt_fmt_duration(42.4, b, sizeof b);
    ck_assert_str_eq(b, "42s");
    rt_fmt_duration(83, b, sizeof b);
    ck_assert_str_eq(b, "1m23s");
    rt_fmt_duration(59.6, b, sizeof b);
    ck_assert_str_eq(b, "1m00s");
    rt_fmt_duration(3725, b, sizeof b);
    ck_assert_str_eq(b, "1h02m05s");
}
END_TEST

START_TEST(report_row_format)
{
    char row[256];
    rt_report_row(row, sizeof row, "lenet", 0.12345, 0.955, 0.2, 0.9, 83.2);
    ck_assert_str_eq(row, "| lenet | 0.1235 | 95.50% | 0.2000 | 90.00% | 1m23s |");
    rt_report_row(row, sizeof row, "a|b", -1, 0, 1.5, 1.0, 7.0);
    ck_assert_str_eq(row, "| a\\|b | - | - | 1.5000 | 100.00% | 7.0s |");
    ck_assert_str_eq(rt_report_header(),
                     "| Model | Val Loss | Val Acc | Test Loss | Test Acc | Runtime |\n"
                     "|-------|---------:|--------:|----------:|---------:|--------:|");
}
END_TEST

static char *slurp_text(const char *file)
{
    FILE *f = fopen(file, "rb");
    ck_assert_ptr_nonnull(f);
    char *b = calloc(1, 1 << 16);
    size_t n = fread(b, 1, (1 << 16) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

START_TEST(markdown_append)
{
    char dir[] = "/tmp/cnnc-rtest-XXXXXX", file[64], err[RT_ERRLEN];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/r.md", dir);
    ck_assert_int_eq(rt_report_append(file, "| one |", err), 0);
    ck_assert_int_eq(rt_report_append(file, "| two |", err), 0);
    char *t = slurp_text(file);
    char want[512];
    snprintf(want, sizeof want, "%s\n| one |\n| two |\n", rt_report_header());
    ck_assert_str_eq(t, want);
    free(t);
    /* an existing empty file gets the header; one without a final newline gets one */
    FILE *f = fopen(file, "w");
    fclose(f);
    ck_assert_int_eq(rt_report_append(file, "| three |", err), 0);
    t = slurp_text(file);
    snprintf(want, sizeof want, "%s\n| three |\n", rt_report_header());
    ck_assert_str_eq(t, want);
    free(t);
    f = fopen(file, "w");
    fputs("# Results\n\n| x |", f);
    fclose(f);
    ck_assert_int_eq(rt_report_append(file, "| four |", err), 0);
    t = slurp_text(file);
    ck_assert_str_eq(t, "# Results\n\n| x |\n| four |\n");
    free(t);
    unlink(file);
    char bad[100];
    snprintf(bad, sizeof bad, "%s/missing/r.md", dir);
    ck_assert_int_eq(rt_report_append(bad, "| x |", err), -1);
    ck_assert_msg(strstr(err, bad) != NULL, "%s", err);
    rmdir(dir);
}
END_TEST

/* Splits text into lines of whitespace-separated words; checks line i has the words. */
static void expect_words(const char *text, int line, const char *words)
{
    const char *p = text;
    for (int i = 0; i < line; i++) {
        p = strchr(p, '\n');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    const char *end = strchr(p, '\n');
    ck_assert_ptr_nonnull(end);
    char got[256], a[256];
    size_t k = 0;
    int space = 1;
    for (; p < end && k + 1 < sizeof got; p++) {  /* collapse runs of blanks */
        if (*p == ' ') {
            if (!space)
                got[k++] = ' ';
            space = 1;
        } else {
            got[k++] = *p;
            space = 0;
        }
    }
    while (k && got[k - 1] == ' ')
        k--;
    got[k] = 0;
    snprintf(a, sizeof a, "%s", words);
    ck_assert_str_eq(got, a);
}

START_TEST(confusion_matrix_print)
{
    static const int conf[9] = {3, 1, 0, 1, 1, 0, 0, 0, 4};
    char *names[] = {"cat", "dog", "mouse"};
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    rt_confusion_print(f, conf, 3, names);
    fclose(f);
    expect_words(buf, 0, "true \\ predicted cat dog mouse recall precision F1");
    expect_words(buf, 1, "cat 3 1 0 75.0% 75.0% 75.0%");
    expect_words(buf, 2, "dog 1 1 0 50.0% 50.0% 50.0%");
    expect_words(buf, 3, "mouse 0 0 4 100.0% 100.0% 100.0%");
    expect_words(buf, 4, "macro average 75.0% 75.0% 75.0%");
    free(buf);
    /* by hand: cat R 3/4, P 3/5, F1 2(.75)(.6)/1.35 = 2/3; dog R 1/3, P 1/2, F1 2/5; mouse
     * all 1; macro R (3/4 + 1/3 + 1)/3 = 69.4%, P 70.0%, F1 (2/3 + 2/5 + 1)/3 = 68.9% */
    static const int asym[9] = {3, 1, 0, 2, 1, 0, 0, 0, 4};
    f = open_memstream(&buf, &len);
    rt_confusion_print(f, asym, 3, names);
    fclose(f);
    expect_words(buf, 1, "cat 3 1 0 75.0% 60.0% 66.7%");
    expect_words(buf, 2, "dog 2 1 0 33.3% 50.0% 40.0%");
    expect_words(buf, 3, "mouse 0 0 4 100.0% 100.0% 100.0%");
    expect_words(buf, 4, "macro average 69.4% 70.0% 68.9%");
    free(buf);
    /* long names: numbered columns, rows "[i] name" */
    char *longn[] = {"a_very_long_class_name", "b", "c"};
    static const int zero[9] = {0, 0, 0, 0, 2, 0, 0, 0, 0};
    f = open_memstream(&buf, &len);
    rt_confusion_print(f, zero, 3, longn);
    fclose(f);
    expect_words(buf, 0, "true \\ predicted [0] [1] [2] recall precision F1");
    expect_words(buf, 1, "[0] a_very_long_class_name 0 0 0 - - -");
    expect_words(buf, 2, "[1] b 0 2 0 100.0% 100.0% 100.0%");
    free(buf);
}
END_TEST

/* ------------------------------------------------------------ plots */

static void history_fake(rt_history *h, int epochs, int has_val)
{
    memset(h, 0, sizeof *h);
    h->epochs = epochs;
    h->has_val = has_val;
    h->train_loss = calloc((size_t)epochs, sizeof(double));
    h->train_acc = calloc((size_t)epochs, sizeof(double));
    h->val_loss = calloc((size_t)epochs, sizeof(double));
    h->val_acc = calloc((size_t)epochs, sizeof(double));
    h->secs = calloc((size_t)epochs, sizeof(double));
    for (int e = 0; e < epochs; e++) {
        h->train_loss[e] = 1.5 / (e + 1);
        h->val_loss[e] = 1.6 / (e + 1) + 0.02 * e;
        h->train_acc[e] = 0.5 + 0.09 * e;
        h->val_acc[e] = 0.45 + 0.08 * e;
    }
    h->best_epoch = epochs / 2;
}

static int count(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p++)
        n++;
    return n;
}

START_TEST(progress_display)
{
    rt_history h;
    history_fake(&h, 3, 1);
    char *buf;
    size_t len;
    /* a terminal 50 columns wide: \r-redrawn lines that never wrap, then the epoch line */
    FILE *f = open_memstream(&buf, &len);
    rt_progress p;
    rt_progress_init(&p, f, 1, 0, 3);
    p.cols = 50;
    for (int b = 0; b < 4; b++)
        rt_progress_batch(&p, 0, b, 4, 0.5, 0.25);
    rt_progress_epoch(&p, &h, 0, "saved");
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "\repoch 1/3 ["));
    ck_assert_ptr_nonnull(strstr(buf, "ETA"));
    ck_assert_ptr_nonnull(strstr(buf, "loss 0.5000  acc  25.00%"));
    for (char *q = buf; *q;) {              /* every redrawn bar line fits */
        size_t k = strcspn(q, "\r\n");
        if (memchr(q, '[', k))
            ck_assert_uint_le(k, 49);
        q += k;
        if (*q)
            q++;
    }
    ck_assert_ptr_nonnull(strstr(buf, "train loss 1.5000 acc  50.00%  val loss 1.6000 acc "
                                      " 45.00%"));
    ck_assert_ptr_nonnull(strstr(buf, "saved\n"));
    free(buf);
    /* a log file: no per-batch output, one plain line per epoch */
    f = open_memstream(&buf, &len);
    rt_progress_init(&p, f, 0, 0, 3);
    for (int b = 0; b < 4; b++)
        rt_progress_batch(&p, 1, b, 4, 0.5, 0.25);
    rt_progress_epoch(&p, &h, 1, NULL);
    fclose(f);
    ck_assert_int_eq(count(buf, "\r"), 0);
    ck_assert_int_eq(count(buf, "\n"), 1);
    ck_assert_int_eq(strncmp(buf, "epoch 2/3  train loss 0.7500 acc  59.00%", 40), 0);
    free(buf);
    /* quiet: nothing */
    f = open_memstream(&buf, &len);
    rt_progress_init(&p, f, 1, 1, 3);
    rt_progress_batch(&p, 1, 0, 4, 0.5, 0.25);
    rt_progress_epoch(&p, &h, 1, NULL);
    fclose(f);
    ck_assert_uint_eq(len, 0);
    free(buf);
    rt_history_free(&h);
}
END_TEST

START_TEST(plot_svg)
{
    char dir[] = "/tmp/cnnc-ptest-XXXXXX", file[64], err[RT_ERRLEN];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/c.svg", dir);
    rt_history h;
    history_fake(&h, 5, 1);
    ck_assert_int_eq(rt_plot_write(file, &h, "net", err), 0);
    char *t = slurp_text(file);
    ck_assert_int_eq(strncmp(t, "<?xml", 5), 0);
    ck_assert_ptr_nonnull(strstr(t, "</svg>\n"));
    ck_assert_int_eq(count(t, "<polyline"), 4);     /* train and val, loss and accuracy */
    ck_assert_int_eq(count(t, "<circle"), 20);      /* a dot per epoch per curve */
    ck_assert_ptr_nonnull(strstr(t, ">validation</text>"));
    free(t);
    h.has_val = 0;
    ck_assert_int_eq(rt_plot_write(file, &h, "net", err), 0);
    t = slurp_text(file);
    ck_assert_int_eq(count(t, "<polyline"), 2);
    ck_assert_ptr_null(strstr(t, "validation"));
    free(t);
    rt_history_free(&h);
    unlink(file);
    rmdir(dir);
}
END_TEST

/* Pixels within 30 of a colour in every channel. */
static long near(const unsigned char *img, int n, int r, int g, int b)
{
    long c = 0;
    for (int i = 0; i < n; i++)
        c += abs(img[3 * i] - r) < 30 && abs(img[3 * i + 1] - g) < 30 &&
             abs(img[3 * i + 2] - b) < 30;
    return c;
}

START_TEST(plot_png)
{
    char dir[] = "/tmp/cnnc-ptest-XXXXXX", file[64], err[RT_ERRLEN];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/c.png", dir);
    rt_history h;
    history_fake(&h, 12, 1);
    ck_assert_int_eq(rt_plot_write(file, &h, "net", err), 0);
    int w, hh, comp;
    unsigned char *img = stbi_load(file, &w, &hh, &comp, 3);
    ck_assert_ptr_nonnull(img);
    ck_assert_int_eq(w, 960);               /* the size rt_plot.c documents */
    ck_assert_int_eq(hh, 400);
    ck_assert_int_eq(comp, 3);
    /* curves in the train blue and validation orange, a white background */
    ck_assert_int_gt(near(img, w * hh, 31, 119, 180), 500);
    ck_assert_int_gt(near(img, w * hh, 255, 127, 14), 500);
    ck_assert_int_gt(near(img, w * hh, 255, 255, 255), w * hh / 2);
    stbi_image_free(img);
    /* one epoch without validation: still a picture, no orange */
    rt_history_free(&h);
    history_fake(&h, 1, 0);
    ck_assert_int_eq(rt_plot_write(file, &h, "net", err), 0);
    img = stbi_load(file, &w, &hh, &comp, 3);
    ck_assert_ptr_nonnull(img);
    ck_assert_int_eq(near(img, w * hh, 255, 127, 14), 0);
    ck_assert_int_gt(near(img, w * hh, 31, 119, 180), 20);
    stbi_image_free(img);
    rt_history_free(&h);
    char bad[100];
    snprintf(bad, sizeof bad, "%s/missing/c.png", dir);
    history_fake(&h, 3, 1);
    ck_assert_int_eq(rt_plot_write(bad, &h, "net", err), -1);
    ck_assert_msg(strstr(err, bad) != NULL, "%s", err);
    rt_history_free(&h);
    unlink(file);
    rmdir(dir);
}
END_TEST

/* ------------------------------------------------------------ the command line */

static fake_net clinet;
static char out_text[1 << 16], err_text[1 << 16];

static void read_back(int fd, char *buf, size_t n)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t k = read(fd, buf, n - 1);
    buf[k > 0 ? k : 0] = 0;
}

/* Runs rt_cli_main on a NULL-terminated list of words, capturing stdout and stderr. */
static int run_cli_v(const rt_train_cfg *defaults, const char *const *words)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "prog";
    for (int i = 0; words[i]; i++)
        argv[argc++] = (char *)words[i];
    argv[argc] = NULL;
    char fo[] = "/tmp/cnnc-out-XXXXXX", fe[] = "/tmp/cnnc-err-XXXXXX";
    int o = mkstemp(fo), e = mkstemp(fe);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(o, 1);
    dup2(e, 2);
    int rc = rt_cli_main(argc, argv, "testprog", &clinet.desc, defaults, fake_factory,
                         &clinet.desc);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    read_back(o, out_text, sizeof out_text);
    read_back(e, err_text, sizeof err_text);
    close(o);
    close(e);
    unlink(fo);
    unlink(fe);
    return rc;
}

#define RUN(...) run_cli_v(NULL, (const char *const[]){__VA_ARGS__, NULL})

static void expect_usage(int rc, const char *what)
{
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(err_text, what) != NULL, "stderr '%s' lacks '%s'", err_text, what);
    ck_assert_msg(strstr(err_text, "testprog --help") != NULL, "no hint in '%s'", err_text);
}

static void cli_setup(void)
{
    fake_net_init(&clinet, "fakenet", 1, 2, 2, 3);
}

START_TEST(cli_usage_errors)
{
    char *none[] = {"prog", NULL};
    fflush(stderr);
    int se = dup(2), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    int rc0 = rt_cli_main(1, none, "testprog", &clinet.desc, NULL, fake_factory, &clinet.desc);
    dup2(se, 2);
    close(se);
    close(devnull);
    ck_assert_int_eq(rc0, 2);
    expect_usage(RUN("--train", "d", "--bogus"), "unknown option '--bogus'");
    expect_usage(RUN("--train", "d", "--epoch", "3"), "did you mean --epochs?");
    expect_usage(RUN("--train"), "--train needs a value");
    expect_usage(RUN("--train", "d", "--epochs"), "--epochs needs a value");
    expect_usage(RUN("--train", "d", "--epochs", "--quiet"), "--epochs needs a value");
    expect_usage(RUN("--train", "d", "--epochs", "abc"), "--epochs: 'abc' is not valid");
    expect_usage(RUN("--train", "d", "--epochs", "0"), "from 1 to");
    expect_usage(RUN("--train", "d", "--epochs=2x"), "--epochs: '2x'");
    expect_usage(RUN("--train", "d", "--batch", "1.5"), "--batch: '1.5'");
    expect_usage(RUN("--train", "d", "--lr", "-1"), "--lr: '-1'");
    expect_usage(RUN("--train", "d", "--lr", "0"), "greater than 0");
    expect_usage(RUN("--train", "d", "--lr", "nan"), "--lr: 'nan'");
    expect_usage(RUN("--train", "d", "--split", "7:2"), "--split: '7:2'");
    expect_usage(RUN("--train", "d", "--split", "0:1:1"), "A >= 1");
    expect_usage(RUN("--train", "d", "--optimizer", "rmsprop"), "sgd, adam or adamw");
    expect_usage(RUN("--train", "d", "--optimizer", "sgd", "--momentum", "1"), "--momentum");
    expect_usage(RUN("--train", "d", "--momentum", "0.9"), "sgd optimizer only");
    /* the settings shared with the train { } section (rt_train_words.c) */
    expect_usage(RUN("--train", "d", "--optimizer", "adamw", "--momentum", "0.9"),
                 "--momentum: momentum applies to the sgd optimizer only (this one is adamw");
    expect_usage(RUN("--train", "d", "--optimizer", "sgd", "--nesterov"), "--nesterov: nesterov "
                 "needs a momentum above 0");
    expect_usage(RUN("--train", "d", "--nesterov", "--momentum", "0.9"), "sgd optimizer only");
    expect_usage(RUN("--train", "d", "--betas", "0.9,0.999", "--optimizer", "sgd"),
                 "--betas: betas apply to adam and adamw only");
    expect_usage(RUN("--train", "d", "--betas", "0.9"), "--betas: '0.9' is not valid");
    expect_usage(RUN("--train", "d", "--betas", "0.9,1"), "--betas: '0.9,1' is not valid");
    expect_usage(RUN("--train", "d", "--schedule", "linear"), "constant, cosine, step or plateau");
    expect_usage(RUN("--train", "d", "--schedule", "step"), "--schedule: the step schedule needs");
    expect_usage(RUN("--train", "d", "--schedule", "cosine", "--step-gamma", "0.5"),
                 "--step-gamma: every and gamma belong to the step schedule (this one is cosine)");
    expect_usage(RUN("--train", "d", "--plateau-factor", "0.5"),
                 "--plateau-factor: patience and factor belong to the plateau schedule");
    expect_usage(RUN("--train", "d", "--schedule", "plateau", "--plateau-factor", "1"),
                 "--plateau-factor: '1' is not valid");
    expect_usage(RUN("--train", "d", "--warmup", "10", "--epochs", "10"),
                 "--warmup: a warmup of 10 epochs");
    expect_usage(RUN("--train", "d", "--stop-patience", "-1"), "--stop-patience: '-1'");
    expect_usage(RUN("--train", "d", "--clip-norm", "inf"), "--clip-norm: 'inf'");
    expect_usage(RUN("--train", "d", "--label-smoothing", "1"), "--label-smoothing: '1'");
    expect_usage(RUN("--train", "d", "--augment", "hflip,,crop=4"), "--augment: 'hflip,,crop=4'");
    expect_usage(RUN("--train", "d", "--augment", "hflip,crop=0"), "augment crop: '0'");
    expect_usage(RUN("--train", "d", "--augment", "rotate"), "augment rotate: ''");
    expect_usage(RUN("--train", "d", "--threads", "-1"), "--threads: '-1'");
    expect_usage(RUN("--train", "d", "--seed", "-3"), "--seed: '-3'");
    expect_usage(RUN("--train", "d", "--augment", "spin"), "hflip, vflip, crop=PIXELS");
    expect_usage(RUN("--train", "d", "--plot", "x.jpg"), ".png or .svg");
    expect_usage(RUN("--train", "d", "--eval", "d"), "choose one of");
    expect_usage(RUN("--train", "d", "--epochs", "2", "--epochs", "3"), "given twice");
    expect_usage(RUN("--eval", "d", "--plot", "x.svg"), "--plot does not apply to --eval");
    expect_usage(RUN("--predict", "a.png", "--split", "1:1:1"), "does not apply to --predict");
    expect_usage(RUN("--predict"), "--predict needs");
    expect_usage(RUN("--quiet", "stray"), "unexpected argument 'stray'");
    expect_usage(RUN("--quiet=1", "--train", "d"), "--quiet takes no value");
    expect_usage(RUN("--quiet"), "nothing to do");
}
END_TEST

START_TEST(cli_help_version)
{
    rt_train_cfg d;
    rt_train_cfg_defaults(&d);
    d.epochs = 17;
    d.opt.kind = RT_OPT_SGD;
    d.opt.lr = 0.25f;
    int rc = run_cli_v(&d, (const char *const[]){"--help", NULL});
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(err_text, "");
    ck_assert_ptr_nonnull(strstr(out_text, "Usage: testprog --train DIR"));
    ck_assert_ptr_nonnull(strstr(out_text, "epochs to train (default 17)"));
    ck_assert_ptr_nonnull(strstr(out_text, "optimizer (default sgd)"));
    ck_assert_ptr_nonnull(strstr(out_text, "learning rate (default 0.25)"));
    ck_assert_ptr_nonnull(strstr(out_text, "(default fakenet.weights)"));
    ck_assert_ptr_nonnull(strstr(out_text, "15 parameters, input 1x2x2"));
    /* every option is documented */
    static const char *all[] = {"--train", "--eval", "--predict", "--weights", "--out",
                                "--epochs", "--batch", "--lr", "--optimizer", "--momentum",
                                "--weight-decay", "--seed", "--threads", "--split",
                                "--augment", "--report", "--plot", "--cache-dir",
                                "--no-cache", "--all", "--quiet", "--help", "--version",
                                "--schedule", "--warmup", "--step-every", "--step-gamma",
                                "--plateau-patience", "--plateau-factor", "--stop-patience",
                                "--betas", "--nesterov", "--clip-norm", "--label-smoothing"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ck_assert_msg(strstr(out_text, all[i]) != NULL, "%s undocumented", all[i]);
    ck_assert_int_eq(RUN("--train", "d", "-h"), 0);
    ck_assert_int_eq(RUN("--version"), 0);
    ck_assert_ptr_nonnull(strstr(out_text, RT_VERSION));
}
END_TEST

/* A real image folder: 3 classes of 2x2 grey PNGs, class j bright at pixel j. */
static void make_folder(const char *root, int per_class)
{
    static const char *cls[] = {"alpha", "beta", "gamma"};
    uint32_t r = 9;
    char p[256];
    ck_assert_int_eq(mkdir(root, 0755), 0);
    for (int j = 0; j < 3; j++) {
        snprintf(p, sizeof p, "%s/%s", root, cls[j]);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        for (int i = 0; i < per_class; i++) {
            unsigned char px[4];
            for (int q = 0; q < 4; q++)
                px[q] = (unsigned char)(q == j ? 190 + lcg(&r) % 60 : lcg(&r) % 80);
            snprintf(p, sizeof p, "%s/%s/%02d.png", root, cls[j], i);
            ck_assert(stbi_write_png(p, 2, 2, 1, px, 2));
        }
    }
}

static void rm_rf(const char *path)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
}

/* A disk with no room left. */
static size_t failing_write(const void *p, size_t size, size_t n, FILE *f)
{
    (void)p;
    (void)size;
    (void)n;
    (void)f;
    errno = ENOSPC;
    return 0;
}

START_TEST(cli_train_eval_predict)
{
    char top[] = "/tmp/cnnc-clitest-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(top));
    char data[100], w[100], rep[100], plot[100], cache[100], img[150], bad[150];
    snprintf(data, sizeof data, "%s/data", top);
    snprintf(w, sizeof w, "%s/m.weights", top);
    snprintf(rep, sizeof rep, "%s/r.md", top);
    snprintf(plot, sizeof plot, "%s/c.svg", top);
    snprintf(cache, sizeof cache, "%s/cache", top);
    snprintf(img, sizeof img, "%s/beta/03.png", data);
    snprintf(bad, sizeof bad, "%s/nothing.png", top);
    make_folder(data, 20);
    int rc = RUN("--train", data, "--epochs", "6", "--batch", "4", "--lr", "0.05", "--out", w,
                 "--report", rep, "--plot", plot, "--cache-dir", cache, "--threads", "1");
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, err_text);
    /* one line per epoch (stdout is not a terminal), then the results */
    ck_assert_int_eq(count(out_text, "\nepoch "), 6);
    ck_assert_int_eq(count(out_text, "\r"), 0);
    ck_assert_ptr_nonnull(strstr(out_text, "| Model | Val Loss | Val Acc |"));
    ck_assert_ptr_nonnull(strstr(out_text, "| fakenet | "));
    ck_assert_ptr_nonnull(strstr(out_text, "recall"));
    ck_assert_ptr_null(strstr(out_text, "collapsed")); /* it predicts all three classes */
    char *r = slurp_text(rep);
    ck_assert_int_eq(count(r, "| Model |"), 1);
    ck_assert_int_eq(count(r, "| fakenet | "), 1);
    free(r);
    r = slurp_text(plot);
    ck_assert_int_eq(count(r, "<polyline"), 4);
    free(r);
    /* the weights load into a model of the network */
    fake_model *f = fake_new(&clinet.desc, 1, 1);
    char err[RT_ERRLEN], **names;
    int nn;
    ck_assert_int_eq(rt_weights_load_named(w, &f->m, &names, &nn, err), 0);
    ck_assert_int_eq(nn, 3);
    ck_assert_str_eq(names[1], "beta");
    rt_names_free(names, nn);
    f->m.destroy(f);

    rc = RUN("--eval", data, "--weights", w, "--cache-dir", cache);
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, err_text);
    ck_assert_ptr_nonnull(strstr(out_text, "accuracy"));
    rc = RUN("--eval", data, "--weights", w, "--all", "--no-cache");
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, err_text);
    ck_assert_ptr_nonnull(strstr(out_text, "all 60 images"));

    /* weights trained on other class names: a warning, the evaluation still runs */
    char rn[120];
    snprintf(rn, sizeof rn, "%s/renamed.weights", top);
    f = fake_new(&clinet.desc, 1, 1);
    char *other_names[] = {"alpha", "beta", "omega"};
    ck_assert_int_eq(rt_weights_save_named(rn, &f->m, other_names, 3, err), 0);
    f->m.destroy(f);
    ck_assert_int_eq(RUN("--eval", data, "--weights", rn, "--cache-dir", cache), 0);
    ck_assert_msg(strstr(err_text, "warning") && strstr(err_text, "omega"), "%s", err_text);

    /* predict: one good image named by class, one missing: printed, then exit 1 */
    rc = RUN("--predict", img, bad, "--weights", w);
    ck_assert_int_eq(rc, 1);
    char want[200];
    snprintf(want, sizeof want, "%s: beta ", img);
    ck_assert_msg(strstr(out_text, want) != NULL, "stdout: %s", out_text);
    ck_assert_msg(strstr(err_text, bad) != NULL, "stderr: %s", err_text);

    /* a weights file of another network is refused with exit 1 */
    fake_net other;
    fake_net_init(&other, "othernet", 1, 2, 2, 3);
    other.desc.hash ^= 1;
    fake_model *o = fake_new(&other.desc, 1, 1);
    char ow[120];
    snprintf(ow, sizeof ow, "%s/other.weights", top);
    ck_assert_int_eq(rt_weights_save(ow, &o->m, err), 0);
    o->m.destroy(o);
    ck_assert_int_eq(RUN("--predict", img, "--weights", ow), 1);
    ck_assert_ptr_nonnull(strstr(err_text, "network 'othernet' with a different structure"));
    /* a missing data folder is an input error */
    ck_assert_int_eq(RUN("--train", bad, "--quiet"), 1);
    /* an --out that cannot be written fails before training */
    char nodir[150];
    snprintf(nodir, sizeof nodir, "%s/no/such/m.weights", top);
    ck_assert_int_eq(RUN("--train", data, "--out", nodir, "--cache-dir", cache), 1);
    ck_assert_msg(strstr(err_text, nodir) != NULL, "stderr: %s", err_text);
    ck_assert_int_eq(count(out_text, "epoch "), 0);
    /* a disk that fills up during training: warnings, the old file kept, exit 1 */
    size_t n0;
    char *before = slurp_text(w);
    n0 = strlen(before);
    rt_weights_set_write_hook(failing_write);
    rc = RUN("--train", data, "--epochs", "2", "--batch", "4", "--out", w, "--cache-dir",
             cache, "--seed", "5");
    rt_weights_set_write_hook(NULL);
    ck_assert_int_eq(rc, 1);
    /* a warning after each improvement (at least the first epoch), then the final error */
    int warnings = count(err_text, "warning: cannot write weights file");
    ck_assert_int_ge(warnings, 1);
    ck_assert_int_eq(count(err_text, "cannot write weights file"), warnings + 1);
    ck_assert_ptr_nonnull(strstr(err_text, strerror(ENOSPC)));
    ck_assert_ptr_nonnull(strstr(out_text, "NOT saved"));
    ck_assert_ptr_nonnull(strstr(out_text, "| fakenet | "));   /* the results still come */
    char *after = slurp_text(w);
    ck_assert_uint_eq(strlen(after), n0);
    ck_assert_int_eq(memcmp(before, after, n0), 0);
    free(before);
    free(after);
    rm_rf(top);
}
END_TEST

/* ------------------------------------------------------------ --bench and --dump */

/* The whole of a binary file; *n gets its length. */
static unsigned char *slurp_bin(const char *file, size_t *n)
{
    FILE *f = fopen(file, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert_int_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* Little-endian readers, independent of the writer's code. */
static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static float le_f32(const unsigned char *p)
{
    uint32_t u = (uint32_t)le(p, 4);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* A dump of the fake linear model checked value by value: its header, the seeded inputs
 * and labels, and logits, loss and gradients recomputed here in double from the dumped
 * inputs and parameters (softmax cross-entropy of a linear map, worked out directly). */
static void check_dump(const char *file, int n, int training, const float *want_params)
{
    const int c = 1, h = 2, w = 2, in = 4, k = 3;
    const size_t P = (size_t)k * in + k, S = (size_t)k;
    size_t len;
    unsigned char *b = slurp_bin(file, &len);
    size_t N = (size_t)n * c * h * w;
    ck_assert_uint_eq(len, 48 + 4 * N + 4 * n + 4 * (size_t)n * k + 8 + 8 * P + 8 * S);
    ck_assert_int_eq(memcmp(b, "CNND", 4), 0);
    ck_assert_uint_eq(le(b + 4, 4), 1);
    ck_assert_uint_eq(le(b + 8, 4), (uint64_t)n);
    ck_assert_uint_eq(le(b + 12, 4), 1);
    ck_assert_uint_eq(le(b + 16, 4), 2);
    ck_assert_uint_eq(le(b + 20, 4), 2);
    ck_assert_uint_eq(le(b + 24, 4), 3);
    ck_assert_uint_eq(le(b + 28, 4), (uint64_t)training);
    ck_assert_uint_eq(le(b + 32, 8), P);
    ck_assert_uint_eq(le(b + 40, 8), S);
    const unsigned char *px = b + 48, *pl = px + 4 * N, *plog = pl + 4 * n;
    const unsigned char *ploss = plog + 4 * (size_t)n * k, *pp = ploss + 8, *pg = pp + 4 * P;
    const unsigned char *ps = pg + 4 * P, *ps2 = ps + 4 * S;
    double loss_ref = 0, gref[15] = {0};
    for (int i = 0; i < n; i++) {
        int label = (int)le(pl + 4 * i, 4);
        ck_assert_int_eq(label, i % k);
        double z[3], mx = -1e300, sum = 0;
        for (int j = 0; j < k; j++) {
            z[j] = le_f32(pp + 4 * (k * in + j));
            for (int q = 0; q < in; q++) {
                float xv = le_f32(px + 4 * ((size_t)i * in + q));
                ck_assert(xv >= 0.0f && xv < 1.0f);
                z[j] += (double)le_f32(pp + 4 * (j * in + q)) * xv;
            }
            ck_assert_double_eq_tol(le_f32(plog + 4 * ((size_t)i * k + j)), z[j], 1e-5);
            mx = z[j] > mx ? z[j] : mx;
        }
        for (int j = 0; j < k; j++)
            sum += exp(z[j] - mx);
        loss_ref += (mx + log(sum) - z[label]) / n;
        for (int j = 0; j < k; j++) {
            double dz = (exp(z[j] - mx) / sum - (j == label)) / n;
            for (int q = 0; q < in; q++)
                gref[j * in + q] += dz * le_f32(px + 4 * ((size_t)i * in + q));
            gref[k * in + j] += dz;
        }
    }
    uint64_t lb = le(ploss, 8);
    double loss;
    memcpy(&loss, &lb, 8);
    ck_assert_double_eq_tol(loss, loss_ref, 1e-6);
    for (size_t q = 0; q < P; q++) {
        ck_assert_double_eq_tol(le_f32(pg + 4 * q), gref[q], 1e-6);
        if (want_params)
            ck_assert_float_eq(le_f32(pp + 4 * q), want_params[q]);
    }
    /* the fake model's state moves only in training mode (a running mean of its logits,
     * starting from zero) */
    for (size_t q = 0; q < S; q++) {
        ck_assert_float_eq(le_f32(ps + 4 * q), 0.0f);
        if (training)
            ck_assert_float_ne(le_f32(ps2 + 4 * q), 0.0f);
        else
            ck_assert_float_eq(le_f32(ps2 + 4 * q), 0.0f);
    }
    /* the inputs are the documented stream: uniform draws of an rt_rng seeded with 5 */
    rt_rng r;
    rt_rng_seed(&r, 5);
    for (size_t q = 0; q < N; q++)
        ck_assert_float_eq(le_f32(px + 4 * q), rt_rng_uniform(&r));
    free(b);
}

/* Images that are all the same get one prediction: the run says the network collapsed to
 * one class and what to try, instead of leaving a majority-class accuracy unexplained. */
START_TEST(cli_collapse_note)
{
    char top[] = "/tmp/cnnc-collapse-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(top));
    static const char *cls[] = {"alpha", "beta", "gamma"};
    char p[300], w[200];
    for (int j = 0; j < 3; j++) {
        snprintf(p, sizeof p, "%s/%s", top, cls[j]);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        for (int i = 0; i < 10; i++) {
            const unsigned char px[4] = {100, 100, 100, 100};
            snprintf(p, sizeof p, "%s/%s/%02d.png", top, cls[j], i);
            ck_assert(stbi_write_png(p, 2, 2, 1, px, 2));
        }
    }
    snprintf(w, sizeof w, "%s/m.weights", top);
    /* 5 epochs: shorter runs are not judged (rt_cli_collapse.c) */
    int rc = RUN("--train", top, "--epochs", "5", "--batch", "4", "--out", w, "--no-cache",
                 "--threads", "1");
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, err_text);
    ck_assert_msg(strstr(out_text, "for all 3 test images: it has collapsed to one class") &&
                      strstr(out_text, "--seed"),
                  "stdout: %s", out_text);
    rm_rf(top);
}
END_TEST

START_TEST(cli_dump)
{
    char top[] = "/tmp/cnnc-dumptest-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(top));
    char f1[100], f2[100], wf[100];
    snprintf(f1, sizeof f1, "%s/a.dump", top);
    snprintf(f2, sizeof f2, "%s/b.dump", top);
    snprintf(wf, sizeof wf, "%s/m.weights", top);
    /* parameters from the seed, as rt_init_params makes them */
    float init[15], st[3];
    rt_init_params(&clinet.desc, init, st, 5);
    int rc = RUN("--dump", f1, "--seed", "5", "--batch", "5", "--threads", "1");
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, err_text);
    ck_assert_ptr_nonnull(strstr(out_text, "eval mode"));
    check_dump(f1, 5, 0, init);
    rc = RUN("--dump", f2, "--seed", "5", "--batch", "5", "--train-mode");
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, err_text);
    check_dump(f2, 5, 1, init);
    /* --weights replaces the initialisation (the seed still makes the batch) */
    fake_model *f = fake_new(&clinet.desc, 1, 9);
    char err[RT_ERRLEN];
    ck_assert_int_eq(rt_weights_save(wf, &f->m, err), 0);
    rc = RUN("--dump", f2, "--seed", "5", "--batch", "2", "--weights", wf);
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, err_text);
    check_dump(f2, 2, 0, f->m.params);
    f->m.destroy(f);
    /* a missing weights file: exit 1 and no dump */
    unlink(f2);
    ck_assert_int_eq(RUN("--dump", f2, "--weights", f1), 1);
    ck_assert_int_eq(access(f2, F_OK), -1);
    rm_rf(top);
}
END_TEST

START_TEST(cli_bench)
{
    int rc = RUN("--bench", "3", "--batch", "4", "--threads", "1");
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, err_text);
    ck_assert_str_eq(err_text, "");
    /* one dense layer 4 -> 3 with bias: 2*4*3 multiply-adds' FLOPs + 3 bias adds = 27 */
    ck_assert_ptr_nonnull(strstr(out_text, "flops-per-image 27 batch 4 threads 1 steps 3\n"));
    double ips, gf, ms;
    const char *t = strstr(out_text, "bench train images/s ");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(sscanf(t, "bench train images/s %lf gflops %lf ms-per-step %lf", &ips, &gf,
                            &ms), 3);
    ck_assert(ips > 0 && ms > 0);
    /* images/s and GFLOP/s agree: 3 x 27 FLOPs per image trained (printed to 3 decimals) */
    ck_assert_double_eq_tol(gf, ips * 81e-9, 1e-3 + 1e-3 * gf);
    t = strstr(out_text, "bench infer images/s ");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(sscanf(t, "bench infer images/s %lf gflops %lf ms-per-batch %lf", &ips,
                            &gf, &ms), 3);
    ck_assert(ips > 0 && ms > 0);
    /* --profile: the one layer (timed on the interpreter) and the sums */
    rc = RUN("--bench", "1", "--batch", "2", "--threads", "1", "--profile");
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, err_text);
    ck_assert_int_eq(count(out_text, "bench layer "), 1);
    ck_assert_ptr_nonnull(strstr(out_text, "bench layer 1 dense 3x1x1 line 0 mflops 0.000 "));
    ck_assert_ptr_nonnull(strstr(out_text, "bench profile fwd-ms "));
    /* usage errors */
    expect_usage(RUN("--bench"), "--bench needs a value");
    expect_usage(RUN("--dump"), "--dump needs a value");
    expect_usage(RUN("--bench", "-2"), "--bench: '-2' is not valid");
    expect_usage(RUN("--bench", "1", "--profile", "--dump", "x"), "choose one of");
    expect_usage(RUN("--dump", "x", "--profile"), "--profile does not apply to --dump");
    expect_usage(RUN("--bench", "1", "--train-mode"), "it is for --dump");
    expect_usage(RUN("--bench", "1", "--epochs", "3"), "--epochs does not apply to --bench");
}
END_TEST

/* rt_layer_flops on a hand-made description of every kind (see the rule in cnnrt.h). */
START_TEST(flop_count)
{
    rt_layer L[8];
    memset(L, 0, sizeof L);
    rt_shape s3 = {2, 4, 4};
    L[0].kind = RT_INPUT;
    L[0].in = L[0].out = s3;
    /* conv 3x3, 2 -> 3 channels, pad 1, bias, relu: 3x4x4 = 48 outputs:
     * 2*2*9*48 + 48 + 48 = 1824 */
    L[1].kind = RT_CONV;
    L[1].in = s3;
    L[1].out = (rt_shape){3, 4, 4};
    L[1].kh = L[1].kw = 3;
    L[1].bias = 1;
    L[1].b_len = 3;
    L[1].act = RT_ACT_RELU;
    /* batchnorm on 48 values: 96 */
    L[2].kind = RT_BATCHNORM;
    L[2].in = L[2].out = L[1].out;
    /* add of 48 values: 48 */
    L[3].kind = RT_ADD;
    L[3].in = L[3].out = L[1].out;
    /* maxpool 2x2 -> 3x2x2 = 12 outputs: 4*12 = 48 */
    L[4].kind = RT_MAXPOOL;
    L[4].in = L[1].out;
    L[4].out = (rt_shape){3, 2, 2};
    L[4].kh = L[4].kw = 2;
    /* stand-alone tanh on 12 values: 12 */
    L[5].kind = RT_ACTIVATION;
    L[5].act = RT_ACT_TANH;
    L[5].in = L[5].out = L[4].out;
    /* global average pool of 12 values: 12 */
    L[6].kind = RT_GLOBALAVGPOOL;
    L[6].in = L[4].out;
    L[6].out = (rt_shape){3, 1, 1};
    /* dense 3 -> 5 without bias, with softmax (counted as an activation): 2*3*5 + 5 = 35 */
    L[7].kind = RT_DENSE;
    L[7].in = L[6].out;
    L[7].out = (rt_shape){5, 1, 1};
    L[7].act = RT_ACT_SOFTMAX;
    rt_netdesc d;
    memset(&d, 0, sizeof d);
    d.nlayers = 8;
    d.layers = L;
    const double want[8] = {0, 1824, 96, 48, 48, 12, 12, 35};
    double total = 0;
    for (int i = 0; i < 8; i++) {
        ck_assert_double_eq(rt_layer_flops(&d, i), want[i]);
        total += want[i];
    }
    ck_assert_double_eq(rt_netdesc_flops(&d), total);
    ck_assert_double_eq(rt_layer_flops(&d, 8), 0);
    ck_assert_double_eq(rt_layer_flops(&d, -1), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("train");
    TCase *t = tcase_create("training");
    tcase_add_test(t, learns_separable_set);
    tcase_add_test(t, same_seed_same_run);
    tcase_add_test(t, checkpoint_round_trip);
    tcase_add_test(t, each_epoch_a_new_permutation);
    tcase_add_test(t, hflip_augmentation);
    tcase_add_test(t, best_weights_restored);
    tcase_add_test(t, no_validation_uses_train_loss);
    tcase_add_test(t, bad_configurations);
    tcase_add_test(t, shape_mismatch_and_forward_failure);
    tcase_add_test(t, confusion_counts);
    suite_add_tcase(s, t);
    TCase *r = tcase_create("reports");
    tcase_add_test(r, durations);
    tcase_add_test(r, report_row_format);
    tcase_add_test(r, markdown_append);
    tcase_add_test(r, confusion_matrix_print);
    tcase_add_test(r, progress_display);
    tcase_add_test(r, plot_svg);
    tcase_add_test(r, plot_png);
    suite_add_tcase(s, r);
    TCase *c = tcase_create("cli");
    tcase_add_checked_fixture(c, cli_setup, NULL);
    tcase_add_test(c, cli_usage_errors);
    tcase_add_test(c, cli_help_version);
    tcase_add_test(c, cli_train_eval_predict);
    tcase_add_test(c, cli_collapse_note);
    tcase_add_test(c, cli_dump);
    tcase_add_test(c, cli_bench);
    tcase_add_test(c, flop_count);
    tcase_set_timeout(c, 30);
    suite_add_tcase(s, c);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
