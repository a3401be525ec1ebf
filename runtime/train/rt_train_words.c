/*
 * rt_train_words.c - the training settings the .cnn train { } section and the command
 * line share: one parser per value (range and form, with a message saying what is valid)
 * and one set of cross-checks (momentum given to adam, nesterov without momentum, a
 * schedule key of another schedule, ...), so that the file and the command line accept and
 * refuse the same things. Also the one-line description of the settings for banners.
 */
#include "cnnrt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const OPT_NAMES[] = {"sgd", "adam", "adamw"};
static const char *const SCHED_NAMES[] = {"constant", "cosine", "step", "plateau"};

const char *rt_opt_kind_name(rt_opt_kind k)
{
    return (unsigned)k < 3 ? OPT_NAMES[k] : "?";
}

const char *rt_sched_kind_name(rt_sched_kind k)
{
    return (unsigned)k < 4 ? SCHED_NAMES[k] : "?";
}

/* A number in [lo, hi] (lo_open / hi_open exclude the end), the whole text. */
static int num(const char *s, double lo, double hi, int lo_open, int hi_open, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v) || v < lo || v > hi ||
        (lo_open && v == lo) || (hi_open && v == hi))
        return -1;
    *out = v;
    return 0;
}

static int whole(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int bad(char *err, const char *what, const char *v, const char *valid)
{
    snprintf(err, RT_ERRLEN, "%s: '%.64s' is not valid; expected %s", what, v ? v : "", valid);
    return -1;
}

int rt_train_word_set(rt_train_cfg *c, rt_train_word w, const char *v, char *err)
{
    double d;
    switch (w) {
    case RT_W_OPTIMIZER:
        for (int k = 0; k < 3; k++)
            if (v && !strcmp(v, OPT_NAMES[k])) {
                c->opt.kind = (rt_opt_kind)k;
                return 0;
            }
        return bad(err, "optimizer", v, "sgd, adam or adamw");
    case RT_W_LR:
        if (num(v, 0, 1e6, 1, 0, &d) < 0)
            return bad(err, "lr", v, "a number greater than 0, e.g. 0.001 or 1e-3");
        c->opt.lr = (float)d;
        return 0;
    case RT_W_MOMENTUM:
        if (num(v, 0, 1, 0, 1, &d) < 0)
            return bad(err, "momentum", v, "a number from 0 up to (not including) 1");
        c->opt.momentum = (float)d;
        return 0;
    case RT_W_WD:
        if (num(v, 0, 1e6, 0, 0, &d) < 0)
            return bad(err, "weight_decay", v, "a number, 0 or more");
        c->opt.weight_decay = (float)d;
        return 0;
    case RT_W_BETAS: {
        /* "B1,B2" */
        const char *comma = v ? strchr(v, ',') : NULL;
        char b1[64];
        double d2;
        if (!comma || (size_t)(comma - v) >= sizeof b1)
            return bad(err, "betas", v, "two numbers from 0 up to (not including) 1, e.g. 0.9,0.999");
        memcpy(b1, v, (size_t)(comma - v));
        b1[comma - v] = 0;
        if (num(b1, 0, 1, 0, 1, &d) < 0 || num(comma + 1, 0, 1, 0, 1, &d2) < 0)
            return bad(err, "betas", v, "two numbers from 0 up to (not including) 1, e.g. 0.9,0.999");
        c->opt.beta1 = (float)d;
        c->opt.beta2 = (float)d2;
        return 0;
    }
    case RT_W_BETA1:
    case RT_W_BETA2:
        if (num(v, 0, 1, 0, 1, &d) < 0)
            return bad(err, w == RT_W_BETA1 ? "beta1" : "beta2", v,
                       "a number from 0 up to (not including) 1");
        *(w == RT_W_BETA1 ? &c->opt.beta1 : &c->opt.beta2) = (float)d;
        return 0;
    case RT_W_NESTEROV:
        if (v)
            return bad(err, "nesterov", v, "no value (the word alone turns it on)");
        c->opt.nesterov = 1;
        return 0;
    case RT_W_SCHEDULE:
        for (int k = 0; k < 4; k++)
            if (v && !strcmp(v, SCHED_NAMES[k])) {
                c->schedule.kind = (rt_sched_kind)k;
                return 0;
            }
        return bad(err, "schedule", v, "constant, cosine, step or plateau");
    case RT_W_WARMUP:
        if (whole(v, 0, 1000000, &c->schedule.warmup) < 0)
            return bad(err, "warmup", v, "a whole number of epochs, 0 or more");
        return 0;
    case RT_W_EVERY:
        if (whole(v, 1, 1000000, &c->schedule.every) < 0)
            return bad(err, "every", v, "a whole number of epochs, 1 or more");
        return 0;
    case RT_W_GAMMA:
        if (num(v, 0, 1, 1, 0, &d) < 0)
            return bad(err, "gamma", v, "a number greater than 0 and at most 1, e.g. 0.1");
        c->schedule.gamma = (float)d;
        return 0;
    case RT_W_PATIENCE:
        if (whole(v, 0, 1000000, &c->schedule.patience) < 0)
            return bad(err, "patience", v, "a whole number of epochs, 0 or more");
        return 0;
    case RT_W_FACTOR:
        if (num(v, 0, 1, 1, 1, &d) < 0)
            return bad(err, "factor", v, "a number between 0 and 1 (both excluded), e.g. 0.1");
        c->schedule.factor = (float)d;
        return 0;
    case RT_W_STOP:
        if (whole(v, 0, 1000000, &c->stop_patience) < 0)
            return bad(err, "stop patience", v, "a whole number of epochs, 0 (off) or more");
        return 0;
    case RT_W_CLIP:
        if (num(v, 0, 1e6, 0, 0, &d) < 0)
            return bad(err, "clip norm", v, "a number, 0 (off) or more, e.g. 1.0");
        c->clip_norm = (float)d;
        return 0;
    case RT_W_SMOOTHING:
        if (num(v, 0, 1, 0, 1, &d) < 0)
            return bad(err, "label smoothing", v, "a number from 0 up to (not including) 1, e.g. 0.1");
        c->label_smoothing = (float)d;
        return 0;
    default:
        snprintf(err, RT_ERRLEN, "unknown training setting");
        return -1;
    }
}

int rt_train_augment_item(rt_augment_cfg *a, const char *item, char *err)
{
    const char *valid = "hflip, vflip, crop=PIXELS, rotate=DEGREES, scale=F, jitter=F or none";
    const char *eq = strchr(item, '=');
    size_t klen = eq ? (size_t)(eq - item) : strlen(item);
    const char *v = eq ? eq + 1 : NULL;
    double d;
#define KEY(k) (klen == strlen(k) && !strncmp(item, k, klen))
    if (KEY("hflip") || KEY("vflip") || KEY("none")) {
        if (v)
            return bad(err, "augment", item, "hflip, vflip and none alone, without =");
        if (KEY("none"))
            memset(a, 0, sizeof *a);
        else
            *(KEY("hflip") ? &a->hflip : &a->vflip) = 1;
        return 0;
    }
    if (KEY("crop")) {
        if (whole(v, 1, 1024, &a->crop) < 0)
            return bad(err, "augment crop", v, "a whole number of pixels from 1 to 1024, e.g. crop=4");
        return 0;
    }
    if (KEY("rotate")) {
        if (num(v, 0, 180, 1, 0, &d) < 0)
            return bad(err, "augment rotate", v, "degrees, more than 0 and at most 180, e.g. rotate=10");
        a->rotate = (float)d;
        return 0;
    }
    if (KEY("scale") || KEY("jitter")) {
        if (num(v, 0, 1, 1, 1, &d) < 0)
            return bad(err, KEY("scale") ? "augment scale" : "augment jitter", v,
                       "a fraction between 0 and 1 (both excluded), e.g. 0.1");
        *(KEY("scale") ? &a->scale : &a->jitter) = (float)d;
        return 0;
    }
#undef KEY
    return bad(err, "augment", item, valid);
}

int rt_train_words_check(rt_train_cfg *c, const unsigned char given[RT_NWORDS], char *err)
{
    const rt_opt_cfg *o = &c->opt;
    const rt_sched_cfg *s = &c->schedule;
    const char *on = rt_opt_kind_name(o->kind), *sn = rt_sched_kind_name(s->kind);
    if (given[RT_W_MOMENTUM] && o->kind != RT_OPT_SGD) {
        snprintf(err, RT_ERRLEN, "momentum applies to the sgd optimizer only (this one is %s; "
                 "adam and adamw take betas)", on);
        return RT_W_MOMENTUM;
    }
    for (int w = RT_W_BETAS; w <= RT_W_BETA2; w++)
        if (given[w] && o->kind == RT_OPT_SGD) {
            snprintf(err, RT_ERRLEN, "betas apply to adam and adamw only (this optimizer is sgd; "
                     "it takes momentum)");
            return w;
        }
    if (o->nesterov && o->kind != RT_OPT_SGD) {
        snprintf(err, RT_ERRLEN, "nesterov applies to the sgd optimizer only (this one is %s)", on);
        return RT_W_NESTEROV;
    }
    if (o->nesterov && !(o->momentum > 0)) {
        snprintf(err, RT_ERRLEN, "nesterov needs a momentum above 0 (torch's rule), e.g. "
                 "momentum=0.9 (--momentum 0.9)");
        return RT_W_NESTEROV;
    }
    if ((given[RT_W_EVERY] || given[RT_W_GAMMA]) && s->kind != RT_SCHED_STEP) {
        snprintf(err, RT_ERRLEN, "every and gamma belong to the step schedule (this one is %s)",
                 sn);
        return given[RT_W_EVERY] ? RT_W_EVERY : RT_W_GAMMA;
    }
    if ((given[RT_W_PATIENCE] || given[RT_W_FACTOR]) && s->kind != RT_SCHED_PLATEAU) {
        snprintf(err, RT_ERRLEN, "patience and factor belong to the plateau schedule (this one "
                 "is %s)", sn);
        return given[RT_W_PATIENCE] ? RT_W_PATIENCE : RT_W_FACTOR;
    }
    if (s->kind == RT_SCHED_STEP && s->every < 1) {
        snprintf(err, RT_ERRLEN, "the step schedule needs the epochs between decays: every=N "
                 "(--step-every N)");
        return RT_W_SCHEDULE;
    }
    if (s->warmup > 0 && s->warmup >= c->epochs) {
        snprintf(err, RT_ERRLEN, "a warmup of %d epochs leaves none of the %d epochs to train "
                 "at the full rate; it must be less than epochs", s->warmup, c->epochs);
        return RT_W_WARMUP;
    }
    /* torch.optim.AdamW's default decay, when adamw is chosen here without one */
    if (given[RT_W_OPTIMIZER] && o->kind == RT_OPT_ADAMW && !given[RT_W_WD])
        c->opt.weight_decay = 0.01f;
    return -1;
}

void rt_train_describe(const rt_train_cfg *c, char *buf, size_t n)
{
    const rt_opt_cfg *o = &c->opt;
    const rt_sched_cfg *s = &c->schedule;
    const rt_augment_cfg *a = &c->augment;
    size_t len = 0;
#define ADD(...)                                                                           \
    do {                                                                                  \
        if (len < n)                                                                      \
            len += (size_t)snprintf(buf + len, n - len, __VA_ARGS__);                     \
    } while (0)
    buf[0] = 0;
    ADD("%s lr %g", rt_opt_kind_name(o->kind), (double)o->lr);
    if (o->kind == RT_OPT_SGD && o->momentum > 0)
        ADD(" momentum %g%s", (double)o->momentum, o->nesterov ? " nesterov" : "");
    if (o->kind != RT_OPT_SGD && (o->beta1 != 0.9f || o->beta2 != 0.999f))
        ADD(" betas %g,%g", (double)o->beta1, (double)o->beta2);
    if (o->weight_decay > 0)
        ADD(" weight decay %g", (double)o->weight_decay);
    if (s->kind != RT_SCHED_CONSTANT || s->warmup > 0) {
        ADD(", schedule %s", rt_sched_kind_name(s->kind));
        if (s->kind == RT_SCHED_STEP)
            ADD(" every %d gamma %g", s->every, (double)s->gamma);
        if (s->kind == RT_SCHED_PLATEAU)
            ADD(" patience %d factor %g", s->patience, (double)s->factor);
        if (s->warmup > 0)
            ADD(" warmup %d", s->warmup);
    }
    if (c->stop_patience > 0)
        ADD(", stop patience %d", c->stop_patience);
    if (c->clip_norm > 0)
        ADD(", clip norm %g", (double)c->clip_norm);
    if (c->label_smoothing > 0)
        ADD(", label smoothing %g", (double)c->label_smoothing);
    if (a->hflip || a->vflip || a->crop || a->rotate > 0 || a->scale > 0 || a->jitter > 0) {
        ADD(", augment");
        if (a->hflip)
            ADD(" hflip");
        if (a->vflip)
            ADD(" vflip");
        if (a->crop)
            ADD(" crop=%d", a->crop);
        if (a->rotate > 0)
            ADD(" rotate=%g", (double)a->rotate);
        if (a->scale > 0)
            ADD(" scale=%g", (double)a->scale);
        if (a->jitter > 0)
            ADD(" jitter=%g", (double)a->jitter);
    }
#undef ADD
}
