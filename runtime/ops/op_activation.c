/*
 * op_activation.c - the registry entry of a stand-alone activation layer (relu, leaky relu,
 * sigmoid, tanh, relu6, silu, gelu, elu; softmax on the last layer is left to the loss).
 * Its backward reads the output, and the input too for silu and gelu.
 */
#include "rt_op.h"

#include <stdio.h>

static int act_shape(rt_layer *L, rt_shape in2, char *why)
{
    (void)in2;
    (void)why;
    L->out = L->in;
    L->w_len = L->b_len = L->s_len = 0;
    return 0;
}

static double act_flops(const rt_layer *L)
{
    return (double)rt_shape_size(L->in);
}

static int act_forward(const rt_op_args *a)
{
    rt_act_forward_mt(rt_layer_act(a->L), a->L->alpha, a->x, a->y,
                      (size_t)a->n * rt_shape_size(a->L->out), a->tp);
    return 0;
}

static int act_backward(const rt_op_args *a)
{
    if (a->dx)
        rt_act_backward_xy_mt(rt_layer_act(a->L), a->L->alpha, a->x, a->y, a->dy, a->dx,
                              (size_t)a->n * rt_shape_size(a->L->out), a->step->acc, a->tp);
    return 0;
}

const rt_op rt_op_activation = {
    .flags = RT_OP_IS_ACT,
    .shape = act_shape,
    .flops = act_flops,
    .forward = act_forward,
    .backward = act_backward,
};
