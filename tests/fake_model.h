/*
 * fake_model.h - a tiny rt_model for the training, CLI and weights tests: a linear softmax
 * classifier (one dense layer) with hand-written forward and backward, so that the training
 * loop is tested independently of the interpreter. It records what it was asked to do
 * (which images, in which mode) and keeps a running mean of its logits as "state".
 */
#ifndef FAKE_MODEL_H
#define FAKE_MODEL_H

#include <stdlib.h>
#include <string.h>
#include "cnnrt.h"

typedef struct {
    rt_layer layers[2];
    rt_netdesc desc;
} fake_net;

/* input c x h x w -> k logits through one dense layer with bias; its state: k running means */
static inline void fake_net_init(fake_net *n, const char *name, int c, int h, int w, int k)
{
    memset(n, 0, sizeof *n);
    int in = c * h * w;
    rt_layer *L = n->layers;
    L[0].kind = RT_INPUT;
    L[0].src = L[0].src2 = -1;
    L[0].in = L[0].out = (rt_shape){c, h, w};
    L[1].kind = RT_DENSE;
    L[1].src = 0;
    L[1].src2 = -1;
    L[1].in = L[0].out;
    L[1].out = (rt_shape){k, 1, 1};
    L[1].bias = 1;
    L[1].w_off = 0;
    L[1].w_len = (size_t)k * in;
    L[1].b_off = (size_t)k * in;
    L[1].b_len = (size_t)k;
    L[1].s_off = 0;
    L[1].s_len = (size_t)k;
    snprintf(n->desc.name, sizeof n->desc.name, "%s", name);
    n->desc.nlayers = 2;
    n->desc.layers = n->layers;
    n->desc.nparams = (size_t)k * in + k;
    n->desc.nstate = (size_t)k;
    n->desc.hash = 0x5eed0000u + (uint64_t)in * 131 + (uint64_t)k;
}

typedef struct {
    rt_model m;
    int in, k;
    float *x;               /* the last forward's input, for backward */
    long fwd_train, fwd_eval;   /* images forwarded in each mode */
    float *seen;            /* first input value of every image forwarded while training */
    long nseen, capseen;
    uint64_t dropout_seed;
    int seeded;
} fake_model;

static inline int fake_forward(void *self, const float *x, int n, int training, float *logits)
{
    fake_model *f = self;
    const float *W = f->m.params, *b = f->m.params + (size_t)f->k * f->in;
    if (n > f->m.max_batch)
        return -1;
    memcpy(f->x, x, sizeof(float) * (size_t)n * f->in);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < f->k; j++) {
            double s = b[j];
            for (int p = 0; p < f->in; p++)
                s += (double)W[(size_t)j * f->in + p] * x[(size_t)i * f->in + p];
            logits[(size_t)i * f->k + j] = (float)s;
        }
    if (training == RT_TRAIN) { /* RT_EVAL and RT_INFER are evaluation modes */
        f->fwd_train += n;
        for (int i = 0; i < n; i++) {
            if (f->nseen == f->capseen) {
                f->capseen = f->capseen ? 2 * f->capseen : 256;
                f->seen = realloc(f->seen, sizeof(float) * (size_t)f->capseen);
            }
            f->seen[f->nseen++] = x[(size_t)i * f->in];
        }
        for (int j = 0; j < f->k; j++) {       /* state: running mean of the logits */
            double s = 0;
            for (int i = 0; i < n; i++)
                s += logits[(size_t)i * f->k + j];
            f->m.state[j] = (float)(0.9 * f->m.state[j] + 0.1 * s / n);
        }
    } else {
        f->fwd_eval += n;
    }
    return 0;
}

static inline int fake_backward(void *self, const float *dl, int n)
{
    fake_model *f = self;
    float *gW = f->m.grads, *gb = f->m.grads + (size_t)f->k * f->in;
    for (int j = 0; j < f->k; j++) {
        double sb = 0;
        for (int i = 0; i < n; i++)
            sb += dl[(size_t)i * f->k + j];
        gb[j] = (float)sb;
        for (int p = 0; p < f->in; p++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += (double)dl[(size_t)i * f->k + j] * f->x[(size_t)i * f->in + p];
            gW[(size_t)j * f->in + p] = (float)s;
        }
    }
    return 0;
}

static inline void fake_seed_dropout(void *self, uint64_t seed)
{
    fake_model *f = self;
    f->dropout_seed = seed;
    f->seeded = 1;
}

static inline void fake_destroy(void *self)
{
    fake_model *f = self;
    free(f->m.params);
    free(f->m.grads);
    free(f->m.state);
    free(f->x);
    free(f->seen);
    free(f);
}

/* A model on desc with parameters from a fixed little generator of seed (zero state). */
static inline fake_model *fake_new(const rt_netdesc *d, int max_batch, uint32_t seed)
{
    fake_model *f = calloc(1, sizeof *f);
    rt_shape s = d->layers[0].out, o = d->layers[d->nlayers - 1].out;
    f->in = s.c * s.h * s.w;
    f->k = o.c * o.h * o.w;
    f->m.self = f;
    f->m.desc = d;
    f->m.nparams = d->nparams;
    f->m.nstate = d->nstate;
    f->m.max_batch = max_batch;
    f->m.params = calloc(d->nparams, sizeof(float));
    f->m.grads = calloc(d->nparams, sizeof(float));
    f->m.state = calloc(d->nstate ? d->nstate : 1, sizeof(float));
    f->x = calloc((size_t)max_batch * f->in, sizeof(float));
    f->m.forward = fake_forward;
    f->m.backward = fake_backward;
    f->m.seed_dropout = fake_seed_dropout;
    f->m.destroy = fake_destroy;
    uint32_t r = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < d->nparams; i++) {
        r = r * 1664525u + 1013904223u;
        f->m.params[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
    return f;
}

/* rt_model_factory for rt_cli_main: ctx is the rt_netdesc. */
static inline rt_model *fake_factory(void *ctx, int max_batch, int threads, char *err)
{
    (void)threads;
    (void)err;
    return &fake_new(ctx, max_batch, 7)->m;
}

#endif
