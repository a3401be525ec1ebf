/*
 * rt_gemm.c - single-precision matrix multiply, the engine of conv and dense layers.
 *
 * A cache-blocked GEMM in the BLIS style: op(B) is packed into KC x NC blocks of NR-wide
 * panels, op(A) into MC x KC blocks of MR-high panels, and a register-tiled micro-kernel
 * (GNU C vector extensions, so the compiler emits plain SIMD code) computes MR x NR tiles.
 * Micro-kernels for AVX-512, AVX2+FMA and portable 128-bit vectors are compiled with
 * function-level target attributes and chosen once at run time, so the library runs on any
 * x86-64 and uses the widest unit it finds. Every element of C is summed in the same k order
 * whatever its tile position or thread, which keeps results bit-identical across partitions.
 */
#include "rt_kernels.h"
#include "rt_gemm_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN_UP(x, a) (((x) + (a) - 1) / (a) * (a))

/* What the last depth block applies to a tile before storing it: a per-row bias (or none),
 * then a residual (or none: res, at the tile's place in an array laid out as C, ldc apart),
 * then relu or leaky relu (act 1 or 2; 0 none). */
typedef struct {
    const float *bias;
    int act;
    float alpha;
    const float *res;
} gemm_ep;

/* C[0:mr][0:nr] (+)= A panel (kc x MR, k-major) times B panel (kc x NR, k-major), then the
 * epilogue ep (NULL: none) with bias rows starting at ep->bias. */
typedef void (*ukr_fn)(int kc, const float *a, const float *b, float *c, int ldc, int mr,
                       int nr, int add, const gemm_ep *ep);

/* The same with B row p read at b + koff[p] (unaligned, NR floats): the implicit GEMM. */
typedef void (*ukri_fn)(int kc, const float *a, const float *b, const int *koff, float *c,
                        int ldc, int mr, int nr, int add, const gemm_ep *ep);

/* The same with B's vector v of depth row p read at b + voff[v] + koff[p] (unaligned, VL
 * floats; the vectors of a tile need not be side by side in b): the implicit GEMM whose
 * columns are output pixels, each vector of them within one output row. */
typedef void (*ukrv_fn)(int kc, const float *a, const float *b, const int *koff,
                        const int *voff, float *c, int ldc, int mr, int nr, int add,
                        const gemm_ep *ep);

/* The same with the tile's vectors stored apart: vector v of row i goes to c + i * ldc +
 * coff[v], its first nl[v] lanes only (nl[v] = VL: all; 0: none, a slot past the end); the
 * add and the epilogue's res read the same lanes there (res: ep->res + i * ldc + coff[v]).
 * Rows from mr on are not stored. The implicit GEMM on output rows that are not a whole
 * number of vectors: each row is cut into vectors, the last one partial. */
typedef void (*ukrs_fn)(int kc, const float *a, const float *b, const int *koff,
                        const int *voff, const int *coff, const int *nl, float *c, int ldc,
                        int mr, int add, const gemm_ep *ep);

/* The same with A row i read at a + koff[i] (rows past mr repeat row 0, not stored), B
 * packed; no epilogue: the implicit GEMM of conv's weight gradient. */
typedef void (*ukra_fn)(int kc, const float *a, const int *koff, const float *b, float *c,
                        int ldc, int mr, int nr, int add);

/* C[0:mi][0:mj] (+)= dot products of rows of A (stride lda) with rows of B (stride ldb)
 * over k, for the A.B^T products whose operands are both contiguous along k. */
typedef void (*ntkr_fn)(int k, const float *a, int lda, const float *b, int ldb, float *c,
                        int ldc, int mi, int mj, int add);

typedef struct {
    const char *name;
    int mr, nr;          /* register tile */
    int vl;              /* floats per vector (nr is a whole number of them) */
    int mrh;             /* rows of ukrah's tile (one vector wide) */
    int mc, kc, nc;      /* cache blocks; mc multiple of mr, nc multiple of nr */
    ukr_fn ukr;
    ukri_fn ukri;
    ukrv_fn ukrv;
    ukrv_fn ukrv2;       /* vectors of two halves (NULL: none) */
    ukrs_fn ukrs;        /* vectors stored apart, partial ones masked (NULL: none) */
    ukra_fn ukra, ukrah;
    int nti, ntj;        /* tile of the A.B^T dot-product kernel */
    ntkr_fn ntkr;
    int (*available)(void);
} gemm_isa;

/* gemm_ep.act of an activation (rt_act_in_epilogue: one the epilogue applies) */
static inline int ep_act(rt_act act)
{
    return act == RT_ACT_RELU ? 1 : act == RT_ACT_LEAKYRELU ? 2 : 0;
}

static inline float ep_scalar(const gemm_ep *ep, float bias, const float *res, float v)
{
    v += bias;
    if (res)
        v += *res;
    if (ep->act == 1)
        v = v > 0.0f ? v : 0.0f;
    else if (ep->act == 2)
        v = v > 0.0f ? v : ep->alpha * v;
    return v;
}

/* The sums of a tile, acc[i][v] (MR rows by NV vectors of VL floats, in registers once the
 * loops are unrolled), over depth p < kc: B's vector v of depth row p is BVAL, A's element
 * (row i, depth p) AEL (expressions of p, v and i). */
#define UKR_ACC(VT, VL, MR, NV, BVAL, AEL)                                                 \
    enum { NR_ = (VL) * (NV) };                                                           \
    VT acc[MR][NV];                                                                       \
    _Pragma("GCC unroll 32") for (int i = 0; i < (MR); i++)                               \
        _Pragma("GCC unroll 8") for (int v = 0; v < (NV); v++) acc[i][v] = (VT){0};       \
    for (int p = 0; p < kc; p++) {                                                        \
        VT bv[NV];                                                                        \
        _Pragma("GCC unroll 8") for (int v = 0; v < (NV); v++)                            \
            bv[v] = (BVAL);                                                               \
        _Pragma("GCC unroll 32") for (int i = 0; i < (MR); i++) {                         \
            const float av = (AEL);                                                       \
            _Pragma("GCC unroll 8") for (int v = 0; v < (NV); v++) acc[i][v] += av * bv[v]; \
        }                                                                                 \
    }

/* The epilogue of a vector val (VT, VI its int vector; zero a VT of zeros): plus the row's
 * bias bi, plus the residual RESV (an expression read only when ep->res is set), then relu
 * or leaky relu as ep->act says, selected with comparison masks exactly as the scalar
 * x > 0 ? x : ... does (ep_scalar's order). */
#define UKR_EP(VT, VI, val, ep, bi, RESV, zero)                                            \
    do {                                                                                  \
        val += bi;                                                                        \
        if ((ep)->res)                                                                    \
            val += (RESV);                                                                \
        if ((ep)->act == 1) {                                                             \
            val = (VT)((VI)val & (VI)(val > zero));                                       \
        } else if ((ep)->act == 2) {                                                      \
            VI m_ = (VI)(val > zero);                                                     \
            val = (VT)(((VI)val & m_) | ((VI)(val * (ep)->alpha) & ~m_));                 \
        }                                                                                 \
    } while (0)

/* The body shared by every micro-kernel: VT is a vector of VL floats (VUT the same, unaligned;
 * VI the matching int vector for masks), the tile is MR rows by NV vectors. The accumulators
 * stay in registers once the loops are unrolled. Activations select with comparison masks,
 * exactly as the scalar x > 0 ? x : ... does. */
#define UKR_BODY(VT, VUT, VI, VL, MR, NV)                                                  \
    UKR_BODY_B(VT, VUT, VI, VL, MR, NV, VT, b + (size_t)p * NR_)

/* The same with B's depth-p row read from BROW (an expression of p) as vectors of type BT:
 * the packed panel's row, or for the implicit GEMM a row of the padded image itself. */
#define UKR_BODY_B(VT, VUT, VI, VL, MR, NV, BT, BROW)                                      \
    UKR_BODY_AB(VT, VUT, VI, VL, MR, NV, BT, BROW, a[(size_t)p * (MR) + i])

/* The same with A's element (row i, depth p) read from AEL (an expression of p and i). */
#define UKR_BODY_AB(VT, VUT, VI, VL, MR, NV, BT, BROW, AEL)                                \
    UKR_BODY_V(VT, VUT, VI, VL, MR, NV, *(const BT *)((BROW) + v * (VL)), AEL)

/* The same with B's vector v of depth row p the value BVAL (an expression of p and v). */
#define UKR_BODY_V(VT, VUT, VI, VL, MR, NV, BVAL, AEL)                                     \
    UKR_ACC(VT, VL, MR, NV, BVAL, AEL)                                                    \
    if (mr == (MR) && nr == NR_) {                                                        \
        const VT zero = {0};                                                              \
        _Pragma("GCC unroll 32") for (int i = 0; i < (MR); i++) {                         \
            const float bi = ep && ep->bias ? ep->bias[i] : 0.0f;                         \
            _Pragma("GCC unroll 8") for (int v = 0; v < (NV); v++) {                      \
                VUT *cp = (VUT *)(c + (size_t)i * ldc + v * (VL));                        \
                VT val = add ? *cp + acc[i][v] : acc[i][v];                               \
                if (ep)                                                                   \
                    UKR_EP(VT, VI, val, ep, bi,                                           \
                           *(const VUT *)(ep->res + (size_t)i * ldc + v * (VL)), zero);   \
                *cp = val;                                                                \
            }                                                                             \
        }                                                                                 \
    } else {                                                                              \
        float t[MR][NR_] __attribute__((aligned(64)));                                    \
        _Pragma("GCC unroll 32") for (int i = 0; i < (MR); i++)                           \
            _Pragma("GCC unroll 8") for (int v = 0; v < (NV); v++)                        \
                *(VT *)&t[i][v * (VL)] = acc[i][v];                                       \
        for (int i = 0; i < mr; i++) {                                                    \
            const float bi = ep && ep->bias ? ep->bias[i] : 0.0f;                         \
            for (int j = 0; j < nr; j++) {                                                \
                float *cp = c + (size_t)i * ldc + j;                                      \
                float val = add ? *cp + t[i][j] : t[i][j];                                \
                const float *rp = ep && ep->res ? ep->res + (size_t)i * ldc + j : NULL;   \
                *cp = ep ? ep_scalar(ep, bi, rp, val) : val;                              \
            }                                                                             \
        }                                                                                 \
    }

/* The body of the A.B^T kernels: MI x MJ dot products at once, VL lanes of k per step, each
 * lane a partial sum; the lanes are then added in lane order and the k % VL tail after them,
 * so every element is summed in one fixed order. Rows past mi (mj) repeat row 0 and are not
 * stored. */
#define NT_BODY(VT, VUT, VL, MI, MJ)                                                       \
    const float *ar[MI], *br[MJ];                                                         \
    for (int i = 0; i < (MI); i++)                                                        \
        ar[i] = a + (size_t)(i < mi ? i : 0) * lda;                                       \
    for (int j = 0; j < (MJ); j++)                                                        \
        br[j] = b + (size_t)(j < mj ? j : 0) * ldb;                                       \
    VT acc[MI][MJ];                                                                       \
    _Pragma("GCC unroll 8") for (int i = 0; i < (MI); i++)                                \
        _Pragma("GCC unroll 8") for (int j = 0; j < (MJ); j++) acc[i][j] = (VT){0};       \
    int p = 0;                                                                            \
    for (; p + (VL) <= k; p += (VL)) {                                                    \
        VT av[MI], bv[MJ];                                                                \
        _Pragma("GCC unroll 8") for (int i = 0; i < (MI); i++)                            \
            av[i] = *(const VUT *)(ar[i] + p);                                            \
        _Pragma("GCC unroll 8") for (int j = 0; j < (MJ); j++)                            \
            bv[j] = *(const VUT *)(br[j] + p);                                            \
        _Pragma("GCC unroll 8") for (int i = 0; i < (MI); i++)                            \
            _Pragma("GCC unroll 8") for (int j = 0; j < (MJ); j++)                        \
                acc[i][j] += av[i] * bv[j];                                               \
    }                                                                                     \
    for (int i = 0; i < mi; i++)                                                          \
        for (int j = 0; j < mj; j++) {                                                    \
            float l[VL], s = 0.0f;                                                        \
            memcpy(l, &acc[i][j], sizeof l);                                              \
            for (int q = 0; q < (VL); q++)                                                \
                s += l[q];                                                                \
            for (int q = p; q < k; q++)                                                   \
                s += ar[i][q] * br[j][q];                                                 \
            float *cp = c + (size_t)i * ldc + j;                                          \
            *cp = add ? *cp + s : s;                                                      \
        }

/* The implicit-A micro-kernels of one instruction set: ukra_NAME with the usual tile, and
 * ukrah_NAME with MRH rows and one vector of columns, for products with few columns (conv's
 * weight gradient of 16 channels would waste half of a 32-wide tile). Each row of A is a
 * pointer of its own, so MRH stays at 12: with 16, gcc runs out of general registers and
 * moves pointers in and out of vector registers on every step of the depth loop (measured:
 * 193 against 250 GFLOP/s on a 16-channel 3x3 weight gradient). */
#define UKRA_ONE(ATTR, FN, VT, VUT, VI, VL, MR, NV)                                        \
    ATTR static void FN(int kc, const float *a, const int *koff, const float *b, float *c,  \
                        int ldc, int mr, int nr, int add)                                 \
    {                                                                                     \
        const gemm_ep *ep = NULL;                                                         \
        const float *ar[MR];                                                              \
        for (int i = 0; i < (MR); i++)                                                    \
            ar[i] = a + koff[i < mr ? i : 0];                                             \
        UKR_BODY_AB(VT, VUT, VI, VL, MR, NV, VT, b + (size_t)p * NR_, ar[i][p])           \
    }
#define UKRA_PAIR(ATTR, NAME, VT, VUT, VI, VL, MR, NV, MRH)                                \
    UKRA_ONE(ATTR, ukra_##NAME, VT, VUT, VI, VL, MR, NV)                                  \
    UKRA_ONE(ATTR, ukrah_##NAME, VT, VUT, VI, VL, MRH, 1)

/* Portable: 128-bit vectors (SSE2 on x86-64, NEON elsewhere, scalar code at worst). */
typedef float v4sf __attribute__((vector_size(16)));
typedef float v4sf_u __attribute__((vector_size(16), aligned(4)));
typedef int v4si __attribute__((vector_size(16)));
#define G_MR 4
#define G_NV 2
static void ukr_generic(int kc, const float *a, const float *b, float *c, int ldc, int mr,
                        int nr, int add, const gemm_ep *ep)
{
    UKR_BODY(v4sf, v4sf_u, v4si, 4, G_MR, G_NV)
}
static void ukri_generic(int kc, const float *a, const float *b, const int *koff, float *c,
                         int ldc, int mr, int nr, int add, const gemm_ep *ep)
{
    UKR_BODY_B(v4sf, v4sf_u, v4si, 4, G_MR, G_NV, v4sf_u, b + koff[p])
}
/* ukrv_NAME: the vectors' row pointers are made once, before the depth loop */
#define UKRV(ATTR, NAME, VT, VUT, VI, VL, MR, NV)                                           \
    ATTR static void ukrv_##NAME(int kc, const float *a, const float *b, const int *koff,   \
                                 const int *voff, float *c, int ldc, int mr, int nr,      \
                                 int add, const gemm_ep *ep)                              \
    {                                                                                     \
        const float *bvp[NV];                                                             \
        for (int v = 0; v < (NV); v++)                                                    \
            bvp[v] = b + voff[v];                                                         \
        UKR_BODY_V(VT, VUT, VI, VL, MR, NV, *(const VUT *)(bvp[v] + koff[p]),              \
                   a[(size_t)p * (MR) + i])                                               \
    }

/* ukrv2_NAME: the same with each vector v joined from two halves (HUT: half a vector,
 * unaligned; JOIN(lo, hi): the whole), read at b + voff[2v] + koff[p] and b + voff[2v + 1]
 * + koff[p], for maps whose rows are half a vector wide (or an odd number of halves) */
#define UKRV2(ATTR, NAME, VT, VUT, VI, VL, MR, NV, HUT, JOIN)                               \
    ATTR static void ukrv2_##NAME(int kc, const float *a, const float *b, const int *koff,  \
                                  const int *voff, float *c, int ldc, int mr, int nr,     \
                                  int add, const gemm_ep *ep)                             \
    {                                                                                     \
        const float *bvp[2 * (NV)];                                                       \
        for (int v = 0; v < 2 * (NV); v++)                                                \
            bvp[v] = b + voff[v];                                                         \
        UKR_BODY_V(VT, VUT, VI, VL, MR, NV,                                               \
                   JOIN(*(const HUT *)(bvp[2 * v] + koff[p]),                             \
                        *(const HUT *)(bvp[2 * v + 1] + koff[p])),                        \
                   a[(size_t)p * (MR) + i])                                               \
    }
/* ukrs_NAME: ukrv's sums stored by vector (ukrs_fn), MLOAD(p, n) reading the first n lanes
 * at p (the others zero) and MSTORE(p, n, val) writing them, without touching memory past
 * them. The epilogue is UKR_BODY_V's, lane for lane, so the bits are those of the panels. */
#define UKRS(ATTR, NAME, VT, VUT, VI, VL, MR, NV, MLOAD, MSTORE)                            \
    ATTR static void ukrs_##NAME(int kc, const float *a, const float *b, const int *koff,   \
                                 const int *voff, const int *coff, const int *nl, float *c, \
                                 int ldc, int mr, int add, const gemm_ep *ep)              \
    {                                                                                     \
        const float *bvp[NV];                                                             \
        for (int v = 0; v < (NV); v++)                                                    \
            bvp[v] = b + voff[v];                                                         \
        UKR_ACC(VT, VL, MR, NV, *(const VUT *)(bvp[v] + koff[p]), a[(size_t)p * (MR) + i]) \
        (void)NR_;                                                                        \
        const VT zero = {0};                                                              \
        _Pragma("GCC unroll 32") for (int i = 0; i < (MR); i++) {                         \
            if (i >= mr)                                                                  \
                break;                                                                    \
            const float bi = ep && ep->bias ? ep->bias[i] : 0.0f;                         \
            _Pragma("GCC unroll 8") for (int v = 0; v < (NV); v++) {                      \
                const int n = nl[v], whole = n == (VL);                                   \
                if (n == 0)                                                               \
                    continue;                                                             \
                float *cp = c + (size_t)i * ldc + coff[v];                                \
                VT val = acc[i][v];                                                       \
                if (add)                                                                  \
                    val = (whole ? *(const VUT *)cp : MLOAD(cp, n)) + val;                \
                const float *rp = ep && ep->res ? ep->res + (size_t)i * ldc + coff[v] : NULL; \
                if (ep)                                                                   \
                    UKR_EP(VT, VI, val, ep, bi, whole ? *(const VUT *)rp : MLOAD(rp, n),  \
                           zero);                                                         \
                if (whole)                                                                \
                    *(VUT *)cp = val;                                                     \
                else                                                                      \
                    MSTORE(cp, n, val);                                                   \
            }                                                                             \
        }                                                                                 \
    }

UKRV(, generic, v4sf, v4sf_u, v4si, 4, G_MR, G_NV)
UKRA_PAIR(, generic, v4sf, v4sf_u, v4si, 4, G_MR, G_NV, 2 * G_MR)
static void ntkr_generic(int k, const float *a, int lda, const float *b, int ldb, float *c,
                         int ldc, int mi, int mj, int add)
{
    NT_BODY(v4sf, v4sf_u, 4, 2, 2)
}
static int avail_always(void)
{
    return 1;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_X86_KERNELS 1
#include <immintrin.h> /* the masked loads and stores of ukrs (used in target functions) */
typedef float v8sf __attribute__((vector_size(32)));
typedef float v8sf_u __attribute__((vector_size(32), aligned(4)));
typedef int v8si __attribute__((vector_size(32)));
typedef float v16sf __attribute__((vector_size(64)));
typedef float v16sf_u __attribute__((vector_size(64), aligned(4)));
typedef int v16si __attribute__((vector_size(64)));

#define A2_MR 6
#define A2_NV 2
__attribute__((target("avx2,fma"))) static void ukr_avx2(int kc, const float *a,
                                                         const float *b, float *c, int ldc,
                                                         int mr, int nr, int add,
                                                         const gemm_ep *ep)
{
    UKR_BODY(v8sf, v8sf_u, v8si, 8, A2_MR, A2_NV)
}
__attribute__((target("avx2,fma"))) static void ukri_avx2(int kc, const float *a,
                                                          const float *b, const int *koff,
                                                          float *c, int ldc, int mr, int nr,
                                                          int add, const gemm_ep *ep)
{
    UKR_BODY_B(v8sf, v8sf_u, v8si, 8, A2_MR, A2_NV, v8sf_u, b + koff[p])
}
UKRV(__attribute__((target("avx2,fma"))), avx2, v8sf, v8sf_u, v8si, 8, A2_MR, A2_NV)
#define JOIN4(lo, hi) __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7)
UKRV2(__attribute__((target("avx2,fma"))), avx2, v8sf, v8sf_u, v8si, 8, A2_MR, A2_NV, v4sf_u,
      JOIN4)
#define A2_MASK(n)                                                                         \
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define A2_MLOAD(p, n) ((v8sf)_mm256_maskload_ps((p), A2_MASK(n)))
#define A2_MSTORE(p, n, val) _mm256_maskstore_ps((p), A2_MASK(n), (__m256)(val))
UKRS(__attribute__((target("avx2,fma"))), avx2, v8sf, v8sf_u, v8si, 8, A2_MR, A2_NV, A2_MLOAD,
     A2_MSTORE)
UKRA_PAIR(__attribute__((target("avx2,fma"))), avx2, v8sf, v8sf_u, v8si, 8, A2_MR, A2_NV,
          2 * A2_MR)
__attribute__((target("avx2,fma"))) static void ntkr_avx2(int k, const float *a, int lda,
                                                          const float *b, int ldb, float *c,
                                                          int ldc, int mi, int mj, int add)
{
    NT_BODY(v8sf, v8sf_u, 8, 3, 3)
}
static int avail_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define A5_MR 8
#define A5_NV 2
__attribute__((target("avx512f,fma"))) static void ukr_avx512(int kc, const float *a,
                                                             const float *b, float *c,
                                                             int ldc, int mr, int nr,
                                                             int add, const gemm_ep *ep)
{
    UKR_BODY(v16sf, v16sf_u, v16si, 16, A5_MR, A5_NV)
}
__attribute__((target("avx512f,fma"))) static void ukri_avx512(int kc, const float *a,
                                                              const float *b, const int *koff,
                                                              float *c, int ldc, int mr,
                                                              int nr, int add,
                                                              const gemm_ep *ep)
{
    UKR_BODY_B(v16sf, v16sf_u, v16si, 16, A5_MR, A5_NV, v16sf_u, b + koff[p])
}
UKRV(__attribute__((target("avx512f,fma"))), avx512, v16sf, v16sf_u, v16si, 16, A5_MR, A5_NV)
#define JOIN8(lo, hi)                                                                      \
    __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
UKRV2(__attribute__((target("avx512f,fma"))), avx512, v16sf, v16sf_u, v16si, 16, A5_MR, A5_NV,
      v8sf_u, JOIN8)
#define A5_MASK(n) ((__mmask16)((1u << (n)) - 1u))
#define A5_MLOAD(p, n) ((v16sf)_mm512_maskz_loadu_ps(A5_MASK(n), (p)))
#define A5_MSTORE(p, n, val) _mm512_mask_storeu_ps((p), A5_MASK(n), (__m512)(val))
UKRS(__attribute__((target("avx512f,fma"))), avx512, v16sf, v16sf_u, v16si, 16, A5_MR, A5_NV,
     A5_MLOAD, A5_MSTORE)
UKRA_PAIR(__attribute__((target("avx512f,fma"))), avx512, v16sf, v16sf_u, v16si, 16, A5_MR,
          A5_NV, 12)
__attribute__((target("avx512f,fma"))) static void ntkr_avx512(int k, const float *a, int lda,
                                                               const float *b, int ldb,
                                                               float *c, int ldc, int mi,
                                                               int mj, int add)
{
    NT_BODY(v16sf, v16sf_u, 16, 4, 4)
}
static int avail_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}
#endif

/* Best first. */
static const gemm_isa isas[] = {
#ifdef HAVE_X86_KERNELS
    {"avx512", A5_MR, A5_NV * 16, 16, 12, 96, 256, 2048, ukr_avx512, ukri_avx512, ukrv_avx512,
     ukrv2_avx512, ukrs_avx512, ukra_avx512, ukrah_avx512, 4, 4, ntkr_avx512, avail_avx512},
    {"avx2", A2_MR, A2_NV * 8, 8, 2 * A2_MR, 96, 256, 2048, ukr_avx2, ukri_avx2, ukrv_avx2,
     ukrv2_avx2, ukrs_avx2, ukra_avx2, ukrah_avx2, 3, 3, ntkr_avx2, avail_avx2},
#endif
    {"generic", G_MR, G_NV * 4, 4, 2 * G_MR, 96, 256, 2048, ukr_generic, ukri_generic,
     ukrv_generic, NULL, NULL, ukra_generic, ukrah_generic, 2, 2, ntkr_generic, avail_always},
};
#define NISAS ((int)(sizeof isas / sizeof isas[0]))

static const gemm_isa *cur;
static pthread_once_t cur_once = PTHREAD_ONCE_INIT;

static void pick_isa(void)
{
    const char *want = getenv("RT_GEMM_ISA");
    for (int i = 0; i < NISAS; i++)
        if (want && strcmp(want, isas[i].name) == 0 && isas[i].available()) {
            cur = &isas[i];
            return;
        }
    for (int i = 0; i < NISAS; i++)
        if (isas[i].available()) {
            cur = &isas[i];
            return;
        }
}

static const gemm_isa *isa(void)
{
    pthread_once(&cur_once, pick_isa);
    return cur;
}

const char *rt_gemm_isa(void)
{
    return isa()->name;
}

int rt_gemm_use_isa(const char *name)
{
    isa();
    for (int i = 0; i < NISAS; i++)
        if (strcmp(name, isas[i].name) == 0) {
            if (!isas[i].available())
                return -1;
            cur = &isas[i];
            return 0;
        }
    return -1;
}

size_t rt_sgemm_ws_size(void)
{
    size_t most = 0;
    for (int i = 0; i < NISAS; i++) {
        size_t f = (size_t)isas[i].mc * isas[i].kc + (size_t)isas[i].kc * isas[i].nc;
        if (f > most)
            most = f;
    }
    return most * sizeof(float) + 128;
}

/* Packs rows [i0, i0+mc) x columns [p0, p0+kc) of op(A) (times alpha) into MR-high panels,
 * k-major inside a panel, zero-filling rows past mc. */
static void pack_a(int ta, const float *a, int lda, int i0, int mc, int p0, int kc,
                   float alpha, int MR, float *dst)
{
    for (int ip = 0; ip < mc; ip += MR) {
        int rows = mc - ip < MR ? mc - ip : MR;
        for (int ii = 0; ii < MR; ii++) {
            float *d = dst + ii;
            if (ii >= rows) {
                for (int p = 0; p < kc; p++)
                    d[(size_t)p * MR] = 0.0f;
                continue;
            }
            int i = i0 + ip + ii;
            if (!ta) {
                if (rows == MR)
                    break; /* a full panel of rows is interleaved below */
                const float *s = a + (size_t)i * lda + p0;
                for (int p = 0; p < kc; p++)
                    d[(size_t)p * MR] = alpha * s[p];
            } else {
                const float *s = a + (size_t)p0 * lda + i;
                for (int p = 0; p < kc; p++)
                    d[(size_t)p * MR] = alpha * s[(size_t)p * lda];
            }
        }
        if (!ta && rows == MR) {
            /* MR row streams read side by side, written contiguously */
            const float *s = a + (size_t)(i0 + ip) * lda + p0;
            for (int p = 0; p < kc; p++)
                for (int ii = 0; ii < MR; ii++)
                    dst[(size_t)p * MR + ii] = alpha * s[(size_t)ii * lda + p];
        }
        dst += (size_t)MR * kc;
    }
}

/* Packs rows [p0, p0+kc) x columns [j0, j0+nc) of op(B) into NR-wide panels, k-major
 * inside a panel, zero-filling columns past nc. */
static void pack_b(int tb, const float *b, int ldb, int p0, int kc, int j0, int nc, int NR,
                   float *dst)
{
    for (int jp = 0; jp < nc; jp += NR) {
        int cols = nc - jp < NR ? nc - jp : NR;
        if (!tb) {
            for (int p = 0; p < kc; p++) {
                const float *s = b + (size_t)(p0 + p) * ldb + j0 + jp;
                float *d = dst + (size_t)p * NR;
                int j = 0;
                for (; j < cols; j++)
                    d[j] = s[j];
                for (; j < NR; j++)
                    d[j] = 0.0f;
            }
        } else {
            for (int jj = 0; jj < NR; jj++) {
                float *d = dst + jj;
                if (jj >= cols) {
                    for (int p = 0; p < kc; p++)
                        d[(size_t)p * NR] = 0.0f;
                    continue;
                }
                const float *s = b + (size_t)(j0 + jp + jj) * ldb + p0;
                for (int p = 0; p < kc; p++)
                    d[(size_t)p * NR] = s[p];
            }
        }
        dst += (size_t)NR * kc;
    }
}

void rt_sgemm_ws(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc, void *ws)
{
    const gemm_isa *g = isa();
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || alpha == 0.0f) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    if (beta != 0.0f && beta != 1.0f)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(size_t)i * ldc + j] *= beta;

    float *abuf = (float *)ALIGN_UP((uintptr_t)ws, 64);
    float *bbuf = abuf + (size_t)g->mc * g->kc;
    for (int jc = 0; jc < n; jc += g->nc) {
        int nc = n - jc < g->nc ? n - jc : g->nc;
        for (int pc = 0; pc < k; pc += g->kc) {
            int kc = k - pc < g->kc ? k - pc : g->kc;
            int add = pc > 0 || beta != 0.0f;
            pack_b(tb, b, ldb, pc, kc, jc, nc, g->nr, bbuf);
            for (int ic = 0; ic < m; ic += g->mc) {
                int mc = m - ic < g->mc ? m - ic : g->mc;
                pack_a(ta, a, lda, ic, mc, pc, kc, alpha, g->mr, abuf);
                for (int jr = 0; jr < nc; jr += g->nr) {
                    int nr = nc - jr < g->nr ? nc - jr : g->nr;
                    const float *bp = bbuf + (size_t)jr * kc;
                    for (int ir = 0; ir < mc; ir += g->mr) {
                        int mr = mc - ir < g->mr ? mc - ir : g->mr;
                        g->ukr(kc, abuf + (size_t)ir * kc, bp,
                               c + (size_t)(ic + ir) * ldc + jc + jr, ldc, mr, nr, add, NULL);
                    }
                }
            }
        }
    }
}

int rt_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc)
{
    void *ws = malloc(rt_sgemm_ws_size());
    if (!ws)
        return -1;
    rt_sgemm_ws(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws);
    free(ws);
    return 0;
}

/* ------------------------------------------------------------------ packed operands */

int rt_gemm_mr(void)
{
    return isa()->mr;
}

int rt_gemm_nr(void)
{
    return isa()->nr;
}

size_t rt_gemm_packed_a_floats(int m, int k)
{
    int mr = isa()->mr;
    return (size_t)((m + mr - 1) / mr) * mr * (k > 0 ? k : 1);
}

size_t rt_gemm_packed_b_floats(int k, int n)
{
    int nr = isa()->nr;
    return (size_t)((n + nr - 1) / nr) * nr * (k > 0 ? k : 1);
}

void rt_gemm_pack_a(int ta, int m, int k, float alpha, const float *a, int lda, float *dst)
{
    pack_a(ta, a, lda, 0, m, 0, k, alpha, isa()->mr, dst);
}

void rt_gemm_pack_b(int tb, int k, int n, const float *b, int ldb, float *dst)
{
    pack_b(tb, b, ldb, 0, k, 0, n, isa()->nr, dst);
}

void rt_gemm_packed(int m, int n, int k, const float *ap, const float *bp, int add, float *c,
                    int ldc)
{
    rt_gemm_packed_ep(m, n, k, ap, bp, add, c, ldc, NULL, RT_ACT_NONE, 0.0f);
}

void rt_gemm_packed_ep(int m, int n, int k, const float *ap, const float *bp, int add, float *c,
                       int ldc, const float *bias, rt_act act, float alpha)
{
    const gemm_isa *g = isa();
    const int MR = g->mr, NR = g->nr;
    const int fused = ep_act(act);
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) { /* C = (add ? C : 0) then the epilogue */
        gemm_ep e = {bias, fused, alpha, NULL};
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float *cp = c + (size_t)i * ldc + j;
                *cp = ep_scalar(&e, bias ? bias[i] : 0.0f, NULL, add ? *cp : 0.0f);
            }
        return;
    }
    /* depth blocks keep a B micro-panel in L1; row blocks keep the A block in L2 */
    for (int pc = 0; pc < k; pc += g->kc) {
        int kc = k - pc < g->kc ? k - pc : g->kc;
        int last = pc + kc >= k && (bias || fused);
        for (int ic = 0; ic < m; ic += g->mc) {
            int mc = m - ic < g->mc ? m - ic : g->mc;
            for (int jr = 0; jr < n; jr += NR) {
                int nr = n - jr < NR ? n - jr : NR;
                const float *b = bp + (size_t)(jr / NR) * k * NR + (size_t)pc * NR;
                for (int ir = ic; ir < ic + mc; ir += MR) {
                    int mr = m - ir < MR ? m - ir : MR;
                    const float *a = ap + (size_t)(ir / MR) * k * MR + (size_t)pc * MR;
                    gemm_ep e = {bias ? bias + ir : NULL, fused, alpha, NULL};
                    g->ukr(kc, a, b, c + (size_t)ir * ldc + jr, ldc, mr, nr, add || pc > 0,
                           last ? &e : NULL);
                }
            }
        }
    }
}

void rt_gemm_implicit_panels(int m, int n, int k, const float *ap, const float *b,
                             const int *koff, float *panel, const float *bias, rt_act act,
                             float alpha, rt_gemm_panel_fn fill, rt_gemm_panel_fn sink,
                             void *ctx)
{
    const gemm_isa *g = isa();
    const int MR = g->mr, NR = g->nr;
    const int fused = ep_act(act);
    if (m <= 0 || n <= 0 || k <= 0)
        return;
    /* rt_gemm_packed_ep's loops with the column panels outermost: each element sums its
     * depth blocks in the same order, each block added to what the panel holds */
    for (int jr = 0; jr < n; jr += NR) {
        int nr = n - jr < NR ? n - jr : NR;
        if (fill)
            fill(ctx, jr, nr, panel, NR);
        for (int pc = 0; pc < k; pc += g->kc) {
            int kc = k - pc < g->kc ? k - pc : g->kc;
            int last = pc + kc >= k && (bias || fused);
            for (int ir = 0; ir < m; ir += MR) {
                int mr = m - ir < MR ? m - ir : MR;
                const float *a = ap + (size_t)(ir / MR) * k * MR + (size_t)pc * MR;
                gemm_ep e = {bias ? bias + ir : NULL, fused, alpha, NULL};
                g->ukri(kc, a, b + jr, koff + pc, panel + (size_t)ir * NR, NR, mr, nr,
                        fill || pc > 0, last ? &e : NULL);
            }
        }
        sink(ctx, jr, nr, panel, NR);
    }
}

/* How rt_gemm_implicit_rows cuts rows of ow pixels on a grid S wide: 1 whole vectors, 2 half
 * vectors, 3 vectors with the last of each row partial (when they compute no more than 1/8
 * above the grid's S columns a row: cnn3's 61 and 28 wide maps, 64 and 32 lanes against
 * 63 and 30 columns, ran 1.07x and 1.04x the panels, which copy their tiles into y), 0 none
 * (the panels). */
static int rows_kind(const gemm_isa *g, int ow, int S)
{
    if (ow <= 0)
        return 0;
    if (ow % g->vl == 0)
        return 1;
    if (g->ukrv2 && ow % (g->vl / 2) == 0)
        return 2;
    const int lanes = (ow + g->vl - 1) / g->vl * g->vl;
    return g->ukrs && 8 * lanes <= 9 * S ? 3 : 0;
}

int rt_gemm_implicit_rows_ok(int ow, int S)
{
    return rows_kind(isa(), ow, S) != 0;
}

void rt_gemm_implicit_rows(int m, int k, const float *ap, const float *b, const int *koff,
                           int npix, int ow, int ldb, float *c, int ldc, int add,
                           const float *bias, const float *res, rt_act act, float alpha)
{
    const gemm_isa *g = isa();
    const int kind = rows_kind(g, ow, ldb), slots = kind == 3;
    const int MR = g->mr, NR = g->nr;
    const int VL = kind == 2 ? g->vl / 2 : g->vl, NV = NR / VL; /* VL: floats of one read */
    const ukrv_fn ukr = kind == 1 ? g->ukrv : g->ukrv2;
    const int fused = ep_act(act);
    if (!kind) /* a caller that did not ask rt_gemm_implicit_rows_ok */
        abort();
    if (m <= 0 || npix <= 0 || k <= 0) /* (k = 0 never comes: a conv has taps) */
        return;
    /* rt_gemm_implicit_panels' loops, with a tile's columns found by pixel. Whole rows of
     * vectors (or halves): read v of the tile at pixel jr starts at pixel jr + v * VL, in b
     * at its grid position; a read past npix takes the first one's (its columns are not
     * stored). Slots: each row is cut into ns vectors, the last one partial; a tile is NV
     * slots in order, each read at its pixel's grid position and stored at its pixel (coff)
     * with its nl lanes; slots past the end read the first one's and store nothing. */
    const int ns = (ow + VL - 1) / VL, units = slots ? npix / ow * ns : npix;
    const int step = slots ? NV : NR;
    int voff[32], coff[32], nl[32];
    if (NV > 32)
        abort();
    for (int u0 = 0; u0 < units; u0 += step) {
        const int nr = npix - u0 < NR ? npix - u0 : NR; /* (pixels: not for slots) */
        for (int v = 0; v < NV; v++) {
            if (slots) {
                const int sl = u0 + v, r = sl / ns, x = sl % ns * VL;
                voff[v] = sl < units ? r * ldb + x : voff[0];
                coff[v] = sl < units ? r * ow + x : 0;
                nl[v] = sl < units ? (ow - x < VL ? ow - x : VL) : 0;
            } else {
                const int px = u0 + v * VL < npix ? u0 + v * VL : u0;
                voff[v] = px / ow * ldb + px % ow;
            }
        }
        const size_t at = slots ? 0 : (size_t)u0; /* the tile's columns in c (and res) */
        for (int pc = 0; pc < k; pc += g->kc) {
            int kc = k - pc < g->kc ? k - pc : g->kc;
            int last = pc + kc >= k && (bias || fused || res);
            for (int ir = 0; ir < m; ir += MR) {
                int mr = m - ir < MR ? m - ir : MR;
                const float *a = ap + (size_t)(ir / MR) * k * MR + (size_t)pc * MR;
                gemm_ep e = {bias ? bias + ir : NULL, fused, alpha,
                             res ? res + (size_t)ir * ldc + at : NULL};
                float *ct = c + (size_t)ir * ldc + at;
                if (slots)
                    g->ukrs(kc, a, b, koff + pc, voff, coff, nl, ct, ldc, mr, add || pc > 0,
                            last ? &e : NULL);
                else
                    ukr(kc, a, b, koff + pc, voff, ct, ldc, mr, nr, add || pc > 0,
                        last ? &e : NULL);
            }
        }
    }
}

int rt_gemm_implicit_a_nr(int n)
{
    const gemm_isa *g = isa();
    return n <= g->nr / 2 ? g->nr / 2 : g->nr;
}

void rt_gemm_implicit_a(int m, int n, int k, const float *a, const int *koff, const float *bp,
                        int add, float *c, int ldc)
{
    const gemm_isa *g = isa();
    const int half = n <= g->nr / 2, MR = half ? g->mrh : g->mr, NR = half ? g->nr / 2 : g->nr;
    const ukra_fn ukr = half ? g->ukrah : g->ukra;
    if (m <= 0 || n <= 0 || k <= 0)
        return;
    for (int pc = 0; pc < k; pc += g->kc) {
        int kc = k - pc < g->kc ? k - pc : g->kc;
        for (int ic = 0; ic < m; ic += g->mc) {
            int mc = m - ic < g->mc ? m - ic : g->mc;
            for (int jr = 0; jr < n; jr += NR) {
                int nr = n - jr < NR ? n - jr : NR;
                const float *b = bp + (size_t)(jr / NR) * k * NR + (size_t)pc * NR;
                for (int ir = ic; ir < ic + mc; ir += MR) {
                    int mr = m - ir < MR ? m - ir : MR;
                    ukr(kc, a + pc, koff + ir, b, c + (size_t)ir * ldc + jr, ldc, mr, nr,
                        add || pc > 0);
                }
            }
        }
    }
}

void rt_gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, int add,
                float *c, int ldc)
{
    const gemm_isa *g = isa();
    for (int i = 0; i < m; i += g->nti)
        for (int j = 0; j < n; j += g->ntj)
            g->ntkr(k, a + (size_t)i * lda, lda, b + (size_t)j * ldb, ldb,
                    c + (size_t)i * ldc + j, ldc, m - i < g->nti ? m - i : g->nti,
                    n - j < g->ntj ? n - j : g->ntj, add);
}

/* ------------------------------------------------------------------ parallel over columns */

typedef struct {
    int ta, tb, m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
    atomic_int fail; /* set by a worker that ran out of memory */
} gemm_job;

static void gemm_task(void *arg, rt_worker *w)
{
    gemm_job *j = arg;
    int tid = rt_worker_id(w), nt = rt_worker_count(w);
    int nr = isa()->nr;
    /* split the columns into whole NR panels so tiles do not depend on the split */
    int panels = (j->n + nr - 1) / nr, lo, hi;
    rt_split_range(panels, nt, tid, &lo, &hi);
    int j0 = lo * nr, j1 = hi * nr < j->n ? hi * nr : j->n;
    if (j0 >= j1)
        return;
    void *ws = rt_worker_scratch(w, rt_sgemm_ws_size());
    if (!ws) {
        atomic_store(&j->fail, 1);
        return;
    }
    const float *b = j->tb ? j->b + (size_t)j0 * j->ldb : j->b + j0;
    rt_sgemm_ws(j->ta, j->tb, j->m, j1 - j0, j->k, j->alpha, j->a, j->lda, b, j->ldb,
                j->beta, j->c + j0, j->ldc, ws);
}

int rt_sgemm_mt(rt_threads *tp, int ta, int tb, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c,
                int ldc)
{
    gemm_job j = {ta, tb, m, n, k, alpha, beta, a, b, c, lda, ldb, ldc, 0};
    rt_threads_run(tp, gemm_task, &j);
    return atomic_load(&j.fail) ? -1 : 0;
}
