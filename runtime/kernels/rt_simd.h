/*
 * rt_simd.h - 128-bit GNU C vectors for the data-movement loops that gcc does not vectorize
 * by itself (pooling windows, transposes): SSE2 on x86-64, NEON on arm64, from plain C.
 * RT_HAVE_V4 is defined when the compiler has them (gcc 12 and clang have
 * __builtin_shufflevector); callers keep a scalar loop for the rest. Internal to libcnnrt.
 */
#ifndef RT_SIMD_H
#define RT_SIMD_H

/* RT_CLONES before a function whose loops gcc vectorizes by itself (the channel loops of
 * batchnorm, the elementwise steps): on x86-64 gcc compiles it also for AVX-512 and AVX2,
 * with every function it calls inlined into each copy (flatten: a call to a helper would
 * run the helper's baseline code), and the copy for this CPU is picked once at load time
 * (an ifunc), since the library itself is built for the baseline x86-64 (SSE2). Contraction
 * into FMA is off in the copies, so every copy gives the baseline's bits (the loops keep
 * their order of additions): results do not depend on the CPU, and the serial inline forms
 * in rt_kernels.h agree with the threaded ones. Other compilers and machines, or
 * -DRT_NO_CLONES, get the plain function. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(RT_NO_CLONES) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define RT_CLONES                                                                              \
    __attribute__((target_clones("avx512f", "avx2", "default"), flatten,                        \
                   optimize("fp-contract=off")))
#endif
#endif
#ifndef RT_CLONES
#define RT_CLONES
#endif

#if defined(__GNUC__) && defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define RT_HAVE_V4 1

typedef float rt_v4 __attribute__((vector_size(16)));
typedef float rt_v4_u __attribute__((vector_size(16), aligned(4)));
typedef int rt_v4i __attribute__((vector_size(16)));

static inline rt_v4 rt_ld4(const float *p)
{
    return *(const rt_v4_u *)p;
}

static inline void rt_st4(float *p, rt_v4 v)
{
    *(rt_v4_u *)p = v;
}

/* v where the mask m is all ones, else +0. */
static inline rt_v4 rt_keep4(rt_v4i m, rt_v4 v)
{
    return (rt_v4)(m & (rt_v4i)v);
}

/* Rows s, s + ls, s + 2 ls, s + 3 ls of 4 floats each, written as the columns of d: d[k *
 * ld + j] = s[j * ls + k]. */
static inline void rt_transpose4(const float *s, long ls, float *d, long ld)
{
    rt_v4 r0 = rt_ld4(s), r1 = rt_ld4(s + ls), r2 = rt_ld4(s + 2 * ls), r3 = rt_ld4(s + 3 * ls);
    rt_v4 t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5);
    rt_v4 t1 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);
    rt_v4 t2 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
    rt_v4 t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
    rt_st4(d, __builtin_shufflevector(t0, t1, 0, 1, 4, 5));
    rt_st4(d + ld, __builtin_shufflevector(t0, t1, 2, 3, 6, 7));
    rt_st4(d + 2 * ld, __builtin_shufflevector(t2, t3, 0, 1, 4, 5));
    rt_st4(d + 3 * ld, __builtin_shufflevector(t2, t3, 2, 3, 6, 7));
}

#endif
#endif
#endif
