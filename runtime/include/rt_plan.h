/*
 * rt_plan.h - the execution plan: built once from a network description, it holds every
 * decision about running the network that is not arithmetic: the order of the layers, which
 * buffer holds each output and each gradient (flatten and eval-mode dropout alias their
 * input and copy nothing), which gradient writes add and which overwrite, which layers get
 * no gradient, and every fusion (a max pooling that applies its source's relu backward; a
 * batchnorm that runs the activation after it, forward and backward; a conv that runs the
 * pooling after it image run by image run; in inference, a batchnorm folded into the conv
 * before it, and a residual add run by the conv that ends its body).
 * The interpreter runs the plan; cnnc prints the same plan as C (and with --plan, as text),
 * so the two cannot decide differently. A later lowering stage can rewrite a plan.
 */
#ifndef RT_PLAN_H
#define RT_PLAN_H

#include <stdio.h>

#include "cnnrt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    RT_ALIAS_NONE,   /* the layer writes its own buffer */
    RT_ALIAS_ALWAYS, /* its output is its input's buffer (flatten; dropout with p = 0) */
    RT_ALIAS_EVAL,   /* its input's buffer in evaluation mode, its own while training
                        (dropout) */
    RT_ALIAS_INFER   /* its input's buffer in inference (RT_INFER), its own otherwise: a
                        batchnorm folded into the conv before it, or a residual add that
                        conv (or the one before it) computes (rt_step.res_add) */
} rt_alias;

/* One layer's step. Buffers are named by the layer that owns them: layer i's storage is
 * buffer i; an aliased output names its input's buffer. */
typedef struct {
    int layer;              /* index in the description */
    rt_alias alias;         /* forward: where the output lives */
    int ybuf;               /* buffer of the output (its own, or the one it aliases always;
                               for RT_ALIAS_EVAL its own, the training-mode buffer) */
    /* backward */
    int grad;               /* 1: a gradient reaches this layer's output; 0: its parameter
                               gradients are zeroed and nothing else runs */
    int dybuf;              /* gradient buffer of the output */
    int pass;               /* 1: the gradient needs no work (its buffer is its input's) */
    int dxbuf, dx2buf;      /* gradient buffers of src and src2; -1: none needed (the
                               network's input) */
    int acc, acc2;          /* 1: add into dxbuf (dx2buf), 0: overwrite it */
    int relu_by_pool;       /* this conv or dense layer skips its relu backward: the max
                               pooling that reads it does it */
    int pool_with_relu;     /* this max pooling applies its source's relu backward too */
    int bn_act_layer;       /* a batchnorm: the activation layer (its only reader, computed
                               from its output) whose forward and backward it runs in the
                               same pass; 0: none */
    rt_act bn_act;          /* its activation and slope (RT_ACT_NONE when none) */
    float bn_alpha;
    int act_fused;          /* that activation layer (or an add's, below): an alias of the
                               batchnorm's (add's) output (always) and a pure pass backward:
                               nothing left to do */
    int add_act_layer;      /* an add: the activation layer (its only reader, computed from
                               its output) that it runs in the same pass, forward (y =
                               act(a + b)) and backward; 0: none */
    rt_act add_act;
    float add_alpha;
    int bn_fold;            /* a conv: the batchnorm (its only reader) whose evaluation-mode
                               transform it applies itself in inference (RT_INFER), through
                               weights and bias folded with rt_batchnorm_fold, then the
                               batchnorm's fused activation (fold_act); 0: none. That
                               batchnorm is then RT_ALIAS_INFER */
    rt_act fold_act;
    float fold_alpha;
    int res_add;            /* a conv with no activation: the residual add that reads it
                               (or reads the batchnorm folded into it, with no activation)
                               as its only reader, whose other input an earlier layer makes;
                               in inference the conv computes that add's output itself, y =
                               act(conv + the other input) with the add's fused activation
                               (res_act: none, relu or leaky relu), in the tiles' epilogue
                               where it can, else in a pass after the conv
                               (rt_conv2d_forward_res); the add is then
                               RT_ALIAS_INFER. 0: none */
    rt_act res_act;
    float res_alpha;
    int pool_layer;         /* a conv: the pooling over windows (max or average: its only
                               reader) whose forward it runs too, run of images by run of
                               images while its output is in cache (rt_conv2d_forward_pool),
                               in every mode; 0: none */
    int pool_by_src;        /* that pooling: its output (its own buffer) is written by the
                               conv, its forward does nothing; backward as usual (but see
                               pool_bwd) */
    int pool_bwd;           /* a conv reading the network's input (no dx) whose pool_layer
                               is a max pooling with its relu backward (pool_with_relu):
                               it runs that pooling's backward too, from the pooling's
                               output gradient (rt_conv2d_backward_pool); 0: none */
    int bwd_by_src;         /* that pooling: its backward is done by the conv */
} rt_step;

typedef struct {
    int nsteps;             /* = nlayers - 1: every layer but the input, in order */
    rt_step *steps;         /* steps[k] runs layer k + 1 */
    int nlayers;
    int *own;               /* per layer: 1 when it needs an output buffer of its own */
    int *own_grad;          /* per layer: 1 when it needs a gradient buffer of its own */
} rt_plan;

/* Builds the plan of a description that rt_netdesc_check accepts. Returns 0, or -1 with a
 * message in err (out of memory). */
int rt_plan_build(const rt_netdesc *d, rt_plan *p, char *err);
void rt_plan_free(rt_plan *p);
/* Drops the inference folds of a built plan (rt_step.bn_fold, res_add, RT_ALIAS_INFER) and
 * the conv + pooling runs (pool_layer), for a back end that runs every layer itself (the
 * standalone file). */
void rt_plan_unfold(rt_plan *p);
/* The step of layer i (1 <= i < nlayers). */
const rt_step *rt_plan_step(const rt_plan *p, int i);
/* The plan as text, one line per step forward and per step backward (cnnc --plan). */
void rt_plan_print(const rt_plan *p, const rt_netdesc *d, FILE *f);

/* Checks that a description is consistent (sources, shapes, hyper-parameters, parameter
 * ranges) by the op registry's rules. Returns 0, or -1 with a message in err. */
int rt_netdesc_check(const rt_netdesc *d, char *err);
/* Output shape and parameter lengths of L from L->in (and the output shape of src2) by its
 * kind's rule; the compiler's shape inference calls it. Returns 0, or -1 with why set. */
int rt_layer_shape(rt_layer *L, rt_shape in2, char *why);

#ifdef __cplusplus
}
#endif
#endif
