/*
 * sa_conv.c - the loops the standalone file runs for convolutions and dense layers (a
 * dense layer is a 1x1 convolution of a 1x1 map), and the weight layout they read: blocks
 * of up to SA_BLOCK output channels with contiguous weights. Shapes are literal constants,
 * so every trip count and tail is exact. The loops come in copies (sa_conv_target): plain
 * C (one statement per output, which gcc -O2 packs into vectors), and GNU C vectors of 4,
 * 8 or 16 floats, register-blocked: several output pixels times one or two vectors of
 * output channels per kernel, so that each weight vector loaded serves every pixel
 * (emit_vec_block); small windows run along output rows instead (emit_row_block), and
 * groups of few outputs (depthwise) on vectors of pixels (emit_pix). The input is first
 * copied into a padded buffer (any padding mode), so no bounds test runs inside the sum.
 * In every copy each output's sum runs over (input channel, ky, kx) in order, as the
 * training program's reference loops do; the runtime's GEMM orders it differently, hence
 * the tests' 1e-5 tolerance.
 */
#include "sa_conv.h"
#include "cnn_op.h"
#include "cnnrt.h"

#include <stdlib.h>
#include <string.h>

/* Output channels per block of the weight layout (every copy reads the same layout). */
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

/* Copies the input into the padded buffer, every padding mode through pad_index: a row
 * outside the input is zeros or another row's copy, a row inside is its border cells by
 * pad_index around a memcpy of the row. */
static void emit_pad(FILE *o, const sa_conv *c, const char *tmp)
{
    const int hp = c->ih + c->pt + c->pb, wp = c->iw + c->pl + c->pr;
    fprintf(o, "    for (int c = 0; c < %d; c++)\n"
               "        for (int py = 0; py < %d; py++) {\n"
               "            float *row = %s + ((size_t)c * %d + py) * %d;\n"
               "            const int iy = pad_index(py - %d, %d, %d);\n"
               "            if (iy < 0) {\n"
               "                memset(row, 0, %d * sizeof *row);\n"
               "                continue;\n"
               "            }\n"
               "            const float *in = %s + ((size_t)c * %d + iy) * %d;\n",
            c->ic, hp, tmp, hp, wp, c->pt, c->ih, c->padmode, wp, c->in, c->ih, c->iw);
    if (c->pl)
        fprintf(o, "            for (int px = 0; px < %d; px++) {\n"
                   "                const int ix = pad_index(px - %d, %d, %d);\n"
                   "                row[px] = ix < 0 ? 0.0f : in[ix];\n"
                   "            }\n",
                c->pl, c->pl, c->iw, c->padmode);
    fprintf(o, "            memcpy(row + %d, in, %d * sizeof *row);\n", c->pl, c->iw);
    if (c->pr)
        fprintf(o, "            for (int px = %d; px < %d; px++) {\n"
                   "                const int ix = pad_index(px - %d, %d, %d);\n"
                   "                row[px] = ix < 0 ? 0.0f : in[ix];\n"
                   "            }\n",
                c->pl + c->iw, wp, c->pl, c->iw, c->padmode);
    fprintf(o, "        }\n");
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

int sa_conv_vector(void) { return sa_vec; }

/* Pixels a kernel of nv vectors of outputs computes at once: as many as leave room in the
 * registers for the nv weight vectors and a broadcast input, at most SA_PIXELS. */
#define SA_PIXELS 8
static int pixels_for(int nv, int ow)
{
    int p = (sa_regs - nv - 2) / nv;
    if (p > SA_PIXELS) p = SA_PIXELS;
    if (p < 1) p = 1;
    const int runs = (ow + p - 1) / p; /* as few runs as that allows, evened out */
    return (ow + runs - 1) / runs;
}

/* Steps of the kernel window written out in the vector kernels' loop (SA_UNROLL). */
#define SA_UNROLL 9

/* One step of a vector kernel: the nv weight vectors at wk + wo, times the input at
 * base[xo + p * stride] for each of the np pixels, into a<p>_<v>. */
static void emit_step(FILE *o, const sa_conv *c, int nv, int np, int wo, int xo, const char *base, const char *ind)
{
    fprintf(o, "%s        {\n%s            sa_v%d", ind, ind, sa_vec);
    for (int v = 0; v < nv; v++) fprintf(o, "%s w%d", v ? "," : "", v);
    fprintf(o, ";\n");
    for (int v = 0; v < nv; v++)
        fprintf(o, "%s            memcpy(&w%d, wk + %d, sizeof w%d);\n", ind, v, wo + v * sa_vec, v);
    for (int p = 0; p < np; p++) {
        fprintf(o, "%s           ", ind);
        for (int v = 0; v < nv; v++) fprintf(o, " a%d_%d += w%d * %s[%d];", p, v, v, base, xo + p * c->sw);
        fprintf(o, "\n");
    }
    fprintf(o, "%s        }\n", ind);
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
    /* the kernel window written out (up to SA_UNROLL steps: 3x3, or 1x1 over 8 input
     * channels), the input channels in a loop around it */
    const int kk = c->kh * c->kw;
    int u = 1;
    if (kk <= SA_UNROLL)
        while (u * 2 * kk <= SA_UNROLL && icg % (u * 2) == 0) u *= 2;
    if (kk <= SA_UNROLL) {
        fprintf(o, "%s    for (int ci = 0; ci < %d; ci += %d, wk += %d, xi += %d) {\n", ind, icg, u, u * kk * bs,
                u * hp * wp);
        for (int step = 0; step < u * kk; step++) {
            const int cu = step / kk, ky = step % kk / c->kw, kx = step % c->kw;
            const int xo = (cu * hp + ky * c->dh) * wp + kx * c->dw;
            emit_step(o, c, nv, np, step * bs, xo, "xi", ind);
        }
        fprintf(o, "%s    }\n", ind);
    } else {
        fprintf(o, "%s    for (int ci = 0; ci < %d; ci++)\n"
                   "%s        for (int ky = 0; ky < %d; ky++)\n"
                   "%s            for (int kx = 0; kx < %d; kx++, wk += %d) {\n"
                   "%s                const float *xp = xi + (ci * %d + ky * %d) * %d + kx * %d;\n",
                ind, icg, ind, c->kh, ind, c->kw, bs, ind, hp, c->dh, wp, c->dw);
        emit_step(o, c, nv, np, 0, 0, "xp", ind);
        fprintf(o, "%s            }\n", ind);
    }
    /* the bias and a relu on the vectors; the planar outputs then take plain copies */
    const int vrelu = c->act == (int)RT_ACT_RELU;
    for (int v = 0; v < nv && c->has_bias; v++) {
        fprintf(o, "%s    sa_v%d b%d;\n%s    memcpy(&b%d, W + %zu + o0 + %d, sizeof b%d);\n", ind, V, v, ind, v,
                c->b_off, s + v * V, v);
        for (int p = 0; p < np; p++) fprintf(o, "%s    a%d_%d += b%d;\n", ind, p, v, v);
    }
    for (int p = 0; p < np && vrelu; p++)
        for (int v = 0; v < nv; v++)
            fprintf(o, "%s    a%d_%d = (sa_v%d)((sa_i%d)a%d_%d & (a%d_%d > (sa_v%d){0}));\n", ind, p, v, V, V, p, v, p, v, V);
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
    sa_conv done = *c; /* the epilogue's part left after the vector one */
    done.has_bias = 0;
    if (vrelu) done.act = 0;
    for (int p = 0; p < np; p++) {
        snprintf(dst, sizeof dst, "yj[%d]", p);
        snprintf(sum, sizeof sum, "t[%d][j]", p);
        emit_store(o, &done, ind2, dst, sum, bias);
    }
    fprintf(o, "%s    }\n%s}\n", ind, ind);
}

/* Columns [0, cols) split into vectors of 16, 8 and 4 pixels as wide as the variant
 * allows, then single pixels: their widths into cw; returns their number. */
static int split_cols(int cols, int *cw, int max)
{
    int n = 0, at = 0;
    for (int v = sa_vec; v >= 4; v /= 2)
        while (cols - at >= v && n < max) {
            cw[n++] = v;
            at += v;
        }
    while (at < cols && n < max) {
        cw[n++] = 1;
        at++;
    }
    return n;
}

/* A small window (few input channels, as a first layer's) over outputs in blocks: the
 * planar outputs would take one scalar store per sum, as many as the multiply-adds, so here
 * the vectors run along a row of output pixels instead, nr output channels at a time, and
 * leave by whole-vector copies. Channels o0 + r0 ... o0 + r0 + nr - 1 of a block of width
 * bs, row oy, columns ox0 (an expression) + [0, cols); stride 1. */
static void emit_row_kernel(FILE *o, const sa_conv *c, const char *src, int hp, int wp, int bs, const char *r0,
                            int nr, const char *ox0, int cols, const char *ind)
{
    const int g = groups_of(c), icg = c->ic / g, kk = c->kh * c->kw;
    int cw[64];
    const int n = split_cols(cols, cw, 64);
    fprintf(o, "%s{\n%s    const float *xi = %s + ((size_t)g * %d * %d + oy * %d) * %d + (%s);\n", ind, ind, src, icg, hp,
            c->sh, wp, ox0);
    fprintf(o, "%s    const float *wk = wb + (%s);\n", ind, r0);
    for (int r = 0; r < nr; r++)
        for (int k = 0; k < n; k++) {
            if (cw[k] > 1) fprintf(o, "%s    sa_v%d a%d_%d = {0};\n", ind, cw[k], r, k);
            else fprintf(o, "%s    float a%d_%d = 0.0f;\n", ind, r, k);
        }
    fprintf(o, "%s    for (int ci = 0; ci < %d; ci++, wk += %d, xi += %d) {\n", ind, icg, kk * bs, hp * wp);
    for (int step = 0; step < kk; step++) {
        const int ky = step / c->kw, kx = step % c->kw, xo = ky * c->dh * wp + kx * c->dw;
        fprintf(o, "%s        {\n", ind);
        for (int k = 0, c0 = 0; k < n; c0 += cw[k], k++) {
            if (cw[k] > 1)
                fprintf(o, "%s            sa_v%d x%d;\n%s            memcpy(&x%d, xi + %d, sizeof x%d);\n", ind, cw[k], k,
                        ind, k, xo + c0, k);
            else
                fprintf(o, "%s            const float x%d = xi[%d];\n", ind, k, xo + c0);
        }
        for (int r = 0; r < nr; r++) {
            fprintf(o, "%s            {\n%s                const float w = wk[%d];\n", ind, ind, step * bs + r);
            fprintf(o, "%s               ", ind);
            for (int k = 0; k < n; k++) fprintf(o, " a%d_%d += x%d * w;", r, k, k);
            fprintf(o, "\n%s            }\n", ind);
        }
        fprintf(o, "%s        }\n", ind);
    }
    fprintf(o, "%s    }\n", ind);
    /* bias, relu, then straight into the rows */
    const int vrelu = c->act == (int)RT_ACT_RELU;
    sa_conv done = *c;
    done.has_bias = 0;
    char dst[192], sum[32], bias[64], ind2[64];
    snprintf(ind2, sizeof ind2, "%s    ", ind);
    for (int r = 0; r < nr; r++)
        for (int k = 0, c0 = 0; k < n; c0 += cw[k], k++) {
            if (c->has_bias) fprintf(o, "%s    a%d_%d += W[%zu + o0 + (%s) + %d];\n", ind, r, k, c->b_off, r0, r);
            snprintf(dst, sizeof dst, "%s[((size_t)(o0 + (%s) + %d) * %d + oy) * %d + (%s) + %d]", c->y, r0, r, c->oh,
                     c->ow, ox0, c0);
            if (cw[k] == 1) {
                snprintf(sum, sizeof sum, "a%d_%d", r, k);
                snprintf(bias, sizeof bias, "o0 + (%s) + %d", r0, r);
                emit_store(o, c->has_bias ? &done : c, ind2, dst, sum, bias);
                continue;
            }
            if (vrelu)
                fprintf(o, "%s    a%d_%d = (sa_v%d)((sa_i%d)a%d_%d & (a%d_%d > (sa_v%d){0}));\n", ind, r, k, cw[k], cw[k], r,
                        k, r, k, cw[k]);
            if (vrelu || c->act == 0) {
                fprintf(o, "%s    memcpy(&%s, &a%d_%d, sizeof a%d_%d);\n", ind, dst, r, k, r, k);
            } else { /* another activation: through an array */
                fprintf(o, "%s    {\n%s        float t[%d];\n%s        memcpy(t, &a%d_%d, sizeof t);\n"
                           "%s        for (int j = 0; j < %d; j++)\n",
                        ind, ind, cw[k], ind, r, k, ind, cw[k]);
                char dj[200], ind3[72];
                snprintf(dj, sizeof dj, "(&%s)[j]", dst);
                snprintf(ind3, sizeof ind3, "%s        ", ind2);
                emit_store(o, &done, ind3, dj, "t[j]", "0");
                fprintf(o, "%s    }\n", ind);
            }
        }
    fprintf(o, "%s}\n", ind);
}

/* Blocks of bw outputs with small windows (emit_row_kernel): runs of 8 channels (4 with 16
 * vector registers) and an exact tail, each row in runs of two vectors of pixels and a tail
 * of whole vectors that ends at the row's end (or the exact tail of a row narrower). */
static void emit_row_block(FILE *o, const sa_conv *c, const char *src, int hp, int wp, int bw, int nblocks, int first)
{
    const int g = groups_of(c), og = c->oc / g, icg = c->ic / g;
    const size_t per_out = (size_t)icg * c->kh * c->kw;
    const int nr = sa_regs >= 32 ? 8 : 4, run = 2 * sa_vec, cruns = c->ow / run, ctail = c->ow % run;
    fprintf(o, "    for (int g = 0; g < %d; g++)\n"
               "        for (int b = 0; b < %d; b++) {\n"
               "            const int o0 = g * %d + %d + b * %d; /* the block's first output channel */\n"
               "            const float *wb = W + %zu + (size_t)o0 * %zu;\n",
            g, nblocks, og, first, SA_BLOCK, c->w_off, per_out);
    for (int part = 0; part < 2; part++) {
        const int rr = part == 0 ? nr : bw % nr, runs = part == 0 ? bw / nr : (bw % nr ? 1 : 0);
        if (!runs) continue;
        char r0[32];
        if (runs > 1) {
            fprintf(o, "            for (int r0 = 0; r0 < %d; r0 += %d)\n", runs * nr, nr);
            snprintf(r0, sizeof r0, "r0");
        } else {
            snprintf(r0, sizeof r0, "%d", part == 0 ? 0 : bw / nr * nr);
        }
        fprintf(o, "            for (int oy = 0; oy < %d; oy++) {\n", c->oh);
        if (cruns > 1) {
            fprintf(o, "                for (int ox0 = 0; ox0 < %d; ox0 += %d)\n", cruns * run, run);
            emit_row_kernel(o, c, src, hp, wp, bw, r0, rr, "ox0", run, "                    ");
        } else if (cruns == 1) {
            emit_row_kernel(o, c, src, hp, wp, bw, r0, rr, "0", run, "                ");
        }
        if (ctail) {
            /* the tail in whole vectors where the row allows, ending at the row's end: the
             * few columns it computes again get the same sums (the same order) and are
             * stored again, where the exact split (cnn3: 30 = 16 + 8 + 4 + 1 + 1) took 5
             * accumulators a channel, more than the registers hold */
            const int whole = (ctail + sa_vec - 1) / sa_vec * sa_vec;
            const int cols = whole <= c->ow ? whole : ctail;
            char at[16];
            snprintf(at, sizeof at, "%d", c->ow - cols);
            emit_row_kernel(o, c, src, hp, wp, bw, r0, rr, at, cols, "                ");
        }
        fprintf(o, "            }\n");
    }
    fprintf(o, "        }\n");
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

/* Pixel-vector kernel for a group of few outputs (depthwise): output channel oc, rows
 * oy .. oy + nr - 1 (oy an expression), columns ox0 (an expression) + [0, cols): vectors
 * of 16, 8 and 4 pixels as wide as the variant allows, the last 1-3 columns as plain sums.
 * One weight serves every vector; each output's sum runs over (input channel, ky, kx) in
 * order. */
static void emit_pix_kernel(FILE *o, const sa_conv *c, const char *src, int hp, int wp, const char *oy, int nr,
                            const char *ox0, int cols, const char *ind)
{
    const int g = groups_of(c), icg = c->ic / g;
    int cw[64];
    const int n = split_cols(cols, cw, 64);
    fprintf(o, "%s{\n%s    const float *xi = %s + ((size_t)g * %d * %d + (%s) * %d) * %d + (%s) * %d;\n", ind, ind, src, icg,
            hp, oy, c->sh, wp, ox0, c->sw);
    for (int r = 0; r < nr; r++)
        for (int k = 0; k < n; k++) {
            if (cw[k] > 1) fprintf(o, "%s    sa_v%d a%d_%d = {0};\n", ind, cw[k], r, k);
            else fprintf(o, "%s    float a%d_%d = 0.0f;\n", ind, r, k);
        }
    fprintf(o, "%s    for (int ci = 0; ci < %d; ci++)\n"
               "%s        for (int ky = 0; ky < %d; ky++)\n"
               "%s            for (int kx = 0; kx < %d; kx++) {\n"
               "%s                const float wv = wo[(ci * %d + ky) * %d + kx];\n"
               "%s                const float *xp = xi + (ci * %d + ky * %d) * %d + kx * %d;\n",
            ind, icg, ind, c->kh, ind, c->kw, ind, c->kh, c->kw, ind, hp, c->dh, wp, c->dw);
    for (int r = 0; r < nr; r++)
        for (int k = 0, c0 = 0; k < n; c0 += cw[k], k++) {
            const int base = r * c->sh * wp + c0 * c->sw;
            if (cw[k] == 1) {
                fprintf(o, "%s                a%d_%d += xp[%d] * wv;\n", ind, r, k, base);
            } else if (c->sw == 1) {
                fprintf(o, "%s                {\n%s                    sa_v%d xv;\n"
                           "%s                    memcpy(&xv, xp + %d, sizeof xv);\n"
                           "%s                    a%d_%d += xv * wv;\n%s                }\n",
                        ind, ind, cw[k], ind, base, ind, r, k, ind);
            } else {
                fprintf(o, "%s                a%d_%d += (sa_v%d){", ind, r, k, cw[k]);
                for (int j = 0; j < cw[k]; j++) fprintf(o, "%sxp[%d]", j ? ", " : "", base + j * c->sw);
                fprintf(o, "} * wv;\n");
            }
        }
    fprintf(o, "%s            }\n", ind);
    char dst[192], sum[32], ind2[64];
    snprintf(ind2, sizeof ind2, "%s        ", ind);
    for (int r = 0; r < nr; r++)
        for (int k = 0, c0 = 0; k < n; c0 += cw[k], k++) {
            if (cw[k] == 1) {
                snprintf(dst, sizeof dst, "%s[((size_t)oc * %d + (%s) + %d) * %d + (%s) + %d]", c->y, c->oh, oy, r, c->ow,
                         ox0, c0);
                snprintf(sum, sizeof sum, "a%d_%d", r, k);
                emit_store(o, c, ind2 + 4, dst, sum, "oc");
                continue;
            }
            fprintf(o, "%s    {\n%s        float t[%d];\n%s        memcpy(t, &a%d_%d, sizeof t);\n"
                       "%s        for (int j = 0; j < %d; j++)\n",
                    ind, ind, cw[k], ind, r, k, ind, cw[k]);
            snprintf(dst, sizeof dst, "%s[((size_t)oc * %d + (%s) + %d) * %d + (%s) + %d + j]", c->y, c->oh, oy, r,
                     c->ow, ox0, c0);
            char ind3[72];
            snprintf(ind3, sizeof ind3, "%s    ", ind2);
            emit_store(o, c, ind3, dst, "t[j]", "oc");
            fprintf(o, "%s    }\n", ind);
        }
    fprintf(o, "%s}\n", ind);
}

/* Few outputs a group (depthwise) with vectors: each output channel's rows in runs of
 * a few rows (enough sums in flight to hide the adds' latency) and its columns in runs of
 * up to four vectors, exact tails. */
static void emit_pix(FILE *o, const sa_conv *c, const char *src, int hp, int wp)
{
    const int g = groups_of(c), og = c->oc / g, icg = c->ic / g;
    const int colrun = 4 * sa_vec, cruns = c->ow / colrun, ctail = c->ow % colrun;
    fprintf(o, "    for (int oc = 0; oc < %d; oc++) {\n"
               "        const int g = oc / %d;\n"
               "        const float *wo = W + %zu + (size_t)oc * %d;\n",
            c->oc, og, c->w_off, icg * c->kh * c->kw);
    /* vectors a kernel of one row holds: the rows a run takes fill about 8 */
    for (int part = 0; part < 2; part++) {
        const int cols = part == 0 ? colrun : ctail;
        if (part == 0 && !cruns) continue;
        if (part == 1 && !ctail) continue;
        const int perrow = cols / sa_vec + (cols % sa_vec ? 2 : 0);
        int nr = 8 / (perrow ? perrow : 1);
        if (nr < 1) nr = 1;
        if (nr > c->oh) nr = c->oh;
        const int rruns = c->oh / nr, rtail = c->oh % nr;
        char ox0[32], at[32];
        const char *ind = "        ";
        if (part == 0 && cruns > 1) {
            fprintf(o, "        for (int ox0 = 0; ox0 < %d; ox0 += %d) {\n", cruns * colrun, colrun);
            snprintf(ox0, sizeof ox0, "ox0");
            ind = "            ";
        } else {
            snprintf(ox0, sizeof ox0, "%d", part == 0 ? 0 : cruns * colrun);
        }
        char ind1[40];
        snprintf(ind1, sizeof ind1, "%s    ", ind);
        if (rruns > 1) {
            fprintf(o, "%sfor (int oy = 0; oy < %d; oy += %d)\n", ind, rruns * nr, nr);
            emit_pix_kernel(o, c, src, hp, wp, "oy", nr, ox0, cols, ind1);
        } else {
            emit_pix_kernel(o, c, src, hp, wp, "0", nr, ox0, cols, ind);
        }
        if (rtail) {
            snprintf(at, sizeof at, "%d", rruns * nr);
            emit_pix_kernel(o, c, src, hp, wp, at, rtail, ox0, cols, ind);
        }
        if (part == 0 && cruns > 1) fprintf(o, "        }\n");
    }
    fprintf(o, "    }\n");
}

/* Small windows on wide rows (a first layer's) run along the rows (emit_row_block): at
 * most SA_ROW_SUMS multiply-adds an output, stride 1, a row of at least half a vector. */
#define SA_ROW_SUMS 32
static int row_wise(const sa_conv *c)
{
    const int kk = c->ic / groups_of(c) * c->kh * c->kw;
    return kk <= SA_ROW_SUMS && c->kh * c->kw <= SA_UNROLL && c->sw == 1 && c->ow >= sa_vec / 2 && c->ow >= 4;
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
        if (sa_vec && row_wise(c)) {
            if (full) emit_row_block(o, c, src, hp, wp, SA_BLOCK, full, 0);
            if (tail) emit_row_block(o, c, src, hp, wp, tail, 1, full * SA_BLOCK);
        } else if (sa_vec) {
            if (full) emit_vec_block(o, c, src, hp, wp, SA_BLOCK, full, 0);
            if (tail) emit_vec_block(o, c, src, hp, wp, tail, 1, full * SA_BLOCK);
        } else {
            if (full) emit_block(o, c, src, hp, wp, SA_BLOCK, 0, SA_BLOCK, full, 0);
            if (tail) emit_block(o, c, src, hp, wp, tail, 0, tail, 1, full * SA_BLOCK);
        }
        return;
    }
    if (sa_vec) {
        emit_pix(o, c, src, hp, wp);
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
