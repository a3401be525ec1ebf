/*
 * rt_conv_direct.c - direct convolution for layers with few input channels (first layers):
 * forward with bias and activation, and dW + db, without a patch matrix or a GEMM.
 *
 * A GEMM of depth c*kh*kw <= RT_CONV_DIRECT_MAX_K (27 for RGB 3x3) is mostly packing. Here
 * each image is copied once into a padded buffer (padding filled by the mode, so every mode
 * works) whose rows are split into sw column phases, so that tap (ky, kx) of outputs ox..ox+15
 * is a contiguous 16-float vector whatever the stride or dilation. Forward holds FB output
 * channels x 16 output columns in registers and broadcasts the weights; dW holds WB output
 * channels x TK taps (of the c*kh*kw) x 16 columns and folds the lanes into double sums
 * once per image.
 * Forward work is cut by (image, band of rows), dW by output channel (every worker reads all
 * images in order), so each result is summed by one worker in a fixed order: the bits do not
 * depend on the number of workers. Vectors are GNU C vectors; the two hot loops are compiled
 * for AVX-512 and AVX2 with FMA and for plain vectors, and run with the GEMM's instruction set.
 * dX is not made here: a first layer reads the network's input, which needs no gradient.
 * When a max pooling with relu reads the conv (rt_conv_direct_backward_pool), each worker
 * makes the dz planes of its own output channels from the pooling's gradient, image by
 * image, just before it uses them: they stay in its cache instead of making a round trip of
 * the whole batch's dz through memory (on cnn1-cnn4, 32 MiB written and read back).
 */
#include "rt_conv_int.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define VL 16 /* floats per vector: one AVX-512 register */
#define FB 8  /* output channels per forward block */
#define WB 4  /* output channels per dW block */
#define TK 5  /* taps (of the c*kh*kw) per dW block */
#define DW_BAND_BYTES (24 * 1024) /* a dW band's dz rows (WB channels): half of a 48 KiB L1,
                                   * beside the input rows they meet */

#define LD(p) (*(const v16u *)(p))

/* RT_CONV_DIRECT=0 starts with the route off */
static rt_conv_switch direct_on = RT_CONV_SWITCH("RT_CONV_DIRECT", "01", 1);

int rt_conv_use_direct(int on)
{
    return rt_conv_switch_set(&direct_on, on != 0);
}

/* Measured (batch 32, AVX-512): forward is faster than the GEMM routes or as fast on the
 * first layers of cnn3, fashion and resnet_bn32 (3x3 taps of 1 and 3 channels); so is dW,
 * down to one channel of 3x3 (depth 9: fashion, 1.26x the GEMM's dot products on 2 threads,
 * 1.34x on one). Windows of one tap and maps under 8 columns (a vector half empty) stay
 * with the GEMM. */
#define BWD_MIN_K 9

int rt_conv_direct_ok(const rt_conv_geom *g, int backward)
{
    const int K = g->c * g->kh * g->kw;
    return rt_conv_switch_get(&direct_on) && g->groups == 1 && K <= RT_CONV_DIRECT_MAX_K && g->kh * g->kw > 1 &&
           g->ow >= 8 && (!backward || K >= BWD_MIN_K);
}

/* ------------------------------------------------------------------ the padded image */

/* Layout of the padded image: ph rows of sw phases of pq floats per channel; pixel (py, px)
 * of the padded channel is at (py * sw + px % sw) * pq + px / sw. The last VL floats of each
 * phase row are slack (zeros) that tail vectors may read. */
typedef struct {
    int ph, pw, pq;
    size_t chan; /* floats per channel */
} dpad;

static dpad pad_of(const rt_conv_geom *g)
{
    dpad p;
    p.ph = g->h + g->pt + g->pb;
    p.pw = g->w + g->pl + g->pr;
    p.pq = (p.pw + g->sw - 1) / g->sw + VL;
    p.chan = (size_t)p.ph * g->sw * p.pq;
    return p;
}

/* Image x [c][h][w] into buf, padding cells by the mode, slack zeroed. */
static void pad_image(const rt_conv_geom *g, const dpad *p, const float *x, float *buf)
{
    const int sw = g->sw;
    for (int ci = 0; ci < g->c; ci++)
        for (int py = 0; py < p->ph; py++) {
            float *row = buf + ci * p->chan + (size_t)py * sw * p->pq;
            int iy = rt_pad_index(py - g->pt, g->h, g->pad);
            memset(row, 0, (size_t)sw * p->pq * sizeof *row);
            if (iy < 0)
                continue;
            const float *s = x + ((size_t)ci * g->h + iy) * g->w;
            if (sw == 1) {
                for (int px = 0; px < g->pl; px++) {
                    int ix = rt_pad_index(px - g->pl, g->w, g->pad);
                    row[px] = ix < 0 ? 0.0f : s[ix];
                }
                memcpy(row + g->pl, s, (size_t)g->w * sizeof *row);
                for (int px = g->pl + g->w; px < p->pw; px++) {
                    int ix = rt_pad_index(px - g->pl, g->w, g->pad);
                    row[px] = ix < 0 ? 0.0f : s[ix];
                }
                continue;
            }
            for (int px = 0; px < p->pw; px++) {
                int ix = rt_pad_index(px - g->pl, g->w, g->pad);
                row[(size_t)(px % sw) * p->pq + px / sw] = ix < 0 ? 0.0f : s[ix];
            }
        }
}

/* off[t] = where tap t = (ci, ky, kx) of output (0, 0) lies in the padded image (the flip
 * pairs weight (ky, kx) with the tap rotated by 180 degrees). */
static void tap_offsets(const rt_conv_geom *g, const dpad *p, int *off)
{
    for (int ci = 0; ci < g->c; ci++)
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                int ey = g->flip ? g->kh - 1 - ky : ky, ex = g->flip ? g->kw - 1 - kx : kx;
                int px = ex * g->dw;
                off[(ci * g->kh + ky) * g->kw + kx] =
                    (int)(ci * p->chan) + (ey * g->dh * g->sw + px % g->sw) * p->pq + px / g->sw;
            }
}

/* Worker scratch: the padded image, the tap offsets, the packed weights (forward) or the
 * double sums of dW and db (backward). */
static size_t pad_floats(const rt_conv_geom *g)
{
    dpad p = pad_of(g);
    return ((size_t)g->c * p.chan + VL + 15) / 16 * 16;
}

/* Floats of a block of WB dz planes that a worker makes itself (rt_conv_direct_backward_pool),
 * and a vector of slack. (dW's reads stay inside the planes: a row's tail read runs on into
 * the row below, at most 16 - ow % 16 <= ow floats as ow >= 8, and the last row's tails
 * are read from a copy.) */
static size_t zblock_floats(const rt_conv_geom *g)
{
    return (size_t)WB * g->oh * g->ow + VL;
}

size_t rt_conv_direct_scratch_size(const rt_conv_geom *g)
{
    size_t K = (size_t)g->c * g->kh * g->kw, kk = (K + 15) / 16 * 16;
    size_t oc = ((size_t)g->oc + WB) / WB * WB;
    size_t fwd = kk * FB * sizeof(float),
           bwd = (oc * K + oc) * VL * sizeof(double) + zblock_floats(g) * sizeof(float);
    return pad_floats(g) * sizeof(float) + kk * sizeof(int) + (fwd > bwd ? fwd : bwd) + 64;
}

/* ------------------------------------------------------------------ forward */

typedef struct {
    const rt_conv_geom *g;
    const float *x, *w, *b, *dz;
    rt_act act;
    float alpha;
    float *y, *dw, *db;
    int n, bands;
    atomic_int fail;
    /* backward through a max pooling with relu: dz comes from its output gradient dpy and
     * its input py (this conv's output), a block of planes at a time (pg NULL: dz given) */
    const rt_pool_geom *pg;
    const float *py, *dpy;
} direct_job;

/* Stores m <= VL outputs of output channel o at column ox of row oy from the sum acc: plus
 * the bias, then relu / leaky relu in registers (the bits of rt_act_forward). */
static inline __attribute__((always_inline)) void
fwd_store(const rt_conv_geom *g, v16 acc, float bias, rt_act act, float alpha, int o, int oy,
          int oy1, int ox, int m, float *y)
{
    float *d = y + (size_t)o * g->oh * g->ow + (size_t)oy * g->ow + ox;
    v16 r = acc + bias;
    if (act == RT_ACT_RELU)
        r = (v16)((v16i)(r > 0.0f) & (v16i)r);
    else if (act == RT_ACT_LEAKYRELU) {
        v16i pos = r > 0.0f;
        v16 f = (v16)((pos & (v16i)((v16){0} + 1.0f)) | (~pos & (v16i)((v16){0} + alpha)));
        r = f * r;
    }
    if (m == VL || oy + 1 < oy1) /* spills into the next row, written later */
        *(v16u *)d = r;
    else
        for (int i = 0; i < m; i++)
            d[i] = r[i];
}

/* Output rows [oy0, oy1) of channels [o0, o0 + nb) (nb <= FB) of one image: y[o][oy][ox] =
 * sum over taps t in order of wk[t][o] * buf[...], plus the bias, then the activation. Two
 * vectors of columns at a time where the row has more than one, so that each weight
 * broadcast feeds two FMAs (with one, the broadcasts alone fill the load ports: cnn3's first
 * layer 3.4 -> 2.85 ms); same sums either way. A tail vector reads the phase row's slack. */
static inline __attribute__((always_inline)) void
fwd_rows_body(const rt_conv_geom *g, const dpad *p, const float *buf, const int *off,
              const float *wk, const float *b, int o0, int nb, rt_act act, float alpha, int oy0,
              int oy1, float *y)
{
    const int K = g->c * g->kh * g->kw, ow = g->ow;
    float bias[FB];
    for (int o = 0; o < FB; o++)
        bias[o] = b && o < nb ? b[o0 + o] : 0.0f;
    for (int oy = oy0; oy < oy1; oy++) {
        const float *base = buf + (size_t)oy * g->sh * g->sw * p->pq;
        int ox = 0;
        for (; ox + VL < ow; ox += 2 * VL) { /* the second vector may be a row's tail */
            v16 acc[FB], acc2[FB];
#pragma GCC unroll 8
            for (int o = 0; o < FB; o++)
                acc[o] = acc2[o] = (v16){0};
            for (int t = 0; t < K; t++) {
                v16 xv = LD(base + ox + off[t]), xv2 = LD(base + ox + VL + off[t]);
                const float *wt = wk + (size_t)t * FB;
#pragma GCC unroll 8
                for (int o = 0; o < FB; o++) {
                    const float wo = wt[o];
                    acc[o] += xv * wo;
                    acc2[o] += xv2 * wo;
                }
            }
            for (int o = 0; o < nb; o++) {
                fwd_store(g, acc[o], bias[o], act, alpha, o0 + o, oy, oy1, ox, VL, y);
                fwd_store(g, acc2[o], bias[o], act, alpha, o0 + o, oy, oy1, ox + VL,
                          ow - ox - VL < VL ? ow - ox - VL : VL, y);
            }
        }
        if (ox < ow) { /* one vector left: the pair above would read past the row's slack */
            v16 acc[FB];
#pragma GCC unroll 8
            for (int o = 0; o < FB; o++)
                acc[o] = (v16){0};
            for (int t = 0; t < K; t++) {
                v16 xv = LD(base + ox + off[t]);
                const float *wt = wk + (size_t)t * FB;
#pragma GCC unroll 8
                for (int o = 0; o < FB; o++)
                    acc[o] += xv * wt[o];
            }
            const int m = ow - ox < VL ? ow - ox : VL;
            for (int o = 0; o < nb; o++)
                fwd_store(g, acc[o], bias[o], act, alpha, o0 + o, oy, oy1, ox, m, y);
        }
    }
}

/* ------------------------------------------------------------------ dW and db */

/* Where the tail vector (columns full.. of row oy) of dz plane o is read: in place where the
 * row below is there to read into, else from last[o], a copy of the last row's tail with
 * zeros after it (no read past the plane, no copy in the loops). */
static inline __attribute__((always_inline)) const float *
tail_at(const rt_conv_geom *g, const float *const *dzs, const float (*last)[VL], int o, int oy,
        int full)
{
    return oy + 1 < g->oh ? dzs[o] + (size_t)oy * g->ow + full : last[o];
}

/* db's sums over the band of rows [by, ey): bacc[o][lane] goes on through the band's dz
 * vectors in row order, the tail's lanes past ow masked out. */
static inline __attribute__((always_inline)) void
db_band(const rt_conv_geom *g, const float *const *dzs, const float (*last)[VL], int by, int ey,
        v16i mask, v16 *bacc)
{
    const int ow = g->ow, full = ow / VL * VL;
    for (int oy = by; oy < ey; oy++) {
        const size_t zo = (size_t)oy * ow;
        for (int ox = 0; ox < full; ox += VL)
#pragma GCC unroll 8
            for (int o = 0; o < WB; o++)
                bacc[o] += LD(dzs[o] + zo + ox);
        if (full < ow)
            for (int o = 0; o < WB; o++)
                bacc[o] += (v16)(mask & (v16i)LD(tail_at(g, dzs, last, o, oy, full)));
    }
}

/* Adds to sum[o][t][lane] (o < nb, double) one image's dW of nb <= WB output channels, whose
 * dz planes start at dz, and to bsum[o][lane] its db. For each block of TK taps (of the
 * c*kh*kw, in order), the taps of WB channels are 16-lane float sums over the image's
 * outputs, added lane by lane to the doubles at the end (the lanes are summed once, after
 * the last image): first the sums over each row's whole vectors, in row order, then those of
 * the rows' tails (the columns past the last whole vector, with the lanes past ow zeroed),
 * each kept apart so that the hot loop has no tail code (gcc then keeps the WB * TK sums in
 * registers across rows). db's sums are made in a pass of their own over each band.
 * The image is taken in bands of output rows whose dz and input rows stay in L1 while every
 * tap block passes over them (one pass of the whole image per block streamed from L2);
 * each float sum waits in part between bands and goes on where it stopped, so every lane
 * adds the same values in the same order as in one pass: the bits do not depend on the band.
 * The inner loop loads TK input vectors and WB dz vectors for WB * TK FMAs: 29 of AVX-512's
 * 32 registers (with 8 channels x 3 taps, 35 would be needed and gcc folds a dz load into
 * every FMA: measured 0.8-0.9x the 4 x 3 this replaced, against 1.2-1.4x for 4 x 5). */
static inline __attribute__((always_inline)) void
dw_image_body(const rt_conv_geom *g, const dpad *p, const float *buf, const int *off,
              const float *dz, int nb, double *sum, double *bsum)
{
    const int K = g->c * g->kh * g->kw, ow = g->ow;
    const size_t P = (size_t)g->oh * ow;
    const int full = ow / VL * VL, m = ow - full;
    v16i mask;
    for (int i = 0; i < VL; i++)
        mask[i] = i < m ? -1 : 0;
    const float *dzs[WB];
    for (int o = 0; o < WB; o++) /* channels past nb repeat the last (their sums are dropped) */
        dzs[o] = dz + (size_t)(o < nb ? o : nb - 1) * P;
    float last[WB][VL] = {{0}}; /* the last row's tails (see tail_at) */
    for (int o = 0; m && o < WB; o++)
        memcpy(last[o], dzs[o] + P - m, (size_t)m * sizeof(float));
    const float(*lastc)[VL] = (const float(*)[VL])last;
    const size_t xrow = (size_t)g->sh * g->sw * p->pq; /* a padded row's floats */
    const int rows = DW_BAND_BYTES / (ow * WB * (int)sizeof(float));
    const int band = rows < 1 ? 1 : rows;
    /* the float sums between bands: part[o][t] for tap t, ptail[o][t] its tails', bacc[o] db's */
    v16 part[WB][RT_CONV_DIRECT_MAX_K], ptail[WB][RT_CONV_DIRECT_MAX_K], bacc[WB];
    for (int o = 0; o < WB; o++)
        bacc[o] = (v16){0};
    for (int by = 0; by < g->oh; by += band) {
        const int ey = by + band < g->oh ? by + band : g->oh;
        if (bsum)
            db_band(g, dzs, lastc, by, ey, mask, bacc);
        for (int t0 = 0; t0 < K; t0 += TK) /* TK taps at a time (the last block: nk) */
        for (int tail = full == 0; tail <= (m > 0); tail++) { /* whole vectors, then tails */
            const int nk = K - t0 < TK ? K - t0 : TK;
            v16(*pt)[RT_CONV_DIRECT_MAX_K] = tail ? ptail : part;
            v16 acc[WB][TK];
            for (int o = 0; o < WB; o++) /* the first band starts the sums */
                for (int k = 0; k < TK; k++)
                    acc[o][k] = by > 0 && k < nk ? pt[o][t0 + k] : (v16){0};
            int of[TK];
            for (int k = 0; k < TK; k++)
                of[k] = off[t0 + (k < nk ? k : 0)]; /* (taps past nk: sums dropped) */
            if (!tail) {
                for (int oy = by; oy < ey; oy++) {
                    const float *base = buf + (size_t)oy * xrow;
                    const size_t zo = (size_t)oy * ow;
                    for (int ox = 0; ox < full; ox += VL) {
                        v16 xv[TK];
#pragma GCC unroll 4
                        for (int k = 0; k < TK; k++)
                            xv[k] = LD(base + ox + of[k]);
                        v16 d[WB];
#pragma GCC unroll 8
                        for (int o = 0; o < WB; o++)
                            d[o] = LD(dzs[o] + zo + ox);
#pragma GCC unroll 8
                        for (int o = 0; o < WB; o++)
#pragma GCC unroll 8
                            for (int k = 0; k < TK; k++)
                                acc[o][k] += d[o] * xv[k];
                    }
                }
            } else {
                /* lanes past ow zeroed in both factors (x or dz there may be anything,
                 * even inf): their products are +0 */
                for (int oy = by; oy < ey; oy++) {
                    const float *base = buf + (size_t)oy * xrow + full;
                    v16 xv[TK];
#pragma GCC unroll 4
                    for (int k = 0; k < TK; k++)
                        xv[k] = (v16)(mask & (v16i)LD(base + of[k]));
#pragma GCC unroll 8
                    for (int o = 0; o < WB; o++) {
                        const v16 d = (v16)(mask & (v16i)LD(tail_at(g, dzs, lastc, o, oy, full)));
#pragma GCC unroll 4
                        for (int k = 0; k < TK; k++)
                            acc[o][k] += d * xv[k];
                    }
                }
            }
            if (ey < g->oh) { /* to go on in the next band */
                for (int o = 0; o < WB; o++)
                    for (int k = 0; k < nk; k++)
                        pt[o][t0 + k] = acc[o][k];
                continue;
            }
            for (int o = 0; o < nb; o++) /* the image's sums, into the doubles */
                for (int k = 0; k < nk; k++) {
                    double *d = sum + ((size_t)o * K + t0 + k) * VL;
#pragma GCC unroll 16
                    for (int i = 0; i < VL; i++)
                        d[i] += acc[o][k][i];
                }
        }
    }
    for (int o = 0; bsum && o < nb; o++)
#pragma GCC unroll 16
        for (int i = 0; i < VL; i++)
            bsum[(size_t)o * VL + i] += bacc[o][i];
}

/* ------------------------------------------------------------------ the ISA */

/* The two loops compiled for each instruction set the GEMM has (rt_gemm.c: AVX-512 and
 * AVX2 with FMA, portable vectors), and used with the one the GEMM runs on, so the bits
 * follow the GEMM's choice (RT_GEMM_ISA, rt_gemm_use_isa). */
#define FWD_ARGS                                                                             \
    const rt_conv_geom *g, const dpad *p, const float *buf, const int *off, const float *wk,   \
        const float *b, int o0, int nb, rt_act act, float alpha, int oy0, int oy1, float *y
#define DW_ARGS                                                                              \
    const rt_conv_geom *g, const dpad *p, const float *buf, const int *off, const float *dz,   \
        int nb, double *sum, double *bsum
#define DIRECT_ISA(ATTR, NAME)                                                               \
    ATTR static void fwd_rows_##NAME(FWD_ARGS)                                               \
    {                                                                                        \
        fwd_rows_body(g, p, buf, off, wk, b, o0, nb, act, alpha, oy0, oy1, y);               \
    }                                                                                        \
    ATTR static void dw_image_##NAME(DW_ARGS)                                                \
    {                                                                                        \
        dw_image_body(g, p, buf, off, dz, nb, sum, bsum);                                  \
    }
DIRECT_ISA(, generic)
#if defined(__x86_64__) && defined(__GNUC__)
DIRECT_ISA(__attribute__((target("avx2,fma"))), avx2)
DIRECT_ISA(__attribute__((target("avx512f,fma"))), avx512)
#endif

typedef struct {
    void (*fwd_rows)(FWD_ARGS);
    void (*dw_image)(DW_ARGS);
} direct_isa;

static direct_isa isa_now(void)
{
    const char *name = rt_gemm_isa();
#if defined(__x86_64__) && defined(__GNUC__)
    if (strcmp(name, "avx512") == 0)
        return (direct_isa){fwd_rows_avx512, dw_image_avx512};
    if (strcmp(name, "avx2") == 0)
        return (direct_isa){fwd_rows_avx2, dw_image_avx2};
#endif
    return (direct_isa){fwd_rows_generic, dw_image_generic};
}

/* ------------------------------------------------------------------ forward work */

static void fwd_task(void *arg, rt_worker *wk)
{
    direct_job *j = arg;
    const rt_conv_geom *g = j->g;
    const dpad p = pad_of(g);
    const int K = g->c * g->kh * g->kw, kk = (K + 15) / 16 * 16;
    char *s = rt_worker_scratch(wk, rt_conv_direct_scratch_size(g));
    if (!s) {
        atomic_store(&j->fail, 1);
        return;
    }
    float *buf = (float *)s;
    int *off = (int *)(buf + pad_floats(g));
    float *wp = (float *)(off + kk);
    tap_offsets(g, &p, off);
    const direct_isa k = isa_now();
    int lo, hi;
    rt_split_range(j->n * j->bands, rt_worker_count(wk), rt_worker_id(wk), &lo, &hi);
    int padded = -1;
    for (int it = lo; it < hi; it++) {
        int im = it / j->bands, band = it % j->bands, oy0, oy1;
        rt_split_range(g->oh, j->bands, band, &oy0, &oy1);
        if (oy0 == oy1)
            continue;
        if (im != padded) {
            pad_image(g, &p, j->x + (size_t)im * g->c * g->h * g->w, buf);
            padded = im;
        }
        float *y = j->y + (size_t)im * g->oc * g->oh * g->ow;
        for (int o0 = 0; o0 < g->oc; o0 += FB) {
            int nb = g->oc - o0 < FB ? g->oc - o0 : FB;
            for (int t = 0; t < K; t++) /* wp[t][o] = w[o0 + o][t], zeros past nb */
                for (int o = 0; o < FB; o++)
                    wp[(size_t)t * FB + o] = o < nb ? j->w[(size_t)(o0 + o) * K + t] : 0.0f;
            k.fwd_rows(g, &p, buf, off, wp, j->b, o0, nb, j->act, j->alpha, oy0, oy1, y);
            if (j->act != RT_ACT_NONE && j->act != RT_ACT_RELU && j->act != RT_ACT_LEAKYRELU)
                for (int o = 0; o < nb; o++) { /* other activations: on the band, in place */
                    float *d = y + ((size_t)(o0 + o) * g->oh + oy0) * g->ow;
                    rt_act_forward(j->act, j->alpha, d, d, (size_t)(oy1 - oy0) * g->ow);
                }
        }
    }
}

int rt_conv_direct_forward(const rt_conv_geom *g, const float *x, const float *w,
                           const float *b, rt_act act, float alpha, float *y, int n,
                           rt_threads *tp)
{
    const int nt = rt_threads_count(tp);
    int bands = 1;
    if (n < 2 * nt) { /* too few images to share: cut them into bands of rows */
        bands = (2 * nt + n - 1) / n;
        if (bands > g->oh)
            bands = g->oh;
    }
    direct_job j = {.g = g, .x = x, .w = w, .b = b, .act = act, .alpha = alpha, .y = y, .n = n,
                    .bands = bands};
    rt_threads_run(tp, fwd_task, &j);
    return atomic_load(&j.fail) ? -1 : 0;
}

/* The lanes of a sum added in order. */
static float lanes(const double *l)
{
    double s = 0.0;
    for (int i = 0; i < VL; i++)
        s += l[i];
    return (float)s;
}

static void bwd_task(void *arg, rt_worker *wk)
{
    direct_job *j = arg;
    const rt_conv_geom *g = j->g;
    const dpad p = pad_of(g);
    const int K = g->c * g->kh * g->kw, kk = (K + 15) / 16 * 16;
    const size_t P = (size_t)g->oh * g->ow;
    char *s = rt_worker_scratch(wk, rt_conv_direct_scratch_size(g));
    if (!s) {
        atomic_store(&j->fail, 1);
        return;
    }
    float *buf = (float *)s;
    int *off = (int *)(buf + pad_floats(g));
    double *sum = (double *)(((uintptr_t)(off + kk) + 63) / 64 * 64);
    double *bsum = sum + (size_t)g->oc * K * VL;
    float *zb = (float *)(bsum + ((size_t)g->oc + WB) / WB * WB * VL); /* with j->pg */
    tap_offsets(g, &p, off);
    const direct_isa k = isa_now();
    int lo, hi; /* this worker's blocks of WB output channels */
    rt_split_range((g->oc + WB - 1) / WB, rt_worker_count(wk), rt_worker_id(wk), &lo, &hi);
    if (lo == hi)
        return;
    const int c0 = lo * WB, c1 = hi * WB < g->oc ? hi * WB : g->oc;
    memset(sum + (size_t)c0 * K * VL, 0, (size_t)(c1 - c0) * K * VL * sizeof *sum);
    memset(bsum + (size_t)c0 * VL, 0, (size_t)(c1 - c0) * VL * sizeof *bsum);
    for (int im = 0; im < j->n; im++) {
        pad_image(g, &p, j->x + (size_t)im * g->c * g->h * g->w, buf);
        for (int o0 = c0; o0 < c1; o0 += WB) {
            const int nb = c1 - o0 < WB ? c1 - o0 : WB;
            const size_t plane0 = (size_t)im * g->oc + o0; /* channel o0 of image im */
            const float *dz = zb; /* (no j->dz with j->pg: no offset from NULL) */
            if (j->pg) { /* this block's dz planes, made here while they stay in cache */
                rt_pool_geom q = *j->pg;
                q.c = nb;
                rt_maxpool_backward_relu(&q, j->py + plane0 * P,
                                         j->dpy + plane0 * j->pg->oh * j->pg->ow, zb, 1, NULL);
            } else {
                dz = j->dz + plane0 * P;
            }
            k.dw_image(g, &p, buf, off, dz, nb, sum + (size_t)o0 * K * VL,
                       j->db ? bsum + (size_t)o0 * VL : NULL);
        }
    }
    for (size_t i = (size_t)c0 * K; i < (size_t)c1 * K; i++)
        j->dw[i] = lanes(sum + i * VL);
    if (j->db)
        for (int o = c0; o < c1; o++)
            j->db[o] = lanes(bsum + (size_t)o * VL);
}

int rt_conv_direct_backward(const rt_conv_geom *g, const float *x, const float *dz, float *dw,
                            float *db, int n, rt_threads *tp)
{
    direct_job j = {.g = g, .x = x, .dz = dz, .dw = dw, .db = db, .n = n, .bands = 1};
    rt_threads_run(tp, bwd_task, &j);
    return atomic_load(&j.fail) ? -1 : 0;
}

int rt_conv_direct_backward_pool(const rt_conv_geom *g, const float *x, const rt_pool_geom *pg,
                                 const float *py, const float *dpy, float *dw, float *db, int n,
                                 rt_threads *tp)
{
    direct_job j = {.g = g, .x = x, .dw = dw, .db = db, .n = n, .bands = 1, .pg = pg, .py = py,
                    .dpy = dpy};
    rt_threads_run(tp, bwd_task, &j);
    return atomic_load(&j.fail) ? -1 : 0;
}
