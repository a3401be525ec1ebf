/*
 * sa_pool.c - the standalone file's loops for a max or average pooling whose every window
 * lies inside its input (no padding, the common 2x2 stride 2): no bounds tests and the
 * window written out, where the general loops (pool.c) test every cell. Only in the copies
 * on vectors: beside these loops gcc -O2 packed the plain copy's convolution statements
 * into vectors far worse (fashion 8.8k -> 4.0k images/s), so that copy keeps pool.c's.
 */
#include "sa_pool.h"

#include "cnnrt.h"
#include "sa_conv.h"

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
               "            for (int ox = 0; ox < %d; ox++) {\n"
               "                const float *p = r + ox * %d;\n"
               "                float s = %s, v;\n",
            L->in.c, L->out.h, in, L->in.h, L->sh, L->in.w, y, L->out.h, L->out.w, L->out.w, L->sw,
            is_max ? "-INFINITY" : "0.0f");
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
