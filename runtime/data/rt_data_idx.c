/*
 * rt_data_idx.c - reads MNIST-style IDX sets (train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each plain or gzipped) into a data set:
 * train images first, then the test images, which stay the set's own test set. Magic numbers,
 * dimensions and sizes are checked so that a wrong or truncated file is a clear error.
 */
#include "rt_data_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <zlib.h>

/* The four files, in rt_idx_find's order, under their two usual spellings. */
static const char *const IDX_STEM[4][2] = {
    {"train-images-idx3-ubyte", "train-images.idx3-ubyte"},
    {"train-labels-idx1-ubyte", "train-labels.idx1-ubyte"},
    {"t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"},
    {"t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"},
};

static const char *const FASHION[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

/* The path of one of the four files in dir (plain or .gz), or NULL (*oom set on failure). */
static char *find_one(const char *dir, int which, int *oom)
{
    for (int s = 0; s < 2; s++)
        for (int gz = 0; gz < 2; gz++) {
            char name[64];
            snprintf(name, sizeof name, "%s%s", IDX_STEM[which][s], gz ? ".gz" : "");
            char *p = rt_path_join(dir, name);
            struct stat st;
            if (!p) {
                *oom = 1;
                return NULL;
            }
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
                return p;
            free(p);
        }
    return NULL;
}

int rt_idx_find(const char *path, char *files[4], char *err)
{
    struct stat st;
    char *dir;
    for (int i = 0; i < 4; i++)
        files[i] = NULL;
    if (stat(path, &st) < 0)
        return 0;
    if (S_ISREG(st.st_mode)) {
        /* One of the files: the set is the folder holding it. */
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        if (!strstr(base, "idx3-ubyte") && !strstr(base, "idx1-ubyte"))
            return 0;
        dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    } else if (S_ISDIR(st.st_mode)) {
        dir = strdup(path);
    } else {
        return 0;
    }
    int oom = !dir;
    if (dir)
        files[0] = find_one(dir, 0, &oom);
    if (!files[0]) {
        free(dir);
        if (oom) {
            snprintf(err, RT_ERRLEN, "%s: out of memory", path);
            return -1;
        }
        return 0;
    }
    for (int i = 1; i < 4; i++) {
        files[i] = find_one(dir, i, &oom);
        if (!files[i]) {
            if (oom)
                snprintf(err, RT_ERRLEN, "%s: out of memory", path);
            else
                snprintf(err, RT_ERRLEN,
                         "%s: IDX set without %s[.gz]: expected train-images-idx3-ubyte, "
                         "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                         "t10k-labels-idx1-ubyte (each may be .gz)", dir, IDX_STEM[i][0]);
            for (int k = 0; k < 4; k++) {
                free(files[k]);
                files[k] = NULL;
            }
            free(dir);
            return -1;
        }
    }
    free(dir);
    return 1;
}

/* Reads n bytes or reports how many were there. Returns 0, or -1 with err set. */
static int gz_read_all(gzFile f, const char *file, uint8_t *buf, size_t n, const char *what,
                       char *err)
{
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f, buf + got, (unsigned)chunk);
        if (r <= 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            if (zerr != Z_OK && zerr != Z_BUF_ERROR)
                snprintf(err, RT_ERRLEN, "%s: corrupt or truncated (%s) after %zu of the "
                         "%zu bytes of %s", file, msg, got, n, what);
            else
                snprintf(err, RT_ERRLEN, "%s: truncated: %zu of the %zu bytes of %s", file, got,
                         n, what);
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads an IDX file of unsigned bytes with ndims dimensions (1 labels, 3 images) into
 * dims[] and a malloc'ed *data. */
static int read_idx(const char *file, int ndims, int dims[3], uint8_t **data, char *err)
{
    *data = NULL;
    struct stat st;
    if (stat(file, &st) < 0) {
        snprintf(err, RT_ERRLEN, "%s: %s", file, strerror(errno));
        return -1;
    }
    gzFile f = gzopen(file, "rb");
    if (!f) {
        snprintf(err, RT_ERRLEN, "%s: cannot open: %s", file, strerror(errno));
        return -1;
    }
    gzbuffer(f, 1u << 17);
    uint8_t hdr[16];
    size_t hlen = 4 + 4 * (size_t)ndims;
    if (gz_read_all(f, file, hdr, hlen, "the header", err) < 0)
        goto fail;
    if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || hdr[3] != ndims) {
        snprintf(err, RT_ERRLEN, "%s: bad magic number 0x%02x%02x%02x%02x: expected 0x%08x "
                 "(IDX, unsigned bytes, %d dimension%s)", file, hdr[0], hdr[1], hdr[2], hdr[3],
                 0x800 + ndims, ndims, ndims > 1 ? "s" : "");
        goto fail;
    }
    size_t total = 1;
    for (int i = 0; i < ndims; i++) {
        uint32_t d = be32(hdr + 4 + 4 * i);
        uint32_t lim = i == 0 ? (uint32_t)INT_MAX / 4 : RT_IMAGE_MAX_SIDE;
        if (d == 0 || d > lim) {
            snprintf(err, RT_ERRLEN, "%s: dimension %d is %u: expected 1 to %u", file, i + 1,
                     d, lim);
            goto fail;
        }
        dims[i] = (int)d;
        total *= d;
    }
    /* A plain file's size is known before reading: check it for a clearer message. */
    if (gzdirect(f) && (size_t)st.st_size != hlen + total) {
        snprintf(err, RT_ERRLEN, "%s: %s: %lld bytes, expected %zu (a %zu-byte header and %zu "
                 "bytes of data)", file, (size_t)st.st_size < hlen + total ? "truncated"
                 : "too long", (long long)st.st_size, hlen + total, hlen, total);
        goto fail;
    }
    /* deflate cannot shrink data more than ~1032:1: a larger claim is a broken header. */
    if (!gzdirect(f) && total / 1032 > (size_t)st.st_size + 64) {
        snprintf(err, RT_ERRLEN, "%s: the header announces %zu bytes of data, more than the "
                 "%lld compressed bytes can hold", file, total, (long long)st.st_size);
        goto fail;
    }
    if (!(*data = malloc(total))) {
        snprintf(err, RT_ERRLEN, "%s: out of memory for %zu bytes", file, total);
        goto fail;
    }
    if (gz_read_all(f, file, *data, total, "data", err) < 0)
        goto fail;
    uint8_t extra;
    if (gzread(f, &extra, 1) > 0) {
        snprintf(err, RT_ERRLEN, "%s: too long: data continues after the %zu bytes that the "
                 "header announces", file, total);
        goto fail;
    }
    gzclose(f);
    return 0;
fail:
    free(*data);
    *data = NULL;
    gzclose(f);
    return -1;
}

/* Is this a Fashion-MNIST set (its path, as given, contains "fashion" in any case)? */
static int is_fashion(const char *file)
{
    static const char word[] = "fashion";
    for (size_t i = 0; file[i]; i++) {
        size_t k = 0;
        while (word[k] && tolower((unsigned char)file[i + k]) == word[k])
            k++;
        if (word[k] == 0)
            return 1;
    }
    return 0;
}

typedef struct {
    const uint8_t *src[2];  /* train, test pixels */
    int ntrain, rows, cols;
    rt_shape shape;
    uint8_t *pix;
    atomic_int failed;
} convert_ctx;

static void convert_one(void *arg, int i)
{
    convert_ctx *c = arg;
    size_t in = (size_t)c->rows * c->cols;
    const uint8_t *src = i < c->ntrain ? c->src[0] + (size_t)i * in
                                       : c->src[1] + (size_t)(i - c->ntrain) * in;
    char err[RT_ERRLEN];
    size_t chw = (size_t)c->shape.c * c->shape.h * c->shape.w;
    if (rt_pixels_to_planar(src, c->cols, c->rows, 1, c->shape, c->pix + (size_t)i * chw, err))
        atomic_store(&c->failed, 1); /* only out of memory */
}

int rt_idx_read(char *const files[4], rt_shape shape, const rt_load_opts *opts,
                rt_dataset *out, char *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *data[4] = {NULL, NULL, NULL, NULL};
    int dims[4][3];
    int rc = -1;
    for (int i = 0; i < 4; i++)
        if (read_idx(files[i], i % 2 == 0 ? 3 : 1, dims[i], &data[i], err) < 0)
            goto done;
    for (int s = 0; s < 4; s += 2)
        if (dims[s][0] != dims[s + 1][0]) {
            snprintf(err, RT_ERRLEN, "%s holds %d images but %s %d labels", files[s],
                     dims[s][0], files[s + 1], dims[s + 1][0]);
            goto done;
        }
    if (dims[0][1] != dims[2][1] || dims[0][2] != dims[2][2]) {
        snprintf(err, RT_ERRLEN, "%s has %dx%d images but %s %dx%d", files[0], dims[0][1],
                 dims[0][2], files[2], dims[2][1], dims[2][2]);
        goto done;
    }
    const int ntr = dims[0][0], nte = dims[2][0], n = ntr + nte;
    const int rows = dims[0][1], cols = dims[0][2];
    const size_t chw = (size_t)shape.c * shape.h * shape.w;
    if (chw > (size_t)-1 / 2 / (size_t)n) {
        snprintf(err, RT_ERRLEN, "%s: %d images of %zu pixels do not fit in memory", files[0],
                 n, chw);
        goto done;
    }
    out->n = n;
    out->c = shape.c;
    out->h = shape.h;
    out->w = shape.w;
    out->ntest_fixed = nte;
    out->pix = malloc((size_t)n * chw);
    out->label = malloc((size_t)n * sizeof *out->label);
    if (!out->pix || !out->label)
        goto oom;

    /* Labels: classes 0..9 (more if a label says so). */
    int maxl = 0;
    for (int i = 0; i < n; i++) {
        int l = i < ntr ? data[1][i] : data[3][i - ntr];
        out->label[i] = l;
        if (l > maxl)
            maxl = l;
    }
    out->nclasses = maxl < 10 ? 10 : maxl + 1;
    if (!(out->classnames = calloc((size_t)out->nclasses, sizeof *out->classnames)))
        goto oom;
    int fashion = out->nclasses == 10 && is_fashion(files[0]);
    for (int k = 0; k < out->nclasses; k++) {
        char num[16];
        snprintf(num, sizeof num, "%d", k);
        if (!(out->classnames[k] = strdup(fashion ? FASHION[k] : num)))
            goto oom;
    }

    /* Pixels: copied as they are, or grey resized / replicated to the network's shape. */
    if (shape.c == 1 && shape.h == rows && shape.w == cols) {
        memcpy(out->pix, data[0], (size_t)ntr * chw);
        memcpy(out->pix + (size_t)ntr * chw, data[2], (size_t)nte * chw);
    } else {
        convert_ctx c;
        c.src[0] = data[0];
        c.src[1] = data[2];
        c.ntrain = ntr;
        c.rows = rows;
        c.cols = cols;
        c.shape = shape;
        c.pix = out->pix;
        atomic_init(&c.failed, 0);
        rt_pool_run(n, rt_data_threads(opts, n), convert_one, &c);
        if (atomic_load(&c.failed))
            goto oom;
    }
    rc = 0;
    goto done;
oom:
    snprintf(err, RT_ERRLEN, "%s: out of memory", files[0]);
done:
    for (int i = 0; i < 4; i++)
        free(data[i]);
    if (rc < 0)
        rt_dataset_free(out);
    return rc;
}
