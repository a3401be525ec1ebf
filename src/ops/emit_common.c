/*
 * emit_common.c - small printing helpers the kinds' emitters share: float literals that
 * read back to the same bits, bias pointers, and the in-place activation backward of the
 * layers with a fused activation.
 */
#include "cnn_op.h"
#include "rt_op.h"

#include <math.h>
#include <string.h>

const char *emit_f(float v)
{
    static char ring[16][40];
    static int next;
    char *b = ring[next++ % 16];
    if (isnan(v) || isinf(v)) {
        snprintf(b, sizeof ring[0], "%s", isnan(v) ? "(0.0f / 0.0f)" : v > 0 ? "(1.0f / 0.0f)" : "(-1.0f / 0.0f)");
        return b;
    }
    snprintf(b, sizeof ring[0], "%.9g", v);
    if (!strpbrk(b, ".e")) strcat(b, ".0");
    strcat(b, "f");
    return b;
}

void emit_bias_ptr(FILE *o, const char *arr, const rt_layer *L)
{
    if (L->bias && L->b_len) fprintf(o, "%s + %zu", arr, L->b_off);
    else fprintf(o, "NULL");
}

const char *emit_dx(const emit_ctx *e)
{
    return e->dx[0] ? e->dx : "NULL";
}

void emit_act_backward_inplace(const emit_ctx *e)
{
    const rt_layer *L = &e->net->nodes[e->i].L;
    if (rt_layer_act(L) == RT_ACT_NONE) return; /* the kernel's identity: nothing to do */
    if (e->step->relu_by_pool) {
        fprintf(e->out, "    /* (the relu's backward is done by the max pooling after it) */\n");
        return;
    }
    fprintf(e->out, "    rt_act_backward_mt(%s, %s, %s, %s, %s, (size_t)n * %ld, 0, tp);\n", rt_act_cname(rt_layer_act(L)),
            emit_f(L->alpha), e->y, e->dy, e->dy, emit_size(L->out));
}
