/*
 * dropout.c - the compiler's side of `dropout P` (inverted dropout): a mask buffer and the
 * masked copy while training; out of training the plan makes it an alias of its input.
 */
#include "cnn_op.h"

static const cnn_layer_info WORDS[] = {
    {"dropout", "", "dropout P   (0 <= P < 1)", "", RT_DROPOUT, RT_ACT_NONE, 1, 1},
};

static void positional(cnn_chk *c, int idx, const ast_value *v, ir_node *n)
{
    (void)idx;
    if ((v->kind != VAL_INT && v->kind != VAL_FLOAT) || !(v->f >= 0.0 && v->f < 1.0)) {
        CNN_FAIL(c, v->loc, "a dropout probability is a number with 0 <= P < 1, e.g. 0.5",
                 "dropout probability '%s' is not in [0, 1)", v->word);
        return;
    }
    n->L.p = (float)v->f;
}

static void emit_buffers(const emit_ctx *e, const char *maxb)
{
    if (e->step->alias == RT_ALIAS_EVAL)
        fprintf(e->out, "static _Alignas(64) float mask%d[%s * %ld];\n", e->i, maxb, emit_size(e->net->nodes[e->i].L.in));
}

/* Training mode only: out of it the plan aliases the input. */
static void emit_forward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    long sz = emit_size(L->in);
    fprintf(e->out, "        rt_dropout_mask(mask%d, (size_t)n * %ld, %s, &drop);\n"
                    "        rt_dropout_forward_mt(%s, mask%d, %s, (size_t)n * %ld, tp);\n",
            e->i, sz, emit_f(L->p), e->in, e->i, e->y, sz);
}

static void emit_backward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    if (!e->dx[0] || e->step->pass) return;
    long sz = emit_size(L->in);
    if (e->step->alias == RT_ALIAS_EVAL)
        fprintf(e->out, "    if (last_training)\n"
                        "        rt_dropout_backward_mt(%s, mask%d, %s, (size_t)n * %ld, %d, tp);\n"
                        "    else\n"
                        "        rt_grad_pass_mt(%s, %s, (size_t)n * %ld, %d, tp);\n",
                e->dy, e->i, e->dx, sz, e->step->acc, e->dy, e->dx, sz, e->step->acc);
    else
        fprintf(e->out, "    rt_grad_pass_mt(%s, %s, (size_t)n * %ld, %d, tp);\n", e->dy, e->dx, sz, e->step->acc);
}

const cnn_op cnn_op_dropout = {
    .kind = RT_DROPOUT,
    .words = WORDS,
    .nwords = 1,
    .positional = positional,
    .emit_buffers = emit_buffers,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
};
