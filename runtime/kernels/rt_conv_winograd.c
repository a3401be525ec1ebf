/*
 * rt_conv_winograd.c - 3x3 stride-1 zero-padded convolutions by Winograd F(2x2,3x3): 16
 * multiplications per 2x2 output tile and channel pair instead of 36, as 16 GEMMs (or
 * F(4x4,3x3) on request, 36 GEMMs for 4x4 tiles: see pick_tile).
 *
 * The weights are transformed once per call (U = G g G^T, in double, rounded once) straight
 * into the GEMM's packed-A layout, one [oc x c] matrix per frequency. The output tiles of the
 * whole batch are numbered one after the other and cut into chunks; a worker takes whole
 * chunks and for each one transforms the input tiles (V = B^T d B into the packed-B layout,
 * a tile row's segment at a time from a zero-bordered copy of its input rows, 8 tiles per
 * vector), multiplies each frequency ([oc x c] x [c x tiles]) and transforms back
 * (Y = A^T M A, whole output rows of the segment) with the bias and relu / leaky relu. A tile's result depends on no other
 * tile, and a GEMM column on no other column, so the bits do not depend on the chunks or on
 * the number of workers. Used by rt_conv2d_forward and by the input gradient (a stride-1
 * correlation of the padded dZ with the flipped kernel) where rt_conv_wino_ok says so.
 */
#include "rt_conv_int.h"
#include "rt_gemm_int.h"
#include "rt_simd.h"

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
/* Where the route pays (measured at batch 32, 2 threads, AVX-512; see faster()): at least
 * 32 channels each way on maps at least 16 wide, and 64 each way unless the map is 48 wide
 * or more. Below that the transforms and the small GEMMs cost more than the multiplications
 * they save (resnet_bn32's 16 channels at 32x32: 0.65 -> 0.83 ms forward; 32 at 16x16: 0.69
 * -> 0.74; 64 at 8x8, half-empty vectors: 0.68 -> 0.87). Any channel count works. */
#define MIN_C 32
#define MIN_W 16
#define WIDE_C 64
#define WIDE_W 48
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

/* Whether the route is faster than the implicit GEMM for g (the measurements above). */
static int faster(const rt_conv_geom *g)
{
    const int c = g->c < g->oc ? g->c : g->oc, w = g->ow;
    return c >= MIN_C && w >= MIN_W && (c >= WIDE_C || w >= WIDE_W);
}

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
    if (on == 1 && !faster(g))
        return 0;
    /* tile numbers and offsets in ints and longs */
    double tiles = (double)n * ((g->oh + 1) / 2) * ((g->ow + 1) / 2);
    return tiles < (double)INT_MAX / 2;
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

/* Floats of a worker's scratch for chunks of cs tiles of m x m outputs: the packed V_f
 * (fstride floats apart), the GEMMs' M_f ([oc][ldm] each, SKEW apart), the rows of a segment
 * (m + 2 input rows of up to m * cs + 8 floats, or m output rows). */
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
    l.total = l.rows + up16((size_t)(m + 2) * (m * cs + 8) + 16);
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

size_t rt_conv_wino_scratch_size(const rt_conv_geom *g)
{
    size_t most = 0;
    if (rt_conv_wino_ok(g, RT_ACT_NONE, 1))
        most = wplan(g, pick_tile(g), chunk_max(g, pick_tile(g))).total;
    if (g->pt <= 2 && g->pb <= 2 && g->pl <= 2 && g->pr <= 2) {
        rt_conv_geom t = transposed(g);
        const int m = pick_tile(&t);
        if (rt_conv_wino_ok(&t, RT_ACT_NONE, 1) && wplan(&t, m, chunk_max(&t, m)).total > most)
            most = wplan(&t, m, chunk_max(&t, m)).total;
    }
    return most * sizeof(float);
}

typedef struct {
    const rt_conv_geom *g;
    const float *x, *w, *b;
    rt_act act;
    float alpha;
    float *y;
    int n, add;
    float *u;       /* the packed U_f, astride floats apart */
    size_t astride;
    int m, nf;         /* F(m x m, 3x3), with nf = (m + 2)^2 frequencies */
    int th, tw, T, cs; /* tiles per column and row, in all, per chunk */
    atomic_int fail;
} wjob;

/* G v for a column v of 3 kernel taps: 4 values for F(2x2,3x3), 6 for F(4x4,3x3). */
static void gmul(int m, const double *v, double *o)
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

/* U_f = (G k G^T)[f] of every kernel (k the correlation kernel: w, flipped when g->flip), in
 * double and rounded once, into the packed-A panels of MR output channels this worker owns;
 * rows past oc are zeros. */
static void weight_task(void *arg, rt_worker *wk)
{
    wjob *j = arg;
    const rt_conv_geom *g = j->g;
    const int MR = rt_gemm_mr(), c = g->c, np = (g->oc + MR - 1) / MR, a = j->m + 2;
    int q0, q1;
    rt_split_range(np, rt_worker_count(wk), rt_worker_id(wk), &q0, &q1);
    for (int o = q0 * MR; o < q1 * MR; o++)
        for (int ci = 0; ci < c; ci++) {
            float *d = j->u + (size_t)(o / MR) * c * MR + (size_t)ci * MR + o % MR;
            if (o >= g->oc) {
                for (int f = 0; f < j->nf; f++)
                    d[f * j->astride] = 0.0f;
                continue;
            }
            const float *s = j->w + ((size_t)o * c + ci) * 9;
            double col[3], gcol[6], gk[6][3], row[3], out[6];
            for (int v = 0; v < 3; v++) { /* G k, column by column */
                for (int u = 0; u < 3; u++)
                    col[u] = g->flip ? s[(2 - u) * 3 + 2 - v] : s[u * 3 + v];
                gmul(j->m, col, gcol);
                for (int r = 0; r < a; r++)
                    gk[r][v] = gcol[r];
            }
            for (int r = 0; r < a; r++) { /* (G k) G^T, row by row */
                for (int v = 0; v < 3; v++)
                    row[v] = gk[r][v];
                gmul(j->m, row, out);
                for (int q = 0; q < a; q++)
                    d[(size_t)(r * a + q) * j->astride] = (float)out[q];
            }
        }
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

/* The a input rows of channel plane xc under a segment: rows iy0.., columns ix0.. of width
 * floats each, zeros outside the map. */
static void segment_rows(const float *xc, int h, int w, int a, int iy0, int ix0, int width,
                         float *buf)
{
    for (int r = 0; r < a; r++) {
        float *d = buf + (size_t)r * width;
        const int iy = iy0 + r;
        if (iy < 0 || iy >= h) {
            memset(d, 0, (size_t)width * sizeof *d);
            continue;
        }
        int lo = ix0 < 0 ? -ix0 : 0, hi = w - ix0 < width ? w - ix0 : width;
        if (lo > width)
            lo = width;
        if (hi < lo)
            hi = lo;
        memset(d, 0, (size_t)lo * sizeof *d);
        memcpy(d + lo, xc + (long)iy * w + ix0 + lo, (size_t)(hi - lo) * sizeof *d);
        memset(d + hi, 0, (size_t)(width - hi) * sizeof *d);
    }
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

/* V = B^T d B of tiles [k0, k1) of a segment whose 4 input rows are buf (ld floats apart;
 * tile k's window starts at column 2k; each row readable to column 2 * k1 + 16), frequency f
 * of tile k to dst[f * fstride + k - k0]. Eight tiles per vector: row r's columns 2l + q of
 * the 8 tiles are the even and odd elements of two pairs of loads. */
RT_CLONES static void input_transform2(const float *restrict buf, size_t ld, int k0, int k1,
                                      float *restrict dst, size_t fstride)
{
    for (int k = k0; k < k1; k += 8) {
        v8 d[4][4], t[4][4], v[16];
        for (int r = 0; r < 4; r++) {
            const float *b = buf + (size_t)r * ld + 2 * k;
            v8 a0, a1, c0, c1;
            LD8(a0, b), LD8(a1, b + 8), LD8(c0, b + 2), LD8(c1, b + 10);
            d[r][0] = __builtin_shufflevector(a0, a1, 0, 2, 4, 6, 8, 10, 12, 14);
            d[r][1] = __builtin_shufflevector(a0, a1, 1, 3, 5, 7, 9, 11, 13, 15);
            d[r][2] = __builtin_shufflevector(c0, c1, 0, 2, 4, 6, 8, 10, 12, 14);
            d[r][3] = __builtin_shufflevector(c0, c1, 1, 3, 5, 7, 9, 11, 13, 15);
        }
        for (int q = 0; q < 4; q++) { /* B^T d: rows */
            t[0][q] = d[0][q] - d[2][q];
            t[1][q] = d[1][q] + d[2][q];
            t[2][q] = d[2][q] - d[1][q];
            t[3][q] = d[1][q] - d[3][q];
        }
        for (int r = 0; r < 4; r++) { /* (B^T d) B: columns */
            v[r * 4 + 0] = t[r][0] - t[r][2];
            v[r * 4 + 1] = t[r][1] + t[r][2];
            v[r * 4 + 2] = t[r][2] - t[r][1];
            v[r * 4 + 3] = t[r][1] - t[r][3];
        }
        float *o = dst + (k - k0);
        if (k + 8 <= k1) {
            for (int f = 0; f < 16; f++)
                ST8(o + (size_t)f * fstride, v[f]);
        } else {
            for (int f = 0; f < 16; f++)
                for (int l = 0; l < k1 - k; l++)
                    o[(size_t)f * fstride + l] = v[f][l];
        }
    }
}

/* Y = A^T M A of a segment's cnt tiles for one output channel (frequency f of tile k at
 * m[f * fs + k], readable to k = cnt + 7), then bias and activation (act 1 relu, 2 leaky
 * relu), as two output rows r0, r1 of 2 * cnt floats (writable to 2 * cnt + 16). */
RT_CLONES static void output_transform2(const float *restrict m, size_t fs, int cnt, float bias,
                                       int act, float alpha, float *restrict r0,
                                       float *restrict r1)
{
    const v8 zero = {0}, bv = zero + bias, av = zero + alpha;
    for (int k = 0; k < cnt; k += 8) {
        v8 s[2][4], y[2][2];
        for (int q = 0; q < 4; q++) { /* A^T M: rows */
            v8 m0, m1, m2, m3;
            LD8(m0, m + (size_t)q * fs + k), LD8(m1, m + (size_t)(4 + q) * fs + k);
            LD8(m2, m + (size_t)(8 + q) * fs + k), LD8(m3, m + (size_t)(12 + q) * fs + k);
            s[0][q] = m0 + m1 + m2;
            s[1][q] = m1 - m2 - m3;
        }
        for (int r = 0; r < 2; r++) { /* (A^T M) A: columns, bias, activation */
            y[r][0] = s[r][0] + s[r][1] + s[r][2] + bv;
            y[r][1] = s[r][1] - s[r][2] - s[r][3] + bv;
            for (int c = 0; c < 2 && act; c++) {
                v8i pos = y[r][c] > zero;
                v8 neg = act == 2 ? av * y[r][c] : zero;
                y[r][c] = (v8)((pos & (v8i)y[r][c]) | (~pos & (v8i)neg));
            }
        }
        float *o0 = r0 + 2 * k, *o1 = r1 + 2 * k;
        ST8(o0, __builtin_shufflevector(y[0][0], y[0][1], 0, 8, 1, 9, 2, 10, 3, 11));
        ST8(o0 + 8, __builtin_shufflevector(y[0][0], y[0][1], 4, 12, 5, 13, 6, 14, 7, 15));
        ST8(o1, __builtin_shufflevector(y[1][0], y[1][1], 0, 8, 1, 9, 2, 10, 3, 11));
        ST8(o1 + 8, __builtin_shufflevector(y[1][0], y[1][1], 4, 12, 5, 13, 6, 14, 7, 15));
    }
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

/* The F(4x4,3x3) form of input_transform2: 6 rows, tile k's window from column 4k (each row
 * readable to column 4 * k1 + 32), 36 frequencies. */
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

/* The F(4x4,3x3) form of output_transform2: four output rows r[0..3] of 4 * cnt floats
 * (writable to 4 * cnt + 32). */
RT_CLONES static void output_transform4(const float *restrict m, size_t fs, int cnt, float bias,
                                        int act, float alpha, float *restrict *r)
{
    const v8 zero = {0}, bv = zero + bias, av = zero + alpha;
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
                if (act) {
                    v8i pos = v > zero;
                    v8 neg = act == 2 ? av * v : zero;
                    v = (v8)((pos & (v8i)v) | (~pos & (v8i)neg));
                }
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

static void chunk_task(void *arg, rt_worker *wk)
{
    wjob *j = arg;
    const rt_conv_geom *g = j->g;
    const int NR = rt_gemm_nr(), nchunks = (j->T + j->cs - 1) / j->cs;
    int c0, c1;
    rt_split_range(nchunks, rt_worker_count(wk), rt_worker_id(wk), &c0, &c1);
    if (c0 >= c1)
        return;
    const int M = j->m, A = M + 2, NF = j->nf;
    const wlayout l = wplan(g, M, j->cs);
    float *scr = rt_worker_scratch(wk, l.total * sizeof(float));
    if (!scr) {
        atomic_store(&j->fail, 1);
        return;
    }
    float *vp = scr + l.vp, *m = scr + l.m, *rows = scr + l.rows;
    const long xsz = (long)g->c * g->h * g->w, hw = (long)g->h * g->w;
    const long P = (long)g->oh * g->ow, ysz = (long)g->oc * P;
    const int act = j->act == RT_ACT_RELU ? 1 : j->act == RT_ACT_LEAKYRELU ? 2 : 0;
    for (int ch = c0; ch < c1; ch++) {
        const int t0 = ch * j->cs, nt = j->T - t0 < j->cs ? j->T - t0 : j->cs;
        const size_t fstride = rt_gemm_packed_b_floats(g->c, nt) + SKEW;
        const size_t fs = (size_t)g->oc * nt + SKEW;
        for (int j0 = 0; j0 < nt;) { /* V of each segment, channel by channel */
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
                    if (M == 2)
                        input_transform2(rows, (size_t)width, k0, k1, dst, fstride);
                    else
                        input_transform4(rows, (size_t)width, k0, k1, dst, fstride);
                    k0 = k1;
                }
            }
            j0 += sg.cnt;
        }
        if (nt % NR) /* the last panel's columns past the chunk: zeros, never stored */
            for (int f = 0; f < NF; f++)
                for (int ci = 0; ci < g->c; ci++)
                    memset(vp + (size_t)f * fstride + (size_t)(nt / NR) * g->c * NR +
                               (size_t)ci * NR + nt % NR,
                           0, (size_t)(NR - nt % NR) * sizeof *vp);
        for (int f = 0; f < NF; f++)
            rt_gemm_packed(g->oc, nt, g->c, j->u + (size_t)f * j->astride,
                           vp + (size_t)f * fstride, 0, m + (size_t)f * fs, nt);
        for (int j0 = 0; j0 < nt;) { /* Y of each segment, channel by channel */
            const segment sg = segment_at(j, t0, j0, nt);
            const int oy = M * sg.ty, ox = M * sg.tx0, span = M * ((sg.cnt + 7) / 8 * 8);
            const int nx = g->ow - ox < M * sg.cnt ? g->ow - ox : M * sg.cnt;
            float *r[4] = {rows, rows + span, rows + 2 * span, rows + 3 * span};
            for (int o = 0; o < g->oc; o++) {
                const float *mo = m + (size_t)o * nt + sg.j0, bias = j->b ? j->b[o] : 0.0f;
                if (M == 2)
                    output_transform2(mo, fs, sg.cnt, bias, act, j->alpha, r[0], r[1]);
                else
                    output_transform4(mo, fs, sg.cnt, bias, act, j->alpha, r);
                float *yo = j->y + sg.img * ysz + o * P + (long)oy * g->ow + ox;
                for (int i = 0; i < M && oy + i < g->oh; i++)
                    put_row(yo + (long)i * g->ow, r[i], nx, j->add);
            }
            j0 += sg.cnt;
        }
    }
}

int rt_conv_wino_forward(const rt_conv_geom *g, const float *x, const float *w, const float *b,
                         rt_act act, float alpha, float *y, int add, int n, rt_threads *tp)
{
    const int M = pick_tile(g), NF = (M + 2) * (M + 2);
    const size_t astride = rt_gemm_packed_a_floats(g->oc, g->c);
    float *u = malloc((size_t)NF * astride * sizeof *u);
    if (!u)
        return -1;
    wjob j = {g, x, w, b, act, alpha, y, n, add, u, astride, M, NF, 0, 0, 0, 0, 0};
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
