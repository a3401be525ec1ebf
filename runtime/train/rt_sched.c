/*
 * rt_sched.c - the learning rate of each epoch and early stopping, as pure functions of the
 * training settings and the history so far: a resumed run that restores the history gets
 * the same learning rates and stops at the same epoch as an uninterrupted one.
 */
#include "cnnrt.h"

#include <math.h>

/* The criterion of epoch e: the validation loss, or the training loss without validation
 * images (the same choice as the best weights in rt_train.c). */
static double criterion(const rt_history *h, int e)
{
    return h->has_val ? h->val_loss[e] : h->train_loss[e];
}

/* torch.optim.lr_scheduler.ReduceLROnPlateau(mode='min', threshold=1e-4, threshold_mode=
 * 'rel', cooldown=0, min_lr=0, eps=1e-8) stepped once after each of the epochs from..to-1:
 * an epoch is better when its criterion < best * (1 - 1e-4); after more than `patience`
 * epochs in a row that are not, lr *= factor (unless that changes it by 1e-8 or less) and
 * the count restarts. */
static double plateau(const rt_sched_cfg *s, double lr, const rt_history *h, int from, int to)
{
    double best = INFINITY;
    int bad = 0;
    for (int e = from; e < to; e++) {
        double x = criterion(h, e);
        if (x < best * (1.0 - 1e-4)) {
            best = x;
            bad = 0;
        } else {
            bad++;
        }
        if (bad > s->patience) {
            double next = lr * s->factor;
            if (lr - next > 1e-8)
                lr = next;
            bad = 0;
        }
    }
    return lr;
}

double rt_sched_lr(const rt_train_cfg *c, int epoch, const rt_history *h)
{
    const rt_sched_cfg *s = &c->schedule;
    const double base = c->opt.lr;
    const int w = s->warmup > 0 ? s->warmup : 0;
    if (epoch < w) /* linear warmup: base (e + 1) / (w + 1) */
        return base * (epoch + 1) / (w + 1);
    int e = epoch - w; /* epochs since the warmup */
    switch (s->kind) {
    case RT_SCHED_COSINE: {
        /* CosineAnnealingLR(T_max = epochs - warmup, eta_min 0), stepped per epoch */
        int t = c->epochs - w;
        if (t < 1)
            return base;
        return base * (1.0 + cos(3.14159265358979323846 * e / t)) / 2.0;
    }
    case RT_SCHED_STEP: /* StepLR(step_size = every, gamma) */
        return s->every > 0 ? base * pow(s->gamma, e / s->every) : base;
    case RT_SCHED_PLATEAU: {
        int done = h ? h->epochs : 0;
        return plateau(s, base, h, w, epoch < done ? epoch : done);
    }
    case RT_SCHED_CONSTANT:
    default:
        return base;
    }
}

int rt_sched_stop(const rt_train_cfg *c, const rt_history *h)
{
    if (c->stop_patience <= 0 || !h || h->epochs < 1)
        return 0;
    /* the first epoch with the lowest criterion, as rt_train.c keeps its weights */
    int best = 0;
    for (int e = 1; e < h->epochs; e++)
        if (criterion(h, e) < criterion(h, best))
            best = e;
    return h->epochs - 1 - best >= c->stop_patience;
}
