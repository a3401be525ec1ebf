/*
 * rt_cli_train.c - `--train DIR`: loads and splits the data, trains with a progress
 * display, saves the best weights after every improvement, then reports the test split
 * (confusion matrix, the results row, optional Markdown report and curves).
 */
#include "rt_cli_int.h"
#include "rt_dist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    if (probe_writable(e, "weights file", out) < 0 ||
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
    rt_history h = {0};
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

    if (!c->quiet) {
        printf("%s: %zu parameters, input %dx%dx%d, %d classes\n", d->name, d->nparams,
               d->layers[0].out.c, d->layers[0].out.h, d->layers[0].out.w, k);
        printf("images: %d in %s; %d train, %d validation, %d test (split %s, seed %llu)\n",
               ds.n, c->dir, sp.ntrain, sp.nval, sp.ntest, split, (unsigned long long)g->seed);
        printf("training: %d epoch%s, batch %d, %s lr %g", g->epochs, g->epochs == 1 ? "" : "s",
               g->batch, rt_cli_opt_name(g->opt.kind), (double)g->opt.lr);
        if (g->opt.kind == RT_OPT_SGD && g->opt.momentum > 0)
            printf(" momentum %g", (double)g->opt.momentum);
        if (g->opt.weight_decay > 0)
            printf(" weight decay %g", (double)g->opt.weight_decay);
        printf("%s; best weights to %s\n", g->augment.hflip ? ", random flips" : "", out);
        if (rt_dist_size() > 1)
            printf("MPI: %d ranks x %d thread%s, each rank takes its slice of every batch\n",
                   rt_dist_size(), g->threads, g->threads == 1 ? "" : "s");
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
    rt_model_destroy(m);
    rt_split_free(&sp);
    rt_dataset_free(&ds);
    return rc;
}
