/*
 * layers.c - the layer table and the checks of each layer's arguments. Each statement
 * is matched against its kind's positional arguments and keys; anything else is an
 * error that says what would be valid. Shapes are not computed here (shape.c does).
 */
#include "layers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const cnn_layer_info TABLE[] = {
    {"input", "", "input CxHxW", "", RT_INPUT, RT_ACT_NONE},
    {"conv", "conv2d convolution", "conv KHxKW N [ACT] [stride=S|SHxSW] [pad=P|PHxPW|same|valid] "
     "[padding=zero|reflect|replicate|circular] [bias=true|false] [mode=correlation|convolution]",
     "stride pad padding bias mode", RT_CONV, RT_ACT_NONE},
    {"maxpool", "maxpool2d max_pool", "maxpool KHxKW [stride=S|SHxSW] [pad=P|PHxPW|same|valid]",
     "stride pad", RT_MAXPOOL, RT_ACT_NONE},
    {"avgpool", "avgpool2d avg_pool", "avgpool KHxKW [stride=S|SHxSW] [pad=P|PHxPW|same|valid]",
     "stride pad", RT_AVGPOOL, RT_ACT_NONE},
    {"globalavgpool", "gap global_avg_pool globalaveragepool", "globalavgpool", "",
     RT_GLOBALAVGPOOL, RT_ACT_NONE},
    {"globalmaxpool", "gmp global_max_pool", "globalmaxpool", "", RT_GLOBALMAXPOOL, RT_ACT_NONE},
    {"flatten", "", "flatten", "", RT_FLATTEN, RT_ACT_NONE},
    {"dropout", "", "dropout P   (0 <= P < 1)", "", RT_DROPOUT, RT_ACT_NONE},
    {"dense", "linear fc", "dense N [ACT] [bias=true|false]", "bias", RT_DENSE, RT_ACT_NONE},
    {"batchnorm", "bn batchnorm2d batchnorm1d", "batchnorm [eps=E] [momentum=M]", "eps momentum",
     RT_BATCHNORM, RT_ACT_NONE},
    {"relu", "", "relu", "", RT_ACTIVATION, RT_ACT_RELU},
    {"leakyrelu", "leaky_relu", "leakyrelu[=A]   (slope A for x < 0, default 0.01)", "",
     RT_ACTIVATION, RT_ACT_LEAKYRELU},
    {"sigmoid", "", "sigmoid", "", RT_ACTIVATION, RT_ACT_SIGMOID},
    {"tanh", "", "tanh", "", RT_ACTIVATION, RT_ACT_TANH},
    {"softmax", "", "softmax   (last layer only)", "", RT_ACTIVATION, RT_ACT_SOFTMAX},
};
enum { NTABLE = sizeof TABLE / sizeof TABLE[0] };

static int word_in_list(const char *word, const char *list)
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

const cnn_layer_info *layers_find(const char *word)
{
    for (int i = 0; i < NTABLE; i++)
        if (strcmp(TABLE[i].name, word) == 0 || word_in_list(word, TABLE[i].aliases)) return &TABLE[i];
    return NULL;
}

const char *const *layers_all_words(int *n)
{
    static const char *words[128];
    static int count;
    if (!count) {
        for (int i = 0; i < NTABLE; i++) {
            words[count++] = TABLE[i].name;
            static char buf[1024];
            static size_t used;
            const char *p = TABLE[i].aliases;
            while (*p) {
                while (*p == ' ') p++;
                const char *e = p;
                while (*e && *e != ' ') e++;
                if (e > p && used + (size_t)(e - p) + 1 < sizeof buf && count < 127) {
                    memcpy(buf + used, p, (size_t)(e - p));
                    buf[used + (size_t)(e - p)] = '\0';
                    words[count++] = buf + used;
                    used += (size_t)(e - p) + 1;
                }
                p = e;
            }
        }
        words[count] = NULL;
    }
    *n = count;
    return words;
}

rt_act layers_act_word(const char *word)
{
    const cnn_layer_info *li = layers_find(word);
    return li && li->kind == RT_ACTIVATION ? li->act : RT_ACT_NONE;
}

/* ---------------------------------------------------------------- argument checks */

typedef struct {
    const cnn_layer_info *li;
    const ast_stmt *st;
    cnn_errsink *sink;
    int bad;
} chk;

#define FAIL(c, loc, hint, ...) ((c)->bad = 1, (c)->sink->error((c)->sink, (loc), (hint), __VA_ARGS__))

static int want_int(chk *c, const ast_value *v, long min, long max, const char *what)
{
    if (v->kind != VAL_INT) {
        FAIL(c, v->loc, c->li->usage, "%s must be a whole number, not %s '%s'", what,
             ast_value_kind_name(v->kind), v->word);
        return 0;
    }
    if (v->i < min || v->i > max) {
        char hint[96];
        snprintf(hint, sizeof hint, "%s is a whole number from %ld to %ld", what, min, max);
        FAIL(c, v->loc, hint, "%s %ld is out of range", what, v->i);
        return 0;
    }
    return 1;
}

/* K or KHxKW. */
static int want_pair(chk *c, const ast_value *v, int min, const char *what, int *h, int *w)
{
    enum { BIG = 1 << 20 };
    if (v->kind == VAL_INT) {
        if (!want_int(c, v, min, BIG, what)) return 0;
        *h = *w = (int)v->i;
        return 1;
    }
    if (v->kind == VAL_DIMS && v->ndims == 2) {
        for (int i = 0; i < 2; i++)
            if (v->dims[i] < min || v->dims[i] > BIG) {
                FAIL(c, v->loc, c->li->usage, "%s '%s' must have parts of at least %d", what, v->word, min);
                return 0;
            }
        *h = (int)v->dims[0];
        *w = (int)v->dims[1];
        return 1;
    }
    char hint[160];
    snprintf(hint, sizeof hint, "write %s as K or KHxKW, e.g. 3 or 3x3", what);
    FAIL(c, v->loc, hint, "%s must be a number or HxW, not %s '%s'", what,
         ast_value_kind_name(v->kind), v->word);
    return 0;
}

static int want_prob(chk *c, const ast_value *v, float *p)
{
    if ((v->kind != VAL_INT && v->kind != VAL_FLOAT) || !(v->f >= 0.0 && v->f < 1.0)) {
        FAIL(c, v->loc, "a dropout probability is a number with 0 <= P < 1, e.g. 0.5",
             "dropout probability '%s' is not in [0, 1)", v->word);
        return 0;
    }
    *p = (float)v->f;
    return 1;
}

static int want_positive_float(chk *c, const ast_value *v, const char *what, float *out)
{
    if ((v->kind != VAL_INT && v->kind != VAL_FLOAT) || !(v->f > 0.0) || !isfinite(v->f)) {
        FAIL(c, v->loc, NULL, "%s must be a positive number, not '%s'", what, v->word);
        return 0;
    }
    *out = (float)v->f;
    return 1;
}

static int want_word(chk *c, const ast_value *v, const char *key, const char *choices)
{
    if (v->kind == VAL_WORD && word_in_list(v->word, choices)) return 1;
    char hint[160];
    snprintf(hint, sizeof hint, "%s is one of: %s", key, choices);
    FAIL(c, v->loc, hint, "invalid %s '%s'", key, v->word ? v->word : "");
    return 0;
}

static void key_pad(chk *c, const ast_value *v, ir_node *n)
{
    if (v->kind == VAL_WORD && strcmp(v->word, "same") == 0) {
        n->spec.pad_same = 1;
    } else if (v->kind == VAL_WORD && strcmp(v->word, "valid") == 0) {
        n->spec.ph = n->spec.pw = 0;
    } else if (v->kind == VAL_INT || v->kind == VAL_DIMS) {
        want_pair(c, v, 0, "pad", &n->spec.ph, &n->spec.pw);
    } else {
        FAIL(c, v->loc, "pad is P, PHxPW (pixels on each side), same or valid",
             "invalid pad '%s'", v->word);
    }
}

static void set_act(chk *c, ir_node *n, rt_act act, float alpha, cnn_loc loc)
{
    if (n->L.act != RT_ACT_NONE) {
        FAIL(c, loc, "give at most one activation per layer; add another as its own layer",
             "a second activation on one layer");
        return;
    }
    n->L.act = act;
    n->L.alpha = alpha;
}

static int takes_trailing_act(rt_kind k) { return k == RT_CONV || k == RT_DENSE; }

/* Number of positional arguments (besides a trailing activation) each kind takes. */
static int positional_count(const cnn_layer_info *li)
{
    switch (li->kind) {
    case RT_INPUT: case RT_MAXPOOL: case RT_AVGPOOL: case RT_DROPOUT: case RT_DENSE: return 1;
    case RT_CONV: return 2;
    case RT_ACTIVATION: return li->act == RT_ACT_LEAKYRELU ? 1 : 0;
    default: return 0;
    }
}

static void positional(chk *c, int idx, const ast_value *v, ir_node *n)
{
    rt_layer *L = &n->L;
    switch (c->li->kind) {
    case RT_INPUT:
        if (v->kind != VAL_DIMS || v->ndims != 3) {
            FAIL(c, v->loc, "the input is channels x height x width, e.g. input 3x128x128",
                 "input needs a size CxHxW, not '%s'", v->word);
            return;
        }
        for (int i = 0; i < 3; i++)
            if (v->dims[i] < 1 || v->dims[i] > 65536) {
                FAIL(c, v->loc, "each of C, H and W is from 1 to 65536", "input size '%s' is out of range",
                     v->word);
                return;
            }
        L->out = (rt_shape){(int)v->dims[0], (int)v->dims[1], (int)v->dims[2]};
        return;
    case RT_CONV:
        if (idx == 0) want_pair(c, v, 1, "the kernel size", &L->kh, &L->kw);
        else if (want_int(c, v, 1, 1 << 20, "the number of output channels")) n->spec.out = (int)v->i;
        return;
    case RT_MAXPOOL: case RT_AVGPOOL:
        want_pair(c, v, 1, "the pooling window", &L->kh, &L->kw);
        return;
    case RT_DROPOUT:
        want_prob(c, v, &L->p);
        return;
    case RT_DENSE:
        if (want_int(c, v, 1, 1 << 24, "the number of units")) n->spec.out = (int)v->i;
        return;
    case RT_ACTIVATION: /* leakyrelu A */
        want_positive_float(c, v, "the leaky relu slope", &L->alpha);
        return;
    default:
        return;
    }
}

static void keyword(chk *c, const ast_arg *a, ir_node *n)
{
    rt_layer *L = &n->L;
    const char *k = a->key;
    const ast_value *v = &a->val;
    if (strcmp(k, "stride") == 0) {
        if (want_pair(c, v, 1, "stride", &L->sh, &L->sw)) n->spec.has_stride = 1;
    } else if (strcmp(k, "pad") == 0) {
        key_pad(c, v, n);
    } else if (strcmp(k, "padding") == 0) {
        if (want_word(c, v, "padding", "zero reflect replicate circular"))
            L->padmode = strcmp(v->word, "zero") == 0      ? RT_PAD_ZERO
                         : strcmp(v->word, "reflect") == 0 ? RT_PAD_REFLECT
                         : strcmp(v->word, "replicate") == 0 ? RT_PAD_REPLICATE
                                                             : RT_PAD_CIRCULAR;
    } else if (strcmp(k, "bias") == 0) {
        if (want_word(c, v, "bias", "true false")) L->bias = strcmp(v->word, "true") == 0;
    } else if (strcmp(k, "mode") == 0) {
        if (want_word(c, v, "mode", "correlation convolution")) L->flip = strcmp(v->word, "convolution") == 0;
    } else if (strcmp(k, "eps") == 0) {
        want_positive_float(c, v, "eps", &L->eps);
    } else if (strcmp(k, "momentum") == 0) {
        if (want_positive_float(c, v, "momentum", &L->momentum) && L->momentum > 1.0f)
            FAIL(c, v->loc, "batchnorm momentum is in (0, 1], PyTorch's default is 0.1",
                 "momentum %s is larger than 1", v->word);
    }
}

int layers_build(const cnn_layer_info *li, const ast_stmt *st, const ast_arg *args, int nargs,
                 ir_node *n, cnn_errsink *sink)
{
    chk c = {.li = li, .st = st, .sink = sink};
    rt_layer *L = &n->L;
    L->kind = li->kind;
    L->bias = 1;
    L->eps = 1e-5f;
    L->momentum = 0.1f;
    if (li->kind == RT_ACTIVATION) {
        L->act = li->act;
        L->alpha = li->act == RT_ACT_LEAKYRELU ? 0.01f : 0.0f;
    }
    int npos = 0, want = positional_count(li);
    int acts_ok = takes_trailing_act(li->kind);
    size_t tlen = (size_t)snprintf(n->text, sizeof n->text, "%s", li->name);
    for (int i = 0; i < nargs; i++) {
        const ast_arg *a = &args[i];
        if (tlen < sizeof n->text)
            tlen += (size_t)snprintf(n->text + tlen, sizeof n->text - tlen, a->key ? " %s=%s" : "%s%s",
                                     a->key ? a->key : " ", a->val.word ? a->val.word : "");
        if (a->key) {
            rt_act act = layers_act_word(a->key);
            if (acts_ok && act == RT_ACT_LEAKYRELU) {
                float alpha = 0.01f;
                if (want_positive_float(&c, &a->val, "the leaky relu slope", &alpha))
                    set_act(&c, n, act, alpha, a->keyloc);
            } else if (word_in_list(a->key, li->keys)) {
                keyword(&c, a, n);
            } else {
                char hint[256], keys[8][16];
                const char *cands[8];
                int nk = 0;
                for (const char *p = li->keys; *p && nk < 8;) {
                    size_t len = strcspn(p, " ");
                    snprintf(keys[nk], sizeof keys[nk], "%.*s", (int)len, p);
                    cands[nk] = keys[nk];
                    nk++;
                    p += len;
                    p += strspn(p, " ");
                }
                const char *near = diag_nearest(a->key, cands, nk);
                if (near) snprintf(hint, sizeof hint, "did you mean '%s'? valid keys for %s: %s", near, li->name, li->keys);
                else if (*li->keys) snprintf(hint, sizeof hint, "valid keys for %s: %s", li->name, li->keys);
                else snprintf(hint, sizeof hint, "%s takes no keys; usage: %s", li->name, li->usage);
                FAIL(&c, a->keyloc, hint, "unknown key '%s' for %s", a->key, li->name);
            }
            continue;
        }
        const ast_value *v = &a->val;
        rt_act act = v->kind == VAL_WORD ? layers_act_word(v->word) : RT_ACT_NONE;
        if (acts_ok && act != RT_ACT_NONE && npos >= want) {
            set_act(&c, n, act, act == RT_ACT_LEAKYRELU ? 0.01f : 0.0f, v->loc);
            continue;
        }
        if (npos >= want) {
            char hint[320];
            snprintf(hint, sizeof hint, "usage: %s", li->usage);
            static const char *const ACTS[] = {"relu", "leakyrelu", "sigmoid", "tanh", "softmax"};
            const char *near = v->kind == VAL_WORD && act == RT_ACT_NONE ? diag_nearest(v->word, ACTS, 5) : NULL;
            if (near) snprintf(hint, sizeof hint, "did you mean '%s'?", near);
            if (act != RT_ACT_NONE && !acts_ok) {
                snprintf(hint, sizeof hint, "write '%s' as its own layer on the next line", v->word);
                FAIL(&c, v->loc, hint, "%s takes no activation", li->name);
            } else if (v->kind == VAL_WORD && acts_ok)
                FAIL(&c, v->loc, hint, "unexpected word '%s' (not an activation: relu, leakyrelu, "
                     "sigmoid, tanh, softmax)", v->word);
            else
                FAIL(&c, v->loc, hint, "too many arguments for %s: '%s'", li->name, v->word);
            continue;
        }
        positional(&c, npos++, v, n);
    }
    int required = li->kind == RT_ACTIVATION ? 0 : want;
    if (npos < required && !c.bad) {
        char hint[320];
        snprintf(hint, sizeof hint, "usage: %s", li->usage);
        cnn_loc at = nargs ? args[nargs - 1].val.loc : st->nameloc;
        if (nargs) at.col = at.last_col + 1, at.last_col = at.col;
        else at.col = at.last_col = st->nameloc.last_col + 1;
        FAIL(&c, at, hint, "%s needs %d argument%s, got %d", li->name, required, required == 1 ? "" : "s", npos);
    }
    if (li->kind == RT_MAXPOOL || li->kind == RT_AVGPOOL) {
        if (!n->spec.has_stride) {
            L->sh = L->kh;
            L->sw = L->kw;
        }
    }
    if (li->kind != RT_CONV && li->kind != RT_DENSE) L->bias = 0;
    return c.bad ? -1 : 0;
}
