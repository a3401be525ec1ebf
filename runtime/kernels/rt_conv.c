/*
 * rt_conv.c - 2-D convolution forward and backward by im2col + GEMM.
 *
 * Each image is processed in bands of output rows small enough that the band's patch matrix
 * stays in cache. im2col (which also fills the padding by its mode and flips the kernel for
 * a true convolution) writes the patches straight into the GEMM's packed panel layout, and
 * the weights are packed once per call. Backward computes dW from the same patches and dX as
 * W^T times the gradient followed by col2im, which sends a padded cell's gradient to the
 * pixel it was copied from; where the padding is zeros and the stride 1, dX is instead the
 * forward convolution of dZ with the rotated, transposed kernel (no col2im). Small maps fold
 * several images into one GEMM. 1x1 stride-1 unpadded convolutions use the image itself.
 * Stride-1 zero-padded ones (and so the input gradient above) skip the patch matrix: the GEMM
 * reads a zero-bordered copy of the input in place (the implicit GEMM, same bits).
 * Grouped convolutions run the same steps once per group, on the group's channel blocks;
 * depthwise ones (a group per input channel) go to the direct loops of rt_conv_dw.c.
 */
#include "rt_conv_int.h"
#include "rt_gemm_int.h"
#include "rt_simd.h"

#include <assert.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COL_TARGET_FLOATS (64 * 1024) /* a band's patch matrix: about 256 KiB */
/* dW by unpacked dot products up to this many patch rows (c*kh*kw), by the packed GEMM above:
 * measured on the 3-channel first layer of the benchmark network (K = 27) the dot products
 * take half the time, at K = 144 and 288 the packed GEMM wins clearly. */
#define NT_MAX_K 64
/* Small maps (a whole image in one band with fewer output pixels than this) are folded:
 * the patch matrices of several images side by side make one GEMM of about this many
 * columns, instead of one GEMM per image whose few columns barely reuse the packed weights
 * (a 128-channel 8x8 layer has 64). */
#define FOLD_COLS 256

static size_t up16(size_t f)
{
    return (f + 15) / 16 * 16;
}

int rt_conv_switch_get(rt_conv_switch *s)
{
    int v = atomic_load_explicit(&s->value, memory_order_relaxed);
    if (v >= 0)
        return v;
    const char *e = getenv(s->env);
    int want = e && e[0] && !e[1] && strchr(s->accepted, e[0]) ? e[0] - '0' : s->dflt;
    atomic_compare_exchange_strong(&s->value, &v, want); /* a racing first reader agrees */
    return atomic_load_explicit(&s->value, memory_order_relaxed);
}

int rt_conv_switch_set(rt_conv_switch *s, int v)
{
    int was = rt_conv_switch_get(s);
    atomic_store_explicit(&s->value, v, memory_order_relaxed);
    return was;
}

int rt_conv_geom_check(const rt_conv_geom *gin, char *err)
{
    const rt_conv_geom n = rt_conv_norm(gin), *g = &n;
    const char *why = NULL;
    if (g->c < 1 || g->h < 1 || g->w < 1 || g->oc < 1 || g->oh < 1 || g->ow < 1)
        why = "empty input or output";
    else if (g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1)
        why = "kernel and stride must be positive";
    else if (g->dh < 1 || g->dw < 1)
        why = "dilation must be positive";
    else if (g->groups < 1 || g->c % g->groups || g->oc % g->groups)
        why = "the groups must divide the input and output channels";
    else if (g->pt < 0 || g->pb < 0 || g->pl < 0 || g->pr < 0)
        why = "negative padding";
    /* in 64 bits: the dilated extent of a hostile geometry may not fit in an int */
    else if ((long long)(g->oh - 1) * g->sh + (long long)g->dh * (g->kh - 1) + 1 >
                 (long long)g->h + g->pt + g->pb ||
             (long long)(g->ow - 1) * g->sw + (long long)g->dw * (g->kw - 1) + 1 >
                 (long long)g->w + g->pl + g->pr)
        why = "the output size needs windows outside the padded input";
    else if (g->pad == RT_PAD_REFLECT &&
             (g->pt >= g->h || g->pb >= g->h || g->pl >= g->w || g->pr >= g->w))
        why = "reflect padding must be smaller than the input";
    else if (g->pad == RT_PAD_CIRCULAR &&
             (g->pt > g->h || g->pb > g->h || g->pl > g->w || g->pr > g->w))
        why = "circular padding cannot exceed the input size";
    if (!why)
        return 0;
    if (err) {
        char extra[64] = "";
        if (g->dh != 1 || g->dw != 1 || g->groups != 1)
            snprintf(extra, sizeof extra, " dilation %dx%d groups %d", g->dh, g->dw, g->groups);
        snprintf(err, RT_ERRLEN, "convolution %dx%dx%d -> %dx%dx%d, kernel %dx%d%s: %s", g->c,
                 g->h, g->w, g->oc, g->oh, g->ow, g->kh, g->kw, extra, why);
    }
    return -1;
}

size_t rt_conv2d_weight_count(const rt_conv_geom *gin)
{
    const rt_conv_geom g = rt_conv_norm(gin);
    return (size_t)g.oc * (size_t)(g.c / g.groups) * (size_t)g.kh * (size_t)g.kw;
}

/* One group's geometry (g normalised): its c/G input and oc/G output channels. */
static rt_conv_geom group_geom(const rt_conv_geom *g)
{
    rt_conv_geom q = *g;
    q.c /= g->groups;
    q.oc /= g->groups;
    q.groups = 1;
    return q;
}

/* Depthwise geometries (a group per input channel, g normalised) take the direct loops. */
static int is_depthwise(const rt_conv_geom *g)
{
    return g->groups > 1 && g->groups == g->c;
}

/* Row r = (ci, ky, kx) of the patch matrix for output rows [oy0, oy1), into d. */
static void im2col_row(const rt_conv_geom *g, const float *x, int r, int oy0, int oy1,
                       float *d)
{
    const int ow = g->ow;
    const int kx = r % g->kw, ky = (r / g->kw) % g->kh, ci = r / (g->kw * g->kh);
    const int ey = g->flip ? g->kh - 1 - ky : ky, ex = g->flip ? g->kw - 1 - kx : kx;
    const int off = ex * g->dw - g->pl;
    int lo, hi;
    rt_conv_interior(ow, g->sw, off, g->w, &lo, &hi);
    for (int oy = oy0; oy < oy1; oy++, d += ow) {
        int iy = rt_pad_index(oy * g->sh + ey * g->dh - g->pt, g->h, g->pad);
        if (iy < 0) {
            memset(d, 0, (size_t)ow * sizeof *d);
            continue;
        }
        const float *s = x + ((size_t)ci * g->h + iy) * g->w;
        for (int ox = 0; ox < lo; ox++) {
            int ix = rt_pad_index(ox * g->sw + off, g->w, g->pad);
            d[ox] = ix < 0 ? 0.0f : s[ix];
        }
        if (g->sw == 1)
            memcpy(d + lo, s + lo + off, (size_t)(hi - lo) * sizeof *d);
        else
            for (int ox = lo; ox < hi; ox++)
                d[ox] = s[ox * g->sw + off];
        for (int ox = hi; ox < ow; ox++) {
            int ix = rt_pad_index(ox * g->sw + off, g->w, g->pad);
            d[ox] = ix < 0 ? 0.0f : s[ix];
        }
    }
}

/* The patch matrix of g's c channels (g normalised). */
static void im2col(const rt_conv_geom *g, const float *x, int oy0, int oy1, float *col)
{
    const int K = g->c * g->kh * g->kw, pc = (oy1 - oy0) * g->ow;
    for (int r = 0; r < K; r++)
        im2col_row(g, x, r, oy0, oy1, col + (size_t)r * pc);
}

void rt_im2col(const rt_conv_geom *g, const float *x, int oy0, int oy1, float *col)
{
    const rt_conv_geom n = rt_conv_norm(g);
    im2col(&n, x, oy0, oy1, col);
}

/* The patch matrix (K x pc) in the GEMM's packed-B layout: panels of NR pixels, each over
 * all K rows. tmp holds one row of pc values. With nimg > 1 (a folded batch) the pixels are
 * those of nimg images, xstride floats apart, one after the other. */
static void im2col_packed(const rt_conv_geom *g, const float *x, size_t xstride, int nimg,
                          int oy0, int oy1, float *tmp, float *bp)
{
    const int K = g->c * g->kh * g->kw, pi = (oy1 - oy0) * g->ow, pc = pi * nimg;
    const int NR = rt_gemm_nr();
    for (int r = 0; r < K; r++) {
        for (int t = 0; t < nimg; t++)
            im2col_row(g, x + (size_t)t * xstride, r, oy0, oy1, tmp + (size_t)t * pi);
        /* whole panels in blocks of 8 (NR is a multiple of 8), then the partial one */
        int full = pc / NR * NR;
        for (int j = 0; j < full; j += NR) {
            float *d = bp + (size_t)(j / NR) * K * NR + (size_t)r * NR;
            for (int q = 0; q < NR; q += 8) /* a constant-size copy: inlined */
                memcpy(d + q, tmp + j + q, 8 * sizeof *d);
        }
        if (full < pc) {
            float *d = bp + (size_t)(full / NR) * K * NR + (size_t)r * NR;
            for (int q = 0; q < NR; q++)
                d[q] = full + q < pc ? tmp[full + q] : 0.0f;
        }
    }
}

/* Its transpose (pc x K) in packed-B layout, for dW = dZ . patches^T: panels of NR patch
 * rows, each over all pc pixels. tmp holds NR rows of pc values: a panel's rows are made
 * first, then transposed in 4 x 4 blocks, so that the writes are contiguous. With nimg > 1
 * (a folded batch: the whole image in one band) the pixels are those of nimg images,
 * xstride floats apart, one after the other. */
static void im2col_packed_t(const rt_conv_geom *g, const float *x, size_t xstride, int nimg,
                            int oy0, int oy1, float *tmp, float *bp)
{
    const int K = g->c * g->kh * g->kw, pi = (oy1 - oy0) * g->ow, pc = pi * nimg;
    const int NR = rt_gemm_nr();
    for (int r0 = 0; r0 < K; r0 += NR) {
        int nr = K - r0 < NR ? K - r0 : NR;
        for (int q = 0; q < nr; q++)
            for (int t = 0; t < nimg; t++)
                im2col_row(g, x + (size_t)t * xstride, r0 + q, oy0, oy1,
                           tmp + (size_t)q * pc + (size_t)t * pi);
        if (nr < NR) /* the last panel's missing patch rows are zeros */
            memset(tmp + (size_t)nr * pc, 0, (size_t)(NR - nr) * pc * sizeof *tmp);
        float *d = bp + (size_t)(r0 / NR) * pc * NR;
        int p = 0;
#ifdef RT_HAVE_V4
        /* 4 x 4 blocks (NR is a multiple of 8) */
        for (; p + 4 <= pc; p += 4)
            for (int q = 0; q < NR; q += 4)
                rt_transpose4(tmp + (size_t)q * pc + p, pc, d + (size_t)p * NR + q, NR);
#endif
        for (; p < pc; p++)
            for (int q = 0; q < NR; q++)
                d[(size_t)p * NR + q] = tmp[(size_t)q * pc + p];
    }
}

/* col2im_ld for a column stride of 2 with zero padding, undilated, on maps up to
 * S2_MAX_W wide: the scattered adds d[2 ox + off] += s[ox] of the general loop, a quarter
 * of a strided layer's backward, become contiguous ones. Each dx row's taps are summed in
 * two half-width rows, one per column parity (tap kx lands on parity (kx - pl) & 1), in
 * the general loop's (ky, kx) order, and the pair is then added to the row interleaved. */
#define S2_MAX_W 2048
static void col2im_s2(const rt_conv_geom *g, const float *col, size_t ld, int oy0, int oy1,
                      float *dx)
{
    const int ow = g->ow, hw = (g->w + 1) / 2;
    float half[2][S2_MAX_W / 2];
    for (int ci = 0; ci < g->c; ci++)
        for (int iy = 0; iy < g->h; iy++) {
            int any = 0;
            for (int ky = 0; ky < g->kh; ky++) {
                int ey = g->flip ? g->kh - 1 - ky : ky, t = iy + g->pt - ey * g->dh;
                if (t < 0 || t % g->sh != 0 || t / g->sh < oy0 || t / g->sh >= oy1)
                    continue;
                const int oy = t / g->sh;
                if (!any) {
                    memset(half[0], 0, (size_t)hw * sizeof(float));
                    memset(half[1], 0, (size_t)hw * sizeof(float));
                    any = 1;
                }
                for (int kx = 0; kx < g->kw; kx++) {
                    int ex = g->flip ? g->kw - 1 - kx : kx, off = ex - g->pl;
                    int par = off & 1, m = (off - par) / 2; /* ix = 2 (ox + m) + par */
                    int lo = off < 0 ? (-off + 1) / 2 : 0;
                    int hi = off > g->w - 1 ? 0 : (g->w - 1 - off) / 2 + 1; /* (no ox) */
                    if (hi > ow)
                        hi = ow;
                    if (lo >= hi)
                        continue;
                    /* columns lo.. of the tap's row onto half[par][m + lo..] (m + lo >= 0) */
                    const float *s = col + (size_t)((ci * g->kh + ky) * g->kw + kx) * ld +
                                     (size_t)(oy - oy0) * ow + lo;
                    float *h = half[par] + (m + lo);
                    const int cnt = hi - lo;
                    int i = 0;
#ifdef RT_HAVE_V4
                    for (; i + 4 <= cnt; i += 4)
                        rt_st4(h + i, rt_ld4(h + i) + rt_ld4(s + i));
#endif
                    for (; i < cnt; i++)
                        h[i] += s[i];
                }
            }
            if (!any)
                continue;
            float *d = dx + ((size_t)ci * g->h + iy) * g->w;
            int j = 0;
#ifdef RT_HAVE_V4
            for (; 2 * j + 8 <= g->w; j += 4) {
                rt_v4 e = rt_ld4(half[0] + j), o = rt_ld4(half[1] + j);
                rt_st4(d + 2 * j, rt_ld4(d + 2 * j) + __builtin_shufflevector(e, o, 0, 4, 1, 5));
                rt_st4(d + 2 * j + 4,
                       rt_ld4(d + 2 * j + 4) + __builtin_shufflevector(e, o, 2, 6, 3, 7));
            }
#endif
            for (; 2 * j + 1 < g->w; j++) {
                d[2 * j] += half[0][j];
                d[2 * j + 1] += half[1][j];
            }
            if (2 * j < g->w)
                d[2 * j] += half[0][j];
        }
}

/* Adds the patch matrix of g's c channels back into dx (g normalised); its rows are ld
 * floats apart. */
static void col2im_ld(const rt_conv_geom *g, const float *col, size_t ld, int oy0, int oy1,
                      float *dx)
{
    const int ow = g->ow;
    const size_t pc = ld;
    if (g->sw == 2 && g->dw == 1 && g->dh == 1 && g->w <= S2_MAX_W &&
        (g->pad == RT_PAD_ZERO || (g->pt | g->pb | g->pl | g->pr) == 0)) {
        col2im_s2(g, col, ld, oy0, oy1, dx);
        return;
    }
    for (int ci = 0; ci < g->c; ci++)
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                int ey = g->flip ? g->kh - 1 - ky : ky, ex = g->flip ? g->kw - 1 - kx : kx;
                int off = ex * g->dw - g->pl, lo, hi;
                rt_conv_interior(ow, g->sw, off, g->w, &lo, &hi);
                const float *row = col + (size_t)((ci * g->kh + ky) * g->kw + kx) * pc;
                for (int oy = oy0; oy < oy1; oy++) {
                    const float *s = row + (size_t)(oy - oy0) * ow;
                    int iy = rt_pad_index(oy * g->sh + ey * g->dh - g->pt, g->h, g->pad);
                    if (iy < 0)
                        continue;
                    float *d = dx + ((size_t)ci * g->h + iy) * g->w;
                    for (int ox = 0; ox < lo; ox++) {
                        int ix = rt_pad_index(ox * g->sw + off, g->w, g->pad);
                        if (ix >= 0)
                            d[ix] += s[ox];
                    }
                    if (g->sw == 1) {
                        /* lo + off >= 0 */
                        rt_grad_pass(s + lo, d + lo + off, (size_t)(hi - lo), 1);
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            d[ox * g->sw + off] += s[ox];
                    }
                    for (int ox = hi; ox < ow; ox++) {
                        int ix = rt_pad_index(ox * g->sw + off, g->w, g->pad);
                        if (ix >= 0)
                            d[ix] += s[ox];
                    }
                }
            }
}

static void col2im(const rt_conv_geom *g, const float *col, int oy0, int oy1, float *dx)
{
    col2im_ld(g, col, (size_t)(oy1 - oy0) * g->ow, oy0, oy1, dx);
}

void rt_col2im(const rt_conv_geom *g, const float *col, int oy0, int oy1, float *dx)
{
    const rt_conv_geom n = rt_conv_norm(g);
    col2im(&n, col, oy0, oy1, dx);
}

/* A 1x1, stride 1, unpadded convolution is a plain GEMM on the image itself. */
static int is_pointwise(const rt_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 &&
           g->pb == 0 && g->pl == 0 && g->pr == 0 && g->oh == g->h && g->ow == g->w;
}

/* Stride-1 and strided zero-padded convolutions take the implicit GEMM: the GEMM reads a
 * zero-bordered slab of the input in place (rt_conv_slab.c) instead of a patch matrix. */

/* Output rows per band so that the band's patch matrix is about COL_TARGET_FLOATS (g: one
 * group's geometry). */
static int band_rows(const rt_conv_geom *g)
{
    size_t per_row = (size_t)g->c * g->kh * g->kw * g->ow;
    int r = (int)(COL_TARGET_FLOATS / (per_row ? per_row : 1));
    if (r < 1)
        r = 1;
    return r > g->oh ? g->oh : r;
}

/* Images per GEMM (g: one group's geometry): 1 unless the output map has fewer than
 * FOLD_COLS / 2 pixels, which are then taken whole (no bands) whatever the channels;
 * pointwise convolutions, which read the image in place, and grouped ones keep one GEMM per
 * image and group. */
static int fold_count(const rt_conv_geom *g, int groups)
{
    const int P = g->oh * g->ow;
    if (groups != 1 || is_pointwise(g) || P >= FOLD_COLS / 2)
        return 1;
    return FOLD_COLS / P;
}

/* Where each buffer lives in a worker's scratch, in floats; every piece starts on a cache
 * line. Forward: packed W (one block of wstride floats per group), packed patches, one patch
 * row. Backward: the dW+db partial (first, so that the reduction finds it), packed W^T (per
 * group), dZ packed as A and as B, the patches transposed and packed as B, the patch matrix
 * (later dcol), and NR patch rows. Sizes other than W's and the partial's are one group's.
 * A folded batch (fold > 1 images per GEMM) also has cbuf: the GEMM's output (forward) or
 * the images' dZ (backward), oc rows of fold * P. */
typedef struct {
    size_t part, wpack, wstride, dza, dzb, patches, dcol, row, cbuf, total;
    int fold;
    /* the implicit routes (implicit != 0; rows: a band's output rows, sg: the largest slab):
     * the slab (xp, c channels of sg.lc floats), the patch rows' offsets (koff, ints), and
     * in grid one column panel of the GEMM's output (forward), or dZ on the slab's grid (dW,
     * which also has dZ^T packed in dzb and its dW^T in cbuf) */
    int implicit, rows;
    size_t xp, grid, koff;
    rt_conv_slab sg;
} layout;

/* Whether g (normalised) takes the implicit route: a geometry rt_conv_implicit_ok accepts,
 * whose largest slab's offsets fit in an int (hostile sizes take the im2col route). */
static int implicit_route(const rt_conv_geom *g)
{
    if (!rt_conv_implicit_ok(g))
        return 0;
    const int fold = fold_count(g, 1), rows = fold > 1 ? g->oh : rt_conv_slab_rows(g);
    const rt_conv_slab sg = rt_conv_slab_of(g, fold, 0, rows);
    return (double)g->c * (double)sg.lc + (double)sg.n < (double)INT_MAX / 2;
}

/* Columns of the implicit dW's product (oc rounded up to its panel width): whole tiles. */
static int dwt_cols(int oc)
{
    int nb = rt_gemm_implicit_a_nr(oc);
    return (oc + nb - 1) / nb * nb;
}

static layout plan(const rt_conv_geom *g, int backward)
{
    const rt_conv_geom q = group_geom(g);
    const int K = q.c * q.kh * q.kw, P = q.oh * q.ow;
    const int fold = fold_count(&q, g->groups);
    /* columns of one GEMM: a band, or fold whole images */
    const int pc = fold == 1 ? band_rows(&q) * q.ow : fold * P;
    layout l = {0};
    l.fold = fold;
    size_t at = 0;
#define TAKE(field, floats) (l.field = at, at += up16(floats))
    if (backward == 2) { /* dW and db by the implicit GEMM (bwd_implicit_task) */
        l.implicit = 1;
        l.rows = fold > 1 ? q.oh : rt_conv_slab_rows(&q);
        l.sg = rt_conv_slab_of(&q, fold, 0, l.rows);
        TAKE(part, (size_t)g->oc * K + (size_t)g->oc);
        TAKE(xp, (size_t)q.c * l.sg.lc);
        TAKE(grid, (size_t)q.oc * l.sg.n + 4); /* + 4: rt_conv_zero4's slack */
        TAKE(dzb, (size_t)l.sg.n * dwt_cols(q.oc));
        TAKE(koff, (size_t)K);
        TAKE(cbuf, (size_t)K * dwt_cols(q.oc));
    } else if (backward) {
        l.wstride = up16(rt_gemm_packed_a_floats(K, q.oc));
        TAKE(part, (size_t)g->oc * K + (size_t)g->oc);
        TAKE(wpack, l.wstride * g->groups);
        TAKE(dza, rt_gemm_packed_a_floats(q.oc, pc));
        TAKE(dzb, rt_gemm_packed_b_floats(q.oc, pc));
        TAKE(patches, rt_gemm_packed_b_floats(pc, K));
        TAKE(dcol, (size_t)K * pc);
        TAKE(row, (size_t)pc * rt_gemm_nr());
        if (fold > 1)
            TAKE(cbuf, (size_t)q.oc * pc);
    } else if (implicit_route(g) && K >= q.oc) {
        /* (with fewer patch rows than output channels, a first layer's, copying the
         * outputs out of the grid costs more than the im2col it saves) */
        l.implicit = 1;
        l.rows = fold > 1 ? q.oh : rt_conv_slab_rows(&q);
        l.sg = rt_conv_slab_of(&q, fold, 0, l.rows);
        l.wstride = up16(rt_gemm_packed_a_floats(q.oc, K));
        TAKE(wpack, l.wstride);
        TAKE(xp, (size_t)q.c * l.sg.lc);
        TAKE(grid, (size_t)q.oc * rt_gemm_nr()); /* one column panel of the GEMM */
        TAKE(koff, (size_t)K);
    } else {
        l.wstride = up16(rt_gemm_packed_a_floats(q.oc, K));
        TAKE(wpack, l.wstride * g->groups);
        TAKE(patches, rt_gemm_packed_b_floats(K, pc));
        TAKE(row, (size_t)pc);
        if (fold > 1)
            TAKE(cbuf, (size_t)q.oc * pc);
    }
#undef TAKE
    l.total = at;
    return l;
}

size_t rt_conv2d_scratch_size(const rt_conv_geom *gin)
{
    const rt_conv_geom g = rt_conv_norm(gin);
    if (is_depthwise(&g))
        return rt_conv_dw_scratch_size(&g);
    size_t f = plan(&g, 0).total, b = plan(&g, 1).total;
    size_t most = f > b ? f : b;
    if (rt_conv_direct_ok(&g, 0) && rt_conv_direct_scratch_size(&g) > most * sizeof(float))
        most = (rt_conv_direct_scratch_size(&g) + sizeof(float) - 1) / sizeof(float);
    if (implicit_route(&g) && plan(&g, 2).total > most)
        most = plan(&g, 2).total;
    if (rt_conv_wino_scratch_size(&g) / sizeof(float) > most)
        most = rt_conv_wino_scratch_size(&g) / sizeof(float);
    if (rt_conv_winow_takes(&g, -1) && rt_conv_winow_scratch_size(&g) / sizeof(float) > most)
        most = rt_conv_winow_scratch_size(&g) / sizeof(float);
    return most * sizeof(float);
}

/* ------------------------------------------------------------------ forward */

typedef struct {
    const rt_conv_geom *g;
    const float *x, *w, *b;
    rt_act act;
    float alpha;
    float *y;
    int n;
    int add; /* y += instead of y = (only with no bias and no activation) */
    const float *res; /* added before act by the tiles (rt_conv2d_forward_res), or NULL */
    atomic_int fail;
} fwd_job;

/* Forward of images [s0, s0 + nimg) at once (groups == 1, the whole map in one band): the
 * images' patches side by side make one GEMM of nimg * P columns, with bias and relu, into
 * cbuf, which is copied to the images. A column's sum is that of the per-image GEMM, so the
 * result does not depend on the fold. */
static void fwd_fold(const fwd_job *j, const layout *l, float *scr, int s0, int nimg)
{
    const rt_conv_geom *g = j->g;
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow, pc = nimg * P;
    const size_t xsz = (size_t)g->c * g->h * g->w;
    float *bp = scr + l->patches, *row = scr + l->row, *cb = scr + l->cbuf;
    im2col_packed(g, j->x + (size_t)s0 * xsz, xsz, nimg, 0, g->oh, row, bp);
    int fused = rt_act_in_epilogue(j->act);
    rt_gemm_packed_ep(g->oc, pc, K, scr + l->wpack, bp, 0, cb, pc, j->b,
                      fused ? j->act : RT_ACT_NONE, j->alpha);
    for (int t = 0; t < nimg; t++)
        for (int o = 0; o < g->oc; o++) {
            float *yo = j->y + ((size_t)(s0 + t) * g->oc + o) * P;
            const float *c = cb + (size_t)o * pc + (size_t)t * P;
            if (j->add)
                for (int i = 0; i < P; i++)
                    yo[i] += c[i];
            else if (fused)
                memcpy(yo, c, (size_t)P * sizeof *yo);
            else
                rt_act_forward(j->act, j->alpha, c, yo, (size_t)P);
        }
}

/* Where the columns of one panel of the implicit GEMM's grid go in y: the runs of grid
 * columns that are output pixels (a grid row's first ow columns, in the rows that hold
 * output), each contiguous in y; and how they get there. */
#define PANEL_RUNS 64 /* >= the GEMM's panel width: a run has at least one column */
typedef struct {
    const fwd_job *j;
    const rt_conv_slab *sg;
    int s0, oy0, rb;
    int mode; /* 0 copy, 1 add onto y, 2 the activation from the panel into y */
    int j0;   /* the panel whose runs these are (-1: none yet) */
    int nrun, at[PANEL_RUNS], len[PANEL_RUNS];
    size_t yat[PANEL_RUNS]; /* channel 0's offset in y */
} fwd_panel;

/* The runs of the panel at grid column j0 (found once: panel_fill and panel_sink both ask) */
static void panel_runs(fwd_panel *f, int j0, int nr)
{
    if (f->j0 == j0)
        return;
    const rt_conv_geom *g = f->j->g;
    const int S = f->sg->S, RS = f->sg->R * S, ow = g->ow, P = g->oh * g->ow;
    f->j0 = j0;
    f->nrun = 0;
    for (int q = j0, end = j0 + nr; q < end;) {
        int t = q / RS, r = (q - t * RS) / S, x = q - t * RS - r * S;
        int run = S - x < end - q ? S - x : end - q;
        if (r < f->rb && x < ow) {
            f->at[f->nrun] = q - j0;
            f->len[f->nrun] = ow - x < run ? ow - x : run;
            f->yat[f->nrun] = (size_t)(f->s0 + t) * g->oc * P + (size_t)(f->oy0 + r) * ow + x;
            f->nrun++;
        }
        q += run;
    }
}

/* rt_gemm_panel_fn: y's values into the panel, for a band's GEMM that adds to y */
static void panel_fill(void *ctx, int j0, int nr, float *panel, int ldp)
{
    fwd_panel *f = ctx;
    const int oc = f->j->g->oc;
    const size_t P = (size_t)f->j->g->oh * f->j->g->ow;
    panel_runs(f, j0, nr);
    for (int o = 0; o < oc; o++) {
        float *pr = panel + (size_t)o * ldp;
        memset(pr, 0, (size_t)nr * sizeof *pr);
        for (int k = 0; k < f->nrun; k++)
            rt_conv_copy(pr + f->at[k], f->j->y + f->yat[k] + o * P, f->len[k]);
    }
}

/* rt_gemm_panel_fn: the panel's output pixels into y */
static void panel_sink(void *ctx, int j0, int nr, float *panel, int ldp)
{
    fwd_panel *f = ctx;
    const fwd_job *j = f->j;
    const int oc = j->g->oc;
    const size_t P = (size_t)j->g->oh * j->g->ow;
    panel_runs(f, j0, nr);
    for (int o = 0; o < oc; o++)
        for (int k = 0; k < f->nrun; k++) {
            const float *c = panel + (size_t)o * ldp + f->at[k];
            float *yo = j->y + f->yat[k] + o * P;
            if (f->mode == 1)
                rt_grad_pass(c, yo, (size_t)f->len[k], 1); /* y += */
            else if (f->mode == 0)
                rt_conv_copy(yo, c, f->len[k]);
            else
                rt_act_forward(j->act, j->alpha, c, yo, (size_t)f->len[k]);
        }
}

/* Forward of the images [s0, s0 + nimg) (whole ones when nimg > 1) or of output rows
 * [oy0, oy0 + rb) of image s0, by the implicit GEMM over the grid: where rows are whole
 * vectors (or half vectors, or vectors the last of which is partial, where that costs little:
 * rt_gemm_implicit_rows_ok), tiles of output pixels stored into y by the micro-kernel
 * (rt_gemm_implicit_rows, with j->res added when given); else one column panel of the grid
 * at a time, each stored into y (panel_sink). When j->add, y is added as the im2col route
 * adds it, for the same bits: a band's GEMM adds to y (loaded into each panel first), a
 * folded batch's sum is added to y afterwards. */
static void fwd_implicit(const fwd_job *j, const layout *l, float *scr, int s0, int nimg,
                         int oy0, int rb)
{
    const rt_conv_geom *g = j->g;
    const int K = g->c * g->kh * g->kw;
    const size_t xsz = (size_t)g->c * g->h * g->w;
    rt_conv_slab sg = rt_conv_slab_of(g, nimg, oy0, rb);
    sg.lc = l->sg.lc, sg.plane = l->sg.plane; /* koff was made for the largest slab */
    float *xp = scr + l->xp;
    rt_conv_slab_fill(g, &sg, j->x + (size_t)s0 * xsz, xsz, xp);
    const int fused = rt_act_in_epilogue(j->act);
    const int add_in = j->add && l->fold == 1;
    fwd_panel f = {.j = j, .sg = &sg, .s0 = s0, .oy0 = oy0, .rb = rb, .j0 = -1};
    f.mode = j->add && !add_in ? 1 : fused ? 0 : 2;
    if (f.mode != 1 && rt_gemm_implicit_rows_ok(g->ow, sg.S)) {
        /* rows of whole vectors (or half vectors, or vectors the last one partial): the
         * tiles go straight into y, where each image's band is contiguous; the grid's
         * columns past ow are not computed (with a partial vector, its lanes past ow are
         * computed but not stored) */
        const size_t P = (size_t)g->oh * g->ow;
        for (int t = 0; t < nimg; t++) {
            const size_t at = (size_t)(s0 + t) * g->oc * P + (size_t)oy0 * g->ow;
            float *yt = j->y + at;
            rt_gemm_implicit_rows(g->oc, K, scr + l->wpack, xp + (size_t)t * sg.R * sg.S,
                                  (const int *)(scr + l->koff), rb * g->ow, g->ow, sg.S, yt,
                                  (int)P, add_in, j->b, j->res ? j->res + at : NULL,
                                  fused ? j->act : RT_ACT_NONE, j->alpha);
            if (!fused) /* the activation the epilogue does not do, on the band in cache */
                for (int o = 0; o < g->oc; o++)
                    rt_act_forward(j->act, j->alpha, yt + o * P, yt + o * P,
                                   (size_t)rb * g->ow);
        }
        return;
    }
    assert(!j->res); /* rt_conv2d_forward_res sends the residual here only for the rows */
    rt_gemm_implicit_panels(g->oc, sg.n, K, scr + l->wpack, xp, (const int *)(scr + l->koff),
                            scr + l->grid, j->b, fused ? j->act : RT_ACT_NONE, j->alpha,
                            add_in ? panel_fill : NULL, panel_sink, &f);
}

static void fwd_task(void *arg, rt_worker *wk)
{
    fwd_job *j = arg;
    const rt_conv_geom *g = j->g, q = group_geom(g);
    const int G = g->groups, K = q.c * q.kh * q.kw, P = g->oh * g->ow;
    const int rows = band_rows(&q), bands = (g->oh + rows - 1) / rows;
    const int pointwise = is_pointwise(g);
    layout l = plan(g, 0);
    /* work items are (image, group, band) triples, or runs of l.fold images, split in
     * contiguous runs over the workers; every output is made by one worker the same way,
     * whatever the pool */
    const int nw = rt_worker_count(wk), per = (j->n + nw - 1) / nw;
    const int F = l.fold < per ? l.fold : per; /* every worker gets images */
    const int ibands = l.implicit ? (g->oh + l.rows - 1) / l.rows : 0;
    const int items = l.fold > 1 ? (j->n + F - 1) / F
                      : l.implicit ? j->n * ibands : j->n * G * bands;
    int lo, hi;
    rt_split_range(items, rt_worker_count(wk), rt_worker_id(wk), &lo, &hi);
    if (lo >= hi)
        return;
    float *scr = rt_worker_scratch(wk, l.total * sizeof(float));
    if (!scr) {
        atomic_store(&j->fail, 1);
        return;
    }
    float *wp = scr + l.wpack, *bp = scr + l.patches, *row = scr + l.row;
    for (int gi = 0; gi < G; gi++) /* group gi's weights are the block [oc/G][K] */
        rt_gemm_pack_a(0, q.oc, K, 1.0f, j->w + (size_t)gi * q.oc * K, K,
                       wp + (size_t)gi * l.wstride);
    if (l.implicit) {
        rt_conv_slab_offsets(g, &l.sg, (int *)(scr + l.koff));
        for (int it = lo; it < hi; it++) {
            if (l.fold > 1) {
                fwd_implicit(j, &l, scr, it * F, j->n - it * F < F ? j->n - it * F : F, 0,
                             g->oh);
            } else {
                int oy0 = it % ibands * l.rows;
                fwd_implicit(j, &l, scr, it / ibands, 1, oy0,
                             g->oh - oy0 < l.rows ? g->oh - oy0 : l.rows);
            }
        }
        return;
    }
    if (l.fold > 1) {
        for (int it = lo; it < hi; it++)
            fwd_fold(j, &l, scr, it * F, j->n - it * F < F ? j->n - it * F : F);
        return;
    }
    for (int it = lo; it < hi; it++) {
        int s = it / (G * bands), gi = it / bands % G, oy0 = (it % bands) * rows;
        int oy1 = oy0 + rows < g->oh ? oy0 + rows : g->oh, pc = (oy1 - oy0) * g->ow;
        const float *xs = j->x + ((size_t)s * g->c + (size_t)gi * q.c) * g->h * g->w;
        float *ys = j->y + ((size_t)s * g->oc + (size_t)gi * q.oc) * P + (size_t)oy0 * g->ow;
        if (pointwise)
            rt_gemm_pack_b(0, K, pc, xs + (size_t)oy0 * g->ow, P, bp);
        else
            im2col_packed(&q, xs, 0, 1, oy0, oy1, row, bp);
        /* bias and relu / leaky relu are applied as the GEMM stores its tiles */
        int fused = rt_act_in_epilogue(j->act);
        rt_gemm_packed_ep(q.oc, pc, K, wp + (size_t)gi * l.wstride, bp, j->add, ys, P,
                          j->b ? j->b + (size_t)gi * q.oc : NULL,
                          fused ? j->act : RT_ACT_NONE, j->alpha);
        if (!fused)
            for (int o = 0; o < q.oc; o++)
                rt_act_forward(j->act, j->alpha, ys + (size_t)o * P, ys + (size_t)o * P,
                               (size_t)pc);
    }
}

/* The forward's route for g (normalised) with activation act over n images: the one place
 * that decides, for rt_conv2d_forward and rt_conv2d_forward_res alike. */
typedef enum { ROUTE_DW, ROUTE_DIRECT, ROUTE_WINO, ROUTE_GEMM } fwd_route;
static fwd_route route_of(const rt_conv_geom *g, rt_act act, int n)
{
    if (is_depthwise(g))
        return ROUTE_DW;
    if (rt_conv_direct_ok(g, 0)) /* few input channels: no patch matrix (rt_conv_direct.c) */
        return ROUTE_DIRECT;
    if (rt_conv_wino_ok(g, act, n))
        return ROUTE_WINO;
    return ROUTE_GEMM; /* fwd_task: im2col, or the implicit GEMM (plan().implicit) */
}

/* rt_conv2d_forward by route r over n >= 1 images of g (normalised). */
static int forward_by(fwd_route r, const rt_conv_geom *g, const float *x, const float *w,
                      const float *b, rt_act act, float alpha, float *y, int n, rt_threads *tp)
{
    switch (r) {
    case ROUTE_DW: return rt_conv_dw_forward(g, x, w, b, act, alpha, y, n, tp);
    case ROUTE_DIRECT: return rt_conv_direct_forward(g, x, w, b, act, alpha, y, n, tp);
    case ROUTE_WINO: return rt_conv_wino_forward(g, x, w, b, NULL, act, alpha, y, 0, n, tp);
    case ROUTE_GEMM: break;
    }
    fwd_job j = {.g = g, .x = x, .w = w, .b = b, .act = act, .alpha = alpha, .y = y, .n = n};
    rt_threads_run(tp, fwd_task, &j);
    return atomic_load(&j.fail) ? -1 : 0;
}

int rt_conv2d_forward(const rt_conv_geom *gin, const float *x, const float *w, const float *b,
                      rt_act act, float alpha, float *y, int n, rt_threads *tp)
{
    const rt_conv_geom g = rt_conv_norm(gin);
    if (n <= 0)
        return 0;
    return forward_by(route_of(&g, act, n), &g, x, w, b, act, alpha, y, n, tp);
}

int rt_conv2d_forward_res(const rt_conv_geom *gin, const float *x, const float *w,
                          const float *b, const float *res, rt_act act, float alpha, float *y,
                          int n, rt_threads *tp)
{
    const rt_conv_geom g = rt_conv_norm(gin);
    if (!res)
        return rt_conv2d_forward(gin, x, w, b, act, alpha, y, n, tp);
    if (n <= 0)
        return 0;
    /* Winograd's inverse transform adds the residual before the activation */
    if (route_of(&g, act, n) == ROUTE_WINO)
        return rt_conv_wino_forward(&g, x, w, b, res, act, alpha, y, 0, n, tp);
    /* the route rt_conv2d_forward would take with no activation, when it is the implicit
     * GEMM's straight into y (every work item then is) */
    if (rt_act_in_epilogue(act) && route_of(&g, RT_ACT_NONE, n) == ROUTE_GEMM &&
        plan(&g, 0).implicit &&
        rt_gemm_implicit_rows_ok(g.ow, rt_conv_slab_of(&g, 1, 0, 1).S)) {
        fwd_job j = {.g = &g, .x = x, .w = w, .b = b, .act = act, .alpha = alpha, .y = y,
                     .n = n, .res = res};
        rt_threads_run(tp, fwd_task, &j);
        return atomic_load(&j.fail) ? -1 : 0;
    }
    if (rt_conv2d_forward(gin, x, w, b, RT_ACT_NONE, 0.0f, y, n, tp) != 0)
        return -1;
    rt_add_act_forward_mt(y, res, act, alpha, y, (size_t)n * g.oc * g.oh * g.ow, tp);
    return 0;
}

/* Conv output per worker in one run of rt_conv2d_forward_pool: half a core's L2. */
#define POOL_RUN_BYTES (1u << 20)

int rt_conv2d_forward_pool(const rt_conv_geom *g, const float *x, const float *w,
                           const float *b, rt_act act, float alpha, float *y, int keep, int n,
                           const rt_pool_geom *pg, int avg, float *py, rt_threads *tp)
{
    const size_t in = (size_t)g->c * g->h * g->w, out = (size_t)g->oc * g->oh * g->ow;
    const size_t pout = (size_t)pg->c * pg->oh * pg->ow;
    const int nw = tp ? rt_threads_count(tp) : 1;
    if (n <= 0)
        return 0;
    /* the route of the whole batch for every run (Winograd's depends on the images a call
     * has), so that the bits are rt_conv2d_forward's whatever the runs */
    const rt_conv_geom gn = rt_conv_norm(g);
    const fwd_route r = route_of(&gn, act, n);
    /* a run gives each worker about POOL_RUN_BYTES of output: every route splits its
     * images (or their bands) over the workers in order, as the pooling splits its planes,
     * so each worker pools mostly what it has just computed */
    size_t per = POOL_RUN_BYTES / (out * sizeof(float));
    int run = (per < 1 ? 1 : per > (size_t)n ? n : (int)per) * nw;
    for (int s = 0; s < n; s += run) {
        int k = n - s < run ? n - s : run;
        float *yr = keep ? y + (size_t)s * out : y; /* else the same cache-warm place */
        if (forward_by(r, &gn, x + (size_t)s * in, w, b, act, alpha, yr, k, tp) != 0)
            return -1;
        if (avg)
            rt_avgpool_forward(pg, yr, py + (size_t)s * pout, k, tp);
        else
            rt_maxpool_forward(pg, yr, py + (size_t)s * pout, k, tp);
    }
    return 0;
}

/* ------------------------------------------------------------------ backward */

typedef struct {
    const rt_conv_geom *g;
    const float *x, *w, *dz;
    float *dx, *dw, *db;
    int accum, n;
    rt_threads *tp;
    int nodw; /* bwd_task makes dX only (dW and db by the implicit GEMM) */
    atomic_int fail;
} bwd_job;

/* dW, db and dX of one group of one image (q: the group's geometry; xs, dzs, dw, db, dxs
 * point at the group's blocks; wt is its packed W^T). */
static void bwd_group(const rt_conv_geom *q, const layout *l, float *scr, const float *xs,
                      const float *dzs, const float *wt, float *dw, float *db, float *dxs)
{
    const int K = q->c * q->kh * q->kw, P = q->oh * q->ow, rows = band_rows(q);
    const int pointwise = is_pointwise(q);
    float *dza = scr + l->dza, *dzb = scr + l->dzb;
    float *pt = scr + l->patches, *dcol = scr + l->dcol, *row = scr + l->row;
    for (int oy0 = 0; oy0 < q->oh; oy0 += rows) {
        int oy1 = oy0 + rows < q->oh ? oy0 + rows : q->oh, pc = (oy1 - oy0) * q->ow;
        const float *dzband = dzs + (size_t)oy0 * q->ow;
        /* dW[oc][K] += dZ[oc][band] . patches[K][band]^T */
        if (!dw) {
            /* dX only */
        } else if (K <= NT_MAX_K) {
            /* few patch rows over many pixels (a first layer): dot products of rows
             * that are both contiguous, nothing packed (patches borrow dcol's buffer) */
            if (pointwise) {
                rt_gemm_nt(q->oc, K, pc, dzband, P, xs + (size_t)oy0 * q->ow, P, 1, dw, K);
            } else {
                im2col(q, xs, oy0, oy1, dcol);
                rt_gemm_nt(q->oc, K, pc, dzband, P, dcol, pc, 1, dw, K);
            }
        } else {
            rt_gemm_pack_a(0, q->oc, pc, 1.0f, dzband, P, dza);
            if (pointwise)
                rt_gemm_pack_b(1, pc, K, xs + (size_t)oy0 * q->ow, P, pt);
            else
                im2col_packed_t(q, xs, 0, 1, oy0, oy1, row, pt);
            rt_gemm_packed(q->oc, K, pc, dza, pt, 1, dw, K);
        }
        if (db)
            for (int o = 0; o < q->oc; o++)
                db[o] += (float)rt_sum(dzband + (size_t)o * P, (size_t)pc);
        if (!dxs)
            continue;
        /* dX: W^T[K][oc] * dZ[oc][band], then back to the pixels the patches came from */
        rt_gemm_pack_b(0, q->oc, pc, dzband, P, dzb);
        if (pointwise) {
            rt_gemm_packed(K, pc, q->oc, wt, dzb, 1, dxs + (size_t)oy0 * q->ow, P);
        } else {
            rt_gemm_packed(K, pc, q->oc, wt, dzb, 0, dcol, pc);
            col2im(q, dcol, oy0, oy1, dxs);
        }
    }
}

/* dW, db and dX of nimg images at once (groups == 1, the whole map in one band; xs, dzs and
 * dxs point at the first image, dxs may be NULL): their dZ side by side in cbuf make
 * GEMMs of nimg * P columns, for dW over that depth, for dX before col2im per image. */
static void bwd_fold(const rt_conv_geom *g, const layout *l, float *scr, const float *xs,
                     const float *dzs, const float *wt, float *dw, float *db, float *dxs,
                     int nimg)
{
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow, pc = nimg * P;
    const size_t xsz = (size_t)g->c * g->h * g->w;
    float *dza = scr + l->dza, *dzb = scr + l->dzb, *dzc = scr + l->cbuf;
    float *pt = scr + l->patches, *dcol = scr + l->dcol, *row = scr + l->row;
    for (int t = 0; t < nimg; t++)
        for (int o = 0; o < g->oc; o++)
            memcpy(dzc + (size_t)o * pc + (size_t)t * P, dzs + ((size_t)t * g->oc + o) * P,
                   (size_t)P * sizeof *dzc);
    /* dW[oc][K] += dZ[oc][pc] . patches[K][pc]^T, as in bwd_group */
    if (!dw) {
        /* dX only */
    } else if (K <= NT_MAX_K) {
        for (int r = 0; r < K; r++)
            for (int t = 0; t < nimg; t++)
                im2col_row(g, xs + (size_t)t * xsz, r, 0, g->oh,
                           dcol + (size_t)r * pc + (size_t)t * P);
        rt_gemm_nt(g->oc, K, pc, dzc, pc, dcol, pc, 1, dw, K);
    } else {
        rt_gemm_pack_a(0, g->oc, pc, 1.0f, dzc, pc, dza);
        im2col_packed_t(g, xs, xsz, nimg, 0, g->oh, row, pt);
        rt_gemm_packed(g->oc, K, pc, dza, pt, 1, dw, K);
    }
    if (db)
        for (int t = 0; t < nimg; t++)
            for (int o = 0; o < g->oc; o++)
                db[o] += (float)rt_sum(dzc + (size_t)o * pc + (size_t)t * P, (size_t)P);
    if (!dxs)
        return;
    rt_gemm_pack_b(0, g->oc, pc, dzc, pc, dzb);
    rt_gemm_packed(K, pc, g->oc, wt, dzb, 0, dcol, pc);
    for (int t = 0; t < nimg; t++)
        col2im_ld(g, dcol + (size_t)t * P, (size_t)pc, 0, g->oh, dxs + (size_t)t * xsz);
}

static void bwd_task(void *arg, rt_worker *wk)
{
    bwd_job *j = arg;
    const rt_conv_geom *g = j->g, q = group_geom(g);
    const int G = g->groups, K = q.c * q.kh * q.kw, P = g->oh * g->ow, tid = rt_worker_id(wk);
    layout l = plan(g, 1);
    float *scr = rt_worker_scratch(wk, l.total * sizeof(float));
    if (!scr) {
        atomic_store(&j->fail, 1);
        return;
    }
    /* worker 0 sums straight into dw/db; the others into partials added in order later
     * (none with nodw) */
    float *dw = j->nodw ? NULL : tid == 0 ? j->dw : scr + l.part;
    float *db = j->db && !j->nodw ? (tid == 0 ? j->db : scr + l.part + (size_t)g->oc * K) : NULL;
    float *wt = scr + l.wpack;
    if (dw)
        memset(dw, 0, (size_t)g->oc * K * sizeof *dw);
    if (db)
        memset(db, 0, (size_t)g->oc * sizeof *db);

    int s0, s1;
    rt_split_range(j->n, rt_worker_count(wk), tid, &s0, &s1);
    if (j->dx && s0 < s1)
        for (int gi = 0; gi < G; gi++) /* W^T of each group: K x oc/G */
            rt_gemm_pack_a(1, K, q.oc, 1.0f, j->w + (size_t)gi * q.oc * K, K,
                           wt + (size_t)gi * l.wstride);
    const size_t xsz = (size_t)g->c * g->h * g->w, gx = (size_t)q.c * g->h * g->w;
    if (j->dx && !j->accum && s0 < s1)
        memset(j->dx + (size_t)s0 * xsz, 0, (size_t)(s1 - s0) * xsz * sizeof *j->dx);
    if (l.fold > 1) { /* runs of l.fold images of this worker's range */
        for (int s = s0; s < s1; s += l.fold) {
            int nimg = s1 - s < l.fold ? s1 - s : l.fold;
            bwd_fold(g, &l, scr, j->x + (size_t)s * xsz, j->dz + (size_t)s * g->oc * P, wt,
                     dw, db, j->dx ? j->dx + (size_t)s * xsz : NULL, nimg);
        }
        return;
    }
    for (int s = s0; s < s1; s++) {
        float *dxs = j->dx ? j->dx + (size_t)s * xsz : NULL;
        for (int gi = 0; gi < G; gi++)
            bwd_group(&q, &l, scr, j->x + (size_t)s * xsz + gi * gx,
                      j->dz + ((size_t)s * g->oc + (size_t)gi * q.oc) * P,
                      wt + (size_t)gi * l.wstride, dw ? dw + (size_t)gi * q.oc * K : NULL,
                      db ? db + (size_t)gi * q.oc : NULL, dxs ? dxs + gi * gx : NULL);
    }
}

/* dW^T[K][oc] += the patches times dZ^T for the images [s0, s0 + nimg) (whole ones when
 * nimg > 1) or output rows [oy0, oy0 + rb) of image s0, and db += dZ's sums (x and dz point
 * at image s0): dZ is laid out on the slab's grid with zeros in the columns and rows that
 * hold no output, packed as the GEMM's B (transposed in 4 x 4 blocks), and the patch rows
 * are read from the slab in place (rt_gemm_implicit_a). */
static void bwd_implicit(const rt_conv_geom *g, const layout *l, float *scr, const float *x,
                         const float *dz, int nimg, int oy0, int rb, float *dwt, float *db)
{
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow, ow = g->ow, oc = g->oc;
    const int NR = rt_gemm_implicit_a_nr(oc), ocp = dwt_cols(oc);
    rt_conv_slab sg = rt_conv_slab_of(g, nimg, oy0, rb);
    sg.lc = l->sg.lc, sg.plane = l->sg.plane;
    const int n = sg.n, S = sg.S;
    float *xp = scr + l->xp, *dg = scr + l->grid, *bp = scr + l->dzb;
    rt_conv_slab_fill(g, &sg, x, (size_t)g->c * g->h * g->w, xp);
    for (int o = 0; o < oc; o++) {
        float *d = dg + (size_t)o * n;
        for (int row = 0; row * S < n; row++) {
            int t = row / sg.R, r = row - t * sg.R;
            if (r >= rb) {
                memset(d + (size_t)row * S, 0, (size_t)S * sizeof *d);
                continue;
            }
            const float *src = dz + ((size_t)t * oc + o) * P + (size_t)(oy0 + r) * ow;
            rt_conv_copy(d + (size_t)row * S, src, ow);
            if (S - ow <= 4) /* into the next row, or the grid's slack */
                rt_conv_zero4(d + (size_t)row * S + ow, S - ow);
            else
                memset(d + (size_t)row * S + ow, 0, (size_t)(S - ow) * sizeof *d);
        }
    }
    /* B[q][o] = dg[o][q] in panels of NR channels, zeros past oc */
    for (int o0 = 0; o0 < ocp; o0 += NR) {
        float *dst = bp + (size_t)(o0 / NR) * n * NR;
        int q = 0;
#ifdef RT_HAVE_V4
        if (o0 + NR <= oc)
            for (; q + 4 <= n; q += 4)
                for (int oo = 0; oo < NR; oo += 4)
                    rt_transpose4(dg + (size_t)(o0 + oo) * n + q, n, dst + (size_t)q * NR + oo,
                                  NR);
#endif
        for (; q < n; q++)
            for (int oo = 0; oo < NR; oo++)
                dst[(size_t)q * NR + oo] = o0 + oo < oc ? dg[(size_t)(o0 + oo) * n + q] : 0.0f;
    }
    rt_gemm_implicit_a(K, ocp, n, xp, (const int *)(scr + l->koff), bp, 1, dwt, ocp);
    if (db)
        for (int t = 0; t < nimg; t++)
            for (int o = 0; o < oc; o++)
                db[o] += (float)rt_sum(dz + ((size_t)t * oc + o) * P + (size_t)oy0 * ow,
                                       (size_t)rb * ow);
}

/* dW and db of a worker's images by the implicit GEMM (groups 1, dX made elsewhere): worker
 * 0 into dw/db, the others into partials, as bwd_task. */
static void bwd_implicit_task(void *arg, rt_worker *wk)
{
    bwd_job *j = arg;
    const rt_conv_geom *g = j->g;
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow, tid = rt_worker_id(wk);
    layout l = plan(g, 2);
    float *scr = rt_worker_scratch(wk, l.total * sizeof(float));
    if (!scr) {
        atomic_store(&j->fail, 1);
        return;
    }
    float *dw = tid == 0 ? j->dw : scr + l.part, *dwt = scr + l.cbuf;
    float *db = j->db ? (tid == 0 ? j->db : scr + l.part + (size_t)g->oc * K) : NULL;
    const int ocp = dwt_cols(g->oc);
    memset(dwt, 0, (size_t)K * ocp * sizeof *dwt);
    if (db)
        memset(db, 0, (size_t)g->oc * sizeof *db);
    rt_conv_slab_offsets(g, &l.sg, (int *)(scr + l.koff));
    const size_t xsz = (size_t)g->c * g->h * g->w, zsz = (size_t)g->oc * P;
    int s0, s1;
    rt_split_range(j->n, rt_worker_count(wk), tid, &s0, &s1);
    for (int s = s0; s < s1; s += l.fold) {
        int nimg = s1 - s < l.fold ? s1 - s : l.fold;
        for (int oy0 = 0; oy0 < g->oh; oy0 += l.rows)
            bwd_implicit(g, &l, scr, j->x + (size_t)s * xsz, j->dz + (size_t)s * zsz, nimg,
                         oy0, g->oh - oy0 < l.rows ? g->oh - oy0 : l.rows, dwt, db);
    }
    for (int o = 0; o < g->oc; o++)
        for (int r = 0; r < K; r++)
            dw[(size_t)o * K + r] = dwt[(size_t)r * ocp + o];
}

/* Adds the workers' partials to worker 0's sums, element by element in worker order. */
static void reduce_task(void *arg, rt_worker *wk)
{
    bwd_job *j = arg;
    const rt_conv_geom *g = j->g;
    const int K = g->c / g->groups * g->kh * g->kw, nt = rt_worker_count(wk);
    const int nw = g->oc * K, total = nw + (j->db ? g->oc : 0);
    const size_t part = plan(g, 1).part;
    int lo, hi;
    rt_split_range(total, nt, rt_worker_id(wk), &lo, &hi);
    for (int i = lo; i < hi; i++) {
        float *dst = i < nw ? j->dw + i : j->db + (i - nw);
        float acc = *dst;
        for (int t = 1; t < nt; t++)
            acc += ((const float *)rt_threads_scratch_of(j->tp, t))[part + i];
        *dst = acc;
    }
}

/* The input gradient as a forward convolution, where that is exact and pays: for stride 1,
 * no dilation, one group, zero padding of at most k - 1, dX is the correlation of dZ, zero-
 * padded by k - 1 - p, with the kernel rotated 180 degrees and its channel axes swapped
 * (dX[c][a][b] = sum_o,u,v W[o][c][kh-1-u][kw-1-v] dZ[o][a+u-(kh-1-pt)][b+v-(kw-1-pl)]), so
 * it goes through the forward's GEMM (batch fold included) with no col2im, whose scattered
 * adds are the slow half of the GEMM-then-col2im route. Returns 1 when done, 0 when g does
 * not qualify (or memory is short: the caller takes the col2im route), -1 on failure. */
static int dx_by_correlation(const rt_conv_geom *g, const float *w, const float *dz, float *dx,
                             int accum, int n, rt_threads *tp)
{
    if (g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 || g->groups != 1 ||
        (g->pad != RT_PAD_ZERO && (g->pt | g->pb | g->pl | g->pr) != 0) ||
        g->pt > g->kh - 1 || g->pb > g->kh - 1 || g->pl > g->kw - 1 || g->pr > g->kw - 1 ||
        is_pointwise(g))
        return 0;
    const size_t kk = (size_t)g->kh * g->kw;
    float *wt = malloc((size_t)g->oc * g->c * kk * sizeof *wt);
    if (!wt)
        return 0;
    for (int o = 0; o < g->oc; o++) /* W'[c][o] = W[o][c]; the rotation is the flip flag */
        for (int c = 0; c < g->c; c++)
            memcpy(wt + ((size_t)c * g->oc + o) * kk, w + ((size_t)o * g->c + c) * kk,
                   kk * sizeof *wt);
    rt_conv_geom t = *g;
    t.c = g->oc, t.h = g->oh, t.w = g->ow;
    t.oc = g->c, t.oh = g->h, t.ow = g->w;
    t.pt = g->kh - 1 - g->pt, t.pb = g->kh - 1 - g->pb;
    t.pl = g->kw - 1 - g->pl, t.pr = g->kw - 1 - g->pr;
    t.flip = !g->flip;
    t.pad = RT_PAD_ZERO; /* dZ is zero outside the map, whatever g's own (absent) padding */
    if (rt_conv_wino_ok(&t, RT_ACT_NONE, n)) {
        int r = rt_conv_wino_forward(&t, dz, wt, NULL, NULL, RT_ACT_NONE, 0.0f, dx, accum, n, tp);
        free(wt);
        return r < 0 ? -1 : 1;
    }
    fwd_job j = {.g = &t, .x = dz, .w = wt, .act = RT_ACT_NONE, .y = dx, .n = n, .add = accum};
    rt_threads_run(tp, fwd_task, &j);
    free(wt);
    return atomic_load(&j.fail) ? -1 : 1;
}

int rt_conv2d_backward(const rt_conv_geom *gin, const float *x, const float *w, const float *dz,
                       float *dx, int accum, float *dw, float *db, int n, rt_threads *tp)
{
    const rt_conv_geom g = rt_conv_norm(gin);
    if (n <= 0) {
        memset(dw, 0, rt_conv2d_weight_count(&g) * sizeof *dw);
        if (db)
            memset(db, 0, (size_t)g.oc * sizeof *db);
        return 0;
    }
    if (is_depthwise(&g))
        return rt_conv_dw_backward(&g, x, w, dz, dx, accum, dw, db, n, tp);
    if (dx) {
        int r = dx_by_correlation(&g, w, dz, dx, accum, n, tp);
        if (r < 0)
            return -1;
        if (r > 0)
            dx = NULL; /* done: the GEMMs below make dW and db only */
    }
    if (!dx && rt_conv_direct_ok(&g, 1)) /* few input channels: dW, db by rt_conv_direct.c */
        return rt_conv_direct_backward(&g, x, dz, dw, db, n, tp);
    if (!dx && rt_conv_winow_takes(&g, n)) /* 3x3 "same", 32 wide: by rt_conv_wino_wgrad.c */
        return rt_conv_winow_backward(&g, x, dz, dw, db, n, tp);
    bwd_job j = {&g, x, w, dz, dx, dw, db, accum, n, tp, 0, 0};
    /* dW by the implicit GEMM where the patch rows are more than the dot products'
     * NT_MAX_K; a dX still to make (strided) by GEMM and col2im first */
    int implicit = implicit_route(&g) && g.c * g.kh * g.kw > NT_MAX_K;
    if (implicit && dx) {
        j.nodw = 1;
        rt_threads_run(tp, bwd_task, &j);
        if (atomic_load(&j.fail))
            return -1;
        j.nodw = 0;
    }
    rt_threads_run(tp, implicit ? bwd_implicit_task : bwd_task, &j);
    if (atomic_load(&j.fail))
        return -1;
    if (rt_threads_count(tp) > 1)
        rt_threads_run(tp, reduce_task, &j);
    return 0;
}

int rt_conv2d_backward_pool(const rt_conv_geom *gin, const float *x, const float *w,
                            const rt_pool_geom *pg, const float *y, const float *dpy, float *dz,
                            float *dw, float *db, int n, rt_threads *tp)
{
    const rt_conv_geom g = rt_conv_norm(gin);
    if (n > 0 && !is_depthwise(&g) && rt_conv_direct_ok(&g, 1))
        return rt_conv_direct_backward_pool(&g, x, pg, y, dpy, dw, db, n, tp);
    rt_maxpool_backward_relu(pg, y, dpy, dz, n, tp); /* through dz, then as usual */
    return rt_conv2d_backward(gin, x, w, dz, NULL, 0, dw, db, n, tp);
}
