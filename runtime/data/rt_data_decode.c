/*
 * rt_data_decode.c - decodes a scanned file list into a data set on several threads (JPEG
 * decoding of large frames is the slowest part of loading), then drops the unreadable
 * images, naming each in a warning, in file order whatever the thread timing. Under MPI each
 * rank decodes its slice of the files and the ranks then exchange the pixels, so the
 * decoding is shared by the ranks as it is by the threads.
 */
#include "rt_data_internal.h"
#include "rt_dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const rt_scan *s;
    int lo;             /* MPI: this rank's first file (job i decodes file lo + i) */
    rt_shape shape;
    size_t chw;
    uint8_t *pix;
    uint8_t *ok;        /* 1 = decoded */
    char **why;         /* the failure message of a bad image (NULL if out of memory) */
} decode_ctx;

static void decode_one(void *arg, int i)
{
    decode_ctx *d = arg;
    i += d->lo;
    char err[RT_ERRLEN];
    if (rt_image_decode(d->s->e[i].path, d->shape, d->pix + (size_t)i * d->chw, err) == 0)
        d->ok[i] = 1;
    else
        d->why[i] = strdup(err);
}

int rt_decode_scan(rt_scan *s, const char *dir, rt_shape shape, const rt_load_opts *opts,
                   rt_dataset *out, char *err)
{
    const int n = s->n;
    const size_t chw = (size_t)shape.c * shape.h * shape.w;
    decode_ctx d = {s, 0, shape, chw, NULL, NULL, NULL};
    memset(out, 0, sizeof *out);
    if (n > 0 && chw > (size_t)-1 / 2 / (size_t)n) {
        snprintf(err, RT_ERRLEN, "%s: %d images of %zu pixels do not fit in memory", dir, n,
                 chw);
        return -1;
    }
    d.pix = malloc((n ? (size_t)n : 1) * chw);
    d.ok = calloc(n ? (size_t)n : 1, 1);
    d.why = calloc(n ? (size_t)n : 1, sizeof *d.why);
    out->label = malloc((n ? (size_t)n : 1) * sizeof *out->label);
    out->files = calloc(n ? (size_t)n : 1, sizeof *out->files);
    if (!d.pix || !d.ok || !d.why || !out->label || !out->files) {
        snprintf(err, RT_ERRLEN, "%s: out of memory for %d images of %dx%dx%d", dir, n,
                 shape.c, shape.h, shape.w);
        goto fail;
    }
    size_t lo = 0, hi = (size_t)n; /* MPI: this rank's files; the others' come after */
    rt_dist_slice((size_t)n, rt_dist_rank(), rt_dist_size(), &lo, &hi);
    d.lo = (int)lo;
    rt_pool_run((int)(hi - lo), rt_data_threads(opts, (int)(hi - lo)), decode_one, &d);
    if (rt_dist_allgather(d.ok, 1, (size_t)n) != 0 || rt_dist_allgather(d.pix, chw, (size_t)n) != 0) {
        snprintf(err, RT_ERRLEN, "%s: the ranks could not exchange the decoded images", dir);
        goto fail;
    }

    /* Keep the decoded images, in file order, moving their paths into the set. */
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!d.ok[i]) {
            if (d.why[i])
                rt_data_warn(opts, "%s; skipped", d.why[i]);
            else if (i >= (int)lo && i < (int)hi) /* MPI: the rank that decoded it says so */
                rt_data_warn(opts, "%s: out of memory; skipped", s->e[i].path);
            free(d.why[i]);
            d.why[i] = NULL;
            out->nskipped++;
            continue;
        }
        if (m != i)
            memmove(d.pix + (size_t)m * chw, d.pix + (size_t)i * chw, chw);
        out->label[m] = s->e[i].label;
        out->files[m] = s->e[i].path;
        s->e[i].path = NULL;
        m++;
    }
    if (m == 0) {
        snprintf(err, RT_ERRLEN, "%s: no readable images: all %d files failed to decode "
                 "(expected JPEG, PNG, BMP or binary PGM/PPM images)", dir, n);
        goto fail;
    }
    uint8_t *shrunk = m < n ? realloc(d.pix, (size_t)m * chw) : NULL;
    out->pix = shrunk ? shrunk : d.pix;
    d.pix = NULL;
    out->n = m;
    out->c = shape.c;
    out->h = shape.h;
    out->w = shape.w;
    out->nskipped += s->nskipped;
    out->nclasses = s->nclasses;
    out->classnames = s->classnames;
    s->classnames = NULL;
    s->nclasses = 0;
    free(d.ok);
    free(d.why);
    return 0;
fail:
    for (int i = 0; d.why && i < n; i++)
        free(d.why[i]);
    free(d.why);
    free(d.ok);
    free(d.pix);
    rt_dataset_free(out);
    return -1;
}
