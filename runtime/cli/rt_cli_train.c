/*
 * rt_cli_train.c - `--train DIR`: loads and splits the data, trains with a progress
 * display, saves the best weights after every improvement and a checkpoint after every
 * epoch, then reports the test split (confusion matrix, the results row, optional Markdown
 * report, curves and per-epoch log). `--resume` continues a checkpoint's run; Ctrl-C or
 * SIGTERM stops after the current minibatch, keeps the last checkpoint and prints the
 * command that resumes (exit 130).
 */
#include "rt_cli_int.h"
#include "rt_dist.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set by SIGINT and SIGTERM while training. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

/* Fails early, before hours of training, if file could not be created where it should go:
 * creates and removes a temporary file beside it. */
static int probe_writable(const rt_cli_env *e, const char *what, const char *file)
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
    const rt_cli_env *e;
    const rt_cli_args *c;
    const rt_dataset *ds;
    rt_progress prog;
    const char *out;
    const char *ckpt;       /* the checkpoint file */
    int saved_epoch;        /* epochs in the last checkpoint written (0: none) */
    int save_failed;        /* the last save after an improvement failed */
} train_ctx;

/* After every epoch: the checkpoint (CNNRT_TEST_KILL_AFTER_EPOCH, for the tests of
 * resuming, is in rt_train.c). */
static int on_checkpoint(void *ctx, const rt_train_state *st, const rt_history *h,
                         const rt_model *m, char *err)
{
    train_ctx *t = ctx;
    (void)err;
    char cerr[RT_ERRLEN];
    if (rt_checkpoint_write(t->ckpt, m, st, h, t->c->nargs, t->c->args, cerr) < 0) {
        /* like a failed save of the best weights: warn and go on (a full disk may clear) */
        if (t->prog.live && !t->prog.quiet)
            fputc('\n', t->prog.f);
        t->prog.width = 0;
        rt_cli_error(t->e, "warning: %s; training goes on", cerr);
        return 0;
    }
    t->saved_epoch = st->epoch;
    return 0;
}

static void on_batch(void *ctx, int epoch, int batch, int nbatches, double loss, double acc)
{
    train_ctx *t = ctx;
    rt_progress_batch(&t->prog, epoch, batch, nbatches, loss, acc);
}

static int on_epoch(void *ctx, const rt_history *h, int epoch, int improved,
                    const rt_model *m, char *err)
{
    train_ctx *t = ctx;
    const char *note = NULL;
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
    if (t->c->log && rt_log_write(t->c->log, h, err) < 0)
        return -1;
    return 0;
}

int rt_cli_train(const rt_cli_env *e, const rt_cli_args *c)
{
    double t0 = rt_now();
    char err[RT_ERRLEN];
    const rt_netdesc *d = e->d;
    const rt_train_cfg *g = &c->cfg;
    int k = rt_netdesc_classes(d);
    const char *out = c->out ? c->out : e->default_weights;
    rt_dataset ds;
    rt_split sp;
    char ckbuf[4096];
    const char *ckpt = rt_cli_checkpoint_path(e, c, ckbuf, sizeof ckbuf);
    if (probe_writable(e, "weights file", out) < 0 ||
        probe_writable(e, "checkpoint", ckpt) < 0 ||
        (c->log && probe_writable(e, "log", c->log) < 0) ||
        (c->report && probe_writable(e, "report", c->report) < 0) ||
        (c->plot && probe_writable(e, "plot", c->plot) < 0))
        return RT_EXIT_RUN;
    if (rt_cli_load_data(e, c, &ds, err) < 0)
        return RT_EXIT_RUN;
    if (rt_split_make(&ds, g->split, g->seed, &sp, err) < 0) {
        rt_cli_error(e, "%s", err);
        rt_dataset_free(&ds);
        return RT_EXIT_RUN;
    }
    int rc = RT_EXIT_OK;
    rt_history h = {0}, rh = {0};
    rt_train_state rs = {0};
    int *conf = NULL;
    rt_model *m = NULL;
    char split[40];
    rt_cli_fmt_split(split, sizeof split, g->split);
    if (sp.ntrain == 0) {
        rt_cli_error(e, "the split %s leaves no training images out of %d", split, ds.n);
        rc = RT_EXIT_RUN;
        goto out;
    }
    m = rt_cli_make(e, g->batch, g->threads, err);
    if (!m) {
        rc = RT_EXIT_RUN;
        goto out;
    }
    rt_init_params(d, m->params, m->state, g->seed);
    if (c->init && !c->resume) { /* fine-tuning: trained weights instead of random ones */
        char **wn = NULL;
        int nw = 0;
        if (rt_weights_load_named(c->init, m, &wn, &nw, err) < 0) {
            rt_cli_error(e, "--init: %s", err);
            rc = RT_EXIT_RUN;
            goto out;
        }
        rt_cli_check_names(e, wn, nw, &ds, c->init);
        rt_names_free(wn, nw);
    }
    if (c->resume) {
        if (rt_checkpoint_read(c->resume, m, &rs, &rh, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = RT_EXIT_RUN;
            goto out;
        }
        if (rs.epoch >= g->epochs) {
            rt_cli_error(e, "the run in %s has finished all its %d epochs: nothing to resume",
                         c->resume, g->epochs);
            rc = RT_EXIT_RUN;
            goto out;
        }
    }

    if (!c->quiet) {
        printf("%s: %zu parameters, input %dx%dx%d, %d classes\n", d->name, d->nparams,
               d->layers[0].out.c, d->layers[0].out.h, d->layers[0].out.w, k);
        printf("images: %d in %s; %d train, %d validation, %d test (split %s, seed %llu)\n",
               ds.n, c->dir, sp.ntrain, sp.nval, sp.ntest, split, (unsigned long long)g->seed);
        /* optimizer, schedule, stopping, clipping, smoothing and augmentation */
        char how[400];
        rt_train_describe(g, how, sizeof how);
        printf("training: %d epoch%s, batch %d, %s; best weights to %s\n", g->epochs,
               g->epochs == 1 ? "" : "s", g->batch, how, out);
        if (c->resume)
            printf("resuming from %s: %d of %d epochs done\n", c->resume, rs.epoch, g->epochs);
        else if (c->init)
            printf("starting from the weights in %s\n", c->init);
        printf("checkpoint after every epoch: %s\n", ckpt);
        if (rt_dist_size() > 1)
            printf("MPI: %d ranks x %d thread%s, each rank takes its slice of every batch\n",
                   rt_dist_size(), g->threads, g->threads == 1 ? "" : "s");
        if (sp.nval == 0)
            printf("note: no validation images: the best epoch is chosen by training loss\n");
        fflush(stdout);
    }

    train_ctx tc = {.e = e, .c = c, .ds = &ds, .out = out, .ckpt = ckpt,
                    .saved_epoch = c->resume ? rs.epoch : 0};
    rt_progress_init(&tc.prog, stdout, isatty(fileno(stdout)), c->quiet, g->epochs);
    rt_train_hooks hooks = {.ctx = &tc, .batch_done = on_batch, .epoch_done = on_epoch,
                            .checkpoint = on_checkpoint, .resume = c->resume ? &rs : NULL,
                            .resume_history = c->resume ? &rh : NULL,
                            .interrupt = &interrupted};
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int trc = rt_train_run(m, &ds, &sp, g, &hooks, &h, err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (trc < 0) {
        if (tc.prog.live && tc.prog.width)
            fputc('\n', stdout);
        if (trc == RT_TRAIN_INTERRUPTED) {
            fflush(stdout);
            if (!rt_dist_is_root()) /* MPI: rank 0 alone wrote the checkpoint, and says so */
                ;
            else if (tc.saved_epoch > 0)
                fprintf(stderr, "%s: %s by %s; the checkpoint of epoch %d is in %s\n"
                        "resume with: %s%s --resume %s\n", e->prog, err,
                        interrupted == SIGTERM ? "SIGTERM" : "Ctrl-C", tc.saved_epoch, ckpt,
                        rt_dist_size() > 1 ? "mpirun ... " : "", e->prog, ckpt);
            else
                fprintf(stderr, "%s: %s by %s, before the first epoch ended: nothing was "
                        "saved\n", e->prog, err, interrupted == SIGTERM ? "SIGTERM" : "Ctrl-C");
            rc = RT_EXIT_INTERRUPTED;
            goto out;
        }
        rt_cli_error(e, "%s", err);
        rc = RT_EXIT_RUN;
        goto out;
    }
    if (tc.save_failed) {   /* one more try at the end; the disk may have room now */
        if (rt_weights_save_named(out, m, ds.classnames, ds.nclasses, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = RT_EXIT_RUN;
        } else {
            tc.save_failed = 0;
        }
    }
    if (h.epochs < g->epochs && !c->quiet)
        printf("stopped early after epoch %d: no better %s loss in %d epochs (stop patience)\n",
               h.epochs, h.has_val ? "validation" : "training", g->stop_patience);
    int b = h.best_epoch;
    if (b < 0) {
        rt_cli_error(e, "no epoch gave a finite %s loss; no weights kept", h.has_val ? "validation"
                                                                               : "training");
        rc = RT_EXIT_RUN;
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
        rc = RT_EXIT_RUN;
        goto out;
    }
    if (sp.ntest > 0) {
        if (rt_evaluate(m, &ds, sp.test, sp.ntest, &tl, &ta, conf, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = RT_EXIT_RUN;
            goto out;
        }
        printf("test: loss %.4f, accuracy %.2f%% (%d images)\n\n", tl, 100 * ta, sp.ntest);
        printf("Confusion matrix on the test images (rows: true class, columns: predicted):\n");
        rt_confusion_print(stdout, conf, k, ds.classnames);
        rt_collapse_note(stdout, d, conf, k, sp.ntest, &h, ds.classnames);
    } else {
        printf("test: no test images (split %s)\n", split);
    }
    double secs = rt_now() - t0;
    char row[512];
    rt_report_row(row, sizeof row, d->name, h.has_val ? h.val_loss[b] : -1, h.val_acc[b],
                  tl, ta, secs);
    printf("\n%s\n%s\n", rt_report_header(), row);
    fflush(stdout);
    if (c->report && rt_dist_is_root()) { /* MPI: rank 0 alone writes files */
        if (rt_report_append(c->report, row, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = RT_EXIT_RUN;
        } else if (!c->quiet) {
            printf("row appended to %s\n", c->report);
        }
    }
    if (c->plot && rt_dist_is_root()) {
        if (rt_plot_write(c->plot, &h, d->name, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = RT_EXIT_RUN;
        } else if (!c->quiet) {
            printf("curves written to %s\n", c->plot);
        }
    }
out:
    free(conf);
    rt_history_free(&h);
    rt_history_free(&rh);
    rt_train_state_free(&rs);
    rt_model_destroy(m);
    rt_split_free(&sp);
    rt_dataset_free(&ds);
    return rc;
}
