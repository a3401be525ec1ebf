/*
 * test_kernels.c - the kernels against numbers worked out by hand (the lecture's examples
 * and their padding, flip, pooling and multi-channel variants; the backward passes of conv,
 * pooling with ties on every path, dense, batchnorm in both modes and the elementwise layers)
 * and against naive float64 references written here; GEMM on every micro-kernel this CPU
 * has (one it lacks is reported as skipped); the lecture's translation equivariance and
 * invariance properties; loss, dropout, RNG and init.
 */
#define _GNU_SOURCE 1 /* sched_getaffinity, pthread_getaffinity_np: the pool's pinning */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cnnrt.h"
#include "rt_kernels.h"

/* ck_assert writes a record for every check that passes (fork mode): checks inside loops over
 * many values go through CHECK, which reports only a failure. */
#define CHECK(cond, ...)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

/* The lecture's 3x3 input and 2x2 kernel. */
static const float X3[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
static const float K2[4] = {0, 1, 2, 3};

static void expect(const float *got, const float *want, int n, float tol, const char *what)
{
    for (int i = 0; i < n; i++)
        CHECK(fabsf(got[i] - want[i]) <= tol, "%s: element %d is %.7g, expected %.7g",
                      what, i, got[i], want[i]);
}

static rt_conv_geom geom(int c, int h, int w, int oc, int oh, int ow, int kh, int kw, int sh,
                         int sw, int pt, int pb, int pl, int pr, rt_padmode pad, int flip)
{
    rt_conv_geom g = {c, h, w, oc, oh, ow, kh, kw, sh, sw, pt, pb, pl, pr, pad, flip, 1, 1, 1};
    ck_assert_int_eq(rt_conv_geom_check(&g, NULL), 0);
    return g;
}

/* Runs the lecture's single-channel conv with both a serial and a 2-thread pool. */
static void lecture_conv(const rt_conv_geom *g, const float *want, const char *what)
{
    float y[64];
    rt_threads *tp = rt_threads_create(2, NULL);
    ck_assert_ptr_nonnull(tp);
    int n = g->oh * g->ow;
    ck_assert_int_eq(rt_conv2d_forward(g, X3, K2, NULL, RT_ACT_NONE, 0, y, 1, NULL), 0);
    expect(y, want, n, 0.0f, what);
    memset(y, 0, sizeof y);
    ck_assert_int_eq(rt_conv2d_forward(g, X3, K2, NULL, RT_ACT_NONE, 0, y, 1, tp), 0);
    expect(y, want, n, 0.0f, what);
    rt_threads_destroy(tp);
}

START_TEST(conv_lecture_valid)
{
    /* 0*0+1*1+3*2+4*3 = 19, 1*1+2*2... as on the slide */
    static const float want[4] = {19, 25, 37, 43};
    rt_conv_geom g = geom(1, 3, 3, 1, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 0);
    lecture_conv(&g, want, "valid");
}
END_TEST

START_TEST(conv_lecture_zero_pad)
{
    static const float want[16] = {0, 3, 8, 4, 9, 19, 25, 10, 21, 37, 43, 16, 6, 7, 8, 0};
    rt_conv_geom g = geom(1, 3, 3, 1, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, RT_PAD_ZERO, 0);
    lecture_conv(&g, want, "zero padding");
}
END_TEST

START_TEST(conv_lecture_stride)
{
    /* stride 3 down, 2 across: rows 0 and 3, columns 0 and 2 of the padded result */
    static const float want[4] = {0, 8, 6, 8};
    rt_conv_geom g = geom(1, 3, 3, 1, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, RT_PAD_ZERO, 0);
    lecture_conv(&g, want, "stride 3x2");
}
END_TEST

START_TEST(conv_lecture_reflect)
{
    /* Reflect pad 1 (index -1 -> 1, 3 -> 1), padded image:
     *   4 3 4 5 4 / 1 0 1 2 1 / 4 3 4 5 4 / 7 6 7 8 7 / 4 3 4 5 4
     * y[i][j] = P[i][j+1] + 2 P[i+1][j] + 3 P[i+1][j+1]:
     *   row 0: 3+2+0=5, 4+0+3=7, 5+2+6=13, 4+4+3=11
     *   row 1: 0+8+9=17, 1+6+12=19, 2+8+15=25, 1+10+12=23
     *   row 2: 3+14+18=35, 4+12+21=37, 5+14+24=43, 4+16+21=41
     *   row 3: 6+8+9=23, 7+6+12=25, 8+8+15=31, 7+10+12=29 */
    static const float want[16] = {5, 7, 13, 11, 17, 19, 25, 23, 35, 37, 43, 41, 23, 25, 31, 29};
    rt_conv_geom g = geom(1, 3, 3, 1, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, RT_PAD_REFLECT, 0);
    lecture_conv(&g, want, "reflect");
}
END_TEST

START_TEST(conv_lecture_replicate)
{
    /* Replicate pad 1: 0 0 1 2 2 / 0 0 1 2 2 / 3 3 4 5 5 / 6 6 7 8 8 / 6 6 7 8 8
     *   row 0: 0+0+0=0, 1+0+3=4, 2+2+6=10, 2+4+6=12
     *   row 1: 0+6+9=15, 19, 25, 2+10+15=27
     *   row 2: 3+12+18=33, 37, 43, 5+16+24=45
     *   row 3: 6+12+18=36, 7+12+21=40, 8+14+24=46, 8+16+24=48 */
    static const float want[16] = {0, 4, 10, 12, 15, 19, 25, 27, 33, 37, 43, 45, 36, 40, 46, 48};
    rt_conv_geom g = geom(1, 3, 3, 1, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, RT_PAD_REPLICATE, 0);
    lecture_conv(&g, want, "replicate");
}
END_TEST

START_TEST(conv_lecture_circular)
{
    /* Circular pad 1 (-1 -> 2, 3 -> 0): 8 6 7 8 6 / 2 0 1 2 0 / 5 3 4 5 3 / 8 6 7 8 6 / 2 0 1 2 0
     *   row 0: 6+4+0=10, 7+0+3=10, 8+2+6=16, 6+4+0=10
     *   row 1: 0+10+9=19, 19, 25, 0+10+9=19
     *   row 2: 3+16+18=37, 37, 43, 3+16+18=37
     *   row 3: 6+4+0=10, 7+0+3=10, 8+2+6=16, 6+4+0=10  (= row 0: the image wraps) */
    static const float want[16] = {10, 10, 16, 10, 19, 19, 25, 19, 37, 37, 43, 37, 10, 10, 16, 10};
    rt_conv_geom g = geom(1, 3, 3, 1, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, RT_PAD_CIRCULAR, 0);
    lecture_conv(&g, want, "circular");
}
END_TEST

START_TEST(conv_lecture_flip)
{
    /* True convolution: the kernel rotated 180 degrees is [[3,2],[1,0]].
     *   valid: 0*3+1*2+3*1=5, 1*3+2*2+4=11, 3*3+4*2+6=23, 4*3+5*2+7=29
     * With zero padding 1 it is the full convolution sum_ab X[a][b] K[i-a][j-b]:
     *   row 0: 0, 0, X01 K10... = 1, X02 K01 = 2
     *   row 1: 0, X00K11+X01K10+X10K01+X11K00 = 0+2+3+0 = 5, 3+4+4 = 11, 3*2+5 = 11
     *   row 2: 3*2 = 6, 9+8+6 = 23, 12+10+7 = 29, 15+8 = 23
     *   row 3: 6*2 = 12, 18+14 = 32, 21+16 = 37, 8*3 = 24 */
    static const float valid[4] = {5, 11, 23, 29};
    static const float full[16] = {0, 0, 1, 2, 0, 5, 11, 11, 6, 23, 29, 23, 12, 32, 37, 24};
    rt_conv_geom g = geom(1, 3, 3, 1, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 1);
    lecture_conv(&g, valid, "flip valid");
    g = geom(1, 3, 3, 1, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, RT_PAD_ZERO, 1);
    lecture_conv(&g, full, "flip full");
}
END_TEST

START_TEST(conv_lecture_backward)
{
    /* Valid conv, dy = ones(2x2):
     *   dW[ky][kx] = sum of the 2x2 block of X at (ky,kx): 0+1+3+4=8, 1+2+4+5=12,
     *                3+4+6+7=20, 4+5+7+8=24;  db = 4
     *   dX[a][b] = sum_ij K[a-i][b-j]: K00=0, K00+K01=1, K01=1 / K00+K10=2, all=6, K01+K11=4
     *              / K10=2, K10+K11=5, K11=3 */
    static const float dy[4] = {1, 1, 1, 1};
    static const float want_dw[4] = {8, 12, 20, 24};
    static const float want_dx[9] = {0, 1, 1, 2, 6, 4, 2, 5, 3};
    float dw[4], db[1], dx[9];
    rt_conv_geom g = geom(1, 3, 3, 1, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 0);
    ck_assert_int_eq(rt_conv2d_backward(&g, X3, K2, dy, dx, 0, dw, db, 1, NULL), 0);
    expect(dw, want_dw, 4, 0, "dW");
    expect(db, (const float[]){4}, 1, 0, "db");
    expect(dx, want_dx, 9, 0, "dX");
    /* accum adds to what is there */
    for (int i = 0; i < 9; i++)
        dx[i] = 100;
    ck_assert_int_eq(rt_conv2d_backward(&g, X3, K2, dy, dx, 1, dw, db, 1, NULL), 0);
    for (int i = 0; i < 9; i++)
        CHECK(dx[i] == 100 + want_dx[i], "accum dx[%d] = %g", i, dx[i]);
}
END_TEST

/* Several images of a small map go through one GEMM (the batch folded into its columns):
 * image t is the lecture's X3 times t + 1 in each of c channels, each channel's kernel is K2,
 * so image t's valid output is c (t + 1) {19, 25, 37, 43} plus the bias, through relu; with
 * dy = ones, dW of each channel is (1 + ... + n) {8, 12, 20, 24}, db = 4n and every image's
 * dX channel is conv_lecture_backward's {0,1,1,2,6,4,2,5,3}. c = 1 takes dW by dot products,
 * c = 17 (68 patch rows) by the packed GEMM; n = 5 splits 3 + 2 over two threads. */
START_TEST(conv_batch_folded)
{
    static const float want1[4] = {19, 25, 37, 43};
    static const float want_dw1[4] = {8, 12, 20, 24};
    static const float want_dx1[9] = {0, 1, 1, 2, 6, 4, 2, 5, 3};
    enum { N = 5, CMAX = 17 };
    static float x[N * CMAX * 9], w[CMAX * 4], y[N * 4], dy[N * 4], dx[N * CMAX * 9],
        dw[CMAX * 4];
    const float bias = -20;
    rt_threads *tp = rt_threads_create(2, NULL);
    ck_assert_ptr_nonnull(tp);
    for (int c = 1; c <= CMAX; c += CMAX - 1)
        for (int pool = 0; pool < 2; pool++) {
            rt_conv_geom g = geom(c, 3, 3, 1, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 0);
            for (int t = 0; t < N; t++)
                for (int ci = 0; ci < c; ci++)
                    for (int i = 0; i < 9; i++)
                        x[(t * c + ci) * 9 + i] = X3[i] * (float)(t + 1);
            for (int ci = 0; ci < c; ci++)
                memcpy(w + ci * 4, K2, sizeof K2);
            ck_assert_int_eq(rt_conv2d_forward(&g, x, w, &bias, RT_ACT_RELU, 0, y, N,
                                               pool ? tp : NULL), 0);
            for (int t = 0; t < N; t++)
                for (int i = 0; i < 4; i++) {
                    float v = (float)c * (float)(t + 1) * want1[i] + bias;
                    v = v > 0 ? v : 0;
                    CHECK(y[t * 4 + i] == v, "c %d image %d y[%d] = %g, expected %g", c, t, i,
                          y[t * 4 + i], v);
                }
            for (int i = 0; i < N * 4; i++)
                dy[i] = 1;
            float db = 0;
            ck_assert_int_eq(rt_conv2d_backward(&g, x, w, dy, dx, 0, dw, &db, N,
                                                pool ? tp : NULL), 0);
            for (int ci = 0; ci < c; ci++)
                for (int i = 0; i < 4; i++)
                    CHECK(dw[ci * 4 + i] == 15 * want_dw1[i], "c %d dW[%d][%d] = %g", c, ci, i,
                          dw[ci * 4 + i]);
            CHECK(db == 4 * N, "c %d db = %g", c, db);
            for (int t = 0; t < N; t++)
                for (int ci = 0; ci < c; ci++)
                    expect(dx + (t * c + ci) * 9, want_dx1, 9, 0, "folded dX");
        }
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(conv_padding_gradient_flows_to_source)
{
    /* A 1x1 kernel of weight 1 with padding 1 copies the padded 5x5 image; with dy = ones
     * each source pixel receives one gradient per cell that holds its value:
     *   zero: every pixel once;
     *   reflect: rows -1 and 3 copy row 1, so row counts are 1,3,1 (columns alike): outer
     *            product [[1,3,1],[3,9,3],[1,3,1]];
     *   replicate: -1 -> 0 and 3 -> 2, counts 2,1,2: [[4,2,4],[2,1,2],[4,2,4]];
     *   circular: -1 -> 2 and 3 -> 0, counts 2,1,2 as well. */
    static const float want[4][9] = {{1, 1, 1, 1, 1, 1, 1, 1, 1},
                                     {1, 3, 1, 3, 9, 3, 1, 3, 1},
                                     {4, 2, 4, 2, 1, 2, 4, 2, 4},
                                     {4, 2, 4, 2, 1, 2, 4, 2, 4}};
    /* and the forward is the padded image itself, e.g. reflect's first row 4 3 4 5 4 */
    static const float reflect_img[25] = {4, 3, 4, 5, 4, 1, 0, 1, 2, 1, 4, 3, 4, 5, 4,
                                          7, 6, 7, 8, 7, 4, 3, 4, 5, 4};
    float ones[25], dx[9], dw[1], y[25], one = 1;
    for (int i = 0; i < 25; i++)
        ones[i] = 1;
    for (int m = 0; m < 4; m++) {
        rt_conv_geom g = geom(1, 3, 3, 1, 5, 5, 1, 1, 1, 1, 1, 1, 1, 1, (rt_padmode)m, 0);
        ck_assert_int_eq(rt_conv2d_backward(&g, X3, &one, ones, dx, 0, dw, NULL, 1, NULL), 0);
        expect(dx, want[m], 9, 0, "padding gradient");
        /* dW = sum of the padded image; its cells' counts times the pixels */
        float s = 0;
        for (int i = 0; i < 9; i++)
            s += want[m][i] * X3[i];
        ck_assert_float_eq(dw[0], s);
        if (m == RT_PAD_REFLECT) {
            ck_assert_int_eq(rt_conv2d_forward(&g, X3, &one, NULL, RT_ACT_NONE, 0, y, 1, NULL),
                             0);
            expect(y, reflect_img, 25, 0, "reflect image");
        }
    }
}
END_TEST

START_TEST(conv_multichannel_bias)
{
    /* Two input channels: X and the checkerboard C = 1 0 1 / 0 1 0 / 1 0 1; two outputs:
     *   out 0 = corr(X, [[0,1],[2,3]]) + corr(C, ones) + 10 = [[19,25],[37,43]] + 2 + 10
     *         = [[31,37],[49,55]]   (every 2x2 block of C sums to 2)
     *   out 1 = corr(X, [[1,0],[0,0]]) + corr(C, [[0,0],[0,-1]]) - 1
     *         = [[0,1],[3,4]] + [[-1,0],[0,-1]] - 1 = [[-2,0],[2,2]]
     * Image 2 is image 1 times 2: the linear parts double, the bias does not:
     *   out 0 = 2*[[21,27],[39,45]] + 10 = [[52,64],[88,100]]
     *   out 1 = 2*[[-1,1],[3,3]] - 1 = [[-3,1],[5,5]]
     * With a fused relu out 1 of image 1 becomes [[0,0],[2,2]]. */
    float x[36], y[16];
    for (int i = 0; i < 9; i++) {
        x[i] = X3[i];
        x[9 + i] = (i % 2 == 0) ? 1.0f : 0.0f;
        x[18 + i] = 2 * x[i];
        x[27 + i] = 2 * x[9 + i];
    }
    static const float w[16] = {0, 1, 2, 3, 1, 1, 1, 1, /* out 0: in 0, in 1 */
                                1, 0, 0, 0, 0, 0, 0, -1 /* out 1 */};
    static const float b[2] = {10, -1};
    static const float want[16] = {31, 37, 49, 55, -2, 0, 2, 2, 52, 64, 88, 100, -3, 1, 5, 5};
    static const float want_relu[16] = {31, 37, 49, 55, 0, 0, 2, 2,
                                        52, 64, 88, 100, 0, 1, 5, 5};
    rt_conv_geom g = geom(2, 3, 3, 2, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 0);
    rt_threads *tp = rt_threads_create(2, NULL);
    ck_assert_int_eq(rt_conv2d_forward(&g, x, w, b, RT_ACT_NONE, 0, y, 2, tp), 0);
    expect(y, want, 16, 0, "two channels");
    ck_assert_int_eq(rt_conv2d_forward(&g, x, w, b, RT_ACT_RELU, 0, y, 2, NULL), 0);
    expect(y, want_relu, 16, 0, "two channels, relu");
    rt_threads_destroy(tp);
}
END_TEST

/* ------------------------------------------------------------------ random conv vs naive */

static uint64_t lcg = 12345;
static float frand(void) /* in [-1, 1) */
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) / 8388608.0 - 1.0);
}

/* The padding rule written independently of the library, valid for pads within limits. */
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

/* Naive double conv forward and backward from the definitions. */
static void ref_conv(const rt_conv_geom *g, int n, const float *x, const float *w,
                     const float *b, const float *dz, double *y, double *dx, double *dw,
                     double *db)
{
    int K = g->c * g->kh * g->kw;
    memset(dx, 0, sizeof(double) * n * g->c * g->h * g->w);
    memset(dw, 0, sizeof(double) * g->oc * K);
    memset(db, 0, sizeof(double) * g->oc);
    for (int s = 0; s < n; s++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    size_t yi = (((size_t)s * g->oc + o) * g->oh + oy) * g->ow + ox;
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < g->c; c++)
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int iy = ref_src(oy * g->sh + ky - g->pt, g->h, g->pad);
                                int ix = ref_src(ox * g->sw + kx - g->pl, g->w, g->pad);
                                /* true convolution pairs offset (ky,kx) with the weight
                                 * rotated by 180 degrees */
                                int wy = g->flip ? g->kh - 1 - ky : ky;
                                int wx = g->flip ? g->kw - 1 - kx : kx;
                                size_t wi = (((size_t)o * g->c + c) * g->kh + wy) * g->kw + wx;
                                if (iy < 0 || ix < 0)
                                    continue;
                                size_t xi = (((size_t)s * g->c + c) * g->h + iy) * g->w + ix;
                                acc += (double)w[wi] * x[xi];
                                dw[wi] += (double)dz[yi] * x[xi];
                                dx[xi] += (double)dz[yi] * w[wi];
                            }
                    y[yi] = acc;
                    db[o] += dz[yi];
                }
}

static void conv_vs_naive(const rt_conv_geom *g, int n, rt_act act, rt_threads *tp)
{
    int K = g->c * g->kh * g->kw;
    size_t nx = (size_t)n * g->c * g->h * g->w, ny = (size_t)n * g->oc * g->oh * g->ow;
    float *x = malloc(nx * 4), *w = malloc((size_t)g->oc * K * 4), *b = malloc(g->oc * 4);
    float *y = malloc(ny * 4), *dz = malloc(ny * 4), *dx = malloc(nx * 4);
    float *dw = malloc((size_t)g->oc * K * 4), *db = malloc(g->oc * 4);
    double *ry = malloc(ny * 8), *rdx = malloc(nx * 8), *rdw = malloc((size_t)g->oc * K * 8);
    double *rdb = malloc(g->oc * 8);
    for (size_t i = 0; i < nx; i++)
        x[i] = frand();
    for (int i = 0; i < g->oc * K; i++)
        w[i] = frand();
    for (int i = 0; i < g->oc; i++)
        b[i] = frand();
    for (size_t i = 0; i < ny; i++)
        dz[i] = frand();
    ref_conv(g, n, x, w, b, dz, ry, rdx, rdw, rdb);
    for (size_t i = 0; i < ny; i++) /* the fused activation, on the reference */
        ry[i] = act == RT_ACT_RELU ? fmax(ry[i], 0)
                : act == RT_ACT_LEAKYRELU ? (ry[i] > 0 ? ry[i] : 0.1 * ry[i])
                : act == RT_ACT_TANH ? tanh(ry[i]) : ry[i];
    ck_assert_int_eq(rt_conv2d_forward(g, x, w, b, act, 0.1f, y, n, tp), 0);
    ck_assert_int_eq(rt_conv2d_backward(g, x, w, dz, dx, 0, dw, db, n, tp), 0);
    double tol = 1e-4 * (K + 1);
    for (size_t i = 0; i < ny; i++)
        CHECK(fabs(y[i] - ry[i]) < tol, "%s: y[%zu] %g vs %g (pad %d flip %d act %d)",
                      rt_gemm_isa(), i, y[i], ry[i], g->pad, g->flip, act);
    for (size_t i = 0; i < nx; i++)
        CHECK(fabs(dx[i] - rdx[i]) < tol * g->oc, "dx[%zu] %g vs %g (pad %d)", i,
                      dx[i], rdx[i], g->pad);
    double tolw = 1e-4 * (n * g->oh * g->ow + 1);
    for (int i = 0; i < g->oc * K; i++)
        CHECK(fabs(dw[i] - rdw[i]) < tolw, "dw[%d] %g vs %g", i, dw[i], rdw[i]);
    for (int i = 0; i < g->oc; i++)
        CHECK(fabs(db[i] - rdb[i]) < tolw, "db[%d] %g vs %g", i, db[i], rdb[i]);
    free(x), free(w), free(b), free(y), free(dz), free(dx), free(dw), free(db);
    free(ry), free(rdx), free(rdw), free(rdb);
}

/* Switches the GEMM to micro-kernel isa; when this CPU lacks it, says so on stdout (the
 * test log) and returns 0, or fails when CNNC_REQUIRE_ISA (e.g. "avx2 avx512") names it,
 * so a CI machine that must test an instruction set cannot skip it silently. */
static int use_isa(const char *isa, const char *test)
{
    if (rt_gemm_use_isa(isa) == 0)
        return 1;
    const char *req = getenv("CNNC_REQUIRE_ISA");
    size_t n = strlen(isa);
    for (const char *p = req; p && (p = strstr(p, isa)) != NULL; p += n)
        if ((p == req || p[-1] == ' ') && (p[n] == 0 || p[n] == ' '))
            ck_abort_msg("%s: this CPU has no %s, which CNNC_REQUIRE_ISA requires", test, isa);
    printf("test_kernels: SKIPPED %s on %s: this CPU (or build) lacks it\n", test, isa);
    fflush(stdout);
    return 0;
}

START_TEST(conv_random_geometries)
{
    /* every micro-kernel this CPU has, serial and on two threads, with and without a fused
     * activation; patch depths c*kh*kw below and above 64 (the two dW methods) */
    static const char *isas[] = {"avx512", "avx2", "generic"};
    static const rt_act acts[] = {RT_ACT_NONE, RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_TANH};
    const char *before = rt_gemm_isa();
    rt_threads *tp = rt_threads_create(2, NULL);
    /* c h w oc kh kw sh sw pt pb pl pr */
    static const int cases[][12] = {
        {1, 5, 6, 1, 3, 3, 1, 1, 1, 1, 1, 1}, {2, 7, 5, 3, 3, 2, 2, 1, 1, 0, 2, 1},
        {3, 9, 9, 4, 3, 3, 2, 2, 2, 2, 1, 2}, {2, 6, 6, 2, 1, 1, 1, 1, 0, 0, 0, 0},
        {4, 8, 7, 5, 5, 3, 1, 3, 2, 2, 0, 2}, {1, 4, 4, 3, 4, 4, 1, 1, 3, 3, 3, 3},
        {3, 20, 37, 17, 3, 3, 1, 1, 1, 1, 1, 1}, {2, 5, 5, 2, 1, 1, 2, 2, 0, 0, 0, 0},
        {8, 6, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1},   {5, 9, 8, 3, 5, 5, 2, 1, 2, 2, 2, 2},
        {70, 3, 4, 9, 1, 1, 1, 1, 0, 0, 0, 0},  {20, 11, 9, 33, 2, 2, 1, 1, 0, 1, 1, 0},
        /* two bands of 880 pixels (dW's depth above the GEMM's 256-deep blocks), and 270
         * patch rows (the forward's depth above them, so the fused bias and activation
         * follow a partial sum) */
        {8, 24, 40, 6, 3, 3, 1, 1, 1, 1, 1, 1}, {30, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1},
    };
    for (int is = 0; is < 3; is++) {
        if (!use_isa(isas[is], "conv_random_geometries"))
            continue;
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
            for (int pad = 0; pad < 4; pad++)
                for (int flip = 0; flip < 2; flip++) {
                    const int *k = cases[t];
                    rt_conv_geom g = {k[0], k[1], k[2],  k[3],  0, 0, k[4], k[5], k[6],
                                      k[7], k[8], k[9], k[10], k[11], (rt_padmode)pad, flip, 1, 1, 1};
                    g.oh = (g.h + g.pt + g.pb - g.kh) / g.sh + 1;
                    g.ow = (g.w + g.pl + g.pr - g.kw) / g.sw + 1;
                    if (rt_conv_geom_check(&g, NULL) != 0) /* reflect needs pad < size */
                        continue;
                    conv_vs_naive(&g, 3, acts[(t + pad + flip) % 4], (t + pad) % 2 ? tp : NULL);
                }
    }
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(conv_geometry_rejected)
{
    char err[RT_ERRLEN];
    rt_conv_geom g = {1, 3, 3, 1, 4, 4, 2, 2, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 0, 1, 1, 1};
    ck_assert_int_eq(rt_conv_geom_check(&g, err), -1); /* 4x4 output needs padding */
    ck_assert_ptr_nonnull(strstr(err, "outside"));
    /* output sizes round down: 5 rows, kernel 2, stride 2 give (5-2)/2+1 = 2 rows (windows at
     * rows 0 and 2); 3 rows would need a window at rows 4-5, one past the input (ceil mode,
     * which convolutions do not have); the same across with stride 3: (7-2)/3+1 = 2 */
    rt_conv_geom down = {1, 5, 7, 1, 2, 2, 2, 2, 2, 3, 0, 0, 0, 0, RT_PAD_ZERO, 0, 1, 1, 1};
    ck_assert_int_eq(rt_conv_geom_check(&down, err), 0);
    down.oh = 3;
    ck_assert_int_eq(rt_conv_geom_check(&down, err), -1);
    down.oh = 2, down.ow = 3;
    ck_assert_int_eq(rt_conv_geom_check(&down, err), -1);
    rt_conv_geom r = {1, 3, 3, 1, 5, 5, 2, 2, 1, 1, 3, 0, 3, 0, RT_PAD_REFLECT, 0, 1, 1, 1};
    ck_assert_int_eq(rt_conv_geom_check(&r, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "reflect"));
}
END_TEST

START_TEST(conv_translation_equivariance)
{
    /* Circular padding, stride 1: shifting the input one pixel down and one right (wrapping)
     * shifts the output exactly the same way. The sums run in the same order, so the
     * equality is exact. */
    const int c = 3, h = 8, w = 8, oc = 4;
    rt_conv_geom g = geom(c, h, w, oc, h, w, 3, 3, 1, 1, 1, 1, 1, 1, RT_PAD_CIRCULAR, 0);
    float x[3 * 64], xs[3 * 64], wt[4 * 27], b[4], y[4 * 64], ys[4 * 64];
    for (int i = 0; i < c * h * w; i++)
        x[i] = frand();
    for (int i = 0; i < oc * 27; i++)
        wt[i] = frand();
    for (int i = 0; i < oc; i++)
        b[i] = frand();
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                xs[(ch * h + (i + 1) % h) * w + (j + 1) % w] = x[(ch * h + i) * w + j];
    ck_assert_int_eq(rt_conv2d_forward(&g, x, wt, b, RT_ACT_NONE, 0, y, 1, NULL), 0);
    ck_assert_int_eq(rt_conv2d_forward(&g, xs, wt, b, RT_ACT_NONE, 0, ys, 1, NULL), 0);
    for (int o = 0; o < oc; o++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                CHECK(ys[(o * h + (i + 1) % h) * w + (j + 1) % w] == y[(o * h + i) * w + j],
                      "shifted output differs at %d,%d,%d", o, i, j);
    /* with zero padding the border breaks it: some value must differ */
    rt_conv_geom z = geom(c, h, w, oc, h, w, 3, 3, 1, 1, 1, 1, 1, 1, RT_PAD_ZERO, 0);
    ck_assert_int_eq(rt_conv2d_forward(&z, x, wt, b, RT_ACT_NONE, 0, y, 1, NULL), 0);
    ck_assert_int_eq(rt_conv2d_forward(&z, xs, wt, b, RT_ACT_NONE, 0, ys, 1, NULL), 0);
    int differ = 0;
    for (int o = 0; o < oc; o++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                differ |= ys[(o * h + (i + 1) % h) * w + (j + 1) % w] != y[(o * h + i) * w + j];
    ck_assert(differ);
}
END_TEST

START_TEST(global_pool_invariance)
{
    /* Global pooling ignores where things are: a circular shift leaves it unchanged. The
     * values are multiples of 1/16 so every sum is exact and the check can be exact. */
    const int c = 2, h = 5, w = 7;
    float x[70], xs[70], a[2], as[2], m[2], ms[2];
    for (int i = 0; i < c * h * w; i++)
        x[i] = (float)((int)(frand() * 64)) / 16.0f;
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                xs[(ch * h + (i + 2) % h) * w + (j + 3) % w] = x[(ch * h + i) * w + j];
    rt_globalavgpool_forward(x, a, 1, c, h * w);
    rt_globalavgpool_forward(xs, as, 1, c, h * w);
    rt_globalmaxpool_forward(x, m, 1, c, h * w);
    rt_globalmaxpool_forward(xs, ms, 1, c, h * w);
    for (int ch = 0; ch < c; ch++) {
        ck_assert_float_eq(a[ch], as[ch]);
        ck_assert_float_eq(m[ch], ms[ch]);
    }
}
END_TEST

/* ------------------------------------------------------------------ pooling by hand */

/* A 4x4 plane:  1 5 2 0 / 3 4 8 6 / 7 0 9 1 / 2 6 3 4 */
static const float P4[16] = {1, 5, 2, 0, 3, 4, 8, 6, 7, 0, 9, 1, 2, 6, 3, 4};

static rt_pool_geom pgeom(int h, int w, int oh, int ow, int k, int s, int pad)
{
    rt_pool_geom g = {1, h, w, oh, ow, k, k, s, s, pad, pad, pad, pad};
    return g;
}

START_TEST(pool_hand)
{
    float y[16], dx[16];
    rt_pool_geom g = pgeom(4, 4, 2, 2, 2, 2, 0);
    /* 2x2 stride 2: max of each block 5, 8, 7, 9; means 13/4, 16/4, 15/4, 17/4 */
    rt_maxpool_forward(&g, P4, y, 1, NULL);
    expect(y, (const float[]){5, 8, 7, 9}, 4, 0, "max 2x2");
    rt_avgpool_forward(&g, P4, y, 1, NULL);
    expect(y, (const float[]){3.25f, 4, 3.75f, 4.25f}, 4, 0, "avg 2x2");
    /* backward with dy = 1 2 3 4: max sends each to its winner (0,1) (1,2) (2,0) (2,2);
     * avg spreads dy/4 over each block */
    const float dy[4] = {1, 2, 3, 4};
    rt_maxpool_backward(&g, P4, dy, dx, 0, 1, NULL);
    expect(dx, (const float[]){0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 4, 0, 0, 0, 0, 0}, 16, 0,
           "max backward");
    rt_avgpool_backward(&g, dy, dx, 0, 1, NULL);
    expect(dx, (const float[]){.25f, .25f, .5f, .5f, .25f, .25f, .5f, .5f, .75f, .75f, 1, 1,
                               .75f, .75f, 1, 1},
           16, 0, "avg backward");

    /* 3x3 stride 1: every window holds the 9, so all gradient lands on (2,2): 1+2+3+4 */
    g = pgeom(4, 4, 2, 2, 3, 1, 0);
    rt_maxpool_forward(&g, P4, y, 1, NULL);
    expect(y, (const float[]){9, 9, 9, 9}, 4, 0, "max 3x3");
    rt_maxpool_backward(&g, P4, dy, dx, 0, 1, NULL);
    expect(dx, (const float[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0}, 16, 0,
           "max 3x3 backward");
}
END_TEST

START_TEST(pool_padding_hand)
{
    /* 2x2 stride 2 padding 1 -> 3x3; windows cover rows {-1,0}, {1,2}, {3,4}, columns alike.
     * avg (divisor always 4, padding counted as zeros):
     *   1/4, (5+2)/4, 0/4 / (3+7)/4, (4+8+0+9)/4, (6+1)/4 / 2/4, (6+3)/4, 4/4 */
    float y[9];
    rt_pool_geom g = pgeom(4, 4, 3, 3, 2, 2, 1);
    rt_avgpool_forward(&g, P4, y, 1, NULL);
    expect(y, (const float[]){.25f, 1.75f, 0, 2.5f, 5.25f, 1.75f, .5f, 2.25f, 1}, 9, 0,
           "avg padded");
    /* max on a negative plane -(P4+1) = -2 -6 -3 -1 / -4 -5 -9 -7 / -8 -1 -10 -2 / -3 -7 -4 -5:
     * padded cells never win, so border outputs are real values, not 0:
     *   -2, max(-6,-3)=-3, -1 / max(-4,-8)=-4, max(-5,-9,-1,-10)=-1, max(-7,-2)=-2 /
     *   -3, max(-7,-4)=-4, -5 */
    float neg[16];
    for (int i = 0; i < 16; i++)
        neg[i] = -(P4[i] + 1);
    rt_maxpool_forward(&g, neg, y, 1, NULL);
    expect(y, (const float[]){-2, -3, -1, -4, -1, -2, -3, -4, -5}, 9, 0, "max padded");
    /* a window overhanging the padded input (ceil-mode size): 3x3 input, 2x2 stride 2, no
     * padding, output 2x2: the last window holds one cell of the input and counts only the
     * cells inside, so avg = the cell itself */
    g = pgeom(3, 3, 2, 2, 2, 2, 0);
    rt_avgpool_forward(&g, X3, y, 1, NULL);
    /* (0+1+3+4)/4 = 2, (2+5)/2 = 3.5, (6+7)/2 = 6.5, 8/1 = 8 */
    expect(y, (const float[]){2, 3.5f, 6.5f, 8}, 4, 0, "avg overhanging");
}
END_TEST

START_TEST(pool_relu_fused_hand)
{
    /* relu outputs  0 0 2 0 / 0 0 1 3 / 4 0 0 0 / 0 1 0 0, 2x2 stride 2: the top-left and
     * bottom-right windows are all zeros, so their gradients stop at the relu; the other two
     * go to their maxima, the 3 at (1,3) and the 4 at (2,0) */
    static const float r[16] = {0, 0, 2, 0, 0, 0, 1, 3, 4, 0, 0, 0, 0, 1, 0, 0};
    const float dy[4] = {1, 2, 3, 4};
    float dx[16];
    rt_pool_geom g = pgeom(4, 4, 2, 2, 2, 2, 0);
    rt_maxpool_backward_relu(&g, r, dy, dx, 1, NULL);
    expect(dx, (const float[]){0, 0, 0, 0, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 0}, 16, 0,
           "max+relu backward 2x2");
    g = pgeom(4, 4, 2, 2, 3, 1, 0);
    rt_maxpool_backward_relu(&g, r, dy, dx, 1, NULL);
    /* window (0,0) rows 0-2 cols 0-2: max 4 at (2,0); (0,1) cols 1-3: max 3 at (1,3);
     * (1,0) rows 1-3 cols 0-2: 4 at (2,0); (1,1): 3 at (1,3) -> (2,0) gets 1+3, (1,3) 2+4 */
    expect(dx, (const float[]){0, 0, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 0}, 16, 0,
           "max+relu backward 3x3");
}
END_TEST

/* The fused kernel must equal max pooling's backward followed by the relu's, bit for bit,
 * on relu outputs with many zeros and ties, for tiled, padded, overlapping and clipped
 * windows, serially and on a pool. */
START_TEST(pool_relu_fused_equals_pair)
{
    static const int cases[][6] = {/* h, w, k, s, pad, planes: tiled 2x2 (rows of 18, 3,
                                      7, 21, 33, 32, 23, 14, 10 and 5 windows: blocks of 16,
                                      8 and 4, each tail taken as the last block, the scalar
                                      tail, a column and a row no window reaches), padded 2x2
                                      (inner and border windows), overlapping and clipped
                                      windows */
                                   {20, 36, 2, 2, 0, 3}, {9, 7, 2, 2, 0, 2}, {14, 14, 2, 2, 0, 3},
                                   {8, 42, 2, 2, 0, 2}, {6, 66, 2, 2, 0, 2}, {5, 64, 2, 2, 0, 2},
                                   {4, 47, 2, 2, 0, 3}, {7, 28, 2, 2, 0, 2}, {4, 20, 2, 2, 0, 2},
                                   {2, 10, 2, 2, 0, 2}, {21, 35, 2, 2, 1, 3},
                                   {12, 12, 3, 2, 1, 3}, {10, 10, 2, 1, 0, 3}, {13, 19, 3, 3, 1, 3}};
    static const char *const isas[] = {"avx512", "avx2", "generic"};
    const char *before = rt_gemm_isa();
    char err[RT_ERRLEN];
    rt_threads *tp = rt_threads_create(3, err);
    ck_assert_ptr_nonnull(tp);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int h = cases[t][0], w = cases[t][1], k = cases[t][2], s = cases[t][3], p = cases[t][4];
        int oh = (h - k + 2 * p + s) / s, ow = (w - k + 2 * p + s) / s, planes = cases[t][5];
        rt_pool_geom g = pgeom(h, w, oh, ow, k, s, p);
        g.c = planes;
        size_t nin = (size_t)planes * h * w, nout = (size_t)planes * oh * ow;
        float *x = malloc(nin * sizeof *x), *dy = malloc(nout * sizeof *dy);
        float *a = malloc(nin * sizeof *a), *b = malloc(nin * sizeof *b);
        for (size_t i = 0; i < nin; i++) { /* a relu's output: about half zeros, some ties */
            float v = frand();
            x[i] = v > 0.0f ? (float)(int)(v * 4.0f) * 0.25f : 0.0f;
        }
        for (size_t i = 0; i < nout; i++)
            dy[i] = frand();
        /* the forward against the window maxima worked out here (real cells only); the
         * tiled rows' tails are done as overlapping blocks */
        float *y = malloc(nout * sizeof *y);
        ck_assert_ptr_nonnull(y);
        rt_maxpool_forward(&g, x, y, 1, NULL);
        for (int q = 0; q < planes; q++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float m = -INFINITY;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy * s - p + ky, ix = ox * s - p + kx;
                            if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                m = fmaxf(m, x[((size_t)q * h + iy) * w + ix]);
                        }
                    ck_assert_msg(y[((size_t)q * oh + oy) * ow + ox] == m,
                                  "case %zu: forward at %d,%d,%d", t, q, oy, ox);
                }
        free(y);
        /* the tiled 2x2 path (which overwrites) against the general one (which adds), with
         * each instruction set's copy of it */
        float *sum = malloc(nin * sizeof *sum);
        ck_assert_ptr_nonnull(sum);
        memset(sum, 0, nin * sizeof *sum);
        rt_maxpool_backward(&g, x, dy, sum, 1, 1, NULL);
        for (int is = 0; is < 3; is++) {
            if (!use_isa(isas[is], "pool_relu_fused_equals_pair"))
                continue;
            memset(a, 0x7f, nin * sizeof *a); /* every cell must be written */
            rt_maxpool_backward(&g, x, dy, a, 0, 1, NULL);
            for (size_t i = 0; i < nin; i++)
                ck_assert_msg(a[i] == sum[i], "%s case %zu: overwrite %g vs add %g at %zu",
                              isas[is], t, a[i], sum[i], i);
            for (int pool = 0; pool < 2; pool++) {
                rt_threads *use = pool ? tp : NULL;
                rt_maxpool_backward(&g, x, dy, a, 0, 1, use);
                rt_act_backward(RT_ACT_RELU, 0.0f, x, a, a, nin, 0);
                memset(b, 0x7f, nin * sizeof *b); /* every cell must be written */
                rt_maxpool_backward_relu(&g, x, dy, b, 1, use);
                ck_assert_msg(memcmp(a, b, nin * sizeof *a) == 0,
                              "%s case %zu (%dx%d k%d s%d p%d), pool %d: fused != pair",
                              isas[is], t, h, w, k, s, p, pool);
            }
        }
        ck_assert_int_eq(rt_gemm_use_isa(before), 0);
        free(sum);
        free(x);
        free(dy);
        free(a);
        free(b);
    }
    rt_threads_destroy(tp);
}
END_TEST

START_TEST(pool_global_hand)
{
    /* channels X3 (mean 36/9 = 4, max 8 at index 8) and -X3 (mean -4, max 0 at index 0) */
    float x[18], y[2], dx[18];
    for (int i = 0; i < 9; i++) {
        x[i] = X3[i];
        x[9 + i] = -X3[i];
    }
    rt_globalavgpool_forward(x, y, 1, 2, 9);
    expect(y, (const float[]){4, -4}, 2, 0, "gap");
    rt_globalmaxpool_forward(x, y, 1, 2, 9);
    expect(y, (const float[]){8, 0}, 2, 0, "gmp");
    const float dy[2] = {9, 5};
    rt_globalavgpool_backward(dy, dx, 0, 1, 2, 9);
    for (int i = 0; i < 18; i++)
        ck_assert_float_eq(dx[i], i < 9 ? 1.0f : 5.0f / 9.0f);
    rt_globalmaxpool_backward(x, dy, dx, 0, 1, 2, 9);
    for (int i = 0; i < 18; i++)
        ck_assert_float_eq(dx[i], i == 8 ? 9.0f : i == 9 ? 5.0f : 0.0f);
}
END_TEST

/* Max pooling's gradient goes to the FIRST maximum of each window in reading order (the rule
 * rt_pool.c documents), on every path: the tiled 2x2 one (vector blocks of four windows and
 * the scalar tail), the 2x2 one that adds (accum), the relu-fused one, general windows,
 * padded and clipped windows, and global max pooling. Inputs full of ties. */
START_TEST(pool_ties_hand)
{
    /* 2x10 plane, five 2x2 windows a b / c e:
     *   w0 3 3 / 1 2 -> a (a = b)          w1 1 2 / 4 4 -> c (c = e)
     *   w2 1 5 / 5 0 -> b (b = c, top and bottom halves tie)
     *   w3 7 7 / 7 7 -> a (all equal)      w4 6 6 / 2 6 -> a (a = b = e; the scalar tail)
     * maxima 3 4 5 7 6; dy = 1..5 lands on (0,0) (1,2) (0,5) (0,6) (0,8) */
    static const float x[20] = {3, 3, 1, 2, 1, 5, 7, 7, 6, 6, /* row 0 */
                                1, 2, 4, 4, 5, 0, 7, 7, 2, 6};
    static const float want[20] = {1, 0, 0, 0, 0, 3, 4, 0, 5, 0, /* row 0 */
                                   0, 0, 2, 0, 0, 0, 0, 0, 0, 0};
    const float dy[5] = {1, 2, 3, 4, 5};
    float y[9], dx[20];
    rt_threads *tp = rt_threads_create(2, NULL);
    rt_pool_geom g = pgeom(2, 10, 1, 5, 2, 2, 0);
    rt_maxpool_forward(&g, x, y, 1, NULL);
    expect(y, (const float[]){3, 4, 5, 7, 6}, 5, 0, "max 2x2 ties");
    for (int pool = 0; pool < 2; pool++) {
        rt_threads *use = pool ? tp : NULL;
        memset(dx, 0x7f, sizeof dx); /* tiled: every cell written */
        rt_maxpool_backward(&g, x, dy, dx, 0, 1, use);
        expect(dx, want, 20, 0, "max 2x2 ties, tiled");
        memset(dx, 0, sizeof dx);
        rt_maxpool_backward(&g, x, dy, dx, 1, 1, use);
        expect(dx, want, 20, 0, "max 2x2 ties, accumulating");
        memset(dx, 0x7f, sizeof dx);
        rt_maxpool_backward_relu(&g, x, dy, dx, 1, use); /* every maximum > 0: same */
        expect(dx, want, 20, 0, "max 2x2 ties, relu fused");
    }

    /* general window 3x3 stride 1 on 0 9 0 9 / 9 0 0 0 / 0 0 9 0 / 9 0 0 9: the windows'
     * first 9s are (0,1), (0,1), (1,0), (2,2); dy 1 2 3 4 -> dx[1] = 3, dx[4] = 3, dx[10] = 4 */
    static const float x9[16] = {0, 9, 0, 9, 9, 0, 0, 0, 0, 0, 9, 0, 9, 0, 0, 9};
    g = pgeom(4, 4, 2, 2, 3, 1, 0);
    rt_maxpool_forward(&g, x9, y, 1, NULL);
    expect(y, (const float[]){9, 9, 9, 9}, 4, 0, "max 3x3 ties");
    rt_maxpool_backward(&g, x9, dy, dx, 0, 1, NULL);
    expect(dx, (const float[]){0, 3, 0, 0, 3, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0}, 16, 0,
           "max 3x3 ties backward");

    /* padded: 2x2 stride 2 padding 1 over a 4x4 plane of -1 (all tie; padding never wins,
     * so every output is -1, not 0). The windows' real cells start at (0,0), (0,1), (0,3) /
     * (1,0), (1,1) [an inner window], (1,3) / (3,0), (3,1), (3,3): dy = 1..9 lands there */
    float m1[16];
    for (int i = 0; i < 16; i++)
        m1[i] = -1;
    g = pgeom(4, 4, 3, 3, 2, 2, 1);
    rt_maxpool_forward(&g, m1, y, 1, NULL);
    expect(y, (const float[]){-1, -1, -1, -1, -1, -1, -1, -1, -1}, 9, 0, "max padded ties");
    rt_maxpool_backward(&g, m1, (const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9}, dx, 0, 1, tp);
    expect(dx, (const float[]){1, 2, 0, 3, 4, 5, 0, 6, 0, 0, 0, 0, 7, 8, 0, 9}, 16, 0,
           "max padded ties backward");

    /* global: 2 5 1 5 5 -> 5, the gradient to index 1 */
    const float gx[5] = {2, 5, 1, 5, 5};
    float gy, gdx[5];
    rt_globalmaxpool_forward(gx, &gy, 1, 1, 5);
    ck_assert_float_eq(gy, 5);
    rt_globalmaxpool_backward(gx, (const float[]){3}, gdx, 0, 1, 1, 5);
    expect(gdx, (const float[]){0, 3, 0, 0, 0}, 5, 0, "global max ties backward");
    rt_threads_destroy(tp);
}
END_TEST

/* ------------------------------------------------------------------ GEMM */

static void gemm_case(int ta, int tb, int m, int n, int k, float alpha, float beta)
{
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    float *a = malloc(sizeof(float) * (ta ? k : m) * lda);
    float *b = malloc(sizeof(float) * (tb ? n : k) * ldb);
    float *c = malloc(sizeof(float) * m * ldc);
    for (int i = 0; i < (ta ? k : m) * lda; i++)
        a[i] = frand();
    for (int i = 0; i < (tb ? n : k) * ldb; i++)
        b[i] = frand();
    for (int i = 0; i < m * ldc; i++)
        c[i] = frand();
    double *want = malloc(sizeof(double) * m * ldc);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            if (j >= n) { /* the gap between rows must not be touched */
                want[i * ldc + j] = c[i * ldc + j];
                continue;
            }
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                     (tb ? b[j * ldb + p] : b[p * ldb + j]);
            want[i * ldc + j] = alpha * s + (beta == 0 ? 0.0 : beta * c[i * ldc + j]);
        }
    ck_assert_int_eq(rt_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), 0);
    for (int i = 0; i < m * ldc; i++)
        CHECK(fabs(c[i] - want[i]) <= 1e-5 * (k + 1), "%s ta%d tb%d %dx%dx%d: c[%d] "
                      "%g vs %g", rt_gemm_isa(), ta, tb, m, n, k, i, c[i], want[i]);
    free(a), free(b), free(c), free(want);
}

START_TEST(gemm_all_isas)
{
    static const char *isas[] = {"avx512", "avx2", "generic"};
    static const int sizes[][3] = {{1, 1, 1}, {7, 9, 5},    {8, 32, 3},   {13, 47, 300},
                                   {6, 16, 1}, {97, 33, 513}, {130, 70, 20}, {3, 2100, 7}};
    const char *before = rt_gemm_isa();
    int tested = 0;
    for (int i = 0; i < 3; i++) {
        if (!use_isa(isas[i], "gemm_all_isas"))
            continue;
        tested++;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int t = 0; t < 4; t++)
                gemm_case(t & 1, t >> 1, sizes[s][0], sizes[s][1], sizes[s][2],
                          s % 2 ? 1.0f : -0.5f, (float[]){0, 1, 0.25f}[s % 3]);
    }
    ck_assert_int_ge(tested, 1);
    ck_assert_int_eq(rt_gemm_use_isa("generic"), 0); /* always there */
    ck_assert_int_eq(rt_gemm_use_isa("no-such-unit"), -1);
    ck_assert_int_eq(rt_gemm_use_isa(before), 0);
}
END_TEST

START_TEST(gemm_threads_identical)
{
    /* the parallel GEMM splits columns only: each element is summed in the same order */
    const int m = 37, n = 301, k = 259;
    float *a = malloc(4 * m * k), *b = malloc(4 * k * n), *c1 = malloc(4 * m * n),
          *c2 = malloc(4 * m * n);
    for (int i = 0; i < m * k; i++)
        a[i] = frand();
    for (int i = 0; i < k * n; i++)
        b[i] = frand();
    rt_threads *tp = rt_threads_create(2, NULL);
    ck_assert_int_eq(rt_threads_count(tp), 2);
    ck_assert_int_eq(rt_sgemm_mt(NULL, 0, 0, m, n, k, 1, a, k, b, n, 0, c1, n), 0);
    ck_assert_int_eq(rt_sgemm_mt(tp, 0, 0, m, n, k, 1, a, k, b, n, 0, c2, n), 0);
    ck_assert_int_eq(memcmp(c1, c2, 4 * m * n), 0);
    rt_threads_destroy(tp);
    free(a), free(b), free(c1), free(c2);
}
END_TEST

/* ------------------------------------------------------------------ dense, batchnorm */

START_TEST(dense_hand)
{
    /* x = [1 2 3], W = [[1 0 -1], [2 1 0]], b = [0.5, -1]:
     *   y0 = 1 - 3 + 0.5 = -1.5, y1 = 2 + 2 - 1 = 3; relu: 0, 3
     * backward of dz = [1, 2]: dx = dz W = [1+4, 0+2, -1+0] = [5, 2, -1],
     *   dW = dz^T x = [[1 2 3], [2 4 6]], db = [1, 2] */
    const float x[3] = {1, 2, 3}, w[6] = {1, 0, -1, 2, 1, 0}, b[2] = {0.5f, -1};
    float y[2], dx[3], dw[6], db[2];
    ck_assert_int_eq(rt_dense_forward(x, w, b, RT_ACT_NONE, 0, y, 1, 3, 2, NULL), 0);
    expect(y, (const float[]){-1.5f, 3}, 2, 0, "dense");
    ck_assert_int_eq(rt_dense_forward(x, w, b, RT_ACT_RELU, 0, y, 1, 3, 2, NULL), 0);
    expect(y, (const float[]){0, 3}, 2, 0, "dense relu");
    ck_assert_int_eq(rt_dense_backward(x, w, (const float[]){1, 2}, dx, 0, dw, db, 1, 3, 2,
                                       NULL), 0);
    expect(dx, (const float[]){5, 2, -1}, 3, 0, "dense dx");
    expect(dw, (const float[]){1, 2, 3, 2, 4, 6}, 6, 0, "dense dw");
    expect(db, (const float[]){1, 2}, 2, 0, "dense db");
}
END_TEST

START_TEST(batchnorm_hand)
{
    /* one channel, n = 2 images of 2 values: 1 2 | 3 4. mean 2.5, biased var
     * (2.25+0.25+0.25+2.25)/4 = 1.25, unbiased 1.25*4/3 = 5/3. gamma 2, beta 1:
     * y = 2 (x - 2.5) / sqrt(1.25 + eps) + 1. Running stats (momentum 0.1) from 0 and 1:
     * mean 0.25, var 0.9 + 0.1*5/3 = 1.0666667. */
    const float x[4] = {1, 2, 3, 4}, gamma = 2, beta = 1;
    float y[4], rm = 0, rv = 1, sm, si;
    rt_batchnorm_forward_train(x, &gamma, &beta, &rm, &rv, 0.1f, 1e-5f, y, &sm, &si, 2, 1, 2);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(y[i], 2 * (x[i] - 2.5) / sqrt(1.25 + 1e-5) + 1, 1e-5);
    ck_assert_float_eq_tol(rm, 0.25, 1e-7);
    ck_assert_float_eq_tol(rv, 0.9 + 0.1 * 5.0 / 3.0, 1e-6);
    ck_assert_float_eq_tol(sm, 2.5, 1e-7);
    /* evaluation uses the running statistics */
    rt_batchnorm_forward_eval(x, &gamma, &beta, &rm, &rv, 1e-5f, y, 2, 1, 2);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(y[i], 2 * (x[i] - 0.25) / sqrt(rv + 1e-5) + 1, 1e-5);
}
END_TEST

/* The batch's mean and variance of values far from zero (mean about 1000, spread about
 * 0.001), in two images whose means differ by 0.00125, against the float inputs' own in
 * double: the mean to a float step at 1000 (6.1e-5; summed plainly in float partial sums it
 * was 2e-4 off, and the variance 5 % high), the variance to 1e-6 (rt_batchnorm.c's
 * sum_total and dev_total; without the cross term of dev_total's move to the batch's mean
 * the error is about 2 %). */
START_TEST(batchnorm_variance_far_from_zero)
{
    enum { N = 2, HW = 1000 };
    static float x[N * HW], y[N * HW];
    double sum = 0.0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < HW; k++) {
            x[i * HW + k] = (float)(1000.0 + 0.00125 * i + 0.001 * ((k * 37) % 201 - 100) / 100.0);
            sum += x[i * HW + k];
        }
    const double mean = sum / (N * HW);
    double dev = 0.0;
    for (int i = 0; i < N * HW; i++)
        dev += ((double)x[i] - mean) * ((double)x[i] - mean);
    const double var = dev / (N * HW);
    const float gamma = 1, beta = 0;
    float rm = 0, rv = 1, sm, si;
    rt_batchnorm_forward_train(x, &gamma, &beta, &rm, &rv, 0.1f, 0.0f, y, &sm, &si, N, 1, HW);
    CHECK(fabs(sm - mean) <= 6.2e-5, "mean %.9g, not %.9g", sm, mean);
    CHECK(fabs(si * sqrt(var) - 1.0) <= 1e-6, "1/std %.9g, not %.9g (variance %.9g)", si,
          1.0 / sqrt(var), var);
}
END_TEST

/* Batchnorm backward by hand, one channel, x = 1 2 | 3 4 (two images of two values), gamma 2,
 * eps 0, dy one-hot on the 3.
 * Training: mean 2.5, biased var 1.25, s = 1/sqrt(1.25) = 2/sqrt(5) = 0.89442719,
 *   xhat = (x - 2.5) s. dbeta = sum dy = 1; dgamma = sum dy xhat = 0.5 s = 0.44721360.
 *   dx = gamma s (dy - mean(dy) - xhat mean(dy xhat)), mean(dy) = 1/4,
 *   mean(dy xhat) = 0.5 s / 4, so xhat mean(dy xhat) = (x - 2.5) s^2 / 8 = (x - 2.5) / 10:
 *   dx = 2s (0 - .25 + .15, 0 - .25 + .05, 1 - .25 - .05, 0 - .25 - .15)
 *      = 2s (-0.1, -0.2, 0.7, -0.4) = -0.17888544 -0.35777088 1.25219807 -0.71554175
 * Evaluation with running mean 2, running var 16: invstd 1/4, dx = gamma dy / 4 = 0 0 .5 0,
 *   dgamma = sum dy (x - 2) / 4 = 1/4, dbeta = 1. */
/* The residual add with its relu in one pass: sums 1.5, -1.5, -1, 1 give 1.5, 0, 0, 1; the
 * backward passes dy where the output is positive, overwriting da and adding to db. */
START_TEST(add_act_hand)
{
    const float a[4] = {1, -2, 3, -4}, b[4] = {0.5f, 0.5f, -4, 5}, dy[4] = {1, 2, 3, 4};
    float y[4], da[4] = {7, 7, 7, 7}, db[4] = {10, 10, 10, 10};
    rt_add_act_forward_mt(a, b, RT_ACT_RELU, 0.0f, y, 4, NULL);
    const float ey[4] = {1.5f, 0, 0, 1}, eda[4] = {1, 0, 0, 4}, edb[4] = {11, 10, 10, 14};
    rt_add_act_backward_mt(RT_ACT_RELU, 0.0f, y, dy, da, 0, db, 1, 4, NULL);
    for (int k = 0; k < 4; k++) {
        ck_assert_float_eq(y[k], ey[k]);
        ck_assert_float_eq(da[k], eda[k]);
        ck_assert_float_eq(db[k], edb[k]);
    }
    rt_add_act_backward_mt(RT_ACT_RELU, 0.0f, y, dy, NULL, 0, db, 0, 4, NULL); /* da skipped */
    ck_assert_float_eq(db[0], 1.0f);
    ck_assert_float_eq(db[1], 0.0f);
}
END_TEST

/* Folding: per channel a = gamma / sqrt(var + eps); w a and (bias - mean) a + beta. Channel
 * 0: gamma 2, var 3, eps 1 -> a = 1; channel 1: gamma 0.5, var 0 -> a = 0.5. */
START_TEST(batchnorm_fold_hand)
{
    const float w[4] = {1, 2, 3, 4}, bias[2] = {1, -1}, gamma[2] = {2, 0.5f};
    const float beta[2] = {0.5f, 1}, mean[2] = {1, 2}, var[2] = {3, 0};
    float wf[4], bf[2];
    rt_batchnorm_fold(w, bias, 2, 2, gamma, beta, mean, var, 1.0f, wf, bf);
    const float ew[4] = {1, 2, 1.5f, 2}, eb[2] = {0.5f, -0.5f};
    for (int k = 0; k < 4; k++)
        ck_assert_float_eq(wf[k], ew[k]);
    for (int k = 0; k < 2; k++)
        ck_assert_float_eq(bf[k], eb[k]);
    rt_batchnorm_fold(w, NULL, 2, 2, gamma, beta, mean, var, 1.0f, wf, bf);
    ck_assert_float_eq(bf[0], -0.5f); /* (0 - 1) 1 + 0.5 */
    ck_assert_float_eq(bf[1], 0.0f);  /* (0 - 2) 0.5 + 1 */
}
END_TEST

START_TEST(batchnorm_backward_hand)
{
    const float x[4] = {1, 2, 3, 4}, dy[4] = {0, 0, 1, 0}, gamma = 2, beta = 1;
    float y[4], dx[4], rm = 0, rv = 1, sm, si, dg, db;
    rt_batchnorm_forward_train(x, &gamma, &beta, &rm, &rv, 0.1f, 0.0f, y, &sm, &si, 2, 1, 2);
    rt_batchnorm_backward_train(x, &gamma, &sm, &si, dy, dx, 0, &dg, &db, 2, 1, 2);
    expect(dx, (const float[]){-0.17888544f, -0.35777088f, 1.25219807f, -0.71554175f}, 4,
           1e-6f, "batchnorm train dx");
    ck_assert_float_eq_tol(dg, 0.44721360f, 1e-6f);
    ck_assert_float_eq_tol(db, 1.0f, 1e-7f);
    /* accumulating adds the same onto what dx held */
    for (int i = 0; i < 4; i++)
        dx[i] = 1;
    rt_batchnorm_backward_train(x, &gamma, &sm, &si, dy, dx, 1, &dg, &db, 2, 1, 2);
    expect(dx, (const float[]){0.82111456f, 0.64222912f, 2.25219807f, 0.28445825f}, 4,
           1e-6f, "batchnorm train dx accum");
    /* the same on a pool with a second channel (two copies of the first) */
    rt_threads *tp = rt_threads_create(2, NULL);
    const float x2[8] = {1, 2, 1, 2, 3, 4, 3, 4}, dy2[8] = {0, 0, 0, 0, 1, 0, 1, 0};
    const float g2[2] = {2, 2}, b2[2] = {1, 1};
    float y2[8], dx2[8], rm2[2] = {0, 0}, rv2[2] = {1, 1}, sm2[2], si2[2], dg2[2], db2[2];
    rt_batchnorm_forward_train_mt(x2, g2, b2, rm2, rv2, 0.1f, 0.0f, y2, sm2, si2, 2, 2, 2, tp);
    rt_batchnorm_backward_train_mt(x2, g2, sm2, si2, dy2, dx2, 0, dg2, db2, 2, 2, 2, tp);
    expect(dx2, (const float[]){-0.17888544f, -0.35777088f, -0.17888544f, -0.35777088f,
                                1.25219807f, -0.71554175f, 1.25219807f, -0.71554175f},
           8, 1e-6f, "batchnorm train dx, 2 channels on a pool");
    expect(dg2, (const float[]){0.44721360f, 0.44721360f}, 2, 1e-6f, "dgamma, pool");
    expect(db2, (const float[]){1, 1}, 2, 0, "dbeta, pool");
    rt_threads_destroy(tp);

    const float rme = 2, rve = 16;
    rt_batchnorm_backward_eval(x, &gamma, &rme, &rve, 0.0f, dy, dx, 0, &dg, &db, 2, 1, 2);
    expect(dx, (const float[]){0, 0, 0.5f, 0}, 4, 1e-7f, "batchnorm eval dx");
    ck_assert_float_eq_tol(dg, 0.25f, 1e-7f);
    ck_assert_float_eq_tol(db, 1.0f, 1e-7f);
}
END_TEST

/* Batchnorm splits its work over the workers in (image, channel) blocks, image-major, and
 * sums each channel's statistics per image, then over the images in order: training and
 * evaluation, forward and backward with a fused relu give the same bits on 1 to 4 workers,
 * with blocks cut inside an image's channels (5 x 3 blocks of 37 values, not a multiple of
 * the vector width). The first run's statistics are checked against float64 ones. */
START_TEST(batchnorm_same_bits_any_pool)
{
    enum { N = 5, C = 3, HW = 37, T = N * C * HW };
    static float x[T], y[5][T], dy0[T], dy[5][T], dx[5][T];
    float g[C] = {1.5f, -0.5f, 2}, b[C] = {0.25f, 0, -1}, dgb[5][2 * C], rm[5][C], rv[5][C];
    float sm[5][C], si[5][C], ye[5][T], dxe[5][T];
    unsigned r = 12345;
    for (int i = 0; i < T; i++) {
        r = r * 1103515245u + 12345u;
        x[i] = (float)((r >> 8) % 2001) / 100.0f - 7.0f;
        r = r * 1103515245u + 12345u;
        dy0[i] = (float)((r >> 8) % 2001) / 1000.0f - 1.0f;
    }
    for (int t = 1; t <= 4; t++) {
        rt_threads *tp = t > 1 ? rt_threads_create(t, NULL) : NULL;
        for (int ch = 0; ch < C; ch++)
            rm[t][ch] = 0.5f, rv[t][ch] = 2.0f;
        memcpy(dy[t], dy0, sizeof dy0);
        rt_batchnorm_act_forward_mt(1, x, g, b, rm[t], rv[t], 0.1f, 1e-5f, y[t], sm[t], si[t],
                                    RT_ACT_RELU, 0.0f, N, C, HW, tp);
        rt_batchnorm_act_backward_mt(1, x, g, sm[t], si[t], NULL, 1e-5f, y[t], RT_ACT_RELU,
                                     0.0f, dy[t], dx[t], 0, dgb[t], dgb[t] + C, N, C, HW, tp);
        rt_batchnorm_forward_eval_mt(x, g, b, rm[t], rv[t], 1e-5f, ye[t], N, C, HW, tp);
        rt_batchnorm_backward_eval_mt(x, g, rm[t], rv[t], 1e-5f, dy0, dxe[t], 0, dgb[t],
                                      dgb[t] + C, N, C, HW, tp);
        if (tp)
            rt_threads_destroy(tp);
        if (t == 1) {
            for (int ch = 0; ch < C; ch++) { /* the batch statistics, in float64 */
                double m = 0, v = 0;
                for (int s = 0; s < N; s++)
                    for (int i = 0; i < HW; i++)
                        m += x[(s * C + ch) * HW + i];
                m /= N * HW;
                for (int s = 0; s < N; s++)
                    for (int i = 0; i < HW; i++)
                        v += (x[(s * C + ch) * HW + i] - m) * (x[(s * C + ch) * HW + i] - m);
                v /= N * HW;
                ck_assert_float_eq_tol(sm[1][ch], (float)m, 1e-5f);
                ck_assert_float_eq_tol(si[1][ch], (float)(1.0 / sqrt(v + 1e-5)), 1e-6f);
            }
            continue;
        }
        ck_assert_msg(memcmp(y[t], y[1], sizeof y[1]) == 0, "train y, %d workers", t);
        ck_assert_msg(memcmp(dy[t], dy[1], sizeof dy[1]) == 0, "relu'd dy, %d workers", t);
        ck_assert_msg(memcmp(dx[t], dx[1], sizeof dx[1]) == 0, "train dx, %d workers", t);
        ck_assert_msg(memcmp(ye[t], ye[1], sizeof ye[1]) == 0, "eval y, %d workers", t);
        ck_assert_msg(memcmp(dxe[t], dxe[1], sizeof dxe[1]) == 0, "eval dx, %d workers", t);
        ck_assert_msg(memcmp(dgb[t], dgb[1], sizeof dgb[1]) == 0, "dgamma, %d workers", t);
        ck_assert_msg(memcmp(rm[t], rm[1], sizeof rm[1]) == 0 &&
                          memcmp(rv[t], rv[1], sizeof rv[1]) == 0,
                      "running statistics, %d workers", t);
    }
}
END_TEST

/* Out of memory, batchnorm returns -1 and writes nothing (it used to abort the program): the
 * test's own process (Check forks one per test) gets an address-space limit that leaves room
 * for x and y but not for the per-image sums, 4 times the size of x. Not under
 * AddressSanitizer, whose shadow memory needs more address space than any such limit. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_UNDER_ASAN 1
#endif
#endif
START_TEST(batchnorm_out_of_memory)
{
#ifdef TEST_UNDER_ASAN
    printf("test_kernels: SKIPPED batchnorm_out_of_memory under AddressSanitizer (an address-"
           "space limit cannot be set); the plain build runs it\n");
    fflush(stdout);
#else
    enum { N = 1 << 24 }; /* images of one channel of one pixel: the sums take 16 N bytes */
    float *x = calloc(N, sizeof *x), *y = malloc(N * sizeof *y), *dx = malloc(N * sizeof *dx);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_nonnull(dx);
    y[0] = y[N - 1] = dx[0] = dx[N - 1] = 7.0f;
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld", &pages), 1);
    fclose(f);
    struct rlimit was, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &was), 0);
    lim = was; /* the soft limit only, put back at the end (CK_FORK=no runs in one process) */
    lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + 96u * 1024 * 1024;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    float g = 1, b = 0, rm = 0.5f, rv = 2, sm = 7, si = 7, dg = 7, db = 7;
    ck_assert_int_eq(
        rt_batchnorm_forward_train(x, &g, &b, &rm, &rv, 0.1f, 1e-5f, y, &sm, &si, N, 1, 1), -1);
    ck_assert_int_eq(rt_batchnorm_forward_eval(x, &g, &b, &rm, &rv, 1e-5f, y, N, 1, 1), -1);
    ck_assert_int_eq(rt_batchnorm_act_forward_mt(1, x, &g, &b, &rm, &rv, 0.1f, 1e-5f, y, &sm,
                                                 &si, RT_ACT_RELU, 0.0f, N, 1, 1, NULL),
                     -1);
    ck_assert_int_eq(
        rt_batchnorm_backward_train(x, &g, &sm, &si, x, dx, 0, &dg, &db, N, 1, 1), -1);
    ck_assert_int_eq(
        rt_batchnorm_backward_eval(x, &g, &rm, &rv, 1e-5f, x, dx, 0, &dg, &db, N, 1, 1), -1);
    ck_assert_msg(y[0] == 7.0f && y[N - 1] == 7.0f && dx[0] == 7.0f && dx[N - 1] == 7.0f,
                  "an output was written");
    ck_assert_msg(rm == 0.5f && rv == 2.0f && sm == 7.0f && si == 7.0f && dg == 7.0f &&
                      db == 7.0f,
                  "a statistic or gradient was written");
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &was), 0);
    free(x), free(y), free(dx);
#endif
}
END_TEST

/* The elementwise backward passes by hand: relu, sigmoid, tanh, dropout, and the plain
 * pass-through of flatten and residual adds. */
START_TEST(elementwise_backward_hand)
{
    const float dy[4] = {1, 2, 3, 4};
    float dx[4];
    /* relu from its outputs 0 0 0 1.5: only the last passes */
    rt_act_backward(RT_ACT_RELU, 0, (const float[]){0, 0, 0, 1.5f}, dy, dx, 4, 0);
    expect(dx, (const float[]){0, 0, 0, 4}, 4, 0, "relu'");
    /* sigmoid at 0 and ln 3: y = 1/2 and 3/4, y (1 - y) = 1/4 and 3/16;
     * tanh at 0 and ln 2: y = 0 and 3/5, 1 - y^2 = 1 and 16/25 */
    float x[2] = {0, (float)log(3.0)}, y[2];
    rt_act_forward(RT_ACT_SIGMOID, 0, x, y, 2);
    rt_act_backward(RT_ACT_SIGMOID, 0, y, dy, dx, 2, 0);
    expect(dx, (const float[]){0.25f, 2 * 0.1875f}, 2, 1e-6f, "sigmoid'");
    x[1] = (float)log(2.0);
    rt_act_forward(RT_ACT_TANH, 0, x, y, 2);
    rt_act_backward(RT_ACT_TANH, 0, y, dy, dx, 2, 0);
    expect(dx, (const float[]){1, 2 * 0.64f}, 2, 1e-6f, "tanh'");
    /* dropout with mask 0 2 2 0 (p = 1/2): dx = dy mask, and accumulating adds it */
    const float mask[4] = {0, 2, 2, 0};
    rt_dropout_backward(dy, mask, dx, 4, 0);
    expect(dx, (const float[]){0, 4, 6, 0}, 4, 0, "dropout'");
    rt_dropout_backward(dy, mask, dx, 4, 1);
    expect(dx, (const float[]){0, 8, 12, 0}, 4, 0, "dropout' accum");
    rt_grad_pass(dy, dx, 4, 1);
    expect(dx, (const float[]){1, 10, 15, 4}, 4, 0, "pass accum");
    rt_grad_pass(dy, dx, 4, 0);
    expect(dx, dy, 4, 0, "pass");
}
END_TEST

START_TEST(activations_hand)
{
    const float x[4] = {-2, -0.5f, 0, 1.5f};
    float y[4], dx[4];
    rt_act_forward(RT_ACT_RELU, 0, x, y, 4);
    expect(y, (const float[]){0, 0, 0, 1.5f}, 4, 0, "relu");
    rt_act_forward(RT_ACT_LEAKYRELU, 0.1f, x, y, 4);
    expect(y, (const float[]){-0.2f, -0.05f, 0, 1.5f}, 4, 1e-7f, "leaky");
    rt_act_backward(RT_ACT_LEAKYRELU, 0.1f, y, (const float[]){1, 1, 1, 1}, dx, 4, 0);
    expect(dx, (const float[]){0.1f, 0.1f, 0.1f, 1}, 4, 0, "leaky'");
    rt_act_forward(RT_ACT_SIGMOID, 0, x, y, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(y[i], 1 / (1 + exp(-x[i])), 1e-7);
    ck_assert_float_eq(y[2], 0.5f);
    rt_act_forward(RT_ACT_TANH, 0, x, y, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(y[i], tanh(x[i]), 1e-7);
    /* a large negative input must not give NaN */
    float big = -1000, s;
    rt_act_forward(RT_ACT_SIGMOID, 0, &big, &s, 1);
    ck_assert_float_eq(s, 0.0f);
}
END_TEST

/* ------------------------------------------------------------------ loss, dropout, rng */

START_TEST(softmax_xent_hand)
{
    /* [0 0], label 0: loss ln 2, softmax 1/2 1/2, d = (p - onehot)/1 = -1/2, 1/2.
     * [1 2 3], label 2: loss = ln(e + e^2 + e^3) - 3. Huge logits must not overflow:
     * [1000 0], label 1: loss 1000, probabilities 1 and 0. */
    const float l1[2] = {0, 0};
    const int y1 = 0;
    float p[4], d[4];
    int c = -1;
    double loss = rt_softmax_xent(l1, &y1, 1, 2, p, d, &c);
    ck_assert_double_eq_tol(loss, log(2.0), 1e-12);
    expect(p, (const float[]){.5f, .5f}, 2, 0, "p");
    expect(d, (const float[]){-.5f, .5f}, 2, 0, "d");
    ck_assert_int_eq(c, 1); /* ties go to the first maximum */

    const float l2[3] = {1, 2, 3};
    const int y2 = 2;
    loss = rt_softmax_xent(l2, &y2, 1, 3, NULL, NULL, &c);
    ck_assert_double_eq_tol(loss, log(exp(1) + exp(2) + exp(3)) - 3, 1e-12);
    ck_assert_int_eq(c, 1);

    /* a batch of two: the mean, and the gradient divided by n = 2 */
    const float l3[4] = {1000, 0, 1, 2};
    const int y3[2] = {1, 0};
    loss = rt_softmax_xent(l3, y3, 2, 2, p, d, &c);
    ck_assert_double_eq_tol(loss, (1000 + (log(exp(1) + exp(2)) - 1)) / 2, 1e-9);
    ck_assert_int_eq(c, 0);
    ck_assert_float_eq_tol(d[0], 0.5, 1e-7);  /* (1 - 0)/2 */
    ck_assert_float_eq_tol(d[1], -0.5, 1e-7); /* (0 - 1)/2 */
    ck_assert_float_eq_tol(d[2], (exp(1) / (exp(1) + exp(2)) - 1) / 2, 1e-7);

    const int bad = 5;
    ck_assert(isnan(rt_softmax_xent(l1, &bad, 1, 2, NULL, NULL, NULL)));
}
END_TEST

START_TEST(dropout_mask)
{
    enum { N = 100000 };
    float *m = malloc(N * 4), *m2 = malloc(N * 4);
    rt_rng r;
    rt_rng_seed(&r, 42);
    rt_dropout_mask(m, N, 0.5f, &r);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        CHECK(m[i] == 0.0f || m[i] == 2.0f, "mask %g", m[i]); /* kept values scaled 1/(1-p) */
        kept += m[i] != 0;
    }
    ck_assert_int_gt(kept, N / 2 - 1000); /* 0.5 +- 6.3 sigma */
    ck_assert_int_lt(kept, N / 2 + 1000);
    rt_rng_seed(&r, 42);
    rt_dropout_mask(m2, N, 0.5f, &r);
    ck_assert_int_eq(memcmp(m, m2, N * 4), 0); /* a seed fixes the mask */
    rt_dropout_mask(m, 1000, 0.0f, &r);
    for (int i = 0; i < 1000; i++)
        CHECK(m[i] == 1.0f, "p = 0 dropped %d", i);
    rt_dropout_mask(m, 1000, 1.0f, &r);
    for (int i = 0; i < 1000; i++)
        CHECK(m[i] == 0.0f, "p = 1 kept %d", i);
    rt_dropout_mask(m, N, 0.2f, &r);
    kept = 0;
    for (int i = 0; i < N; i++) {
        CHECK(m[i] == 0.0f || m[i] == 1.25f, "mask %g", m[i]); /* 1 / (1 - 0.2) */
        kept += m[i] != 0;
    }
    ck_assert_int_gt(kept, 80000 - 1000);
    ck_assert_int_lt(kept, 80000 + 1000);
    free(m), free(m2);
}
END_TEST

START_TEST(rng_reference)
{
    /* splitmix64 from seed 0 gives the published sequence e220a8397b1dcdaf,
     * 6e789e6aa1b965f4, 06c45d188009454f, f88bb8a8724c81ec; xoshiro256**'s first output is
     * rotl(s1 * 5, 7) * 9 = 99ec5f36cb75f2b4 (worked out with a separate Python script). */
    rt_rng r;
    rt_rng_seed(&r, 0);
    ck_assert_uint_eq(r.s[0], 0xe220a8397b1dcdafULL);
    ck_assert_uint_eq(r.s[1], 0x6e789e6aa1b965f4ULL);
    ck_assert_uint_eq(r.s[2], 0x06c45d188009454fULL);
    ck_assert_uint_eq(r.s[3], 0xf88bb8a8724c81ecULL);
    ck_assert_uint_eq(rt_rng_next(&r), 0x99ec5f36cb75f2b4ULL);
    /* uniform draws lie in [0, 1) with mean about 1/2 */
    double sum = 0;
    rt_rng_seed(&r, 7);
    for (int i = 0; i < 100000; i++) {
        float u = rt_rng_uniform(&r);
        CHECK(u >= 0.0f && u < 1.0f, "uniform draw %g", u);
        sum += u;
    }
    ck_assert_double_eq_tol(sum / 100000, 0.5, 0.005);
    rt_rng a, b;
    rt_rng_seed(&a, 1);
    rt_rng_seed(&b, 2);
    ck_assert_uint_ne(rt_rng_next(&a), rt_rng_next(&b));
}
END_TEST

START_TEST(threads_pool)
{
    ck_assert_int_ge(rt_threads_cores(), 1);
    rt_threads *tp = rt_threads_create(0, NULL);
    ck_assert_ptr_nonnull(tp);
    ck_assert_int_eq(rt_threads_count(tp), rt_threads_cores());
    rt_threads_destroy(tp);
    ck_assert_int_eq(rt_threads_count(NULL), 1);
    int lo, hi, total = 0;
    for (int i = 0; i < 3; i++) { /* 10 = 4 + 3 + 3, contiguous */
        rt_split_range(10, 3, i, &lo, &hi);
        ck_assert_int_eq(lo, total);
        ck_assert_int_eq(hi - lo, i == 0 ? 4 : 3);
        total = hi;
    }
}
END_TEST

/* Every worker runs each task exactly once, and rt_threads_run returns only when all have
 * finished: with the pool watching its counters (CNNRT_SPIN_US=200), sleeping at once (0),
 * and a short watch that the pauses below outlast, so workers fall asleep between tasks and
 * the caller sleeps on a slow worker. */
typedef struct {
    int count[3];
    int slow;        /* worker 1 sleeps this many microseconds inside the task */
} pool_probe;

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

static void pool_probe_task(void *arg, rt_worker *w)
{
    pool_probe *p = arg;
    if (p->slow && rt_worker_id(w) == 1)
        pause_us(p->slow);
    p->count[rt_worker_id(w)]++;
}

START_TEST(threads_dispatch_watch_and_sleep)
{
    const char *spins[] = {"200", "0", "20"};
    for (int s = 0; s < 3; s++) {
        setenv("CNNRT_SPIN_US", spins[s], 1);
        rt_threads *tp = rt_threads_create(3, NULL);
        ck_assert_ptr_nonnull(tp);
        pool_probe p = {{0, 0, 0}, 0};
        for (int i = 1; i <= 300; i++) {
            p.slow = i % 50 == 0 ? 2000 : 0;
            if (i % 40 == 0)
                pause_us(1000); /* longer than a 20 us watch: the workers sleep */
            rt_threads_run(tp, pool_probe_task, &p);
            for (int t = 0; t < 3; t++)
                CHECK(p.count[t] == i, "spin %s: after task %d worker %d ran %d times",
                      spins[s], i, t, p.count[t]);
        }
        rt_threads_destroy(tp);
    }
    unsetenv("CNNRT_SPIN_US");
}
END_TEST

/* The pool stops watching when its threads get less CPU time than wall-clock time: here a
 * worker that sleeps inside each task stands for one that other programs keep off its core.
 * A pause lasts a few milliseconds from the check that found the crowding, and this thread
 * may itself be kept off its core that long on a loaded machine: so the test asks that the
 * pool be found not watching right after some run of a long series, not after a given one. */
START_TEST(threads_stop_watching_when_crowded)
{
    setenv("CNNRT_SPIN_US", "200", 1);
    rt_threads *tp = rt_threads_create(2, NULL);
    ck_assert_ptr_nonnull(tp);
    pool_probe p = {{0, 0, 0}, 0};
    ck_assert_int_eq(rt_threads_watching(tp), 1); /* (fast tasks could already find the
                                                     machine busy: not asserted) */
    p.slow = 200; /* microseconds off the CPU in every task */
    int stopped = 0;
    for (int i = 0; i < 400 && !stopped; i++) {
        rt_threads_run(tp, pool_probe_task, &p);
        stopped = rt_threads_watching(tp) == 0;
    }
    ck_assert_msg(stopped, "the pool kept watching through 400 tasks off the CPU");
    rt_threads_destroy(tp);
    setenv("CNNRT_SPIN_US", "0", 1);
    tp = rt_threads_create(2, NULL);
    ck_assert_int_eq(rt_threads_watching(tp), 0);
    rt_threads_destroy(tp);
    unsetenv("CNNRT_SPIN_US");
    ck_assert_int_eq(rt_threads_watching(NULL), 0);
}
END_TEST

/* A pool with as many threads as the cores this thread may use pins worker i >= 1 to the
 * i-th of them and leaves worker 0 (the caller) as it was; with CNNRT_PIN=0, or with one
 * thread more than cores, nobody is pinned. */
#define PIN_MAX 256
typedef struct {
    int ncpu[PIN_MAX], cpu[PIN_MAX]; /* per worker: cores it may run on, the first of them */
} pin_probe;

static void pin_probe_task(void *arg, rt_worker *w)
{
    pin_probe *p = arg;
    const int id = rt_worker_id(w);
#ifdef __linux__
    cpu_set_t s;
    if (id < PIN_MAX && pthread_getaffinity_np(pthread_self(), sizeof s, &s) == 0) {
        p->ncpu[id] = CPU_COUNT(&s);
        for (int c = CPU_SETSIZE - 1; c >= 0; c--)
            if (CPU_ISSET(c, &s))
                p->cpu[id] = c;
    }
#else
    (void)p, (void)id;
#endif
}

START_TEST(threads_pin_workers_that_fill_the_cores)
{
#ifdef __linux__
    cpu_set_t allowed;
    ck_assert_int_eq(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    const int k = CPU_COUNT(&allowed);
    int cores[PIN_MAX], nc = 0;
    for (int c = 0; c < CPU_SETSIZE && nc < PIN_MAX; c++)
        if (CPU_ISSET(c, &allowed))
            cores[nc++] = c;
    ck_assert_msg(k + 1 <= PIN_MAX, "%d cores: more than the test's %d", k, PIN_MAX - 1);
    for (int pass = 0; pass < 3; pass++) {
        /* pass 0: k threads, pinned when k >= 2; 1: the same with CNNRT_PIN=0; 2: k + 1 */
        const int n = pass == 2 ? k + 1 : k;
        if (pass == 1)
            setenv("CNNRT_PIN", "0", 1);
        rt_threads *tp = rt_threads_create(n, NULL);
        unsetenv("CNNRT_PIN");
        ck_assert_ptr_nonnull(tp);
        pin_probe p;
        memset(&p, 0, sizeof p);
        rt_threads_run(tp, pin_probe_task, &p);
        rt_threads_destroy(tp);
        CHECK(p.ncpu[0] == k, "pass %d: the caller may run on %d cores, not %d", pass,
              p.ncpu[0], k);
        for (int i = 1; i < n; i++) {
            const int pinned = pass == 0 && k >= 2;
            CHECK(p.ncpu[i] == (pinned ? 1 : k), "pass %d: worker %d may run on %d cores",
                  pass, i, p.ncpu[i]);
            CHECK(!pinned || p.cpu[i] == cores[i], "pass %d: worker %d on core %d, not %d",
                  pass, i, p.cpu[i], cores[i]);
        }
    }
#endif
}
END_TEST

/* The caller of a pinned pool found on a worker's core is moved to the core the workers
 * leave free before the task runs, and its mask is set back (all the cores it had). */
static void caller_core_task(void *arg, rt_worker *w)
{
#ifdef __linux__
    if (rt_worker_id(w) == 0) {
        int *got = arg;
        cpu_set_t s;
        got[0] = sched_getcpu();
        got[1] = pthread_getaffinity_np(pthread_self(), sizeof s, &s) == 0 ? CPU_COUNT(&s) : -1;
    }
#else
    (void)arg, (void)w;
#endif
}

START_TEST(threads_move_the_caller_off_the_workers_cores)
{
#ifdef __linux__
    cpu_set_t allowed, one;
    ck_assert_int_eq(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    const int k = CPU_COUNT(&allowed);
    int cores[2] = {-1, -1}, nc = 0;
    for (int c = 0; c < CPU_SETSIZE && nc < 2; c++)
        if (CPU_ISSET(c, &allowed))
            cores[nc++] = c;
    if (k < 2) { /* said, not skipped silently: one core leaves nothing to move */
        printf("threads_move_the_caller_off_the_workers_cores: 1 core, no worker to avoid\n");
        return;
    }
    rt_threads *tp = rt_threads_create(k, NULL);
    ck_assert_ptr_nonnull(tp);
    for (int round = 0; round < 3; round++) {
        /* onto worker 1's core, with every core allowed again (it stays there until the
         * kernel moves it) */
        CPU_ZERO(&one);
        CPU_SET(cores[1], &one);
        ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
        ck_assert_int_eq(sched_setaffinity(0, sizeof allowed, &allowed), 0);
        int got[2] = {-1, -1};
        rt_threads_run(tp, caller_core_task, got);
        CHECK(got[0] == cores[0], "round %d: the caller ran on core %d, not the free %d",
              round, got[0], cores[0]);
        CHECK(got[1] == k, "round %d: the caller may run on %d cores, not %d", round, got[1], k);
    }
    rt_threads_destroy(tp);
#endif
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *t = tcase_create("conv");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, conv_lecture_valid);
    tcase_add_test(t, conv_lecture_zero_pad);
    tcase_add_test(t, conv_lecture_stride);
    tcase_add_test(t, conv_lecture_reflect);
    tcase_add_test(t, conv_lecture_replicate);
    tcase_add_test(t, conv_lecture_circular);
    tcase_add_test(t, conv_lecture_flip);
    tcase_add_test(t, conv_lecture_backward);
    tcase_add_test(t, conv_batch_folded);
    tcase_add_test(t, conv_padding_gradient_flows_to_source);
    tcase_add_test(t, conv_multichannel_bias);
    tcase_add_test(t, conv_random_geometries);
    tcase_add_test(t, conv_geometry_rejected);
    tcase_add_test(t, conv_translation_equivariance);
    suite_add_tcase(s, t);
    t = tcase_create("pool");
    tcase_add_test(t, pool_hand);
    tcase_add_test(t, pool_padding_hand);
    tcase_add_test(t, pool_global_hand);
    tcase_add_test(t, pool_ties_hand);
    tcase_add_test(t, pool_relu_fused_hand);
    tcase_add_test(t, pool_relu_fused_equals_pair);
    tcase_add_test(t, global_pool_invariance);
    suite_add_tcase(s, t);
    t = tcase_create("gemm");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, gemm_all_isas);
    tcase_add_test(t, gemm_threads_identical);
    suite_add_tcase(s, t);
    t = tcase_create("other");
    tcase_add_test(t, dense_hand);
    tcase_add_test(t, batchnorm_hand);
    tcase_add_test(t, batchnorm_variance_far_from_zero);
    tcase_add_test(t, batchnorm_backward_hand);
    tcase_add_test(t, batchnorm_same_bits_any_pool);
    tcase_add_test(t, batchnorm_out_of_memory);
    tcase_add_test(t, batchnorm_fold_hand);
    tcase_add_test(t, add_act_hand);
    tcase_add_test(t, elementwise_backward_hand);
    tcase_add_test(t, activations_hand);
    tcase_add_test(t, softmax_xent_hand);
    tcase_add_test(t, dropout_mask);
    tcase_add_test(t, rng_reference);
    tcase_add_test(t, threads_pool);
    tcase_add_test(t, threads_dispatch_watch_and_sleep);
    tcase_add_test(t, threads_stop_watching_when_crowded);
    tcase_add_test(t, threads_pin_workers_that_fill_the_cores);
    tcase_add_test(t, threads_move_the_caller_off_the_workers_cores);
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
