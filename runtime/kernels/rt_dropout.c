/*
 * rt_dropout.c - the random part of inverted dropout: drawing the mask.
 *
 * Masks come from the caller's rt_rng, one draw per element in order, so a seed fixes them
 * whatever the thread count; applying a mask is inline in rt_kernels.h.
 */
#include "rt_kernels.h"

void rt_dropout_mask(float *mask, size_t n, float p, rt_rng *rng)
{
    float keep = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++)
        mask[i] = rt_rng_uniform(rng) < p ? 0.0f : keep;
}
