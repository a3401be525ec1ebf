/*
 * rt_dropout.c - the random part of inverted dropout: drawing the mask.
 *
 * Masks come from the caller's rt_rng, one draw per element in order, so a seed fixes them
 * whatever the thread count; applying a mask is inline in rt_kernels.h. Also the shard
 * (rt_shard_set): with one set, the draws of the other shards' images are made and
 * discarded, so that an image's mask does not depend on how the batch was split.
 */
#include "rt_kernels.h"

#include <stdio.h>
#include <stdlib.h>

static void skip_draws(size_t k, rt_rng *rng)
{
    for (size_t i = 0; i < k; i++)
        (void)rt_rng_uniform(rng);
}

void rt_dropout_mask(float *mask, size_t n, float p, rt_rng *rng)
{
    float keep = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
    const rt_shard *sh = rt_shard_get();
    /* n covers this shard's images: per image n / sh->n draws */
    if (sh && sh->n > 0 && n % (size_t)sh->n != 0) { /* a caller's bug: masks would differ */
        fprintf(stderr, "error: dropout mask of %zu values for a shard of %d images\n", n, sh->n);
        abort();
    }
    size_t per = sh && sh->n > 0 ? n / (size_t)sh->n : 0;
    if (per)
        skip_draws(per * (size_t)sh->lo, rng);
    for (size_t i = 0; i < n; i++)
        mask[i] = rt_rng_uniform(rng) < p ? 0.0f : keep;
    if (per)
        skip_draws(per * (size_t)(sh->total - sh->lo - sh->n), rng);
}
