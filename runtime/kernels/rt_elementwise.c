/*
 * rt_elementwise.c - the elementwise steps between the heavy kernels (activations, copies,
 * residual sums, gradient passes, dropout), split over a thread pool.
 *
 * The interpreter and generated C both call these, so they run the same code. Each worker
 * takes one contiguous range of whole 16-float blocks (64 bytes), and each value's result
 * does not depend on the split, so any pool size gives the same bits. Arrays under
 * RT_SERIAL_BELOW values run on the calling thread. The loops have AVX-512 and AVX2 copies
 * (RT_CLONES in rt_simd.h).
 */
#include "rt_kernels.h"
#include "rt_simd.h"

typedef enum {
    EW_COPY, EW_ACT_FWD, EW_ACT_BWD, EW_ADD, EW_PASS, EW_DROP_FWD, EW_DROP_BWD, EW_ADD_ACT,
    EW_ADD_ACT_BWD
} ew_op;

/* The fused add + activation works through blocks of this many floats, so that the second
 * step reads what the first wrote from L1. */
#define EW_BLOCK 1024

typedef struct {
    ew_op op;
    rt_act act;
    float alpha;
    const float *a, *b; /* inputs: x or y, and dy / the second summand / the mask */
    const float *x;     /* the activation's input, for its backward (or NULL) */
    float *out;
    size_t n;
    int accum;
    float *out2;        /* EW_ADD_ACT_BWD: the second summand's gradient (or NULL) */
    int accum2;
} ew_job;

/* y = act(a + b), block by block. */
static inline void add_act(const ew_job *j, const float *a, const float *b, float *o, size_t k)
{
    for (size_t s = 0; s < k; s += EW_BLOCK) {
        size_t m = k - s < EW_BLOCK ? k - s : EW_BLOCK;
        rt_add_forward(a + s, b + s, o + s, m);
        rt_act_forward(j->act, j->alpha, o + s, o + s, m);
    }
}

/* g = act'(y) dy, then out (+)= g and out2 (+)= g, block by block (lo: the block's offset
 * in the whole arrays). */
static inline void add_act_bwd(const ew_job *j, size_t lo, size_t k)
{
    float g[EW_BLOCK];
    for (size_t s = 0; s < k; s += EW_BLOCK) {
        size_t m = k - s < EW_BLOCK ? k - s : EW_BLOCK, at = lo + s;
        rt_act_backward_xy(j->act, j->alpha, NULL, j->a + at, j->b + at, g, m, 0);
        if (j->out)
            rt_grad_pass(g, j->out + at, m, j->accum);
        if (j->out2)
            rt_grad_pass(g, j->out2 + at, m, j->accum2);
    }
}

RT_CLONES static void ew_task(void *arg, rt_worker *w)
{
    const ew_job *j = arg;
    size_t lo, hi;
    rt_worker_blocks(w, j->n, 16, &lo, &hi);
    if (lo >= hi)
        return;
    size_t k = hi - lo;
    const float *a = j->a ? j->a + lo : NULL, *b = j->b ? j->b + lo : NULL;
    if (j->op == EW_ADD_ACT_BWD) { /* two outputs, either may be NULL */
        add_act_bwd(j, lo, k);
        return;
    }
    float *o = j->out + lo;
    switch (j->op) {
    case EW_COPY: memmove(o, a, k * sizeof *o); break;
    case EW_ACT_FWD: rt_act_forward(j->act, j->alpha, a, o, k); break;
    case EW_ACT_BWD:
        rt_act_backward_xy(j->act, j->alpha, j->x ? j->x + lo : NULL, a, b, o, k, j->accum);
        break;
    case EW_ADD: rt_add_forward(a, b, o, k); break;
    case EW_PASS: rt_grad_pass(a, o, k, j->accum); break;
    case EW_DROP_FWD: rt_dropout_forward(a, b, o, k); break;
    case EW_DROP_BWD: rt_dropout_backward(a, b, o, k, j->accum); break;
    case EW_ADD_ACT: add_act(j, a, b, o, k); break;
    case EW_ADD_ACT_BWD: break; /* above */
    }
}

static void ew_x(ew_op op, rt_act act, float alpha, const float *a, const float *b,
                 const float *x, float *out, size_t n, int accum, rt_threads *tp)
{
    ew_job j = {op, act, alpha, a, b, x, out, n, accum, NULL, 0};
    rt_threads_run(n >= RT_SERIAL_BELOW ? tp : NULL, ew_task, &j);
}

static void ew(ew_op op, rt_act act, float alpha, const float *a, const float *b, float *out,
               size_t n, int accum, rt_threads *tp)
{
    ew_x(op, act, alpha, a, b, NULL, out, n, accum, tp);
}

void rt_copy_mt(const float *x, float *y, size_t n, rt_threads *tp)
{
    if (x != y)
        ew(EW_COPY, RT_ACT_NONE, 0.0f, x, NULL, y, n, 0, tp);
}

void rt_act_forward_mt(rt_act act, float alpha, const float *x, float *y, size_t n,
                       rt_threads *tp)
{
    ew(EW_ACT_FWD, act, alpha, x, NULL, y, n, 0, tp);
}

void rt_act_backward_mt(rt_act act, float alpha, const float *y, const float *dy, float *dx,
                        size_t n, int accum, rt_threads *tp)
{
    ew(EW_ACT_BWD, act, alpha, y, dy, dx, n, accum, tp);
}

void rt_act_backward_xy_mt(rt_act act, float alpha, const float *x, const float *y,
                           const float *dy, float *dx, size_t n, int accum, rt_threads *tp)
{
    ew_x(EW_ACT_BWD, act, alpha, y, dy, x, dx, n, accum, tp);
}

void rt_add_forward_mt(const float *a, const float *b, float *y, size_t n, rt_threads *tp)
{
    ew(EW_ADD, RT_ACT_NONE, 0.0f, a, b, y, n, 0, tp);
}

void rt_add_act_forward_mt(const float *a, const float *b, rt_act act, float alpha, float *y,
                           size_t n, rt_threads *tp)
{
    ew(EW_ADD_ACT, act, alpha, a, b, y, n, 0, tp);
}

void rt_add_act_backward_mt(rt_act act, float alpha, const float *y, const float *dy,
                            float *da, int acc_a, float *db, int acc_b, size_t n,
                            rt_threads *tp)
{
    ew_job j = {EW_ADD_ACT_BWD, act, alpha, y, dy, NULL, da, n, acc_a, db, acc_b};
    rt_threads_run(n >= RT_SERIAL_BELOW ? tp : NULL, ew_task, &j);
}

void rt_grad_pass_mt(const float *dy, float *dx, size_t n, int accum, rt_threads *tp)
{
    ew(EW_PASS, RT_ACT_NONE, 0.0f, dy, NULL, dx, n, accum, tp);
}

void rt_dropout_forward_mt(const float *x, const float *mask, float *y, size_t n,
                           rt_threads *tp)
{
    ew(EW_DROP_FWD, RT_ACT_NONE, 0.0f, x, mask, y, n, 0, tp);
}

void rt_dropout_backward_mt(const float *dy, const float *mask, float *dx, size_t n,
                            int accum, rt_threads *tp)
{
    ew(EW_DROP_BWD, RT_ACT_NONE, 0.0f, dy, mask, dx, n, accum, tp);
}

void rt_input_normalize(const rt_layer *L, const float *x, float *y, int n)
{
    const size_t plane = (size_t)L->out.h * L->out.w;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < L->out.c; c++) {
            /* a division, as torchvision's Normalize does, so the bits match it */
            const float m = L->mean[c < 4 ? c : 3], s = L->std[c < 4 ? c : 3];
            const size_t off = ((size_t)i * L->out.c + c) * plane;
            for (size_t k = 0; k < plane; k++)
                y[off + k] = (x[off + k] - m) / s;
        }
}
