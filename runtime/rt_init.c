/*
 * rt_init.c - initial parameters as PyTorch sets them by default: conv and dense weights and
 * biases uniform in +-1/sqrt(fan_in), batchnorm gamma 1 and beta 0 with running mean 0 and
 * running variance 1. Draws go layer by layer, weights before bias, from one seeded rt_rng.
 */
#include "cnnrt.h"

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
        switch (L->kind) {
        case RT_CONV:
        case RT_DENSE: {
            size_t fan_in = L->kind == RT_CONV ? (size_t)L->in.c * L->kh * L->kw
                                               : (size_t)L->in.c * L->in.h * L->in.w;
            float bound = fan_in ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f;
            if (params) {
                uniform_fill(params + L->w_off, L->w_len, bound, &r);
                uniform_fill(params + L->b_off, L->b_len, bound, &r);
            }
            break;
        }
        case RT_BATCHNORM:
            if (params) {
                for (size_t k = 0; k < L->w_len; k++)
                    params[L->w_off + k] = 1.0f;
                for (size_t k = 0; k < L->b_len; k++)
                    params[L->b_off + k] = 0.0f;
            }
            if (state) {
                size_t c = L->s_len / 2;
                for (size_t k = 0; k < c; k++) {
                    state[L->s_off + k] = 0.0f;
                    state[L->s_off + c + k] = 1.0f;
                }
            }
            break;
        default:
            break;
        }
    }
}
