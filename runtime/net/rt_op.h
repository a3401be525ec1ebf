/*
 * rt_op.h - the op registry: one entry per layer kind (rt_kind) holding everything the
 * runtime knows of it, as KANN's kad_op_list does: its checks, its output shape and
 * parameter layout, fan-in for initialisation, FLOPs, the extra memory it keeps, forward and
 * backward. The interpreter, initialisation, the structure hash, --bench and the compiler's
 * shape inference all read these entries; nothing outside ops/ switches on the kind.
 */
#ifndef RT_OP_H
#define RT_OP_H

#include "rt_kernels.h"
#include "rt_plan.h"

/* What the parts of the runtime that are not the op itself need to know of a kind. */
enum {
    RT_OP_ACT = 1 << 0,        /* applies L->act after its computation (conv, dense) */
    RT_OP_FLAT_IN = 1 << 1,    /* reads its input as a vector: in may differ from the
                                  source's output in shape, not in size (dense, flatten) */
    RT_OP_TWO_IN = 1 << 2,     /* reads src2 as well (add, concat) */
    RT_OP_WINDOW = 1 << 3,     /* kh, kw, sh, sw and the padding mean something */
    RT_OP_CONV = 1 << 4,       /* padmode, flip, dilation and groups mean something */
    RT_OP_BIAS = 1 << 5,       /* L->bias means something */
    RT_OP_IS_ACT = 1 << 6,     /* L->act is what the layer computes (activation layers) */
    RT_OP_RUNNING_STATS = 1 << 7, /* its state is a running mean then a running variance, one
                                     per channel (batchnorm); weights files name them so */
};

/* Everything a forward or backward of one layer reads and writes, for n images. */
typedef struct {
    const rt_layer *L;
    const rt_step *step;       /* the plan's decisions for this layer (fusions, accumulate) */
    const float *x, *x2;       /* outputs of src (and src2) */
    float *y;                  /* this layer's output */
    float *dy;                 /* backward: d(loss)/d(y); a layer may use it as scratch */
    float *dx, *dx2;           /* backward: gradients of x and x2, NULL when not needed */
    float *P, *G, *S;          /* parameters, their gradients, state (running statistics) */
    float *aux;                /* the layer's own memory of aux_floats (masks, statistics) */
    rt_rng *rng;               /* dropout draws */
    int n, training;           /* images; forward: training mode; backward: the forward's */
    const rt_layer *fold;      /* forward in inference (RT_INFER): the batchnorm the plan
                                  folds into this layer (step->bn_fold), else NULL */
    const rt_layer *pool;      /* the pooling this conv runs too: forward (step->pool_layer)
                                  and backward (step->pool_bwd); else NULL */
    float *pool_y;             /* forward: that pooling's output */
    const float *pool_dy;      /* backward: that pooling's output gradient */
    int infer;                 /* forward: inference only (RT_INFER), no backward follows */
    const float *res;          /* forward in inference: the other summand of the residual
                                  add this conv computes too (step->res_add), else NULL */
    rt_threads *tp;
} rt_op_args;

typedef struct {
    unsigned flags;
    /* From L->in (and in2, the output of src2, for RT_OP_TWO_IN) and the hyper-parameters,
     * sets L->out and the parameter and state lengths (w_len, b_len, s_len). Returns 0, or
     * -1 with a message in why (RT_ERRLEN) when the hyper-parameters cannot apply. The
     * compiler's shape inference and the interpreter's check of a description both use it,
     * so the two cannot disagree. */
    int (*shape)(rt_layer *L, rt_shape in2, char *why);
    /* Inputs of one weight (for the uniform +-1/sqrt(fan_in) initialisation); NULL: the
     * layer has no uniformly initialised parameters. */
    size_t (*fan_in)(const rt_layer *L);
    /* The shape of the weights tensor as weights files record it (PyTorch's): fills dims
     * and returns their number; NULL: one dimension of w_len. */
    int (*weight_dims)(const rt_layer *L, size_t dims[4]);
    /* Sets non-random initial values (batchnorm's gamma 1, beta 0, running variance 1);
     * params and state may each be NULL. */
    void (*init)(const rt_layer *L, float *params, float *state);
    /* Forward FLOPs of one image beyond the bias and activation, which the caller adds
     * (the rule is in cnnrt.h at rt_layer_flops_of). */
    double (*flops)(const rt_layer *L);
    /* Floats of aux memory for batches of max_batch under the plan's step s, and bytes of
     * worker scratch. */
    size_t (*aux_floats)(const rt_layer *L, const rt_step *s, int max_batch);
    size_t (*scratch)(const rt_layer *L);
    int (*forward)(const rt_op_args *a);  /* 0, or -1 when out of memory */
    int (*backward)(const rt_op_args *a); /* 0, or -1 when out of memory */
} rt_op;

/* The entry of kind k (NULL for RT_NKINDS and beyond). */
const rt_op *rt_op_of(rt_kind k);

/* Shared by the entries (ops/op_common.c). */
size_t rt_shape_size(rt_shape s);
int rt_same_shape(rt_shape a, rt_shape b);
/* The geometry structs the kernels take, from a layer. */
rt_conv_geom rt_layer_conv_geom(const rt_layer *L);
rt_pool_geom rt_layer_pool_geom(const rt_layer *L);
/* The activation a layer runs: softmax is left to the loss. */
rt_act rt_layer_act(const rt_layer *L);

extern const rt_op rt_op_input, rt_op_conv, rt_op_maxpool, rt_op_avgpool,
    rt_op_globalavgpool, rt_op_globalmaxpool, rt_op_flatten, rt_op_dropout, rt_op_dense,
    rt_op_batchnorm, rt_op_activation, rt_op_add, rt_op_concat;

#endif
