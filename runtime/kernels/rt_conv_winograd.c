/*
 * rt_conv_winograd.c - 3x3 stride-1 zero-padded convolutions by Winograd F(2x2,3x3): 16
 * multiplications per 2x2 output tile and channel pair instead of 36, as 16 GEMMs (or
 * F(4x4,3x3) on request, 36 GEMMs for 4x4 tiles: see pick_tile).
 *
 * The weights are transformed once per call (U = G g G^T, in double, rounded once) straight
 * into the GEMM's packed-A layout, one [oc x c] matrix per frequency. The output tiles of the
 * whole batch are numbered one after the other and cut into chunks; a worker takes whole
 * chunks and for each one transforms the input tiles into the packed-B layout, multiplies
 * each frequency ([oc x c] x [c x tiles]) and transforms back with the bias, a residual
 * (inference's fused add) and relu / leaky relu, straight into the output. F(2x2) copies a
 * channel's input rows under the chunk once into zero-bordered rows and reads 16 tiles per
 * vector from them, two halves of 8 tiles that may each start in one tile row and end in
 * the next (input_chunk2, output_chunk2: small maps fill whole vectors); F(4x4) goes a tile
 * row's segment at a time, 8 tiles per vector. A tile's result depends on no other tile, and
 * a GEMM column on no other column, so the bits do not depend on the chunks or on the number
 * of workers. Used by rt_conv2d_forward(_res) and by the input gradient (a stride-1
 * correlation of the padded dZ with the flipped kernel) where rt_conv_wino_ok says so.
 * F(2x2) on 3x3 "same" layers with few channels (at most 24 on a side, 64 on the other)
 * whose maps are an even number of rows high and 32 wide, or a multiple of it, goes to the
 * kernel of rt_conv_wino_small.c instead (AVX-512), which keeps every stage in registers and
 * L1: the route takes those at any batch.
 */
#include "rt_conv_int.h"
#include "rt_gemm_int.h"
#include "rt_simd.h"

#include <assert.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_FLOATS (128 * 1024)    /* a chunk's V and M: about 512 KiB */
#define CHUNK_MIN 64                 /* tiles, so that each U_f read is amortised */
#define CHUNK_MAX 1024
/* Floats added to the distance between two frequencies' blocks: at a multiple of 4 KiB the 16
 * streams of a transform would share an L1 set (the input transform ran 2x slower). */
#define SKEW 16
/* Where the route pays (measured at batch 32, 2 threads, AVX-512, against the implicit
 * GEMM; see faster()): at least 32 channels each way on maps a whole number of 8 wide (tile
 * rows of whole half vectors: 32 at 8x8 0.16 -> 0.15 ms forward, at 16x16 0.56 -> 0.43, at
 * 32x32 2.2 -> 1.9; 64 at 8x8 0.57 -> 0.40, at 32x32 8.5 -> 5.7), any map 4 wide or more
 * from 128 channels on (128 at 4x4 0.86 -> 0.76, at 7x7 2.7 -> 1.8, at 14x14 7.3 -> 6.0).
 * Not below: 16 channels at 32x32 0.53 -> 0.59 (rt_conv_wino_small.c serves those), 64 at
 * 14x14 1.9 -> 2.2 (tile rows that end inside a vector are written by runs, some element by
 * element), 32 at 4x4 0.07 -> 0.13. Any channel count works. */
#define MIN_C 32
#define ANY_MAP_C 128
/* ... and only where a call has the tiles to pay for its fixed costs (the weight transform,
 * chunks padded to whole GEMM panels): at least MIN_WORK 2x2 tiles x channels (min(c, oc)),
 * F(4x4) too (measured with F(2x2)); over the call's images, not per worker, so that the
 * route and the bits do not depend on the number of threads (rt_conv2d_forward_pool takes
 * the whole batch's route for each of its runs; an MPI rank, its own share's).
 * Break-even measured at 1 and 2 threads (batch where both routes run as fast): 32
 * channels at 16x16 at 4 images (256 tiles), 64 at 8x8 at 8 (128 tiles), 128 at 8x8 at 3-6,
 * 128 at 4x4 at 12-16, 256 at 4x4 at 7-8; below it the route ran up to 3x slower (64 at 8x8,
 * one image: 0.22 ms against 0.07), so that one-image inference (cnnrun --predict) lost 10-25 %
 * on resnet_bn32 with the route on. */
#define MIN_WORK 8192
/* RT_CONV_WINOGRAD=0 starts with the route off, 2 forced */
static rt_conv_switch wino_on = RT_CONV_SWITCH("RT_CONV_WINOGRAD", "012", 1);

int rt_conv_use_winograd(int on)
{
    return rt_conv_switch_set(&wino_on, on == 2 ? 2 : on != 0);
}

/* 2 or 4: F(m x m, 3x3) forced (RT_CONV_WINOGRAD_TILE); 0: by shape (pick_tile) */
static rt_conv_switch wino_tile = RT_CONV_SWITCH("RT_CONV_WINOGRAD_TILE", "24", 0);

int rt_conv_winograd_tile(int m)
{
    return rt_conv_switch_set(&wino_tile, m == 2 || m == 4 ? m : 0);
}

/* The output tile: F(2x2,3x3) unless F(4x4,3x3) is asked for. F(4x4) does 36 instead of 64
 * multiplications per 4x4 outputs, but its error is about 10x F(2x2)'s (max|err| / max|ref|
 * 3e-6 at 16-48 channels, 1.1e-5 at 300: above the 1e-5 the forward must keep) and it measured
 * no faster on vgg_bn64 (10 % faster on the 64x64 map, 5-20 % slower on 32x32 and 16x16,
 * whose tile rows of 8 and 4 tiles half fill the vectors). */
static int pick_tile(const rt_conv_geom *g)
{
    (void)g;
    int m = rt_conv_switch_get(&wino_tile);
    return m ? m : 2;
}

/* The 2x2 output tiles of n images of g. */
static double tiles2(const rt_conv_geom *g, int n)
{
    return (double)n * ((g->oh + 1) / 2) * ((g->ow + 1) / 2);
}

/* Whether g goes to the kernel for few channels (rt_conv_wino_small.c): F(2x2) on the
 * geometries it takes. */
static int by_small_kernel(const rt_conv_geom *g)
{
    return pick_tile(g) == 2 && rt_conv_winos_takes(g);
}

/* Whether the route is faster than the implicit GEMM for g over n images (the measurements
 * above); n < 0: over some batch. */
static int faster(const rt_conv_geom *g, int n)
{
    const int c = g->c < g->oc ? g->c : g->oc;
    if (n >= 0 && tiles2(g, n) * c < MIN_WORK)
        return 0;
    return (c >= ANY_MAP_C && g->ow >= 4) || (c >= MIN_C && g->ow % 8 == 0);
}

/* Whether the route takes g with activation act over n images (with the switch at 1: where
 * it is faster, by the chunks or, at any batch, by the kernel for few channels); n < 0: over
 * some batch (the scratch it may ask for). */
int rt_conv_wino_ok(const rt_conv_geom *g, rt_act act, int n)
{
    const int on = rt_conv_switch_get(&wino_on);
    if (!on || g->kh != 3 || g->kw != 3 || g->sh != 1 || g->sw != 1 || g->dh != 1 ||
        g->dw != 1 || g->groups != 1 || g->pt > 2 || g->pb > 2 || g->pl > 2 || g->pr > 2)
        return 0;
    if (g->pad != RT_PAD_ZERO && (g->pt | g->pb | g->pl | g->pr) != 0)
        return 0;
    if (act != RT_ACT_NONE && act != RT_ACT_RELU && act != RT_ACT_LEAKYRELU)
        return 0;
    if (on == 1 && !faster(g, n) && !by_small_kernel(g))
        return 0;
    if (n < 0)
        return 1;
    return tiles2(g, n) < (double)INT_MAX / 2; /* tile numbers and offsets in ints and longs */
}

/* Tiles per chunk (a multiple of the GEMM's NR, itself a multiple of 8). */
static int chunk_max(const rt_conv_geom *g, int m)
{
    const int NF = (m + 2) * (m + 2);
    const int NR = rt_gemm_nr();
    long t = CHUNK_FLOATS / ((long)NF * (g->c + g->oc));
    if (t < CHUNK_MIN)
        t = CHUNK_MIN;
    if (t > CHUNK_MAX)
        t = CHUNK_MAX;
    t = (t + NR - 1) / NR * NR;
    return (int)t;
}

/* Where input_groups2 reads 16 tiles (16 chunk columns), as two halves of 8: half h's
 * tiles start at a[h] (floats into the padded rows); when only n[h] < 8 of them are in that
 * tile row, the others start the next tile row, read from b[h] (its first tile, less 2 n[h]
 * floats, so that lane positions agree); n[h] < 0 when they span more than two tile rows
 * (tile rows of 5 tiles or fewer): then tile l of the half starts at lane[8 h + l]. */
typedef struct {
    int a[2], b[2], n[2];
    int lane[16];
} wgroup;

/* Where output_groups2 writes half h of 16 chunk columns (8 tiles, 16 output columns of 2
 * rows): in runs of tiles in one tile row, run i's first lane (an output column of the half)
 * lane[i], its place in an output plane y[i], its columns and rows in the map. */
typedef struct {
    long y[8];
    int nrun, lane[8], cols[8], rows[8];
} wout;

/* Floats of a worker's scratch for chunks of cs tiles of m x m outputs: the packed V_f
 * (fstride floats apart), the GEMMs' M_f ([oc][ldm] each, SKEW apart), then rows: F(4x4)'s
 * segment rows (m + 2 input rows of up to m * cs + 8 floats, or m output rows), F(2x2)'s
 * zero-bordered input rows of a chunk's channel with the group tables (input_chunk2). */
typedef struct {
    size_t vp, m, rows, total, fstride;
    int ldm;
} wlayout;

static size_t up16(size_t f)
{
    return (f + 15) / 16 * 16;
}

static wlayout wplan(const rt_conv_geom *g, int m, int cs)
{
    const int NF = (m + 2) * (m + 2);
    wlayout l;
    l.fstride = rt_gemm_packed_b_floats(g->c, cs) + SKEW;
    l.ldm = cs;
    l.vp = 0;
    l.m = up16((size_t)NF * l.fstride);
    l.rows = l.m + up16((size_t)NF * ((size_t)g->oc * l.ldm + SKEW) + 8); /* + slack */
    size_t rows = up16((size_t)(m + 2) * (m * cs + 8) + 16); /* F(4x4): segment rows */
    if (m == 2) { /* a channel's padded input rows, then the group tables (input_chunk2) */
        const long th = (g->oh + 1) / 2, tw = (g->ow + 1) / 2;
        const long imgs = cs / (th * tw) + 2, trows = cs / tw + 2 * imgs;
        const size_t plane = 16 + (size_t)(2 * trows + 2 * imgs + 1) * (2 * tw + 2) + 32;
        const size_t tab = (size_t)(cs + 15) / 16 * (sizeof(wgroup) + 2 * sizeof(wout)) /
                               sizeof(float) + 1;
        rows = up16(plane) + up16(tab);
    }
    l.total = l.rows + rows;
    return l;
}

/* The dX geometry of g: the correlation of dZ padded by 2 - p (dx_by_correlation). */
static rt_conv_geom transposed(const rt_conv_geom *g)
{
    rt_conv_geom t = *g;
    t.c = g->oc, t.h = g->oh, t.w = g->ow;
    t.oc = g->c, t.oh = g->h, t.ow = g->w;
    t.pt = 2 - g->pt, t.pb = 2 - g->pb, t.pl = 2 - g->pl, t.pr = 2 - g->pr;
    t.pad = RT_PAD_ZERO;
    return t;
}

/* Bytes of worker scratch the route asks for g (0: it does not take g). */
static size_t scratch_of(const rt_conv_geom *g)
{
    if (!rt_conv_wino_ok(g, RT_ACT_NONE, -1))
        return 0;
    if (by_small_kernel(g))
        return rt_conv_winos_scratch_size(g);
    const int m = pick_tile(g);
    return wplan(g, m, chunk_max(g, m)).total * sizeof(float);
}

size_t rt_conv_wino_scratch_size(const rt_conv_geom *g)
{
    size_t most = scratch_of(g);
    if (g->pt <= 2 && g->pb <= 2 && g->pl <= 2 && g->pr <= 2) {
        const rt_conv_geom t = transposed(g);
        if (scratch_of(&t) > most)
            most = scratch_of(&t);
    }
    return most;
}

typedef struct {
    const rt_conv_geom *g;
    const float *x, *w, *b;
    rt_act act;
    float alpha;
    float *y;
    int n, add;
    const float *res; /* added before act (F(2x2) only), or NULL */
    float *u;         /* the packed U_f, astride floats apart */
    size_t astride;
    int m, nf;         /* F(m x m, 3x3), with nf = (m + 2)^2 frequencies */
    int th, tw, T, cs; /* tiles per column and row, in all, per chunk */
    atomic_int fail;
} wjob;

/* Up to 8 kernels at once: lane l of a v8d holds kernel l's value. */
typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

/* G v for columns v of 3 kernel taps: 4 values for F(2x2,3x3), 6 for F(4x4,3x3). */
static inline __attribute__((always_inline)) void gmul(int m, const v8d *v, v8d *o)
{
    if (m == 2) {
        o[0] = v[0];
        o[1] = 0.5 * (v[0] + v[1] + v[2]);
        o[2] = 0.5 * (v[0] - v[1] + v[2]);
        o[3] = v[2];
    } else {
        o[0] = v[0] / 4;
        o[1] = -(v[0] + v[1] + v[2]) / 6;
        o[2] = -(v[0] - v[1] + v[2]) / 6;
        o[3] = v[0] / 24 + v[1] / 12 + v[2] / 6;
        o[4] = v[0] / 24 - v[1] / 12 + v[2] / 6;
        o[5] = v[2];
    }
}

/* U = G k G^T for F(m x m, 3x3) of the kernels of output channels o0 .. o0 + cnt - 1
 * (cnt <= MR <= 8) and input channel ci (flipped when flip), frequency f's MR values to
 * d[f * astride] (rows from cnt on: zeros, of either sign), lane by lane in double with the
 * same arithmetic for every kernel, rounded once. Inlined with m a constant, so that the
 * loops unroll into straight code. */
static inline __attribute__((always_inline)) void
transform_panel(int m, const float *w, int c, int o0, int cnt, int MR, int ci, int flip,
                float *d, size_t astride)
{
    const int a = m + 2;
    v8d k[9], col[3], gcol[6], gk[6][3], out[6];
    for (int t = 0; t < 9; t++) {
        const float *s = w + ((size_t)o0 * c + ci) * 9 + (flip ? 8 - t : t);
        for (int l = 0; l < 8; l++)
            k[t][l] = l < cnt ? s[(size_t)l * c * 9] : 0.0;
    }
    for (int v = 0; v < 3; v++) { /* G k, column by column */
        for (int u = 0; u < 3; u++)
            col[u] = k[u * 3 + v];
        gmul(m, col, gcol);
        for (int r = 0; r < a; r++)
            gk[r][v] = gcol[r];
    }
    for (int r = 0; r < a; r++) { /* (G k) G^T, row by row */
        gmul(m, gk[r], out);
        for (int q = 0; q < a; q++) {
            const v8f f = __builtin_convertvector(out[q], v8f);
            float *dst = d + (size_t)(r * a + q) * astride;
            if (MR == 8) /* a move, not a call */
                memcpy(dst, &f, sizeof f);
            else
                memcpy(dst, &f, (size_t)MR * sizeof(float));
        }
    }
}

/* The panels [p0, p1) of MR output channels, every input channel, for F(m x m, 3x3): one
 * inlined transform_panel for each m. */
RT_CLONES static void transform_panels(int m, const float *w, int c, int oc, int MR, int p0,
                                       int p1, int flip, float *u, size_t astride)
{
    for (int p = p0; p < p1; p++)
        for (int ci = 0; ci < c; ci++) {
            const int cnt = oc - p * MR < MR ? oc - p * MR : MR;
            float *d = u + ((size_t)p * c + ci) * MR;
            if (m == 2)
                transform_panel(2, w, c, p * MR, cnt, MR, ci, flip, d, astride);
            else
                transform_panel(4, w, c, p * MR, cnt, MR, ci, flip, d, astride);
        }
}

void rt_conv_wino_weights(const rt_conv_geom *g, const float *w, int mr, int p0, int p1,
                          float *u, size_t astride)
{
    transform_panels(2, w, g->c, g->oc, mr, p0, p1, g->flip, u, astride);
}

/* U_f = (G k G^T)[f] of every kernel (k the correlation kernel: w, flipped when g->flip), in
 * double and rounded once, into the packed-A panels of MR output channels this worker owns;
 * rows past oc are zeros (their products are never stored). */
static void weight_task(void *arg, rt_worker *wk)
{
    wjob *j = arg;
    const rt_conv_geom *g = j->g;
    const int MR = rt_gemm_mr(), np = (g->oc + MR - 1) / MR;
    assert(MR <= 8); /* the lanes of a v8d (rt_gemm.c's MR: 8, 6 or 4) */
    int q0, q1;
    rt_split_range(np, rt_worker_count(wk), rt_worker_id(wk), &q0, &q1);
    transform_panels(j->m, j->w, g->c, g->oc, MR, q0, q1, g->flip, j->u, j->astride);
}

/* A segment of a chunk: tiles [tx0, tx0 + cnt) of tile row ty of image img, chunk columns
 * [j0, j0 + cnt). */
typedef struct {
    int img, ty, tx0, cnt, j0;
} segment;

/* The segment at chunk column j0 (tile t0 + j0 of the batch), at most nt - j0 tiles. */
static segment segment_at(const wjob *j, int t0, int j0, int nt)
{
    segment sg;
    const int per = j->th * j->tw, t = t0 + j0, r = t % per;
    sg.img = t / per, sg.ty = r / j->tw, sg.tx0 = r % j->tw, sg.j0 = j0;
    sg.cnt = j->tw - sg.tx0 < nt - j0 ? j->tw - sg.tx0 : nt - j0;
    return sg;
}

/* 8 tiles per vector: GNU C vectors, ymm registers in the AVX-512 and AVX2 copies. */
typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
/* unaligned loads and stores as macros: a function taking or returning a v8 would have
 * another ABI in the baseline build than in the AVX copies */
#define LD8(v, p) memcpy(&(v), (p), sizeof(v8))
#define ST8(p, v)                                                                          \
    do {                                                                                  \
        v8 st8_ = (v);                                                                    \
        memcpy((p), &st8_, sizeof st8_);                                                  \
    } while (0)

/* The a input rows of channel plane xc under a segment: rows iy0.., columns ix0.. of width
 * floats each, zeros outside the map. Copied by 8-float moves, not memcpy and memset: the
 * rows are a few dozen floats, and two library calls a row took longer than the transform
 * that reads them. The zeros go 8 floats at a time, up to 7 past a row's end: into the next
 * row before it is written, or past the last row into the caller's margin. */
RT_CLONES static void segment_rows(const float *xc, int h, int w, int a, int iy0, int ix0,
                                   int width, float *buf)
{
    const v8 zero = {0};
    for (int r = 0; r < a; r++) {
        float *d = buf + (size_t)r * width;
        const int iy = iy0 + r;
        for (int i = 0; i < width; i += 8) /* the borders; the map's part is written over */
            ST8(d + i, zero);
        if (iy < 0 || iy >= h)
            continue;
        int lo = ix0 < 0 ? -ix0 : 0, hi = w - ix0 < width ? w - ix0 : width;
        if (hi <= lo)
            continue;
        const float *s = xc + (long)iy * w + ix0;
        int i = lo;
        for (; i + 8 <= hi; i += 8) {
            v8 v;
            LD8(v, s + i);
            ST8(d + i, v);
        }
        for (; i < hi; i++)
            d[i] = s[i];
    }
}


/* The floats of a half's 16 (8 tiles, 2 floats each) that come from the half's own tile row
 * when n of its tiles are in it: the first 2 n. */
static const int half_mask[8][16] = {
#define M1(n) (2 * (n) > 0 ? -1 : 0), (2 * (n) > 1 ? -1 : 0)
#define MASK(n) {M1(n), M1((n) - 1), M1((n) - 2), M1((n) - 3), M1((n) - 4), M1((n) - 5),   \
                 M1((n) - 6), M1((n) - 7)}
    MASK(0), MASK(1), MASK(2), MASK(3), MASK(4), MASK(5), MASK(6), MASK(7),
#undef MASK
#undef M1
};

/* x: the 16 floats of a half's row r (columns 2t, 2t + 1 of its tile t); y: the 16 from 2
 * columns on (2t + 2, 2t + 3). */
#define HALF_LOADS(x, y, G, h, buf, r, S)                                                  \
    do {                                                                                  \
        const int n_ = (G).n[h];                                                          \
        if (n_ < 0) { /* tile by tile */                                                  \
            float fx_[16], fy_[16];                                                       \
            for (int l_ = 0; l_ < 8; l_++) {                                              \
                const float *p_ = (buf) + (G).lane[8 * (h) + l_] + (r) * (S);             \
                fx_[2 * l_] = p_[0], fx_[2 * l_ + 1] = p_[1];                             \
                fy_[2 * l_] = p_[2], fy_[2 * l_ + 1] = p_[3];                             \
            }                                                                             \
            LD16(x, fx_);                                                                 \
            LD16(y, fy_);                                                                 \
            break;                                                                        \
        }                                                                                 \
        const float *p_ = (buf) + (G).a[h] + (r) * (S);                                   \
        LD16(x, p_);                                                                      \
        LD16(y, p_ + 2);                                                                  \
        if (n_ < 8) {                                                                     \
            const float *q_ = (buf) + (G).b[h] + (r) * (S);                               \
            v16 xb_, yb_;                                                                 \
            v16i m_;                                                                      \
            LD16(xb_, q_);                                                                \
            LD16(yb_, q_ + 2);                                                            \
            memcpy(&m_, half_mask[n_], sizeof m_);                                        \
            x = (v16)((m_ & (v16i)x) | (~m_ & (v16i)xb_));                                \
            y = (v16)((m_ & (v16i)y) | (~m_ & (v16i)yb_));                                \
        }                                                                                 \
    } while (0)

#define EVEN16(a, b)                                                                       \
    __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define ODD16(a, b)                                                                        \
    __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)

/* V = B^T d B of the chunk columns [0, nt) of one input channel, 16 tiles per vector:
 * group k's tiles are where gr[k] says in the zero-bordered rows at buf (S floats apart),
 * and frequency f of column c goes to dst[f * fstride + (c / NR) * pstride + c % NR] (the
 * packed-B panels; NR a multiple of 8). Columns past the chunk's nt but in its last panel
 * get values that the caller zeroes. */
RT_CLONES static void input_groups2(const float *restrict buf, size_t S, const wgroup *gr,
                                    int nt, float *restrict dst, size_t pstride, int NR,
                                    size_t fstride)
{
    for (int k = 0; k < (nt + 15) / 16; k++) {
        v16 d[4][4], t[4][4];
        for (int r = 0; r < 4; r++) {
            v16 x0, y0, x1, y1;
            HALF_LOADS(x0, y0, gr[k], 0, buf, r, S);
            HALF_LOADS(x1, y1, gr[k], 1, buf, r, S);
            d[r][0] = EVEN16(x0, x1);
            d[r][1] = ODD16(x0, x1);
            d[r][2] = EVEN16(y0, y1);
            d[r][3] = ODD16(y0, y1);
        }
        for (int q = 0; q < 4; q++) { /* B^T d: rows */
            t[0][q] = d[0][q] - d[2][q];
            t[1][q] = d[1][q] + d[2][q];
            t[2][q] = d[2][q] - d[1][q];
            t[3][q] = d[1][q] - d[3][q];
        }
        const int c = 16 * k;
        float *o = dst + (size_t)(c / NR) * pstride + c % NR;
        float *o2 = NR >= 16 ? o + 8 : dst + (size_t)((c + 8) / NR) * pstride + (c + 8) % NR;
        for (int r = 0; r < 4; r++) { /* (B^T d) B: columns, frequency 4 r + q */
            v16 v[4];
            v[0] = t[r][0] - t[r][2];
            v[1] = t[r][1] + t[r][2];
            v[2] = t[r][2] - t[r][1];
            v[3] = t[r][1] - t[r][3];
            for (int q = 0; q < 4; q++) {
                const size_t f = (size_t)(4 * r + q) * fstride;
                if (NR >= 16) {
                    ST16(o + f, v[q]);
                } else { /* 8-column panels: the halves apart */
                    v8 lo = __builtin_shufflevector(v[q], v[q], 0, 1, 2, 3, 4, 5, 6, 7);
                    v8 hi = __builtin_shufflevector(v[q], v[q], 8, 9, 10, 11, 12, 13, 14, 15);
                    ST8(o + f, lo);
                    if (c + 8 < nt) /* (a panel past the chunk's last is not there) */
                        ST8(o2 + f, hi);
                }
            }
        }
    }
}

static inline float act1(float v, int act, float alpha)
{
    return !act || v > 0.0f ? v : act == 2 ? alpha * v : 0.0f;
}

/* Elements q, q + 4, q + 8, ... of the 32 floats a0..a3: column q of 8 tiles 4 apart. */
#define EVERY4(a0, a1, a2, a3, q)                                                          \
    __builtin_shufflevector(                                                              \
        __builtin_shufflevector(a0, a1, q, q + 4, q + 8, q + 12, q, q + 4, q + 8, q + 12),     \
        __builtin_shufflevector(a2, a3, q, q + 4, q + 8, q + 12, q, q + 4, q + 8, q + 12),     \
        0, 1, 2, 3, 8, 9, 10, 11)

/* B^T x for F(4x4,3x3): the 6 points 0, +-1, +-2 and infinity. */
#define BT6(x, t)                                                                          \
    do {                                                                                  \
        v8 p_ = x[4] - 4.0f * x[2], q_ = x[3] - 4.0f * x[1];                              \
        v8 r_ = x[4] - x[2], s_ = 2.0f * (x[3] - x[1]);                                   \
        t[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];                                          \
        t[1] = p_ + q_;                                                                   \
        t[2] = p_ - q_;                                                                   \
        t[3] = r_ + s_;                                                                   \
        t[4] = r_ - s_;                                                                   \
        t[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];                                          \
    } while (0)

/* V = B^T d B for F(4x4,3x3) of tiles [k0, k1) of a segment whose 6 input rows are buf (ld
 * floats apart), frequency f of tile k to dst[f * fstride + k - k0]: tile k's window from
 * column 4k (each row readable to column 4 * k1 + 32), 36 frequencies, 8 tiles per vector. */
RT_CLONES static void input_transform4(const float *restrict buf, size_t ld, int k0, int k1,
                                       float *restrict dst, size_t fstride)
{
    for (int k = k0; k < k1; k += 8) {
        v8 d[6][6], t[6][6], col[6], tc[6];
        for (int r = 0; r < 6; r++) {
            const float *b = buf + (size_t)r * ld + 4 * k;
            v8 a0, a1, a2, a3, e0, e1, e2, e3;
            LD8(a0, b), LD8(a1, b + 8), LD8(a2, b + 16), LD8(a3, b + 24);
            LD8(e0, b + 4), LD8(e1, b + 12), LD8(e2, b + 20), LD8(e3, b + 28);
            d[r][0] = EVERY4(a0, a1, a2, a3, 0);
            d[r][1] = EVERY4(a0, a1, a2, a3, 1);
            d[r][2] = EVERY4(a0, a1, a2, a3, 2);
            d[r][3] = EVERY4(a0, a1, a2, a3, 3);
            d[r][4] = EVERY4(e0, e1, e2, e3, 0);
            d[r][5] = EVERY4(e0, e1, e2, e3, 1);
        }
        for (int q = 0; q < 6; q++) { /* B^T d: rows */
            for (int r = 0; r < 6; r++)
                col[r] = d[r][q];
            BT6(col, tc);
            for (int r = 0; r < 6; r++)
                t[r][q] = tc[r];
        }
        float *o = dst + (k - k0);
        for (int r = 0; r < 6; r++) { /* (B^T d) B: columns */
            BT6(t[r], tc);
            for (int q = 0; q < 6; q++) {
                float *of = o + (size_t)(r * 6 + q) * fstride;
                if (k + 8 <= k1)
                    ST8(of, tc[q]);
                else
                    for (int l = 0; l < k1 - k; l++)
                        of[l] = tc[q][l];
            }
        }
    }
}

/* A^T x for F(4x4,3x3). */
#define AT6(x, y)                                                                          \
    do {                                                                                  \
        v8 p_ = x[1] + x[2], q_ = x[1] - x[2], r_ = x[3] + x[4], s_ = x[3] - x[4];        \
        y[0] = x[0] + p_ + r_;                                                            \
        y[1] = q_ + 2.0f * s_;                                                            \
        y[2] = p_ + 4.0f * r_;                                                            \
        y[3] = q_ + 8.0f * s_ + x[5];                                                     \
    } while (0)

/* Y = A^T M A for F(4x4,3x3) of a segment's cnt tiles for one output channel (frequency f
 * of tile k at m[f * fs + k]), with bias and activation: four output rows r[0..3] of 4 * cnt
 * floats (writable to 4 * cnt + 32). */
RT_CLONES static void output_transform4(const float *restrict m, size_t fs, int cnt, float bias,
                                        int act, float alpha, float *restrict *r)
{
    const v8 zero = {0}, bv = zero + bias;
    for (int k = 0; k < cnt; k += 8) {
        v8 x[6], s[4][6], y[4][4], yc[4];
        for (int q = 0; q < 6; q++) { /* A^T M: rows */
            for (int i = 0; i < 6; i++)
                LD8(x[i], m + (size_t)(i * 6 + q) * fs + k);
            AT6(x, yc);
            for (int i = 0; i < 4; i++)
                s[i][q] = yc[i];
        }
        for (int i = 0; i < 4; i++) { /* (A^T M) A: columns, bias, activation */
            AT6(s[i], yc);
            for (int c = 0; c < 4; c++) {
                v8 v = yc[c] + bv;
                VACT(v8, v8i, v, act, alpha);
                y[i][c] = v;
            }
            v8 u0 = __builtin_shufflevector(y[i][0], y[i][1], 0, 8, 1, 9, 2, 10, 3, 11);
            v8 u1 = __builtin_shufflevector(y[i][0], y[i][1], 4, 12, 5, 13, 6, 14, 7, 15);
            v8 w0 = __builtin_shufflevector(y[i][2], y[i][3], 0, 8, 1, 9, 2, 10, 3, 11);
            v8 w1 = __builtin_shufflevector(y[i][2], y[i][3], 4, 12, 5, 13, 6, 14, 7, 15);
            float *o = r[i] + 4 * k;
            ST8(o, __builtin_shufflevector(u0, w0, 0, 1, 8, 9, 2, 3, 10, 11));
            ST8(o + 8, __builtin_shufflevector(u0, w0, 4, 5, 12, 13, 6, 7, 14, 15));
            ST8(o + 16, __builtin_shufflevector(u1, w1, 0, 1, 8, 9, 2, 3, 10, 11));
            ST8(o + 24, __builtin_shufflevector(u1, w1, 4, 5, 12, 13, 6, 7, 14, 15));
        }
    }
}

/* d[0:n) = s[0:n), or += when add. */
static void put_row(float *d, const float *s, int n, int add)
{
    if (add)
        for (int i = 0; i < n; i++)
            d[i] += s[i];
    else
        memcpy(d, s, (size_t)n * sizeof *d);
}

/* Y = A^T M A of the chunk's nt columns for one output channel (frequency f of column c at
 * m[f * fs + c], readable to c = nt + 15), 16 tiles per vector, written straight into the
 * output plane y (res: the residual's plane, or NULL) where tab says, each value being the
 * transform plus bias (+ res), then the activation (act 1 relu, 2 leaky relu), stored or,
 * when add, added to what y holds. */
RT_CLONES static void output_groups2(const float *restrict m, size_t fs, int nt,
                                     const wout *tab, float bias, int act, float alpha,
                                     const float *res, int add, size_t ld, float *y)
{
    const v16 bv = (v16){0} + bias;
    for (int k = 0; k < (nt + 15) / 16; k++) {
        v16 s[2][4], t[2][2];
        const int c = 16 * k;
        for (int q = 0; q < 4; q++) { /* A^T M: rows */
            v16 m0, m1, m2, m3;
            LD16(m0, m + (size_t)q * fs + c), LD16(m1, m + (size_t)(4 + q) * fs + c);
            LD16(m2, m + (size_t)(8 + q) * fs + c), LD16(m3, m + (size_t)(12 + q) * fs + c);
            s[0][q] = m0 + m1 + m2;
            s[1][q] = m1 - m2 - m3;
        }
        for (int r = 0; r < 2; r++) { /* (A^T M) A: columns, bias */
            t[r][0] = s[r][0] + s[r][1] + s[r][2] + bv;
            t[r][1] = s[r][1] - s[r][2] - s[r][3] + bv;
        }
        for (int h = 0; h < 2; h++) {
            const wout *w = &tab[2 * k + h];
            for (int r = 0; r < 2; r++) {
                /* the half's 8 tiles, even and odd columns side by side: 16 columns */
                const v16 u = h ? __builtin_shufflevector(t[r][0], t[r][1], 8, 24, 9, 25, 10,
                                                          26, 11, 27, 12, 28, 13, 29, 14, 30,
                                                          15, 31)
                                : __builtin_shufflevector(t[r][0], t[r][1], 0, 16, 1, 17, 2,
                                                          18, 3, 19, 4, 20, 5, 21, 6, 22, 7,
                                                          23);
                for (int i = 0; i < w->nrun; i++) {
                    if (r >= w->rows[i])
                        continue;
                    const size_t at = (size_t)w->y[i] + (size_t)r * ld;
                    float *o = y + at;
                    const float *rs = res ? res + at : NULL;
                    const int ln = w->lane[i], nc = w->cols[i];
                    if (ln == 0 && nc == 16) {
                        FINISH(v16, v16i, LD16, ST16, u, rs, act, alpha, add, o);
                    } else if (nc == 8 && (ln == 0 || ln == 8)) {
                        const v8 u8 = ln ? __builtin_shufflevector(u, u, 8, 9, 10, 11, 12, 13,
                                                                   14, 15)
                                         : __builtin_shufflevector(u, u, 0, 1, 2, 3, 4, 5,
                                                                   6, 7);
                        FINISH(v8, v8i, LD8, ST8, u8, rs, act, alpha, add, o);
                    } else { /* a run cut by the map's edge, or tiny maps */
                        float tu[16];
                        ST16(tu, u);
                        for (int l = 0; l < nc; l++) {
                            float v = act1(rs ? tu[ln + l] + rs[l] : tu[ln + l], act, alpha);
                            o[l] = add ? o[l] + v : v;
                        }
                    }
                }
            }
        }
    }
}

/* The tile of chunk column col (tile t0 + col of the batch): its image, tile row and column. */
static void tile_at(const wjob *j, int t, int *img, int *ty, int *tx)
{
    const int per = j->th * j->tw, r = t % per;
    *img = t / per, *ty = r / j->tw, *tx = r % j->tw;
}

/* V of a chunk of nt tiles from t0 into the packed panels vp, for F(2x2,3x3). The input rows
 * under the chunk's tiles, image by image, are copied once per channel into zero-bordered
 * rows of S = 2 tw + 2 floats (the scratch at buf: 16 floats of margin, the rows, S + 32
 * floats of margin, then the group table), so that every tile's 4x4 window is read in
 * place, and 16 chunk columns go into a vector, as two halves of 8 tiles, even where a tile
 * row has fewer than 8 tiles (maps 8 or 12 wide) or its tiles are split between halves. */
static void input_chunk2(const wjob *j, int t0, int nt, float *buf, float *vp, size_t fstride)
{
    const rt_conv_geom *g = j->g;
    const int NR = rt_gemm_nr(), S = 2 * j->tw + 2;
    const long xsz = (long)g->c * g->h * g->w, hw = (long)g->h * g->w;
    int img0, ty0, tx0, img1, ty1, tx1;
    tile_at(j, t0, &img0, &ty0, &tx0);
    tile_at(j, t0 + nt - 1, &img1, &ty1, &tx1);
    /* the chunk's part of image i: its tile rows first(i)..last(i), 2 (last - first) + 4
     * input rows from the padded map's row 2 first(i), stored from row part(i) on */
#define FIRST(i) ((i) == img0 ? ty0 : 0)
#define LAST(i) ((i) == img1 ? ty1 : j->th - 1)
#define PART(i) ((i) == img0 ? 0 : 2 * (LAST(img0) - ty0) + 4 + ((i) - img0 - 1) * (2 * j->th + 2))
    float *rows = buf + 16;
    const int rowsum = PART(img1) + 2 * (ty1 - FIRST(img1)) + 4;
    wgroup *gr = (wgroup *)(buf + up16(16 + (size_t)rowsum * S + S + 32));
#define AT(img, ty, tx) ((PART(img) + 2 * ((ty) - FIRST(img))) * S + 2 * (tx))
    const int ng = (nt + 15) / 16;
    for (int k = 0; k < ng; k++)
        for (int h = 0; h < 2; h++) {
            const int col = 16 * k + 8 * h;
            int img, ty, tx;
            gr[k].a[h] = gr[k].b[h] = 0, gr[k].n[h] = 8;
            if (col >= nt)
                continue; /* past the chunk: any floats of the rows */
            tile_at(j, t0 + col, &img, &ty, &tx);
            gr[k].a[h] = AT(img, ty, tx);
            const int n = j->tw - tx;
            if (n >= 8 || col + n >= nt)
                continue; /* in one tile row, or the rest past the chunk */
            if (n + j->tw >= 8 || col + n + j->tw >= nt) { /* the rest: the next tile row */
                tile_at(j, t0 + col + n, &img, &ty, &tx);
                gr[k].b[h] = AT(img, ty, tx) - 2 * n;
                gr[k].n[h] = n;
                continue;
            }
            gr[k].n[h] = -1; /* three tile rows or more: tile by tile */
            for (int l = 0; l < 8; l++) {
                gr[k].lane[8 * h + l] = 0;
                if (col + l < nt) {
                    tile_at(j, t0 + col + l, &img, &ty, &tx);
                    gr[k].lane[8 * h + l] = AT(img, ty, tx);
                }
            }
        }
#undef AT
    for (int ci = 0; ci < g->c; ci++) {
        float *r = rows;
        for (int i = img0; i <= img1; i++) { /* the channel's rows under the chunk */
            const int nr = 2 * (LAST(i) - FIRST(i)) + 4;
            segment_rows(j->x + i * xsz + ci * hw, g->h, g->w, nr, 2 * FIRST(i) - g->pt,
                         -g->pl, S, r);
            r += (size_t)nr * S;
        }
        input_groups2(rows, (size_t)S, gr, nt, vp + (size_t)ci * NR, (size_t)g->c * NR, NR,
                      fstride);
    }
#undef FIRST
#undef LAST
#undef PART
}

/* Y of a chunk of nt tiles from t0, from the GEMMs' M (frequency f of output channel o's
 * column c at m[f * fs + o * nt + c]), into the output (F(2x2,3x3)); tab: scratch for the
 * chunk's table of where each half of 16 columns goes. */
static void output_chunk2(const wjob *j, int t0, int nt, wout *tab, const float *m, size_t fs,
                          int act)
{
    const rt_conv_geom *g = j->g;
    const long P = (long)g->oh * g->ow, ysz = (long)g->oc * P;
    for (int k = 0; k < (nt + 15) / 16; k++)
        for (int h = 0; h < 2; h++) {
            wout *w = &tab[2 * k + h];
            const int col = 16 * k + 8 * h;
            w->nrun = 0;
            for (int l = 0; l < 8 && col + l < nt;) { /* runs of tiles in one tile row */
                int img, ty, tx;
                tile_at(j, t0 + col + l, &img, &ty, &tx);
                int len = 8 - l;
                if (len > j->tw - tx)
                    len = j->tw - tx;
                if (len > nt - col - l)
                    len = nt - col - l;
                const int i = w->nrun++;
                w->y[i] = img * ysz + (long)2 * ty * g->ow + 2 * tx;
                w->lane[i] = 2 * l;
                w->cols[i] = g->ow - 2 * tx < 2 * len ? g->ow - 2 * tx : 2 * len;
                w->rows[i] = g->oh - 2 * ty < 2 ? g->oh - 2 * ty : 2;
                l += len;
            }
        }
    for (int o = 0; o < g->oc; o++)
        output_groups2(m + (size_t)o * nt, fs, nt, tab, j->b ? j->b[o] : 0.0f, act, j->alpha,
                       j->res ? j->res + o * P : NULL, j->add, (size_t)g->ow, j->y + o * P);
}

/* V of a chunk of nt tiles from t0 into the packed panels vp, for F(4x4,3x3): a tile row's
 * segment at a time, its 6 input rows of each channel copied into rows (zero-bordered),
 * 8 tiles per vector. */
static void input_chunk4(const wjob *j, int t0, int nt, float *rows, float *vp, size_t fstride)
{
    const rt_conv_geom *g = j->g;
    const int NR = rt_gemm_nr(), M = 4, A = 6;
    const long xsz = (long)g->c * g->h * g->w, hw = (long)g->h * g->w;
    for (int j0 = 0; j0 < nt;) { /* segment by segment, channel by channel */
        const segment sg = segment_at(j, t0, j0, nt);
        const int width = M * ((sg.cnt + 7) / 8 * 8) + 8; /* + the vectors' slack */
        const float *xi = j->x + sg.img * xsz;
        for (int ci = 0; ci < g->c; ci++) {
            segment_rows(xi + ci * hw, g->h, g->w, A, M * sg.ty - g->pt,
                         M * sg.tx0 - g->pl, width, rows);
            for (int k0 = 0; k0 < sg.cnt;) { /* the parts in one packed panel each */
                const int jj = sg.j0 + k0, in = NR - jj % NR;
                const int k1 = sg.cnt - k0 < in ? sg.cnt : k0 + in;
                float *dst = vp + (size_t)(jj / NR) * g->c * NR + (size_t)ci * NR + jj % NR;
                input_transform4(rows, (size_t)width, k0, k1, dst, fstride);
                k0 = k1;
            }
        }
        j0 += sg.cnt;
    }
}

/* Y of a chunk of nt tiles from t0 (m laid out as for output_chunk2), for F(4x4,3x3): a
 * segment's 4 output rows of each channel through rows, then into the output. */
static void output_chunk4(const wjob *j, int t0, int nt, float *rows, const float *m,
                          size_t fs, int act)
{
    const rt_conv_geom *g = j->g;
    const int M = 4;
    const long P = (long)g->oh * g->ow, ysz = (long)g->oc * P;
    for (int j0 = 0; j0 < nt;) { /* segment by segment, channel by channel */
        const segment sg = segment_at(j, t0, j0, nt);
        const int oy = M * sg.ty, ox = M * sg.tx0, span = M * ((sg.cnt + 7) / 8 * 8);
        const int nx = g->ow - ox < M * sg.cnt ? g->ow - ox : M * sg.cnt;
        const int nrows = g->oh - oy < M ? g->oh - oy : M;
        float *r[4] = {rows, rows + span, rows + 2 * span, rows + 3 * span};
        for (int o = 0; o < g->oc; o++) {
            const float *mo = m + (size_t)o * nt + sg.j0, bias = j->b ? j->b[o] : 0.0f;
            const long at = sg.img * ysz + o * P + (long)oy * g->ow + ox;
            output_transform4(mo, fs, sg.cnt, bias, act, j->alpha, r);
            for (int i = 0; i < nrows; i++)
                put_row(j->y + at + (long)i * g->ow, r[i], nx, j->add);
        }
        j0 += sg.cnt;
    }
}

static void chunk_task(void *arg, rt_worker *wk)
{
    wjob *j = arg;
    const rt_conv_geom *g = j->g;
    const int NR = rt_gemm_nr(), nchunks = (j->T + j->cs - 1) / j->cs;
    int c0, c1;
    rt_split_range(nchunks, rt_worker_count(wk), rt_worker_id(wk), &c0, &c1);
    if (c0 >= c1)
        return;
    const int M = j->m, NF = j->nf;
    const wlayout l = wplan(g, M, j->cs);
    float *scr = rt_worker_scratch(wk, l.total * sizeof(float));
    if (!scr) {
        atomic_store(&j->fail, 1);
        return;
    }
    float *vp = scr + l.vp, *m = scr + l.m, *rows = scr + l.rows;
    const int act = j->act == RT_ACT_RELU ? 1 : j->act == RT_ACT_LEAKYRELU ? 2 : 0;
    for (int ch = c0; ch < c1; ch++) {
        const int t0 = ch * j->cs, nt = j->T - t0 < j->cs ? j->T - t0 : j->cs;
        const size_t fstride = rt_gemm_packed_b_floats(g->c, nt) + SKEW;
        const size_t fs = (size_t)g->oc * nt + SKEW;
        if (M == 2)
            input_chunk2(j, t0, nt, rows, vp, fstride);
        else
            input_chunk4(j, t0, nt, rows, vp, fstride);
        if (nt % NR) /* the last panel's columns past the chunk: zeros, never stored */
            for (int f = 0; f < NF; f++)
                for (int ci = 0; ci < g->c; ci++)
                    memset(vp + (size_t)f * fstride + (size_t)(nt / NR) * g->c * NR +
                               (size_t)ci * NR + nt % NR,
                           0, (size_t)(NR - nt % NR) * sizeof *vp);
        for (int f = 0; f < NF; f++)
            rt_gemm_packed(g->oc, nt, g->c, j->u + (size_t)f * j->astride,
                           vp + (size_t)f * fstride, 0, m + (size_t)f * fs, nt);
        if (M == 2)
            output_chunk2(j, t0, nt, (wout *)rows, m, fs, act);
        else
            output_chunk4(j, t0, nt, rows, m, fs, act);
    }
}

int rt_conv_wino_forward(const rt_conv_geom *g, const float *x, const float *w, const float *b,
                         const float *res, rt_act act, float alpha, float *y, int add, int n,
                         rt_threads *tp)
{
    const int M = pick_tile(g), NF = (M + 2) * (M + 2);
    if (res && M != 2) { /* F(4x4)'s rows go through a buffer: the add after them */
        if (rt_conv_wino_forward(g, x, w, b, NULL, RT_ACT_NONE, 0.0f, y, add, n, tp) != 0)
            return -1;
        rt_add_act_forward_mt(y, res, act, alpha, y, (size_t)n * g->oc * g->oh * g->ow, tp);
        return 0;
    }
    if (by_small_kernel(g)) /* few channels: rt_conv_wino_small.c */
        return rt_conv_winos_forward(g, x, w, b, res, act, alpha, y, add, n, tp);
    const size_t astride = rt_gemm_packed_a_floats(g->oc, g->c) + SKEW; /* off 4 KiB sets */
    float *u = malloc((size_t)NF * astride * sizeof *u);
    if (!u)
        return -1;
    wjob j = {g, x, w, b, act, alpha, y, n, add, res, u, astride, M, NF, 0, 0, 0, 0, 0};
    j.th = (g->oh + M - 1) / M, j.tw = (g->ow + M - 1) / M;
    j.T = n * j.th * j.tw;
    /* chunks of at most chunk_max tiles, at least one per worker */
    const int NR = rt_gemm_nr(), nw = rt_threads_count(tp) > 0 ? rt_threads_count(tp) : 1;
    int cs = chunk_max(g, M), even = (j.T + nw - 1) / nw;
    even = (even + NR - 1) / NR * NR;
    j.cs = even < cs ? even : cs;
    rt_threads_run(tp, weight_task, &j);
    rt_threads_run(tp, chunk_task, &j);
    free(u);
    return atomic_load(&j.fail) ? -1 : 0;
}
