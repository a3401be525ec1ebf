/*
 * rt_checkpoint.c - training checkpoints: everything a run needs to continue bit for bit
 * after an interruption (the model's parameters and state, the optimizer's moments, the
 * shuffling generator and order, the best weights so far, the history) and the command-line
 * arguments that started it, so that `--resume FILE` alone can run it on. Written after
 * every epoch through rt_atomic_file with fsync (a crash or a kill -9 leaves the previous
 * checkpoint whole) and read only after every check passed.
 *
 * Format version 1 (doc/checkpoint-format.md). Integers unsigned little-endian unless said;
 * float32 and float64 as their IEEE-754 bits, little-endian.
 *   "CNNCKPT1", u32 version, u64 structure hash, u64 nparams, u64 nstate, u64 body length B
 *   body: u32 nargs, nargs x (u32 length, bytes): the run's arguments
 *         u32 epoch (completed), 4 x u64 generator state, u32 ntrain, i32 order[ntrain],
 *         u64 optimizer steps, u64 optimizer floats F, f32[F],
 *         f64 best criterion, i32 best epoch, f32 best params[nparams], f32 best state[nstate],
 *         f32 params[nparams], f32 state[nstate],
 *         u32 has_val, then per epoch: f64 train loss, train acc, val loss, val acc, secs, lr
 *   u32 CRC-32 of everything before, "TPKC"
 */
#include "rt_lewrite.h"
#include "rt_train_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MAGIC "CNNCKPT1"
#define ENDMARK "TPKC"
#define VERSION 1
#define HEADER_LEN 48
#define TRAILER_LEN 8
#define MAX_ARG 65536

static void le_f64(rt_lewriter *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    rt_le_u64(w, u);
}

static void write_body(rt_lewriter *w, const rt_model *m, const rt_train_state *s,
                       const rt_history *h, int nargs, char *const *args)
{
    rt_le_u32(w, (uint32_t)nargs);
    for (int i = 0; i < nargs; i++) {
        size_t len = strlen(args[i]);
        rt_le_u32(w, (uint32_t)len);
        rt_le_bytes(w, args[i], len);
    }
    rt_le_u32(w, (uint32_t)s->epoch);
    for (int i = 0; i < 4; i++)
        rt_le_u64(w, s->rng.s[i]);
    rt_le_u32(w, (uint32_t)s->ntrain);
    rt_le_i32s(w, (const int32_t *)s->order, (size_t)s->ntrain);
    rt_le_u64(w, (uint64_t)s->opt_step);
    rt_le_u64(w, (uint64_t)s->opt_floats);
    rt_le_f32s(w, s->opt_state, s->opt_floats);
    le_f64(w, s->best);
    rt_le_u32(w, (uint32_t)(int32_t)s->best_epoch);
    rt_le_f32s(w, s->best_params, m->nparams);
    rt_le_f32s(w, s->best_state, m->nstate);
    rt_le_f32s(w, m->params, m->nparams);
    rt_le_f32s(w, m->state, m->nstate);
    rt_le_u32(w, (uint32_t)h->has_val);
    rt_history hc = *h;
    double **f[RT_HISTORY_FIELDS];
    rt_history_fields(&hc, f);
    for (int e = 0; e < s->epoch; e++)
        for (int k = 0; k < RT_HISTORY_FIELDS; k++)
            le_f64(w, (*f[k])[e]);
}

/* The body's length in bytes, written first so that a cut file is told apart. */
static uint64_t body_len(const rt_model *m, const rt_train_state *s, int nargs, char *const *args)
{
    uint64_t n = 4;
    for (int i = 0; i < nargs; i++)
        n += 4 + strlen(args[i]);
    n += 4 + 32 + 4 + 4 * (uint64_t)s->ntrain + 8 + 8 + 4 * (uint64_t)s->opt_floats + 8 + 4;
    n += 2 * 4 * ((uint64_t)m->nparams + m->nstate) + 4 + 6 * 8 * (uint64_t)s->epoch;
    return n;
}

int rt_checkpoint_write(const char *file, const rt_model *m, const rt_train_state *s,
                        const rt_history *h, int nargs, char *const *args, char *err)
{
    rt_atomic_file a;
    if (rt_atomic_open(&a, file) < 0) {
        snprintf(err, RT_ERRLEN, "cannot write checkpoint %s: %s", file, strerror(errno));
        return -1;
    }
    rt_lewriter *w = rt_le_create(a.f, rt_weights_write_hook());
    if (!w) {
        rt_atomic_close(&a, 0, 0);
        snprintf(err, RT_ERRLEN, "out of memory");
        return -1;
    }
    rt_le_crc_begin(w);
    rt_le_bytes(w, MAGIC, 8);
    rt_le_u32(w, VERSION);
    rt_le_u64(w, m->desc->hash);
    rt_le_u64(w, (uint64_t)m->nparams);
    rt_le_u64(w, (uint64_t)m->nstate);
    rt_le_u64(w, body_len(m, s, nargs, args));
    rt_le_u32(w, 0); /* reserved: the header is 48 bytes */
    write_body(w, m, s, h, nargs, args);
    uint32_t crc = rt_le_crc_end(w);
    rt_le_u32(w, crc);
    rt_le_bytes(w, ENDMARK, 4);
    int failed = rt_le_flush(w) < 0, err_no = errno;
    if (rt_atomic_close(&a, !failed, 1) < 0 && !failed) {
        failed = 1;
        err_no = errno;
    }
    rt_le_destroy(w);
    if (failed) {
        snprintf(err, RT_ERRLEN, "cannot write checkpoint %s: %s (the previous checkpoint is "
                 "unchanged)", file, strerror(err_no));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ reading */

typedef struct {
    const unsigned char *p, *end;
    int bad;
} cursor;

static const unsigned char *take(cursor *c, uint64_t n)
{
    if (c->bad || (uint64_t)(c->end - c->p) < n) {
        c->bad = 1;
        return NULL;
    }
    const unsigned char *q = c->p;
    c->p += n;
    return q;
}

static uint32_t get32(cursor *c)
{
    const unsigned char *q = take(c, 4);
    return q ? rt_le_rd32(q) : 0;
}

static uint64_t get64(cursor *c)
{
    const unsigned char *q = take(c, 8);
    return q ? rt_le_rd64(q) : 0;
}

static double getf64(cursor *c)
{
    uint64_t u = get64(c);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* n float32 into out (may be NULL: skipped). */
static void getf32s(cursor *c, float *out, uint64_t n)
{
    const unsigned char *q = n > (uint64_t)SIZE_MAX / 4 ? NULL : take(c, 4 * n);
    if (!q || !out)
        return;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u = rt_le_rd32(q + 4 * i);
        memcpy(&out[i], &u, sizeof u);
    }
}

/* The whole file, checked for magic, version, length and CRC; *body points past the header. */
static int load_checked(const char *file, const rt_netdesc *d, unsigned char **buf,
                        size_t *len, cursor *body, char *err)
{
    if (rt_file_slurp(file, "checkpoint", buf, len, err) < 0)
        return -1;
    const unsigned char *b = *buf;
    if (*len < 8 || memcmp(b, MAGIC, 8) != 0) {
        snprintf(err, RT_ERRLEN, "%s is not a cnnc checkpoint (no CNNCKPT1 mark)", file);
        goto bad;
    }
    if (*len < HEADER_LEN + TRAILER_LEN) {
        snprintf(err, RT_ERRLEN, "checkpoint %s is cut short (%zu bytes)", file, *len);
        goto bad;
    }
    if (rt_le_rd32(b + 8) != VERSION) {
        snprintf(err, RT_ERRLEN, "checkpoint %s has format version %u; this program reads "
                 "version %d", file, rt_le_rd32(b + 8), VERSION);
        goto bad;
    }
    uint64_t blen = rt_le_rd64(b + 36);
    if (blen != (uint64_t)(*len - HEADER_LEN - TRAILER_LEN)) {
        snprintf(err, RT_ERRLEN, "checkpoint %s is %s (%zu bytes, the header says %llu): it "
                 "was cut short or damaged", file, blen > *len ? "cut short" : "the wrong length",
                 *len, (unsigned long long)(blen + HEADER_LEN + TRAILER_LEN));
        goto bad;
    }
    size_t n = *len - TRAILER_LEN;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < n;) { /* zlib takes uInt lengths */
        uInt chunk = n - off > (size_t)UINT_MAX ? UINT_MAX : (uInt)(n - off);
        crc = crc32(crc, b + off, chunk);
        off += chunk;
    }
    if ((uint32_t)crc != rt_le_rd32(b + n) || memcmp(b + n + 4, ENDMARK, 4) != 0) {
        snprintf(err, RT_ERRLEN, "checkpoint %s is damaged (checksum mismatch)", file);
        goto bad;
    }
    if (rt_le_rd64(b + 12) != d->hash || rt_le_rd64(b + 20) != d->nparams || rt_le_rd64(b + 28) != d->nstate) {
        snprintf(err, RT_ERRLEN, "checkpoint %s belongs to another network (structure hash "
                 "%016llx, this network's %016llx)", file, (unsigned long long)rt_le_rd64(b + 12),
                 (unsigned long long)d->hash);
        goto bad;
    }
    body->p = b + HEADER_LEN;
    body->end = b + n;
    body->bad = 0;
    return 0;
bad:
    free(*buf);
    *buf = NULL;
    return -1;
}

/* The stored arguments (malloc'ed). */
static int read_args(cursor *c, int *nargs, char ***args)
{
    uint32_t na = get32(c);
    if (c->bad || na > 4096)
        return -1;
    char **a = calloc(na + 1, sizeof *a);
    if (!a)
        return -1;
    for (uint32_t i = 0; i < na; i++) {
        uint32_t len = get32(c);
        const unsigned char *q = len <= MAX_ARG ? take(c, len) : NULL;
        if (!q || !(a[i] = malloc(len + 1))) {
            rt_names_free(a, (int)na);
            return -1;
        }
        memcpy(a[i], q, len);
        a[i][len] = 0;
    }
    *nargs = (int)na;
    *args = a;
    return 0;
}

int rt_checkpoint_args(const char *file, const rt_netdesc *d, int *nargs, char ***args,
                       char *err)
{
    unsigned char *buf;
    size_t len;
    cursor c;
    if (load_checked(file, d, &buf, &len, &c, err) < 0)
        return -1;
    int rc = read_args(&c, nargs, args);
    if (rc < 0)
        snprintf(err, RT_ERRLEN, "checkpoint %s is damaged (bad argument list)", file);
    free(buf);
    return rc;
}

int rt_checkpoint_read(const char *file, rt_model *m, rt_train_state *s, rt_history *h,
                       char *err)
{
    unsigned char *buf;
    size_t len;
    cursor c;
    memset(s, 0, sizeof *s);
    memset(h, 0, sizeof *h);
    if (load_checked(file, m->desc, &buf, &len, &c, err) < 0)
        return -1;
    int nargs;
    char **args;
    if (read_args(&c, &nargs, &args) < 0)
        goto bad;
    rt_names_free(args, nargs);
    s->epoch = (int)get32(&c);
    for (int i = 0; i < 4; i++)
        s->rng.s[i] = get64(&c);
    uint32_t ntrain = get32(&c);
    if (c.bad || s->epoch < 1 || s->epoch > 1000000 || ntrain > (uint32_t)INT_MAX ||
        (uint64_t)ntrain * 4 > (uint64_t)(c.end - c.p))
        goto bad;
    s->ntrain = (int)ntrain;
    s->order = malloc(sizeof(int) * (ntrain ? ntrain : 1));
    const unsigned char *q = take(&c, 4 * (uint64_t)ntrain);
    if (!s->order || !q)
        goto bad;
    for (uint32_t i = 0; i < ntrain; i++)
        s->order[i] = (int)(int32_t)rt_le_rd32(q + 4 * i);
    s->opt_step = (long)get64(&c);
    uint64_t nf = get64(&c);
    if (c.bad || nf > (uint64_t)(c.end - c.p) / 4)
        goto bad;
    s->opt_floats = (size_t)nf;
    s->opt_state = malloc(sizeof(float) * (nf ? nf : 1));
    s->best_params = malloc(sizeof(float) * (m->nparams ? m->nparams : 1));
    s->best_state = malloc(sizeof(float) * (m->nstate ? m->nstate : 1));
    float *params = malloc(sizeof(float) * (m->nparams ? m->nparams : 1));
    float *state = malloc(sizeof(float) * (m->nstate ? m->nstate : 1));
    if (!s->opt_state || !s->best_params || !s->best_state || !params || !state) {
        free(params);
        free(state);
        goto bad;
    }
    getf32s(&c, s->opt_state, nf);
    s->best = getf64(&c);
    s->best_epoch = (int)(int32_t)get32(&c);
    getf32s(&c, s->best_params, m->nparams);
    getf32s(&c, s->best_state, m->nstate);
    getf32s(&c, params, m->nparams);
    getf32s(&c, state, m->nstate);
    int has_val = (int)get32(&c);
    int ok = !c.bad && s->best_epoch >= -1 && s->best_epoch < s->epoch &&
             rt_history_alloc(h, s->epoch) == 0;
    h->has_val = has_val;
    double **f[RT_HISTORY_FIELDS];
    rt_history_fields(h, f);
    for (int e = 0; ok && e < s->epoch; e++)
        for (int k = 0; k < RT_HISTORY_FIELDS; k++)
            (*f[k])[e] = getf64(&c);
    if (!ok || c.bad || c.p != c.end) {
        free(params);
        free(state);
        goto bad;
    }
    h->epochs = s->epoch;
    h->best_epoch = s->best_epoch;
    memcpy(m->params, params, sizeof(float) * m->nparams);
    memcpy(m->state, state, sizeof(float) * m->nstate);
    free(params);
    free(state);
    free(buf);
    return 0;
bad:
    snprintf(err, RT_ERRLEN, "checkpoint %s is damaged (its contents do not add up)", file);
    free(buf);
    rt_train_state_free(s);
    rt_history_free(h);
    return -1;
}
