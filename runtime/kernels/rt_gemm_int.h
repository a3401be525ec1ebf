/*
 * rt_gemm_int.h - the GEMM's packed-operand interface, internal to libcnnrt.
 *
 * Convolution packs its operands itself (im2col straight into the GEMM's panel layout, the
 * weights once per call) and then multiplies packed panels. A panel holds MR rows of A (or
 * NR columns of B) over the whole depth k, k-major: element (row i, depth p) of A panel q is
 * at q*k*MR + p*MR + i%MR. Panels past the matrix edge are zero-filled.
 */
#ifndef RT_GEMM_INT_H
#define RT_GEMM_INT_H

#include <stddef.h>

#include "cnnrt.h"

/* The register tile of the micro-kernel in use. */
int rt_gemm_mr(void);
int rt_gemm_nr(void);

/* Floats of the packed form of an m x k A (or k x n B). */
size_t rt_gemm_packed_a_floats(int m, int k);
size_t rt_gemm_packed_b_floats(int k, int n);

/* Packs op(A) (m x k; ta: A is stored k x m) times alpha, and op(B) (k x n). */
void rt_gemm_pack_a(int ta, int m, int k, float alpha, const float *a, int lda, float *dst);
void rt_gemm_pack_b(int tb, int k, int n, const float *b, int ldb, float *dst);

/* C[m][n] (add ? += : =) packed A times packed B. */
void rt_gemm_packed(int m, int n, int k, const float *ap, const float *bp, int add, float *c,
                    int ldc);
/* The same, then C[i][j] = act(C[i][j] + bias[i]) (bias may be NULL) as the tiles are
 * stored. act must be RT_ACT_NONE, RT_ACT_RELU or RT_ACT_LEAKYRELU (slope alpha). */
void rt_gemm_packed_ep(int m, int n, int k, const float *ap, const float *bp, int add, float *c,
                       int ldc, const float *bias, rt_act act, float alpha);

/* C = the product of packed A (m x k) and an unpacked, implicit B: element (p, j) of B is
 * b[koff[p] + j], and every row is read NR floats at a time, so up to NR - 1 floats past
 * b[koff[p] + n - 1] must be readable (their products land in columns that are not kept).
 * C is not a matrix: it is made one panel of rt_gemm_nr() columns at a time, in panel (m
 * rows, ldp = rt_gemm_nr() floats apart), which receives columns [j0, j0 + nr) whole; then
 * sink(ctx, j0, nr, panel, ldp) stores them where they belong. With fill, fill(ctx, j0, nr,
 * panel, ldp) first loads the panel and the product is added to it. The last depth block
 * applies bias[i] and act (RT_ACT_NONE, RT_ACT_RELU or RT_ACT_LEAKYRELU, slope alpha) as
 * rt_gemm_packed_ep does. Each element is summed in the order rt_gemm_packed_ep uses: the
 * same B gives the same bits. m, n, k may be 0 (nothing is done). */
typedef void (*rt_gemm_panel_fn)(void *ctx, int j0, int nr, float *panel, int ldp);
void rt_gemm_implicit_panels(int m, int n, int k, const float *ap, const float *b,
                             const int *koff, float *panel, const float *bias, rt_act act,
                             float alpha, rt_gemm_panel_fn fill, rt_gemm_panel_fn sink,
                             void *ctx);

/* The same product with C a matrix whose column j is pixel j of a band of output rows ow
 * pixels wide: element (p, j) of B is b[koff[p] + (j / ow) * ldb + j % ow], the grid
 * position of pixel j (ldb: the grid's row stride), and C[i][j] is stored (add ? += : =)
 * at c[i * ldc + j], with rt_gemm_implicit_panels' epilogue and order of sums: the same bits
 * as its panels sunk into the band. Only for rt_gemm_implicit_rows_ok(ow, ldb): rows of whole
 * vectors, or on AVX2 and AVX-512 of whole half vectors (a vector is then read as two
 * halves, each within a row), or there of vectors whose last in each row is partial (its
 * lanes past ow read on into the grid, and are not stored) where that computes at most 1/8
 * more than the grid's ldb columns a row; npix must be a multiple of ow. It reads no further
 * into b than the grid positions of the npix pixels and their reads (a vector or a half)
 * reach, and writes c (and reads res) only at the pixels. */
int rt_gemm_implicit_rows_ok(int ow, int ldb);
/* With res (NULL: none), laid out as C, its values are added after the bias and before
 * act: C = act(product + bias + res). */
void rt_gemm_implicit_rows(int m, int k, const float *ap, const float *b, const int *koff,
                           int npix, int ow, int ldb, float *c, int ldc, int add,
                           const float *bias, const float *res, rt_act act, float alpha);

/* C[m][n] (add ? += : =) A times packed B, with A implicit: element (i, p) of A is
 * a[koff[i] + p] (koff holds m offsets). B is packed as rt_gemm_pack_b does but in panels of
 * rt_gemm_implicit_a_nr(n) columns: NR, or NR / 2 for n up to NR / 2 (a tile of more rows,
 * ukrah's). C is stored only for j < n; when n is a multiple of the panel width, whole tiles. */
int rt_gemm_implicit_a_nr(int n);
void rt_gemm_implicit_a(int m, int n, int k, const float *a, const int *koff, const float *bp,
                        int add, float *c, int ldc);

/* C[m][n] (add ? += : =) A[m][k] . B[n][k]^T, both operands row-major and unpacked: for
 * products whose two operands are contiguous along the depth (conv's dW). */
void rt_gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, int add,
                float *c, int ldc);

#endif
