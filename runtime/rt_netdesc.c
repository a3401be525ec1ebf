/*
 * rt_netdesc.c - facts about a network description: its number of classes and the hash
 * that ties a weights file to a structure. The hash (64-bit FNV-1a) covers every integer that
 * shapes the computation or the parameter layout: kinds, producers, shapes, windows, strides,
 * padding and its mode, flip, bias, activation, and the offsets and lengths of parameters and
 * state. It leaves out names, source lines and float hyper-parameters (a changed dropout rate
 * or batchnorm momentum still loads the same weights).
 */
#include "cnnrt.h"

int rt_netdesc_classes(const rt_netdesc *d)
{
    if (!d || d->nlayers < 1)
        return 0;
    const rt_shape *o = &d->layers[d->nlayers - 1].out;
    return o->c * o->h * o->w;
}

static double elems(rt_shape s)
{
    return (double)s.c * s.h * s.w;
}

double rt_layer_flops_of(const rt_layer *L)
{
    double nin = elems(L->in), nout = elems(L->out), f = 0;
    switch (L->kind) {
    case RT_CONV: f = 2.0 * L->in.c * L->kh * L->kw * nout; break;
    case RT_MAXPOOL:
    case RT_AVGPOOL: f = (double)L->kh * L->kw * nout; break;
    case RT_GLOBALAVGPOOL:
    case RT_GLOBALMAXPOOL: f = nin; break;
    case RT_DENSE: f = 2.0 * nin * nout; break;
    case RT_BATCHNORM: f = 2.0 * nin; break;
    case RT_ACTIVATION:
    case RT_ADD: f = nin; break;
    default: break;
    }
    if (L->bias && L->b_len)
        f += nout;
    if (L->act != RT_ACT_NONE && L->kind != RT_ACTIVATION)
        f += nout;
    return f;
}

double rt_layer_flops(const rt_netdesc *d, int i)
{
    return d && i >= 0 && i < d->nlayers ? rt_layer_flops_of(&d->layers[i]) : 0;
}

double rt_netdesc_flops(const rt_netdesc *d)
{
    double f = 0;
    for (int i = 0; d && i < d->nlayers; i++)
        f += rt_layer_flops(d, i);
    return f;
}

int rt_netdesc_pool_takes_relu(const rt_netdesc *d, int i)
{
    if (!d || i < 1 || i >= d->nlayers || d->layers[i].kind != RT_MAXPOOL)
        return 0;
    int s = d->layers[i].src;
    if (s < 1 || s >= i)
        return 0;
    const rt_layer *S = &d->layers[s];
    if ((S->kind != RT_CONV && S->kind != RT_DENSE) || S->act != RT_ACT_RELU)
        return 0;
    for (int j = 1; j < d->nlayers; j++)
        if (j != i && (d->layers[j].src == s || d->layers[j].src2 == s))
            return 0;
    return 1;
}

static uint64_t fnv(uint64_t h, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++) {
        h ^= (u >> (8 * i)) & 0xff;
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t rt_netdesc_hash(const rt_netdesc *d)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, d->nlayers);
    h = fnv(h, (int64_t)d->nparams);
    h = fnv(h, (int64_t)d->nstate);
    for (int i = 0; i < d->nlayers; i++) {
        const rt_layer *L = &d->layers[i];
        int conv = L->kind == RT_CONV;
        int window = conv || L->kind == RT_MAXPOOL || L->kind == RT_AVGPOOL;
        int act = conv || L->kind == RT_DENSE || L->kind == RT_ACTIVATION;
        /* fields a kind does not use are left out, so whatever a front end leaves there
         * does not matter */
        const int64_t v[] = {L->kind, L->src, L->kind == RT_ADD ? L->src2 : -1,
                             L->in.c, L->in.h, L->in.w, L->out.c, L->out.h, L->out.w,
                             window ? L->kh : 0, window ? L->kw : 0,
                             window ? L->sh : 0, window ? L->sw : 0,
                             window ? L->pt : 0, window ? L->pb : 0,
                             window ? L->pl : 0, window ? L->pr : 0,
                             conv ? (int64_t)L->padmode : 0, conv ? L->flip : 0,
                             conv || L->kind == RT_DENSE ? L->bias : 0,
                             act ? (int64_t)L->act : 0,
                             (int64_t)L->w_off, (int64_t)L->w_len, (int64_t)L->b_off,
                             (int64_t)L->b_len, (int64_t)L->s_off, (int64_t)L->s_len};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            h = fnv(h, v[k]);
    }
    return h;
}
