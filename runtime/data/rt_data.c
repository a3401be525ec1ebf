/*
 * rt_data.c - rt_dataset_load: tells the three layouts apart (IDX files, a Kaggle Tom & Jerry
 * download, an image folder), consults the decode cache with a key of the scanned file list,
 * and decodes (in parallel) only on a miss. Under MPI every rank reads the cache, and on a
 * miss the ranks decode together and rank 0 writes it. Also rt_dataset_free and the load
 * defaults.
 */
#include "rt_data_internal.h"
#include "rt_dist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KIND_FOLDER = 1, KIND_KAGGLE = 2, KIND_IDX = 3 };

#define EXPECTED "expected an image folder (one subfolder per class), a Kaggle Tom & Jerry " \
                 "download (ground_truth.csv) or IDX files (train-images-idx3-ubyte[.gz], ...)"

void rt_load_opts_defaults(rt_load_opts *o)
{
    memset(o, 0, sizeof *o);
    o->threads = 0;
    o->use_cache = 1;
    o->cache_dir = NULL;
    o->quiet = 0;
}

/* Reads the cache when enabled and valid; else runs build and writes the cache. */
static int with_cache(const char *path, uint64_t key, rt_shape shape, const rt_load_opts *opts,
                      int (*build)(void *ctx, rt_dataset *out, char *err), void *ctx,
                      int scan_skipped, rt_dataset *out, char *err)
{
    char *file = opts->use_cache ? rt_cache_file(path, shape, opts) : NULL;
    int hit = file && rt_cache_read(file, key, shape, opts, out);
    /* MPI: the ranks decode together (rt_decode_scan), so they must all miss or all hit
     * (one vote on every rank; one process: its own answer) */
    if (!rt_dist_all(hit) && hit) {
        rt_dataset_free(out);
        hit = 0;
    }
    if (hit) {
        /* The skipped images were named when the cache was built; count them again. */
        if (out->nskipped > scan_skipped && rt_dist_is_root()) /* MPI: said once */
            rt_data_warn(opts, "%s: %d unreadable image%s skipped when the decode cache "
                         "was built", path, out->nskipped - scan_skipped,
                         out->nskipped - scan_skipped > 1 ? "s were" : " was");
        free(file);
        return 0;
    }
    int rc = build(ctx, out, err);
    if (rc == 0 && file && rt_dist_is_root()) /* MPI: the cache has one writer */
        rt_cache_write(file, key, out, opts);
    free(file);
    return rc;
}

typedef struct {
    rt_scan *scan;
    const char *path;
    rt_shape shape;
    const rt_load_opts *opts;
    char **idx;
} build_ctx;

static int build_scan(void *arg, rt_dataset *out, char *err)
{
    build_ctx *b = arg;
    return rt_decode_scan(b->scan, b->path, b->shape, b->opts, out, err);
}

static int build_idx(void *arg, rt_dataset *out, char *err)
{
    build_ctx *b = arg;
    return rt_idx_read(b->idx, b->shape, b->opts, out, err);
}

/* The IDX key: the four files' paths, sizes and mtimes. */
static int idx_key(char *const files[4], rt_shape shape, uint64_t *key, char *err)
{
    rt_scan s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 4; i++) {
        struct stat st;
        if (stat(files[i], &st) < 0 || rt_scan_add(&s, files[i], i, &st) < 0) {
            snprintf(err, RT_ERRLEN, "%s: %s", files[i], strerror(errno));
            rt_scan_free(&s);
            return -1;
        }
    }
    *key = rt_scan_key(&s, KIND_IDX, shape);
    rt_scan_free(&s);
    return 0;
}

int rt_dataset_load(const char *path, rt_shape shape, const rt_load_opts *opts,
                    rt_dataset *out, char *err)
{
    rt_load_opts def;
    if (!opts) {
        rt_load_opts_defaults(&def);
        opts = &def;
    }
    memset(out, 0, sizeof *out);
    if (!path || !*path) {
        snprintf(err, RT_ERRLEN, "no data set path given: " EXPECTED);
        return -1;
    }
    if (rt_shape_check(shape, err) < 0)
        return -1;
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(err, RT_ERRLEN, "%s: %s: " EXPECTED, path, strerror(errno));
        return -1;
    }

    char *idx[4];
    int r = rt_idx_find(path, idx, err);
    if (r < 0)
        return -1;
    build_ctx b = {NULL, path, shape, opts, idx};
    if (r == 1) {
        uint64_t key;
        int rc = idx_key(idx, shape, &key, err);
        if (rc == 0)
            rc = with_cache(path, key, shape, opts, build_idx, &b, 0, out, err);
        for (int i = 0; i < 4; i++)
            free(idx[i]);
        return rc;
    }

    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, RT_ERRLEN, "%s: not a folder: " EXPECTED, path);
        return -1;
    }
    int parts = rt_dataset_load_parts(path, shape, opts, out, err);
    if (parts <= 0)
        return parts; /* loaded as DIR/train, DIR/val, DIR/test, or failed there */
    char *csv = rt_path_join(path, "ground_truth.csv");
    if (!csv) {
        snprintf(err, RT_ERRLEN, "%s: out of memory", path);
        return -1;
    }
    int kaggle = stat(csv, &st) == 0;
    free(csv);
    rt_scan scan;
    if ((kaggle ? rt_scan_kaggle : rt_scan_folder)(path, opts, &scan, err) < 0)
        return -1;
    b.scan = &scan;
    uint64_t key = rt_scan_key(&scan, kaggle ? KIND_KAGGLE : KIND_FOLDER, shape);
    int rc = with_cache(path, key, shape, opts, build_scan, &b, scan.nskipped, out, err);
    rt_scan_free(&scan);
    return rc;
}
