/*
 * rt_conv_slab.c - the slabs of the implicit-GEMM convolution route: which geometries take
 * it, the slab's grid, its filling from the images, and where each patch row starts in it,
 * so that rt_conv.c's GEMMs read the patches in place instead of from an im2col matrix.
 */
#include "rt_conv_int.h"
#include "rt_gemm_int.h"

#include <stdlib.h>
#include <string.h>

#define SLAB_TARGET_FLOATS (64 * 1024) /* a band's slab and GEMM output: about 256 KiB */

static size_t up16(size_t f)
{
    return (f + 15) / 16 * 16;
}

/* Stride-1, undilated, ungrouped convolutions with zero padding of at most k - 1 skip the
 * patch matrix: the input (a band of rows, or a few whole images) is copied once into a
 * zero-bordered slab whose rows are S = w + max(pl, pr) floats apart (the right border of a
 * row is the left border of the next), and output pixel (oy, ox) is computed at grid position
 * q = oy*S + ox; tap (c, ky, kx) of that pixel is then slab[c*lc + ky*S + kx + q], so row r
 * of the patch matrix is the slab itself from offset koff[r], and the GEMM reads it in place
 * (rt_gemm_implicit_panels). The S - ow grid columns past each output row hold products
 * that are not kept; where ow is a whole number of vectors (or half vectors, or where a
 * partial last vector per row costs little: rt_gemm_implicit_rows_ok), rt_gemm_implicit_rows
 * takes the output pixels as its columns and stores them straight into the output, the
 * columns past ow skipped (or, in a partial vector, computed and not stored). Folded images are stacked
 * R = h + max(pt, pb) rows apart: the zero rows between two are the bottom border of one and
 * the top border of the next. Every output sums the same products in the same order as the
 * im2col route, so the bits do not change.
 * A stride of sh x sw splits each channel into sh*sw phase planes, plane (py, px) holding
 * the padded input's pixels (sh*i + py, sw*j + px): tap (ky, kx) of output (oy, ox) is then
 * pixel (oy + ky/sh, ox + kx/sw) of plane (ky%sh, kx%sw), a stride-1 read again. The planes
 * hold the padding's zeros themselves, ow + (kw-1)/sw columns and oh + (kh-1)/sh rows per
 * image, without shared borders. */

/* RT_CONV_IMPLICIT=0 starts with the route off */
static rt_conv_switch implicit_on = RT_CONV_SWITCH("RT_CONV_IMPLICIT", "01", 1);

int rt_conv_use_implicit(int on)
{
    return rt_conv_switch_set(&implicit_on, on != 0);
}

static int imax(int a, int b)
{
    return a > b ? a : b;
}

/* Whether g (normalised) takes the implicit route: zero padding (of at most k - 1 at stride
 * 1, where borders are shared), no dilation, one group, a kernel of more than one tap. */
int rt_conv_implicit_ok(const rt_conv_geom *g)
{
    int zero_pad = g->pad == RT_PAD_ZERO || (g->pt | g->pb | g->pl | g->pr) == 0;
    int strided = g->sh > 1 || g->sw > 1;
    return rt_conv_switch_get(&implicit_on) && g->groups == 1 && g->dh == 1 && g->dw == 1 && g->kh * g->kw > 1 &&
           zero_pad &&
           (strided || (g->pt < g->kh && g->pb < g->kh && g->pl < g->kw && g->pr < g->kw));
}

/* The slab of nimg images (whole ones when nimg > 1) or of a band of rb output rows from oy0,
 * with lc the smallest channel stride: the grid rows, one more grid row and a panel of NR
 * floats, all read by the GEMM's last panel. */
rt_conv_slab rt_conv_slab_of(const rt_conv_geom *g, int nimg, int oy0, int rb)
{
    rt_conv_slab sg;
    sg.nimg = nimg;
    sg.oy0 = oy0;
    sg.rb = rb;
    if (g->sh == 1 && g->sw == 1) {
        sg.S = g->w + imax(g->pl, g->pr);
        sg.R = nimg > 1 ? g->h + imax(g->pt, g->pb) : rb;
        sg.n = ((nimg - 1) * sg.R + rb) * sg.S;
        sg.lc = sg.plane = up16((size_t)(nimg * sg.R + g->kh) * sg.S + (size_t)rt_gemm_nr());
        return sg;
    }
    const int ay = (g->kh - 1) / g->sh; /* the plane rows a window reaches below its own */
    sg.S = g->ow + (g->kw - 1) / g->sw;
    sg.R = nimg > 1 ? g->oh + ay : rb;
    sg.n = ((nimg - 1) * sg.R + rb) * sg.S;
    sg.plane = up16((size_t)((nimg - 1) * sg.R + rb + ay + 1) * sg.S + (size_t)rt_gemm_nr());
    sg.lc = sg.plane * g->sh * g->sw;
    return sg;
}

/* Output rows per band of one image: the slab and the grid output together about
 * SLAB_TARGET_FLOATS. */
int rt_conv_slab_rows(const rt_conv_geom *g)
{
    const rt_conv_slab one = rt_conv_slab_of(g, 1, 0, 1);
    const size_t S = (size_t)one.S, ph = (size_t)g->sh * g->sw;
    const size_t per = ((size_t)g->c + g->oc) * S, fixed = (size_t)g->c * ph * (g->kh + 1) * S;
    size_t r = SLAB_TARGET_FLOATS > fixed + per ? (SLAB_TARGET_FLOATS - fixed) / per : 1;
    return r > (size_t)g->oh ? g->oh : (int)r;
}

static void slab_fill_strided(const rt_conv_geom *g, const rt_conv_slab *sg, const float *x,
                              size_t xstride, float *xp);

/* Fills the slab sg of the images at x (xstride floats apart): data rows with their zero
 * borders, zero rows where the window leaves the image, zeros to the channel's end. */
void rt_conv_slab_fill(const rt_conv_geom *g, const rt_conv_slab *sg, const float *x,
                       size_t xstride, float *xp)
{
    if (g->sh > 1 || g->sw > 1) {
        slab_fill_strided(g, sg, x, xstride, xp);
        return;
    }
    const int rows = sg->nimg * sg->R + g->kh - 1, S = sg->S, pl = g->pl, w = g->w;
    /* a row's zero borders written as one 4-float store each, the right one running into
     * the next row (or the zeros after the last, of at least S + NR floats) */
    const int small_borders = pl <= 4 && S - pl - w <= 4 && pl + w >= 4;
    for (int c = 0; c < g->c; c++) {
        float *d = xp + (size_t)c * sg->lc;
        for (int gr = 0; gr < rows; gr++, d += S) {
            int t = gr / sg->R < sg->nimg ? gr / sg->R : sg->nimg - 1;
            int iy = sg->oy0 - g->pt + gr - t * sg->R;
            if (iy < 0 || iy >= g->h) {
                memset(d, 0, (size_t)S * sizeof *d);
                continue;
            }
            const float *src = x + (size_t)t * xstride + ((size_t)c * g->h + iy) * w;
            if (small_borders) { /* 4-float zero stores; the next row's writes follow */
                rt_conv_zero4(d, pl);
                rt_conv_copy(d + pl, src, w);
                rt_conv_zero4(d + pl + w, S - pl - w);
            } else {
                memset(d, 0, (size_t)pl * sizeof *d);
                memcpy(d + pl, src, (size_t)w * sizeof *d);
                memset(d + pl + w, 0, (size_t)(S - pl - w) * sizeof *d);
            }
        }
        memset(d, 0, (sg->lc - (size_t)rows * S) * sizeof *d);
    }
}

/* d[i] = s[st * i] for i < n: at stride 2 and n >= 8, 8 floats at a time from two 8-float
 * loads, the last 8 overlapping (reading no further than s[st * (n - 1)]); one by one
 * otherwise. Inlined into the copies
 * of slab_fill_strided, so the shuffles are AVX-512/AVX2 ones where the CPU has them. */
typedef float slab_v8 __attribute__((vector_size(32), aligned(4)));

static inline void gather(float *d, const float *s, int n, int st)
{
    int i = 0;
#ifdef RT_HAVE_V4
    if (st == 2 && n >= 8) {
        for (; i + 9 <= n; i += 8) {
            slab_v8 a = *(const slab_v8 *)(s + 2 * i), b = *(const slab_v8 *)(s + 2 * i + 8);
            *(slab_v8 *)(d + i) = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
        }
        /* the last 8 (overlapping what is done): b starts one float early, so that its
         * last float is s[2 * (n - 1)] */
        const int j = n - 8;
        slab_v8 a = *(const slab_v8 *)(s + 2 * j), b = *(const slab_v8 *)(s + 2 * j + 7);
        *(slab_v8 *)(d + j) = __builtin_shufflevector(a, b, 0, 2, 4, 6, 9, 11, 13, 15);
        return;
    }
#endif
    for (; i < n; i++)
        d[i] = s[st * i];
}

/* Widest plane row fill_pairs takes, and the rows it copies before it splits them (its
 * row buffer, on the stack: 32 KiB) */
#define PAIRS_MAX_S 256
#define PAIRS_ROWS 16

/* slab_fill_strided at a column stride of 2 (rows: its plane rows): the two column phases
 * of a plane row in one pass. PAIRS_ROWS image rows are copied into buf with their zero
 * borders (buf[j] = image column j - pl), then plane px's column i is buf[2 i + px]: the
 * even and the odd lanes of two 8-float loads. Copying a few rows before reading any keeps
 * the loads from waiting on the copy's stores (read at once, that wait took half the pass).
 * The pass had taken a third of a stride-2 layer's forward (16 -> 32 channels at 32x32),
 * each phase gathering the row on its own and finding each row's image by a division. */
RT_CLONES static void fill_pairs(const rt_conv_geom *g, const rt_conv_slab *sg,
                                 const float *x, size_t xstride, float *xp, int rows)
{
    const int S = sg->S, R = sg->R, BS = (2 * S + 15) / 16 * 16;
    const int cw = g->w < 2 * S - g->pl ? g->w : 2 * S - g->pl; /* the columns buf holds */
    float buf[PAIRS_ROWS * 2 * PAIRS_MAX_S] __attribute__((aligned(64)));
    memset(buf, 0, (size_t)PAIRS_ROWS * BS * sizeof *buf);
    for (int c = 0; c < g->c; c++)
        for (int py = 0; py < g->sh; py++) {
            float *d0 = xp + (size_t)c * sg->lc + (size_t)py * 2 * sg->plane, *d1 = d0 + sg->plane;
            /* plane row gr is row r of image t (the last image's rows run on past R) */
            for (int gr0 = 0, t = 0, r = 0; gr0 < rows; gr0 += PAIRS_ROWS) {
                const int nr = rows - gr0 < PAIRS_ROWS ? rows - gr0 : PAIRS_ROWS;
                int inside[PAIRS_ROWS];
                for (int k = 0; k < nr; k++) {
                    const int iy = g->sh * (sg->oy0 + r) + py - g->pt;
                    inside[k] = iy >= 0 && iy < g->h;
                    if (inside[k])
                        memcpy(buf + (size_t)k * BS + g->pl,
                               x + (size_t)t * xstride + ((size_t)c * g->h + iy) * g->w,
                               (size_t)cw * sizeof *buf);
                    if (++r == R && t < sg->nimg - 1)
                        t++, r = 0;
                }
                for (int k = 0; k < nr; k++, d0 += S, d1 += S) {
                    if (!inside[k]) {
                        memset(d0, 0, (size_t)S * sizeof *d0);
                        memset(d1, 0, (size_t)S * sizeof *d1);
                        continue;
                    }
                    const float *q = buf + (size_t)k * BS;
                    int i = 0;
#ifdef RT_HAVE_V4
                    for (; i + 8 <= S; i += 8) {
                        slab_v8 a = *(const slab_v8 *)(q + 2 * i);
                        slab_v8 b = *(const slab_v8 *)(q + 2 * i + 8);
                        *(slab_v8 *)(d0 + i) =
                            __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
                        *(slab_v8 *)(d1 + i) =
                            __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
                    }
#endif
                    for (; i < S; i++) {
                        d0[i] = q[2 * i];
                        d1[i] = q[2 * i + 1];
                    }
                }
            }
            memset(d0, 0, (sg->plane - (size_t)rows * S) * sizeof *d0);
            memset(d1, 0, (sg->plane - (size_t)rows * S) * sizeof *d1);
        }
}

/* The phase planes of a strided slab: plane (py, px) of channel c, image t, row j holds the
 * padded input's row sh*(oy0 + j) + py, columns sw*i + px, zeros outside the image. */
RT_CLONES static void slab_fill_strided(const rt_conv_geom *g, const rt_conv_slab *sg,
                                        const float *x, size_t xstride, float *xp)
{
    const int ay = (g->kh - 1) / g->sh, S = sg->S;
    const int rows = (sg->nimg - 1) * sg->R + sg->rb + ay;
    if (g->sw == 2 && S <= PAIRS_MAX_S && g->pl < 2 * S) {
        fill_pairs(g, sg, x, xstride, xp, rows);
        return;
    }
    for (int c = 0; c < g->c; c++)
        for (int py = 0; py < g->sh; py++)
            for (int px = 0; px < g->sw; px++) {
                float *d = xp + (size_t)c * sg->lc + (size_t)(py * g->sw + px) * sg->plane;
                /* the plane's columns that fall inside the image: [lo, hi) */
                int lo = 0, hi = 0;
                rt_conv_interior(S, g->sw, px - g->pl, g->w, &lo, &hi);
                const int small_borders = lo <= 4 && S - hi <= 4;
                for (int gr = 0; gr < rows; gr++, d += S) {
                    int t = gr / sg->R < sg->nimg ? gr / sg->R : sg->nimg - 1;
                    int iy = g->sh * (sg->oy0 + gr - t * sg->R) + py - g->pt;
                    if (iy < 0 || iy >= g->h) {
                        memset(d, 0, (size_t)S * sizeof *d);
                        continue;
                    }
                    const float *s = x + (size_t)t * xstride + ((size_t)c * g->h + iy) * g->w;
                    if (small_borders) { /* as in rt_conv_slab_fill */
                        rt_conv_zero4(d, lo);
                        gather(d + lo, s + g->sw * lo + px - g->pl, hi - lo, g->sw);
                        rt_conv_zero4(d + hi, S - hi);
                    } else {
                        for (int i = 0; i < lo; i++)
                            d[i] = 0.0f;
                        gather(d + lo, s + g->sw * lo + px - g->pl, hi - lo, g->sw);
                        for (int i = hi; i < S; i++)
                            d[i] = 0.0f;
                    }
                }
                memset(d, 0, (sg->plane - (size_t)rows * S) * sizeof *d);
            }
}

/* Where each patch row starts in the slabs of sg's channel stride, planes and row stride. */
void rt_conv_slab_offsets(const rt_conv_geom *g, const rt_conv_slab *sg, int *koff)
{
    int r = 0;
    for (int c = 0; c < g->c; c++)
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                int ey = g->flip ? g->kh - 1 - ky : ky, ex = g->flip ? g->kw - 1 - kx : kx;
                size_t plane = (size_t)(ey % g->sh * g->sw + ex % g->sw) * sg->plane;
                koff[r++] = (int)((size_t)c * sg->lc + plane + (size_t)(ey / g->sh) * sg->S +
                                  ex / g->sw);
            }
}

