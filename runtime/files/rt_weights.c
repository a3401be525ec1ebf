/*
 * rt_weights.c - weights files: a trained network's parameters and batchnorm statistics,
 * with the structure hash and class names, saved atomically (a crash or a full disk never
 * destroys the previous file) and loaded only after every check passed.
 *
 * Format version 1 (doc/weights-format.md says the same at more length). All integers
 * are unsigned little-endian, all values IEEE-754 float32 little-endian.
 *
 *   header, 32 bytes
 *     0  4  magic "CNNW"
 *     4  u32 format version (1)
 *     8  u64 structure hash (rt_netdesc.hash, see rt_netdesc_hash)
 *    16  u64 body length B in bytes
 *    24  u32 number of tensors T
 *    28  u32 number of class names K (0 when unknown)
 *   body, B bytes
 *     network name: u32 length, that many bytes (UTF-8, no terminating NUL)
 *     K class names, each as u32 length + bytes
 *     T tensors, each: u32 layer index, u32 role, u32 ndim (1..4), u32 dims[ndim],
 *       then dims[0]*...*dims[ndim-1] float32 values. Roles: 0 weights, 1 bias,
 *       2 running mean, 3 running variance, 4 other state. In layer order; per layer
 *       the weights, then the bias, then the state tensors. Shapes: conv weights
 *       [out_c][in_c][kh][kw], dense weights [out][in], batchnorm gamma (weights) and
 *       beta (bias) [c], everything else one dimension.
 *   trailer, 8 bytes
 *     u32 CRC-32 (zlib's, the IEEE polynomial of zip/png) of header and body
 *     4  end mark "WNNC"
 *
 * So the file is exactly 32 + B + 8 bytes long, which tells a truncated file apart.
 * Loading checks, in order: magic, version, length, checksum, structure hash, and that
 * every tensor has the layer, role and shape this network expects.
 */
#include "rt_lewrite.h"
#include "rt_op.h"
#include "rt_train_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC "CNNW"
#define ENDMARK "WNNC"
#define HEADER_LEN 32
#define TRAILER_LEN 8
#define MAX_NAME 4096

enum { ROLE_W, ROLE_B, ROLE_MEAN, ROLE_VAR, ROLE_STATE, NROLES };
static const char *role_name[NROLES] = {"weights", "bias", "running mean",
                                         "running variance", "state"};

/* One tensor of the file as this network lays it out. */
typedef struct {
    uint32_t layer, role, ndim, dims[4];
    size_t off, len;        /* in params (roles 0, 1) or state (roles 2..4) */
} tensor;

/* ------------------------------------------------------------ the tensor list */

static void tensor_set(tensor *t, int layer, int role, size_t off, size_t len, int ndim,
                       const size_t *dims)
{
    t->layer = (uint32_t)layer;
    t->role = (uint32_t)role;
    t->off = off;
    t->len = len;
    size_t prod = 1;
    for (int i = 0; i < ndim; i++)
        prod *= dims[i];
    int ok = ndim > 0 && prod == len;
    for (int i = 0; ok && i < ndim; i++)
        ok = dims[i] <= UINT32_MAX;
    if (ok) {
        t->ndim = (uint32_t)ndim;
        for (int i = 0; i < ndim; i++)
            t->dims[i] = (uint32_t)dims[i];
    } else {                /* shape unknown for this kind: one dimension */
        t->ndim = 1;
        t->dims[0] = (uint32_t)len;
    }
}

/* The tensors of d in file order; checks they lie within the arrays and cover them. */
static int tensor_list(const rt_netdesc *d, size_t nparams, size_t nstate, tensor **out,
                       int *nout, char *err)
{
    tensor *t = malloc(sizeof *t * (size_t)(d->nlayers > 0 ? d->nlayers : 1) * 4);
    if (!t) {
        snprintf(err, RT_ERRLEN, "out of memory");
        return -1;
    }
    int n = 0;
    size_t pcount = 0, scount = 0;
    for (int i = 0; i < d->nlayers; i++) {
        const rt_layer *L = &d->layers[i];
        const rt_op *op = rt_op_of(L->kind);
        if (L->w_len) {
            size_t dims[4] = {L->w_len};
            int nd = op && op->weight_dims ? op->weight_dims(L, dims) : 1;
            tensor_set(&t[n++], i, ROLE_W, L->w_off, L->w_len, nd, dims);
            pcount += L->w_len;
        }
        if (L->b_len) {
            size_t one[1] = {L->b_len};
            tensor_set(&t[n++], i, ROLE_B, L->b_off, L->b_len, 1, one);
            pcount += L->b_len;
        }
        if (L->s_len) {
            if (op && (op->flags & RT_OP_RUNNING_STATS) && L->s_len == 2 * (size_t)L->out.c) {
                size_t c[1] = {(size_t)L->out.c};
                tensor_set(&t[n++], i, ROLE_MEAN, L->s_off, c[0], 1, c);
                tensor_set(&t[n++], i, ROLE_VAR, L->s_off + c[0], c[0], 1, c);
            } else {
                size_t one[1] = {L->s_len};
                tensor_set(&t[n++], i, ROLE_STATE, L->s_off, L->s_len, 1, one);
            }
            scount += L->s_len;
        }
    }
    for (int j = 0; j < n; j++) {
        size_t lim = t[j].role <= ROLE_B ? nparams : nstate;
        if (t[j].off > lim || t[j].len > lim - t[j].off) {
            snprintf(err, RT_ERRLEN, "layer %u's %s lies outside the model's %s array",
                     (unsigned)t[j].layer, role_name[t[j].role],
                     t[j].role <= ROLE_B ? "parameter" : "state");
            free(t);
            return -1;
        }
    }
    if (pcount != nparams || scount != nstate) {
        snprintf(err, RT_ERRLEN,
                 "the network's layers hold %zu parameters and %zu state values but the "
                 "model has %zu and %zu", pcount, scount, nparams, nstate);
        free(t);
        return -1;
    }
    *out = t;
    *nout = n;
    return 0;
}

/* ------------------------------------------------------------ writing */

static size_t default_write(const void *p, size_t size, size_t n, FILE *f)
{
    return fwrite(p, size, n, f);
}

static rt_write_fn write_fn = default_write;

void rt_weights_set_write_hook(rt_write_fn fn)
{
    write_fn = fn ? fn : default_write;
}

rt_write_fn rt_weights_write_hook(void)
{
    return write_fn;
}

static void w_str(rt_lewriter *w, const char *s, size_t len)
{
    rt_le_u32(w, (uint32_t)len);
    rt_le_bytes(w, s, len);
}

static size_t name_len(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > MAX_NAME ? MAX_NAME : n;
}

/* Writes the whole file to w. */
static void write_file(rt_lewriter *w, const rt_model *m, const tensor *t, int nt,
                       char *const *names, int nnames)
{
    const rt_netdesc *d = m->desc;
    uint64_t body = 4 + name_len(d->name);
    for (int i = 0; i < nnames; i++)
        body += 4 + name_len(names[i]);
    for (int i = 0; i < nt; i++)
        body += 12 + 4 * (uint64_t)t[i].ndim + 4 * (uint64_t)t[i].len;

    rt_le_crc_begin(w);
    rt_le_bytes(w, MAGIC, 4);
    rt_le_u32(w, RT_WEIGHTS_VERSION);
    rt_le_u64(w, d->hash);
    rt_le_u64(w, body);
    rt_le_u32(w, (uint32_t)nt);
    rt_le_u32(w, (uint32_t)nnames);
    w_str(w, d->name, name_len(d->name));
    for (int i = 0; i < nnames; i++)
        w_str(w, names[i] ? names[i] : "", name_len(names[i]));
    for (int i = 0; i < nt; i++) {
        rt_le_u32(w, t[i].layer);
        rt_le_u32(w, t[i].role);
        rt_le_u32(w, t[i].ndim);
        for (uint32_t k = 0; k < t[i].ndim; k++)
            rt_le_u32(w, t[i].dims[k]);
        const float *src = t[i].role <= ROLE_B ? m->params : m->state;
        rt_le_f32s(w, src + t[i].off, t[i].len);
    }
    uint32_t crc = rt_le_crc_end(w);    /* of header and body */
    rt_le_u32(w, crc);
    rt_le_bytes(w, ENDMARK, 4);
}

int rt_weights_save_named(const char *file, const rt_model *m, char *const *names,
                          int nclasses, char *err)
{
    tensor *t;
    int nt;
    if (nclasses < 0 || (nclasses > 0 && !names))
        nclasses = 0;
    if (tensor_list(m->desc, m->nparams, m->nstate, &t, &nt, err) < 0)
        return -1;

    rt_atomic_file a;
    if (rt_atomic_open(&a, file) < 0) {
        snprintf(err, RT_ERRLEN, "cannot write weights file %s: %s", file, strerror(errno));
        free(t);
        return -1;
    }
    rt_lewriter *w = rt_le_create(a.f, write_fn);
    if (!w) {
        rt_atomic_close(&a, 0, 0);
        free(t);
        snprintf(err, RT_ERRLEN, "out of memory");
        return -1;
    }
    write_file(w, m, t, nt, names, nclasses);
    int failed = rt_le_flush(w) < 0, err_no = errno;
    if (rt_atomic_close(&a, !failed, 1) < 0 && !failed) {
        failed = 1;
        err_no = errno;
    }
    rt_le_destroy(w);
    free(t);
    if (failed) {
        snprintf(err, RT_ERRLEN, "cannot write weights file %s: %s (any previous file is "
                 "unchanged)", file, strerror(err_no));
        return -1;
    }
    return 0;
}

int rt_weights_save(const char *file, const rt_model *m, char *err)
{
    return rt_weights_save_named(file, m, NULL, 0, err);
}

/* ------------------------------------------------------------ reading */


/* A bounds-checked cursor over the body. */
typedef struct {
    const unsigned char *p, *end;
} cursor;

static int c_u32(cursor *c, uint32_t *v)
{
    if (c->end - c->p < 4)
        return -1;
    *v = rt_le_rd32(c->p);
    c->p += 4;
    return 0;
}

/* A string into a fresh malloc'ed buffer. */
static int c_str(cursor *c, char **s)
{
    uint32_t n;
    if (c_u32(c, &n) < 0 || n > MAX_NAME || (size_t)(c->end - c->p) < n)
        return -1;
    *s = malloc((size_t)n + 1);
    if (!*s)
        return -1;
    memcpy(*s, c->p, n);
    (*s)[n] = 0;
    c->p += n;
    return 0;
}

void rt_names_free(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void fmt_shape(char *buf, size_t n, const uint32_t *dims, uint32_t ndim)
{
    size_t k = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < ndim && k < n; i++) {
        int r = snprintf(buf + k, n - k, "%s%u", i ? "x" : "", (unsigned)dims[i]);
        if (r < 0)
            break;
        k += (size_t)r;
    }
}

/* ------------------------------------------- naming the first layer that differs */

/* How a layer reads in messages: "conv 3x3 32, line 7". */
static void layer_desc(const rt_layer *L, char *buf, size_t n)
{
    int k;
    if (L->kind == RT_CONV)
        k = snprintf(buf, n, "conv %dx%d %d", L->kh, L->kw, L->out.c);
    else if (L->kind == RT_DENSE)
        k = snprintf(buf, n, "dense %d", L->out.c);
    else
        k = snprintf(buf, n, "%s", rt_kind_name(L->kind));
    if (L->line > 0 && k >= 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, ", line %d", L->line);
}

/* What differs between the file's tensor (layer, role, dims) and the network's tensor w
 * of the same layer and role, in the words of the layer: filters, kernels, units. */
static void tensor_diff(const tensor *w, uint32_t ndim, const uint32_t *dims, const rt_layer *L,
                        char *buf, size_t n)
{
    if (w->role == ROLE_W && L->kind == RT_CONV && ndim == 4 && w->ndim == 4) {
        if (dims[0] != w->dims[0])
            snprintf(buf, n, "the file has %u filters, the network %u", (unsigned)dims[0], (unsigned)w->dims[0]);
        else if (dims[1] != w->dims[1])
            snprintf(buf, n, "the file's filters read %u input channels, the network's %u", (unsigned)dims[1],
                     (unsigned)w->dims[1]);
        else
            snprintf(buf, n, "the file has %ux%u kernels, the network %ux%u", (unsigned)dims[2],
                     (unsigned)dims[3], (unsigned)w->dims[2], (unsigned)w->dims[3]);
        return;
    }
    if (w->role == ROLE_W && L->kind == RT_DENSE && ndim == 2 && w->ndim == 2) {
        if (dims[0] != w->dims[0])
            snprintf(buf, n, "the file has %u units, the network %u", (unsigned)dims[0], (unsigned)w->dims[0]);
        else
            snprintf(buf, n, "the file's layer reads %u inputs, the network's %u", (unsigned)dims[1],
                     (unsigned)w->dims[1]);
        return;
    }
    char got[64], want[64];
    fmt_shape(got, sizeof got, dims, ndim);
    fmt_shape(want, sizeof want, w->dims, w->ndim);
    if (ndim == 1 && w->ndim == 1 && w->role != ROLE_STATE)
        snprintf(buf, n, "the file has %u channels, the network %u", (unsigned)dims[0], (unsigned)w->dims[0]);
    else
        snprintf(buf, n, "the file's %s is [%s], the network's [%s]", role_name[w->role], got, want);
}

/* After a structure hash mismatch: reads the file's tensor records (c is at the first
 * one, nt of them) against network d's list and says where they first part, e.g.
 * "layer 3 (conv 3x3 32, line 7): the file has 16 filters, the network 32". The hash
 * stays the final guard: when every record matches, the difference is in a layer
 * without weights, and that is what the message says. */
static void first_difference(const rt_netdesc *d, size_t nparams, size_t nstate, cursor c, uint32_t nt,
                             char *buf, size_t n)
{
    char terr[RT_ERRLEN], desc[96];
    tensor *t;
    int ntx;
    snprintf(buf, n, "the layers differ");
    if (tensor_list(d, nparams, nstate, &t, &ntx, terr) < 0)
        return;
    for (int i = 0; i < ntx || (uint32_t)i < nt; i++) {
        uint32_t layer, role, ndim, dims[4];
        int have = (uint32_t)i < nt && c_u32(&c, &layer) == 0 && c_u32(&c, &role) == 0 && c_u32(&c, &ndim) == 0 &&
                   ndim >= 1 && ndim <= 4 && role < NROLES;
        for (uint32_t k = 0; have && k < ndim; k++)
            have = c_u32(&c, &dims[k]) == 0;
        if (!have && (uint32_t)i < nt)
            break; /* a malformed record: the hash message alone */
        if (i >= ntx) {
            snprintf(buf, n, "the file has weights for more layers (its tensor %d is layer %u's %s) after the "
                     "network's last layer with weights", i + 1, (unsigned)layer, role_name[role]);
            break;
        }
        const rt_layer *L = &d->layers[t[i].layer];
        layer_desc(L, desc, sizeof desc);
        if (!have) {
            snprintf(buf, n, "layer %u (%s): the file has no %s for it (it ends before)", (unsigned)t[i].layer,
                     desc, role_name[t[i].role]);
            break;
        }
        if (layer == t[i].layer && role == t[i].role) {
            int same = ndim == t[i].ndim;
            for (uint32_t k = 0; same && k < ndim; k++)
                same = dims[k] == t[i].dims[k];
            if (!same) {
                char why[180];
                tensor_diff(&t[i], ndim, dims, L, why, sizeof why);
                snprintf(buf, n, "layer %u (%s): %s", (unsigned)t[i].layer, desc, why);
                break;
            }
        } else {
            char got[64];
            fmt_shape(got, sizeof got, dims, ndim);
            snprintf(buf, n, "layer %u (%s): the network expects its %s here, the file has layer %u's %s [%s]",
                     (unsigned)t[i].layer, desc, role_name[t[i].role], (unsigned)layer, role_name[role], got);
            break;
        }
        /* skip the values */
        size_t len = 1;
        for (uint32_t k = 0; k < ndim; k++)
            len *= dims[k];
        if ((size_t)(c.end - c.p) / 4 < len)
            break;
        c.p += 4 * len;
        if (i + 1 == ntx && (uint32_t)i + 1 == nt)
            snprintf(buf, n, "every layer with weights matches; a layer without weights differs (a pooling, "
                     "an activation, a stride or a padding)");
    }
    free(t);
}

/* The arrays a file is read into: params[nparams] and state[nstate] for network d. */
typedef struct {
    const rt_netdesc *d;
    float *params, *state;
    size_t nparams, nstate;
} target;

/* Checks everything and copies the values into the arrays; on error they are untouched. */
static int parse(const char *file, const unsigned char *b, size_t len, const target *m,
                 char ***names_out, int *nnames_out, char *err)
{
    const rt_netdesc *d = m->d;
    if (len < 4 || memcmp(b, MAGIC, 4) != 0) {
        snprintf(err, RT_ERRLEN, "%s is not a cnnc weights file%s", file,
                 len == 0 ? " (it is empty)" : "");
        return -1;
    }
    if (len < HEADER_LEN) {
        snprintf(err, RT_ERRLEN, "%s is truncated: %zu bytes, shorter than the %d-byte header",
                 file, len, HEADER_LEN);
        return -1;
    }
    uint32_t version = rt_le_rd32(b + 4);
    if (version > RT_WEIGHTS_VERSION || version == 0) {
        snprintf(err, RT_ERRLEN, "%s has weights format version %u; this runtime (%s) reads "
                 "version %d and older: use a newer cnnc", file, (unsigned)version, RT_VERSION,
                 RT_WEIGHTS_VERSION);
        return -1;
    }
    uint64_t hash = rt_le_rd64(b + 8), body = rt_le_rd64(b + 16);
    uint32_t nt = rt_le_rd32(b + 24), nnames = rt_le_rd32(b + 28);
    if (body > (uint64_t)SIZE_MAX - HEADER_LEN - TRAILER_LEN ||
        len < HEADER_LEN + body + TRAILER_LEN) {
        snprintf(err, RT_ERRLEN, "%s is truncated: %zu bytes, the header announces %llu", file,
                 len, (unsigned long long)(HEADER_LEN + body + TRAILER_LEN));
        return -1;
    }
    size_t total = (size_t)(HEADER_LEN + body + TRAILER_LEN);
    if (len > total) {
        snprintf(err, RT_ERRLEN, "%s has %zu unexpected bytes after its end", file,
                 len - total);
        return -1;
    }
    const unsigned char *tr = b + HEADER_LEN + body;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < HEADER_LEN + body;) {
        size_t k = HEADER_LEN + body - off;
        if (k > (1u << 30))
            k = 1u << 30;
        crc = crc32(crc, b + off, (uInt)k);
        off += k;
    }
    if ((uint32_t)crc != rt_le_rd32(tr) || memcmp(tr + 4, ENDMARK, 4) != 0) {
        snprintf(err, RT_ERRLEN, "%s is corrupted: checksum mismatch (stored %08x, computed "
                 "%08x)", file, (unsigned)rt_le_rd32(tr), (unsigned)crc);
        return -1;
    }

    cursor c = {b + HEADER_LEN, b + HEADER_LEN + body};
    char *netname = NULL;
    if (c_str(&c, &netname) < 0)
        goto bad;
    if (hash != d->hash) {
        char why[320];
        cursor tc = c;
        char *skip = NULL;
        int ok = nnames <= 100000;
        for (uint32_t i = 0; ok && i < nnames; i++) { /* the class names come before the tensors */
            ok = c_str(&tc, &skip) == 0;
            free(skip);
            skip = NULL;
        }
        if (ok)
            first_difference(d, m->nparams, m->nstate, tc, nt, why, sizeof why);
        else
            snprintf(why, sizeof why, "the layers differ");
        snprintf(err, RT_ERRLEN, "%s: weights are for network '%s' with a different structure: %s "
                 "(structure hash %016llx; network '%s' has %016llx)", file, netname, why,
                 (unsigned long long)hash, d->name, (unsigned long long)d->hash);
        free(netname);
        return -1;
    }
    free(netname);

    char **names = NULL;
    if (nnames > 100000)
        goto bad;
    if (nnames) {
        names = calloc(nnames, sizeof *names);
        if (!names)
            goto bad;
        for (uint32_t i = 0; i < nnames; i++)
            if (c_str(&c, &names[i]) < 0) {
                rt_names_free(names, (int)nnames);
                goto bad;
            }
    }

    tensor *t;
    int ntx;
    if (tensor_list(d, m->nparams, m->nstate, &t, &ntx, err) < 0) {
        rt_names_free(names, (int)nnames);
        return -1;
    }
    if ((uint32_t)ntx != nt) {
        snprintf(err, RT_ERRLEN, "%s holds %u tensors, network '%s' has %d", file,
                 (unsigned)nt, d->name, ntx);
        goto fail;
    }
    /* first pass: check every record; second pass: copy */
    const unsigned char *data_start = c.p;
    for (int pass = 0; pass < 2; pass++) {
        c.p = data_start;
        for (int i = 0; i < ntx; i++) {
            uint32_t layer, role, ndim, dims[4];
            if (c_u32(&c, &layer) < 0 || c_u32(&c, &role) < 0 || c_u32(&c, &ndim) < 0 ||
                ndim < 1 || ndim > 4)
                goto badt;
            for (uint32_t k = 0; k < ndim; k++)
                if (c_u32(&c, &dims[k]) < 0)
                    goto badt;
            int same = layer == t[i].layer && role == t[i].role && ndim == t[i].ndim;
            for (uint32_t k = 0; same && k < ndim; k++)
                same = dims[k] == t[i].dims[k];
            if (!same) {
                char want[64], got[64];
                fmt_shape(want, sizeof want, t[i].dims, t[i].ndim);
                fmt_shape(got, sizeof got, dims, ndim);
                snprintf(err, RT_ERRLEN, "%s: tensor %d is layer %u's %s [%s], network '%s' "
                         "expects layer %u's %s [%s]", file, i + 1, (unsigned)layer,
                         role < NROLES ? role_name[role] : "?", got, d->name,
                         (unsigned)t[i].layer, role_name[t[i].role], want);
                goto fail;
            }
            if ((size_t)(c.end - c.p) / 4 < t[i].len)
                goto badt;
            if (pass == 1) {
                float *dst = (t[i].role <= ROLE_B ? m->params : m->state) + t[i].off;
                for (size_t k = 0; k < t[i].len; k++) {
                    uint32_t u = rt_le_rd32(c.p + 4 * k);
                    memcpy(&dst[k], &u, 4);
                }
            }
            c.p += 4 * t[i].len;
        }
        if (c.p != c.end)
            goto badt;
    }
    free(t);
    if (names_out) {
        *names_out = names;
        *nnames_out = (int)nnames;
    } else {
        rt_names_free(names, (int)nnames);
    }
    return 0;

badt:
    snprintf(err, RT_ERRLEN, "%s is malformed: its tensor records do not match their lengths",
             file);
fail:
    free(t);
    rt_names_free(names, (int)nnames);
    return -1;
bad:
    snprintf(err, RT_ERRLEN, "%s is malformed: bad name or class-name record", file);
    return -1;
}

/* Reads file into the arrays of m; the one reader behind both entry points below. */
static int read_into(const char *file, const target *m, char ***names, int *nclasses,
                     char *err)
{
    unsigned char *b;
    size_t len;
    if (names) {
        *names = NULL;
        *nclasses = 0;
    }
    if (rt_file_slurp(file, "weights file", &b, &len, err) < 0)
        return -1;
    int rc = parse(file, b, len, m, names, nclasses, err);
    free(b);
    return rc;
}

int rt_weights_read(const char *file, const rt_netdesc *d, float *params, float *state,
                    char ***names, int *nclasses, char *err)
{
    target t = {d, params, state, d->nparams, d->nstate};
    return read_into(file, &t, names, nclasses, err);
}

int rt_weights_load_named(const char *file, rt_model *m, char ***names, int *nclasses,
                          char *err)
{
    /* the model's own lengths: one that disagrees with its layers is refused as before */
    target t = {m->desc, m->params, m->state, m->nparams, m->nstate};
    return read_into(file, &t, names, nclasses, err);
}

int rt_weights_load(const char *file, rt_model *m, char *err)
{
    return rt_weights_load_named(file, m, NULL, NULL, err);
}
