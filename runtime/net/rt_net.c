/*
 * rt_net.c - the interpreter: runs the execution plan of any rt_netdesc (rt_plan.h) with the
 * op registry's forward and backward (rt_op.h), shapes taken at run time.
 *
 * rt_net_create checks the description, builds the plan, allocates the buffers the plan asks
 * for (an output and a gradient buffer per layer that owns one, for max_batch images, laid
 * out in one arena by the training memory plan of rt_memplan.c, which reuses the place of
 * outputs already used up for gradients; an inference-only forward lays its outputs out in
 * the same arena by the inference plan, where each takes the place of one no longer read),
 * each op's own memory, the parameter/gradient/state arrays and every worker's scratch up front
 * (so running cannot run out of memory), and returns an rt_model. Nothing here knows a
 * layer kind: what a kind does lives in its registry entry, what runs when in the plan.
 */
#include "rt_op.h"
#include "rt_memplan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    rt_model m;              /* m.self points back here */
    const rt_netdesc *d;
    rt_plan plan;
    rt_threads *tp;
    int max_batch;
    float *arena;            /* every output and gradient buffer (rt_memplan_train) */
    float *xnorm;            /* the normalised input, when the input layer normalises */
    float **store, **gstore; /* per layer: its own output and gradient storage, or NULL */
    float **istore;          /* per layer: its output's storage in RT_INFER, laid out by the
                              * inference plan in the same arena (nothing is kept for a
                              * backward there, so outputs share places): or NULL */
    float **aux;             /* per layer: its op's own memory, or NULL */
    const float **y;         /* per layer: where its output is in the current mode */
    rt_rng drop;
    int last_n, last_training, last_infer;
    int params_in_order;     /* each layer's parameters lie above all earlier layers' */
} rt_net;

static int fail(char *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, RT_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The arguments of layer i's op, for n images in the given mode. */
static rt_op_args op_args(rt_net *net, int i, int n, int training)
{
    const rt_layer *L = &net->d->layers[i];
    const rt_step *s = rt_plan_step(&net->plan, i);
    rt_op_args a = {.L = L, .step = s, .x = net->y[L->src],
                    .x2 = L->src2 >= 0 ? net->y[L->src2] : NULL,
                    .y = net->store[i] ? net->store[i] : (float *)net->y[i],
                    .dy = net->gstore[s->dybuf],
                    .dx = s->dxbuf >= 0 ? net->gstore[s->dxbuf] : NULL,
                    .dx2 = s->dx2buf >= 0 ? net->gstore[s->dx2buf] : NULL,
                    .P = net->m.params, .G = net->m.grads, .S = net->m.state,
                    .aux = net->aux[i], .rng = &net->drop, .n = n, .training = training,
                    .tp = net->tp};
    return a;
}

/* ------------------------------------------------------------------ forward */

static int net_forward(void *self, const float *x, int n, int mode, float *logits)
{
    rt_net *net = self;
    const rt_netdesc *d = net->d;
    const int training = mode == RT_TRAIN, infer = mode == RT_INFER;
    if (n < 1 || n > net->max_batch) {
        net->last_n = 0;
        return fail(net->m.err, "batch of %d images, the model takes 1 to %d", n,
                    net->max_batch);
    }
    net->y[0] = x;
    if (d->layers[0].norm) { /* the pixels normalised as the input layer says */
        rt_input_normalize(&d->layers[0], x, net->xnorm, n);
        net->y[0] = net->xnorm;
    }
    for (int k = 0; k < net->plan.nsteps; k++) {
        const rt_step *s = &net->plan.steps[k];
        int i = s->layer;
        const rt_layer *L = &d->layers[i];
        int alias = s->alias == RT_ALIAS_ALWAYS || (s->alias == RT_ALIAS_EVAL && !training) ||
                    (s->alias == RT_ALIAS_INFER && infer);
        net->y[i] = alias ? net->y[L->src] : infer ? net->istore[i] : net->store[i];
        if (alias || s->pool_by_src) /* (a pooling the conv before it has computed) */
            continue;
        rt_op_args a = op_args(net, i, n, training);
        a.infer = infer;
        if (infer)
            a.y = net->istore[i];
        if (infer && s->bn_fold)
            a.fold = &d->layers[s->bn_fold];
        if (infer && s->res_add)
            a.res = net->y[d->layers[s->res_add].src2];
        if (s->pool_layer) {
            a.pool = &d->layers[s->pool_layer];
            a.pool_y = infer ? net->istore[s->pool_layer] : net->store[s->pool_layer];
        }
        if (rt_op_of(L->kind)->forward(&a) != 0) {
            net->last_n = 0;
            return fail(net->m.err, "layer %d (%s, line %d): out of memory", i,
                        rt_kind_name(L->kind), L->line);
        }
    }
    int last = d->nlayers - 1;
    memcpy(logits, net->y[last], (size_t)n * rt_shape_size(d->layers[last].out) *
           sizeof *logits);
    net->last_n = n;
    net->last_training = training;
    net->last_infer = infer;
    return 0;
}

/* ------------------------------------------------------------------ backward */

static void poison(rt_net *net)
{
    for (size_t k = 0; k < net->m.nparams; k++)
        net->m.grads[k] = NAN;
}

static int net_backward(void *self, const float *dlogits, int n)
{
    rt_net *net = self;
    const rt_netdesc *d = net->d;
    float *G = net->m.grads;
    int last = d->nlayers - 1;
    if (n != net->last_n || n < 1) {
        fail(net->m.err, "backward over %d images does not follow a forward over them", n);
        poison(net);
        return -1;
    }
    if (net->last_infer) { /* folded layers kept no intermediate outputs */
        fail(net->m.err, "backward after an inference-only forward (RT_INFER): run the "
             "forward in RT_EVAL or RT_TRAIN mode");
        poison(net);
        return -1;
    }
    memcpy(net->gstore[rt_plan_step(&net->plan, last)->dybuf], dlogits,
           (size_t)n * rt_shape_size(d->layers[last].out) * sizeof *dlogits);
    for (int k = net->plan.nsteps - 1; k >= 0; k--) {
        const rt_step *s = &net->plan.steps[k];
        int i = s->layer;
        const rt_layer *L = &d->layers[i];
        if (!s->grad) {
            if (L->w_len)
                memset(G + L->w_off, 0, L->w_len * sizeof *G);
            if (L->b_len)
                memset(G + L->b_off, 0, L->b_len * sizeof *G);
        } else if (!s->pass && !s->bwd_by_src) { /* (a pooling the conv before it does) */
            rt_op_args a = op_args(net, i, n, net->last_training);
            if (s->pool_bwd) {
                a.pool = &d->layers[s->pool_bwd];
                a.pool_dy = net->gstore[rt_plan_step(&net->plan, s->pool_bwd)->dybuf];
            }
            if (rt_op_of(L->kind)->backward(&a) != 0) {
                fail(net->m.err, "layer %d (%s, line %d): out of memory in backward", i,
                     rt_kind_name(L->kind), L->line);
                poison(net);
                return -1;
            }
        }
        /* this layer's gradients are final, and with them everything above them */
        if (net->m.grads_ready && net->params_in_order && (L->w_len || L->b_len))
            net->m.grads_ready(net->m.grads_ready_ctx, L->w_len ? L->w_off : L->b_off);
    }
    return 0;
}

/* 1 when every layer's weights and bias lie above all earlier layers' (the compiler lays
 * them out so), which lets backward report finished gradients as one range from the top. */
static int params_in_order(const rt_netdesc *d)
{
    size_t end = 0;
    for (int i = 0; i < d->nlayers; i++) {
        const rt_layer *L = &d->layers[i];
        if (L->w_len && (L->w_off < end || (L->b_len && L->b_off < L->w_off + L->w_len)))
            return 0;
        if (L->w_len)
            end = L->w_off + L->w_len;
        if (L->b_len && L->b_off < end)
            return 0;
        if (L->b_len)
            end = L->b_off + L->b_len;
    }
    return 1;
}

/* ------------------------------------------------------------------ life cycle */

static void net_seed_dropout(void *self, uint64_t seed)
{
    rt_net *net = self;
    rt_rng_seed(&net->drop, seed ^ RT_DROPOUT_SEED_MIX);
}

static void net_destroy(void *self)
{
    rt_net *net = self;
    if (!net)
        return;
    for (int i = 0; i < net->plan.nlayers; i++)
        if (net->aux)
            free(net->aux[i]);
    free(net->arena);
    free(net->xnorm);
    free(net->store);
    free(net->istore);
    free(net->gstore);
    free(net->aux);
    free(net->y);
    rt_plan_free(&net->plan);
    free(net->m.params);
    free(net->m.grads);
    free(net->m.state);
    rt_threads_destroy(net->tp);
    free(net);
}

/* Every array starts on a 64-byte line, as the compiled programs' static buffers do, so
 * that vector loads and the workers' 16-float ranges never straddle two lines. */
static float *falloc(size_t n)
{
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes);
}

rt_model *rt_net_create(const rt_netdesc *d, int max_batch, int threads, char *err)
{
    if (rt_netdesc_check(d, err) != 0)
        return NULL;
    if (max_batch < 1) {
        fail(err, "max_batch must be at least 1 (got %d)", max_batch);
        return NULL;
    }
    rt_net *net = calloc(1, sizeof *net);
    if (!net) {
        fail(err, "out of memory");
        return NULL;
    }
    if (rt_plan_build(d, &net->plan, err) != 0) {
        free(net);
        return NULL;
    }
    int nl = d->nlayers;
    net->d = d;
    net->max_batch = max_batch;
    net->store = calloc((size_t)nl, sizeof *net->store);
    net->istore = calloc((size_t)nl, sizeof *net->istore);
    net->gstore = calloc((size_t)nl, sizeof *net->gstore);
    net->aux = calloc((size_t)nl, sizeof *net->aux);
    net->y = calloc((size_t)nl, sizeof *net->y);
    net->m.params = falloc(d->nparams);
    net->m.grads = calloc(d->nparams ? d->nparams : 1, sizeof(float));
    net->m.state = falloc(d->nstate);
    int ok = net->store && net->istore && net->gstore && net->aux && net->y && net->m.params &&
             net->m.grads && net->m.state;
    rt_memplan mp = {0};
    if (ok && rt_memplan_train(d, &net->plan, &mp, err) != 0) {
        net_destroy(net);
        return NULL;
    }
    ok = ok && (net->arena = falloc((size_t)max_batch * (size_t)mp.total));
    if (d->layers[0].norm)
        ok = ok && (net->xnorm = falloc((size_t)max_batch * rt_shape_size(d->layers[0].out)));
    size_t scratch = 0;
    for (int i = 1; ok && i < nl; i++) {
        const rt_layer *L = &d->layers[i];
        const rt_op *op = rt_op_of(L->kind);
        if (net->plan.own[i])
            net->store[i] = net->arena + (size_t)max_batch * (size_t)mp.out_off[i];
        if (net->plan.own_grad[i])
            net->gstore[i] = net->arena + (size_t)max_batch * (size_t)mp.grad_off[i];
        size_t na = op->aux_floats ? op->aux_floats(L, rt_plan_step(&net->plan, i), max_batch)
                                   : 0;
        if (na)
            ok = ok && (net->aux[i] = falloc(na));
        size_t b = op->scratch ? op->scratch(L) : 0;
        scratch = b > scratch ? b : scratch;
    }
    rt_memplan mi = {0};
    if (ok && rt_memplan_infer(d, &net->plan, NULL, &mi, err) != 0) {
        rt_memplan_free(&mp);
        net_destroy(net);
        return NULL;
    }
    /* the inference plan places a subset of the training plan's outputs, reused: it always
     * fits in the training arena, but should it not, inference keeps the training layout */
    for (int i = 1; ok && i < nl; i++) {
        if (mi.total > mp.total)
            net->istore[i] = net->store[i];
        else if (mi.out_off[i] >= 0)
            net->istore[i] = net->arena + (size_t)max_batch * (size_t)mi.out_off[i];
    }
    rt_memplan_free(&mi);
    rt_memplan_free(&mp);
    if (!ok) {
        net_destroy(net);
        fail(err, "out of memory allocating a network for batches of %d", max_batch);
        return NULL;
    }
    net->tp = rt_threads_create(threads, err);
    if (!net->tp) {
        net_destroy(net);
        return NULL;
    }
    if (rt_threads_reserve(net->tp, scratch) != 0) {
        net_destroy(net);
        fail(err, "out of memory allocating %zu bytes of scratch per thread", scratch);
        return NULL;
    }
    rt_init_params(d, net->m.params, net->m.state, 1);
    rt_rng_seed(&net->drop, 1 ^ RT_DROPOUT_SEED_MIX);
    net->m.self = net;
    net->m.desc = d;
    net->m.nparams = d->nparams;
    net->m.nstate = d->nstate;
    net->m.max_batch = max_batch;
    net->m.forward = net_forward;
    net->m.backward = net_backward;
    net->m.seed_dropout = net_seed_dropout;
    net->m.destroy = net_destroy;
    net->params_in_order = params_in_order(d);
    return &net->m;
}

void rt_model_destroy(rt_model *m)
{
    if (m && m->destroy)
        m->destroy(m->self);
}
