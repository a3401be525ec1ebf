/*
 * layers.c - matches one statement against its kind's rules in the compiler's op registry
 * (src/ops/): positional arguments, keys and a trailing activation; anything else is an
 * error that says what would be valid. Shapes are not computed here (shape.c does).
 */
#include "layers.h"

#include <stdio.h>
#include <string.h>

#include "diag.h"

const cnn_layer_info *layers_find(const char *word) { return cnn_word_find(word); }

const char *const *layers_all_words(int *n) { return cnn_words_all(n); }

rt_act layers_act_word(const char *word)
{
    const cnn_layer_info *li = cnn_word_find(word);
    return li && li->kind == RT_ACTIVATION ? li->act : RT_ACT_NONE;
}

/* Activations that take a parameter: leakyrelu=A (slope), elu=A (alpha). */
static int act_takes_alpha(rt_act a) { return a == RT_ACT_LEAKYRELU || a == RT_ACT_ELU; }
static float act_default_alpha(rt_act a) { return a == RT_ACT_LEAKYRELU ? 0.01f : a == RT_ACT_ELU ? 1.0f : 0.0f; }

static void set_act(cnn_chk *c, ir_node *n, rt_act act, float alpha, cnn_loc loc)
{
    if (n->L.act != RT_ACT_NONE) {
        CNN_FAIL(c, loc, "give at most one activation per layer; add another as its own layer",
                 "a second activation on one layer");
        return;
    }
    n->L.act = act;
    n->L.alpha = alpha;
}

/* Keys as PyTorch and Keras spell them, for the hint on an unknown key: their padding=
 * is our pad= (ours names the fill), strides= is stride=, and so on. Edit distance does
 * not find these (padding is 4 edits from pad). */
static const char *key_alias(const char *key)
{
    static const char *const alias[][2] = {
        {"padding", "pad"}, {"strides", "stride"}, {"use_bias", "bias"}, {"dilation_rate", "dilation"},
        {"padding_mode", "padding"}, {"epsilon", "eps"},
    };
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (strcmp(key, alias[i][0]) == 0) return alias[i][1];
    return NULL;
}

int layers_build(const cnn_layer_info *li, const ast_stmt *st, const ast_arg *args, int nargs,
                 ir_node *n, cnn_errsink *sink)
{
    cnn_chk c = {.li = li, .st = st, .sink = sink};
    const cnn_op *op = cnn_op_of(li->kind);
    rt_layer *L = &n->L;
    L->kind = li->kind;
    if (op->defaults) op->defaults(n);
    if (li->kind == RT_ACTIVATION) {
        L->act = li->act;
        L->alpha = act_default_alpha(li->act);
    }
    int npos = 0, want = li->npos;
    int acts_ok = op->trailing_act;
    size_t tlen = (size_t)snprintf(n->text, sizeof n->text, "%s", li->name);
    for (int i = 0; i < nargs; i++) {
        const ast_arg *a = &args[i];
        if (tlen < sizeof n->text)
            tlen += (size_t)snprintf(n->text + tlen, sizeof n->text - tlen, a->key ? " %s=%s" : "%s%s",
                                     a->key ? a->key : " ", a->val.word ? a->val.word : "");
        if (a->key) {
            rt_act act = layers_act_word(a->key);
            if (acts_ok && act_takes_alpha(act)) {
                float alpha = act_default_alpha(act);
                if (cnn_want_positive_float(&c, &a->val, act == RT_ACT_ELU ? "the elu alpha" : "the leaky relu slope", &alpha))
                    set_act(&c, n, act, alpha, a->keyloc);
            } else if (cnn_word_in_list(a->key, li->keys)) {
                if (op->keyword) op->keyword(&c, a, n);
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
                const char *alias = key_alias(a->key);
                if (alias && cnn_word_in_list(alias, li->keys))
                    snprintf(hint, sizeof hint, "did you mean `%s=%s`? valid keys for %s: %s", alias,
                             a->val.word ? a->val.word : "", li->name, li->keys);
                else if (near) snprintf(hint, sizeof hint, "did you mean '%s'? valid keys for %s: %s", near, li->name, li->keys);
                else if (*li->keys) snprintf(hint, sizeof hint, "valid keys for %s: %s", li->name, li->keys);
                else snprintf(hint, sizeof hint, "%s takes no keys; usage: %s", li->name, li->usage);
                CNN_FAIL(&c, a->keyloc, hint, "unknown key '%s' for %s", a->key, li->name);
            }
            continue;
        }
        const ast_value *v = &a->val;
        rt_act act = v->kind == VAL_WORD ? layers_act_word(v->word) : RT_ACT_NONE;
        if (acts_ok && act != RT_ACT_NONE && npos >= want) {
            set_act(&c, n, act, act_default_alpha(act), v->loc);
            continue;
        }
        if (npos >= want) {
            char hint[320];
            snprintf(hint, sizeof hint, "usage: %s", li->usage);
            const char *acts[RT_NACTS];
            int nacts = 0;
            for (int k = 1; k < RT_NACTS; k++) acts[nacts++] = rt_act_name((rt_act)k);
            const char *near = v->kind == VAL_WORD && act == RT_ACT_NONE ? diag_nearest(v->word, acts, nacts) : NULL;
            if (near) snprintf(hint, sizeof hint, "did you mean '%s'?", near);
            if (act != RT_ACT_NONE && !acts_ok) {
                snprintf(hint, sizeof hint, "write '%s' as its own layer on the next line", v->word);
                CNN_FAIL(&c, v->loc, hint, "%s takes no activation", li->name);
            } else if (v->kind == VAL_WORD && acts_ok)
                CNN_FAIL(&c, v->loc, hint, "unexpected word '%s' (not an activation: relu, leakyrelu, "
                     "sigmoid, tanh, softmax, relu6, silu, gelu, elu)", v->word);
            else
                CNN_FAIL(&c, v->loc, hint, "too many arguments for %s: '%s'", li->name, v->word);
            continue;
        }
        if (op->positional) op->positional(&c, npos, v, n);
        npos++;
    }
    int required = li->required;
    if (npos < required && !c.bad) {
        char hint[320];
        snprintf(hint, sizeof hint, "usage: %s", li->usage);
        cnn_loc at = nargs ? args[nargs - 1].val.loc : st->nameloc;
        if (nargs) at.col = at.last_col + 1, at.last_col = at.col;
        else at.col = at.last_col = st->nameloc.last_col + 1;
        CNN_FAIL(&c, at, hint, "%s needs %d argument%s, got %d", li->name, required, required == 1 ? "" : "s", npos);
    }
    if (op->finish) op->finish(&c, n);
    return c.bad ? -1 : 0;
}
