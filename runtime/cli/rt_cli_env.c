/*
 * rt_cli_env.c - what several commands of the shared command line use: the error message,
 * building the model, the seeded random batch of --bench and --dump, loading the data set
 * of --train and --eval, and checking the class names a weights file was trained with.
 */
#include "rt_cli_int.h"
#include "rt_dist.h"

#include <stdarg.h>
#include <string.h>

/* ------------------------------------------------------------ messages */

void rt_cli_verror(const rt_cli_env *e, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "%s: ", e->prog);
    if (rt_dist_size() > 1) /* MPI: which rank says it */
        fprintf(stderr, "rank %d of %d: ", rt_dist_rank(), rt_dist_size());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void rt_cli_error(const rt_cli_env *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rt_cli_verror(e, fmt, ap);
    va_end(ap);
}

const char *rt_cli_opt_name(rt_opt_kind k)
{
    return rt_opt_kind_name(k);
}

void rt_cli_fmt_augment(char *buf, size_t n, const rt_augment_cfg *a)
{
    rt_train_cfg c;
    memset(&c, 0, sizeof c);
    c.augment = *a;
    c.opt.kind = RT_OPT_SGD;
    char all[300];
    rt_train_describe(&c, all, sizeof all);
    const char *p = strstr(all, ", augment ");
    snprintf(buf, n, "%s", p ? p + strlen(", augment ") : "none");
}

void rt_cli_fmt_split(char *buf, size_t n, const int s[3])
{
    snprintf(buf, n, "%d:%d:%d", s[0], s[1], s[2]);
}

/* ------------------------------------------------------------ the model and the data */

rt_model *rt_cli_make(const rt_cli_env *e, int batch, int threads, char *err)
{
    err[0] = 0;
    rt_model *m = e->make_model(e->ctx, batch, threads, err);
    if (!m)
        rt_cli_error(e, "cannot build the network: %s", err[0] ? err : "unknown error");
    return m;
}

int rt_cli_load_data(const rt_cli_env *e, const rt_cli_args *c, rt_dataset *ds, char *err)
{
    /* MPI: rank 0 alone uses the decode cache (two ranks must not write one cache) */
    rt_load_opts lo = {c->cfg.threads, !c->no_cache, c->cache_dir, c->quiet};
    if (rt_dataset_load(c->dir, e->d->layers[0].out, &lo, ds, err) < 0) {
        rt_cli_error(e, "%s", err);
        return -1;
    }
    int k = rt_netdesc_classes(e->d);
    if (ds->nclasses != k) {
        rt_cli_error(e, "%s has %d classes but network '%s' has %d outputs", c->dir,
                     ds->nclasses, e->d->name, k);
        rt_dataset_free(ds);
        return -1;
    }
    if (ds->n == 0) {
        rt_cli_error(e, "%s holds no images", c->dir);
        rt_dataset_free(ds);
        return -1;
    }
    /* --val DIR and --test DIR: the set's fixed parts, in that order after the rest */
    const char *part[2] = {c->val_dir, c->test_dir};
    for (int p = 0; p < 2; p++) {
        if (!part[p])
            continue;
        if (ds->ntest_fixed > 0 || (p == 0 && ds->nval_fixed > 0)) {
            rt_cli_error(e, "%s %s: %s already has its own %s images (%s)", p ? "--test" : "--val",
                         part[p], c->dir, ds->ntest_fixed > 0 ? "test" : "validation",
                         ds->parts[0] ? ds->parts : "an IDX test set");
            rt_dataset_free(ds);
            return -1;
        }
        rt_dataset extra;
        int before = ds->n;
        if (rt_dataset_load(part[p], e->d->layers[0].out, &lo, &extra, err) < 0 ||
            rt_dataset_append(ds, &extra, part[p], err) < 0) {
            rt_cli_error(e, "%s", err);
            rt_dataset_free(ds);
            return -1;
        }
        if (p == 0)
            ds->nval_fixed = ds->n - before;
        else
            ds->ntest_fixed = ds->n - before;
    }
    if (!c->quiet && (ds->parts[0] || c->val_dir || c->test_dir)) {
        printf("%s: %s%s%s: ", c->dir, ds->parts[0] ? ds->parts : "",
               ds->parts[0] && (c->val_dir || c->test_dir) ? ", " : "",
               c->val_dir && c->test_dir ? "--val and --test" : c->val_dir ? "--val" : c->test_dir
               ? "--test" : "");
        if (ds->nval_fixed)
            printf("%d validation images as they come", ds->nval_fixed);
        else
            printf("validation images taken from the rest by the split's train:val part");
        if (ds->ntest_fixed)
            printf(", %d test images as they come\n", ds->ntest_fixed);
        else
            printf(", test images by the split's test part\n");
    }
    return 0;
}

/* The class names the weights were trained with must be the data set's. */
void rt_cli_check_names(const rt_cli_env *e, char **wn, int nw, const rt_dataset *ds,
                        const char *wfile)
{
    if (!wn)
        return;
    int same = nw == ds->nclasses;
    for (int i = 0; same && i < nw; i++)
        same = ds->classnames && ds->classnames[i] && !strcmp(wn[i], ds->classnames[i]);
    if (!same) {
        fflush(stdout);
        fprintf(stderr, "%s: warning: %s was trained on classes", e->prog, wfile);
        for (int i = 0; i < nw; i++)
            fprintf(stderr, "%s %s", i ? "," : "", wn[i]);
        fprintf(stderr, " but the data has");
        for (int i = 0; i < ds->nclasses; i++)
            fprintf(stderr, "%s %s", i ? "," : "", ds->classnames ? ds->classnames[i] : "?");
        fprintf(stderr, "\n");
    }
}

/* ------------------------------------------------------------ the random batch */

void rt_cli_random_batch(float *x, int *labels, int n, size_t size, int k, uint64_t seed)
{
    rt_rng r;
    rt_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)n * size; i++)
        x[i] = rt_rng_uniform(&r);
    for (int i = 0; i < n; i++)
        labels[i] = k > 0 ? i % k : 0;
}
