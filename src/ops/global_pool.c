/*
 * global_pool.c - the compiler's side of global pooling: `globalavgpool` (gap) and
 * `globalmaxpool` (gmp), one value per channel.
 */
#include "cnn_op.h"

static const cnn_layer_info AVG_WORDS[] = {
    {"globalavgpool", "gap global_avg_pool globalaveragepool", "globalavgpool", "", RT_GLOBALAVGPOOL,
     RT_ACT_NONE, 0, 0},
};
static const cnn_layer_info MAX_WORDS[] = {
    {"globalmaxpool", "gmp global_max_pool", "globalmaxpool", "", RT_GLOBALMAXPOOL, RT_ACT_NONE, 0, 0},
};

static int is_max(const emit_ctx *e) { return e->net->nodes[e->i].L.kind == RT_GLOBALMAXPOOL; }

static void emit_forward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    fprintf(e->out, "    rt_%s_forward(%s, %s, n, %d, %d);\n", is_max(e) ? "globalmaxpool" : "globalavgpool", e->in, e->y,
            L->in.c, L->in.h * L->in.w);
}

static void emit_backward(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    if (!e->dx[0]) return;
    if (is_max(e))
        fprintf(e->out, "    rt_globalmaxpool_backward(%s, %s, %s, %d, n, %d, %d);\n", e->in, e->dy, e->dx, e->step->acc,
                L->in.c, L->in.h * L->in.w);
    else
        fprintf(e->out, "    rt_globalavgpool_backward(%s, %s, %d, n, %d, %d);\n", e->dy, e->dx, e->step->acc, L->in.c,
                L->in.h * L->in.w);
}

static void emit_standalone(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    int hw = L->in.h * L->in.w;
    char result[48];
    if (is_max(e)) snprintf(result, sizeof result, "s");
    else snprintf(result, sizeof result, "s / %d.0f", hw);
    fprintf(e->out, "    for (int c = 0; c < %d; c++) {\n"
                    "        float s = %s[c * %d];\n"
                    "        for (int k = 1; k < %d; k++) {\n"
                    "            float v = %s[c * %d + k];\n"
                    "            %s\n"
                    "        }\n"
                    "        %s[c] = %s;\n    }\n",
            L->in.c, e->in, hw, hw, e->in, hw, is_max(e) ? "s = v > s ? v : s;" : "s += v;", e->y, result);
}

const cnn_op cnn_op_globalavgpool = {
    .kind = RT_GLOBALAVGPOOL,
    .words = AVG_WORDS,
    .nwords = 1,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_standalone = emit_standalone,
};

const cnn_op cnn_op_globalmaxpool = {
    .kind = RT_GLOBALMAXPOOL,
    .words = MAX_WORDS,
    .nwords = 1,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_standalone = emit_standalone,
};
