/*
 * rt_data_split.c - the stratified train/val/test split: each class is shuffled with a seeded
 * rt_rng and cut by the ratios, rounding by largest remainder so every part's class
 * proportions are as close to the ratios as whole images allow. An IDX set keeps its own
 * test set (the last ntest_fixed images) and splits the rest by train:val.
 */
#include "rt_data_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A uniform integer in [0, bound): the modulo bias is below bound / 2^64, negligible. */
static int rng_below(rt_rng *r, int bound)
{
    return (int)(rt_rng_next(r) % (uint64_t)bound);
}

static void shuffle(int *v, int n, rt_rng *r)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rng_below(r, i + 1);
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* Sizes of the three parts of m images by ratio r (sum R > 0), largest remainder rounding:
 * each part gets floor(m * r_k / R); the images left over go one each to the parts with
 * the largest remainders (m * r_k mod R), ties to the earlier part. A part with ratio 0
 * has remainder 0 and so never gets an image. */
static void part_sizes(int m, const int r[3], int size[3])
{
    long long R = (long long)r[0] + r[1] + r[2], rem[3];
    int left = m;
    for (int k = 0; k < 3; k++) {
        size[k] = (int)((long long)m * r[k] / R);
        rem[k] = (long long)m * r[k] % R;
        left -= size[k];
    }
    while (left-- > 0) {
        int best = 0;
        for (int k = 1; k < 3; k++)
            if (rem[k] > rem[best])
                best = k;
        size[best]++;
        rem[best] = -1; /* one extra image per part at most */
    }
}

void rt_split_free(rt_split *s)
{
    if (!s)
        return;
    free(s->train);
    free(s->val);
    free(s->test);
    memset(s, 0, sizeof *s);
}

int rt_split_make(const rt_dataset *ds, const int ratio[3], uint64_t seed, rt_split *out,
                  char *err)
{
    static const int def[3] = {7, 2, 1};
    memset(out, 0, sizeof *out);
    if (!ratio)
        ratio = def;
    if (ratio[0] <= 0 || ratio[1] < 0 || ratio[2] < 0) {
        snprintf(err, RT_ERRLEN, "split %d:%d:%d: expected train:val:test ratios >= 0 with a "
                 "train part > 0 (e.g. 7:2:1 or 8:2:0)", ratio[0], ratio[1], ratio[2]);
        return -1;
    }
    const int fixed = ds->ntest_fixed > 0 ? ds->ntest_fixed : 0;
    const int vfixed = ds->nval_fixed > 0 ? ds->nval_fixed : 0;
    const int pool = ds->n - fixed - vfixed; /* images split by the ratios: [0, pool) */
    if (ds->n <= 0 || pool <= 0 || fixed + vfixed > ds->n || ds->nclasses <= 0) {
        snprintf(err, RT_ERRLEN, "cannot split a set of %d images (%d of them a fixed test "
                 "set, %d a fixed validation set): no images to train on", ds->n, fixed,
                 vfixed);
        return -1;
    }
    /* A set's own test part (IDX, DIR/test) stays: the rest is split by train:val only;
     * with its own validation part too, the rest is all training. */
    const int r[3] = {ratio[0], vfixed ? 0 : ratio[1], fixed ? 0 : ratio[2]};
    const int K = ds->nclasses;

    /* The pool's indices grouped by class, in set order within a class. */
    int *count = calloc((size_t)K + 1, sizeof *count);
    int *byclass = malloc((size_t)pool * sizeof *byclass);
    int *parts[3] = {NULL, NULL, NULL};
    int np[3] = {0, 0, 0};
    int ok = count && byclass;
    for (int i = 0; ok && i < pool; i++) {
        if (ds->label[i] < 0 || ds->label[i] >= K) {
            snprintf(err, RT_ERRLEN, "image %d has label %d outside 0..%d", i, ds->label[i],
                     K - 1);
            free(count);
            free(byclass);
            return -1;
        }
        count[ds->label[i] + 1]++;
    }
    for (int k = 0; ok && k < K; k++)
        count[k + 1] += count[k]; /* count[k] = start of class k */
    for (int k = 0; ok && k < 3; k++)
        ok = (parts[k] = malloc((size_t)(pool + vfixed + fixed) * sizeof(int))) != NULL;
    if (!ok) {
        snprintf(err, RT_ERRLEN, "out of memory splitting %d images", ds->n);
        free(count);
        free(byclass);
        for (int k = 0; k < 3; k++)
            free(parts[k]);
        return -1;
    }
    {
        int *fill = malloc((size_t)K * sizeof *fill);
        if (!fill) {
            snprintf(err, RT_ERRLEN, "out of memory splitting %d images", ds->n);
            free(count);
            free(byclass);
            for (int k = 0; k < 3; k++)
                free(parts[k]);
            return -1;
        }
        memcpy(fill, count, (size_t)K * sizeof *fill);
        for (int i = 0; i < pool; i++)
            byclass[fill[ds->label[i]]++] = i;
        free(fill);
    }

    rt_rng rng;
    rt_rng_seed(&rng, seed);
    for (int k = 0; k < K; k++) {
        int *v = byclass + count[k], m = count[k + 1] - count[k], size[3];
        shuffle(v, m, &rng);
        part_sizes(m, r, size);
        for (int p = 0, at = 0; p < 3; p++)
            for (int j = 0; j < size[p]; j++)
                parts[p][np[p]++] = v[at++];
    }
    for (int i = 0; i < vfixed; i++)
        parts[1][np[1]++] = pool + i;
    for (int i = 0; i < fixed; i++)
        parts[2][np[2]++] = pool + vfixed + i;
    /* Mix the classes within each part (the set lists them class after class). */
    for (int p = 0; p < 3; p++)
        shuffle(parts[p], np[p], &rng);

    free(count);
    free(byclass);
    out->train = parts[0];
    out->val = parts[1];
    out->test = parts[2];
    out->ntrain = np[0];
    out->nval = np[1];
    out->ntest = np[2];
    return 0;
}
