/*
 * pool.c - the compiler's side of windowed pooling: `maxpool KHxKW [stride=] [pad=]` and
 * `avgpool ...`; the stride defaults to the window. A max pooling the plan fused with its
 * source's relu prints the fused backward kernel.
 */
#include "cnn_op.h"
#include "sa_pool.h"

static const cnn_layer_info MAX_WORDS[] = {
    {"maxpool", "maxpool2d max_pool", "maxpool KHxKW [stride=S|SHxSW] [pad=P|PHxPW|same|valid]",
     "stride pad", RT_MAXPOOL, RT_ACT_NONE, 1, 1},
};
static const cnn_layer_info AVG_WORDS[] = {
    {"avgpool", "avgpool2d avg_pool", "avgpool KHxKW [stride=S|SHxSW] [pad=P|PHxPW|same|valid]",
     "stride pad", RT_AVGPOOL, RT_ACT_NONE, 1, 1},
};

static void positional(cnn_chk *c, int idx, const ast_value *v, ir_node *n)
{
    (void)idx;
    cnn_want_pair(c, v, 1, "the pooling window", &n->L.kh, &n->L.kw);
}

static void keyword(cnn_chk *c, const ast_arg *a, ir_node *n) { cnn_key_window(c, a, n); }

static void finish(cnn_chk *c, ir_node *n)
{
    (void)c;
    if (!n->spec.has_stride) {
        n->L.sh = n->L.kh;
        n->L.sw = n->L.kw;
    }
}

static void emit_decls(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    fprintf(e->out, "static const rt_pool_geom geom%d = {.c = %d, .h = %d, .w = %d, .oh = %d, .ow = %d,\n"
                    "    .kh = %d, .kw = %d, .sh = %d, .sw = %d, .pt = %d, .pb = %d, .pl = %d, .pr = %d};\n",
            e->i, L->in.c, L->in.h, L->in.w, L->out.h, L->out.w, L->kh, L->kw, L->sh, L->sw, L->pt, L->pb, L->pl, L->pr);
}

static void emit_forward(const emit_ctx *e)
{
    const char *k = e->net->nodes[e->i].L.kind == RT_MAXPOOL ? "maxpool" : "avgpool";
    fprintf(e->out, "    rt_%s_forward(&geom%d, %s, %s, n, tp);\n", k, e->i, e->in, e->y);
}

static void emit_backward(const emit_ctx *e)
{
    if (!e->dx[0]) return;
    if (e->net->nodes[e->i].L.kind == RT_AVGPOOL)
        fprintf(e->out, "    rt_avgpool_backward(&geom%d, %s, %s, %d, n, tp);\n", e->i, e->dy, e->dx, e->step->acc);
    else if (e->step->pool_with_relu)
        fprintf(e->out, "    rt_maxpool_backward_relu(&geom%d, %s, %s, %s, n, tp); /* and the relu's backward */\n", e->i,
                e->in, e->dy, e->dx);
    else
        fprintf(e->out, "    rt_maxpool_backward(&geom%d, %s, %s, %s, %d, n, tp);\n", e->i, e->in, e->dy, e->dx,
                e->step->acc);
}

static void emit_standalone(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    if (sa_pool_emit_inside(e->out, L, e->in, e->y)) return; /* no window reaches outside */
    int is_max = L->kind == RT_MAXPOOL;
    fprintf(e->out, "    for (int c = 0; c < %d; c++)\n"
                    "        for (int oy = 0; oy < %d; oy++)\n"
                    "            for (int ox = 0; ox < %d; ox++) {\n"
                    "                float s = %s;\n                int cells = 0, real = 0;\n"
                    "                for (int ky = 0; ky < %d; ky++)\n"
                    "                    for (int kx = 0; kx < %d; kx++) {\n"
                    "                        int iy = oy * %d - %d + ky, ix = ox * %d - %d + kx;\n"
                    "                        if (iy < -%d || iy >= %d || ix < -%d || ix >= %d)\n"
                    "                            continue;\n"
                    "                        cells++;\n"
                    "                        if (iy < 0 || iy >= %d || ix < 0 || ix >= %d)\n"
                    "                            continue;\n"
                    "                        float v = %s[(c * %d + iy) * %d + ix];\n"
                    "                        %s\n"
                    "                        real++;\n"
                    "                    }\n"
                    "                %s[(c * %d + oy) * %d + ox] = %s;\n"
                    "            }\n",
            L->in.c, L->out.h, L->out.w, is_max ? "-INFINITY" : "0.0f", L->kh, L->kw, L->sh, L->pt, L->sw, L->pl,
            L->pt, L->in.h + L->pb, L->pl, L->in.w + L->pr, L->in.h, L->in.w, e->in, L->in.h, L->in.w,
            is_max ? "s = v > s ? v : s;" : "s += v;", e->y, L->out.h, L->out.w,
            is_max ? "real ? s : 0.0f" : "cells ? s / (float)cells : 0.0f");
}

const cnn_op cnn_op_maxpool = {
    .kind = RT_MAXPOOL,
    .words = MAX_WORDS,
    .nwords = 1,
    .positional = positional,
    .keyword = keyword,
    .finish = finish,
    .emit_decls = emit_decls,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_standalone = emit_standalone,
};

const cnn_op cnn_op_avgpool = {
    .kind = RT_AVGPOOL,
    .words = AVG_WORDS,
    .nwords = 1,
    .positional = positional,
    .keyword = keyword,
    .finish = finish,
    .emit_decls = emit_decls,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_standalone = emit_standalone,
};
