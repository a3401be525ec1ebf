/*
 * rt_pool_tiled2.h - the max backward of one plane through 2x2 windows at stride 2 without
 * padding, as a template that rt_pool.c includes once per instruction set: TILED2_NAME names
 * the function, TILED2_WIDE 1 adds blocks of 16 and 8 windows (GNU C vectors of 64 and 32
 * bytes, for the AVX-512 copy) to the 4-wide blocks (max_bwd_2x2_v4) and the scalar tail.
 *
 * Every cell of dx is written (not added to), so no zeroing pass over dx is needed. A row
 * goes in blocks of the widest width first; where the row is not a multiple of a width and
 * at least half a block is left, the last block is taken as the row's last windows, and the
 * windows already done are written again with the same values (each window writes its own
 * 4 cells). Selection only, no arithmetic: every width gives the same bits.
 */
#if TILED2_WIDE
/* W windows of rows r0 (top) and r1 (bottom), as max_bwd_2x2_v4: EVEN / ODD pull a row's
 * columns apart, LO / HI interleave two halves back. */
#define P2_EVEN8 0, 2, 4, 6, 8, 10, 12, 14
#define P2_ODD8 1, 3, 5, 7, 9, 11, 13, 15
#define P2_LO8 0, 8, 1, 9, 2, 10, 3, 11
#define P2_HI8 4, 12, 5, 13, 6, 14, 7, 15
#define P2_EVEN16 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define P2_ODD16 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31
#define P2_LO16 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define P2_HI16 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
#define MAX_BWD_2X2_WIDE(W, EVEN, ODD, LO, HI)                                                \
    typedef float p2_v##W __attribute__((vector_size(4 * W)));                                \
    typedef float p2_v##W##u __attribute__((vector_size(4 * W), aligned(4)));                 \
    typedef int p2_v##W##i __attribute__((vector_size(4 * W)));                               \
    static inline void max_bwd_2x2_v##W(const float *r0, const float *r1, const float *dr,   \
                                        float *d0, float *d1, int relu)                       \
    {                                                                                         \
        p2_v##W t0 = *(const p2_v##W##u *)r0, t1 = *(const p2_v##W##u *)(r0 + W);            \
        p2_v##W b0 = *(const p2_v##W##u *)r1, b1 = *(const p2_v##W##u *)(r1 + W);            \
        p2_v##W a = __builtin_shufflevector(t0, t1, EVEN);                                    \
        p2_v##W b = __builtin_shufflevector(t0, t1, ODD);                                     \
        p2_v##W c = __builtin_shufflevector(b0, b1, EVEN);                                    \
        p2_v##W e = __builtin_shufflevector(b0, b1, ODD);                                     \
        p2_v##W##i bgt = b > a, egt = e > c;                                                  \
        p2_v##W mab = (p2_v##W)((bgt & (p2_v##W##i)b) | (~bgt & (p2_v##W##i)a));              \
        p2_v##W mce = (p2_v##W)((egt & (p2_v##W##i)e) | (~egt & (p2_v##W##i)c));              \
        p2_v##W##i bot = mce > mab, v = (p2_v##W##i) * (const p2_v##W##u *)dr;                \
        if (relu) /* over relu outputs, a window whose maximum is 0 passes nothing */         \
            v &= (mab > 0.0f) | (mce > 0.0f);                                                 \
        p2_v##W ga = (p2_v##W)(~bot & ~bgt & v), gb = (p2_v##W)(~bot & bgt & v);              \
        p2_v##W gc = (p2_v##W)(bot & ~egt & v), ge = (p2_v##W)(bot & egt & v);                \
        *(p2_v##W##u *)d0 = __builtin_shufflevector(ga, gb, LO);                              \
        *(p2_v##W##u *)(d0 + W) = __builtin_shufflevector(ga, gb, HI);                        \
        *(p2_v##W##u *)d1 = __builtin_shufflevector(gc, ge, LO);                              \
        *(p2_v##W##u *)(d1 + W) = __builtin_shufflevector(gc, ge, HI);                        \
    }
MAX_BWD_2X2_WIDE(8, P2_EVEN8, P2_ODD8, P2_LO8, P2_HI8)
MAX_BWD_2X2_WIDE(16, P2_EVEN16, P2_ODD16, P2_LO16, P2_HI16)
#endif

/* Blocks of W windows from column o on (see the top of the file). */
#define P2_BLOCKS(W, BLOCK)                                                                   \
    if (ow >= W) {                                                                            \
        for (; o + W <= ow; o += W)                                                           \
            BLOCK(r + 2 * o, r + w + 2 * o, dr + o, d0 + 2 * o, d1 + 2 * o, relu);            \
        if (ow - o >= W / 2) { /* else narrower blocks finish the row */                      \
            o = ow - W;                                                                       \
            BLOCK(r + 2 * o, r + w + 2 * o, dr + o, d0 + 2 * o, d1 + 2 * o, relu);            \
            o = ow;                                                                           \
        }                                                                                     \
    }

static void TILED2_NAME(const rt_pool_geom *g, const float *x, const float *dy, float *dx,
                        int relu)
{
    const int w = g->w, ow = g->ow;
    for (int oy = 0; oy < g->oh; oy++) {
        const float *r = x + (size_t)2 * oy * w, *dr = dy + (size_t)oy * ow;
        float *d0 = dx + (size_t)2 * oy * w, *d1 = d0 + w;
        int o = 0;
#if TILED2_WIDE
        P2_BLOCKS(16, max_bwd_2x2_v16)
        P2_BLOCKS(8, max_bwd_2x2_v8)
#endif
#ifdef RT_HAVE_V4
        for (; o + 4 <= ow; o += 4)
            max_bwd_2x2_v4(r + 2 * o, r + w + 2 * o, dr + o, d0 + 2 * o, d1 + 2 * o, relu);
        if (o < ow && ow >= 4) { /* the tail as the last 4 windows */
            o = ow - 4;
            max_bwd_2x2_v4(r + 2 * o, r + w + 2 * o, dr + o, d0 + 2 * o, d1 + 2 * o, relu);
            o = ow;
        }
#endif
        for (; o < ow; o++) {
            float a = r[2 * o], b = r[2 * o + 1], c = r[w + 2 * o], e = r[w + 2 * o + 1];
            int i = argmax4(a, b, c, e);
            float v = relu && !(a > 0.0f || b > 0.0f || c > 0.0f || e > 0.0f) ? 0.0f : dr[o];
            d0[2 * o] = i == 0 ? v : 0.0f;
            d0[2 * o + 1] = i == 1 ? v : 0.0f;
            d1[2 * o] = i == 2 ? v : 0.0f;
            d1[2 * o + 1] = i == 3 ? v : 0.0f;
        }
        for (int c = 2 * ow; c < w; c++) /* columns no window reaches */
            d0[c] = d1[c] = 0.0f;
    }
    if (2 * g->oh < g->h)
        memset(dx + (size_t)2 * g->oh * w, 0, (size_t)(g->h - 2 * g->oh) * w * sizeof *dx);
}

#undef P2_BLOCKS
#undef TILED2_NAME
#undef TILED2_WIDE
