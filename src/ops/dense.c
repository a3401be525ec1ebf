/*
 * dense.c - the compiler's side of the fully connected layer: `dense N [ACT] [bias=]`
 * (aliases linear, fc), a kernel call in the training program, a dot-product loop in the
 * standalone file.
 */
#include "cnn_op.h"
#include "rt_op.h"
#include "sa_conv.h"

#include <string.h>

static const cnn_layer_info WORDS[] = {
    {"dense", "linear fc", "dense N [ACT] [bias=true|false]", "bias", RT_DENSE, RT_ACT_NONE, 1, 1},
};

static void defaults(ir_node *n) { n->L.bias = 1; }

static void positional(cnn_chk *c, int idx, const ast_value *v, ir_node *n)
{
    (void)idx;
    if (cnn_want_int(c, v, 1, 1 << 24, "the number of units")) n->spec.out = (int)v->i;
}

static void keyword(cnn_chk *c, const ast_arg *a, ir_node *n)
{
    if (strcmp(a->key, "bias") == 0 && cnn_want_word(c, &a->val, "bias", "true false"))
        n->L.bias = strcmp(a->val.word, "true") == 0;
}

static void emit_forward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    FILE *o = e->out;
    fprintf(o, "    if (rt_dense_forward(%s, P + %zu, ", e->in, L->w_off);
    emit_bias_ptr(o, "P", L);
    fprintf(o, ", %s, %s, %s, n, %ld, %ld, tp) != 0)\n        return fail(%d);\n", rt_act_cname(rt_layer_act(L)),
            emit_f(L->alpha), e->y, emit_size(L->in), emit_size(L->out), e->i);
}

static void emit_backward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    FILE *o = e->out;
    emit_act_backward_inplace(e);
    fprintf(o, "    if (rt_dense_backward(%s, P + %zu, %s, %s, %d, G + %zu, ", e->in, L->w_off, e->dy, emit_dx(e),
            e->step->acc, L->w_off);
    emit_bias_ptr(o, "G", L);
    fprintf(o, ", n, %ld, %ld, tp) != 0) {\n        return fail_backward(%d);\n    }\n", emit_size(L->in),
            emit_size(L->out), e->i);
}

/* The standalone loops treat a dense layer as a 1x1 convolution of a 1x1 map (sa_conv.c). */
static sa_conv sa_of(const rt_layer *L, const char *in, const char *y)
{
    return (sa_conv){.ic = (int)emit_size(L->in), .ih = 1, .iw = 1, .oc = (int)emit_size(L->out), .oh = 1, .ow = 1,
                     .kh = 1, .kw = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1, .groups = 1, .w_off = L->w_off,
                     .b_off = L->b_off, .has_bias = L->bias && L->b_len, .act = (int)rt_layer_act(L),
                     .alpha = L->alpha, .in = in, .y = y};
}

static void emit_standalone(const emit_ctx *e)
{
    sa_conv c = sa_of(&e->net->nodes[e->i].L, e->in, e->y);
    sa_conv_emit(e->out, &c, e->tmp);
}

static void standalone_layout(const rt_layer *L, float *params)
{
    sa_conv c = sa_of(L, "", "");
    sa_conv_layout(&c, params);
}

const cnn_op cnn_op_dense = {
    .kind = RT_DENSE,
    .words = WORDS,
    .nwords = 1,
    .trailing_act = 1,
    .positional = positional,
    .keyword = keyword,
    .defaults = defaults,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_standalone = emit_standalone,
    .standalone_layout = standalone_layout,
};
