/*
 * rt_init.c - initial parameters as PyTorch sets them by default: the weights and biases of
 * every layer with a fan-in (conv, dense) uniform in +-1/sqrt(fan_in), anything else by its
 * op's own rule (batchnorm: gamma 1, beta 0, running mean 0, running variance 1). Draws go
 * layer by layer, weights before bias, from one seeded rt_rng.
 */
#include "rt_op.h"

#include <math.h>
#include <string.h>

static void uniform_fill(float *p, size_t n, float bound, rt_rng *r)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (2.0f * rt_rng_uniform(r) - 1.0f) * bound;
}

void rt_init_params(const rt_netdesc *d, float *params, float *state, uint64_t seed)
{
    rt_rng r;
    rt_rng_seed(&r, seed);
    if (params && d->nparams)
        memset(params, 0, d->nparams * sizeof *params);
    if (state && d->nstate)
        memset(state, 0, d->nstate * sizeof *state);
    for (int i = 0; i < d->nlayers; i++) {
        const rt_layer *L = &d->layers[i];
        const rt_op *op = rt_op_of(L->kind);
        if (!op)
            continue;
        if (op->fan_in) {
            size_t fan_in = op->fan_in(L);
            float bound = fan_in ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f;
            if (params) {
                uniform_fill(params + L->w_off, L->w_len, bound, &r);
                uniform_fill(params + L->b_off, L->b_len, bound, &r);
            }
        }
        if (op->init)
            op->init(L, params, state);
    }
}
