/*
 * op_dense.c - the registry entry of the fully connected layer: it reads its input as a
 * vector in flatten order, weights [out][in], bias [out], fused activation (its backward
 * runs here in place, unless the plan gave it to a max pooling that follows).
 */
#include "rt_op.h"

#include <stdio.h>

static int dense_shape(rt_layer *L, rt_shape in2, char *why)
{
    (void)in2;
    if (L->out.c < 1) {
        snprintf(why, RT_ERRLEN, "a dense layer needs at least one unit");
        return -1;
    }
    L->out.h = L->out.w = 1;
    L->w_len = (size_t)L->out.c * rt_shape_size(L->in);
    L->b_len = L->bias ? (size_t)L->out.c : 0;
    L->s_len = 0;
    return 0;
}

static size_t dense_fan_in(const rt_layer *L)
{
    return rt_shape_size(L->in);
}

static int dense_weight_dims(const rt_layer *L, size_t dims[4])
{
    dims[0] = rt_shape_size(L->out);
    dims[1] = rt_shape_size(L->in);
    return 2;
}

static double dense_flops(const rt_layer *L)
{
    return 2.0 * (double)rt_shape_size(L->in) * rt_shape_size(L->out);
}

static size_t dense_scratch(const rt_layer *L)
{
    (void)L;
    return rt_sgemm_ws_size();
}

static int dense_forward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    return rt_dense_forward(a->x, a->P + L->w_off, L->bias ? a->P + L->b_off : NULL,
                            rt_layer_act(L), L->alpha, a->y, a->n, (int)rt_shape_size(L->in),
                            (int)rt_shape_size(L->out), a->tp);
}

static int dense_backward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    if (rt_layer_act(L) != RT_ACT_NONE && !a->step->relu_by_pool)
        rt_act_backward_mt(rt_layer_act(L), L->alpha, a->y, a->dy, a->dy,
                           (size_t)a->n * rt_shape_size(L->out), 0, a->tp);
    return rt_dense_backward(a->x, a->P + L->w_off, a->dy, a->dx, a->step->acc,
                             a->G + L->w_off, L->bias ? a->G + L->b_off : NULL, a->n,
                             (int)rt_shape_size(L->in), (int)rt_shape_size(L->out), a->tp);
}

const rt_op rt_op_dense = {
    .flags = RT_OP_ACT | RT_OP_FLAT_IN | RT_OP_BIAS,
    .shape = dense_shape,
    .fan_in = dense_fan_in,
    .weight_dims = dense_weight_dims,
    .flops = dense_flops,
    .scratch = dense_scratch,
    .forward = dense_forward,
    .backward = dense_backward,
};
