/*
 * op_pool.c - the registry entries of pooling: max and average over windows (stride and
 * padding as for convolution; max never picks a padded cell, average counts zero padding),
 * and global max and average over the whole map. A max pooling over a relu applies the
 * relu's backward in its own pass when the plan says so (rt_step.pool_with_relu).
 */
#include "rt_op.h"

#include <stdio.h>

static int window_shape(rt_layer *L, rt_shape in2, char *why)
{
    (void)in2;
    if (L->kh < 1 || L->kw < 1 || L->sh < 1 || L->sw < 1 || L->pt < 0 || L->pb < 0 ||
        L->pl < 0 || L->pr < 0) {
        snprintf(why, RT_ERRLEN, "window and stride must be positive, padding not negative");
        return -1;
    }
    if (L->in.h + L->pt + L->pb < L->kh || L->in.w + L->pl + L->pr < L->kw) {
        snprintf(why, RT_ERRLEN, "the %dx%d window is larger than the padded %dx%d input",
                 L->kh, L->kw, L->in.h + L->pt + L->pb, L->in.w + L->pl + L->pr);
        return -1;
    }
    L->out.c = L->in.c;
    L->out.h = (L->in.h + L->pt + L->pb - L->kh) / L->sh + 1;
    L->out.w = (L->in.w + L->pl + L->pr - L->kw) / L->sw + 1;
    L->w_len = L->b_len = L->s_len = 0;
    return 0;
}

static double window_flops(const rt_layer *L)
{
    return (double)L->kh * L->kw * rt_shape_size(L->out);
}

static int maxpool_forward(const rt_op_args *a)
{
    rt_pool_geom g = rt_layer_pool_geom(a->L);
    rt_maxpool_forward(&g, a->x, a->y, a->n, a->tp);
    return 0;
}

static int maxpool_backward(const rt_op_args *a)
{
    rt_pool_geom g = rt_layer_pool_geom(a->L);
    if (!a->dx)
        return 0;
    if (a->step->pool_with_relu) /* the only reader of dx: acc is 0 */
        rt_maxpool_backward_relu(&g, a->x, a->dy, a->dx, a->n, a->tp);
    else
        rt_maxpool_backward(&g, a->x, a->dy, a->dx, a->step->acc, a->n, a->tp);
    return 0;
}

static int avgpool_forward(const rt_op_args *a)
{
    rt_pool_geom g = rt_layer_pool_geom(a->L);
    rt_avgpool_forward(&g, a->x, a->y, a->n, a->tp);
    return 0;
}

static int avgpool_backward(const rt_op_args *a)
{
    rt_pool_geom g = rt_layer_pool_geom(a->L);
    if (a->dx)
        rt_avgpool_backward(&g, a->dy, a->dx, a->step->acc, a->n, a->tp);
    return 0;
}

const rt_op rt_op_maxpool = {
    .flags = RT_OP_WINDOW,
    .shape = window_shape,
    .flops = window_flops,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
};

const rt_op rt_op_avgpool = {
    .flags = RT_OP_WINDOW,
    .shape = window_shape,
    .flops = window_flops,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};

/* ------------------------------------------------------------------ global pooling */

static int global_shape(rt_layer *L, rt_shape in2, char *why)
{
    (void)in2;
    (void)why;
    L->out = (rt_shape){L->in.c, 1, 1};
    L->w_len = L->b_len = L->s_len = 0;
    return 0;
}

static double global_flops(const rt_layer *L)
{
    return (double)rt_shape_size(L->in);
}

static int gap_forward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    rt_globalavgpool_forward(a->x, a->y, a->n, L->in.c, L->in.h * L->in.w);
    return 0;
}

static int gap_backward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    if (a->dx)
        rt_globalavgpool_backward(a->dy, a->dx, a->step->acc, a->n, L->in.c, L->in.h * L->in.w);
    return 0;
}

static int gmp_forward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    rt_globalmaxpool_forward(a->x, a->y, a->n, L->in.c, L->in.h * L->in.w);
    return 0;
}

static int gmp_backward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    if (a->dx)
        rt_globalmaxpool_backward(a->x, a->dy, a->dx, a->step->acc, a->n, L->in.c,
                                  L->in.h * L->in.w);
    return 0;
}

const rt_op rt_op_globalavgpool = {
    .shape = global_shape,
    .flops = global_flops,
    .forward = gap_forward,
    .backward = gap_backward,
};

const rt_op rt_op_globalmaxpool = {
    .shape = global_shape,
    .flops = global_flops,
    .forward = gmp_forward,
    .backward = gmp_backward,
};
