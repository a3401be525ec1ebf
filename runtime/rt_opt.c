/*
 * rt_opt.c - the optimizers, following torch.optim.SGD and torch.optim.Adam step for step:
 * weight decay is added to the gradient (L2, not AdamW); SGD's momentum buffer starts as the
 * first gradient (dampening 0, no Nesterov); Adam uses bias correction with eps added after
 * the square root of the corrected second moment.
 */
#include "cnnrt.h"
#include "rt_kernels.h"

#include <math.h>
#include <stdlib.h>

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

/* Both steps run in blocks of RT_VEC parameters, so that gcc -O2 vectorizes them (see
 * rt_kernels.h); with -fno-math-errno (this library's flags) sqrtf vectorizes too. */
static void sgd_block(const rt_opt *o, float *p, const float *g, float *m, int n)
{
    const float lr = o->cfg.lr, mom = o->cfg.momentum, wd = o->cfg.weight_decay;
    const int first = o->step == 0;
    for (int i = 0; i < n; i++) {
        float d = g[i] + wd * p[i]; /* wd 0 adds exactly 0 */
        if (mom != 0.0f) {
            m[i] = first ? d : mom * m[i] + d;
            d = m[i];
        }
        p[i] -= lr * d;
    }
}

static void sgd_step(rt_opt *o, float *p, const float *g)
{
    size_t i = 0;
    for (; i + RT_VEC <= o->n; i += RT_VEC)
        sgd_block(o, p + i, g + i, o->m + i, RT_VEC);
    sgd_block(o, p + i, g + i, o->m + i, (int)(o->n - i));
}

static void adam_block(const rt_opt *o, float step_size, float bc2_sqrt, float *p,
                       const float *g, float *m, float *v, int n)
{
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    const float wd = o->cfg.weight_decay;
    for (int i = 0; i < n; i++) {
        float d = g[i] + wd * p[i];
        m[i] += (1.0f - b1) * (d - m[i]); /* torch's lerp_(grad, 1 - beta1) */
        v[i] = v[i] * b2 + (1.0f - b2) * d * d;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * (m[i] / denom);
    }
}

static void adam_step(rt_opt *o, float *p, const float *g)
{
    const double t = (double)(o->step + 1);
    /* as PyTorch: step_size = lr / (1 - b1^t), denom = sqrt(v) / sqrt(1 - b2^t) + eps */
    const float step_size = (float)(o->cfg.lr / (1.0 - pow(o->cfg.beta1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(o->cfg.beta2, t));
    size_t i = 0;
    for (; i + RT_VEC <= o->n; i += RT_VEC)
        adam_block(o, step_size, bc2_sqrt, p + i, g + i, o->m + i, o->v + i, RT_VEC);
    adam_block(o, step_size, bc2_sqrt, p + i, g + i, o->m + i, o->v + i, (int)(o->n - i));
}

void rt_opt_step(rt_opt *o, float *params, const float *grads)
{
    if (o->cfg.kind == RT_OPT_ADAM)
        adam_step(o, params, grads);
    else
        sgd_step(o, params, grads);
    o->step++;
}
