/*
 * rt_conv_wino_wgrad.c - the weight gradient (dW, db) of 3x3 "same" convolutions by Winograd:
 * 16 multiplications per 2x2 output tile and channel pair instead of 36.
 *
 * dW[o][c][u][v] = sum over images and outputs (a, b) of dZ[o][a][b] X[c][a + u - 1][b + v - 1]
 * is, per 2x2 tile of dZ (e) and the 4x4 input tile under it (d), F(2x2,3x3) read backwards
 * (its bilinear form differentiated by the kernel, F(3x3,2x2)):
 *     dW = G^T [ sum over tiles (A e A^T) (.) (B^T d B) ] G
 * with F(2x2,3x3)'s B^T (rt_wino2_input16, the forward's input transform) and G, and A e =
 * (e0, e0 + e1, e0 - e1, -e1) on each axis (here with +e1 last and the sign moved into G^T).
 * Each frequency f is a product M_f[o][c] = sum_t E_f[o][t] V_f[c][t] over the tiles t.
 *
 * A worker takes whole images (rt_split_range) and walks their tiles in chunks of KV vectors
 * of 16 tiles (a tile row's 32 columns, lane t holding tile t): it transforms the chunk's
 * input and output-gradient tiles into V and E, then, per frequency, blocks of 4 output x 4
 * input channels keep 16 accumulators in registers over the chunk's vectors and add them onto
 * the worker's M, kept lane by lane (no horizontal sums until the end; a float sum of a term
 * per chunk, whose rounding grows with the images per worker as the GEMM's dW does: 1e-6 of
 * the largest gradient at 32 images, 2e-6 at 512 on one worker, measured). Then each worker sums
 * its lanes in double, and a last task adds the workers' sums in worker order and applies
 * G^T . G in double, rounding once. The bits depend on the number of workers (as the other
 * dW routes), not on anything else.
 *
 * AVX-512 only, as rt_conv_wino_small.c (16 accumulators and 8 operands of 16 floats want
 * the 32 vector registers of AVX-512), and only where it measured faster than the implicit
 * GEMM: see rt_conv_winow_takes. Taken by rt_conv2d_backward once dX is made (by
 * correlation, rt_conv.c) or not asked for.
 */
#include "rt_conv_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BO 4 /* output channels per register block */
#define BC 4 /* input channels per register block */
#define CHUNK_BYTES (512 * 1024) /* a chunk's V and E (KV vectors, all channels) */
#define KV_MAX 16
/* Floats added to the distance between two frequencies' blocks of V and E: at a multiple of
 * 4 KiB the 16 stores of a transform would share an L1 set. */
#define SKEW 16

/* RT_CONV_WINOGRAD_WGRAD=0 starts with this route off (the implicit GEMM then makes dW) */
static rt_conv_switch wgrad_on = RT_CONV_SWITCH("RT_CONV_WINOGRAD_WGRAD", "01", 1);

int rt_conv_winograd_wgrad(int on)
{
    return rt_conv_switch_set(&wgrad_on, on != 0);
}

/* Where it measured faster than the implicit GEMM (batch 32, 2 threads, Xeon with AVX-512;
 * ms): 16 channels at 32x32 1.46-1.62 -> 0.79-0.89, 8 0.67 -> 0.22, 16 -> 32 1.37 -> 1.14,
 * 32 -> 16 1.66 -> 1.14, 32 2.56 -> 2.30, 64 -> 16 3.3 -> 2.7, 32 at 64x64 13.2 -> 8.9, 16
 * at 64x64 6.3 -> 3.0. Not beyond 1024 channel pairs: M's lanes (64 bytes a pair and
 * frequency) then outgrow the cache that each chunk sweeps them in (32 -> 64 at 32x32 5.5 ->
 * 6.3, 64 at 32x32 9.9 -> 16.7). Nor under 1024 tiles a call, about where it breaks even
 * (16 channels at 32x32, 4 images: 0.12 -> 0.14 and 0.20 -> 0.17 ms in two runs on 2
 * threads, 0.22 -> 0.18 on one; 1 image 0.06 -> 0.09-0.11): M's clearing and sums are fixed
 * costs. Counted over the call's images, so that the route does
 * not depend on the number of threads. */
#define MAX_PAIRS 1024
#define MIN_TILES 1024

int rt_conv_winow_takes(const rt_conv_geom *g, int n)
{
    if (!rt_conv_switch_get(&wgrad_on) || !rt_conv_wino2_rows32(g))
        return 0;
    return g->c % BC == 0 && g->oc % BO == 0 && g->oc > 0 && g->c <= MAX_PAIRS / g->oc &&
           (n < 0 || (double)n * (g->h / 2) * (g->w / 2) >= MIN_TILES);
}

/* Vectors of 16 tiles per chunk: V and E within CHUNK_BYTES, 1 .. KV_MAX. */
static int kv_of(const rt_conv_geom *g)
{
    const size_t per = (size_t)16 * (g->c + g->oc) * 16 * sizeof(float);
    size_t kv = CHUNK_BYTES / per;
    return kv < 1 ? 1 : kv > KV_MAX ? KV_MAX : (int)kv;
}

/* A worker's scratch, in floats from its start: V [16][c][KV][16] and E [16][oc][KV][16]
 * (each frequency's block SKEW floats further), the lanes of M [16][oc][c][16] and of db
 * [oc][16], a chunk's own db lanes [oc][16], then the sums in double: M's [16][oc][c], db's
 * [oc]. */
typedef struct {
    int kv; /* vectors per chunk (kv_of) */
    size_t v, e, m, dbl, dbc, msum, dbsum, total;
} wlayout;

static wlayout wplan(const rt_conv_geom *g)
{
    wlayout l;
    l.kv = kv_of(g);
    const size_t kv = (size_t)l.kv, c = (size_t)g->c, oc = (size_t)g->oc;
    l.v = 0;
    l.e = l.v + 16 * (c * kv * 16 + SKEW);
    l.m = l.e + 16 * (oc * kv * 16 + SKEW);
    l.dbl = l.m + 16 * oc * c * 16;
    l.dbc = l.dbl + oc * 16;
    l.msum = l.dbc + oc * 16; /* a multiple of 16 floats: 8-byte aligned doubles */
    l.dbsum = l.msum + 2 * 16 * oc * c;
    l.total = l.dbsum + 2 * oc;
    return l;
}

size_t rt_conv_winow_scratch_size(const rt_conv_geom *g)
{
    return wplan(g).total * sizeof(float);
}

/* E = A e A^T (with +e1 for -e1) of 16 tiles of output channel plane dz [h][w]: tile row ty,
 * columns 32 sx .., frequency (i, j) at d + (4 i + j) * fs; frequency (1, 1), each tile's sum,
 * also added to the 16 lanes at dbc. */
static inline __attribute__((always_inline)) void grad_tiles16(const float *dz, int w, int ty,
                                                              int sx, float *d, size_t fs,
                                                              float *dbc)
{
    v16 a[2][4];
    _Pragma("GCC unroll 2") for (int r = 0; r < 2; r++) {
        v16 E, O;
        RT_SPLIT32(dz + (size_t)(2 * ty + r) * w + sx * 32, E, O);
        a[r][0] = E, a[r][1] = E + O, a[r][2] = E - O, a[r][3] = O;
    }
    _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
        *(v16 *)(d + (size_t)(0 * 4 + j) * fs) = a[0][j];
        *(v16 *)(d + (size_t)(1 * 4 + j) * fs) = a[0][j] + a[1][j];
        *(v16 *)(d + (size_t)(2 * 4 + j) * fs) = a[0][j] - a[1][j];
        *(v16 *)(d + (size_t)(3 * 4 + j) * fs) = a[1][j];
    }
    *(v16 *)dbc += a[0][1] + a[1][1];
}

typedef struct {
    const rt_conv_geom *g;
    const float *x, *dz;
    float *dw, *db;
    int n;
    float **scr; /* the workers' scratch, for final_task */
    atomic_int fail;
} wjob;

/* The chunk of kv vectors from vector q0 of the worker's images (vector q: image q / per,
 * then tile row and segment), into M's lanes. */
static inline __attribute__((always_inline)) void chunk(const wjob *j, const wlayout *l,
                                                       float *scr, int s0, int q0, int kv)
{
    const rt_conv_geom *g = j->g;
    const int c = g->c, oc = g->oc, h = g->h, w = g->w, segs = w / 32, per = h / 2 * segs;
    const int KV = l->kv;
    const size_t plane = (size_t)h * w, vfs = (size_t)c * KV * 16 + SKEW;
    const size_t efs = (size_t)oc * KV * 16 + SKEW;
    float *V = scr + l->v, *E = scr + l->e, *M = scr + l->m, *dbc = scr + l->dbc;
    memset(dbc, 0, (size_t)oc * 16 * sizeof *dbc);
    for (int k = 0; k < kv; k++) {
        const int q = q0 + k, s = s0 + q / per, t = q % per, ty = t / segs, sx = t % segs;
        const float *xs = j->x + (size_t)s * c * plane, *zs = j->dz + (size_t)s * oc * plane;
        for (int ci = 0; ci < c; ci++)
            rt_wino2_input16(xs + ci * plane, h, w, ty, sx, V + ((size_t)ci * KV + k) * 16, vfs);
        for (int o = 0; o < oc; o++)
            grad_tiles16(zs + o * plane, w, ty, sx, E + ((size_t)o * KV + k) * 16, efs,
                         dbc + (size_t)o * 16);
    }
    for (int o = 0; o < oc; o++) /* as M: a term a chunk onto db's lanes */
        *(v16 *)(scr + l->dbl + (size_t)o * 16) += *(const v16 *)(dbc + (size_t)o * 16);
    for (int f = 0; f < 16; f++) {
        const float *vf = V + f * vfs, *ef = E + f * efs;
        float *mf = M + (size_t)f * oc * c * 16;
        for (int o0 = 0; o0 < oc; o0 += BO)
            for (int c0 = 0; c0 < c; c0 += BC) {
                v16 acc[BO][BC]; /* the chunk's own sums, then one add onto M's lanes: M
                                  * adds a term a chunk, not one a vector (less rounding) */
                _Pragma("GCC unroll 4") for (int i = 0; i < BO; i++)
                    _Pragma("GCC unroll 4") for (int jj = 0; jj < BC; jj++) acc[i][jj] =
                        (v16){0};
                for (int k = 0; k < kv; k++) {
                    v16 ev[BO], xv[BC];
                    _Pragma("GCC unroll 4") for (int i = 0; i < BO; i++) ev[i] =
                        *(const v16 *)(ef + ((size_t)(o0 + i) * KV + k) * 16);
                    _Pragma("GCC unroll 4") for (int jj = 0; jj < BC; jj++) xv[jj] =
                        *(const v16 *)(vf + ((size_t)(c0 + jj) * KV + k) * 16);
                    _Pragma("GCC unroll 4") for (int i = 0; i < BO; i++)
                        _Pragma("GCC unroll 4") for (int jj = 0; jj < BC; jj++) acc[i][jj] +=
                            ev[i] * xv[jj];
                }
                _Pragma("GCC unroll 4") for (int i = 0; i < BO; i++)
                    _Pragma("GCC unroll 4") for (int jj = 0; jj < BC; jj++)
                        *(v16 *)(mf + ((size_t)(o0 + i) * c + c0 + jj) * 16) += acc[i][jj];
            }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,fma"))) static void chunks_avx512(const wjob *j, const wlayout *l,
                                                                  float *scr, int s0, int s1)
{
    const rt_conv_geom *g = j->g;
    const int nq = (s1 - s0) * (g->h / 2) * (g->w / 32), KV = l->kv;
    for (int q0 = 0; q0 < nq; q0 += KV)
        chunk(j, l, scr, s0, q0, nq - q0 < KV ? nq - q0 : KV);
}
#endif

static void finish(const wjob *j, const float *const *scr, int nt, int o0, int o1);

static void sums_task(void *arg, rt_worker *wk)
{
    wjob *j = arg;
    const rt_conv_geom *g = j->g;
    const wlayout l = wplan(g);
    float *scr = rt_worker_scratch(wk, l.total * sizeof(float));
    if (!scr) {
        atomic_store(&j->fail, 1);
        return;
    }
    const size_t mn = (size_t)16 * g->oc * g->c;
    float *M = scr + l.m;
    double *msum = (double *)(scr + l.msum), *dbsum = (double *)(scr + l.dbsum);
    memset(M, 0, (mn + g->oc) * 16 * sizeof *M); /* and db's lanes after M's */
    int s0, s1;
    rt_split_range(j->n, rt_worker_count(wk), rt_worker_id(wk), &s0, &s1);
#if defined(__x86_64__) && defined(__GNUC__)
    if (s1 > s0)
        chunks_avx512(j, &l, scr, s0, s1);
#endif
    for (size_t i = 0; i < mn + g->oc; i++) {
        double a = 0.0;
        for (int lane = 0; lane < 16; lane++)
            a += M[i * 16 + lane];
        if (i < mn)
            msum[i] = a;
        else
            dbsum[i - mn] = a;
    }
    if (rt_worker_count(wk) == 1) {
        const float *own = scr;
        finish(j, &own, 1, 0, g->oc);
    }
}

/* G^T with the sign of A's last row: row u of the 3x4 matrix that takes M's 4 frequencies
 * along an axis to the kernel's 3 taps. */
static const double GT[3][4] = {{1.0, 0.5, 0.5, 0.0}, {0.0, 0.5, -0.5, 0.0}, {0.0, 0.5, 0.5, -1.0}};

/* For output channels [o0, o1): the sums of the nt workers' scratch scr[t] added in worker
 * order, then dW = G^T M G, rounded once. */
static void finish(const wjob *j, const float *const *scr, int nt, int o0, int o1)
{
    const rt_conv_geom *g = j->g;
    const wlayout l = wplan(g);
    const size_t ocs = (size_t)g->oc * g->c;
    for (int o = o0; o < o1; o++) {
        if (j->db) {
            double a = 0.0;
            for (int t = 0; t < nt; t++)
                a += ((const double *)(scr[t] + l.dbsum))[o];
            j->db[o] = (float)a;
        }
        for (int ci = 0; ci < g->c; ci++) {
            double m[16];
            for (int f = 0; f < 16; f++) {
                double a = 0.0;
                for (int t = 0; t < nt; t++)
                    a += ((const double *)(scr[t] + l.msum))[f * ocs + (size_t)o * g->c + ci];
                m[f] = a;
            }
            float *d = j->dw + ((size_t)o * g->c + ci) * 9;
            for (int u = 0; u < 3; u++)
                for (int v = 0; v < 3; v++) {
                    double a = 0.0;
                    for (int fi = 0; fi < 4; fi++)
                        for (int fj = 0; fj < 4; fj++)
                            a += GT[u][fi] * GT[v][fj] * m[fi * 4 + fj];
                    /* a true convolution's kernel is the correlation's turned 180 degrees */
                    d[g->flip ? (2 - u) * 3 + (2 - v) : u * 3 + v] = (float)a;
                }
        }
    }
}

static void final_task(void *arg, rt_worker *wk)
{
    wjob *j = arg;
    int o0, o1;
    rt_split_range(j->g->oc, rt_worker_count(wk), rt_worker_id(wk), &o0, &o1);
    finish(j, (const float *const *)j->scr, rt_worker_count(wk), o0, o1);
}

int rt_conv_winow_backward(const rt_conv_geom *g, const float *x, const float *dz, float *dw,
                           float *db, int n, rt_threads *tp)
{
    const int nt = rt_threads_count(tp);
    wjob j = {.g = g, .x = x, .dz = dz, .dw = dw, .db = db, .n = n};
    rt_threads_run(tp, sums_task, &j); /* one worker: finished there */
    if (atomic_load(&j.fail))
        return -1;
    if (nt > 1) {
        j.scr = malloc((size_t)nt * sizeof *j.scr);
        if (!j.scr)
            return -1;
        for (int t = 0; t < nt; t++)
            j.scr[t] = rt_threads_scratch_of(tp, t);
        rt_threads_run(tp, final_task, &j);
        free(j.scr);
    }
    return 0;
}
