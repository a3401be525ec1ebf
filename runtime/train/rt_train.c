/*
 * rt_train.c - the training loop, its default settings and evaluation shared by cnnrun
 * and generated programs: seeded per-epoch shuffling, minibatch SGD/Adam on the softmax
 * cross-entropy, validation after every epoch and keeping the best weights in memory. It
 * prints nothing; progress and saving happen in the caller's hooks.
 */
#include "rt_train_int.h"
#include "rt_kernels.h"
#include "rt_dist.h"
#include "rt_dist_train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stream constants that separate the run seed's uses (shuffle, dropout). */
#define SEED_SHUFFLE 0x53485546464c4531ull  /* "SHUFFLE1" */
#define SEED_DROPOUT 0x44524f504f555431ull  /* "DROPOUT1" */

/* PyTorch-like defaults; the .cnn train section and the command line override them. */
void rt_train_cfg_defaults(rt_train_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->opt.kind = RT_OPT_ADAM;
    c->opt.lr = 1e-3f;
    c->opt.momentum = 0;
    c->opt.weight_decay = 0;
    c->opt.beta1 = 0.9f;
    c->opt.beta2 = 0.999f;
    c->opt.eps = 1e-8f;
    c->batch = 32;
    c->epochs = 10;
    c->split[0] = 7;
    c->split[1] = 2;
    c->split[2] = 1;
    c->seed = 1;
    c->schedule.gamma = 0.1f;
    c->schedule.factor = 0.1f;
    c->schedule.patience = 10;
    c->threads = 0;
}

void rt_history_fields(rt_history *h, double **f[RT_HISTORY_FIELDS])
{
    f[0] = &h->train_loss;
    f[1] = &h->train_acc;
    f[2] = &h->val_loss;
    f[3] = &h->val_acc;
    f[4] = &h->secs;
    f[5] = &h->lr;
}

void rt_history_free(rt_history *h)
{
    double **f[RT_HISTORY_FIELDS];
    rt_history_fields(h, f);
    for (int k = 0; k < RT_HISTORY_FIELDS; k++)
        free(*f[k]);
    memset(h, 0, sizeof *h);
    h->best_epoch = -1;
}

int rt_history_alloc(rt_history *h, int epochs)
{
    memset(h, 0, sizeof *h);
    h->best_epoch = -1;
    size_t n = (size_t)(epochs > 0 ? epochs : 1);
    double **f[RT_HISTORY_FIELDS];
    rt_history_fields(h, f);
    for (int k = 0; k < RT_HISTORY_FIELDS; k++)
        if (!(*f[k] = calloc(n, sizeof(double)))) {
            rt_history_free(h);
            return -1;
        }
    return 0;
}

/* A uniform integer in [0, n) (Lemire's multiply-shift; bias below 2^-32 for n < 2^31). */
static uint32_t below(rt_rng *r, uint32_t n)
{
    return (uint32_t)(((rt_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static int input_size(const rt_model *m)
{
    rt_shape s = m->desc->layers[0].out;
    return s.c * s.h * s.w;
}

int rt_evaluate(rt_model *m, const rt_dataset *ds, const int *idx, int n, double *loss,
                double *acc, int *confusion, char *err)
{
    int k = rt_netdesc_classes(m->desc);
    int bs = m->max_batch > 0 ? m->max_batch : 1;
    size_t isz = (size_t)input_size(m);
    *loss = 0;
    *acc = 0;
    if (confusion)
        memset(confusion, 0, sizeof(int) * (size_t)k * (size_t)k);
    if (n <= 0)
        return 0;
    if (isz != (size_t)ds->c * ds->h * ds->w) {
        snprintf(err, RT_ERRLEN, "the images are %dx%dx%d but the network takes %dx%dx%d",
                 ds->c, ds->h, ds->w, m->desc->layers[0].out.c, m->desc->layers[0].out.h,
                 m->desc->layers[0].out.w);
        return -1;
    }
    float *x = malloc(sizeof(float) * isz * (size_t)bs);
    float *logits = malloc(sizeof(float) * (size_t)k * (size_t)bs);
    int *y = malloc(sizeof(int) * (size_t)bs);
    int rc = 0;
    if (!x || !logits || !y) {
        snprintf(err, RT_ERRLEN, "out of memory");
        rc = -1;
        goto out;
    }
    double sum = 0;
    long correct = 0;
    int total = n, lo = 0; /* MPI: each rank evaluates its slice; the sums are reduced */
    rt_dist_train_slice(total, &lo, &n);
    idx += lo;
    for (int off = 0; off < n; off += bs) {
        int nb = n - off < bs ? n - off : bs;
        rt_dataset_batch(ds, idx + off, nb, NULL, x, y);
        for (int i = 0; i < nb; i++)
            if (y[i] < 0 || y[i] >= k) {
                snprintf(err, RT_ERRLEN, "label %d is outside the network's %d classes", y[i],
                         k);
                rc = -1;
                goto out;
            }
        if (m->forward(m->self, x, nb, RT_INFER, logits) != 0) {
            snprintf(err, RT_ERRLEN, "forward pass failed");
            rc = -1;
            goto out;
        }
        int c = 0;
        sum += rt_softmax_xent(logits, y, nb, k, NULL, NULL, &c) * nb;
        correct += c;
        if (confusion)
            for (int i = 0; i < nb; i++) {
                int best = 0;
                for (int j = 1; j < k; j++)
                    if (logits[(size_t)i * k + j] > logits[(size_t)i * k + best])
                        best = j;
                confusion[(size_t)y[i] * k + best]++;
            }
    }
    if (rt_dist_eval_sum(&sum, &correct, confusion, k) != 0) {
        snprintf(err, RT_ERRLEN, "MPI sum over the ranks failed in evaluation");
        rc = -1;
        goto out;
    }
    *loss = sum / total;
    *acc = (double)correct / total;
out:
    if (rc != 0 && rt_dist_size() > 1) /* MPI: the other ranks would wait for this one */
        rt_dist_abort(err);
    free(x);
    free(logits);
    free(y);
    return rc;
}

void rt_train_state_free(rt_train_state *s)
{
    free(s->order);
    free(s->opt_state);
    free(s->best_params);
    free(s->best_state);
    memset(s, 0, sizeof *s);
}

/* Puts a run back where checkpoint state r and history rh left it. */
static int resume_run(const rt_train_state *r, const rt_history *rh, int ntrain, rt_model *m,
                      rt_opt *opt, rt_history *h, rt_rng *rng, int *order, double *best,
                      float *best_p, float *best_s, char *err)
{
    if (r->ntrain != ntrain || r->opt_floats != rt_opt_state_floats(opt) || r->epoch < 1 ||
        r->epoch > rh->epochs) {
        snprintf(err, RT_ERRLEN, "the checkpoint does not belong to this run (%d training "
                 "images and %zu optimizer values, here %d and %zu)", r->ntrain, r->opt_floats,
                 ntrain, rt_opt_state_floats(opt));
        return -1;
    }
    int n = r->epoch;
    double **to[RT_HISTORY_FIELDS], **from[RT_HISTORY_FIELDS];
    rt_history_fields(h, to);
    rt_history_fields((rt_history *)rh, from);
    for (int k = 0; k < RT_HISTORY_FIELDS; k++)
        memcpy(*to[k], *from[k], sizeof(double) * (size_t)n);
    h->epochs = n;
    h->best_epoch = r->best_epoch;
    *rng = r->rng;
    memcpy(order, r->order, sizeof(int) * (size_t)ntrain);
    rt_opt_import(opt, r->opt_step, r->opt_state);
    *best = r->best;
    memcpy(best_p, r->best_params, sizeof(float) * m->nparams);
    memcpy(best_s, r->best_state, sizeof(float) * m->nstate);
    return 0;
}

/* For the tests of resuming: CNNRT_TEST_KILL_AFTER_EPOCH=N[:KILL][@R] sends rank R (0 when
 * not given; the only process without MPI) SIGTERM (SIGKILL) after epoch N's checkpoint. */
static void test_kill(int epoch)
{
    const char *at = getenv("CNNRT_TEST_KILL_AFTER_EPOCH");
    if (!at || atoi(at) != epoch)
        return;
    const char *r = strchr(at, '@');
    if ((r ? atoi(r + 1) : 0) != rt_dist_rank())
        return;
    fflush(stdout);
    raise(strstr(at, ":KILL") ? SIGKILL : SIGTERM);
}

int rt_train_run(rt_model *m, const rt_dataset *ds, const rt_split *sp,
                 const rt_train_cfg *cfg, const rt_train_hooks *hooks, rt_history *h,
                 char *err)
{
    static const rt_train_hooks nohooks;
    memset(h, 0, sizeof *h);
    h->best_epoch = -1;
    if (!hooks)
        hooks = &nohooks;
    if (cfg->epochs < 1 || cfg->batch < 1) {
        snprintf(err, RT_ERRLEN, "epochs and batch size must be at least 1");
        return -1;
    }
    if (cfg->batch > m->max_batch) {
        snprintf(err, RT_ERRLEN, "batch size %d is larger than the model's maximum %d",
                 cfg->batch, m->max_batch);
        return -1;
    }
    if (sp->ntrain < 1) {
        snprintf(err, RT_ERRLEN, "no training images (the split gave 0)");
        return -1;
    }
    int k = rt_netdesc_classes(m->desc);
    size_t isz = (size_t)input_size(m);
    if (isz != (size_t)ds->c * ds->h * ds->w) {
        snprintf(err, RT_ERRLEN, "the images are %dx%dx%d but the network takes %dx%dx%d",
                 ds->c, ds->h, ds->w, m->desc->layers[0].out.c, m->desc->layers[0].out.h,
                 m->desc->layers[0].out.w);
        return -1;
    }
    if (rt_history_alloc(h, cfg->epochs) < 0) {
        snprintf(err, RT_ERRLEN, "out of memory");
        return -1;
    }
    h->has_val = sp->nval > 0;

    int bs = cfg->batch;
    float *x = malloc(sizeof(float) * isz * (size_t)bs);
    float *logits = malloc(sizeof(float) * (size_t)k * (size_t)bs);
    float *dlogits = malloc(sizeof(float) * (size_t)k * (size_t)bs);
    int *y = malloc(sizeof(int) * (size_t)bs);
    uint8_t *flip = malloc((size_t)bs);
    float *augtmp = malloc(sizeof(float) * isz);
    int *order = malloc(sizeof(int) * (size_t)sp->ntrain);
    float *best_p = malloc(sizeof(float) * (m->nparams ? m->nparams : 1));
    float *best_s = malloc(sizeof(float) * (m->nstate ? m->nstate : 1));
    rt_opt *opt = rt_opt_create(&cfg->opt, m->nparams);
    float *optbuf = opt ? malloc(sizeof(float) * (rt_opt_state_floats(opt) + 1)) : NULL;
    /* the optimizer's own workers (the model keeps its pool to itself) */
    rt_threads *tp = rt_threads_create(cfg->threads, err);
    FILE *steplog = NULL; /* CNNRT_TEST_STEP_LOSSES, below */
    int rc = 0;
    if (!tp) {
        rc = -1;
        goto out;
    }
    if (!x || !logits || !dlogits || !y || !flip || !augtmp || !order || !best_p || !best_s || !opt ||
        !optbuf) {
        snprintf(err, RT_ERRLEN, "out of memory");
        rc = -1;
        goto out;
    }

    if (rt_dist_train_check(m, err) != 0) { /* MPI: same start on every rank */
        rc = -1;
        goto out;
    }
    /* MPI: batchnorm sums its statistics over the ranks inside forward and backward, so a
     * rank cannot sit out a batch: a last batch smaller than the ranks is left out */
    int skip_small = rt_dist_size() > 1 && m->nstate > 0 && sp->ntrain % bs != 0 &&
                     sp->ntrain % bs < rt_dist_size();
    if (skip_small && sp->ntrain < rt_dist_size()) {
        snprintf(err, RT_ERRLEN, "%d training images cannot be shared by %d ranks (batchnorm "
                 "needs an image on every rank)", sp->ntrain, rt_dist_size());
        rc = -1;
        goto out;
    }
    if (skip_small && rt_dist_is_root())
        fprintf(stderr, "note: the last batch of each epoch (%d image%s) is smaller than the %d "
                "ranks and is left out (batchnorm needs an image on every rank)\n",
                sp->ntrain % bs, sp->ntrain % bs == 1 ? "" : "s", rt_dist_size());
    rt_rng rng;
    rt_rng_seed(&rng, cfg->seed ^ SEED_SHUFFLE);
    memcpy(order, sp->train, sizeof(int) * (size_t)sp->ntrain);
    int nbatches = (sp->ntrain + bs - 1) / bs;
    double best = INFINITY;
    int first = 0;
    if (hooks->resume && resume_run(hooks->resume, hooks->resume_history, sp->ntrain, m, opt,
                                    h, &rng, order, &best, best_p, best_s, err) < 0) {
        rc = -1;
        goto out;
    }
    if (hooks->resume)
        first = hooks->resume->epoch;

    /* For the tests of data-parallel training: CNNRT_TEST_STEP_LOSSES=FILE appends each
     * step's loss, which epoch lines (means to 4 digits) cannot compare to 1e-5 */
    const char *steplog_path = getenv("CNNRT_TEST_STEP_LOSSES");
    steplog = steplog_path && rt_dist_is_root() ? fopen(steplog_path, "a") : NULL;
    for (int e = first; e < cfg->epochs; e++) {
        double t0 = rt_now();
        /* dropout draws from a generator seeded by the run's seed and the epoch, so that a
         * resumed run needs no generator state of the model's */
        if (m->seed_dropout)
            m->seed_dropout(m->self, cfg->seed ^ SEED_DROPOUT ^ (0x9e3779b97f4a7c15ull * (uint64_t)(e + 1)));
        h->lr[e] = rt_sched_lr(cfg, e, h); /* the schedule, from the history so far */
        rt_opt_set_lr(opt, (float)h->lr[e]);
        /* Fisher-Yates on the previous order: deterministic for the seed */
        for (int i = sp->ntrain - 1; i > 0; i--) {
            int j = (int)below(&rng, (uint32_t)i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double sum = 0;
        long correct = 0, seen = 0;
        for (int b = 0; b < nbatches; b++) {
            int off = b * bs;
            int nb = sp->ntrain - off < bs ? sp->ntrain - off : bs;
            if (cfg->augment.hflip)
                for (int i = 0; i < nb; i++)
                    flip[i] = (uint8_t)(rt_rng_next(&rng) >> 63);
            int lo = 0, ln = nb; /* MPI: this rank's slice of the global batch */
            rt_dist_train_slice(nb, &lo, &ln);
            if (skip_small && nb < rt_dist_size())
                continue; /* MPI + batchnorm: every rank needs an image (said at the start) */
            rt_dataset_batch(ds, order + off + lo, ln, cfg->augment.hflip ? flip + lo : NULL, x, y);
            rt_augment_batch(&cfg->augment, cfg->seed, e, off + lo, x, ln, ds->c, ds->h, ds->w, augtmp);
            for (int i = 0; i < ln; i++)
                if (y[i] < 0 || y[i] >= k) {
                    snprintf(err, RT_ERRLEN, "label %d is outside the network's %d classes",
                             y[i], k);
                    rc = -1;
                    goto out;
                }
            if (rt_dist_train_begin(m, lo, ln, nb) != 0) {
                snprintf(err, RT_ERRLEN, "out of memory for the gradient sum over the ranks");
                rc = -1;
                goto out;
            }
            if (ln > 0 && m->forward(m->self, x, ln, RT_TRAIN, logits) != 0) {
                snprintf(err, RT_ERRLEN, "forward pass failed at epoch %d: %.400s", e + 1, m->err);
                rc = -1;
                goto out;
            }
            int c = 0;
            double loss = ln > 0 ? rt_softmax_xent_smooth(logits, y, ln, k, cfg->label_smoothing, NULL,
                                                          dlogits, &c)
                                : 0.0;
            rt_dist_train_scale(dlogits, ln, k, nb);
            if (ln > 0 && m->backward(m->self, dlogits, ln) != 0) { /* (MPI: out: ends all) */
                snprintf(err, RT_ERRLEN, "backward pass failed at epoch %d: %.400s", e + 1, m->err);
                rc = -1;
                goto out;
            }
            double bsum = loss * ln;
            long bcorrect = c, bseen = ln;
            int stop = hooks->interrupt && *hooks->interrupt;
            if (rt_dist_train_grads(m, ln) != 0 ||
                rt_dist_train_stats(&bsum, &bcorrect, &bseen, &stop) != 0) {
                snprintf(err, RT_ERRLEN, "MPI sum over the ranks failed at epoch %d", e + 1);
                rc = -1;
                goto out;
            }
            loss = bsum / nb;
            if (!isfinite(loss)) {
                snprintf(err, RT_ERRLEN, "training diverged at epoch %d, batch %d (the loss is "
                         "%s); try a smaller learning rate (--lr)", e + 1, b + 1,
                         isnan(loss) ? "NaN" : "infinite");
                rc = -1;
                goto out;
            }
            if (cfg->clip_norm > 0) /* the whole batch's gradient, summed over the ranks */
                rt_clip_grad_norm(m->grads, m->nparams, cfg->clip_norm);
            rt_opt_step_mt(opt, m->params, m->grads, tp);
            sum += bsum;
            correct += bcorrect;
            seen += bseen;
            if (steplog) /* tests: every step's global-batch loss (opened by rank 0 alone) */
                fprintf(steplog, "%d %d %.9e\n", e + 1, b + 1, loss);
            if (hooks->batch_done && rt_dist_is_root()) /* MPI: rank 0 alone reports */
                hooks->batch_done(hooks->ctx, e, b, nbatches, sum / seen,
                                  (double)correct / seen);
            if (stop) {
                snprintf(err, RT_ERRLEN, "interrupted in epoch %d", e + 1);
                rc = RT_TRAIN_INTERRUPTED;
                goto out;
            }
        }
        h->train_loss[e] = sum / seen;
        h->train_acc[e] = (double)correct / seen;
        if (h->has_val &&
            rt_evaluate(m, ds, sp->val, sp->nval, &h->val_loss[e], &h->val_acc[e], NULL,
                        err) < 0) {
            rc = -1;
            goto out;
        }
        double crit = h->has_val ? h->val_loss[e] : h->train_loss[e];
        int improved = crit < best;
        if (improved) {
            best = crit;
            h->best_epoch = e;
            memcpy(best_p, m->params, sizeof(float) * m->nparams);
            memcpy(best_s, m->state, sizeof(float) * m->nstate);
        }
        h->secs[e] = rt_now() - t0;
        h->epochs = e + 1;
        if (hooks->epoch_done && rt_dist_is_root() && hooks->epoch_done(hooks->ctx, h, e, improved, m, err) != 0) {
            rc = -1;
            goto out;
        }
        if (hooks->checkpoint && rt_dist_is_root()) { /* MPI: rank 0 alone writes */
            rt_train_state st = {.epoch = e + 1, .rng = rng, .ntrain = sp->ntrain,
                                 .order = order, .opt_floats = rt_opt_state_floats(opt),
                                 .opt_state = optbuf, .best = best,
                                 .best_epoch = h->best_epoch, .best_params = best_p,
                                 .best_state = best_s};
            st.opt_step = rt_opt_export(opt, optbuf);
            if (hooks->checkpoint(hooks->ctx, &st, h, m, err) != 0) {
                rc = -1;
                goto out;
            }
        }
        test_kill(e + 1);
        if (rt_sched_stop(cfg, h)) /* early stopping: h->epochs < cfg->epochs tells */
            break;
    }
out:
    if (steplog)
        fclose(steplog);
    rt_dist_train_end(m);
    if (rc != 0 && rc != RT_TRAIN_INTERRUPTED && rt_dist_size() > 1) /* MPI: the others would wait */
        rt_dist_abort(err);
    if (h->best_epoch >= 0) {   /* also after an error: leave the best weights seen */
        memcpy(m->params, best_p, sizeof(float) * m->nparams);
        memcpy(m->state, best_s, sizeof(float) * m->nstate);
    }
    if (opt)
        rt_opt_destroy(opt);
    rt_threads_destroy(tp);
    free(x);
    free(logits);
    free(dlogits);
    free(y);
    free(flip);
    free(augtmp);
    free(order);
    free(best_p);
    free(best_s);
    free(optbuf);
    return rc;
}
