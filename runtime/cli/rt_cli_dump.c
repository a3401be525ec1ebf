/*
 * rt_cli_dump.c - `--dump FILE`: one forward, loss and backward pass of the model on a
 * seeded random batch, written with everything that went in and came out, so that another
 * implementation (generated C, PyTorch: bench/torch_compare.py) can redo it and compare.
 *
 * File layout, version 1. All integers are little-endian; values are IEEE-754 float32
 * little-endian except the loss (float64); no padding. With P = nparams, S = nstate and
 * N = n*c*h*w, the file is exactly 48 + 4N + 4n + 4nk + 8 + 8P + 8S bytes long.
 *
 *   0  4   magic "CNND"
 *   4  u32 version (1)
 *   8  u32 n          images in the batch
 *  12  u32 c, 16 u32 h, 20 u32 w   the input shape
 *  24  u32 k          classes (logits per image)
 *  28  u32 training   1: the forward ran in training mode (batch statistics, dropout)
 *  32  u64 P          parameters (and gradients)
 *  40  u64 S          state values (batchnorm running mean, variance)
 *  48      x          float32 [n][c][h][w], uniform in [0, 1) from rt_rng seeded with the seed
 *          labels     int32 [n], labels[i] = i % k
 *          logits     float32 [n][k], the last layer's output (a softmax there not applied)
 *          loss       float64, mean softmax cross-entropy (rt_softmax_xent)
 *          params     float32 [P], the network's flat parameter array (rt_layer offsets)
 *          grads      float32 [P], d(loss)/d(params) from backward
 *          state      float32 [S], before the forward
 *          state'     float32 [S], after the forward (differs only in training mode)
 */
#include "rt_cli_int.h"
#include "rt_lewrite.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DUMP_VERSION 1

int rt_cli_dump(const rt_cli_env *e, const rt_dump_cfg *c)
{
    const rt_netdesc *d = e->d;
    char err[RT_ERRLEN];
    int n = c->batch, k = rt_netdesc_classes(d), rc = RT_EXIT_OK;
    rt_shape in = d->layers[0].out;
    size_t isz = (size_t)in.c * in.h * in.w;
    rt_model *m = rt_cli_make(e, n, c->threads, err);
    if (!m)
        return RT_EXIT_RUN;
    float *x = malloc(sizeof(float) * (size_t)n * isz);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)n);
    int *ilabels = malloc(sizeof(int) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)n * k);
    float *dlogits = malloc(sizeof(float) * (size_t)n * k);
    float *state0 = malloc(sizeof(float) * (m->nstate ? m->nstate : 1));
    if (!x || !labels || !ilabels || !logits || !dlogits || !state0) {
        rt_cli_error(e, "out of memory");
        rc = RT_EXIT_RUN;
        goto done;
    }
    if (c->weights) {
        if (rt_weights_load_named(c->weights, m, NULL, NULL, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = RT_EXIT_RUN;
            goto done;
        }
    } else {
        rt_init_params(d, m->params, m->state, c->seed);
    }
    if (m->seed_dropout)
        m->seed_dropout(m->self, c->seed);
    rt_cli_random_batch(x, ilabels, n, isz, k, c->seed);
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)ilabels[i];
    if (m->nstate)
        memcpy(state0, m->state, sizeof(float) * m->nstate);
    if (m->forward(m->self, x, n, c->training ? RT_TRAIN : RT_EVAL, logits) != 0) {
        rt_cli_error(e, "%s", m->err[0] ? m->err : "the forward pass failed");
        rc = RT_EXIT_RUN;
        goto done;
    }
    double loss = rt_softmax_xent(logits, ilabels, n, k, NULL, dlogits, NULL);
    if (m->backward(m->self, dlogits, n) != 0) {
        rt_cli_error(e, "%s", m->err[0] ? m->err : "the backward pass failed");
        rc = RT_EXIT_RUN;
        goto done;
    }

    rt_atomic_file af;
    if (rt_atomic_open(&af, c->file) < 0) {
        rt_cli_error(e, "cannot write %s: %s", c->file, strerror(errno));
        rc = RT_EXIT_RUN;
        goto done;
    }
    rt_lewriter *o = rt_le_create(af.f, NULL);
    if (!o) {
        rt_atomic_close(&af, 0, 0);
        rt_cli_error(e, "out of memory");
        rc = RT_EXIT_RUN;
        goto done;
    }
    rt_le_bytes(o, "CNND", 4);
    rt_le_u32(o, DUMP_VERSION);
    rt_le_u32(o, (uint32_t)n);
    rt_le_u32(o, (uint32_t)in.c);
    rt_le_u32(o, (uint32_t)in.h);
    rt_le_u32(o, (uint32_t)in.w);
    rt_le_u32(o, (uint32_t)k);
    rt_le_u32(o, (uint32_t)(c->training != 0));
    rt_le_u64(o, (uint64_t)m->nparams);
    rt_le_u64(o, (uint64_t)m->nstate);
    rt_le_f32s(o, x, (size_t)n * isz);
    rt_le_i32s(o, labels, (size_t)n);
    rt_le_f32s(o, logits, (size_t)n * k);
    uint64_t lb;
    memcpy(&lb, &loss, sizeof lb);
    rt_le_u64(o, lb);
    rt_le_f32s(o, m->params, m->nparams);
    rt_le_f32s(o, m->grads, m->nparams);
    rt_le_f32s(o, state0, m->nstate);
    rt_le_f32s(o, m->state, m->nstate);
    int ok = rt_le_flush(o) == 0;     /* else errno says why */
    int closed = rt_atomic_close(&af, ok, 0), err_no = errno;
    rt_le_destroy(o);
    if (closed < 0) {
        rt_cli_error(e, "cannot write %s: %s", c->file, strerror(err_no ? err_no : EIO));
        rc = RT_EXIT_RUN;
        goto done;
    }
    printf("dump %s: %d images %dx%dx%d, %d classes, %s mode, loss %.6f, %zu parameters, "
           "%zu state values\n", c->file, n, in.c, in.h, in.w, k,
           c->training ? "training" : "eval", loss, m->nparams, m->nstate);
done:
    free(x);
    free(labels);
    free(ilabels);
    free(logits);
    free(dlogits);
    free(state0);
    rt_model_destroy(m);
    return rc;
}
