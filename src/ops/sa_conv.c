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

/* Outputs [s, s + bw) of blocks of width bs (the weights' row stride) for every output
 * pixel, plain C: one sum per output, written out one statement per output so that gcc -O2
 * packs them into vector operations and keeps acc in registers (a loop here would load and
 * store acc at every step). Blocks g*og + first + b * SA_BLOCK ... */
static void emit_block(FILE *o, const sa_conv *c, const char *src, int hp, int wp, int bs, int s, int bw,
                       int nblocks, int first)
{
    const int g = groups_of(c), og = c->oc / g, icg = c->ic / g;
    const size_t per_out = (size_t)icg * c->kh * c->kw;
    char dst[160], bias[64];
    fprintf(o, "    for (int g = 0; g < %d; g++)\n"
               "        for (int b = 0; b < %d; b++) {\n"
               "            const int o0 = g * %d + %d + b * %d; /* the block's first output channel */\n"
               "            const float *wb = W + %zu + (size_t)o0 * %zu + %d;\n"
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
            g, nblocks, og, first, SA_BLOCK, c->w_off, per_out, s, c->oh, c->ow, bw, bw, icg, c->kh, c->kw, src, icg,
            hp, c->sh, c->dh, wp, c->sw, c->dw, c->kh, c->kw, bs);
    for (int j = 0; j < bw; j++)
        fprintf(o, "%s acc[%d] += v * wk[%d];%s", j % 4 == 0 ? "                               " : "", j, j,
                j % 4 == 3 || j == bw - 1 ? "\n" : "");
    fprintf(o, "                            }\n"
               "                    for (int j = 0; j < %d; j++)\n", bw);
    snprintf(dst, sizeof dst, "%s[((o0 + %d + j) * %d + oy) * %d + ox]", c->y, s, c->oh, c->ow);
    snprintf(bias, sizeof bias, "o0 + %d + j", s);
    emit_store(o, c, "                        ", dst, "acc[j]", bias);
    fprintf(o, "                }\n        }\n");
}

/* The vector variant being printed (sa_conv_target): floats per vector (0: plain C) and
 * the vector registers the loops may fill. */
static int sa_vec, sa_regs = 16;

void sa_conv_target(int vec)
{
    sa_vec = vec;
    sa_regs = vec >= 16 ? 32 : 16;
}

/* Pixels a kernel of nv vectors of outputs computes at once: as many as leave room in the
 * registers for the nv weight vectors and a broadcast input, at most SA_PIXELS. */
#define SA_PIXELS 12
static int pixels_for(int nv, int ow)
{
    int p = (sa_regs - nv - 2) / nv;
    if (p > SA_PIXELS) p = SA_PIXELS;
    if (p < 1) p = 1;
    const int runs = (ow + p - 1) / p; /* as few runs as that allows, evened out */
    return (ow + runs - 1) / runs;
}

/* One register-blocked kernel: np output pixels of row oy from column ox0 (an expression)
 * times nv vectors of sa_vec outputs, channels o0 + s ... of a block of width bs. Each
 * weight vector loaded serves np pixels; each output's sum still runs over (input channel,
 * ky, kx) in order. The sums leave through a small array (one vector store each) to the
 * planar output. */
static void emit_kernel(FILE *o, const sa_conv *c, const char *src, int hp, int wp, int bs, int s, int nv, int np,
                        const char *ox0, const char *ind)
{
    const int g = groups_of(c), icg = c->ic / g, V = sa_vec;
    fprintf(o, "%s{\n", ind);
    fprintf(o, "%s    const float *xi = %s + ((size_t)g * %d * %d + oy * %d) * %d + (%s) * %d;\n", ind, src, icg, hp,
            c->sh, wp, ox0, c->sw);
    fprintf(o, "%s    const float *wk = wb + %d;\n", ind, s);
    fprintf(o, "%s    sa_v%d", ind, V);
    for (int p = 0; p < np; p++)
        for (int v = 0; v < nv; v++) fprintf(o, "%s a%d_%d = {0}", p || v ? "," : "", p, v);
    fprintf(o, ";\n");
    fprintf(o, "%s    for (int ci = 0; ci < %d; ci++)\n"
               "%s        for (int ky = 0; ky < %d; ky++)\n"
               "%s            for (int kx = 0; kx < %d; kx++, wk += %d) {\n"
               "%s                const float *xp = xi + (ci * %d + ky * %d) * %d + kx * %d;\n"
               "%s                sa_v%d",
            ind, icg, ind, c->kh, ind, c->kw, bs, ind, hp, c->dh, wp, c->dw, ind, V);
    for (int v = 0; v < nv; v++) fprintf(o, "%s w%d", v ? "," : "", v);
    fprintf(o, ";\n");
    for (int v = 0; v < nv; v++) fprintf(o, "%s                memcpy(&w%d, wk + %d, sizeof w%d);\n", ind, v, v * V, v);
    for (int p = 0; p < np; p++) {
        fprintf(o, "%s               ", ind);
        for (int v = 0; v < nv; v++) fprintf(o, " a%d_%d += w%d * xp[%d];", p, v, v, p * c->sw);
        fprintf(o, "\n");
    }
    fprintf(o, "%s            }\n", ind);
    fprintf(o, "%s    float t[%d][%d];\n", ind, np, nv * V);
    for (int p = 0; p < np; p++)
        for (int v = 0; v < nv; v++)
            fprintf(o, "%s    memcpy(&t[%d][%d], &a%d_%d, sizeof a%d_%d);\n", ind, p, v * V, p, v, p, v);
    fprintf(o, "%s    for (int j = 0; j < %d; j++) {\n", ind, nv * V);
    fprintf(o, "%s        float *yj = %s + ((size_t)(o0 + %d + j) * %d + oy) * %d + (%s);\n", ind, c->y, s, c->oh, c->ow,
            ox0);
    char dst[32], sum[32], bias[32], ind2[64];
    snprintf(bias, sizeof bias, "o0 + %d + j", s);
    snprintf(ind2, sizeof ind2, "%s        ", ind);
    for (int p = 0; p < np; p++) {
        snprintf(dst, sizeof dst, "yj[%d]", p);
        snprintf(sum, sizeof sum, "t[%d][j]", p);
        emit_store(o, c, ind2, dst, sum, bias);
    }
    fprintf(o, "%s    }\n%s}\n", ind, ind);
}

/* Blocks of bw outputs with vectors: sub-blocks of at most two vectors, each over the
 * rows in runs of pixels_for() pixels and an exact tail; the outputs beyond the last whole
 * vector run as plain sums (emit_block). */
static void emit_vec_block(FILE *o, const sa_conv *c, const char *src, int hp, int wp, int bw, int nblocks,
                           int first)
{
    const int g = groups_of(c), og = c->oc / g, icg = c->ic / g, V = sa_vec;
    const size_t per_out = (size_t)icg * c->kh * c->kw;
    const int nvec = bw / V;
    if (nvec == 0) { /* narrower than a vector: plain sums */
        emit_block(o, c, src, hp, wp, bw, 0, bw, nblocks, first);
        return;
    }
    fprintf(o, "    for (int g = 0; g < %d; g++)\n"
               "        for (int b = 0; b < %d; b++) {\n"
               "            const int o0 = g * %d + %d + b * %d; /* the block's first output channel */\n"
               "            const float *wb = W + %zu + (size_t)o0 * %zu;\n",
            g, nblocks, og, first, SA_BLOCK, c->w_off, per_out);
    for (int v0 = 0; v0 < nvec; v0 += 2) {
        const int nv = nvec - v0 < 2 ? nvec - v0 : 2, np = pixels_for(nv, c->ow);
        const int runs = c->ow / np, tail = c->ow % np;
        fprintf(o, "            for (int oy = 0; oy < %d; oy++) {\n", c->oh);
        if (runs > 1) {
            fprintf(o, "                for (int ox0 = 0; ox0 < %d; ox0 += %d)\n", runs * np, np);
            emit_kernel(o, c, src, hp, wp, bw, v0 * V, nv, np, "ox0", "                    ");
        } else {
            emit_kernel(o, c, src, hp, wp, bw, v0 * V, nv, np, "0", "                ");
        }
        if (tail) {
            char at[16];
            snprintf(at, sizeof at, "%d", runs * np);
            emit_kernel(o, c, src, hp, wp, bw, v0 * V, nv, tail, at, "                ");
        }
        fprintf(o, "            }\n");
    }
    fprintf(o, "        }\n");
    if (bw % V) emit_block(o, c, src, hp, wp, bw, nvec * V, bw % V, nblocks, first);
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
        if (sa_vec) {
            if (full) emit_vec_block(o, c, src, hp, wp, SA_BLOCK, full, 0);
            if (tail) emit_vec_block(o, c, src, hp, wp, tail, 1, full * SA_BLOCK);
        } else {
            if (full) emit_block(o, c, src, hp, wp, SA_BLOCK, 0, SA_BLOCK, full, 0);
            if (tail) emit_block(o, c, src, hp, wp, tail, 0, tail, 1, full * SA_BLOCK);
        }
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
