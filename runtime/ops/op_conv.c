/*
 * op_conv.c - the registry entry of 2-D convolution: output size by the lecture's rule
 * floor((n - k + p + s) / s) with the dilated extent d*(k-1)+1 in place of k, weights
 * [out_c][in_c / groups][kh][kw], bias [out_c], fused activation (its backward runs here
 * on the gradient in place, unless the plan gave it to the max pooling that follows); in
 * inference, the batchnorm after it folded into its weights, and the residual add after
 * them computed in its epilogue, when the plan says so; the pooling after it run with it,
 * image run by image run, when the plan says so.
 */
#include "rt_op.h"

#include <stdio.h>

static int conv_shape(rt_layer *L, rt_shape in2, char *why)
{
    (void)in2;
    rt_conv_geom g = rt_layer_conv_geom(L);
    int ext_h = g.dh * (L->kh - 1) + 1, ext_w = g.dw * (L->kw - 1) + 1;
    if (L->out.c < 1 || L->kh < 1 || L->kw < 1 || L->sh < 1 || L->sw < 1 || L->dh < 0 ||
        L->dw < 0 || L->groups < 0 || L->pt < 0 || L->pb < 0 || L->pl < 0 || L->pr < 0) {
        snprintf(why, RT_ERRLEN, "channels, kernel, stride and dilation must be positive, "
                 "padding not negative");
        return -1;
    }
    if (L->in.c % g.groups || L->out.c % g.groups) {
        snprintf(why, RT_ERRLEN, "groups=%d must divide the input channels (%d) and the "
                 "output channels (%d)", g.groups, L->in.c, L->out.c);
        return -1;
    }
    if (L->in.h + L->pt + L->pb < ext_h || L->in.w + L->pl + L->pr < ext_w) {
        snprintf(why, RT_ERRLEN, "the %dx%d window (dilated extent) is larger than the "
                 "padded %dx%d input", ext_h, ext_w, L->in.h + L->pt + L->pb,
                 L->in.w + L->pl + L->pr);
        return -1;
    }
    L->out.h = (L->in.h + L->pt + L->pb - ext_h) / L->sh + 1;
    L->out.w = (L->in.w + L->pl + L->pr - ext_w) / L->sw + 1;
    L->w_len = (size_t)L->out.c * (L->in.c / g.groups) * L->kh * L->kw;
    L->b_len = L->bias ? (size_t)L->out.c : 0;
    L->s_len = 0;
    g = rt_layer_conv_geom(L);
    return rt_conv_geom_check(&g, why);
}

static size_t conv_fan_in(const rt_layer *L)
{
    int groups = L->groups > 0 ? L->groups : 1;
    return (size_t)(L->in.c / groups) * L->kh * L->kw;
}

static int conv_weight_dims(const rt_layer *L, size_t dims[4])
{
    int groups = L->groups > 0 ? L->groups : 1;
    dims[0] = (size_t)L->out.c;
    dims[1] = (size_t)(L->in.c / groups);
    dims[2] = (size_t)L->kh;
    dims[3] = (size_t)L->kw;
    return 4;
}

static double conv_flops(const rt_layer *L)
{
    return 2.0 * (double)conv_fan_in(L) * rt_shape_size(L->out);
}

static size_t conv_scratch(const rt_layer *L)
{
    rt_conv_geom g = rt_layer_conv_geom(L);
    return rt_conv2d_scratch_size(&g);
}

/* With a batchnorm folded in (inference), the folded weights and bias. */
static size_t conv_aux(const rt_layer *L, const rt_step *s, int max_batch)
{
    (void)max_batch;
    return s && s->bn_fold ? L->w_len + (size_t)L->out.c : 0;
}

static int conv_forward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    rt_conv_geom g = rt_layer_conv_geom(L);
    if (a->fold) { /* inference: conv, then the batchnorm after it, as one conv */
        const rt_layer *B = a->fold;
        float *wf = a->aux, *bf = a->aux + L->w_len;
        rt_batchnorm_fold(a->P + L->w_off, L->bias ? a->P + L->b_off : NULL, L->out.c,
                          L->w_len / (size_t)L->out.c, a->P + B->w_off, a->P + B->b_off,
                          a->S + B->s_off, a->S + B->s_off + L->out.c, B->eps, wf, bf);
        /* and the residual add after the batchnorm, if any (fold_act is then none) */
        return rt_conv2d_forward_res(&g, a->x, wf, bf, a->res,
                                     a->res ? a->step->res_act : a->step->fold_act,
                                     a->res ? a->step->res_alpha : a->step->fold_alpha, a->y,
                                     a->n, a->tp);
    }
    if (a->res) /* inference: and the residual add after it (it has no activation) */
        return rt_conv2d_forward_res(&g, a->x, a->P + L->w_off,
                                     L->bias ? a->P + L->b_off : NULL, a->res,
                                     a->step->res_act, a->step->res_alpha, a->y, a->n, a->tp);
    if (a->pool) { /* and the pooling after it, run of images by run of images */
        rt_pool_geom pg = rt_layer_pool_geom(a->pool);
        return rt_conv2d_forward_pool(&g, a->x, a->P + L->w_off,
                                      L->bias ? a->P + L->b_off : NULL, rt_layer_act(L),
                                      L->alpha, a->y, !a->infer, a->n, &pg,
                                      a->pool->kind == RT_AVGPOOL, a->pool_y, a->tp);
    }
    return rt_conv2d_forward(&g, a->x, a->P + L->w_off, L->bias ? a->P + L->b_off : NULL,
                             rt_layer_act(L), L->alpha, a->y, a->n, a->tp);
}

static int conv_backward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    rt_conv_geom g = rt_layer_conv_geom(L);
    if (a->step->pool_bwd) { /* and the max pooling's (with the relu's) before its own */
        rt_pool_geom pg = rt_layer_pool_geom(a->pool);
        return rt_conv2d_backward_pool(&g, a->x, a->P + L->w_off, &pg, a->y, a->pool_dy, a->dy,
                                       a->G + L->w_off, L->bias ? a->G + L->b_off : NULL, a->n,
                                       a->tp);
    }
    if (rt_layer_act(L) != RT_ACT_NONE && !a->step->relu_by_pool)
        rt_act_backward_mt(rt_layer_act(L), L->alpha, a->y, a->dy, a->dy,
                           (size_t)a->n * rt_shape_size(L->out), 0, a->tp);
    return rt_conv2d_backward(&g, a->x, a->P + L->w_off, a->dy, a->dx, a->step->acc,
                              a->G + L->w_off, L->bias ? a->G + L->b_off : NULL, a->n, a->tp);
}

const rt_op rt_op_conv = {
    .flags = RT_OP_ACT | RT_OP_WINDOW | RT_OP_CONV | RT_OP_BIAS,
    .shape = conv_shape,
    .fan_in = conv_fan_in,
    .weight_dims = conv_weight_dims,
    .flops = conv_flops,
    .scratch = conv_scratch,
    .aux_floats = conv_aux,
    .forward = conv_forward,
    .backward = conv_backward,
};
