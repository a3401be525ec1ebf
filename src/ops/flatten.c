/*
 * flatten.c - the compiler's side of `flatten`: CxHxW read as a vector. The plan makes it
 * an alias of its input, so it prints no code of its own; a copy is printed only where the
 * plan did not alias it.
 */
#include "cnn_op.h"

static const cnn_layer_info WORDS[] = {
    {"flatten", "", "flatten", "", RT_FLATTEN, RT_ACT_NONE, 0, 0},
};

static void emit_forward(const emit_ctx *e)
{
    fprintf(e->out, "    rt_copy_mt(%s, %s, (size_t)n * %ld, tp);\n", e->in, e->y, emit_size(e->net->nodes[e->i].L.in));
}

static void emit_backward(const emit_ctx *e)
{
    if (!e->dx[0] || e->step->pass) return;
    fprintf(e->out, "    rt_grad_pass_mt(%s, %s, (size_t)n * %ld, %d, tp);\n", e->dy, e->dx,
            emit_size(e->net->nodes[e->i].L.in), e->step->acc);
}

const cnn_op cnn_op_flatten = {
    .kind = RT_FLATTEN,
    .words = WORDS,
    .nwords = 1,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
};
