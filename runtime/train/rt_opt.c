/*
 * rt_opt.c - the optimizers, following torch.optim.SGD and torch.optim.Adam step for step:
 * weight decay is added to the gradient (L2, not AdamW); SGD's momentum buffer starts as the
 * first gradient (dampening 0, no Nesterov); Adam uses bias correction with eps added after
 * the square root of the corrected second moment. rt_opt_step_mt splits the parameters
 * over a pool (the same bits: every parameter is updated on its own).
 */
#include "cnnrt.h"
#include "rt_kernels.h"

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
    if (cfg->kind == RT_OPT_ADAM)
        o->v = calloc(k, sizeof *o->v);
    if (!o->m || (cfg->kind == RT_OPT_ADAM && !o->v)) {
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

/* Both steps run in blocks of RT_VEC parameters staged in local arrays (all loads before all
 * stores), so that gcc -O2 vectorizes them (see rt_kernels.h); with -fno-math-errno (this
 * library's flags) sqrtf vectorizes too. The last block is padded with zeros. */
static void sgd_step(rt_opt *o, float *params, const float *grads)
{
    const float lr = o->cfg.lr, mom = o->cfg.momentum, wd = o->cfg.weight_decay;
    const int first = o->step == 0;
    for (size_t i = 0; i < o->n; i += RT_VEC) {
        int n = o->n - i < RT_VEC ? (int)(o->n - i) : RT_VEC;
        float p[RT_VEC] = {0}, g[RT_VEC] = {0}, m[RT_VEC] = {0};
        memcpy(p, params + i, n * sizeof *p);
        memcpy(g, grads + i, n * sizeof *g);
        memcpy(m, o->m + i, n * sizeof *m);
        for (int k = 0; k < RT_VEC; k++)
            g[k] += wd * p[k]; /* wd 0 adds exactly 0 */
        if (mom != 0.0f) {
            if (first)
                for (int k = 0; k < RT_VEC; k++)
                    m[k] = g[k];
            else
                for (int k = 0; k < RT_VEC; k++)
                    m[k] = mom * m[k] + g[k];
            for (int k = 0; k < RT_VEC; k++)
                g[k] = m[k];
        }
        for (int k = 0; k < RT_VEC; k++)
            p[k] -= lr * g[k];
        memcpy(params + i, p, n * sizeof *p);
        if (mom != 0.0f)
            memcpy(o->m + i, m, n * sizeof *m);
    }
}

static void adam_step(rt_opt *o, float *params, const float *grads)
{
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    const float wd = o->cfg.weight_decay;
    const double t = (double)(o->step + 1);
    /* as PyTorch: step_size = lr / (1 - b1^t), denom = sqrt(v) / sqrt(1 - b2^t) + eps */
    const float step_size = (float)(o->cfg.lr / (1.0 - pow(b1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(b2, t));
    for (size_t i = 0; i < o->n; i += RT_VEC) {
        int n = o->n - i < RT_VEC ? (int)(o->n - i) : RT_VEC;
        float p[RT_VEC] = {0}, g[RT_VEC] = {0}, m[RT_VEC] = {0}, v[RT_VEC] = {0};
        memcpy(p, params + i, n * sizeof *p);
        memcpy(g, grads + i, n * sizeof *g);
        memcpy(m, o->m + i, n * sizeof *m);
        memcpy(v, o->v + i, n * sizeof *v);
        for (int k = 0; k < RT_VEC; k++) {
            float d = g[k] + wd * p[k];
            m[k] += (1.0f - b1) * (d - m[k]); /* torch's lerp_(grad, 1 - beta1) */
            v[k] = v[k] * b2 + (1.0f - b2) * d * d;
            float denom = sqrtf(v[k]) / bc2_sqrt + eps;
            p[k] -= step_size * (m[k] / denom);
        }
        memcpy(params + i, p, n * sizeof *p);
        memcpy(o->m + i, m, n * sizeof *m);
        memcpy(o->v + i, v, n * sizeof *v);
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
    if (part.cfg.kind == RT_OPT_ADAM)
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
