/*
 * emit_layers.c - the per-layer emitters of the C generator. Each kind has one function
 * for its forward and one for its backward; they print kernel calls whose every shape
 * argument is a literal, mirroring the interpreter (runtime/rt_net.c) call for call, so
 * that compiled and interpreted networks compute the same bits.
 */
#include "emit_layers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *emit_f(float v)
{
    static char ring[16][40];
    static int next;
    char *b = ring[next++ % 16];
    if (isnan(v) || isinf(v)) {
        snprintf(b, sizeof ring[0], "%s", isnan(v) ? "(0.0f / 0.0f)" : v > 0 ? "(1.0f / 0.0f)" : "(-1.0f / 0.0f)");
        return b;
    }
    snprintf(b, sizeof ring[0], "%.9g", v);
    if (!strpbrk(b, ".e")) strcat(b, ".0");
    strcat(b, "f");
    return b;
}

const char *emit_act_name(rt_act a)
{
    switch (a) {
    case RT_ACT_RELU: return "RT_ACT_RELU";
    case RT_ACT_LEAKYRELU: return "RT_ACT_LEAKYRELU";
    case RT_ACT_SIGMOID: return "RT_ACT_SIGMOID";
    case RT_ACT_TANH: return "RT_ACT_TANH";
    case RT_ACT_SOFTMAX: return "RT_ACT_SOFTMAX";
    default: return "RT_ACT_NONE";
    }
}

const char *emit_pad_name(rt_padmode m)
{
    switch (m) {
    case RT_PAD_REFLECT: return "RT_PAD_REFLECT";
    case RT_PAD_REPLICATE: return "RT_PAD_REPLICATE";
    case RT_PAD_CIRCULAR: return "RT_PAD_CIRCULAR";
    default: return "RT_PAD_ZERO";
    }
}

static const rt_layer *layer(const emit_ctx *e) { return &e->net->nodes[e->i].L; }
/* Softmax on the last layer is the loss's business, as in the interpreter. */
static rt_act run_act(const rt_layer *L) { return L->act == RT_ACT_SOFTMAX ? RT_ACT_NONE : L->act; }

static void bias_ptr(FILE *o, const char *arr, const rt_layer *L)
{
    if (L->bias && L->b_len) fprintf(o, "%s + %zu", arr, L->b_off);
    else fprintf(o, "NULL");
}

static void dx_arg(const emit_ctx *e) { fprintf(e->out, "%s", e->dx[0] ? e->dx : "NULL"); }

/* ---------------------------------------------------------------- conv */

static void conv_decls(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    fprintf(e->out, "static const rt_conv_geom geom%d = {%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %s, %d, 1, 1, 1};\n",
            e->i, L->in.c, L->in.h, L->in.w, L->out.c, L->out.h, L->out.w, L->kh, L->kw, L->sh, L->sw,
            L->pt, L->pb, L->pl, L->pr, emit_pad_name(L->padmode), L->flip);
}

static void conv_forward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    FILE *o = e->out;
    fprintf(o, "    if (rt_conv2d_forward(&geom%d, %s, P + %zu, ", e->i, e->in, L->w_off);
    bias_ptr(o, "P", L);
    fprintf(o, ", %s, %s, out%d, n, tp) != 0)\n        return fail(%d);\n", emit_act_name(run_act(L)),
            emit_f(L->alpha), e->i, e->i);
}

/* Whether the max pooling reading this layer already applied its relu's backward. */
static int relu_done_by_pool(const emit_ctx *e)
{
    for (int j = e->i + 1; j < e->desc->nlayers; j++)
        if (e->desc->layers[j].src == e->i && rt_netdesc_pool_takes_relu(e->desc, j)) return 1;
    return 0;
}

static void act_backward_inplace(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    if (run_act(L) == RT_ACT_NONE) return; /* the kernel's identity: nothing to do */
    if (relu_done_by_pool(e)) {
        fprintf(e->out, "    /* (the relu's backward was done by the max pooling after it) */\n");
        return;
    }
    fprintf(e->out, "    rt_act_backward_mt(%s, %s, out%d, dout%d, dout%d, (size_t)n * %ld, 0, tp);\n", emit_act_name(run_act(L)),
            emit_f(L->alpha), e->i, e->i, e->i, emit_size(L->out));
}

static void conv_backward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    FILE *o = e->out;
    act_backward_inplace(e);
    fprintf(o, "    if (rt_conv2d_backward(&geom%d, %s, P + %zu, dout%d, ", e->i, e->in, L->w_off, e->i);
    dx_arg(e);
    fprintf(o, ", %d, G + %zu, ", e->acc, L->w_off);
    bias_ptr(o, "G", L);
    fprintf(o, ", n, tp) != 0) {\n        fail_backward(%d);\n        return;\n    }\n", e->i);
}

/* ---------------------------------------------------------------- pooling */

static void pool_decls(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    fprintf(e->out, "static const rt_pool_geom geom%d = {%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d};\n", e->i,
            L->in.c, L->in.h, L->in.w, L->out.h, L->out.w, L->kh, L->kw, L->sh, L->sw, L->pt, L->pb, L->pl, L->pr);
}

static void pool_forward(const emit_ctx *e)
{
    const char *k = layer(e)->kind == RT_MAXPOOL ? "maxpool" : "avgpool";
    fprintf(e->out, "    rt_%s_forward(&geom%d, %s, out%d, n, tp);\n", k, e->i, e->in, e->i);
}

static void pool_backward(const emit_ctx *e)
{
    if (!e->dx[0]) return;
    if (layer(e)->kind == RT_MAXPOOL && rt_netdesc_pool_takes_relu(e->desc, e->i))
        fprintf(e->out, "    rt_maxpool_backward_relu(&geom%d, %s, dout%d, %s, n, tp); /* and the relu's backward */\n", e->i,
                e->in, e->i, e->dx);
    else if (layer(e)->kind == RT_MAXPOOL)
        fprintf(e->out, "    rt_maxpool_backward(&geom%d, %s, dout%d, %s, %d, n, tp);\n", e->i, e->in, e->i, e->dx, e->acc);
    else
        fprintf(e->out, "    rt_avgpool_backward(&geom%d, dout%d, %s, %d, n, tp);\n", e->i, e->i, e->dx, e->acc);
}

static void global_forward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    const char *k = L->kind == RT_GLOBALAVGPOOL ? "globalavgpool" : "globalmaxpool";
    fprintf(e->out, "    rt_%s_forward(%s, out%d, n, %d, %d);\n", k, e->in, e->i, L->in.c, L->in.h * L->in.w);
}

static void global_backward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    if (!e->dx[0]) return;
    if (L->kind == RT_GLOBALAVGPOOL)
        fprintf(e->out, "    rt_globalavgpool_backward(dout%d, %s, %d, n, %d, %d);\n", e->i, e->dx, e->acc, L->in.c,
                L->in.h * L->in.w);
    else
        fprintf(e->out, "    rt_globalmaxpool_backward(%s, dout%d, %s, %d, n, %d, %d);\n", e->in, e->i, e->dx, e->acc,
                L->in.c, L->in.h * L->in.w);
}

/* ---------------------------------------------------------------- flatten, dropout */

static void copy_forward(const emit_ctx *e)
{
    fprintf(e->out, "    rt_copy_mt(%s, out%d, (size_t)n * %ld, tp);\n", e->in, e->i, emit_size(layer(e)->in));
}

static void pass_backward(const emit_ctx *e)
{
    if (!e->dx[0]) return;
    fprintf(e->out, "    rt_grad_pass_mt(dout%d, %s, (size_t)n * %ld, %d, tp);\n", e->i, e->dx, emit_size(layer(e)->in), e->acc);
}

static void dropout_buffers(const emit_ctx *e, const char *maxb)
{
    fprintf(e->out, "static _Alignas(64) float mask%d[%s * %ld];\n", e->i, maxb, emit_size(layer(e)->in));
}

static void dropout_forward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    long sz = emit_size(L->in);
    if (L->p > 0.0f) {
        fprintf(e->out, "    if (training) {\n"
                        "        rt_dropout_mask(mask%d, (size_t)n * %ld, %s, &drop);\n"
                        "        rt_dropout_forward_mt(%s, mask%d, out%d, (size_t)n * %ld, tp);\n"
                        "    } else {\n"
                        "        rt_copy_mt(%s, out%d, (size_t)n * %ld, tp);\n"
                        "    }\n",
                e->i, sz, emit_f(L->p), e->in, e->i, e->i, sz, e->in, e->i, sz);
    } else {
        copy_forward(e);
    }
}

static void dropout_backward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    if (!e->dx[0]) return;
    long sz = emit_size(L->in);
    if (L->p > 0.0f)
        fprintf(e->out, "    if (last_training)\n"
                        "        rt_dropout_backward_mt(dout%d, mask%d, %s, (size_t)n * %ld, %d, tp);\n"
                        "    else\n"
                        "        rt_grad_pass_mt(dout%d, %s, (size_t)n * %ld, %d, tp);\n",
                e->i, e->i, e->dx, sz, e->acc, e->i, e->dx, sz, e->acc);
    else
        pass_backward(e);
}

/* ---------------------------------------------------------------- dense */

static void dense_forward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    FILE *o = e->out;
    fprintf(o, "    if (rt_dense_forward(%s, P + %zu, ", e->in, L->w_off);
    bias_ptr(o, "P", L);
    fprintf(o, ", %s, %s, out%d, n, %ld, %ld, tp) != 0)\n        return fail(%d);\n", emit_act_name(run_act(L)),
            emit_f(L->alpha), e->i, emit_size(L->in), emit_size(L->out), e->i);
}

static void dense_backward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    FILE *o = e->out;
    act_backward_inplace(e);
    fprintf(o, "    if (rt_dense_backward(%s, P + %zu, dout%d, ", e->in, L->w_off, e->i);
    dx_arg(e);
    fprintf(o, ", %d, G + %zu, ", e->acc, L->w_off);
    bias_ptr(o, "G", L);
    fprintf(o, ", n, %ld, %ld, tp) != 0) {\n        fail_backward(%d);\n        return;\n    }\n", emit_size(L->in), emit_size(L->out), e->i);
}

/* ---------------------------------------------------------------- batchnorm */

static void bn_buffers(const emit_ctx *e, const char *maxb)
{
    (void)maxb;
    fprintf(e->out, "static float bn%d[%d]; /* batch mean, then 1/std, for the backward */\n", e->i, 2 * layer(e)->in.c);
}

static void bn_forward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    int c = L->in.c, hw = L->in.h * L->in.w;
    fprintf(e->out,
            "    if (training)\n"
            "        rt_batchnorm_forward_train_mt(%s, P + %zu, P + %zu, S + %zu, S + %zu, %s, %s, out%d, bn%d, bn%d + %d, n, %d, %d, tp);\n"
            "    else\n"
            "        rt_batchnorm_forward_eval_mt(%s, P + %zu, P + %zu, S + %zu, S + %zu, %s, out%d, n, %d, %d, tp);\n",
            e->in, L->w_off, L->b_off, L->s_off, L->s_off + (size_t)c, emit_f(L->momentum), emit_f(L->eps), e->i, e->i, e->i, c, c, hw,
            e->in, L->w_off, L->b_off, L->s_off, L->s_off + (size_t)c, emit_f(L->eps), e->i, c, hw);
}

static void bn_backward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    int c = L->in.c, hw = L->in.h * L->in.w;
    const char *dx = e->dx[0] ? e->dx : "NULL";
    fprintf(e->out,
            "    if (last_training)\n"
            "        rt_batchnorm_backward_train_mt(%s, P + %zu, bn%d, bn%d + %d, dout%d, %s, %d, G + %zu, G + %zu, n, %d, %d, tp);\n"
            "    else\n"
            "        rt_batchnorm_backward_eval_mt(%s, P + %zu, S + %zu, S + %zu, %s, dout%d, %s, %d, G + %zu, G + %zu, n, %d, %d, tp);\n",
            e->in, L->w_off, e->i, e->i, c, e->i, dx, e->acc, L->w_off, L->b_off, c, hw,
            e->in, L->w_off, L->s_off, L->s_off + (size_t)c, emit_f(L->eps), e->i, dx, e->acc, L->w_off, L->b_off, c, hw);
}

/* ---------------------------------------------------------------- activation, add */

static void act_forward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    fprintf(e->out, "    rt_act_forward_mt(%s, %s, %s, out%d, (size_t)n * %ld, tp);\n", emit_act_name(run_act(L)), emit_f(L->alpha),
            e->in, e->i, emit_size(L->out));
}

static void act_backward(const emit_ctx *e)
{
    const rt_layer *L = layer(e);
    if (!e->dx[0]) return;
    fprintf(e->out, "    rt_act_backward_mt(%s, %s, out%d, dout%d, %s, (size_t)n * %ld, %d, tp);\n", emit_act_name(run_act(L)),
            emit_f(L->alpha), e->i, e->i, e->dx, emit_size(L->out), e->acc);
}

static void add_forward(const emit_ctx *e)
{
    fprintf(e->out, "    rt_add_forward_mt(%s, %s, out%d, (size_t)n * %ld, tp);\n", e->in, e->in2, e->i, emit_size(layer(e)->out));
}

static void add_backward(const emit_ctx *e)
{
    long sz = emit_size(layer(e)->out);
    if (e->dx[0]) fprintf(e->out, "    rt_grad_pass_mt(dout%d, %s, (size_t)n * %ld, %d, tp);\n", e->i, e->dx, sz, e->acc);
    if (e->dx2[0]) fprintf(e->out, "    rt_grad_pass_mt(dout%d, %s, (size_t)n * %ld, %d, tp);\n", e->i, e->dx2, sz, e->acc2);
}

/* ---------------------------------------------------------------- the table */

typedef struct {
    void (*decls)(const emit_ctx *);
    void (*buffers)(const emit_ctx *, const char *);
    void (*forward)(const emit_ctx *);
    void (*backward)(const emit_ctx *);
} layer_emitter;

static const layer_emitter EMITTERS[RT_NKINDS] = {
    [RT_CONV] = {conv_decls, NULL, conv_forward, conv_backward},
    [RT_MAXPOOL] = {pool_decls, NULL, pool_forward, pool_backward},
    [RT_AVGPOOL] = {pool_decls, NULL, pool_forward, pool_backward},
    [RT_GLOBALAVGPOOL] = {NULL, NULL, global_forward, global_backward},
    [RT_GLOBALMAXPOOL] = {NULL, NULL, global_forward, global_backward},
    [RT_FLATTEN] = {NULL, NULL, copy_forward, pass_backward},
    [RT_DROPOUT] = {NULL, dropout_buffers, dropout_forward, dropout_backward},
    [RT_DENSE] = {NULL, NULL, dense_forward, dense_backward},
    [RT_BATCHNORM] = {NULL, bn_buffers, bn_forward, bn_backward},
    [RT_ACTIVATION] = {NULL, NULL, act_forward, act_backward},
    [RT_ADD] = {NULL, NULL, add_forward, add_backward},
};

void emit_layer_decls(const emit_ctx *e)
{
    const layer_emitter *m = &EMITTERS[layer(e)->kind];
    if (m->decls) m->decls(e);
}

void emit_layer_buffers(const emit_ctx *e, const char *maxb)
{
    const layer_emitter *m = &EMITTERS[layer(e)->kind];
    if (m->buffers) m->buffers(e, maxb);
}

void emit_layer_forward(const emit_ctx *e)
{
    const layer_emitter *m = &EMITTERS[layer(e)->kind];
    if (m->forward) m->forward(e);
}

void emit_layer_backward(const emit_ctx *e)
{
    const layer_emitter *m = &EMITTERS[layer(e)->kind];
    if (m->backward) m->backward(e);
}
