/*
 * merge.c - the compiler's side of the two kinds that join branches, written by the
 * `residual { } [shortcut { }]` and `concat { path { } ... }` blocks rather than by a word:
 * the add (output = body + shortcut) and the channel concatenation.
 */
#include "cnn_op.h"

#include <string.h>

static void add_forward(const emit_ctx *e)
{
    if (e->step->add_act_layer) { /* the plan runs the activation after it in the same pass */
        fprintf(e->out, "    rt_add_act_forward_mt(%s, %s, %s, %s, %s, (size_t)n * %ld, tp);\n", e->in, e->in2,
                rt_act_cname(e->step->add_act), emit_f(e->step->add_alpha), e->y, emit_size(e->net->nodes[e->i].L.out));
        return;
    }
    fprintf(e->out, "    rt_add_forward_mt(%s, %s, %s, (size_t)n * %ld, tp);\n", e->in, e->in2, e->y,
            emit_size(e->net->nodes[e->i].L.out));
}

static void add_backward(const emit_ctx *e)
{
    long sz = emit_size(e->net->nodes[e->i].L.out);
    if (e->step->add_act_layer) { /* dy: the activation's output gradient */
        fprintf(e->out, "    rt_add_act_backward_mt(%s, %s, %s, %s, %s, %d, %s, %d, (size_t)n * %ld, tp);\n",
                rt_act_cname(e->step->add_act), emit_f(e->step->add_alpha), e->y, e->dy, emit_dx(e), e->step->acc,
                e->dx2[0] ? e->dx2 : "NULL", e->step->acc2, sz);
        return;
    }
    if (e->dx[0]) fprintf(e->out, "    rt_grad_pass_mt(%s, %s, (size_t)n * %ld, %d, tp);\n", e->dy, e->dx, sz, e->step->acc);
    if (e->dx2[0]) fprintf(e->out, "    rt_grad_pass_mt(%s, %s, (size_t)n * %ld, %d, tp);\n", e->dy, e->dx2, sz, e->step->acc2);
}

static void add_standalone(const emit_ctx *e)
{
    fprintf(e->out, "    for (int k = 0; k < %ld; k++)\n        %s[k] = %s[k] + %s[k];\n", emit_size(e->net->nodes[e->i].L.out),
            e->y, e->in, e->in2);
    if (e->step->add_act_layer) /* the activation after it, which the plan fused */
        fprintf(e->out, "    for (int k = 0; k < %ld; k++)\n        %s[k] = act(%d, %s, %s[k]);\n",
                emit_size(e->net->nodes[e->i].L.out), e->y, (int)e->step->add_act, emit_f(e->step->add_alpha), e->y);
}

static void add_explain(const ir_net *net, const ir_node *n, cnn_diag *diag, rt_shape skip, const char *why)
{
    (void)net;
    (void)why;
    rt_shape x = n->L.in;
    if (strstr(n->text, "shortcut")) {
        diag_error(diag, n->loc, "make the shortcut give the body's shape, e.g. shortcut { conv 1x1 C stride=S } "
                   "with the body's channels C and stride S",
                   "residual body gives %dx%dx%d but its shortcut gives %dx%dx%d; output = body + shortcut needs "
                   "equal shapes", x.c, x.h, x.w, skip.c, skip.h, skip.w);
        return;
    }
    diag_error(diag, n->loc, "a residual body must keep the shape: use pad=same, stride 1 and "
               "the same number of channels as its input, or give it a shortcut { } that matches",
               "residual body turns %dx%dx%d into %dx%dx%d; output = input + body needs equal shapes",
               skip.c, skip.h, skip.w, x.c, x.h, x.w);
}

const cnn_op cnn_op_add = {
    .kind = RT_ADD,
    .explain = add_explain,
    .emit_forward = add_forward,
    .emit_backward = add_backward,
    .emit_standalone = add_standalone,
};

static void concat_forward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    fprintf(e->out, "    rt_concat_forward_mt(%s, %d, %s, %d, %d, %s, n, tp);\n", e->in, L->in.c, e->in2,
            L->out.c - L->in.c, L->in.h * L->in.w, e->y);
}

static void concat_backward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    fprintf(e->out, "    rt_concat_backward_mt(%s, %d, %d, %d, %s, %d, %s, %d, n, tp);\n", e->dy, L->in.c,
            L->out.c - L->in.c, L->in.h * L->in.w, emit_dx(e), e->step->acc, e->dx2[0] ? e->dx2 : "NULL", e->step->acc2);
}

static void concat_standalone(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    long a = emit_size(L->in), b = emit_size(L->out) - a;
    fprintf(e->out, "    memcpy(%s, %s, %ld * sizeof(float));\n    memcpy(%s + %ld, %s, %ld * sizeof(float));\n", e->y,
            e->in, a, e->y, a, e->in2, b);
}

static void concat_explain(const ir_net *net, const ir_node *n, cnn_diag *diag, rt_shape b, const char *why)
{
    (void)net;
    (void)why;
    rt_shape a = n->L.in;
    if (n->spec.out == 2)
        diag_error(diag, n->loc, "give the paths the same height and width: pad=same, and the same strides and poolings",
                   "concat: path 1 gives %dx%dx%d but path 2 gives %dx%dx%d; concatenation along the channels needs "
                   "equal height and width", a.c, a.h, a.w, b.c, b.h, b.w);
    else
        diag_error(diag, n->loc, "give the paths the same height and width: pad=same, and the same strides and poolings",
                   "concat: paths 1-%d give %dx%d maps but path %d gives %dx%dx%d; concatenation along the channels "
                   "needs equal height and width", n->spec.out - 1, a.h, a.w, n->spec.out, b.c, b.h, b.w);
}

const cnn_op cnn_op_concat = {
    .kind = RT_CONCAT,
    .explain = concat_explain,
    .emit_forward = concat_forward,
    .emit_backward = concat_backward,
    .emit_standalone = concat_standalone,
};
