/*
 * op_plumbing.c - the registry entries of the layers that move values without arithmetic
 * on them: the input, flatten (an alias of its input in the plan: no copy), dropout
 * (inverted; an alias of its input when not training), the residual add and the channel
 * concatenation of two branches.
 */
#include "rt_op.h"

#include <stdio.h>

static int input_shape(rt_layer *L, rt_shape in2, char *why)
{
    (void)in2;
    if (L->out.c < 1 || L->out.h < 1 || L->out.w < 1) {
        snprintf(why, RT_ERRLEN, "the input needs a size of at least 1x1x1");
        return -1;
    }
    L->in = L->out;
    L->w_len = L->b_len = L->s_len = 0;
    return 0;
}

const rt_op rt_op_input = {.shape = input_shape};

/* ------------------------------------------------------------------ flatten */

static int flatten_shape(rt_layer *L, rt_shape in2, char *why)
{
    (void)in2;
    (void)why;
    L->out = (rt_shape){(int)rt_shape_size(L->in), 1, 1};
    L->w_len = L->b_len = L->s_len = 0;
    return 0;
}

/* Run only where the plan could not alias (never, today): a copy. */
static int copy_forward(const rt_op_args *a)
{
    if (a->y != a->x)
        rt_copy_mt(a->x, a->y, (size_t)a->n * rt_shape_size(a->L->in), a->tp);
    return 0;
}

static int pass_backward(const rt_op_args *a)
{
    if (a->dx && !a->step->pass)
        rt_grad_pass_mt(a->dy, a->dx, (size_t)a->n * rt_shape_size(a->L->in), a->step->acc,
                        a->tp);
    return 0;
}

const rt_op rt_op_flatten = {
    .flags = RT_OP_FLAT_IN,
    .shape = flatten_shape,
    .forward = copy_forward,
    .backward = pass_backward,
};

/* ------------------------------------------------------------------ dropout */

static int same_shape_out(rt_layer *L, rt_shape in2, char *why)
{
    (void)in2;
    (void)why;
    L->out = L->in;
    L->w_len = L->b_len = L->s_len = 0;
    return 0;
}

static int dropout_shape(rt_layer *L, rt_shape in2, char *why)
{
    if (!(L->p >= 0.0f && L->p <= 1.0f)) {
        snprintf(why, RT_ERRLEN, "the dropout probability must be in [0, 1]");
        return -1;
    }
    return same_shape_out(L, in2, why);
}

static size_t dropout_aux(const rt_layer *L, const rt_step *s, int max_batch)
{
    (void)s;
    return L->p > 0.0f ? (size_t)max_batch * rt_shape_size(L->in) : 0;
}

static int dropout_forward(const rt_op_args *a)
{
    size_t n = (size_t)a->n * rt_shape_size(a->L->in);
    if (a->training && a->L->p > 0.0f) {
        rt_dropout_mask(a->aux, n, a->L->p, a->rng);
        rt_dropout_forward_mt(a->x, a->aux, a->y, n, a->tp);
        return 0;
    }
    return copy_forward(a);
}

static int dropout_backward(const rt_op_args *a)
{
    size_t n = (size_t)a->n * rt_shape_size(a->L->in);
    if (!a->dx || a->step->pass)
        return 0;
    if (a->training && a->L->p > 0.0f)
        rt_dropout_backward_mt(a->dy, a->aux, a->dx, n, a->step->acc, a->tp);
    else
        rt_grad_pass_mt(a->dy, a->dx, n, a->step->acc, a->tp);
    return 0;
}

const rt_op rt_op_dropout = {
    .shape = dropout_shape,
    .aux_floats = dropout_aux,
    .forward = dropout_forward,
    .backward = dropout_backward,
};

/* ------------------------------------------------------------------ add */

static int add_shape(rt_layer *L, rt_shape in2, char *why)
{
    if (!rt_same_shape(L->in, in2)) {
        snprintf(why, RT_ERRLEN, "the two inputs of an add must have one shape (%dx%dx%d "
                 "and %dx%dx%d)", L->in.c, L->in.h, L->in.w, in2.c, in2.h, in2.w);
        return -1;
    }
    return same_shape_out(L, in2, why);
}

static double add_flops(const rt_layer *L)
{
    return (double)rt_shape_size(L->out);
}

static int add_forward(const rt_op_args *a)
{
    size_t n = (size_t)a->n * rt_shape_size(a->L->out);
    if (a->step->add_act_layer) /* the plan fused the activation after it */
        rt_add_act_forward_mt(a->x, a->x2, a->step->add_act, a->step->add_alpha, a->y, n,
                              a->tp);
    else
        rt_add_forward_mt(a->x, a->x2, a->y, n, a->tp);
    return 0;
}

static int add_backward(const rt_op_args *a)
{
    size_t n = (size_t)a->n * rt_shape_size(a->L->out);
    if (a->step->add_act_layer) { /* dy: the activation's output gradient; y its output */
        rt_add_act_backward_mt(a->step->add_act, a->step->add_alpha, a->y, a->dy, a->dx,
                               a->step->acc, a->dx2, a->step->acc2, n, a->tp);
        return 0;
    }
    if (a->dx)
        rt_grad_pass_mt(a->dy, a->dx, n, a->step->acc, a->tp);
    if (a->dx2)
        rt_grad_pass_mt(a->dy, a->dx2, n, a->step->acc2, a->tp);
    return 0;
}

const rt_op rt_op_add = {
    .flags = RT_OP_TWO_IN,
    .shape = add_shape,
    .flops = add_flops,
    .forward = add_forward,
    .backward = add_backward,
};

/* ------------------------------------------------------------------ concat */

static int concat_shape(rt_layer *L, rt_shape in2, char *why)
{
    if (L->in.h != in2.h || L->in.w != in2.w) {
        snprintf(why, RT_ERRLEN, "concatenated maps must have one height and width (%dx%d "
                 "and %dx%d)", L->in.h, L->in.w, in2.h, in2.w);
        return -1;
    }
    L->out = (rt_shape){L->in.c + in2.c, L->in.h, L->in.w};
    L->w_len = L->b_len = L->s_len = 0;
    return 0;
}

static int concat_forward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    int hw = L->in.h * L->in.w;
    rt_concat_forward_mt(a->x, L->in.c, a->x2, L->out.c - L->in.c, hw, a->y, a->n, a->tp);
    return 0;
}

static int concat_backward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    int hw = L->in.h * L->in.w;
    rt_concat_backward_mt(a->dy, L->in.c, L->out.c - L->in.c, hw, a->dx, a->step->acc, a->dx2,
                          a->step->acc2, a->n, a->tp);
    return 0;
}

const rt_op rt_op_concat = {
    .flags = RT_OP_TWO_IN,
    .shape = concat_shape,
    .forward = concat_forward,
    .backward = concat_backward,
};
