/*
 * sa_pool.c - the standalone file's loops for a max or average pooling whose every window
 * lies inside its input (no padding, the common 2x2 stride 2): no bounds tests and the
 * window written out, where the general loops (pool.c) test every cell. Only in the copies
 * on vectors: beside these loops gcc -O2 packed the plain copy's convolution statements
 * into vectors far worse (fashion 8.8k -> 4.0k images/s), so that copy keeps pool.c's.
 * Windows two cells wide at stride 2 (the common 2x2 pooling) take a whole vector of
 * outputs at a time: two vectors of a window row hold its left cells in their even lanes
 * and its right cells in the odd ones (sa_even/sa_odd, shuffles the preamble defines),
 * taken in the same (ky, kx) order, so the bits do not change; gcc -O2 left the strided
 * scalar loop unvectorised (cnn3's first pooling took 8 % of its time).
 */
#include "sa_pool.h"

#include "cnnrt.h"
#include "sa_conv.h"

/* The loop over whole vectors of outputs of a window two cells wide at stride 2, opened
 * inside the row loop of sa_pool_emit_inside ("ox" counts the outputs done): for window row
 * ky, the 2V cells from the row's first window on, split into the left cells (even lanes)
 * and the right ones (odd lanes). The max keeps "v > s ? v : s" as a select, so NaN and
 * the sign of zero go as in the scalar loop. */
static void emit_pairs(FILE *o, const rt_layer *L, int vec)
{
    const int is_max = L->kind == RT_MAXPOOL;
    fprintf(o, "            for (; ox + %d <= %d; ox += %d) {\n"
               "                const float *p = r + ox * 2;\n"
               "                sa_v%d s = (sa_v%d){0}%s, lo, hi, v;\n",
            vec, L->out.w, vec, vec, vec, is_max ? " - INFINITY" : "");
    for (int ky = 0; ky < L->kh; ky++) {
        fprintf(o, "                memcpy(&lo, p + %d, sizeof lo);\n"
                   "                memcpy(&hi, p + %d, sizeof hi);\n",
                ky * L->in.w, ky * L->in.w + vec);
        for (int kx = 0; kx < 2; kx++) {
            fprintf(o, "                v = sa_%s%d(lo, hi);\n", kx ? "odd" : "even", vec);
            if (is_max)
                fprintf(o, "                {\n"
                           "                    const sa_i%d gt = v > s;\n"
                           "                    s = (sa_v%d)((gt & (sa_i%d)v) |\n"
                           "                                 (~gt & (sa_i%d)s));\n"
                           "                }\n",
                        vec, vec, vec, vec);
            else
                fprintf(o, "                s += v;\n");
        }
    }
    if (!is_max) fprintf(o, "                s = s / (float)%d;\n", L->kh * L->kw);
    fprintf(o, "                memcpy(d + ox, &s, sizeof s);\n            }\n");
}

int sa_pool_emit_inside(FILE *o, const rt_layer *L, const char *in, const char *y)
{
    const int is_max = L->kind == RT_MAXPOOL, kk = L->kh * L->kw;
    if (!sa_conv_vector() || L->pt || L->pb || L->pl || L->pr || kk > 16 || L->out.h < 1 || L->out.w < 1 ||
        (L->out.h - 1) * L->sh + L->kh > L->in.h || (L->out.w - 1) * L->sw + L->kw > L->in.w)
        return 0;
    fprintf(o, "    for (int c = 0; c < %d; c++)\n"
               "        for (int oy = 0; oy < %d; oy++) {\n"
               "            const float *r = %s + ((size_t)c * %d + oy * %d) * %d;\n"
               "            float *d = %s + ((size_t)c * %d + oy) * %d;\n"
               "            int ox = 0;\n",
            L->in.c, L->out.h, in, L->in.h, L->sh, L->in.w, y, L->out.h, L->out.w);
    const int vec = sa_conv_vector();
    if (L->kw == 2 && L->sw == 2 && L->out.w >= vec) emit_pairs(o, L, vec);
    fprintf(o, "            for (; ox < %d; ox++) {\n"
               "                const float *p = r + ox * %d;\n"
               "                float s = %s, v;\n",
            L->out.w, L->sw, is_max ? "-INFINITY" : "0.0f");
    /* the cells in (ky, kx) order, as the general loops visit them: the same max (ties of
     * +0 and -0, NaN) and the same sum */
    for (int ky = 0; ky < L->kh; ky++)
        for (int kx = 0; kx < L->kw; kx++)
            fprintf(o, "                v = p[%d];\n                s = %s;\n", ky * L->in.w + kx,
                    is_max ? "v > s ? v : s" : "s + v");
    if (is_max) fprintf(o, "                d[ox] = s;\n");
    else fprintf(o, "                d[ox] = s / (float)%d;\n", kk);
    fprintf(o, "            }\n        }\n");
    return 1;
}
