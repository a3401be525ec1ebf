/*
 * input.c - the compiler's side of `input CxHxW [mean=M1,M2,.. std=S1,S2,..] [norm=PRESET]`:
 * channels first, as PyTorch writes it (channels last, as Keras writes it, is caught with
 * the size it meant), and the normalisation the pixels (in [0, 1]) get before the first
 * layer, as torchvision's Normalize: one number for every channel, or one per channel.
 */
#include "cnn_op.h"

#include <math.h>
#include <string.h>

static const cnn_layer_info WORDS[] = {
    {"input", "", "input CxHxW [mean=M|M1,M2,.. std=S|S1,S2,..] [norm=imagenet|mnist|fashion|none]",
     "mean std norm", RT_INPUT, RT_ACT_NONE, 1, 1},
};

/* The usual statistics, as the torchvision and Keras examples use them. */
static const struct { const char *name; int n; float mean[3], std[3]; } PRESETS[] = {
    {"imagenet", 3, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}},
    {"mnist", 1, {0.1307f}, {0.3081f}},
    {"fashion", 1, {0.2860f}, {0.3530f}},
};

/* mean= or std= : one number, or as many as channels (at most 4). */
static void numbers(cnn_chk *c, const ast_value *v, ir_node *n, float *out, int is_std)
{
    const char *key = is_std ? "std" : "mean";
    double x[AST_MAXLIST];
    int k = 0;
    if (v->kind == VAL_LIST) {
        k = v->nlist;
        memcpy(x, v->list, sizeof(double) * (size_t)k);
    } else if (v->kind == VAL_INT || v->kind == VAL_FLOAT) {
        k = 1;
        x[0] = v->f;
    } else {
        CNN_FAIL(c, v->loc, "e.g. mean=0.485,0.456,0.406 std=0.229,0.224,0.225, or one number for every channel",
                 "%s needs numbers, not '%s'", key, v->word);
        return;
    }
    int ch = n->L.out.c > 0 ? n->L.out.c : 4;
    if (k != 1 && k != ch) {
        char hint[96];
        snprintf(hint, sizeof hint, "one number for every channel, or %d: one per channel", ch);
        CNN_FAIL(c, v->loc, hint, "%s has %d numbers for %d channel%s", key, k, ch, ch == 1 ? "" : "s");
        return;
    }
    for (int i = 0; i < k; i++)
        if (!isfinite(x[i]) || (is_std && !(x[i] > 0)) || fabs(x[i]) > 1e6) {
            CNN_FAIL(c, v->loc, is_std ? "each std is a number above 0, e.g. 0.229" : "each mean is a number, e.g. 0.485",
                     "%s '%s' is not valid", key, v->word);
            return;
        }
    for (int i = 0; i < 4; i++)
        out[i] = (float)x[k == 1 ? 0 : (i < k ? i : k - 1)];
    n->L.norm = 1;
}

static void keyword(cnn_chk *c, const ast_arg *a, ir_node *n)
{
    if (strcmp(a->key, "mean") == 0 || strcmp(a->key, "std") == 0) {
        if (!n->spec.has_norm) { /* first of mean/std: the other defaults to no change */
            for (int i = 0; i < 4; i++) {
                n->L.mean[i] = 0.0f;
                n->L.std[i] = 1.0f;
            }
            n->spec.has_norm = 1;
        }
        numbers(c, &a->val, n, strcmp(a->key, "std") == 0 ? n->L.std : n->L.mean, strcmp(a->key, "std") == 0);
        return;
    }
    if (!cnn_want_word(c, &a->val, "norm", "imagenet mnist fashion none"))
        return;
    if (strcmp(a->val.word, "none") == 0) {
        n->L.norm = 0;
        return;
    }
    for (size_t p = 0; p < sizeof PRESETS / sizeof PRESETS[0]; p++)
        if (strcmp(a->val.word, PRESETS[p].name) == 0) {
            if (n->L.out.c > 0 && PRESETS[p].n != n->L.out.c) {
                CNN_FAIL(c, a->val.loc, PRESETS[p].n == 3 ? "imagenet is for 3 channels (RGB)" : "mnist and fashion are for 1 channel (grey)",
                         "norm=%s does not fit %d channel%s", PRESETS[p].name, n->L.out.c, n->L.out.c == 1 ? "" : "s");
                return;
            }
            for (int i = 0; i < 4; i++) {
                n->L.mean[i] = PRESETS[p].mean[i < PRESETS[p].n ? i : PRESETS[p].n - 1];
                n->L.std[i] = PRESETS[p].std[i < PRESETS[p].n ? i : PRESETS[p].n - 1];
            }
            n->L.norm = 1;
        }
}

static void positional(cnn_chk *c_chk, int idx, const ast_value *v, ir_node *n)
{
    (void)idx;
    if (v->kind != VAL_DIMS || v->ndims != 3) {
        CNN_FAIL(c_chk, v->loc, "the input is channels x height x width, e.g. input 3x128x128",
                 "input needs a size CxHxW, not '%s'", v->word);
        return;
    }
    for (int i = 0; i < 3; i++)
        if (v->dims[i] < 1 || v->dims[i] > 65536) {
            CNN_FAIL(c_chk, v->loc, "each of C, H and W is from 1 to 65536", "input size '%s' is out of range", v->word);
            return;
        }
    /* Channels last (HxWxC, as Keras and NumPy images write it): the images the runtime
     * loads have 1 to 4 channels, so a last size of 1, 3 or 4 after a first size above 4
     * can only be an image written the other way round. A first size of 1 to 4 is taken
     * as written (input 3x32x3 is a 3-channel 32x3 image), and 32x32x32 (no image, but a
     * valid tensor for the compiled API) is left alone. */
    long c = v->dims[0], h = v->dims[1], w = v->dims[2];
    if (c > 4 && (w == 1 || w == 3 || w == 4)) {
        char hint[160];
        snprintf(hint, sizeof hint, "channels come first: did you mean `input %ldx%ldx%ld`?", w, c, h);
        CNN_FAIL(c_chk, v->loc, hint, "input %s puts the channels last (height x width x channels)", v->word);
        return;
    }
    n->L.out = (rt_shape){(int)v->dims[0], (int)v->dims[1], (int)v->dims[2]};
}

const cnn_op cnn_op_input = {
    .kind = RT_INPUT,
    .words = WORDS,
    .nwords = 1,
    .positional = positional,
    .keyword = keyword,
};
