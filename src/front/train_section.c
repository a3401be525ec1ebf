/*
 * train_section.c - the settings of a train { } section, each checked with a message
 * that says what is valid:
 *   optimizer sgd|adam [lr=X] [momentum=M] [weight_decay=W]
 *   batch N; epochs N; split A:B:C; seed N; augment hflip|none; loss cross_entropy
 */
#include "train_section.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "diag.h"

static const char *const SETTINGS[] = {"optimizer", "batch", "epochs", "split", "seed", "augment", "loss", "threads"};
enum { NSETTINGS = sizeof SETTINGS / sizeof SETTINGS[0] };
#define VALID_SETTINGS "optimizer, batch, epochs, split, seed, augment, loss, threads"

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

static int number(const ast_value *v, double min, const char *key, cnn_errsink *sink, float *out)
{
    if ((v->kind != VAL_INT && v->kind != VAL_FLOAT) || !(v->f >= min) || !isfinite(v->f)) {
        sink->error(sink, v->loc, NULL, "%s must be a number >= %g, got '%s'", key, min, v->word ? v->word : "");
        return 0;
    }
    *out = (float)v->f;
    return 1;
}

static void optimizer(const ast_stmt *s, rt_train_cfg *cfg, cnn_errsink *sink)
{
    const char *usage = "optimizer sgd|adam [lr=X] [momentum=M] [weight_decay=W]";
    int seen_kind = 0;
    for (int i = 0; i < s->nargs; i++) {
        const ast_arg *a = &s->args[i];
        if (!a->key) {
            if (seen_kind || a->val.kind != VAL_WORD ||
                (strcmp(a->val.word, "sgd") != 0 && strcmp(a->val.word, "adam") != 0)) {
                sink->error(sink, a->val.loc, usage, seen_kind ? "a second optimizer name '%s'"
                            : "unknown optimizer '%s' (valid: sgd, adam)", a->val.word ? a->val.word : "");
                seen_kind = 1; /* reported: no second message that the name is missing */
                continue;
            }
            seen_kind = 1;
            cfg->opt.kind = strcmp(a->val.word, "sgd") == 0 ? RT_OPT_SGD : RT_OPT_ADAM;
        } else if (strcmp(a->key, "lr") == 0) {
            if (number(&a->val, 0.0, "lr", sink, &cfg->opt.lr) && cfg->opt.lr <= 0.0f)
                sink->error(sink, a->val.loc, NULL, "lr must be positive");
        } else if (strcmp(a->key, "momentum") == 0) {
            number(&a->val, 0.0, "momentum", sink, &cfg->opt.momentum);
        } else if (strcmp(a->key, "weight_decay") == 0) {
            number(&a->val, 0.0, "weight_decay", sink, &cfg->opt.weight_decay);
        } else {
            sink->error(sink, a->keyloc, "valid keys: lr, momentum, weight_decay",
                        "unknown optimizer setting '%s'", a->key);
        }
    }
    if (!seen_kind) sink->error(sink, s->nameloc, usage, "optimizer needs a name: sgd or adam");
}

int train_section_is_setting(const char *word)
{
    for (int i = 0; i < NSETTINGS; i++)
        if (strcmp(word, SETTINGS[i]) == 0) return 1;
    return 0;
}

void train_section_read(const ast_stmt *train, rt_train_cfg *cfg, cnn_errsink *sink)
{
    for (const ast_stmt *s = train->body; s; s = s->next) {
        if (s->kind != STMT_LAYER) {
            sink->error(sink, s->loc, "valid settings: " VALID_SETTINGS,
                        "only settings belong in a train section");
            continue;
        }
        const char *n = s->name;
        if (strcmp(n, "optimizer") == 0) {
            optimizer(s, cfg, sink);
        } else if (strcmp(n, "batch") == 0) {
            if (one_positional(s, sink, "batch N")) whole(&s->args[0].val, 1, 65536, sink, "batch N", &cfg->batch);
        } else if (strcmp(n, "epochs") == 0) {
            if (one_positional(s, sink, "epochs N"))
                whole(&s->args[0].val, 1, 1000000, sink, "epochs N", &cfg->epochs);
        } else if (strcmp(n, "threads") == 0) {
            if (one_positional(s, sink, "threads N"))
                whole(&s->args[0].val, 1, 1024, sink, "threads N", &cfg->threads);
        } else if (strcmp(n, "seed") == 0) {
            int seed = 0;
            if (one_positional(s, sink, "seed N") && whole(&s->args[0].val, 0, 2147483647, sink, "seed N", &seed))
                cfg->seed = (uint64_t)seed;
        } else if (strcmp(n, "split") == 0) {
            const char *usage = "split TRAIN:VAL:TEST, e.g. split 7:2:1";
            if (!one_positional(s, sink, usage)) continue;
            const ast_value *v = &s->args[0].val;
            if (v->kind != VAL_RATIO || v->ndims != 3 || v->dims[0] > 1000 || v->dims[1] > 1000 ||
                v->dims[2] > 1000) {
                sink->error(sink, v->loc, usage, "invalid split '%s'", v->word ? v->word : "");
                continue;
            }
            if (v->dims[0] < 1) {
                sink->error(sink, v->loc, usage, "the training part of split '%s' is 0; it must be at least 1",
                            v->word);
                continue;
            }
            for (int i = 0; i < 3; i++) cfg->split[i] = (int)v->dims[i];
        } else if (strcmp(n, "augment") == 0) {
            const char *usage = "augment hflip|none";
            if (!one_positional(s, sink, usage)) continue;
            const ast_value *v = &s->args[0].val;
            if (v->kind == VAL_WORD && strcmp(v->word, "hflip") == 0) cfg->augment.hflip = 1;
            else if (v->kind == VAL_WORD && strcmp(v->word, "none") == 0) cfg->augment.hflip = 0;
            else sink->error(sink, v->loc, usage, "unknown augmentation '%s'", v->word ? v->word : "");
        } else if (strcmp(n, "loss") == 0) {
            const char *usage = "loss cross_entropy";
            if (!one_positional(s, sink, usage)) continue;
            const ast_value *v = &s->args[0].val;
            if (v->kind != VAL_WORD || strcmp(v->word, "cross_entropy") != 0)
                sink->error(sink, v->loc, usage, "unknown loss '%s' (valid: cross_entropy)", v->word ? v->word : "");
        } else {
            const char *near = diag_nearest(n, SETTINGS, NSETTINGS);
            char hint[160];
            if (layers_find(n)) snprintf(hint, sizeof hint, "layers go outside the train section");
            else if (near) snprintf(hint, sizeof hint, "did you mean '%s'?", near);
            else snprintf(hint, sizeof hint, "valid settings: " VALID_SETTINGS);
            sink->error(sink, s->nameloc, hint, "unknown train setting '%.64s'", n);
        }
    }
}
