/*
 * rt_conv_winograd.c - 3x3 stride-1 zero-padded convolutions by Winograd F(2x2,3x3): 16
 * multiplications per 2x2 output tile and channel pair instead of 36, as 16 GEMMs.
 *
 * The weights are transformed once per call (U = G g G^T, in double, rounded once) straight
 * into the GEMM's packed-A layout, one [oc x c] matrix per frequency. The output tiles of the
 * whole batch are numbered one after the other and cut into chunks; a worker takes whole
 * chunks and for each one transforms the input tiles (V = B^T d B, 8 tiles per vector, into
 * the packed-B layout), multiplies the 16 frequencies ([oc x c] x [c x tiles]) and transforms
 * back (Y = A^T M A) with the bias and relu / leaky relu. A tile's result depends on no other
 * tile, and a GEMM column on no other column, so the bits do not depend on the chunks or on
 * the number of workers. Used by rt_conv2d_forward and by the input gradient (a stride-1
 * correlation of the padded dZ with the flipped kernel) where rt_conv_wino_ok says so.
 */
#include "rt_conv_int.h"
#include "rt_gemm_int.h"
#include "rt_simd.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NF 16                        /* frequencies of a 4x4 input tile */
#define LANES 8                      /* tiles per vector in the transforms */
#define CHUNK_FLOATS (128 * 1024)    /* a chunk's V and M: about 512 KiB */
#define CHUNK_MIN 64                 /* tiles, so that each U_f read is amortised */
#define CHUNK_MAX 1024
/* Below these channel counts the transforms cost more than the multiplications they save
 * (measured on resnet_bn32's 16-channel 32x32 layers): the implicit GEMM keeps them. */
#define MIN_C 16
#define MIN_OC 16

static int wino_on = 1;
static pthread_once_t wino_once = PTHREAD_ONCE_INIT;

static void wino_init(void) /* RT_CONV_WINOGRAD=0 starts with the route off */
{
    const char *e = getenv("RT_CONV_WINOGRAD");
    wino_on = !(e && strcmp(e, "0") == 0);
}

int rt_conv_use_winograd(int on)
{
    pthread_once(&wino_once, wino_init);
    int was = wino_on;
    wino_on = on != 0;
    return was;
}

int rt_conv_wino_ok(const rt_conv_geom *g, rt_act act, int n)
{
    pthread_once(&wino_once, wino_init);
    if (!wino_on || g->kh != 3 || g->kw != 3 || g->sh != 1 || g->sw != 1 || g->dh != 1 ||
        g->dw != 1 || g->groups != 1 || g->pt > 2 || g->pb > 2 || g->pl > 2 || g->pr > 2)
        return 0;
    if (g->pad != RT_PAD_ZERO && (g->pt | g->pb | g->pl | g->pr) != 0)
        return 0;
    if (act != RT_ACT_NONE && act != RT_ACT_RELU && act != RT_ACT_LEAKYRELU)
        return 0;
    if (g->c < MIN_C || g->oc < MIN_OC)
        return 0;
    /* tile numbers and offsets in ints and longs */
    double tiles = (double)n * ((g->oh + 1) / 2) * ((g->ow + 1) / 2);
    return tiles < (double)INT_MAX / 2;
}

/* Tiles per chunk (a multiple of the GEMM's NR and of LANES). */
static int chunk_max(const rt_conv_geom *g)
{
    const int NR = rt_gemm_nr();
    long t = CHUNK_FLOATS / ((long)NF * (g->c + g->oc));
    if (t < CHUNK_MIN)
        t = CHUNK_MIN;
    if (t > CHUNK_MAX)
        t = CHUNK_MAX;
    t = (t + NR - 1) / NR * NR;
    return (int)t;
}

/* Where a chunk's tile starts: in x (its 4x4 input window's top left, rows iy0.., columns
 * ix0..) and in y (its 2x2 output's top left); ny, nx: output rows and columns kept. */
typedef struct {
    long xoff, yoff;
    int iy0, ix0, ny, nx;
} tile;

/* Floats of a worker's scratch for chunks of cs tiles. */
typedef struct {
    size_t vp, m, tiles, total, fstride;
    int ldm;
} wlayout;

static size_t up16(size_t f)
{
    return (f + 15) / 16 * 16;
}

static wlayout wplan(const rt_conv_geom *g, int cs)
{
    wlayout l;
    l.fstride = rt_gemm_packed_b_floats(g->c, cs);
    l.ldm = (cs + LANES - 1) / LANES * LANES;
    l.vp = 0;
    l.m = up16((size_t)NF * l.fstride);
    l.tiles = l.m + up16((size_t)NF * g->oc * l.ldm);
    l.total = l.tiles + up16((size_t)cs * sizeof(tile) / sizeof(float) + 1);
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
        most = wplan(g, chunk_max(g)).total;
    if (g->pt <= 2 && g->pb <= 2 && g->pl <= 2 && g->pr <= 2) {
        rt_conv_geom t = transposed(g);
        if (rt_conv_wino_ok(&t, RT_ACT_NONE, 1) && wplan(&t, chunk_max(&t)).total > most)
            most = wplan(&t, chunk_max(&t)).total;
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
    int th, tw, T, cs; /* tiles per column and row, in all, per chunk */
    atomic_int fail;
} wjob;

/* U_f = (G k G^T)[f] of every kernel (k the correlation kernel: w, flipped when g->flip) into
 * the packed-A panels of MR output channels this worker owns; rows past oc are zeros. */
static void weight_task(void *arg, rt_worker *wk)
{
    wjob *j = arg;
    const rt_conv_geom *g = j->g;
    const int MR = rt_gemm_mr(), c = g->c, np = (g->oc + MR - 1) / MR;
    int q0, q1;
    rt_split_range(np, rt_worker_count(wk), rt_worker_id(wk), &q0, &q1);
    for (int o = q0 * MR; o < q1 * MR; o++)
        for (int ci = 0; ci < c; ci++) {
            float *d = j->u + (size_t)(o / MR) * c * MR + (size_t)ci * MR + o % MR;
            if (o >= g->oc) {
                for (int f = 0; f < NF; f++)
                    d[f * j->astride] = 0.0f;
                continue;
            }
            const float *s = j->w + ((size_t)o * c + ci) * 9;
            double k[3][3], gk[4][3];
            for (int u = 0; u < 3; u++)
                for (int v = 0; v < 3; v++)
                    k[u][v] = g->flip ? s[(2 - u) * 3 + 2 - v] : s[u * 3 + v];
            for (int v = 0; v < 3; v++) { /* G k */
                gk[0][v] = k[0][v];
                gk[1][v] = 0.5 * (k[0][v] + k[1][v] + k[2][v]);
                gk[2][v] = 0.5 * (k[0][v] - k[1][v] + k[2][v]);
                gk[3][v] = k[2][v];
            }
            for (int r = 0; r < 4; r++) { /* (G k) G^T */
                d[(r * 4 + 0) * j->astride] = (float)gk[r][0];
                d[(r * 4 + 1) * j->astride] = (float)(0.5 * (gk[r][0] + gk[r][1] + gk[r][2]));
                d[(r * 4 + 2) * j->astride] = (float)(0.5 * (gk[r][0] - gk[r][1] + gk[r][2]));
                d[(r * 4 + 3) * j->astride] = (float)gk[r][2];
            }
        }
}

/* V = B^T d B of the chunk's nt tiles (tl) for every channel, into the packed-B panels of
 * the 16 frequencies (fstride floats apart); lanes past nt are zeros. */
RT_CLONES static void input_transform(const rt_conv_geom *g, const float *x, const tile *tl,
                                      int nt, float *vp, size_t fstride, int NR)
{
    const int c = g->c, h = g->h, w = g->w;
    const size_t hw = (size_t)h * w;
    for (int j0 = 0; j0 < nt; j0 += LANES) {
        float *base = vp + (size_t)(j0 / NR) * c * NR + j0 % NR;
        for (int ci = 0; ci < c; ci++) {
            float d[16][LANES], t[16][LANES];
            for (int l = 0; l < LANES; l++) {
                const int jt = j0 + l;
                if (jt >= nt) {
                    for (int e = 0; e < 16; e++)
                        d[e][l] = 0.0f;
                    continue;
                }
                const tile *p = tl + jt;
                const long s = p->xoff + (long)ci * (long)hw; /* may be < 0 at a border */
                if (p->iy0 >= 0 && p->iy0 + 4 <= h && p->ix0 >= 0 && p->ix0 + 4 <= w) {
                    for (int r = 0; r < 4; r++)
                        for (int q = 0; q < 4; q++)
                            d[r * 4 + q][l] = x[s + (long)r * w + q];
                } else {
                    for (int r = 0; r < 4; r++)
                        for (int q = 0; q < 4; q++) {
                            int iy = p->iy0 + r, ix = p->ix0 + q;
                            d[r * 4 + q][l] = iy >= 0 && iy < h && ix >= 0 && ix < w
                                                  ? x[s + (long)r * w + q]
                                                  : 0.0f;
                        }
                }
            }
            for (int q = 0; q < 4; q++) /* B^T d: rows */
                for (int l = 0; l < LANES; l++) {
                    t[0 + q][l] = d[0 + q][l] - d[8 + q][l];
                    t[4 + q][l] = d[4 + q][l] + d[8 + q][l];
                    t[8 + q][l] = d[8 + q][l] - d[4 + q][l];
                    t[12 + q][l] = d[4 + q][l] - d[12 + q][l];
                }
            float *dst = base + (size_t)ci * NR;
            for (int r = 0; r < 4; r++) /* (B^T d) B: columns */
                for (int l = 0; l < LANES; l++) {
                    const float *a = &t[r * 4][0];
                    dst[(size_t)(r * 4 + 0) * fstride + l] = a[0 * LANES + l] - a[2 * LANES + l];
                    dst[(size_t)(r * 4 + 1) * fstride + l] = a[1 * LANES + l] + a[2 * LANES + l];
                    dst[(size_t)(r * 4 + 2) * fstride + l] = a[2 * LANES + l] - a[1 * LANES + l];
                    dst[(size_t)(r * 4 + 3) * fstride + l] = a[1 * LANES + l] - a[3 * LANES + l];
                }
        }
    }
}

/* Y = A^T M A of the chunk's nt tiles for every output channel, then bias and activation
 * (or added to y when add), stored where each tile's outputs lie. M_f is [oc][ldm]. */
RT_CLONES static void output_transform(const wjob *j, const float *m, int ldm, const tile *tl,
                                       int nt)
{
    const rt_conv_geom *g = j->g;
    const int oc = g->oc, ow = g->ow;
    const long P = (long)g->oh * ow;
    const size_t fs = (size_t)oc * ldm;
    const int relu = j->act == RT_ACT_RELU, leaky = j->act == RT_ACT_LEAKYRELU;
    const float alpha = j->alpha;
    for (int o = 0; o < oc; o++) {
        const float bias = j->b ? j->b[o] : 0.0f;
        for (int j0 = 0; j0 < nt; j0 += LANES) {
            const float *mm = m + (size_t)o * ldm + j0;
            float s[8][LANES], y[4][LANES];
            for (int q = 0; q < 4; q++) /* A^T M: rows */
                for (int l = 0; l < LANES; l++) {
                    float m0 = mm[(size_t)(0 + q) * fs + l], m1 = mm[(size_t)(4 + q) * fs + l];
                    float m2 = mm[(size_t)(8 + q) * fs + l], m3 = mm[(size_t)(12 + q) * fs + l];
                    s[q][l] = m0 + m1 + m2;
                    s[4 + q][l] = m1 - m2 - m3;
                }
            for (int r = 0; r < 2; r++) /* (A^T M) A: columns, bias, activation */
                for (int l = 0; l < LANES; l++) {
                    float v0 = s[r * 4][l] + s[r * 4 + 1][l] + s[r * 4 + 2][l];
                    float v1 = s[r * 4 + 1][l] - s[r * 4 + 2][l] - s[r * 4 + 3][l];
                    v0 += bias, v1 += bias;
                    if (relu) {
                        v0 = v0 > 0.0f ? v0 : 0.0f;
                        v1 = v1 > 0.0f ? v1 : 0.0f;
                    } else if (leaky) {
                        v0 = v0 > 0.0f ? v0 : alpha * v0;
                        v1 = v1 > 0.0f ? v1 : alpha * v1;
                    }
                    y[r * 2][l] = v0;
                    y[r * 2 + 1][l] = v1;
                }
            const int lanes = nt - j0 < LANES ? nt - j0 : LANES;
            for (int l = 0; l < lanes; l++) {
                const tile *p = tl + j0 + l;
                float *d = j->y + p->yoff + (long)o * P;
                for (int r = 0; r < p->ny; r++)
                    for (int q = 0; q < p->nx; q++) {
                        if (j->add)
                            d[(long)r * ow + q] += y[r * 2 + q][l];
                        else
                            d[(long)r * ow + q] = y[r * 2 + q][l];
                    }
            }
        }
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
    const wlayout l = wplan(g, j->cs);
    float *scr = rt_worker_scratch(wk, l.total * sizeof(float));
    if (!scr) {
        atomic_store(&j->fail, 1);
        return;
    }
    float *vp = scr + l.vp, *m = scr + l.m;
    tile *tl = (tile *)(scr + l.tiles);
    const int per = j->th * j->tw;
    const long xsz = (long)g->c * g->h * g->w, ysz = (long)g->oc * g->oh * g->ow;
    for (int ch = c0; ch < c1; ch++) {
        const int t0 = ch * j->cs, nt = j->T - t0 < j->cs ? j->T - t0 : j->cs;
        for (int i = 0; i < nt; i++) {
            int t = t0 + i, img = t / per, r = t % per, ty = r / j->tw, tx = r % j->tw;
            tile *p = tl + i;
            p->iy0 = 2 * ty - g->pt, p->ix0 = 2 * tx - g->pl;
            p->xoff = img * xsz + (long)p->iy0 * g->w + p->ix0;
            p->yoff = img * ysz + (long)(2 * ty) * g->ow + 2 * tx;
            p->ny = g->oh - 2 * ty < 2 ? 1 : 2;
            p->nx = g->ow - 2 * tx < 2 ? 1 : 2;
        }
        const size_t fstride = rt_gemm_packed_b_floats(g->c, nt);
        input_transform(g, j->x, tl, nt, vp, fstride, NR);
        const int ldm = (nt + LANES - 1) / LANES * LANES;
        for (int f = 0; f < NF; f++) {
            float *mf = m + (size_t)f * g->oc * ldm;
            rt_gemm_packed(g->oc, nt, g->c, j->u + (size_t)f * j->astride,
                           vp + (size_t)f * fstride, 0, mf, ldm);
            if (ldm > nt) /* lanes past the chunk: read by the vectors, never stored */
                for (int o = 0; o < g->oc; o++)
                    memset(mf + (size_t)o * ldm + nt, 0, (size_t)(ldm - nt) * sizeof *mf);
        }
        output_transform(j, m, ldm, tl, nt);
    }
}

int rt_conv_wino_forward(const rt_conv_geom *g, const float *x, const float *w, const float *b,
                         rt_act act, float alpha, float *y, int add, int n, rt_threads *tp)
{
    const size_t astride = rt_gemm_packed_a_floats(g->oc, g->c);
    float *u = malloc((size_t)NF * astride * sizeof *u);
    if (!u)
        return -1;
    wjob j = {g, x, w, b, act, alpha, y, n, add, u, astride, 0, 0, 0, 0, 0};
    j.th = (g->oh + 1) / 2, j.tw = (g->ow + 1) / 2;
    j.T = n * j.th * j.tw;
    /* chunks of at most chunk_max tiles, at least one per worker */
    const int NR = rt_gemm_nr(), nw = rt_threads_count(tp) > 0 ? rt_threads_count(tp) : 1;
    int cs = chunk_max(g), even = (j.T + nw - 1) / nw;
    even = (even + NR - 1) / NR * NR;
    j.cs = even < cs ? even : cs;
    rt_threads_run(tp, weight_task, &j);
    rt_threads_run(tp, chunk_task, &j);
    free(u);
    return atomic_load(&j.fail) ? -1 : 0;
}
