/*
 * rt_conv_wino_small.c - Winograd F(2x2,3x3) for convolutions with few channels ("same"
 * 3x3, stride 1, maps a whole number of 32 wide), every stage in registers and L1.
 *
 * With 16 channels the chunked route of rt_conv_winograd.c loses to the implicit GEMM: its
 * GEMMs are 16 deep, and its transformed tiles go to memory and back, 4x the input's size.
 * Here a work item is 2 vectors of 16 tiles (a tile row's 32 columns: 16 tiles of 2x2
 * outputs, lane t holding tile t) of one image. Its input transform (rt_wino2_input16, shared
 * with the weight gradient of rt_conv_wino_wgrad.c) reads each input row once, splits even
 * and odd columns with shuffles and writes V (16 frequencies x c channels
 * x 2 vectors: 2 KiB per channel) to the worker's scratch; then, 8 output channels at a
 * time, each frequency's products sum over the channels into 16 accumulators in registers
 * (the weight a broadcast operand), the 8 x 16 results go to a small M, and the inverse
 * transform with the bias, a residual, the activation (or the add onto y) interleaves the
 * two output columns of each tile and stores whole rows. Each output is made by one item
 * with a fixed order of operations, so the bits do not depend on the number of workers.
 *
 * The weights are transformed by rt_conv_wino_weights (G k G^T in double, rounded once)
 * into panels of 8 output channels. The body is compiled for AVX-512 (with FMA) only, and
 * runs where the GEMM's micro-kernel is AVX-512 (rt_gemm_isa): its 16 accumulators of 16
 * floats and 16-lane shuffles need 32 vector registers of 512 bits. Compiled for AVX2 or the
 * baseline it ran 30x slower than the implicit GEMM (16 channels at 32x32, batch 32: 60 ms
 * against 1.9 and 16), so elsewhere the other routes serve these layers.
 *
 * Measured at batch 32, 2 threads (Xeon, AVX-512), forward against the faster of the
 * implicit GEMM and the chunked route: 16 channels at 32x32 0.96-1.0 -> 0.62-0.66 ms, 16 at
 * 64x64 4.7 -> 3.3, 16 -> 32 at 64x64 5.0 -> 3.8, 24 at 32x32 over 4 images 0.34 -> 0.20;
 * one image of 16 channels at 32x32 0.042 -> 0.030 ms. Even at 32 channels and more (32x32:
 * 0.61 -> 0.59 at 8 images, 0.18 -> 0.21 at 2), so the default leaves those to the others.
 */
#include "rt_conv_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define OB 8      /* output channels per block: a weight panel of rt_conv_wino_weights */
#define NV 2      /* vectors of 16 tiles per work item */
#define MAX_SMALL 24 /* the default takes it when min(c, oc) is at most this... */
#define MAX_BIG 64   /* ... and max(c, oc) at most this (measured: 16 to 24 and 32 to 64; V,
                      * 2 KiB per input channel, then stays within 128 KiB of scratch) */

/* RT_CONV_WINOGRAD_SMALL=0 starts with this kernel off (the implicit GEMM then serves, or
 * with RT_CONV_WINOGRAD=2 the chunked route) */
static rt_conv_switch small_on = RT_CONV_SWITCH("RT_CONV_WINOGRAD_SMALL", "01", 1);

int rt_conv_winograd_small(int on)
{
    return rt_conv_switch_set(&small_on, on != 0);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_SMALL_KERNEL 1
#endif

int rt_conv_wino2_rows32(const rt_conv_geom *g)
{
#ifdef HAVE_SMALL_KERNEL
    if (strcmp(rt_gemm_isa(), "avx512") != 0)
        return 0;
#else
    return 0;
#endif
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
           g->groups == 1 && g->pt == 1 && g->pb == 1 && g->pl == 1 && g->pr == 1 &&
           g->pad == RT_PAD_ZERO && g->oh == g->h && g->ow == g->w && g->h % 2 == 0 &&
           g->w % 32 == 0;
}

int rt_conv_winos_takes(const rt_conv_geom *g)
{
    if (!rt_conv_switch_get(&small_on) || !rt_conv_wino2_rows32(g))
        return 0;
    const int lo = g->c < g->oc ? g->c : g->oc, hi = g->c < g->oc ? g->oc : g->c;
    return lo <= MAX_SMALL && hi <= MAX_BIG;
}

/* A worker's scratch: V [16 frequencies][c][NV][16], then M [OB][16][NV][16]. */
static size_t v_floats(int c)
{
    return (size_t)16 * c * NV * 16;
}

size_t rt_conv_winos_scratch_size(const rt_conv_geom *g)
{
    return (v_floats(g->c) + (size_t)OB * 16 * NV * 16) * sizeof(float);
}

/* Vectors q0 .. q0 + nq - 1 (q = tile row * segs + segment) of one image x [c][h][w]: the
 * input transform into V; for the vectors past nq (an image's last item), those of q0. */
static inline __attribute__((always_inline)) void input_item(const float *x, int c, int h,
                                                            int w, int q0, int nq, float *V)
{
    const int segs = w / 32;
    for (int ci = 0; ci < c; ci++)
        for (int v = 0; v < NV; v++) {
            const int q = q0 + (v < nq ? v : 0);
            rt_wino2_input16(x + (size_t)ci * h * w, h, w, q / segs, q % segs,
                             V + ((size_t)ci * NV + v) * 16, (size_t)c * NV * 16);
        }
}

/* Output row segment o (32 floats) from the even and odd columns a, b, interleaved: the
 * residual at rs (NULL: none), the activation, stored or added onto what o holds (FINISH
 * on each 16). */
#define SFINISH(a, b, rs, act, alpha, add, o)                                              \
    do {                                                                                  \
        const float *rs2_ = (rs);                                                         \
        float *o2_ = (o);                                                                 \
        FINISH(v16, v16i, LD16, ST16,                                                     \
               __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, \
                                       7, 23),                                            \
               rs2_, act, alpha, add, o2_);                                               \
        FINISH(v16, v16i, LD16, ST16,                                                     \
               __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, \
                                       14, 30, 15, 31),                                   \
               rs2_ ? rs2_ + 16 : NULL, act, alpha, add, o2_ + 16);                       \
    } while (0)

typedef struct {
    const rt_conv_geom *g;
    const float *x, *w, *b, *res;
    float *u; /* U_f: panels [oc / OB][c][OB], astride floats apart */
    size_t astride;
    int act;
    float alpha;
    float *y;
    int n, add, nq, per; /* vectors per image, items per image */
    atomic_int fail;
} sjob;

/* Work item it (image it / per, vectors from (it % per) * NV) with scratch V, M. */
static inline __attribute__((always_inline)) void item(const sjob *j, int it, float *V,
                                                      float *M)
{
    const rt_conv_geom *g = j->g;
    const int c = g->c, h = g->h, w = g->w, segs = w / 32;
    const int s = it / j->per, q0 = it % j->per * NV;
    const int nq = j->nq - q0 < NV ? j->nq - q0 : NV;
    input_item(j->x + (size_t)s * c * h * w, c, h, w, q0, nq, V);
    const size_t fs = (size_t)c * NV * 16, plane = (size_t)h * w;
    for (int ob = 0; ob < g->oc; ob += OB) {
        for (int f = 0; f < 16; f++) { /* M_f = U_f V_f for OB channels, 2 vectors */
            const float *u = j->u + f * j->astride + (size_t)ob * c;
            const float *vp = V + f * fs;
            v16 acc[NV][OB];
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)
                _Pragma("GCC unroll 8") for (int o = 0; o < OB; o++) acc[v][o] = (v16){0};
            for (int ci = 0; ci < c; ci++) {
                const v16 a0 = *(const v16 *)(vp + (size_t)ci * NV * 16);
                const v16 a1 = *(const v16 *)(vp + (size_t)ci * NV * 16 + 16);
                _Pragma("GCC unroll 8") for (int o = 0; o < OB; o++) {
                    const float k = u[(size_t)ci * OB + o];
                    acc[0][o] += a0 * k;
                    acc[1][o] += a1 * k;
                }
            }
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)
                _Pragma("GCC unroll 8") for (int o = 0; o < OB; o++)
                    *(v16 *)(M + ((size_t)(o * 16 + f) * NV + v) * 16) = acc[v][o];
        }
        const int on = g->oc - ob < OB ? g->oc - ob : OB;
        for (int o = 0; o < on; o++)
            for (int v = 0; v < nq; v++) { /* A^T M A, + bias, then the rows' last steps */
                const float *m = M + ((size_t)o * 16 * NV + v) * 16;
#define MF(i, jj) (*(const v16 *)(m + (size_t)((i) * 4 + (jj)) * NV * 16))
                v16 s0[4], s1[4];
                _Pragma("GCC unroll 4") for (int jj = 0; jj < 4; jj++) {
                    s0[jj] = MF(0, jj) + MF(1, jj) + MF(2, jj);
                    s1[jj] = MF(1, jj) - MF(2, jj) - MF(3, jj);
                }
#undef MF
                v16 y00 = s0[0] + s0[1] + s0[2], y01 = s0[1] - s0[2] - s0[3];
                v16 y10 = s1[0] + s1[1] + s1[2], y11 = s1[1] - s1[2] - s1[3];
                if (j->b) {
                    const float bb = j->b[ob + o];
                    y00 += bb, y01 += bb, y10 += bb, y11 += bb;
                }
                const int q = q0 + v, ty = q / segs, sx = q % segs;
                const size_t at = ((size_t)s * g->oc + ob + o) * plane +
                                  (size_t)(2 * ty) * w + (size_t)sx * 32;
                const float *rs = j->res ? j->res + at : NULL;
                SFINISH(y00, y01, rs, j->act, j->alpha, j->add, j->y + at);
                SFINISH(y10, y11, rs ? rs + w : NULL, j->act, j->alpha, j->add, j->y + at + w);
            }
    }
}

#ifdef HAVE_SMALL_KERNEL
__attribute__((target("avx512f,fma"))) static void items_avx512(const sjob *j, int i0, int i1,
                                                                 float *V, float *M)
{
    for (int it = i0; it < i1; it++)
        item(j, it, V, M);
}
#endif

static void weights_task(void *arg, rt_worker *wk)
{
    sjob *j = arg;
    int p0, p1;
    rt_split_range((j->g->oc + OB - 1) / OB, rt_worker_count(wk), rt_worker_id(wk), &p0, &p1);
    rt_conv_wino_weights(j->g, j->w, OB, p0, p1, j->u, j->astride);
}

static void items_task(void *arg, rt_worker *wk)
{
    sjob *j = arg;
    int i0, i1;
    rt_split_range(j->n * j->per, rt_worker_count(wk), rt_worker_id(wk), &i0, &i1);
    if (i0 >= i1)
        return;
    float *V = rt_worker_scratch(wk, rt_conv_winos_scratch_size(j->g));
    if (!V) {
        atomic_store(&j->fail, 1);
        return;
    }
#ifdef HAVE_SMALL_KERNEL
    items_avx512(j, i0, i1, V, V + v_floats(j->g->c));
#else
    (void)V; /* rt_conv_winos_takes said no: never called */
#endif
}

int rt_conv_winos_forward(const rt_conv_geom *g, const float *x, const float *w,
                          const float *b, const float *res, rt_act act, float alpha, float *y,
                          int add, int n, rt_threads *tp)
{
    const size_t astride = (size_t)(g->oc + OB - 1) / OB * OB * g->c;
    float *u = malloc(16 * astride * sizeof *u);
    if (!u)
        return -1;
    sjob j = {.g = g, .x = x, .w = w, .b = b, .res = res, .u = u, .astride = astride,
              .act = act == RT_ACT_RELU ? 1 : act == RT_ACT_LEAKYRELU ? 2 : 0,
              .alpha = alpha, .y = y, .n = n, .add = add};
    j.nq = g->h / 2 * (g->w / 32);
    j.per = (j.nq + NV - 1) / NV;
    rt_threads_run(tp, weights_task, &j);
    rt_threads_run(tp, items_task, &j);
    free(u);
    return atomic_load(&j.fail) ? -1 : 0;
}
