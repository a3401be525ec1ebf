/*
 * rt_opt.c - the optimizers, following torch.optim.SGD, Adam and AdamW step for step: SGD
 * and Adam add weight decay to the gradient (L2); AdamW decays the weights themselves first
 * (p -= lr wd p); SGD's momentum buffer starts as the first gradient (dampening 0), with
 * Nesterov stepping along g + momentum * buffer; Adam uses bias correction with eps added
 * after the square root of the corrected second moment. rt_opt_step_mt splits the
 * parameters over a pool (the same bits: every parameter is updated on its own). Also
 * clip_grad_norm_'s clipping of the gradient by its global L2 norm.
 */
#include "cnnrt.h"
#include "rt_kernels.h"
#include "rt_simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct rt_opt {
    rt_opt_cfg cfg;
    size_t n;
    long step;      /* steps taken */
    float *m, *v;   /* SGD: momentum buffer in m; Adam: first and second moments */
};

rt_opt *rt_opt_create(const rt_opt_cfg *cfg, size_t n)
{
    rt_opt *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->cfg = *cfg;
    o->n = n;
    size_t k = n ? n : 1;
    o->m = calloc(k, sizeof *o->m);
    int adam = cfg->kind == RT_OPT_ADAM || cfg->kind == RT_OPT_ADAMW;
    if (adam)
        o->v = calloc(k, sizeof *o->v);
    if (!o->m || (adam && !o->v)) {
        rt_opt_destroy(o);
        return NULL;
    }
    return o;
}

void rt_opt_destroy(rt_opt *o)
{
    if (!o)
        return;
    free(o->m);
    free(o->v);
    free(o);
}

/* n <= RT_VEC floats: whole blocks by a copy of constant size, which gcc turns into vector
 * moves instead of a call to memcpy per array and block. */
static inline void copy_block(float *dst, const float *src, int n)
{
    if (n == RT_VEC)
        memcpy(dst, src, RT_VEC * sizeof *dst);
    else
        memcpy(dst, src, (size_t)n * sizeof *dst);
}

/* Both steps run in blocks of RT_VEC parameters staged in local arrays (all loads before all
 * stores), so that gcc -O2 vectorizes them (see rt_kernels.h); with -fno-math-errno (this
 * library's flags) sqrtf vectorizes too. The last block is padded with zeros. RT_CLONES:
 * also compiled for AVX-512 and AVX2, same bits (Adam took 12 % of a Fashion training step
 * in the baseline's 4-float vectors, with a memcpy call per array and block). */
RT_CLONES static void sgd_step(rt_opt *o, float *params, const float *grads)
{
    const float lr = o->cfg.lr, mom = o->cfg.momentum, wd = o->cfg.weight_decay;
    const int first = o->step == 0, nesterov = o->cfg.nesterov && mom != 0.0f;
    for (size_t i = 0; i < o->n; i += RT_VEC) {
        int n = o->n - i < RT_VEC ? (int)(o->n - i) : RT_VEC;
        float p[RT_VEC] = {0}, g[RT_VEC] = {0}, m[RT_VEC] = {0};
        copy_block(p, params + i, n);
        copy_block(g, grads + i, n);
        copy_block(m, o->m + i, n);
        for (int k = 0; k < RT_VEC; k++)
            g[k] += wd * p[k]; /* wd 0 adds exactly 0 */
        if (mom != 0.0f) {
            if (first)
                for (int k = 0; k < RT_VEC; k++)
                    m[k] = g[k];
            else
                for (int k = 0; k < RT_VEC; k++)
                    m[k] = mom * m[k] + g[k];
            if (nesterov) /* torch: grad = grad.add(buf, alpha=momentum) */
                for (int k = 0; k < RT_VEC; k++)
                    g[k] += mom * m[k];
            else
                for (int k = 0; k < RT_VEC; k++)
                    g[k] = m[k];
        }
        for (int k = 0; k < RT_VEC; k++)
            p[k] -= lr * g[k];
        copy_block(params + i, p, n);
        if (mom != 0.0f)
            copy_block(o->m + i, m, n);
    }
}

RT_CLONES static void adam_step(rt_opt *o, float *params, const float *grads)
{
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    /* Adam: wd joins the gradient; AdamW: p *= 1 - lr wd before the update (torch's
     * param.mul_(1 - lr * weight_decay)), and the gradient stays as it is */
    const int decoupled = o->cfg.kind == RT_OPT_ADAMW;
    const float wd = decoupled ? 0.0f : o->cfg.weight_decay;
    const float keep = decoupled ? (float)(1.0 - (double)o->cfg.lr * o->cfg.weight_decay) : 1.0f;
    const double t = (double)(o->step + 1);
    /* as PyTorch: step_size = lr / (1 - b1^t), denom = sqrt(v) / sqrt(1 - b2^t) + eps */
    const float step_size = (float)(o->cfg.lr / (1.0 - pow(b1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(b2, t));
    for (size_t i = 0; i < o->n; i += RT_VEC) {
        int n = o->n - i < RT_VEC ? (int)(o->n - i) : RT_VEC;
        float p[RT_VEC] = {0}, g[RT_VEC] = {0}, m[RT_VEC] = {0}, v[RT_VEC] = {0};
        copy_block(p, params + i, n);
        copy_block(g, grads + i, n);
        copy_block(m, o->m + i, n);
        copy_block(v, o->v + i, n);
        for (int k = 0; k < RT_VEC; k++) {
            p[k] *= keep; /* 1 for Adam: exact */
            float d = g[k] + wd * p[k];
            m[k] += (1.0f - b1) * (d - m[k]); /* torch's lerp_(grad, 1 - beta1) */
            v[k] = v[k] * b2 + (1.0f - b2) * d * d;
            float denom = sqrtf(v[k]) / bc2_sqrt + eps;
            p[k] -= step_size * (m[k] / denom);
        }
        copy_block(params + i, p, n);
        copy_block(o->m + i, m, n);
        copy_block(o->v + i, v, n);
    }
}

/* A worker's share: whole blocks of RT_VEC parameters, so that every parameter sees the
 * same arithmetic whatever the number of workers. */
typedef struct {
    rt_opt *o;
    float *params;
    const float *grads;
} step_job;

static void step_task(void *arg, rt_worker *w)
{
    const step_job *j = arg;
    size_t lo, hi;
    rt_worker_blocks(w, j->o->n, RT_VEC, &lo, &hi);
    if (lo >= hi)
        return;
    rt_opt part = *j->o; /* the same settings and step over [lo, hi) */
    part.n = hi - lo;
    part.m = j->o->m + lo;
    part.v = j->o->v ? j->o->v + lo : NULL;
    if (part.cfg.kind == RT_OPT_ADAM || part.cfg.kind == RT_OPT_ADAMW)
        adam_step(&part, j->params + lo, j->grads + lo);
    else
        sgd_step(&part, j->params + lo, j->grads + lo);
}

void rt_opt_step_mt(rt_opt *o, float *params, const float *grads, rt_threads *tp)
{
    step_job j = {o, params, grads};
    rt_threads_run(o->n >= RT_SERIAL_BELOW ? tp : NULL, step_task, &j);
    o->step++;
}

void rt_opt_step(rt_opt *o, float *params, const float *grads)
{
    rt_opt_step_mt(o, params, grads, NULL);
}

void rt_opt_set_lr(rt_opt *o, float lr)
{
    o->cfg.lr = lr;
}

/* torch.nn.utils.clip_grad_norm_(max_norm): total = ||g||_2 over every parameter,
 * coef = max_norm / (total + 1e-6), g *= coef when coef < 1. The norm is summed in double,
 * serially (the same bits for any thread count). */
double rt_clip_grad_norm(float *g, size_t n, float max_norm)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++)
        ss += (double)g[i] * g[i];
    double total = sqrt(ss);
    double coef = max_norm / (total + 1e-6);
    if (max_norm > 0.0f && coef < 1.0) {
        float c = (float)coef;
        for (size_t i = 0; i < n; i++)
            g[i] *= c;
    }
    return total;
}

/* ------------------------------------------------------------------ checkpoints */

size_t rt_opt_state_floats(const rt_opt *o)
{
    return o->n + (o->v ? o->n : 0); /* m (SGD's momentum buffer, Adam's first moment), v */
}

long rt_opt_export(const rt_opt *o, float *buf)
{
    memcpy(buf, o->m, o->n * sizeof *buf);
    if (o->v)
        memcpy(buf + o->n, o->v, o->n * sizeof *buf);
    return o->step;
}

void rt_opt_import(rt_opt *o, long steps, const float *buf)
{
    memcpy(o->m, buf, o->n * sizeof *buf);
    if (o->v)
        memcpy(o->v, buf + o->n, o->n * sizeof *buf);
    o->step = steps;
}
