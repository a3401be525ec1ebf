/*
 * train_section.c - the settings of a train { } section, each checked with a message
 * that says what is valid. The values and the rules between them are the runtime's
 * (rt_train_words.c), shared with the command line, so the file and cnnrun accept and
 * refuse the same things:
 *   optimizer sgd|adam|adamw [lr=X] [momentum=M] [nesterov] [weight_decay=W]
 *             [betas=B1,B2] [beta1=B] [beta2=B]
 *   schedule constant|cosine|step|plateau [warmup=N] [every=N] [gamma=G] [patience=N]
 *            [factor=F]
 *   stop patience=N; clip norm=X; loss cross_entropy [smoothing=E]
 *   augment hflip vflip crop=P rotate=DEG scale=F jitter=F | none
 *   batch N; epochs N; split A:B:C; seed N; threads N
 * Each setting once; a common misspelling (lr, batch_size, ...) gets the line to write.
 */
#include "train_section.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "diag.h"

static const char *const SETTINGS[] = {"optimizer", "batch", "epochs", "split", "seed", "augment",
                                       "loss", "threads", "schedule", "stop", "clip"};
enum { NSETTINGS = sizeof SETTINGS / sizeof SETTINGS[0] };
#define VALID_SETTINGS "optimizer, schedule, stop, clip, loss, batch, epochs, split, seed, augment, threads"

/* The section being read: the sink counts errors (the rules between settings are checked
 * only when every value was valid), and where each shared word was written. */
typedef struct {
    cnn_errsink self;
    cnn_errsink *to;
    int nerrors;
    rt_train_cfg *cfg;
    unsigned char given[RT_NWORDS];
    cnn_loc at[RT_NWORDS];
} section;

static void count_error(cnn_errsink *s, cnn_loc loc, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void count_error(cnn_errsink *s, cnn_loc loc, const char *hint, const char *fmt, ...)
{
    section *t = (section *)s;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->nerrors++;
    t->to->error(t->to, loc, hint, "%s", msg);
}

static int one_positional(const ast_stmt *s, cnn_errsink *sink, const char *usage)
{
    int npos = 0;
    for (int i = 0; i < s->nargs; i++) {
        if (s->args[i].key) {
            sink->error(sink, s->args[i].keyloc, usage, "'%s' takes no key=value settings", s->name);
            return 0;
        }
        npos++;
    }
    if (npos != 1) {
        cnn_loc at = npos ? s->args[1].val.loc : s->nameloc;
        sink->error(sink, at, usage, "'%s' takes exactly one value", s->name);
        return 0;
    }
    return 1;
}

static int whole(const ast_value *v, long min, long max, cnn_errsink *sink, const char *usage, int *out)
{
    if (v->kind != VAL_INT || v->i < min || v->i > max) {
        sink->error(sink, v->loc, usage, "expected a whole number from %ld to %ld, got '%s'", min, max,
                    v->word ? v->word : "");
        return 0;
    }
    *out = (int)v->i;
    return 1;
}

/* A shared word with its value as written (NULL for a flag), at loc. */
static void word(section *t, rt_train_word w, const char *value, cnn_loc keyloc, cnn_loc valloc)
{
    char err[RT_ERRLEN];
    if (rt_train_word_set(t->cfg, w, value, err) < 0)
        t->self.error(&t->self, valloc, NULL, "%s", err);
    t->given[w] = 1;
    t->at[w] = keyloc;
}

/* The key=value settings of a statement: keys[i] sets words[i]; nkeys of them. */
static void keyed(section *t, const ast_arg *a, const char *what, const char *const *keys,
                  const rt_train_word *words, int nkeys, const char *valid)
{
    for (int k = 0; k < nkeys; k++)
        if (!strcmp(a->key, keys[k])) {
            word(t, words[k], a->val.word, a->keyloc, a->val.loc);
            return;
        }
    t->self.error(&t->self, a->keyloc, valid, "unknown %s setting '%s'", what, a->key);
}

static void optimizer(section *t, const ast_stmt *s)
{
    static const char *const keys[] = {"lr", "momentum", "weight_decay", "beta1", "beta2", "betas"};
    static const rt_train_word words[] = {RT_W_LR, RT_W_MOMENTUM, RT_W_WD, RT_W_BETA1, RT_W_BETA2, RT_W_BETAS};
    const char *usage = "optimizer sgd|adam|adamw [lr=X] [momentum=M] [nesterov] [weight_decay=W] "
                        "[betas=B1,B2] [beta1=B] [beta2=B]";
    int seen_kind = 0;
    for (int i = 0; i < s->nargs; i++) {
        const ast_arg *a = &s->args[i];
        if (a->key) {
            keyed(t, a, "optimizer", keys, words, 6,
                  "valid keys: lr, momentum, weight_decay, betas=B1,B2, beta1, beta2 (and the word nesterov)");
        } else if (a->val.kind == VAL_WORD && !strcmp(a->val.word, "nesterov")) {
            word(t, RT_W_NESTEROV, NULL, a->val.loc, a->val.loc);
        } else if (seen_kind) {
            t->self.error(&t->self, a->val.loc, usage, "a second optimizer name '%s'",
                          a->val.word ? a->val.word : "");
        } else {
            seen_kind = 1;
            word(t, RT_W_OPTIMIZER, a->val.kind == VAL_WORD ? a->val.word : "", a->val.loc, a->val.loc);
        }
    }
    if (!seen_kind) t->self.error(&t->self, s->nameloc, usage, "optimizer needs a name: sgd, adam or adamw");
}

static void schedule(section *t, const ast_stmt *s)
{
    static const char *const keys[] = {"warmup", "every", "gamma", "patience", "factor"};
    static const rt_train_word words[] = {RT_W_WARMUP, RT_W_EVERY, RT_W_GAMMA, RT_W_PATIENCE, RT_W_FACTOR};
    const char *usage = "schedule cosine [warmup=N], schedule step every=N [gamma=G] [warmup=N], "
                        "schedule plateau [patience=N] [factor=F] [warmup=N]";
    int seen_kind = 0;
    for (int i = 0; i < s->nargs; i++) {
        const ast_arg *a = &s->args[i];
        if (a->key) {
            keyed(t, a, "schedule", keys, words, 5, "valid keys: warmup, every, gamma, patience, factor");
        } else if (seen_kind) {
            t->self.error(&t->self, a->val.loc, usage, "a second schedule name '%s'",
                          a->val.word ? a->val.word : "");
        } else {
            seen_kind = 1;
            word(t, RT_W_SCHEDULE, a->val.kind == VAL_WORD ? a->val.word : "", a->val.loc, a->val.loc);
        }
    }
    if (!seen_kind)
        t->self.error(&t->self, s->nameloc, usage, "schedule needs a name: constant, cosine, step or plateau");
}

/* stop patience=N, clip norm=X: exactly one key. */
static void one_key(section *t, const ast_stmt *s, const char *key, rt_train_word w, const char *usage)
{
    if (s->nargs != 1 || !s->args[0].key || strcmp(s->args[0].key, key) != 0) {
        cnn_loc at = s->nargs == 0 ? s->nameloc : s->args[s->nargs > 1 && s->args[0].key &&
                     !strcmp(s->args[0].key, key) ? 1 : 0].keyloc;
        t->self.error(&t->self, at, usage, "'%s' takes exactly %s=VALUE", s->name, key);
        return;
    }
    word(t, w, s->args[0].val.word, s->args[0].keyloc, s->args[0].val.loc);
}

static void loss(section *t, const ast_stmt *s)
{
    static const char *const keys[] = {"smoothing"};
    static const rt_train_word words[] = {RT_W_SMOOTHING};
    const char *usage = "loss cross_entropy [smoothing=E]";
    int seen_kind = 0;
    for (int i = 0; i < s->nargs; i++) {
        const ast_arg *a = &s->args[i];
        if (a->key) {
            keyed(t, a, "loss", keys, words, 1, "valid keys: smoothing");
        } else if (seen_kind || a->val.kind != VAL_WORD || strcmp(a->val.word, "cross_entropy") != 0) {
            t->self.error(&t->self, a->val.loc, usage, "unknown loss '%s' (valid: cross_entropy)",
                          a->val.word ? a->val.word : "");
            seen_kind = 1;
        } else {
            seen_kind = 1;
        }
    }
    if (!seen_kind) t->self.error(&t->self, s->nameloc, usage, "loss needs a name: cross_entropy");
}

static void augment(section *t, const ast_stmt *s)
{
    const char *usage = "augment hflip vflip crop=PIXELS rotate=DEGREES scale=F jitter=F, or augment none";
    char item[160], err[RT_ERRLEN];
    if (s->nargs == 0) t->self.error(&t->self, s->nameloc, usage, "augment needs at least one word");
    for (int i = 0; i < s->nargs; i++) {
        const ast_arg *a = &s->args[i];
        snprintf(item, sizeof item, "%s%s%s", a->key ? a->key : "", a->key ? "=" : "",
                 a->val.word ? a->val.word : "");
        if (rt_train_augment_item(&t->cfg->augment, item, err) < 0)
            t->self.error(&t->self, a->key ? a->keyloc : a->val.loc, usage, "%s", err);
    }
}

/* An unknown setting that is a common spelling of one of ours: the line to write. */
static int known_slip(const ast_stmt *s, char *hint, size_t n)
{
    static const struct { const char *name, *fmt, *dflt; } slips[] = {
        {"lr", "optimizer ... lr=%s", "0.01"},
        {"learning_rate", "optimizer ... lr=%s", "0.01"},
        {"momentum", "optimizer sgd ... momentum=%s", "0.9"},
        {"nesterov", "optimizer sgd momentum=0.9 nesterov%s", ""},
        {"weight_decay", "optimizer ... weight_decay=%s", "0.01"},
        {"beta1", "optimizer adam ... beta1=%s", "0.9"},
        {"beta2", "optimizer adam ... beta2=%s", "0.999"},
        {"batch_size", "batch %s", "64"},
        {"batchsize", "batch %s", "64"},
        {"minibatch", "batch %s", "64"},
        {"warmup", "schedule cosine warmup=%s", "1"},
        {"lr_schedule", "schedule %s", "cosine"},
        {"scheduler", "schedule %s", "cosine"},
        {"patience", "stop patience=%s` or `schedule plateau patience=%s", "5"},
        {"early_stopping", "stop patience=%s", "5"},
        {"clip_norm", "clip norm=%s", "1.0"},
        {"clipnorm", "clip norm=%s", "1.0"},
        {"grad_clip", "clip norm=%s", "1.0"},
        {"label_smoothing", "loss cross_entropy smoothing=%s", "0.1"},
        {"smoothing", "loss cross_entropy smoothing=%s", "0.1"},
    };
    for (size_t i = 0; i < sizeof slips / sizeof slips[0]; i++)
        if (!strcmp(s->name, slips[i].name)) {
            const char *v = slips[i].dflt;
            if (s->nargs == 1 && !s->args[0].key && s->args[0].val.word && slips[i].dflt[0])
                v = s->args[0].val.word;
            char line[120];
            snprintf(line, sizeof line, slips[i].fmt, v, v);
            snprintf(hint, n, "did you mean `%s`?", line);
            return 1;
        }
    return 0;
}

int train_section_is_setting(const char *word)
{
    for (int i = 0; i < NSETTINGS; i++)
        if (strcmp(word, SETTINGS[i]) == 0) return 1;
    return 0;
}

void train_section_read(const ast_stmt *train, rt_train_cfg *cfg, cnn_errsink *sink)
{
    section t;
    memset(&t, 0, sizeof t);
    t.self.error = count_error;
    t.to = sink;
    t.cfg = cfg;
    cnn_errsink *es = &t.self;
    const ast_stmt *first[NSETTINGS] = {NULL};
    for (const ast_stmt *s = train->body; s; s = s->next) {
        if (s->kind != STMT_LAYER) {
            es->error(es, s->loc, "valid settings: " VALID_SETTINGS, "only settings belong in a train section");
            continue;
        }
        const char *n = s->name;
        int idx = -1;
        for (int i = 0; i < NSETTINGS; i++)
            if (!strcmp(n, SETTINGS[i])) idx = i;
        if (idx >= 0 && first[idx]) {
            es->error(es, s->nameloc, "keep one of them",
                      "duplicate setting '%s' (the first is at line %d)", n, first[idx]->nameloc.line);
            continue;
        }
        if (idx >= 0) first[idx] = s;
        if (strcmp(n, "optimizer") == 0) {
            optimizer(&t, s);
        } else if (strcmp(n, "schedule") == 0) {
            schedule(&t, s);
        } else if (strcmp(n, "stop") == 0) {
            one_key(&t, s, "patience", RT_W_STOP, "stop patience=N (epochs without a better validation loss)");
        } else if (strcmp(n, "clip") == 0) {
            one_key(&t, s, "norm", RT_W_CLIP, "clip norm=X (the gradient's largest L2 norm)");
        } else if (strcmp(n, "loss") == 0) {
            loss(&t, s);
        } else if (strcmp(n, "augment") == 0) {
            augment(&t, s);
        } else if (strcmp(n, "batch") == 0) {
            if (one_positional(s, es, "batch N")) whole(&s->args[0].val, 1, 65536, es, "batch N", &cfg->batch);
        } else if (strcmp(n, "epochs") == 0) {
            if (one_positional(s, es, "epochs N"))
                whole(&s->args[0].val, 1, 1000000, es, "epochs N", &cfg->epochs);
        } else if (strcmp(n, "threads") == 0) {
            if (one_positional(s, es, "threads N"))
                whole(&s->args[0].val, 1, 1024, es, "threads N", &cfg->threads);
        } else if (strcmp(n, "seed") == 0) {
            int seed = 0;
            if (one_positional(s, es, "seed N") && whole(&s->args[0].val, 0, 2147483647, es, "seed N", &seed))
                cfg->seed = (uint64_t)seed;
        } else if (strcmp(n, "split") == 0) {
            const char *usage = "split TRAIN:VAL:TEST, e.g. split 7:2:1";
            if (!one_positional(s, es, usage)) continue;
            const ast_value *v = &s->args[0].val;
            if (v->kind != VAL_RATIO || v->ndims != 3 || v->dims[0] > 1000 || v->dims[1] > 1000 ||
                v->dims[2] > 1000) {
                es->error(es, v->loc, usage, "invalid split '%s'", v->word ? v->word : "");
                continue;
            }
            if (v->dims[0] < 1) {
                es->error(es, v->loc, usage, "the training part of split '%s' is 0; it must be at least 1",
                          v->word);
                continue;
            }
            for (int i = 0; i < 3; i++) cfg->split[i] = (int)v->dims[i];
        } else {
            const char *near = diag_nearest(n, SETTINGS, NSETTINGS);
            char hint[200];
            if (known_slip(s, hint, sizeof hint)) (void)0;
            else if (layers_find(n)) snprintf(hint, sizeof hint, "layers go outside the train section");
            else if (near) snprintf(hint, sizeof hint, "did you mean '%s'?", near);
            else snprintf(hint, sizeof hint, "valid settings: " VALID_SETTINGS);
            es->error(es, s->nameloc, hint, "unknown train setting '%.64s'", n);
        }
    }
    if (t.nerrors) return;
    /* the rules between settings, the same as the command line's */
    char err[RT_ERRLEN];
    int w = rt_train_words_check(cfg, t.given, err);
    if (w >= 0) {
        cnn_loc at = t.given[w] ? t.at[w] : train->loc;
        if (!t.given[w] && w == RT_W_SCHEDULE) at = t.at[RT_W_SCHEDULE];
        sink->error(sink, at, NULL, "%s", err);
    }
}
