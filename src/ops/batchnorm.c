/*
 * batchnorm.c - the compiler's side of `batchnorm [eps=] [momentum=]` (aliases bn,
 * batchnorm2d, batchnorm1d): the saved batch statistics buffer, the kernel calls of both
 * modes (with the activation after it when the plan fuses it), and the evaluation-mode loop
 * of the standalone file.
 */
#include "cnn_op.h"

#include <string.h>

static const cnn_layer_info WORDS[] = {
    {"batchnorm", "bn batchnorm2d batchnorm1d", "batchnorm [eps=E] [momentum=M]", "eps momentum", RT_BATCHNORM,
     RT_ACT_NONE, 0, 0},
};

static void defaults(ir_node *n)
{
    n->L.eps = 1e-5f;
    n->L.momentum = 0.1f;
}

static void keyword(cnn_chk *c, const ast_arg *a, ir_node *n)
{
    const ast_value *v = &a->val;
    if (strcmp(a->key, "eps") == 0) {
        cnn_want_positive_float(c, v, "eps", &n->L.eps);
    } else if (strcmp(a->key, "momentum") == 0) {
        if (cnn_want_positive_float(c, v, "momentum", &n->L.momentum) && n->L.momentum > 1.0f)
            CNN_FAIL(c, v->loc, "batchnorm momentum is in (0, 1], PyTorch's default is 0.1",
                     "momentum %s is larger than 1", v->word);
    }
}

static void emit_buffers(const emit_ctx *e, const char *maxb)
{
    (void)maxb;
    fprintf(e->out, "static float bn%d[%d]; /* batch mean, then 1/std, for the backward */\n", e->i,
            2 * e->net->nodes[e->i].L.in.c);
}

static void emit_forward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    int c = L->in.c, hw = L->in.h * L->in.w;
    if (e->step->bn_act_layer) { /* the plan runs the activation after it in the same pass */
        fprintf(e->out,
                "    if (rt_batchnorm_act_forward_mt(training, %s, P + %zu, P + %zu, S + %zu, S + %zu, %s, %s, %s, bn%d, bn%d + %d, %s, %s, n, %d, %d, tp) != 0)\n"
                "        return fail(%d);\n",
                e->in, L->w_off, L->b_off, L->s_off, L->s_off + (size_t)c, emit_f(L->momentum), emit_f(L->eps), e->y, e->i,
                e->i, c, rt_act_cname(e->step->bn_act), emit_f(e->step->bn_alpha), c, hw, e->i);
        return;
    }
    fprintf(e->out,
            "    if ((training ? rt_batchnorm_forward_train_mt(%s, P + %zu, P + %zu, S + %zu, S + %zu, %s, %s, %s, bn%d, bn%d + %d, n, %d, %d, tp)\n"
            "                  : rt_batchnorm_forward_eval_mt(%s, P + %zu, P + %zu, S + %zu, S + %zu, %s, %s, n, %d, %d, tp)) != 0)\n"
            "        return fail(%d);\n",
            e->in, L->w_off, L->b_off, L->s_off, L->s_off + (size_t)c, emit_f(L->momentum), emit_f(L->eps), e->y, e->i, e->i, c,
            c, hw, e->in, L->w_off, L->b_off, L->s_off, L->s_off + (size_t)c, emit_f(L->eps), e->y, c, hw, e->i);
}

static void emit_backward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    int c = L->in.c, hw = L->in.h * L->in.w;
    if (e->step->bn_act_layer) { /* dy: the fused activation's output gradient */
        fprintf(e->out,
                "    if (rt_batchnorm_act_backward_mt(last_training, %s, P + %zu, last_training ? bn%d : S + %zu, bn%d + %d, S + %zu, %s, %s, %s, %s, %s, %s, %d, G + %zu, G + %zu, n, %d, %d, tp) != 0) {\n",
                e->in, L->w_off, e->i, L->s_off, e->i, c, L->s_off + (size_t)c, emit_f(L->eps), e->y,
                rt_act_cname(e->step->bn_act), emit_f(e->step->bn_alpha), e->dy, emit_dx(e), e->step->acc, L->w_off, L->b_off,
                c, hw);
    } else {
        fprintf(e->out,
                "    if ((last_training ? rt_batchnorm_backward_train_mt(%s, P + %zu, bn%d, bn%d + %d, %s, %s, %d, G + %zu, G + %zu, n, %d, %d, tp)\n"
                "                       : rt_batchnorm_backward_eval_mt(%s, P + %zu, S + %zu, S + %zu, %s, %s, %s, %d, G + %zu, G + %zu, n, %d, %d, tp)) != 0) {\n",
                e->in, L->w_off, e->i, e->i, c, e->dy, emit_dx(e), e->step->acc, L->w_off, L->b_off, c, hw, e->in, L->w_off,
                L->s_off, L->s_off + (size_t)c, emit_f(L->eps), e->dy, emit_dx(e), e->step->acc, L->w_off, L->b_off, c, hw);
    }
    fprintf(e->out, "        return fail_backward(%d);\n    }\n", e->i);
}

static void emit_standalone(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    int hw = L->in.h * L->in.w;
    fprintf(e->out, "    for (int c = 0; c < %d; c++) {\n"
                    "        float inv = 1.0f / sqrtf(ST[%zu + c] + %s);\n"
                    "        for (int k = 0; k < %d; k++)\n"
                    "            %s[c * %d + k] = W[%zu + c] * ((%s[c * %d + k] - ST[%zu + c]) * inv) + W[%zu + c];\n    }\n",
            L->in.c, L->s_off + (size_t)L->in.c, emit_f(L->eps), hw, e->y, hw, L->w_off, e->in, hw, L->s_off, L->b_off);
    if (e->step->bn_act_layer) /* the activation after it, which the plan fused */
        fprintf(e->out, "    for (int k = 0; k < %d; k++)\n        %s[k] = act(%d, %s, %s[k]);\n", L->in.c * hw, e->y,
                (int)e->step->bn_act, emit_f(e->step->bn_alpha), e->y);
}

const cnn_op cnn_op_batchnorm = {
    .kind = RT_BATCHNORM,
    .words = WORDS,
    .nwords = 1,
    .keyword = keyword,
    .defaults = defaults,
    .emit_buffers = emit_buffers,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_standalone = emit_standalone,
};
