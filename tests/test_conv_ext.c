/*
 * test_conv_ext.c - dilated, grouped and depthwise convolution: hand-worked forward and
 * backward numbers, a float64 reference over random geometries mixing every other conv
 * feature, finite-difference gradient checks, geometry validation and determinism.
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "rt_kernels.h"

/* ck_assert records every passing check (fork mode): checks in loops go through CHECK. */
#define CHECK(cond, ...)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

static void expect(const float *got, const float *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        CHECK(got[i] == want[i], "%s: element %d is %.7g, expected %.7g", what, i, got[i],
              want[i]);
}

/* The output size of an axis: floor((n + p - ext + s) / s), ext the dilated extent. */
static int out_size(int n, int p, int k, int d, int s)
{
    int ext = d * (k - 1) + 1;
    return n + p < ext ? 0 : (n + p - ext + s) / s;
}

/* A geometry with every field named (oh, ow 0: by out_size); checked. */
static rt_conv_geom geom(int c, int h, int w, int oc, int oh, int ow, int kh, int kw, int s,
                         int p, rt_padmode pad, int flip, int d, int groups)
{
    rt_conv_geom g = {.c = c, .h = h, .w = w, .oc = oc, .oh = oh, .ow = ow, .kh = kh,
                      .kw = kw, .sh = s, .sw = s, .pt = p, .pb = p, .pl = p, .pr = p,
                      .pad = pad, .flip = flip, .dh = d, .dw = d, .groups = groups};
    if (oh == 0)
        g.oh = out_size(h, 2 * p, kh, d, s), g.ow = out_size(w, 2 * p, kw, d, s);
    ck_assert_int_eq(rt_conv_geom_check(&g, NULL), 0);
    return g;
}

/* Forward then backward with dy, serially and on two threads, against the wanted values;
 * dx is checked with accum 0 and then with accum 1 on top of itself (twice the value). */
static void hand_case(const rt_conv_geom *g, const float *x, const float *w, const float *b,
                      const float *want_y, const float *dy, const float *want_dx,
                      const float *want_dw, const float *want_db, const char *what)
{
    const int ny = g->oc * g->oh * g->ow, nx = g->c * g->h * g->w;
    const int nw = (int)rt_conv2d_weight_count(g);
    float y[64], dx[64], dw[64], db[8], twice[64];
    ck_assert_int_le(ny, 64);
    ck_assert_int_le(nx, 64);
    ck_assert_int_le(nw, 64);
    rt_threads *tp = rt_threads_create(2, NULL);
    ck_assert_ptr_nonnull(tp);
    for (int t = 0; t < 2; t++) {
        rt_threads *pool = t ? tp : NULL;
        memset(y, 0, sizeof y);
        ck_assert_int_eq(rt_conv2d_forward(g, x, w, b, RT_ACT_NONE, 0, y, 1, pool), 0);
        expect(y, want_y, ny, what);
        memset(dw, 0x7f, sizeof dw); /* overwritten, whatever was there */
        ck_assert_int_eq(rt_conv2d_backward(g, x, w, dy, dx, 0, dw, db, 1, pool), 0);
        expect(dx, want_dx, nx, what);
        expect(dw, want_dw, nw, what);
        expect(db, want_db, g->oc, what);
        ck_assert_int_eq(rt_conv2d_backward(g, x, w, dy, dx, 1, dw, db, 1, pool), 0);
        for (int i = 0; i < nx; i++)
            twice[i] = 2 * want_dx[i];
        expect(dx, twice, nx, what);
        expect(dw, want_dw, nw, what);
    }
    rt_threads_destroy(tp);
}

/* ------------------------------------------------------------------ hand-worked */

START_TEST(dilated_hand)
{
    /* X[i][j] = 5i + j on 5x5, zero padding 1, 3x3 kernel dilated by 2 (extent 5), stride 1:
     * output (5 + 2 - 5)/1 + 1 = 3. Tap (ky,kx) of output (oy,ox) reads X(oy+2ky-1, ox+2kx-1).
     * K = [[1,0,2],[0,-1,0],[3,0,0]], so
     *   y(oy,ox) = X(oy-1,ox-1) + 2 X(oy-1,ox+3) - X(oy+1,ox+1) + 3 X(oy+3,ox-1), 0 outside.
     *   oy=0 (row -1 is padding): -X(1,ox+1) + 3 X(3,ox-1):
     *     ox=0: -6 + 0 = -6;  ox=1: -7 + 3*15 = 38;  ox=2: -8 + 3*16 = 40
     *   oy=1: ox=0: 0 + 2*3 - 11 + 0 = -5;  ox=1: 0 + 2*4 - 12 + 3*20 = 56;
     *         ox=2: 1 + 0 - 13 + 3*21 = 51
     *   oy=2 (row 5 is padding): X(1,ox-1) + 2 X(1,ox+3) - X(3,ox+1):
     *     ox=0: 0 + 2*8 - 16 = 0;  ox=1: 5 + 2*9 - 17 = 6;  ox=2: 6 + 0 - 18 = -12
     * Backward with dy = ones: tap ky reads rows R0 = {0,1} (row -1 is padding), R1 = {1,2,3},
     * R2 = {3,4}, likewise columns. dw[ky][kx] = sum of X over R_ky x R_kx
     *   = 5 |R_kx| sum(R_ky) + |R_ky| sum(R_kx), sums 1, 6, 7:
     *   [[10+2, 15+12, 10+14], [60+3, 90+18, 60+21], [70+2, 105+12, 70+14]]
     *   = [[12, 27, 24], [63, 108, 81], [72, 117, 84]]; db = 9.
     * dx[i][j] = sum of K[ky][kx] over taps with i in R_ky, j in R_kx: weight 1 on rows {0,1}
     * x columns {0,1}, 2 on {0,1} x {3,4}, -1 on {1,2,3} x {1,2,3}, 3 on {3,4} x {0,1}. */
    float x[25];
    for (int i = 0; i < 25; i++)
        x[i] = (float)i;
    static const float k[9] = {1, 0, 2, 0, -1, 0, 3, 0, 0};
    static const float want[9] = {-6, 38, 40, -5, 56, 51, 0, 6, -12};
    static const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const float want_dw[9] = {12, 27, 24, 63, 108, 81, 72, 117, 84};
    static const float want_db[1] = {9};
    static const float want_dx[25] = {1, 1, 0,  2,  2, 1, 0, -1, 1,  2, 0, -1, -1,
                                      -1, 0, 3, 2, -1, -1, 0, 3, 3, 0, 0,  0};
    rt_conv_geom g = geom(1, 5, 5, 1, 3, 3, 3, 3, 1, 1, RT_PAD_ZERO, 0, 2, 1);
    hand_case(&g, x, k, NULL, want, ones, want_dx, want_dw, want_db, "dilation 2");
    /* flip maps tap ky to weight kh-1-ky: the rotated kernel flipped gives the same result */
    static const float krot[9] = {0, 0, 3, 0, -1, 0, 2, 0, 1};
    static const float want_dw_rot[9] = {84, 117, 72, 81, 108, 63, 24, 27, 12};
    g.flip = 1;
    hand_case(&g, x, krot, NULL, want, ones, want_dx, want_dw_rot, want_db, "dilation 2 flip");
}
END_TEST

START_TEST(grouped_hand)
{
    /* 2 groups, 2 in / 2 out channels, 2x2 kernels, valid: output 0 sees input 0 only,
     * output 1 input 1 only (weights [2][1][2][2]).
     * in 0 = X0(i,j) = 3i+j (0..8), K0 = [[0,1],[2,3]], bias 10: the lecture's 19 25 37 43
     *   plus 10 = 29 35 47 53.
     * in 1 = X1(i,j) = 9+3i+j, K1 = [[1,-1],[2,0]], bias -1:
     *   y = X1(a,b) - X1(a,b+1) + 2 X1(a+1,b) - 1 = -1 + 2 X1(a+1,b) - 1
     *   = 2*12-2 = 22, 2*13-2 = 24, 2*15-2 = 28, 2*16-2 = 30.
     * Backward, dy0 = [[1,0],[0,2]], dy1 = ones:
     *   dw0[ky][kx] = X0(ky,kx) + 2 X0(1+ky,1+kx) = 0+8, 1+10, 3+14, 4+16 = 8 11 17 20
     *   dw1[ky][kx] = sum of the 2x2 block of X1 at (ky,kx) = 44 48 56 60 (9+10+12+13 = 44)
     *   db = 1+2, 4 = 3 4
     *   dx0 = K0 at (0,0) plus 2 K0 at (1,1) = [[0,1,0],[2,3,2],[0,4,6]]
     *   dx1 = K1 summed at the four positions = [[1,0,-1],[3,2,-1],[2,2,0]] */
    float x[18];
    for (int i = 0; i < 18; i++)
        x[i] = (float)i;
    static const float w[8] = {0, 1, 2, 3, 1, -1, 2, 0};
    static const float b[2] = {10, -1};
    static const float want[8] = {29, 35, 47, 53, 22, 24, 28, 30};
    static const float dy[8] = {1, 0, 0, 2, 1, 1, 1, 1};
    static const float want_dw[8] = {8, 11, 17, 20, 44, 48, 56, 60};
    static const float want_db[2] = {3, 4};
    static const float want_dx[18] = {0, 1, 0, 2, 3, 2, 0, 4, 6, 1, 0, -1, 3, 2, -1, 2, 2, 0};
    /* groups == c == 2 is depthwise with multiplier 1: the direct kernel */
    rt_conv_geom g = geom(2, 3, 3, 2, 2, 2, 2, 2, 1, 0, RT_PAD_ZERO, 0, 1, 2);
    hand_case(&g, x, w, b, want, dy, want_dx, want_dw, want_db, "2 groups");
}
END_TEST

START_TEST(grouped_gemm_hand)
{
    /* 2 groups of 2 input channels each (the per-group GEMM path): 4 in, 2 out, 1x1 kernels,
     * input channel i filled with i+1 on 2x2. Output 0 = 1*ch0 + 10*ch1 = 1 + 20 = 21,
     * output 1 = 100*ch2 + 1000*ch3 = 300 + 4000 = 4300 (a full conv would add the others).
     * dy = ones: dw = sums of the channels over 4 pixels = 4, 8 | 12, 16; db = 4 4;
     * dx = the weight of each channel: 1, 10, 100, 1000. */
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i / 4 + 1);
    static const float w[4] = {1, 10, 100, 1000};
    static const float want[8] = {21, 21, 21, 21, 4300, 4300, 4300, 4300};
    static const float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    static const float want_dw[4] = {4, 8, 12, 16};
    static const float want_db[2] = {4, 4};
    static const float want_dx[16] = {1,   1,   1,   1,   10,   10,   10,   10,
                                      100, 100, 100, 100, 1000, 1000, 1000, 1000};
    rt_conv_geom g = geom(4, 2, 2, 2, 2, 2, 1, 1, 1, 0, RT_PAD_ZERO, 0, 1, 2);
    hand_case(&g, x, w, NULL, want, ones, want_dx, want_dw, want_db, "2 groups of 2, 1x1");
    /* the same with a 1-pixel zero border (im2col, not the pointwise shortcut): the 4x4
     * output's border rows and columns are 0, the centre 2x2 as above */
    static const float wantp[32] = {0, 0, 0, 0, 0, 21, 21, 0, 0, 21, 21, 0, 0, 0, 0, 0,
                                    0, 0, 0, 0, 0, 4300, 4300, 0, 0, 4300, 4300, 0, 0, 0, 0, 0};
    float y[32];
    rt_conv_geom p = geom(4, 2, 2, 2, 4, 4, 1, 1, 1, 1, RT_PAD_ZERO, 0, 1, 2);
    ck_assert_int_eq(rt_conv2d_forward(&p, x, w, NULL, RT_ACT_NONE, 0, y, 1, NULL), 0);
    expect(y, wantp, 32, "2 groups of 2, 1x1, padded");
}
END_TEST

START_TEST(depthwise_hand)
{
    /* Depthwise, 2 channels, multiplier 2 (4 outputs; outputs 0,1 read channel 0, outputs 2,3
     * channel 1), 2x2 kernels, valid on 3x3. X0 = 3i+j, X1 = 9+3i+j.
     *   K0 = [[1,0],[0,0]]: X0(a,b) = 0 1 3 4;  K1 = [[0,0],[0,1]]: X0(a+1,b+1) = 4 5 7 8
     *   K2 = ones: 2x2 block sums of X1 = 44 48 56 60
     *   K3 = [[0,1],[-1,0]]: X1(a,b+1) - X1(a+1,b) = 1 - 3 = -2 everywhere
     * Backward, dy = ones: dw = block sums of the channel read: X0's 8 12 20 24 (the
     * lecture's), twice, then X1's 44 48 56 60 twice; db = 4 each;
     *   dx0 = [[1,1,0],[1,1,0],[0,0,0]] (K0) + [[0,0,0],[0,1,1],[0,1,1]] (K1)
     *       = [[1,1,0],[1,2,1],[0,1,1]]
     *   dx1 = [[1,2,1],[2,4,2],[1,2,1]] (K2: windows covering each pixel)
     *       + [[0,1,1],[-1,0,1],[-1,-1,0]] (K3: +1 on rows 0-1 x cols 1-2, -1 on rows 1-2 x
     *         cols 0-1) = [[1,3,2],[1,4,3],[0,1,1]] */
    float x[18];
    for (int i = 0; i < 18; i++)
        x[i] = (float)i;
    static const float w[16] = {1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, -1, 0};
    static const float want[16] = {0, 1, 3, 4, 4, 5, 7, 8, 44, 48, 56, 60, -2, -2, -2, -2};
    static const float ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const float want_dw[16] = {8,  12, 20, 24, 8,  12, 20, 24,
                                      44, 48, 56, 60, 44, 48, 56, 60};
    static const float want_db[4] = {4, 4, 4, 4};
    static const float want_dx[18] = {1, 1, 0, 1, 2, 1, 0, 1, 1, 1, 3, 2, 1, 4, 3, 0, 1, 1};
    rt_conv_geom g = geom(2, 3, 3, 4, 2, 2, 2, 2, 1, 0, RT_PAD_ZERO, 0, 1, 2);
    hand_case(&g, x, w, NULL, want, ones, want_dx, want_dw, want_db, "depthwise x2");
}
END_TEST

START_TEST(im2col_dilated_adjoint)
{
    /* im2col of the dilated example: row (0, ky=1, kx=2) reads X(oy+1, ox+3), so for the
     * 3x3 output: X(1,3) X(1,4) 0 / X(2,3) X(2,4) 0 / X(3,3) X(3,4) 0 = 8 9 0 13 14 0 18 19 0.
     * And col2im is its adjoint: <im2col(x), C> == <x, col2im(C)> (exact in small integers). */
    float x[25], col[81], c2[81], back[25];
    for (int i = 0; i < 25; i++)
        x[i] = (float)i;
    rt_conv_geom g = geom(1, 5, 5, 1, 3, 3, 3, 3, 1, 1, RT_PAD_ZERO, 0, 2, 1);
    rt_im2col(&g, x, 0, 3, col);
    static const float row5[9] = {8, 9, 0, 13, 14, 0, 18, 19, 0};
    expect(col + 5 * 9, row5, 9, "im2col row (ky 1, kx 2)");
    for (int pad = 0; pad < 4; pad++) {
        g.pad = (rt_padmode)pad;
        rt_im2col(&g, x, 0, 3, col);
        for (int i = 0; i < 81; i++)
            c2[i] = (float)((i * 7) % 5 - 2);
        memset(back, 0, sizeof back);
        rt_col2im(&g, c2, 0, 3, back);
        double a = 0, b = 0;
        for (int i = 0; i < 81; i++)
            a += (double)col[i] * c2[i];
        for (int i = 0; i < 25; i++)
            b += (double)x[i] * back[i];
        ck_assert_msg(a == b, "pad %d: <im2col x, C> %g != <x, col2im C> %g", pad, a, b);
    }
}
END_TEST

/* ------------------------------------------------------------------ float64 reference */

static uint64_t lcg = 2026;
static uint32_t urand(void)
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(lcg >> 33);
}
static int irand(int lo, int hi) /* in [lo, hi] */
{
    return lo + (int)(urand() % (uint32_t)(hi - lo + 1));
}
static float frand(void) /* in [-1, 1) */
{
    return (float)(urand() / 1073741824.0 - 1.0);
}

/* col2im with a column stride of 2 takes its own path (half-width rows per column parity,
 * added back interleaved): on random geometries (stride 2 x 1 or 2 x 2 rows, windows 1-5
 * wide, asymmetric padding, odd and even widths, flipped kernels, bands of output rows,
 * every padding mode with and without padded cells) it stays the adjoint of im2col, exactly
 * in small integers, and adds onto what dx holds. */
START_TEST(col2im_stride2_adjoint)
{
    for (int it = 0; it < 300; it++) {
        rt_conv_geom g = {0};
        g.c = irand(1, 3), g.h = irand(1, 9), g.w = irand(1, 41);
        g.kh = irand(1, 3), g.kw = irand(1, 5), g.sh = irand(1, 2), g.sw = 2;
        g.pad = (rt_padmode)irand(0, 3), g.flip = irand(0, 1), g.dh = g.dw = 1;
        g.groups = 1, g.oc = 1;
        int padded = g.pad == RT_PAD_ZERO || irand(0, 1);
        g.pt = padded ? irand(0, g.kh - 1) : 0, g.pb = padded ? irand(0, g.kh - 1) : 0;
        g.pl = padded ? irand(0, g.kw - 1) : 0, g.pr = padded ? irand(0, g.kw - 1) : 0;
        if (g.h + g.pt + g.pb < g.kh || g.w + g.pl + g.pr < g.kw)
            continue;
        g.oh = (g.h + g.pt + g.pb - g.kh) / g.sh + 1;
        g.ow = (g.w + g.pl + g.pr - g.kw) / g.sw + 1;
        if (rt_conv_geom_check(&g, NULL) != 0)
            continue;
        int oy0 = irand(0, g.oh - 1), oy1 = irand(oy0 + 1, g.oh);
        size_t xn = (size_t)g.c * g.h * g.w, cn = (size_t)g.c * g.kh * g.kw * (oy1 - oy0) * g.ow;
        float *x = malloc(xn * sizeof *x), *back = malloc(xn * sizeof *back);
        float *col = malloc(cn * sizeof *col), *c2 = malloc(cn * sizeof *c2);
        ck_assert(x && back && col && c2);
        for (size_t i = 0; i < xn; i++)
            x[i] = (float)irand(-3, 3), back[i] = (float)irand(-2, 2);
        for (size_t i = 0; i < cn; i++)
            c2[i] = (float)irand(-4, 4);
        double a = 0, b = 0, before = 0;
        for (size_t i = 0; i < xn; i++)
            before += (double)x[i] * back[i];
        rt_im2col(&g, x, oy0, oy1, col);
        rt_col2im(&g, c2, oy0, oy1, back);
        for (size_t i = 0; i < cn; i++)
            a += (double)col[i] * c2[i];
        for (size_t i = 0; i < xn; i++)
            b += (double)x[i] * back[i];
        ck_assert_msg(a == b - before,
                      "%d: c %d %dx%d k %dx%d s %dx%d pad %d (%d %d %d %d) flip %d rows %d-%d: "
                      "<im2col x, C> %g != <x, col2im C> %g", it, g.c, g.h, g.w, g.kh, g.kw,
                      g.sh, g.sw, g.pad, g.pt, g.pb, g.pl, g.pr, g.flip, oy0, oy1, a,
                      b - before);
        free(x), free(back), free(col), free(c2);
    }
}
END_TEST

/* The padding rule written independently of the library (one reflection is enough for the
 * pads the checker accepts). */
static int ref_src(int i, int n, rt_padmode m)
{
    if (i >= 0 && i < n)
        return i;
    switch (m) {
    case RT_PAD_REFLECT: return i < 0 ? -i : 2 * n - 2 - i;
    case RT_PAD_REPLICATE: return i < 0 ? 0 : n - 1;
    case RT_PAD_CIRCULAR: return i < 0 ? i + n : i - n;
    default: return -1;
    }
}

/* Results of the reference, each with the sum of the magnitudes of its terms (the scale of
 * the rounding error a float sum of them may make). */
typedef struct {
    double *y, *ym, *dx, *dxm, *dw, *dwm, *db, *dbm;
} ref_out;

/* Conv forward (pre-activation) and, with dz, backward from the definitions, for g with
 * dh, dw, groups given explicitly. x, w, b (NULL: none), dz in double. */
static void ref_conv(const rt_conv_geom *g, int n, const double *x, const double *w,
                     const double *b, const double *dz, ref_out *r)
{
    const int G = g->groups, cg = g->c / G, og = g->oc / G;
    const size_t nx = (size_t)n * g->c * g->h * g->w;
    const size_t nw = (size_t)g->oc * cg * g->kh * g->kw;
    if (dz) {
        memset(r->dx, 0, nx * sizeof(double)), memset(r->dxm, 0, nx * sizeof(double));
        memset(r->dw, 0, nw * sizeof(double)), memset(r->dwm, 0, nw * sizeof(double));
        memset(r->db, 0, g->oc * sizeof(double)), memset(r->dbm, 0, g->oc * sizeof(double));
    }
    for (int s = 0; s < n; s++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    size_t yi = (((size_t)s * g->oc + o) * g->oh + oy) * g->ow + ox;
                    double acc = b ? b[o] : 0.0, mag = fabs(acc);
                    double d = dz ? dz[yi] : 0.0;
                    for (int cl = 0; cl < cg; cl++) {
                        int ci = o / og * cg + cl;
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int iy = ref_src(oy * g->sh + ky * g->dh - g->pt, g->h, g->pad);
                                int ix = ref_src(ox * g->sw + kx * g->dw - g->pl, g->w, g->pad);
                                if (iy < 0 || ix < 0)
                                    continue;
                                /* true convolution: tap ky pairs with weight row kh-1-ky */
                                int wy = g->flip ? g->kh - 1 - ky : ky;
                                int wx = g->flip ? g->kw - 1 - kx : kx;
                                size_t wi = (((size_t)o * cg + cl) * g->kh + wy) * g->kw + wx;
                                size_t xi = (((size_t)s * g->c + ci) * g->h + iy) * g->w + ix;
                                acc += w[wi] * x[xi];
                                mag += fabs(w[wi] * x[xi]);
                                if (dz) {
                                    r->dw[wi] += d * x[xi], r->dwm[wi] += fabs(d * x[xi]);
                                    r->dx[xi] += d * w[wi], r->dxm[xi] += fabs(d * w[wi]);
                                }
                            }
                    }
                    r->y[yi] = acc;
                    if (r->ym)
                        r->ym[yi] = mag;
                    if (dz)
                        r->db[o] += d, r->dbm[o] += fabs(d);
                }
}

static double act_ref(rt_act act, double v)
{
    switch (act) {
    case RT_ACT_RELU: return v > 0 ? v : 0;
    case RT_ACT_LEAKYRELU: return v > 0 ? v : 0.1 * v;
    case RT_ACT_TANH: return tanh(v);
    default: return v;
    }
}

/* got within 1e-5 of want relative to the magnitude of the sum (1e-6 absolute below that
 * magnitude's floor of 0.1, for sums of few small terms). */
static int near(double got, double want, double mag)
{
    return fabs(got - want) <= 1e-5 * (mag > 0.1 ? mag : 0.1);
}

static double *dalloc(size_t n)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}
static float *falloc(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Forward, dx (accum 0 and 1), dw and db of the kernels against the reference. */
static void conv_vs_ref(const rt_conv_geom *g, int n, int bias, rt_act act, rt_threads *tp,
                        const char *what)
{
    const size_t nx = (size_t)n * g->c * g->h * g->w, ny = (size_t)n * g->oc * g->oh * g->ow;
    const size_t nw = rt_conv2d_weight_count(g);
    ck_assert_uint_eq(nw, (size_t)g->oc * (g->c / g->groups) * g->kh * g->kw);
    float *x = falloc(nx), *w = falloc(nw), *b = falloc(g->oc), *dz = falloc(ny);
    float *y = falloc(ny), *dx = falloc(nx), *dx0 = falloc(nx), *dw = falloc(nw);
    float *db = falloc(g->oc);
    double *xd = dalloc(nx), *wd = dalloc(nw), *bd = dalloc(g->oc), *dzd = dalloc(ny);
    ref_out r = {dalloc(ny), dalloc(ny), dalloc(nx), dalloc(nx),
                 dalloc(nw), dalloc(nw), dalloc(g->oc), dalloc(g->oc)};
    for (size_t i = 0; i < nx; i++)
        xd[i] = x[i] = frand(), dx0[i] = frand();
    for (size_t i = 0; i < nw; i++)
        wd[i] = w[i] = frand();
    for (int i = 0; i < g->oc; i++)
        bd[i] = b[i] = frand();
    for (size_t i = 0; i < ny; i++)
        dzd[i] = dz[i] = frand();
    ref_conv(g, n, xd, wd, bias ? bd : NULL, dzd, &r);

    ck_assert_int_eq(rt_conv2d_forward(g, x, w, bias ? b : NULL, act, 0.1f, y, n, tp), 0);
    for (size_t i = 0; i < ny; i++)
        CHECK(near(y[i], act_ref(act, r.y[i]), r.ym[i]), "%s (%s): y[%zu] %.9g vs %.9g", what,
              rt_gemm_isa(), i, y[i], act_ref(act, r.y[i]));
    ck_assert_int_eq(rt_conv2d_backward(g, x, w, dz, dx, 0, dw, bias ? db : NULL, n, tp), 0);
    for (size_t i = 0; i < nx; i++)
        CHECK(near(dx[i], r.dx[i], r.dxm[i]), "%s: dx[%zu] %.9g vs %.9g", what, i, dx[i],
              r.dx[i]);
    for (size_t i = 0; i < nw; i++)
        CHECK(near(dw[i], r.dw[i], r.dwm[i]), "%s: dw[%zu] %.9g vs %.9g", what, i, dw[i],
              r.dw[i]);
    if (bias)
        for (int i = 0; i < g->oc; i++)
            CHECK(near(db[i], r.db[i], r.dbm[i]), "%s: db[%d] %.9g vs %.9g", what, i, db[i],
                  r.db[i]);
    /* accum 1 adds to what dx holds, and leaves dw overwritten */
    memcpy(dx, dx0, nx * sizeof *dx);
    ck_assert_int_eq(rt_conv2d_backward(g, x, w, dz, dx, 1, dw, NULL, n, tp), 0);
    for (size_t i = 0; i < nx; i++)
        CHECK(near(dx[i], dx0[i] + r.dx[i], r.dxm[i] + fabs(dx0[i])),
              "%s: accumulated dx[%zu] %.9g vs %.9g", what, i, dx[i], dx0[i] + r.dx[i]);
    for (size_t i = 0; i < nw; i++)
        CHECK(near(dw[i], r.dw[i], r.dwm[i]), "%s: dw[%zu] after accum", what, i);
    free(x), free(w), free(b), free(dz), free(y), free(dx), free(dx0), free(dw), free(db);
    free(xd), free(wd), free(bd), free(dzd);
    free(r.y), free(r.ym), free(r.dx), free(r.dxm), free(r.dw), free(r.dwm), free(r.db);
    free(r.dbm);
}

/* A random geometry mixing groups (1, a divisor, depthwise), dilation, stride, padding
 * (every mode), flip; retried until the checker accepts it. */
static rt_conv_geom random_geom(void)
{
    for (;;) {
        rt_conv_geom g = {0};
        int kind = irand(0, 2), cg = irand(1, 4);
        g.groups = kind == 0 ? 1 : irand(2, 4);
        g.c = kind == 2 ? g.groups : g.groups * cg; /* kind 2: depthwise */
        g.oc = g.groups * irand(1, 3);
        g.kh = irand(1, 4), g.kw = irand(1, 4);
        g.dh = irand(1, 3), g.dw = irand(1, 3);
        g.sh = irand(1, 3), g.sw = irand(1, 3);
        g.h = irand(3, 13), g.w = irand(3, 13);
        g.pt = irand(0, 3), g.pb = irand(0, 3), g.pl = irand(0, 3), g.pr = irand(0, 3);
        g.pad = (rt_padmode)irand(0, 3);
        g.flip = irand(0, 1);
        g.oh = out_size(g.h, g.pt + g.pb, g.kh, g.dh, g.sh);
        g.ow = out_size(g.w, g.pl + g.pr, g.kw, g.dw, g.sw);
        if (g.oh > 0 && g.ow > 0 && rt_conv_geom_check(&g, NULL) == 0)
            return g;
    }
}

START_TEST(reference_random)
{
    /* 40 random geometries on every micro-kernel this CPU has, batches 1 and 3, pools of 1
     * and 2 workers, with and without bias, under each fused activation; plus fixed cases:
     * K = c/G*kh*kw above 64 (the packed dW), the pointwise shortcut per group, depthwise
     * with a multiplier, stride and dilation on wide images (the depthwise loops' blocks of
     * 16 columns and their remainder), 1x1 dilated (dilation has no effect) */
    static const char *isas[] = {"avx512", "avx2", "generic"};
    static const rt_act acts[] = {RT_ACT_NONE, RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_TANH};
    /* c h w oc kh kw s p pad flip d groups */
    static const int fixed[][12] = {
        {16, 9, 10, 6, 3, 3, 1, 1, 0, 0, 1, 2},  {16, 9, 10, 6, 3, 3, 1, 2, 1, 1, 2, 2},
        {6, 5, 7, 9, 1, 1, 1, 0, 0, 0, 1, 3},    {4, 12, 40, 8, 3, 3, 1, 2, 2, 0, 2, 4},
        {5, 11, 37, 5, 3, 3, 2, 3, 3, 1, 3, 5},  {3, 8, 8, 6, 5, 5, 1, 4, 1, 1, 2, 3},
        {8, 6, 6, 8, 1, 1, 1, 0, 0, 0, 3, 8},    {12, 7, 9, 6, 2, 3, 2, 1, 0, 0, 1, 3},
        {6, 5, 33, 6, 3, 3, 1, 1, 3, 1, 1, 6},   {3, 6, 20, 9, 3, 3, 1, 2, 1, 0, 2, 3},
    };
    const char *before = rt_gemm_isa();
    rt_threads *tp = rt_threads_create(2, NULL);
    ck_assert_ptr_nonnull(tp);
    int ran = 0;
    for (int is = 0; is < 3; is++) {
        if (rt_gemm_use_isa(isas[is]) != 0)
            continue;
        lcg = 2026; /* the same geometries on each micro-kernel */
        for (int t = 0; t < 40; t++) {
            rt_conv_geom g = random_geom();
            char what[160];
            snprintf(what, sizeof what,
                     "random %d: %dx%dx%d -> %d k%dx%d s%dx%d d%dx%d p%d%d%d%d pad %d flip %d "
                     "G %d",
                     t, g.c, g.h, g.w, g.oc, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pb,
                     g.pl, g.pr, g.pad, g.flip, g.groups);
            conv_vs_ref(&g, t % 2 ? 3 : 1, t % 3 != 0, acts[t % 4], t % 4 < 2 ? tp : NULL,
                        what);
            ran++;
        }
        for (size_t t = 0; t < sizeof fixed / sizeof fixed[0]; t++) {
            const int *k = fixed[t];
            rt_conv_geom g = geom(k[0], k[1], k[2], k[3], 0, 0, k[4], k[5], k[6], k[7],
                                  (rt_padmode)k[8], k[9], k[10], k[11]);
            char what[32];
            snprintf(what, sizeof what, "fixed case %zu", t);
            conv_vs_ref(&g, 3, 1, acts[t % 4], t % 2 ? tp : NULL, what);
            conv_vs_ref(&g, 1, 0, RT_ACT_NONE, t % 2 ? NULL : tp, what);
            ran += 2;
        }
    }
    ck_assert_int_ge(ran, 60); /* at least the generic micro-kernel ran everything */
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(zero_means_one)
{
    /* dh = dw = groups = 0 (an initializer of the first 16 fields) is dilation 1, groups 1,
     * bit for bit */
    rt_conv_geom a = geom(3, 7, 6, 4, 7, 6, 3, 3, 1, 1, RT_PAD_REFLECT, 0, 1, 1);
    rt_conv_geom z = a;
    z.dh = z.dw = z.groups = 0;
    ck_assert_int_eq(rt_conv_geom_check(&z, NULL), 0);
    ck_assert_uint_eq(rt_conv2d_weight_count(&z), 4 * 27);
    ck_assert_uint_eq(rt_conv2d_scratch_size(&z), rt_conv2d_scratch_size(&a));
    float x[2 * 126], w[108], b[4], y1[2 * 168], y2[2 * 168], dz[2 * 168];
    float dx1[2 * 126], dx2[2 * 126], dw1[108], dw2[108], db1[4], db2[4];
    for (int i = 0; i < 2 * 126; i++)
        x[i] = frand();
    for (int i = 0; i < 108; i++)
        w[i] = frand();
    for (int i = 0; i < 4; i++)
        b[i] = frand();
    for (int i = 0; i < 2 * 168; i++)
        dz[i] = frand();
    ck_assert_int_eq(rt_conv2d_forward(&a, x, w, b, RT_ACT_RELU, 0, y1, 2, NULL), 0);
    ck_assert_int_eq(rt_conv2d_forward(&z, x, w, b, RT_ACT_RELU, 0, y2, 2, NULL), 0);
    ck_assert_mem_eq(y1, y2, sizeof y1);
    ck_assert_int_eq(rt_conv2d_backward(&a, x, w, dz, dx1, 0, dw1, db1, 2, NULL), 0);
    ck_assert_int_eq(rt_conv2d_backward(&z, x, w, dz, dx2, 0, dw2, db2, 2, NULL), 0);
    ck_assert_mem_eq(dx1, dx2, sizeof dx1);
    ck_assert_mem_eq(dw1, dw2, sizeof dw1);
    ck_assert_mem_eq(db1, db2, sizeof db1);
}
END_TEST

/* ------------------------------------------------------------------ finite differences */

/* L = sum r * conv(x, w, b) in float64 by the reference. */
static double ref_loss(const rt_conv_geom *g, int n, const double *x, const double *w,
                       const double *b, const double *r, double *ybuf)
{
    ref_out o = {ybuf, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    ref_conv(g, n, x, w, b, NULL, &o);
    double l = 0;
    for (size_t i = 0; i < (size_t)n * g->oc * g->oh * g->ow; i++)
        l += r[i] * ybuf[i];
    return l;
}

/* Indices of gradient entries that differ from central differences of the loss by more
 * than 1e-3 relative (to the larger of the two, floored at 1e-2 of the largest gradient). */
static int fd_mismatches(const float *grad, const double *fd, size_t n)
{
    double top = 0;
    for (size_t i = 0; i < n; i++)
        top = fmax(top, fabs(fd[i]));
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double scale = fmax(fmax(fabs(fd[i]), fabs(grad[i])), 1e-2 * top);
        if (fabs(grad[i] - fd[i]) > 1e-3 * scale)
            bad++;
    }
    return bad;
}

/* Central differences of L in each entry of p (n of them), step 1e-3. */
static void central(const rt_conv_geom *g, int nimg, double *x, double *w, double *b,
                    const double *r, double *ybuf, double *p, size_t n, double *fd)
{
    const double h = 1e-3;
    for (size_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = ref_loss(g, nimg, x, w, b, r, ybuf);
        p[i] = keep - h;
        double lm = ref_loss(g, nimg, x, w, b, r, ybuf);
        p[i] = keep;
        fd[i] = (lp - lm) / (2 * h);
    }
}

static void gradcheck(const rt_conv_geom *g, int n, rt_threads *tp, const char *what)
{
    const size_t nx = (size_t)n * g->c * g->h * g->w, ny = (size_t)n * g->oc * g->oh * g->ow;
    const size_t nw = rt_conv2d_weight_count(g);
    float *x = falloc(nx), *w = falloc(nw), *b = falloc(g->oc), *r = falloc(ny);
    float *dx = falloc(nx), *dw = falloc(nw), *db = falloc(g->oc);
    double *xd = dalloc(nx), *wd = dalloc(nw), *bd = dalloc(g->oc), *rd = dalloc(ny);
    double *ybuf = dalloc(ny), *fx = dalloc(nx), *fw = dalloc(nw), *fb = dalloc(g->oc);
    for (size_t i = 0; i < nx; i++)
        xd[i] = x[i] = frand();
    for (size_t i = 0; i < nw; i++)
        wd[i] = w[i] = frand();
    for (int i = 0; i < g->oc; i++)
        bd[i] = b[i] = frand();
    for (size_t i = 0; i < ny; i++)
        rd[i] = r[i] = frand();
    /* dL/dy = r: the analytic gradient in float32 */
    ck_assert_int_eq(rt_conv2d_backward(g, x, w, r, dx, 0, dw, db, n, tp), 0);
    central(g, n, xd, wd, bd, rd, ybuf, xd, nx, fx);
    central(g, n, xd, wd, bd, rd, ybuf, wd, nw, fw);
    central(g, n, xd, wd, bd, rd, ybuf, bd, (size_t)g->oc, fb);
    ck_assert_msg(fd_mismatches(dx, fx, nx) == 0, "%s: dx differs from finite differences",
                  what);
    ck_assert_msg(fd_mismatches(dw, fw, nw) == 0, "%s: dw differs from finite differences",
                  what);
    ck_assert_msg(fd_mismatches(db, fb, (size_t)g->oc) == 0,
                  "%s: db differs from finite differences", what);
    /* the check can fail: the largest weight gradient 0.5% off is caught */
    size_t big = 0;
    for (size_t i = 1; i < nw; i++)
        if (fabs(fw[i]) > fabs(fw[big]))
            big = i;
    dw[big] *= 1.005f;
    ck_assert_msg(fd_mismatches(dw, fw, nw) == 1, "%s: a 0.5%% error in dw[%zu] went unseen",
                  what, big);
    free(x), free(w), free(b), free(r), free(dx), free(dw), free(db);
    free(xd), free(wd), free(bd), free(rd), free(ybuf), free(fx), free(fw), free(fb);
}

START_TEST(finite_differences)
{
    rt_threads *tp = rt_threads_create(2, NULL);
    ck_assert_ptr_nonnull(tp);
    /* dilated, reflect, stride 2 */
    rt_conv_geom a = geom(2, 8, 9, 3, 0, 0, 3, 3, 2, 2, RT_PAD_REFLECT, 0, 2, 1);
    gradcheck(&a, 2, tp, "dilated reflect");
    /* grouped, circular, flipped, dilated */
    rt_conv_geom b = geom(4, 7, 7, 6, 7, 7, 3, 3, 1, 2, RT_PAD_CIRCULAR, 1, 2, 2);
    gradcheck(&b, 2, NULL, "grouped circular flip");
    /* depthwise with a multiplier, replicate, stride 2, dilation 2 */
    rt_conv_geom c = geom(3, 9, 9, 6, 0, 0, 3, 3, 2, 2, RT_PAD_REPLICATE, 0, 2, 3);
    gradcheck(&c, 3, tp, "depthwise replicate");
    rt_threads_destroy(tp);
}
END_TEST

/* ------------------------------------------------------------------ validation */

static void rejected(rt_conv_geom g, const char *why)
{
    char err[RT_ERRLEN];
    ck_assert_int_eq(rt_conv_geom_check(&g, err), -1);
    ck_assert_msg(strstr(err, why) != NULL, "message \"%s\" lacks \"%s\"", err, why);
}

START_TEST(geometry_rejected)
{
    rt_conv_geom ok = {.c = 4, .h = 5, .w = 5, .oc = 6, .oh = 1, .ow = 1, .kh = 3, .kw = 3,
                       .sh = 1, .sw = 1, .pad = RT_PAD_ZERO, .dh = 2, .dw = 2, .groups = 2};
    ck_assert_int_eq(rt_conv_geom_check(&ok, NULL), 0); /* extent 5 on 5: one window */
    rt_conv_geom g = ok;
    g.groups = 3; /* divides oc = 6, not c = 4 */
    rejected(g, "groups must divide");
    g = ok, g.c = 6, g.oc = 4, g.groups = 3; /* divides c, not oc */
    rejected(g, "groups must divide");
    g = ok, g.groups = -1;
    rejected(g, "groups must divide");
    g = ok, g.dh = -1;
    rejected(g, "dilation must be positive");
    g = ok, g.dw = -2;
    rejected(g, "dilation must be positive");
    g = ok, g.oh = 2; /* a second row of windows needs rows 1..5 of 0..4 */
    rejected(g, "outside");
    g = ok, g.dw = 3; /* extent 7 > 5 */
    rejected(g, "outside");
    g = ok, g.dh = INT_MAX; /* the extent overflows an int: still rejected, no UB */
    rejected(g, "outside");
    g = ok, g.dw = 3, g.pl = 1, g.pr = 1; /* 7 on 5 + 2 padding fits */
    ck_assert_int_eq(rt_conv_geom_check(&g, NULL), 0);
    g.pad = RT_PAD_REFLECT, g.pl = 5, g.pr = 0; /* reflect padding must stay below 5 */
    rejected(g, "reflect");
}
END_TEST

/* ------------------------------------------------------------------ determinism */

/* Runs forward and backward with pool tp into y, dx, dw, db. */
static void run(const rt_conv_geom *g, int n, const float *x, const float *w, const float *b,
                const float *dz, rt_threads *tp, float *y, float *dx, float *dw, float *db)
{
    ck_assert_int_eq(rt_conv2d_forward(g, x, w, b, RT_ACT_LEAKYRELU, 0.1f, y, n, tp), 0);
    ck_assert_int_eq(rt_conv2d_backward(g, x, w, dz, dx, 0, dw, db, n, tp), 0);
}

START_TEST(determinism)
{
    /* grouped (GEMM per group) and depthwise (direct): same bits run after run on a pool of
     * 2; pool 1 vs 2: forward and dx the same bits (each value made by one worker, the same
     * way), dw and db of the grouped path within rounding (per-worker partials), those of
     * the depthwise path the same bits (one worker per channel) */
    rt_conv_geom gs[2] = {geom(8, 14, 13, 6, 0, 0, 3, 3, 1, 2, RT_PAD_REFLECT, 1, 2, 2),
                          geom(8, 14, 13, 16, 0, 0, 3, 3, 1, 2, RT_PAD_CIRCULAR, 0, 2, 8)};
    rt_threads *tp = rt_threads_create(2, NULL), *t1 = rt_threads_create(1, NULL);
    ck_assert_ptr_nonnull(tp);
    ck_assert_ptr_nonnull(t1);
    for (int k = 0; k < 2; k++) {
        rt_conv_geom g = gs[k];
        const int n = 5;
        const size_t nx = (size_t)n * g.c * g.h * g.w, ny = (size_t)n * g.oc * g.oh * g.ow;
        const size_t nw = rt_conv2d_weight_count(&g);
        float *x = falloc(nx), *w = falloc(nw), *b = falloc(g.oc), *dz = falloc(ny);
        float *y[3], *dx[3], *dw[3], *db[3];
        for (int r = 0; r < 3; r++)
            y[r] = falloc(ny), dx[r] = falloc(nx), dw[r] = falloc(nw), db[r] = falloc(g.oc);
        for (size_t i = 0; i < nx; i++)
            x[i] = frand();
        for (size_t i = 0; i < nw; i++)
            w[i] = frand();
        for (int i = 0; i < g.oc; i++)
            b[i] = frand();
        for (size_t i = 0; i < ny; i++)
            dz[i] = frand();
        run(&g, n, x, w, b, dz, tp, y[0], dx[0], dw[0], db[0]);
        run(&g, n, x, w, b, dz, tp, y[1], dx[1], dw[1], db[1]);
        run(&g, n, x, w, b, dz, t1, y[2], dx[2], dw[2], db[2]);
        ck_assert_mem_eq(y[0], y[1], ny * sizeof(float));
        ck_assert_mem_eq(dx[0], dx[1], nx * sizeof(float));
        ck_assert_mem_eq(dw[0], dw[1], nw * sizeof(float));
        ck_assert_mem_eq(db[0], db[1], g.oc * sizeof(float));
        ck_assert_mem_eq(y[0], y[2], ny * sizeof(float));
        ck_assert_mem_eq(dx[0], dx[2], nx * sizeof(float));
        if (k == 1) {
            ck_assert_mem_eq(dw[0], dw[2], nw * sizeof(float));
            ck_assert_mem_eq(db[0], db[2], g.oc * sizeof(float));
        } else {
            for (size_t i = 0; i < nw; i++)
                CHECK(fabsf(dw[0][i] - dw[2][i]) <= 1e-4f * (1 + fabsf(dw[2][i])),
                      "dw[%zu] pool 2 %g pool 1 %g", i, dw[0][i], dw[2][i]);
            for (int i = 0; i < g.oc; i++)
                CHECK(fabsf(db[0][i] - db[2][i]) <= 1e-4f * (1 + fabsf(db[2][i])),
                      "db[%d] pool 2 %g pool 1 %g", i, db[0][i], db[2][i]);
        }
        free(x), free(w), free(b), free(dz);
        for (int r = 0; r < 3; r++)
            free(y[r]), free(dx[r]), free(dw[r]), free(db[r]);
    }
    rt_threads_destroy(tp);
    rt_threads_destroy(t1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conv_ext");
    TCase *t = tcase_create("hand");
    tcase_add_test(t, dilated_hand);
    tcase_add_test(t, grouped_hand);
    tcase_add_test(t, grouped_gemm_hand);
    tcase_add_test(t, depthwise_hand);
    tcase_add_test(t, im2col_dilated_adjoint);
    tcase_add_test(t, col2im_stride2_adjoint);
    tcase_add_test(t, geometry_rejected);
    tcase_add_test(t, zero_means_one);
    suite_add_tcase(s, t);
    t = tcase_create("reference");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, reference_random);
    tcase_add_test(t, finite_differences);
    tcase_add_test(t, determinism);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
