/*
 * conv.c - the compiler's side of 2-D convolution: `conv KHxKW N [ACT] [stride=] [pad=]
 * [padding=] [bias=] [mode=] [groups=] [dilation=]`, and the code it prints: a geometry
 * constant and kernel calls for the training program, plain loops for the standalone file.
 */
#include "cnn_op.h"
#include "rt_op.h"
#include "sa_conv.h"

#include <string.h>

static const cnn_layer_info WORDS[] = {
    {"conv", "conv2d convolution",
     "conv KHxKW N [ACT] [stride=S|SHxSW] [pad=P|PHxPW|same|valid] "
     "[padding=zero|reflect|replicate|circular] [bias=true|false] "
     "[mode=correlation|convolution] [groups=G] [dilation=D|DHxDW]",
     "stride pad padding bias mode groups dilation", RT_CONV, RT_ACT_NONE, 2, 2},
};

static void defaults(ir_node *n)
{
    n->L.bias = 1;
    n->L.dh = n->L.dw = n->L.groups = 1;
}

static void positional(cnn_chk *c, int idx, const ast_value *v, ir_node *n)
{
    if (idx == 0) cnn_want_pair(c, v, 1, "the kernel size", &n->L.kh, &n->L.kw);
    else if (cnn_want_int(c, v, 1, 1 << 20, "the number of output channels")) n->spec.out = (int)v->i;
}

static void keyword(cnn_chk *c, const ast_arg *a, ir_node *n)
{
    rt_layer *L = &n->L;
    const char *k = a->key;
    const ast_value *v = &a->val;
    if (cnn_key_window(c, a, n)) return;
    if (strcmp(k, "padding") == 0 && (v->kind == VAL_INT || v->kind == VAL_DIMS ||
                                      (v->kind == VAL_WORD && cnn_word_in_list(v->word, "same valid")))) {
        /* PyTorch's and Keras's padding= is our pad=; our padding= is PyTorch's padding_mode= */
        char hint[192];
        snprintf(hint, sizeof hint, "did you mean `pad=%s`? (padding= says how padded pixels are filled: "
                 "zero reflect replicate circular)", v->word);
        CNN_FAIL(c, v->loc, hint, "invalid padding '%s'", v->word);
    } else if (strcmp(k, "padding") == 0) {
        if (cnn_want_word(c, v, "padding", "zero reflect replicate circular"))
            L->padmode = (rt_padmode)rt_pad_from_name(v->word);
    } else if (strcmp(k, "bias") == 0) {
        if (cnn_want_word(c, v, "bias", "true false")) L->bias = strcmp(v->word, "true") == 0;
    } else if (strcmp(k, "mode") == 0) {
        if (cnn_want_word(c, v, "mode", "correlation convolution")) L->flip = strcmp(v->word, "convolution") == 0;
    } else if (strcmp(k, "groups") == 0) {
        if (cnn_want_int(c, v, 1, 1 << 20, "groups")) L->groups = (int)v->i;
    } else if (strcmp(k, "dilation") == 0) {
        cnn_want_pair(c, v, 1, "dilation", &L->dh, &L->dw);
    }
}

/* The runtime's rule refused the layer: say why in the user's terms. */
static void explain(const ir_net *net, const ir_node *n, cnn_diag *diag, rt_shape in2, const char *why)
{
    (void)net;
    (void)in2;
    const rt_layer *L = &n->L;
    int g = L->groups > 0 ? L->groups : 1;
    if (L->in.c % g || L->out.c % g) {
        char hint[200];
        snprintf(hint, sizeof hint, "groups divides both channel counts; groups=%d makes it depthwise "
                 "(the output channels then a multiple of %d)", L->in.c, L->in.c);
        diag_error(diag, n->loc, hint, "groups=%d does not divide the %d input and %d output channels", g, L->in.c,
                   L->out.c);
        return;
    }
    diag_error(diag, n->loc, NULL, "%s", why);
}

static void emit_decls(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    fprintf(e->out, "static const rt_conv_geom geom%d = {.c = %d, .h = %d, .w = %d, .oc = %d, .oh = %d, .ow = %d,\n"
                    "    .kh = %d, .kw = %d, .sh = %d, .sw = %d, .pt = %d, .pb = %d, .pl = %d, .pr = %d,\n"
                    "    .pad = %s, .flip = %d, .dh = %d, .dw = %d, .groups = %d};\n",
            e->i, L->in.c, L->in.h, L->in.w, L->out.c, L->out.h, L->out.w, L->kh, L->kw, L->sh, L->sw,
            L->pt, L->pb, L->pl, L->pr, rt_pad_cname(L->padmode), L->flip, L->dh, L->dw, L->groups);
}

/* With a batchnorm folded in (inference), the folded weights then bias. */
static void emit_buffers(const emit_ctx *e, const char *maxb)
{
    (void)maxb;
    const rt_layer *L = &e->net->nodes[e->i].L;
    if (e->step->bn_fold)
        fprintf(e->out, "static float fold%d[%zu]; /* weights and bias with layer %d's batchnorm folded in */\n", e->i,
                L->w_len + (size_t)L->out.c, e->step->bn_fold);
}

static void emit_forward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    FILE *o = e->out;
    const char *ind = "    ";
    if (e->step->bn_fold) { /* inference: conv, then the batchnorm after it, as one conv */
        const rt_layer *B = &e->net->nodes[e->step->bn_fold].L;
        fprintf(o, "    if (infer) {\n        rt_batchnorm_fold(P + %zu, ", L->w_off);
        emit_bias_ptr(o, "P", L);
        fprintf(o, ", %d, %zu, P + %zu, P + %zu, S + %zu, S + %zu, %s, fold%d, fold%d + %zu);\n", L->out.c,
                L->w_len / (size_t)L->out.c, B->w_off, B->b_off, B->s_off, B->s_off + (size_t)L->out.c, emit_f(B->eps), e->i,
                e->i, L->w_len);
        const int res = e->step->res_add != 0; /* and the residual add after the batchnorm */
        fprintf(o, "        if (rt_conv2d_forward%s(&geom%d, %s, fold%d, fold%d + %zu, %s%s%s, %s, %s, n, tp) != 0)\n"
                   "            return fail(%d);\n    } else {\n",
                res ? "_res" : "", e->i, e->in, e->i, e->i, L->w_len, res ? e->res : "", res ? ", " : "",
                rt_act_cname(res ? e->step->res_act : e->step->fold_act),
                emit_f(res ? e->step->res_alpha : e->step->fold_alpha), e->y, e->i);
        ind = "        ";
    } else if (e->step->res_add) { /* inference: and the residual add after it */
        fprintf(o, "    if (infer) {\n        if (rt_conv2d_forward_res(&geom%d, %s, P + %zu, ", e->i, e->in, L->w_off);
        emit_bias_ptr(o, "P", L);
        fprintf(o, ", %s, %s, %s, %s, n, tp) != 0)\n            return fail(%d);\n    } else {\n", e->res,
                rt_act_cname(e->step->res_act), emit_f(e->step->res_alpha), e->y, e->i);
        ind = "        ";
    }
    if (e->step->pool_layer) { /* and the pooling after it, run of images by run of images */
        const int j = e->step->pool_layer;
        fprintf(o, "%sif (rt_conv2d_forward_pool(&geom%d, %s, P + %zu, ", ind, e->i, e->in, L->w_off);
        emit_bias_ptr(o, "P", L);
        fprintf(o, ", %s, %s, %s, !infer, n, &geom%d, %d, %s, tp) != 0)\n%s    return fail(%d);\n",
                rt_act_cname(rt_layer_act(L)), emit_f(L->alpha), e->y, j,
                e->net->nodes[j].L.kind == RT_AVGPOOL, e->pool_y, ind, e->i);
    } else {
        fprintf(o, "%sif (rt_conv2d_forward(&geom%d, %s, P + %zu, ", ind, e->i, e->in, L->w_off);
        emit_bias_ptr(o, "P", L);
        fprintf(o, ", %s, %s, %s, n, tp) != 0)\n%s    return fail(%d);\n", rt_act_cname(rt_layer_act(L)),
                emit_f(L->alpha), e->y, ind, e->i);
    }
    if (e->step->bn_fold || e->step->res_add)
        fprintf(o, "    }\n");
}

static void emit_backward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    FILE *o = e->out;
    if (e->step->pool_bwd) { /* the max pooling's backward (and the relu's) too, from its dy */
        fprintf(o, "    if (rt_conv2d_backward_pool(&geom%d, %s, P + %zu, &geom%d, %s, %s, %s, G + %zu, ", e->i, e->in, L->w_off,
                e->step->pool_bwd, e->y, e->pool_dy, e->dy, L->w_off);
        emit_bias_ptr(o, "G", L);
        fprintf(o, ", n, tp) != 0) {\n        return fail_backward(%d);\n    }\n", e->i);
        return;
    }
    emit_act_backward_inplace(e);
    fprintf(o, "    if (rt_conv2d_backward(&geom%d, %s, P + %zu, %s, %s, %d, G + %zu, ", e->i, e->in, L->w_off, e->dy,
            e->dx[0] ? e->dx : "NULL", e->step->acc, L->w_off);
    emit_bias_ptr(o, "G", L);
    fprintf(o, ", n, tp) != 0) {\n        return fail_backward(%d);\n    }\n", e->i);
}

static void emit_scratch(const emit_ctx *e)
{
    fprintf(e->out, "    if (rt_conv2d_scratch_size(&geom%d) > scratch)\n        scratch = rt_conv2d_scratch_size(&geom%d);\n",
            e->i, e->i);
}

/* The standalone loops' view of the layer (sa_conv.c). */
static sa_conv sa_of(const rt_layer *L, const char *in, const char *y)
{
    return (sa_conv){.ic = L->in.c, .ih = L->in.h, .iw = L->in.w, .oc = L->out.c, .oh = L->out.h, .ow = L->out.w,
                     .kh = L->kh, .kw = L->kw, .sh = L->sh, .sw = L->sw, .dh = L->dh, .dw = L->dw,
                     .groups = L->groups, .pt = L->pt, .pb = L->pb, .pl = L->pl, .pr = L->pr,
                     .padmode = (int)L->padmode, .flip = L->flip, .w_off = L->w_off, .b_off = L->b_off,
                     .has_bias = L->bias && L->b_len, .act = (int)rt_layer_act(L), .alpha = L->alpha,
                     .in = in, .y = y};
}

static void emit_standalone(const emit_ctx *e)
{
    sa_conv c = sa_of(&e->net->nodes[e->i].L, e->in, e->y);
    sa_conv_emit(e->out, &c, e->tmp);
}

static long standalone_tmp(const rt_layer *L)
{
    sa_conv c = sa_of(L, "", "");
    return sa_conv_tmp_floats(&c);
}

static void standalone_layout(const rt_layer *L, float *params)
{
    sa_conv c = sa_of(L, "", "");
    sa_conv_layout(&c, params);
}

const cnn_op cnn_op_conv = {
    .kind = RT_CONV,
    .words = WORDS,
    .nwords = 1,
    .trailing_act = 1,
    .positional = positional,
    .keyword = keyword,
    .defaults = defaults,
    .explain = explain,
    .emit_decls = emit_decls,
    .emit_buffers = emit_buffers,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_scratch = emit_scratch,
    .emit_standalone = emit_standalone,
    .standalone_tmp = standalone_tmp,
    .standalone_layout = standalone_layout,
};
