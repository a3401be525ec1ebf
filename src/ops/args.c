/*
 * args.c - the argument checks the kinds share: whole numbers in a range, K or KHxKW,
 * positive numbers, one word of a list, and the window keys (stride, pad). Each failure
 * says what was given and what would be valid.
 */
#include "cnn_op.h"

#include <math.h>
#include <string.h>

int cnn_word_in_list(const char *word, const char *list)
{
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        while (*p == ' ') p++;
        const char *e = p;
        while (*e && *e != ' ') e++;
        if ((size_t)(e - p) == n && strncmp(p, word, n) == 0) return 1;
        p = e;
    }
    return 0;
}

int cnn_want_int(cnn_chk *c, const ast_value *v, long min, long max, const char *what)
{
    if (v->kind != VAL_INT) {
        CNN_FAIL(c, v->loc, c->li->usage, "%s must be a whole number, not %s '%s'", what,
                 ast_value_kind_name(v->kind), v->word);
        return 0;
    }
    if (v->i < min || v->i > max) {
        char hint[96];
        snprintf(hint, sizeof hint, "%s is a whole number from %ld to %ld", what, min, max);
        CNN_FAIL(c, v->loc, hint, "%s %ld is out of range", what, v->i);
        return 0;
    }
    return 1;
}

/* K or KHxKW. */
int cnn_want_pair(cnn_chk *c, const ast_value *v, int min, const char *what, int *h, int *w)
{
    enum { BIG = 1 << 20 };
    if (v->kind == VAL_INT) {
        if (!cnn_want_int(c, v, min, BIG, what)) return 0;
        *h = *w = (int)v->i;
        return 1;
    }
    if (v->kind == VAL_DIMS && v->ndims == 2) {
        for (int i = 0; i < 2; i++)
            if (v->dims[i] < min || v->dims[i] > BIG) {
                CNN_FAIL(c, v->loc, c->li->usage, "%s '%s' must have parts of at least %d", what, v->word, min);
                return 0;
            }
        *h = (int)v->dims[0];
        *w = (int)v->dims[1];
        return 1;
    }
    char hint[160];
    snprintf(hint, sizeof hint, "write %s as K or KHxKW, e.g. 3 or 3x3", what);
    CNN_FAIL(c, v->loc, hint, "%s must be a number or HxW, not %s '%s'", what,
             ast_value_kind_name(v->kind), v->word);
    return 0;
}

int cnn_want_positive_float(cnn_chk *c, const ast_value *v, const char *what, float *out)
{
    if ((v->kind != VAL_INT && v->kind != VAL_FLOAT) || !(v->f > 0.0) || !isfinite(v->f)) {
        CNN_FAIL(c, v->loc, NULL, "%s must be a positive number, not '%s'", what, v->word);
        return 0;
    }
    *out = (float)v->f;
    return 1;
}

int cnn_want_word(cnn_chk *c, const ast_value *v, const char *key, const char *choices)
{
    if (v->kind == VAL_WORD && cnn_word_in_list(v->word, choices)) return 1;
    char hint[192], words[8][32];
    const char *cands[8];
    int nw = 0;
    for (const char *p = choices; *p && nw < 8;) { /* the choices as a list, for the nearest */
        size_t len = strcspn(p, " ");
        snprintf(words[nw], sizeof words[nw], "%.*s", (int)len, p);
        cands[nw] = words[nw];
        nw++;
        p += len;
        p += strspn(p, " ");
    }
    const char *near = v->kind == VAL_WORD ? diag_nearest(v->word, cands, nw) : NULL;
    if (near) snprintf(hint, sizeof hint, "did you mean '%s'? %s is one of: %s", near, key, choices);
    else snprintf(hint, sizeof hint, "%s is one of: %s", key, choices);
    CNN_FAIL(c, v->loc, hint, "invalid %s '%s'", key, v->word ? v->word : "");
    return 0;
}

void cnn_key_pad(cnn_chk *c, const ast_value *v, ir_node *n)
{
    if (v->kind == VAL_WORD && strcmp(v->word, "same") == 0) {
        n->spec.pad_same = 1;
    } else if (v->kind == VAL_WORD && strcmp(v->word, "valid") == 0) {
        n->spec.ph = n->spec.pw = 0;
    } else if (v->kind == VAL_INT || v->kind == VAL_DIMS) {
        cnn_want_pair(c, v, 0, "pad", &n->spec.ph, &n->spec.pw);
    } else {
        static const char *const words[] = {"same", "valid"};
        const char *near = v->kind == VAL_WORD ? diag_nearest(v->word, words, 2) : NULL;
        char hint[128];
        snprintf(hint, sizeof hint, "%s%s%spad is P, PHxPW (pixels on each side), same or valid",
                 near ? "did you mean '" : "", near ? near : "", near ? "'? " : "");
        CNN_FAIL(c, v->loc, hint, "invalid pad '%s'", v->word);
    }
}

int cnn_key_window(cnn_chk *c, const ast_arg *a, ir_node *n)
{
    if (strcmp(a->key, "stride") == 0) {
        if (cnn_want_pair(c, &a->val, 1, "stride", &n->L.sh, &n->L.sw)) n->spec.has_stride = 1;
        return 1;
    }
    if (strcmp(a->key, "pad") == 0) {
        cnn_key_pad(c, &a->val, n);
        return 1;
    }
    return 0;
}
