/*
 * rt_shard.c - which part of a global batch this process computes during data-parallel
 * training (rt_shard in rt_kernels.h), read by the kernels whose result depends on the whole
 * batch: batchnorm's statistics and dropout's draws. One per process, set by the training
 * loop around each step.
 */
#include "rt_kernels.h"

static rt_shard g_shard;
static int g_has_shard;

void rt_shard_set(const rt_shard *s)
{
    g_has_shard = s != NULL;
    if (s)
        g_shard = *s;
}

const rt_shard *rt_shard_get(void)
{
    return g_has_shard ? &g_shard : NULL;
}
