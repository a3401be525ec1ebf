/*
 * sa_conv.c - the loops the standalone file runs for convolutions and dense layers (a
 * dense layer is a 1x1 convolution of a 1x1 map), and the weight layout they read.
 * Shapes are literal constants, so gcc -O2 vectorises the innermost loop, which runs over
 * a block of up to SA_BLOCK output channels with contiguous weights: one input value times
 * a row of weights, added to a row of accumulators, written out as one statement per
 * output so that gcc -O2 packs them into vector operations on registers. The input is first copied into a padded
 * buffer (any padding mode), so no bounds test runs inside the sum. A group with fewer than
 * four outputs (depthwise) keeps one scalar sum per output. Every output's sum runs over
 * (input channel, ky, kx) in order, as the training program's reference loops do; the
 * runtime's GEMM orders it differently, hence the tests' 1e-5 tolerance.
 */
#include "sa_conv.h"
#include "cnn_op.h"

#include <stdlib.h>
#include <string.h>

/* Output channels per block: 32 floats of accumulators fit the 16 SSE registers with room
 * for the weights. */
#define SA_BLOCK 32

static int groups_of(const sa_conv *c) { return c->groups > 0 ? c->groups : 1; }
static int padded(const sa_conv *c) { return c->pt || c->pb || c->pl || c->pr; }
/* Outputs of a group below this run as scalar sums (a block of 1-3 does not vectorise). */
static int blocked(const sa_conv *c) { return c->oc / groups_of(c) >= 4; }

long sa_conv_tmp_floats(const sa_conv *c)
{
    if (!padded(c)) return 0;
    return (long)c->ic * (c->ih + c->pt + c->pb) * (c->iw + c->pl + c->pr);
}

void sa_conv_layout(const sa_conv *c, float *params)
{
    float *w = params + c->w_off;
    const int g = groups_of(c), og = c->oc / g, icg = c->ic / g, kk = c->kh * c->kw;
    const size_t per_out = (size_t)icg * kk, n = (size_t)c->oc * per_out;
    float *src = malloc(n * sizeof *src);
    if (!src) abort(); /* a few MB at most: the weights are already in memory twice */
    memcpy(src, w, n * sizeof *src);
    for (int oc = 0; oc < c->oc; oc++) {
        const int gi = oc / og, o = oc % og;
        const int ob = o / SA_BLOCK, bw = og - ob * SA_BLOCK < SA_BLOCK ? og - ob * SA_BLOCK : SA_BLOCK;
        const int ob_o = o % SA_BLOCK;
        for (int ci = 0; ci < icg; ci++)
            for (int ky = 0; ky < c->kh; ky++)
                for (int kx = 0; kx < c->kw; kx++) {
                    /* a true convolution reads the kernel flipped: store it flipped */
                    int sy = c->flip ? c->kh - 1 - ky : ky, sx = c->flip ? c->kw - 1 - kx : kx;
                    float v = src[(size_t)oc * per_out + ((size_t)ci * c->kh + sy) * c->kw + sx];
                    size_t k = ((size_t)ci * c->kh + ky) * c->kw + kx;
                    if (blocked(c)) /* block (gi, ob) starts at its first output's row */
                        w[((size_t)gi * og + (size_t)ob * SA_BLOCK) * per_out + k * bw + ob_o] = v;
                    else
                        w[(size_t)oc * per_out + k] = v;
                }
    }
    free(src);
}

/* Copies the input into the padded buffer, every padding mode through pad_index. */
static void emit_pad(FILE *o, const sa_conv *c, const char *tmp)
{
    const int hp = c->ih + c->pt + c->pb, wp = c->iw + c->pl + c->pr;
    fprintf(o, "    for (int c = 0; c < %d; c++)\n"
               "        for (int py = 0; py < %d; py++) {\n"
               "            const int iy = pad_index(py - %d, %d, %d);\n"
               "            for (int px = 0; px < %d; px++) {\n"
               "                const int ix = pad_index(px - %d, %d, %d);\n"
               "                %s[(c * %d + py) * %d + px] = iy < 0 || ix < 0 ? 0.0f : %s[(c * %d + iy) * %d + ix];\n"
               "            }\n"
               "        }\n",
            c->ic, hp, c->pt, c->ih, c->padmode, wp, c->pl, c->iw, c->padmode, tmp, hp, wp, c->in, c->ih, c->iw);
}

/* The epilogue of one output: bias, then the activation (act() is printed only for
 * networks that call it). */
static void emit_store(FILE *o, const sa_conv *c, const char *indent, const char *dst, const char *sum,
                       const char *bias_index)
{
    char b[96];
    if (c->has_bias) snprintf(b, sizeof b, " + W[%zu + %s]", c->b_off, bias_index);
    else b[0] = 0;
    if (c->act == 0) fprintf(o, "%s%s = %s%s;\n", indent, dst, sum, b);
    else fprintf(o, "%s%s = act(%d, %s, %s%s);\n", indent, dst, c->act, emit_f(c->alpha), sum, b);
}

/* One block of bw output channels for every output pixel: blocks g*og + first ... */
static void emit_block(FILE *o, const sa_conv *c, const char *src, int hp, int wp, int bw, int nblocks,
                       int first)
{
    const int g = groups_of(c), og = c->oc / g, icg = c->ic / g;
    const size_t per_out = (size_t)icg * c->kh * c->kw;
    char dst[160], bias[64];
    fprintf(o, "    for (int g = 0; g < %d; g++)\n"
               "        for (int b = 0; b < %d; b++) {\n"
               "            const int o0 = g * %d + %d + b * %d; /* the block's first output channel */\n"
               "            const float *wb = W + %zu + (size_t)o0 * %zu;\n"
               "            for (int oy = 0; oy < %d; oy++)\n"
               "                for (int ox = 0; ox < %d; ox++) {\n"
               "                    float acc[%d];\n"
               "                    for (int j = 0; j < %d; j++)\n"
               "                        acc[j] = 0.0f;\n"
               "                    for (int ci = 0; ci < %d; ci++)\n"
               "                        for (int ky = 0; ky < %d; ky++)\n"
               "                            for (int kx = 0; kx < %d; kx++) {\n"
               "                                const float v = %s[((g * %d + ci) * %d + oy * %d + ky * %d) * %d + ox * %d + kx * %d];\n"
               "                                const float *wk = wb + ((ci * %d + ky) * %d + kx) * %d;\n",
            g, nblocks, og, first, SA_BLOCK, c->w_off, per_out, c->oh, c->ow, bw, bw, icg, c->kh, c->kw, src, icg,
            hp, c->sh, c->dh, wp, c->sw, c->dw, c->kh, c->kw, bw);
    /* written out one statement per output: gcc -O2 packs them into vector operations and
     * keeps acc in registers (a loop here would load and store acc at every step) */
    for (int j = 0; j < bw; j++)
        fprintf(o, "%s acc[%d] += v * wk[%d];%s", j % 4 == 0 ? "                               " : "", j, j,
                j % 4 == 3 || j == bw - 1 ? "\n" : "");
    fprintf(o, "                            }\n"
               "                    for (int j = 0; j < %d; j++)\n", bw);
    snprintf(dst, sizeof dst, "%s[((o0 + j) * %d + oy) * %d + ox]", c->y, c->oh, c->ow);
    snprintf(bias, sizeof bias, "o0 + j");
    emit_store(o, c, "                        ", dst, "acc[j]", bias);
    fprintf(o, "                }\n        }\n");
}

void sa_conv_emit(FILE *o, const sa_conv *c, const char *tmp)
{
    const int g = groups_of(c), og = c->oc / g, icg = c->ic / g;
    const char *src = c->in;
    int hp = c->ih, wp = c->iw;
    if (padded(c)) {
        emit_pad(o, c, tmp);
        src = tmp;
        hp = c->ih + c->pt + c->pb;
        wp = c->iw + c->pl + c->pr;
    }
    if (blocked(c)) {
        int full = og / SA_BLOCK, tail = og % SA_BLOCK;
        if (full) emit_block(o, c, src, hp, wp, SA_BLOCK, full, 0);
        if (tail) emit_block(o, c, src, hp, wp, tail, 1, full * SA_BLOCK);
        return;
    }
    char dst[160];
    fprintf(o, "    for (int oc = 0; oc < %d; oc++) {\n"
               "        const int g = oc / %d;\n"
               "        const float *wo = W + %zu + (size_t)oc * %d;\n"
               "        for (int oy = 0; oy < %d; oy++)\n"
               "            for (int ox = 0; ox < %d; ox++) {\n"
               "                float s = 0.0f;\n"
               "                for (int ci = 0; ci < %d; ci++)\n"
               "                    for (int ky = 0; ky < %d; ky++)\n"
               "                        for (int kx = 0; kx < %d; kx++)\n"
               "                            s += %s[((g * %d + ci) * %d + oy * %d + ky * %d) * %d + ox * %d + kx * %d] *\n"
               "                                 wo[(ci * %d + ky) * %d + kx];\n",
            c->oc, og, c->w_off, icg * c->kh * c->kw, c->oh, c->ow, icg, c->kh, c->kw, src, icg, hp, c->sh, c->dh, wp,
            c->sw, c->dw, c->kh, c->kw);
    snprintf(dst, sizeof dst, "%s[(oc * %d + oy) * %d + ox]", c->y, c->oh, c->ow);
    emit_store(o, c, "                ", dst, "s", "oc");
    fprintf(o, "            }\n    }\n");
}
