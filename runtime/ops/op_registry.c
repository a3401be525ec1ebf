/*
 * op_registry.c - the registry's table (kind -> entry), the names made from the lists in
 * cnnrt.h, and the small helpers every entry shares. Adding a kind: its X() line in
 * RT_KIND_LIST, its entry in an ops/ file, and its line in the table below.
 */
#include "rt_op.h"

#include <string.h>

static const rt_op *const TABLE[RT_NKINDS] = {
    [RT_INPUT] = &rt_op_input,
    [RT_CONV] = &rt_op_conv,
    [RT_MAXPOOL] = &rt_op_maxpool,
    [RT_AVGPOOL] = &rt_op_avgpool,
    [RT_GLOBALAVGPOOL] = &rt_op_globalavgpool,
    [RT_GLOBALMAXPOOL] = &rt_op_globalmaxpool,
    [RT_FLATTEN] = &rt_op_flatten,
    [RT_DROPOUT] = &rt_op_dropout,
    [RT_DENSE] = &rt_op_dense,
    [RT_BATCHNORM] = &rt_op_batchnorm,
    [RT_ACTIVATION] = &rt_op_activation,
    [RT_ADD] = &rt_op_add,
    [RT_CONCAT] = &rt_op_concat,
};

const rt_op *rt_op_of(rt_kind k)
{
    return (unsigned)k < RT_NKINDS ? TABLE[k] : NULL;
}

/* ------------------------------------------------------------------ names */

#define NAME_(e, name) name,
#define CNAME_(e, name) #e,
static const char *const KIND_NAMES[] = {RT_KIND_LIST(NAME_)};
static const char *const KIND_CNAMES[] = {RT_KIND_LIST(CNAME_)};
static const char *const ACT_NAMES[] = {RT_ACT_LIST(NAME_)};
static const char *const ACT_CNAMES[] = {RT_ACT_LIST(CNAME_)};
static const char *const PAD_NAMES[] = {RT_PAD_LIST(NAME_)};
static const char *const PAD_CNAMES[] = {RT_PAD_LIST(CNAME_)};
#undef NAME_
#undef CNAME_

const char *rt_kind_name(rt_kind k) { return (unsigned)k < RT_NKINDS ? KIND_NAMES[k] : NULL; }
const char *rt_kind_cname(rt_kind k) { return (unsigned)k < RT_NKINDS ? KIND_CNAMES[k] : NULL; }
const char *rt_act_name(rt_act a) { return (unsigned)a < RT_NACTS ? ACT_NAMES[a] : NULL; }
const char *rt_act_cname(rt_act a) { return (unsigned)a < RT_NACTS ? ACT_CNAMES[a] : NULL; }
const char *rt_pad_name(rt_padmode m) { return (unsigned)m < RT_NPADS ? PAD_NAMES[m] : NULL; }
const char *rt_pad_cname(rt_padmode m) { return (unsigned)m < RT_NPADS ? PAD_CNAMES[m] : NULL; }

static int find(const char *const *names, int n, const char *word)
{
    for (int i = 0; word && i < n; i++)
        if (strcmp(names[i], word) == 0)
            return i;
    return -1;
}

int rt_act_from_name(const char *word) { return find(ACT_NAMES, RT_NACTS, word); }
int rt_pad_from_name(const char *word) { return find(PAD_NAMES, RT_NPADS, word); }

/* ------------------------------------------------------------------ shared helpers */

size_t rt_shape_size(rt_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

int rt_same_shape(rt_shape a, rt_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

rt_act rt_layer_act(const rt_layer *L)
{
    return L->act == RT_ACT_SOFTMAX ? RT_ACT_NONE : L->act;
}

rt_conv_geom rt_layer_conv_geom(const rt_layer *L)
{
    rt_conv_geom g = {.c = L->in.c, .h = L->in.h, .w = L->in.w,
                      .oc = L->out.c, .oh = L->out.h, .ow = L->out.w,
                      .kh = L->kh, .kw = L->kw, .sh = L->sh, .sw = L->sw,
                      .pt = L->pt, .pb = L->pb, .pl = L->pl, .pr = L->pr,
                      .pad = L->padmode, .flip = L->flip,
                      .dh = L->dh > 0 ? L->dh : 1, .dw = L->dw > 0 ? L->dw : 1,
                      .groups = L->groups > 0 ? L->groups : 1};
    return g;
}

rt_pool_geom rt_layer_pool_geom(const rt_layer *L)
{
    rt_pool_geom g = {.c = L->in.c, .h = L->in.h, .w = L->in.w, .oh = L->out.h,
                      .ow = L->out.w, .kh = L->kh, .kw = L->kw, .sh = L->sh, .sw = L->sw,
                      .pt = L->pt, .pb = L->pb, .pl = L->pl, .pr = L->pr};
    return g;
}
