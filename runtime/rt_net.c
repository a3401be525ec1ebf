/*
 * rt_net.c - the interpreter: runs any rt_netdesc forward and backward with the kernels.
 *
 * rt_net_create checks the description, allocates an output and a gradient buffer per layer
 * for max_batch images, the parameter/gradient/state arrays and every worker's scratch up
 * front (so running cannot run out of memory), and returns an rt_model. Backward walks the
 * layers in reverse; a layer's output gradient is written by its first consumer and added to
 * by the others, so outputs used twice (residual connections) get the sum.
 */
#include "rt_kernels.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    rt_model m;              /* m.self points back here */
    const rt_netdesc *d;
    rt_threads *tp;
    int max_batch;
    size_t *size;            /* floats per image of each layer's output */
    float **y, **dy;         /* each layer's output and its gradient, [max_batch][size] */
    float **mask;            /* dropout layers: the mask of the last training forward */
    float **bn;              /* batchnorm layers: batch mean [c] then 1/std [c] */
    rt_conv_geom *cg;        /* conv layers' geometry */
    rt_pool_geom *pg;        /* pooling layers' geometry */
    int *ginit;              /* backward: gradient of layer i's output written yet */
    int *fused;              /* 1: a max pooling that applies its source's relu backward
                                (rt_netdesc_pool_takes_relu); 2: that source */
    rt_rng drop;
    const float *x;          /* input of the last forward */
    int last_n, last_training;
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

static size_t shape_size(rt_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

static int same_shape(rt_shape a, rt_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

static const char *kind_name(rt_kind k)
{
    static const char *names[] = {"input",     "conv",          "maxpool",
                                  "avgpool",   "globalavgpool", "globalmaxpool",
                                  "flatten",   "dropout",       "dense",
                                  "batchnorm", "activation",    "add"};
    return k >= 0 && k < RT_NKINDS ? names[k] : "unknown";
}

static rt_conv_geom conv_geom(const rt_layer *L)
{
    rt_conv_geom g = {L->in.c, L->in.h,  L->in.w, L->out.c, L->out.h, L->out.w,
                      L->kh,   L->kw,    L->sh,   L->sw,    L->pt,    L->pb,
                      L->pl,   L->pr,    L->padmode, L->flip, 1, 1, 1};
    return g;
}

static rt_pool_geom pool_geom(const rt_layer *L)
{
    rt_pool_geom g = {L->in.c, L->in.h, L->in.w, L->out.h, L->out.w, L->kh, L->kw,
                      L->sh,   L->sw,   L->pt,   L->pb,    L->pl,    L->pr};
    return g;
}

/* Checks that parameter range [off, off+len) has the expected length and fits. */
static int check_range(const rt_netdesc *d, size_t off, size_t len, size_t want, size_t total,
                       const char *what, int i, char *err)
{
    if (len != want)
        return fail(err, "layer %d (%s, line %d): %s has %zu values, expected %zu", i,
                    kind_name(d->layers[i].kind), d->layers[i].line, what, len, want);
    if (len && (off > total || len > total - off))
        return fail(err, "layer %d (%s, line %d): %s [%zu, %zu) lies outside the array of "
                    "%zu", i, kind_name(d->layers[i].kind), d->layers[i].line, what, off,
                    off + len, total);
    return 0;
}

/* Everything the executor relies on, checked once so that running needs no checks. */
static int check_desc(const rt_netdesc *d, char *err)
{
    if (!d || d->nlayers < 2 || !d->layers)
        return fail(err, "a network needs an input layer and at least one more layer");
    if (d->layers[0].kind != RT_INPUT)
        return fail(err, "layer 0 must be the input");
    for (int i = 1; i < d->nlayers; i++) {
        const rt_layer *L = &d->layers[i];
        const char *kn = kind_name(L->kind);
        int last = i == d->nlayers - 1;
        if (L->kind <= RT_INPUT || L->kind >= RT_NKINDS)
            return fail(err, "layer %d: unknown or misplaced kind %d", i, (int)L->kind);
        if (L->src < 0 || L->src >= i)
            return fail(err, "layer %d (%s, line %d): source %d is not an earlier layer", i,
                        kn, L->line, L->src);
        rt_shape src = d->layers[L->src].out;
        if (L->out.c < 1 || L->out.h < 1 || L->out.w < 1)
            return fail(err, "layer %d (%s, line %d): empty output", i, kn, L->line);
        int flat = L->kind == RT_DENSE || L->kind == RT_FLATTEN;
        if (flat ? shape_size(L->in) != shape_size(src) : !same_shape(L->in, src))
            return fail(err, "layer %d (%s, line %d): input %dx%dx%d does not match its "
                        "source's output %dx%dx%d", i, kn, L->line, L->in.c, L->in.h,
                        L->in.w, src.c, src.h, src.w);
        int has_act = L->kind == RT_CONV || L->kind == RT_DENSE || L->kind == RT_ACTIVATION;
        if (has_act && L->act == RT_ACT_SOFTMAX && !last)
            return fail(err, "layer %d (%s, line %d): softmax is only supported as the last "
                        "layer's activation (it is folded into the loss)", i, kn, L->line);
        if (has_act && (L->act < RT_ACT_NONE || L->act > RT_ACT_SOFTMAX))
            return fail(err, "layer %d (%s, line %d): unknown activation %d", i, kn, L->line,
                        (int)L->act);
        if (has_act && L->act == RT_ACT_LEAKYRELU && !(L->alpha >= 0.0f))
            return fail(err, "layer %d (%s, line %d): leaky relu needs a slope >= 0", i, kn,
                        L->line);
        switch (L->kind) {
        case RT_CONV: {
            rt_conv_geom g = conv_geom(L);
            char why[RT_ERRLEN];
            if (rt_conv_geom_check(&g, why) != 0)
                return fail(err, "layer %d (line %d): %s", i, L->line, why);
            size_t wl = (size_t)L->out.c * L->in.c * L->kh * L->kw;
            if (check_range(d, L->w_off, L->w_len, wl, d->nparams, "weights", i, err) ||
                check_range(d, L->b_off, L->b_len, L->bias ? (size_t)L->out.c : 0, d->nparams,
                            "bias", i, err))
                return -1;
            break;
        }
        case RT_MAXPOOL:
        case RT_AVGPOOL:
            if (L->out.c != L->in.c || L->kh < 1 || L->kw < 1 || L->sh < 1 || L->sw < 1 ||
                L->pt < 0 || L->pb < 0 || L->pl < 0 || L->pr < 0 ||
                (L->out.h - 1) * L->sh - L->pt >= L->in.h + L->pb ||
                (L->out.w - 1) * L->sw - L->pl >= L->in.w + L->pr)
                return fail(err, "layer %d (%s, line %d): inconsistent window, stride, "
                            "padding or output size", i, kn, L->line);
            break;
        case RT_GLOBALAVGPOOL:
        case RT_GLOBALMAXPOOL:
            if (L->out.c != L->in.c || L->out.h != 1 || L->out.w != 1)
                return fail(err, "layer %d (%s, line %d): output must be %dx1x1", i, kn,
                            L->line, L->in.c);
            break;
        case RT_FLATTEN:
            if (shape_size(L->out) != shape_size(L->in))
                return fail(err, "layer %d (%s, line %d): output size differs from input", i,
                            kn, L->line);
            break;
        case RT_DROPOUT:
            if (!same_shape(L->out, L->in) || !(L->p >= 0.0f && L->p <= 1.0f))
                return fail(err, "layer %d (%s, line %d): needs equal shapes and 0 <= p <= 1",
                            i, kn, L->line);
            break;
        case RT_DENSE: {
            size_t wl = shape_size(L->out) * shape_size(L->in);
            if (check_range(d, L->w_off, L->w_len, wl, d->nparams, "weights", i, err) ||
                check_range(d, L->b_off, L->b_len, L->bias ? shape_size(L->out) : 0,
                            d->nparams, "bias", i, err))
                return -1;
            break;
        }
        case RT_BATCHNORM:
            if (!same_shape(L->out, L->in) || !(L->eps > 0.0f))
                return fail(err, "layer %d (%s, line %d): needs equal shapes and eps > 0", i,
                            kn, L->line);
            if (check_range(d, L->w_off, L->w_len, (size_t)L->in.c, d->nparams, "gamma", i,
                            err) ||
                check_range(d, L->b_off, L->b_len, (size_t)L->in.c, d->nparams, "beta", i,
                            err) ||
                check_range(d, L->s_off, L->s_len, 2 * (size_t)L->in.c, d->nstate,
                            "running statistics", i, err))
                return -1;
            break;
        case RT_ACTIVATION:
            if (!same_shape(L->out, L->in))
                return fail(err, "layer %d (%s, line %d): output shape differs from input", i,
                            kn, L->line);
            break;
        case RT_ADD:
            if (L->src2 < 0 || L->src2 >= i)
                return fail(err, "layer %d (add, line %d): second source %d is not an earlier "
                            "layer", i, L->line, L->src2);
            if (!same_shape(d->layers[L->src2].out, L->in) || !same_shape(L->out, L->in))
                return fail(err, "layer %d (add, line %d): both inputs and the output must "
                            "have one shape", i, L->line);
            break;
        default:
            break;
        }
    }
    return 0;
}

/* The activation a layer applies in the network: softmax is left to the loss. */
static rt_act layer_act(const rt_layer *L)
{
    return L->act == RT_ACT_SOFTMAX ? RT_ACT_NONE : L->act;
}

static const float *out_of(const rt_net *net, int i)
{
    return i == 0 ? net->x : net->y[i];
}

/* ------------------------------------------------------------------ forward */

static int net_forward(void *self, const float *x, int n, int training, float *logits)
{
    rt_net *net = self;
    const rt_netdesc *d = net->d;
    float *P = net->m.params, *S = net->m.state;
    if (n < 1 || n > net->max_batch) {
        net->last_n = 0;
        return fail(net->m.err, "batch of %d images, the model takes 1 to %d", n,
                    net->max_batch);
    }
    net->x = x;
    for (int i = 1; i < d->nlayers; i++) {
        const rt_layer *L = &d->layers[i];
        const float *in = out_of(net, L->src);
        float *out = net->y[i];
        size_t nin = (size_t)n * shape_size(L->in), nout = (size_t)n * net->size[i];
        int rc = 0;
        switch (L->kind) {
        case RT_CONV:
            rc = rt_conv2d_forward(&net->cg[i], in, P + L->w_off, L->bias ? P + L->b_off : NULL,
                                   layer_act(L), L->alpha, out, n, net->tp);
            break;
        case RT_MAXPOOL:
            rt_maxpool_forward(&net->pg[i], in, out, n, net->tp);
            break;
        case RT_AVGPOOL:
            rt_avgpool_forward(&net->pg[i], in, out, n, net->tp);
            break;
        case RT_GLOBALAVGPOOL:
            rt_globalavgpool_forward(in, out, n, L->in.c, L->in.h * L->in.w);
            break;
        case RT_GLOBALMAXPOOL:
            rt_globalmaxpool_forward(in, out, n, L->in.c, L->in.h * L->in.w);
            break;
        case RT_FLATTEN:
            rt_copy_mt(in, out, nin, net->tp);
            break;
        case RT_DROPOUT:
            if (training && L->p > 0.0f) {
                rt_dropout_mask(net->mask[i], nin, L->p, &net->drop);
                rt_dropout_forward_mt(in, net->mask[i], out, nin, net->tp);
            } else {
                rt_copy_mt(in, out, nin, net->tp);
            }
            break;
        case RT_DENSE:
            rc = rt_dense_forward(in, P + L->w_off, L->bias ? P + L->b_off : NULL, layer_act(L),
                                  L->alpha, out, n, (int)shape_size(L->in),
                                  (int)net->size[i], net->tp);
            break;
        case RT_BATCHNORM: {
            int c = L->in.c, hw = L->in.h * L->in.w;
            if (training)
                rt_batchnorm_forward_train_mt(in, P + L->w_off, P + L->b_off, S + L->s_off,
                                           S + L->s_off + c, L->momentum, L->eps, out,
                                           net->bn[i], net->bn[i] + c, n, c, hw, net->tp);
            else
                rt_batchnorm_forward_eval_mt(in, P + L->w_off, P + L->b_off, S + L->s_off,
                                          S + L->s_off + c, L->eps, out, n, c, hw, net->tp);
            break;
        }
        case RT_ACTIVATION:
            rt_act_forward_mt(layer_act(L), L->alpha, in, out, nout, net->tp);
            break;
        case RT_ADD:
            rt_add_forward_mt(in, out_of(net, L->src2), out, nout, net->tp);
            break;
        default:
            break;
        }
        if (rc != 0) {
            net->last_n = 0;
            return fail(net->m.err, "layer %d (%s, line %d): out of memory", i,
                        kind_name(L->kind), L->line);
        }
    }
    int last = d->nlayers - 1;
    memcpy(logits, net->y[last], (size_t)n * net->size[last] * sizeof *logits);
    net->last_n = n;
    net->last_training = training;
    return 0;
}

/* ------------------------------------------------------------------ backward */

/* Zeroes the parameter gradients of a layer whose output received no gradient. */
static void zero_param_grads(rt_net *net, const rt_layer *L)
{
    float *G = net->m.grads;
    if (L->w_len)
        memset(G + L->w_off, 0, L->w_len * sizeof *G);
    if (L->b_len)
        memset(G + L->b_off, 0, L->b_len * sizeof *G);
}

static void net_backward(void *self, const float *dlogits, int n)
{
    rt_net *net = self;
    const rt_netdesc *d = net->d;
    float *P = net->m.params, *G = net->m.grads, *S = net->m.state;
    int last = d->nlayers - 1;
    if (n != net->last_n || n < 1) {
        fail(net->m.err, "backward over %d images does not follow a forward over them", n);
        for (size_t k = 0; k < net->m.nparams; k++)
            G[k] = NAN;
        return;
    }
    memset(net->ginit, 0, (size_t)d->nlayers * sizeof *net->ginit);
    memcpy(net->dy[last], dlogits, (size_t)n * net->size[last] * sizeof *dlogits);
    net->ginit[last] = 1;
    for (int i = last; i >= 1; i--) {
        const rt_layer *L = &d->layers[i];
        if (!net->ginit[i]) {
            zero_param_grads(net, L);
            continue;
        }
        const int s = L->src;
        const float *in = out_of(net, s);
        float *dyi = net->dy[i];
        /* the network's input needs no gradient */
        float *dx = s > 0 ? net->dy[s] : NULL;
        int acc = s > 0 && net->ginit[s];
        size_t nin = (size_t)n * shape_size(L->in), nout = (size_t)n * net->size[i];
        int rc = 0;
        switch (L->kind) {
        case RT_CONV:
            /* to the gradient before the activation, unless the pooling after did that */
            if (layer_act(L) != RT_ACT_NONE && net->fused[i] != 2)
                rt_act_backward_mt(layer_act(L), L->alpha, net->y[i], dyi, dyi, nout, 0, net->tp);
            rc = rt_conv2d_backward(&net->cg[i], in, P + L->w_off, dyi, dx, acc, G + L->w_off,
                                    L->bias ? G + L->b_off : NULL, n, net->tp);
            break;
        case RT_MAXPOOL:
            if (dx && net->fused[i] == 1) /* the only reader of dx: acc is 0 */
                rt_maxpool_backward_relu(&net->pg[i], in, dyi, dx, n, net->tp);
            else if (dx)
                rt_maxpool_backward(&net->pg[i], in, dyi, dx, acc, n, net->tp);
            break;
        case RT_AVGPOOL:
            if (dx)
                rt_avgpool_backward(&net->pg[i], dyi, dx, acc, n, net->tp);
            break;
        case RT_GLOBALAVGPOOL:
            if (dx)
                rt_globalavgpool_backward(dyi, dx, acc, n, L->in.c, L->in.h * L->in.w);
            break;
        case RT_GLOBALMAXPOOL:
            if (dx)
                rt_globalmaxpool_backward(in, dyi, dx, acc, n, L->in.c, L->in.h * L->in.w);
            break;
        case RT_FLATTEN:
            if (dx)
                rt_grad_pass_mt(dyi, dx, nin, acc, net->tp);
            break;
        case RT_DROPOUT:
            if (dx) {
                if (net->last_training && L->p > 0.0f)
                    rt_dropout_backward_mt(dyi, net->mask[i], dx, nin, acc, net->tp);
                else
                    rt_grad_pass_mt(dyi, dx, nin, acc, net->tp);
            }
            break;
        case RT_DENSE:
            if (layer_act(L) != RT_ACT_NONE && net->fused[i] != 2)
                rt_act_backward_mt(layer_act(L), L->alpha, net->y[i], dyi, dyi, nout, 0, net->tp);
            rc = rt_dense_backward(in, P + L->w_off, dyi, dx, acc, G + L->w_off,
                                   L->bias ? G + L->b_off : NULL, n, (int)shape_size(L->in),
                                   (int)net->size[i], net->tp);
            break;
        case RT_BATCHNORM: {
            int c = L->in.c, hw = L->in.h * L->in.w;
            if (net->last_training)
                rt_batchnorm_backward_train_mt(in, P + L->w_off, net->bn[i], net->bn[i] + c, dyi,
                                            dx, acc, G + L->w_off, G + L->b_off, n, c, hw,
                                            net->tp);
            else
                rt_batchnorm_backward_eval_mt(in, P + L->w_off, S + L->s_off, S + L->s_off + c,
                                           L->eps, dyi, dx, acc, G + L->w_off, G + L->b_off,
                                           n, c, hw, net->tp);
            break;
        }
        case RT_ACTIVATION:
            if (dx)
                rt_act_backward_mt(layer_act(L), L->alpha, net->y[i], dyi, dx, nout, acc, net->tp);
            break;
        case RT_ADD:
            if (dx)
                rt_grad_pass_mt(dyi, dx, nout, acc, net->tp);
            if (s > 0)
                net->ginit[s] = 1;
            if (L->src2 > 0) {
                int s2 = L->src2;
                rt_grad_pass_mt(dyi, net->dy[s2], nout, net->ginit[s2], net->tp);
                net->ginit[s2] = 1;
            }
            break;
        default:
            break;
        }
        if (rc != 0) {
            fail(net->m.err, "layer %d (%s, line %d): out of memory in backward", i,
                 kind_name(L->kind), L->line);
            for (size_t k = 0; k < net->m.nparams; k++)
                G[k] = NAN;
            return;
        }
        if (s > 0)
            net->ginit[s] = 1;
    }
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
    if (net->d)
        for (int i = 0; i < net->d->nlayers; i++) {
            if (net->y)
                free(net->y[i]);
            if (net->dy)
                free(net->dy[i]);
            if (net->mask)
                free(net->mask[i]);
            if (net->bn)
                free(net->bn[i]);
        }
    free(net->y);
    free(net->dy);
    free(net->mask);
    free(net->bn);
    free(net->size);
    free(net->cg);
    free(net->pg);
    free(net->ginit);
    free(net->fused);
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
    if (check_desc(d, err) != 0)
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
    int nl = d->nlayers;
    net->d = d;
    net->max_batch = max_batch;
    net->y = calloc((size_t)nl, sizeof *net->y);
    net->dy = calloc((size_t)nl, sizeof *net->dy);
    net->mask = calloc((size_t)nl, sizeof *net->mask);
    net->bn = calloc((size_t)nl, sizeof *net->bn);
    net->size = calloc((size_t)nl, sizeof *net->size);
    net->cg = calloc((size_t)nl, sizeof *net->cg);
    net->pg = calloc((size_t)nl, sizeof *net->pg);
    net->ginit = calloc((size_t)nl, sizeof *net->ginit);
    net->fused = calloc((size_t)nl, sizeof *net->fused);
    net->m.params = falloc(d->nparams);
    net->m.grads = calloc(d->nparams ? d->nparams : 1, sizeof(float));
    net->m.state = falloc(d->nstate);
    int ok = net->y && net->dy && net->mask && net->bn && net->size && net->cg && net->pg &&
             net->ginit && net->fused && net->m.params && net->m.grads && net->m.state;
    size_t scratch = 0;
    for (int i = 0; ok && i < nl; i++) {
        const rt_layer *L = &d->layers[i];
        net->size[i] = shape_size(L->out);
        if (i == 0)
            continue;
        size_t nb = (size_t)max_batch * net->size[i];
        net->y[i] = falloc(nb);
        net->dy[i] = falloc(nb);
        ok = net->y[i] && net->dy[i];
        if (L->kind == RT_DROPOUT)
            ok = ok && (net->mask[i] = falloc(nb));
        if (L->kind == RT_BATCHNORM)
            ok = ok && (net->bn[i] = falloc(2 * (size_t)L->in.c));
        if (L->kind == RT_CONV) {
            net->cg[i] = conv_geom(L);
            size_t b = rt_conv2d_scratch_size(&net->cg[i]);
            scratch = b > scratch ? b : scratch;
        }
        if (L->kind == RT_DENSE && rt_sgemm_ws_size() > scratch)
            scratch = rt_sgemm_ws_size();
        if (L->kind == RT_MAXPOOL || L->kind == RT_AVGPOOL)
            net->pg[i] = pool_geom(L);
        if (rt_netdesc_pool_takes_relu(d, i)) {
            net->fused[i] = 1;
            net->fused[L->src] = 2;
        }
    }
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
    return &net->m;
}

void rt_model_destroy(rt_model *m)
{
    if (m && m->destroy)
        m->destroy(m->self);
}
