/*
 * rt_conv_int.h - what the convolution files share, internal to libcnnrt: the geometry
 * with its defaults resolved, the interior range of a kernel tap, the direct depthwise
 * kernels (rt_conv_dw.c) that rt_conv.c hands depthwise geometries to, and the slabs of the
 * implicit-GEMM route (rt_conv_slab.c), and the Winograd route (rt_conv_winograd.c).
 */
#ifndef RT_CONV_INT_H
#define RT_CONV_INT_H

#include "rt_kernels.h"
#include "rt_simd.h"

#include <stdatomic.h>
#include <string.h>

/* A switch of a convolution route (RT_CONV_IMPLICIT, _DIRECT, _WINOGRAD, _WINOGRAD_TILE):
 * read once from its environment variable, where a single digit listed in `accepted` is
 * taken and anything else gives dflt; tests change it through rt_conv_switch_set (not while
 * kernels run). Define one with RT_CONV_SWITCH. */
typedef struct {
    const char *env, *accepted;
    int dflt;
    atomic_int value; /* -1: the environment not read yet */
} rt_conv_switch;
#define RT_CONV_SWITCH(env, accepted, dflt) {env, accepted, dflt, -1}
int rt_conv_switch_get(rt_conv_switch *s);
/* Sets it to v (the caller's own normalised value); returns the setting before. */
int rt_conv_switch_set(rt_conv_switch *s, int v);

/* g with 0 read as 1 in the fields appended later (dilation, groups). */
static inline rt_conv_geom rt_conv_norm(const rt_conv_geom *g)
{
    rt_conv_geom n = *g;
    if (n.dh == 0)
        n.dh = 1;
    if (n.dw == 0)
        n.dw = 1;
    if (n.groups == 0)
        n.groups = 1;
    return n;
}

/* The range [*lo, *hi) of output columns whose input column ox*sw + off lies in [0, w). */
static inline void rt_conv_interior(int ow, int sw, int off, int w, int *lo, int *hi)
{
    int a = off >= 0 ? 0 : (-off + sw - 1) / sw;
    int b = w - 1 - off < 0 ? 0 : (w - 1 - off) / sw + 1;
    if (a > ow)
        a = ow;
    if (b > ow)
        b = ow;
    if (b < a)
        b = a;
    *lo = a;
    *hi = b;
}

/* Direct depthwise kernels for a normalised g with groups == c: each output channel o reads
 * input channel o / (oc/c) only, so a loop over its taps beats GEMMs with one row. Same
 * contracts as rt_conv2d_forward / rt_conv2d_backward; every output element, dx, dw and db
 * included, is computed by one worker in a fixed order, so the bits do not depend on the
 * pool. */
int rt_conv_dw_forward(const rt_conv_geom *g, const float *x, const float *w, const float *b,
                       rt_act act, float alpha, float *y, int n, rt_threads *tp);
int rt_conv_dw_backward(const rt_conv_geom *g, const float *x, const float *w, const float *dz,
                        float *dx, int accum, float *dw, float *db, int n, rt_threads *tp);
/* Bytes of worker scratch they ask for. */
size_t rt_conv_dw_scratch_size(const rt_conv_geom *g);

/* Direct convolution for few input channels (rt_conv_direct.c): groups 1, a patch of at most
 * RT_CONV_DIRECT_MAX_K taps (c*kh*kw), any stride, dilation and padding mode. Forward has the
 * contract of rt_conv2d_forward; backward makes dw (=) and db (=, NULL: none) only, never dX.
 * Every result is summed by one worker in a fixed order: the bits do not depend on the pool. */
#define RT_CONV_DIRECT_MAX_K 32
/* Whether g (normalised) takes the direct route forward (backward = 0) or for dW and db
 * (backward = 1); never after rt_conv_use_direct(0). */
int rt_conv_direct_ok(const rt_conv_geom *g, int backward);
int rt_conv_direct_forward(const rt_conv_geom *g, const float *x, const float *w,
                           const float *b, rt_act act, float alpha, float *y, int n,
                           rt_threads *tp);
int rt_conv_direct_backward(const rt_conv_geom *g, const float *x, const float *dz, float *dw,
                            float *db, int n, rt_threads *tp);
/* dW and db as rt_conv_direct_backward from dz = rt_maxpool_backward_relu(pg, py, dpy), with
 * the same bits, each worker making the dz planes it needs from py and dpy itself. */
int rt_conv_direct_backward_pool(const rt_conv_geom *g, const float *x, const rt_pool_geom *pg,
                                 const float *py, const float *dpy, float *dw, float *db, int n,
                                 rt_threads *tp);
/* Bytes of worker scratch they ask for. */
size_t rt_conv_direct_scratch_size(const rt_conv_geom *g);

/* d[0:n) = s[0:n) for the short rows (a map's width) that the slabs and grids are made of:
 * inline vector moves, where memcpy's call costs as much as a 32-float row. */
static inline void rt_conv_copy(float *d, const float *s, int n)
{
    int i = 0;
#ifdef RT_HAVE_V4
    for (; i + 4 <= n; i += 4)
        rt_st4(d + i, rt_ld4(s + i));
#endif
    for (; i < n; i++)
        d[i] = s[i];
}

/* Zeros d[0:n) for n <= 4 with one 4-float store: d[n:4) must be writable and written again
 * later (the next row of a slab or grid being filled in order, or slack). */
static inline void rt_conv_zero4(float *d, int n)
{
#ifdef RT_HAVE_V4
    (void)n;
    rt_st4(d, (rt_v4){0.0f, 0.0f, 0.0f, 0.0f});
#else
    memset(d, 0, (size_t)n * sizeof *d);
#endif
}

/* The grid of an implicit-GEMM slab (rt_conv_slab.c): nimg images of R grid rows each (a
 * band of rb output rows from oy0 when nimg is 1), rows S floats apart, channels lc floats
 * apart, each channel made of sh*sw phase planes of plane floats (one plane, the channel, at
 * stride 1); n grid positions are computed. */
typedef struct {
    int S, R, nimg, oy0, rb, n;
    size_t lc, plane;
} rt_conv_slab;

/* Whether g (normalised) takes the implicit route. */
int rt_conv_implicit_ok(const rt_conv_geom *g);
/* The slab of nimg whole images (nimg > 1) or of output rows [oy0, oy0 + rb) of one image. */
rt_conv_slab rt_conv_slab_of(const rt_conv_geom *g, int nimg, int oy0, int rb);
/* Output rows of one image's band: slab and GEMM output together about 256 KiB. */
int rt_conv_slab_rows(const rt_conv_geom *g);
/* Fills slab sg from the images at x (xstride floats apart) into xp (g->c * sg->lc floats). */
void rt_conv_slab_fill(const rt_conv_geom *g, const rt_conv_slab *sg, const float *x,
                       size_t xstride, float *xp);
/* koff[r] = where patch row r (c, ky, kx; the flip applied) starts in a slab like sg. */
void rt_conv_slab_offsets(const rt_conv_geom *g, const rt_conv_slab *sg, int *koff);

/* Winograd F(2x2,3x3) (rt_conv_winograd.c) for 3x3, stride 1, no dilation, one group, zero
 * padding of at most 2 (any mode when unpadded), activation none, relu or leaky relu, and the
 * switch rt_conv_use_winograd on (1: on the shapes and batches where it measured faster; 2:
 * all): whether g (normalised) with n images takes it (n < 0: with some n); the forward
 * (y = act(conv + b + res), res NULL or a residual added before the activation as
 * rt_conv2d_forward_res does, or y += conv when add, with b and res NULL and act none), same
 * contract as rt_conv2d_forward otherwise; the worker scratch it asks for, for g and for its
 * input gradient's geometry. */
int rt_conv_wino_ok(const rt_conv_geom *g, rt_act act, int n);
int rt_conv_wino_forward(const rt_conv_geom *g, const float *x, const float *w, const float *b,
                         const float *res, rt_act act, float alpha, float *y, int add, int n,
                         rt_threads *tp);
size_t rt_conv_wino_scratch_size(const rt_conv_geom *g);
/* U_f = (G k G^T)[f] for F(2x2,3x3) of g's kernels w (flipped when g->flip), in double and
 * rounded once, as packed-A panels of mr <= 8 output channels: panels [p0, p1), frequency f
 * at u + f * astride, panel p's [c][mr] block at p * c * mr (rows past oc: zeros). */
void rt_conv_wino_weights(const rt_conv_geom *g, const float *w, int mr, int p0, int p1,
                          float *u, size_t astride);

/* 16 floats: one AVX-512 register in the kernels' AVX-512 copies (two or four elsewhere);
 * v16u the same, aligned as a float; v16i the int twin (comparison masks). LD16 and ST16:
 * a load and a store at any float's address. */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int v16i __attribute__((vector_size(64)));
#define LD16(v, p) memcpy(&(v), (p), sizeof(v16))
#define ST16(p, v)                                                                         \
    do {                                                                                  \
        v16 st16_ = (v);                                                                  \
        memcpy((p), &st16_, sizeof st16_);                                                \
    } while (0)

/* The 32 floats at p split into their even (E) and odd (O) columns, 16 each: lane t of E and
 * O holds columns 2t and 2t + 1, the two columns of tile t of the F(2x2,3x3) kernels that lay
 * 16 tiles side by side. A macro, as FINISH. */
#define RT_SPLIT32(p, E, O)                                                               \
    do {                                                                                  \
        const float *p_ = (p);                                                            \
        const v16 lo_ = *(const v16u *)p_, hi_ = *(const v16u *)(p_ + 16);                \
        (E) = __builtin_shufflevector(lo_, hi_, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22,\
                                      24, 26, 28, 30);                                    \
        (O) = __builtin_shufflevector(lo_, hi_, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23,\
                                      25, 27, 29, 31);                                    \
} while (0)

/* V = B^T d B of F(2x2,3x3) for 16 tiles side by side (lane t: tile t), from one channel's
 * map [h][w] (w a whole number of 32) zero-padded by 1: the tiles of tile row ty (input rows
 * 2 ty - 1 .. 2 ty + 2) whose 32 output columns start at 32 sx. Each input row is read once
 * and split into even and odd columns by shuffles; frequency (i, j) (i down, j across) goes
 * to d + (4 i + j) * fs. The Winograd kernels of rt_conv_wino_small.c (forward) and
 * rt_conv_wino_wgrad.c (weight gradient) share it, inlined into their AVX-512 bodies. */
static inline __attribute__((always_inline)) void rt_wino2_input16(const float *x, int h, int w,
                                                                  int ty, int sx, float *d,
                                                                  size_t fs)
{
    const int segs = w / 32;
    const v16 z = {0};
    v16 R[4][4]; /* B^T along the rows of input rows 2 ty - 1 .. 2 ty + 2 */
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {
        const int iy = 2 * ty - 1 + r;
        if (iy < 0 || iy >= h) {
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) R[r][j] = z;
            continue;
        }
        const float *row = x + (size_t)iy * w + sx * 32;
        v16 E, O, left = z, right = z; /* left, right: the columns either side, or padding */
        RT_SPLIT32(row, E, O);
        left[0] = sx > 0 ? row[-1] : 0.0f;
        right[0] = sx < segs - 1 ? row[32] : 0.0f;
        /* tile t's 4 columns: 2t - 1, 2t (E), 2t + 1 (O), 2t + 2 */
        const v16 d0 = __builtin_shufflevector(O, left, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                11, 12, 13, 14);
        const v16 d3 = __builtin_shufflevector(E, right, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                13, 14, 15, 16);
        R[r][0] = d0 - O;
        R[r][1] = E + O;
        R[r][2] = O - E;
        R[r][3] = E - d3;
    }
    /* B^T down the columns: frequency (i, j) */
    _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
        *(v16 *)(d + (size_t)(0 * 4 + j) * fs) = R[0][j] - R[2][j];
        *(v16 *)(d + (size_t)(1 * 4 + j) * fs) = R[1][j] + R[2][j];
        *(v16 *)(d + (size_t)(2 * 4 + j) * fs) = R[2][j] - R[1][j];
        *(v16 *)(d + (size_t)(3 * 4 + j) * fs) = R[1][j] - R[3][j];
    }
}

/* The activation (1 relu, 2 leaky relu) of the lanes of v, a VT vector (VIT: its int
 * twin), as x > 0 ? x : (leaky ? alpha x : 0) does it to one value: the Winograd kernels'
 * inverse transforms. */
#define VACT(VT, VIT, v, act, alpha)                                                       \
    do {                                                                                  \
        if (act) {                                                                        \
            const VT z_ = {0};                                                            \
            VIT pos_ = (v) > z_;                                                          \
            VT neg_ = (act) == 2 ? (alpha) * (v) : z_;                                    \
            (v) = (VT)((pos_ & (VIT)(v)) | (~pos_ & (VIT)neg_));                          \
        }                                                                                 \
    } while (0)

/* The last steps of a VT vector u of output columns, all in the map: + the residual at rs
 * (NULL: none), the activation, stored at o or, when add, added to what o holds. LD and ST:
 * VT's unaligned load and store. A macro: a function taking a vector would have another ABI
 * in the baseline build than in the AVX copies. */
#define FINISH(VT, VIT, LD, ST, u, rs, act, alpha, add, o)                                 \
    do {                                                                                  \
        VT u_ = (u);                                                                      \
        const float *rs_ = (rs);                                                          \
        if (rs_) {                                                                        \
            VT r_;                                                                        \
            LD(r_, rs_);                                                                  \
            u_ += r_;                                                                     \
        }                                                                                 \
        VACT(VT, VIT, u_, act, alpha);                                                    \
        if (add) {                                                                        \
            VT o_;                                                                        \
            LD(o_, (o));                                                                  \
            u_ += o_;                                                                     \
        }                                                                                 \
        ST((o), u_);                                                                      \
    } while (0)

/* F(2x2,3x3) for few channels (rt_conv_wino_small.c), which rt_conv_wino_forward runs for
 * F(2x2) where rt_conv_winos_takes(g): 3x3 "same" (padding 1 each side, zeros), stride 1,
 * an even height, a width a whole number of 32, min(c, oc) <= 24 and max(c, oc) <= 64, the
 * switch rt_conv_winograd_small on and the GEMM's micro-kernel AVX-512. Same contract as
 * rt_conv_wino_forward; the worker scratch it asks for. */
int rt_conv_winos_takes(const rt_conv_geom *g);
int rt_conv_winos_forward(const rt_conv_geom *g, const float *x, const float *w,
                          const float *b, const float *res, rt_act act, float alpha, float *y,
                          int add, int n, rt_threads *tp);
size_t rt_conv_winos_scratch_size(const rt_conv_geom *g);
/* Whether g (normalised) is a layer the kernels of 16 tiles side by side serve (rt_wino2_input16):
 * 3x3 "same" (padding 1 each side, zeros), stride 1, no dilation, one group, an even height,
 * a width a whole number of 32, and the GEMM's micro-kernel AVX-512 (rt_gemm_isa). */
int rt_conv_wino2_rows32(const rt_conv_geom *g);

/* dW and db of n images by Winograd (rt_conv_wino_wgrad.c), overwriting both (db may be
 * NULL), where rt_conv_winow_takes(g, n) (n < 0: with some n): a geometry
 * rt_conv_wino2_rows32 accepts, channels a whole number of 4 each way, c * oc at most 1024,
 * at least 1024 2x2 tiles over the n images, the switch rt_conv_winograd_wgrad on. Returns
 * 0, or -1 when out of memory. rt_conv_winow_scratch_size: the bytes of worker scratch it
 * asks for g. */
int rt_conv_winow_takes(const rt_conv_geom *g, int n);
int rt_conv_winow_backward(const rt_conv_geom *g, const float *x, const float *dz, float *dw,
                           float *db, int n, rt_threads *tp);
size_t rt_conv_winow_scratch_size(const rt_conv_geom *g);

#endif
