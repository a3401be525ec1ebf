/*
 * rt_netdesc.c - facts about a network description, each read from the op registry: its
 * number of classes, FLOPs, the check that a description is consistent, and the hash that
 * ties a weights file to a structure. The hash (64-bit FNV-1a) covers every integer that
 * shapes the computation or the parameter layout: kinds, producers, shapes, windows, strides,
 * padding and its mode, flip, dilation and groups, bias, activation, and the offsets and
 * lengths of parameters and state. It leaves out names, source lines and float
 * hyper-parameters (a changed dropout rate or batchnorm momentum still loads the same weights).
 */
#include "rt_op.h"

#include <string.h>

#include <stdarg.h>
#include <stdio.h>

int rt_netdesc_classes(const rt_netdesc *d)
{
    if (!d || d->nlayers < 1)
        return 0;
    const rt_shape *o = &d->layers[d->nlayers - 1].out;
    return o->c * o->h * o->w;
}

double rt_layer_flops_of(const rt_layer *L)
{
    const rt_op *op = rt_op_of(L->kind);
    if (!op)
        return 0;
    double nout = (double)rt_shape_size(L->out);
    double f = op->flops ? op->flops(L) : 0;
    if ((op->flags & RT_OP_BIAS) && L->bias && L->b_len)
        f += nout;
    if ((op->flags & RT_OP_ACT) && L->act != RT_ACT_NONE)
        f += nout;
    return f;
}

double rt_layer_flops(const rt_netdesc *d, int i)
{
    return d && i >= 0 && i < d->nlayers ? rt_layer_flops_of(&d->layers[i]) : 0;
}

double rt_netdesc_flops(const rt_netdesc *d)
{
    double f = 0;
    for (int i = 0; d && i < d->nlayers; i++)
        f += rt_layer_flops(d, i);
    return f;
}

int rt_netdesc_pool_takes_relu(const rt_netdesc *d, int i)
{
    if (!d || i < 1 || i >= d->nlayers || d->layers[i].kind != RT_MAXPOOL)
        return 0;
    int s = d->layers[i].src;
    if (s < 1 || s >= i)
        return 0;
    const rt_layer *S = &d->layers[s];
    const rt_op *op = rt_op_of(S->kind);
    if (!op || !(op->flags & RT_OP_ACT) || S->act != RT_ACT_RELU)
        return 0;
    /* any src2 counts as a reader, even of a kind that has none: a conservative answer */
    for (int j = 1; j < d->nlayers; j++)
        if (j != i && (d->layers[j].src == s || d->layers[j].src2 == s))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ the check */

static int fail(char *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, RT_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int rt_layer_shape(rt_layer *L, rt_shape in2, char *why)
{
    const rt_op *op = rt_op_of(L->kind);
    if (!op) {
        snprintf(why, RT_ERRLEN, "unknown layer kind %d", (int)L->kind);
        return -1;
    }
    return op->shape(L, in2, why);
}

/* Checks that parameter range [off, off+len) fits an array of total values. */
static int check_range(const rt_layer *L, int i, size_t off, size_t len, size_t total,
                       const char *what, char *err)
{
    if (len && (off > total || len > total - off))
        return fail(err, "layer %d (%s, line %d): its %s [%zu, %zu) lie outside the array of "
                    "%zu", i, rt_kind_name(L->kind), L->line, what, off, off + len, total);
    return 0;
}

static int check_act(const rt_netdesc *d, int i, unsigned flags, char *err)
{
    const rt_layer *L = &d->layers[i];
    const char *kn = rt_kind_name(L->kind);
    if (!(flags & (RT_OP_ACT | RT_OP_IS_ACT)))
        return 0;
    if ((unsigned)L->act >= RT_NACTS)
        return fail(err, "layer %d (%s, line %d): unknown activation %d", i, kn, L->line,
                    (int)L->act);
    if (L->act == RT_ACT_SOFTMAX && i != d->nlayers - 1)
        return fail(err, "layer %d (%s, line %d): softmax is only supported as the last "
                    "layer's activation (it is folded into the loss)", i, kn, L->line);
    if ((L->act == RT_ACT_LEAKYRELU || L->act == RT_ACT_ELU) && !(L->alpha >= 0.0f))
        return fail(err, "layer %d (%s, line %d): the activation needs a slope >= 0", i, kn,
                    L->line);
    if ((flags & RT_OP_ACT) && rt_act_needs_input(L->act))
        return fail(err, "layer %d (%s, line %d): %s cannot be fused into %s (its gradient "
                    "needs its input): make it a layer of its own", i, kn, L->line,
                    rt_act_name(L->act), kn);
    return 0;
}

int rt_netdesc_check(const rt_netdesc *d, char *err)
{
    if (!d || d->nlayers < 2 || !d->layers)
        return fail(err, "a network needs an input layer and at least one more layer");
    if (d->layers[0].kind != RT_INPUT)
        return fail(err, "layer 0 must be the input");
    char why[RT_ERRLEN];
    rt_layer in0 = d->layers[0];
    if (rt_layer_shape(&in0, in0.out, why) != 0)
        return fail(err, "layer 0 (input): %s", why);
    for (int i = 1; i < d->nlayers; i++) {
        const rt_layer *L = &d->layers[i];
        const rt_op *op = rt_op_of(L->kind);
        if (!op || L->kind == RT_INPUT)
            return fail(err, "layer %d: unknown or misplaced kind %d", i, (int)L->kind);
        const char *kn = rt_kind_name(L->kind);
        if (L->src < 0 || L->src >= i)
            return fail(err, "layer %d (%s, line %d): source %d is not an earlier layer", i,
                        kn, L->line, L->src);
        rt_shape src = d->layers[L->src].out, src2 = {0, 0, 0};
        if (op->flags & RT_OP_TWO_IN) {
            if (L->src2 < 0 || L->src2 >= i)
                return fail(err, "layer %d (%s, line %d): second source %d is not an earlier "
                            "layer", i, kn, L->line, L->src2);
            src2 = d->layers[L->src2].out;
        }
        int flat = (op->flags & RT_OP_FLAT_IN) != 0;
        if (flat ? rt_shape_size(L->in) != rt_shape_size(src) : !rt_same_shape(L->in, src))
            return fail(err, "layer %d (%s, line %d): input %dx%dx%d does not match its "
                        "source's output %dx%dx%d", i, kn, L->line, L->in.c, L->in.h,
                        L->in.w, src.c, src.h, src.w);
        if (check_act(d, i, op->flags, err) != 0)
            return -1;
        rt_layer want = *L;
        if (op->shape(&want, src2, why) != 0)
            return fail(err, "layer %d (%s, line %d): %s", i, kn, L->line, why);
        if (!rt_same_shape(want.out, L->out) || L->out.c < 1 || L->out.h < 1 || L->out.w < 1)
            return fail(err, "layer %d (%s, line %d): output %dx%dx%d, but its input and "
                        "settings give %dx%dx%d (windows outside the padded input?)", i, kn, L->line, L->out.c, L->out.h,
                        L->out.w, want.out.c, want.out.h, want.out.w);
        /* state a kind does not use is allowed: weights files carry it as they find it */
        if (want.w_len != L->w_len || want.b_len != L->b_len ||
            (want.s_len && want.s_len != L->s_len))
            return fail(err, "layer %d (%s, line %d): %zu weights, %zu biases and %zu state "
                        "values, expected %zu, %zu and %zu", i, kn, L->line, L->w_len,
                        L->b_len, L->s_len, want.w_len, want.b_len, want.s_len);
        if (check_range(L, i, L->w_off, L->w_len, d->nparams, "weights", err) ||
            check_range(L, i, L->b_off, L->b_len, d->nparams, "biases", err) ||
            check_range(L, i, L->s_off, L->s_len, d->nstate, "state values", err))
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the hash */

static uint64_t fnv(uint64_t h, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++) {
        h ^= (u >> (8 * i)) & 0xff;
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t rt_netdesc_hash(const rt_netdesc *d)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, d->nlayers);
    h = fnv(h, (int64_t)d->nparams);
    h = fnv(h, (int64_t)d->nstate);
    for (int i = 0; i < d->nlayers; i++) {
        const rt_layer *L = &d->layers[i];
        const rt_op *op = rt_op_of(L->kind);
        unsigned f = op ? op->flags : 0;
        int conv = (f & RT_OP_CONV) != 0, window = (f & RT_OP_WINDOW) != 0;
        /* fields a kind does not use are left out, so whatever a front end leaves there
         * does not matter */
        const int64_t v[] = {L->kind, L->src, (f & RT_OP_TWO_IN) ? L->src2 : -1,
                             L->in.c, L->in.h, L->in.w, L->out.c, L->out.h, L->out.w,
                             window ? L->kh : 0, window ? L->kw : 0,
                             window ? L->sh : 0, window ? L->sw : 0,
                             window ? L->pt : 0, window ? L->pb : 0,
                             window ? L->pl : 0, window ? L->pr : 0,
                             conv ? (int64_t)L->padmode : 0, conv ? L->flip : 0,
                             (f & RT_OP_BIAS) ? L->bias : 0,
                             (f & (RT_OP_ACT | RT_OP_IS_ACT)) ? (int64_t)L->act : 0,
                             (int64_t)L->w_off, (int64_t)L->w_len, (int64_t)L->b_off,
                             (int64_t)L->b_len, (int64_t)L->s_off, (int64_t)L->s_len};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            h = fnv(h, v[k]);
        /* the input normalisation only when set: weights trained with one do not load into
         * a network without it, or with another, and older hashes stay as they were */
        if (L->kind == RT_INPUT && L->norm)
            for (int c = 0; c < 4; c++) {
                int32_t mb, sb;
                memcpy(&mb, &L->mean[c], 4);
                memcpy(&sb, &L->std[c], 4);
                h = fnv(h, mb);
                h = fnv(h, sb);
            }
        /* dilation and groups enter only when used, so that the hashes (and weights files)
         * of networks written before they existed stay valid */
        rt_conv_geom g = rt_layer_conv_geom(L);
        if (conv && (g.dh != 1 || g.dw != 1 || g.groups != 1)) {
            h = fnv(h, g.dh);
            h = fnv(h, g.dw);
            h = fnv(h, g.groups);
        }
    }
    return h;
}
