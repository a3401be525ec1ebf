/*
 * activation.c - the compiler's side of the activation words, as layers of their own and
 * (through conv and dense) as trailing words: relu, leakyrelu[=A], sigmoid, tanh, softmax
 * (last layer only), relu6, silu (swish), gelu (exact, erf form) and elu[=A].
 */
#include "cnn_op.h"
#include "rt_op.h"

static const cnn_layer_info WORDS[] = {
    {"relu", "", "relu", "", RT_ACTIVATION, RT_ACT_RELU, 0, 0},
    {"leakyrelu", "leaky_relu", "leakyrelu[=A]   (slope A for x < 0, default 0.01)", "", RT_ACTIVATION,
     RT_ACT_LEAKYRELU, 1, 0},
    {"sigmoid", "", "sigmoid", "", RT_ACTIVATION, RT_ACT_SIGMOID, 0, 0},
    {"tanh", "", "tanh", "", RT_ACTIVATION, RT_ACT_TANH, 0, 0},
    {"softmax", "", "softmax   (last layer only)", "", RT_ACTIVATION, RT_ACT_SOFTMAX, 0, 0},
    {"relu6", "", "relu6   (min(max(x, 0), 6))", "", RT_ACTIVATION, RT_ACT_RELU6, 0, 0},
    {"silu", "swish", "silu   (x * sigmoid(x))", "", RT_ACTIVATION, RT_ACT_SILU, 0, 0},
    {"gelu", "", "gelu   (x * Phi(x), the exact erf form)", "", RT_ACTIVATION, RT_ACT_GELU, 0, 0},
    {"elu", "", "elu[=A]   (A * (exp(x) - 1) for x < 0, default A = 1)", "", RT_ACTIVATION, RT_ACT_ELU, 1, 0},
};

/* leakyrelu A, elu A */
static void positional(cnn_chk *c, int idx, const ast_value *v, ir_node *n)
{
    (void)idx;
    cnn_want_positive_float(c, v, n->L.act == RT_ACT_ELU ? "the elu alpha" : "the leaky relu slope", &n->L.alpha);
}

static void emit_forward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    fprintf(e->out, "    rt_act_forward_mt(%s, %s, %s, %s, (size_t)n * %ld, tp);\n", rt_act_cname(rt_layer_act(L)),
            emit_f(L->alpha), e->in, e->y, emit_size(L->out));
}

static void emit_backward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    if (!e->dx[0]) return;
    fprintf(e->out, "    rt_act_backward_xy_mt(%s, %s, %s, %s, %s, %s, (size_t)n * %ld, %d, tp);\n",
            rt_act_cname(rt_layer_act(L)), emit_f(L->alpha), e->in, e->y, e->dy, e->dx, emit_size(L->out), e->step->acc);
}

static void emit_standalone(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    fprintf(e->out, "    for (int k = 0; k < %ld; k++)\n        %s[k] = act(%d, %s, %s[k]);\n", emit_size(L->out), e->y,
            (int)L->act, emit_f(L->alpha), e->in);
}

const cnn_op cnn_op_activation = {
    .kind = RT_ACTIVATION,
    .words = WORDS,
    .nwords = sizeof WORDS / sizeof WORDS[0],
    .positional = positional,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_standalone = emit_standalone,
};
