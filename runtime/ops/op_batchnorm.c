/*
 * op_batchnorm.c - the registry entry of batch normalisation (BatchNorm2d over each channel's
 * n*h*w values, BatchNorm1d for vectors): gamma and beta are parameters, the running mean
 * and variance are state; the layer keeps the batch mean and 1/std for its backward. When the
 * plan fuses the activation after it, it runs that too (rt_batchnorm_act_*).
 */
#include "rt_op.h"

#include <stdio.h>

static int bn_shape(rt_layer *L, rt_shape in2, char *why)
{
    (void)in2;
    if (!(L->eps > 0.0f) || !(L->momentum >= 0.0f && L->momentum <= 1.0f)) {
        snprintf(why, RT_ERRLEN, "batchnorm needs eps > 0 and 0 <= momentum <= 1");
        return -1;
    }
    L->out = L->in;
    L->w_len = L->b_len = (size_t)L->in.c;
    L->s_len = 2 * (size_t)L->in.c;
    return 0;
}

static void bn_init(const rt_layer *L, float *params, float *state)
{
    size_t c = (size_t)L->in.c;
    for (size_t k = 0; params && k < c; k++) {
        params[L->w_off + k] = 1.0f;
        params[L->b_off + k] = 0.0f;
    }
    for (size_t k = 0; state && k < c; k++) {
        state[L->s_off + k] = 0.0f;
        state[L->s_off + c + k] = 1.0f;
    }
}

static double bn_flops(const rt_layer *L)
{
    return 2.0 * (double)rt_shape_size(L->in);
}

static size_t bn_aux(const rt_layer *L, const rt_step *s, int max_batch)
{
    (void)s;
    (void)max_batch;
    return 2 * (size_t)L->in.c;
}

/* The kernels return -1 when out of memory, which the caller reports as this layer's. */
static int bn_forward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    int c = L->in.c, hw = L->in.h * L->in.w;
    const float *gamma = a->P + L->w_off, *beta = a->P + L->b_off;
    float *run_mean = a->S + L->s_off, *run_var = a->S + L->s_off + c;
    if (a->step->bn_act_layer) /* the plan fused the activation after it */
        return rt_batchnorm_act_forward_mt(a->training, a->x, gamma, beta, run_mean, run_var,
                                           L->momentum, L->eps, a->y, a->aux, a->aux + c,
                                           a->step->bn_act, a->step->bn_alpha, a->n, c, hw,
                                           a->tp);
    if (a->training)
        return rt_batchnorm_forward_train_mt(a->x, gamma, beta, run_mean, run_var, L->momentum,
                                             L->eps, a->y, a->aux, a->aux + c, a->n, c, hw,
                                             a->tp);
    return rt_batchnorm_forward_eval_mt(a->x, gamma, beta, run_mean, run_var, L->eps, a->y,
                                        a->n, c, hw, a->tp);
}

static int bn_backward(const rt_op_args *a)
{
    const rt_layer *L = a->L;
    int c = L->in.c, hw = L->in.h * L->in.w;
    const float *gamma = a->P + L->w_off;
    const float *run_mean = a->S + L->s_off, *run_var = a->S + L->s_off + c;
    float *dgamma = a->G + L->w_off, *dbeta = a->G + L->b_off;
    if (a->step->bn_act_layer) /* dy is the activation's output gradient; y its output */
        return rt_batchnorm_act_backward_mt(a->training, a->x, gamma,
                                            a->training ? a->aux : run_mean, a->aux + c,
                                            run_var, L->eps, a->y, a->step->bn_act,
                                            a->step->bn_alpha, a->dy, a->dx, a->step->acc,
                                            dgamma, dbeta, a->n, c, hw, a->tp);
    if (a->training)
        return rt_batchnorm_backward_train_mt(a->x, gamma, a->aux, a->aux + c, a->dy, a->dx,
                                              a->step->acc, dgamma, dbeta, a->n, c, hw, a->tp);
    return rt_batchnorm_backward_eval_mt(a->x, gamma, run_mean, run_var, L->eps, a->dy, a->dx,
                                         a->step->acc, dgamma, dbeta, a->n, c, hw, a->tp);
}

const rt_op rt_op_batchnorm = {
    .flags = RT_OP_RUNNING_STATS,
    .shape = bn_shape,
    .init = bn_init,
    .flops = bn_flops,
    .aux_floats = bn_aux,
    .forward = bn_forward,
    .backward = bn_backward,
};
