/*
 * gradcheck.h - a layer's float backward kernel against finite differences of a float64
 * reference forward of the same layer: sharp (1e-3 relative) and independent of the
 * optimisation level, since no difference is ever taken in float. Header-only, for Check tests.
 *
 * How to use it for a new kernel (see test_gradcheck.c for many examples):
 *   - write fwd/bwd wrappers around the float kernels and ref, the same layer in double
 *     (plain loops, no code shared with the kernel); ref returns 0 for a smooth layer, or for a
 *     layer with kinks (relu, max) a hash of the branch it took (sign pattern, argmax indices);
 *   - fill a gc_case: sizes nx, ny, the parameter tensors (np[], pname[], in the order they
 *     sit in p and dp), set kinked if ref hashes its branches, then gc_run(&c).
 * gc_run checks: the float forward agrees with ref (so ref is the same layer); every gradient
 * tensor (dx and each parameter tensor) agrees with central differences of ref, each element
 * within GC_ATOL * (largest of that tensor) + GC_RTOL * |numeric|; the comparison rejects each
 * tensor scaled by 1 +- 0.5 % (proof that it can fail); backward with accum = 1 adds exactly
 * its result to what dx held. Near a kink the step shrinks until both sides take the branch
 * of the point itself; smooth layers keep GC_H.
 */
#ifndef CNN_TESTS_GRADCHECK_H
#define CNN_TESTS_GRADCHECK_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ck_assert writes a record for every check that passes (fork mode): checks inside loops go
 * through GC_CHECK, which reports only a failure. */
#define GC_CHECK(cond, ...)                                                                \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

#define GC_RTOL 1e-3
#define GC_ATOL 1e-4    /* times the largest magnitude in the same gradient tensor */
#define GC_H 1e-5       /* step of the central differences (in double) */
#define GC_DAMAGE 0.005 /* the error every check must notice */
#define GC_MAXPARTS 4

typedef struct gc_case gc_case;
struct gc_case {
    const char *name;
    int nx, ny;
    int nparts;                    /* parameter tensors, laid out one after the other in p */
    int np[GC_MAXPARTS];           /* their sizes */
    const char *pname[GC_MAXPARTS];
    /* the kernels under test: y = f(x, p); bwd gets dy and fills dx (accum: += or =) and dp */
    void (*fwd)(gc_case *c, const float *x, const float *p, float *y);
    void (*bwd)(gc_case *c, const float *x, const float *p, const float *y, const float *dy,
                float *dx, int accum, float *dp);
    /* the same layer in double; returns a hash of its branches (0 when smooth) */
    uint64_t (*ref)(gc_case *c, const double *x, const double *p, double *y);
    int kinked;   /* ref's hash is meaningful: shrink the step where it changes */
    void *ctx;
    float *x, *p; /* the point where the gradient is checked */
};

static uint64_t gc_lcg = 987654321;
static inline float gc_rand(void) /* [-1, 1) */
{
    gc_lcg = gc_lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((gc_lcg >> 40) / 8388608.0 - 1.0);
}

/* n uniform values in [lo, hi) (n may be 0) */
static inline float *gc_rand_array(int n, float lo, float hi)
{
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (int i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (gc_rand() + 1) / 2;
    return v;
}

/* Distinct values 0.05 apart in random order, so a max never changes under a small step. */
static inline float *gc_distinct_array(int n)
{
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (int i = 0; i < n; i++)
        v[i] = 0.05f * (i - n / 2);
    for (int i = n - 1; i > 0; i--) {
        gc_lcg = gc_lcg * 6364136223846793005ULL + 1442695040888963407ULL;
        int j = (int)((gc_lcg >> 33) % (uint64_t)(i + 1));
        float t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    return v;
}

/* a hash step for ref functions: fold one branch decision (or index) into h */
static inline uint64_t gc_hash(uint64_t h, uint64_t v)
{
    return (h ^ (v + 0x9e3779b97f4a7c15ULL)) * 0x100000001b3ULL;
}

static inline int gc_np(const gc_case *c)
{
    int n = 0;
    for (int k = 0; k < c->nparts; k++)
        n += c->np[k];
    return n;
}

static inline double gc_loss(gc_case *c, const double *x, const double *p, const double *r,
                             double *y, uint64_t *hash)
{
    *hash = c->ref(c, x, p, y);
    double s = 0;
    for (int i = 0; i < c->ny; i++)
        s += r[i] * y[i];
    return s;
}

/* Central differences of the reference loss in each entry of v (inside xd or pd). */
static inline void gc_numeric(gc_case *c, double *xd, double *pd, double *v, int n,
                              const double *r, double *y, const char *what, double *out)
{
    uint64_t h0, hp, hm;
    gc_loss(c, xd, pd, r, y, &h0);
    for (int i = 0; i < n; i++) {
        double keep = v[i], h = GC_H;
        for (int tries = 0;; tries++) {
            v[i] = keep + h;
            double lp = gc_loss(c, xd, pd, r, y, &hp);
            v[i] = keep - h;
            double lm = gc_loss(c, xd, pd, r, y, &hm);
            v[i] = keep;
            out[i] = (lp - lm) / (2 * h);
            if (!c->kinked || (hp == h0 && hm == h0))
                break;
            GC_CHECK(tries < 4, "%s: %s[%d] = %g sits on a kink; move the test point",
                     c->name, what, i, keep);
            h /= 10;
        }
    }
}

static inline double gc_max_abs(const double *v, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* Largest |analytic * f - numeric| / (atol + rtol |numeric|) over one tensor; > 1 fails. */
static inline double gc_worst(const float *an, double f, const double *num, int n,
                              int *where)
{
    const double atol = GC_ATOL * gc_max_abs(num, n);
    double w = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs(an[i] * f - num[i]) / (atol + GC_RTOL * fabs(num[i]));
        if (e > w) {
            w = e;
            if (where)
                *where = i;
        }
    }
    return w;
}

/* One gradient tensor: agreement, then proof that a 0.5 % error in it is seen. */
static inline void gc_tensor(gc_case *c, const char *what, const float *an, const double *num,
                             int n)
{
    if (n == 0)
        return;
    GC_CHECK(gc_max_abs(num, n) > 1e-6, "%s: d%s is zero, nothing is checked", c->name, what);
    int at = 0;
    double e = gc_worst(an, 1.0, num, n, &at);
    GC_CHECK(e <= 1, "%s: d%s[%d] = %.8g, float64 finite differences %.8g (%.2g x tolerance)",
             c->name, what, at, an[at], num[at], e);
    GC_CHECK(gc_worst(an, 1 + GC_DAMAGE, num, n, NULL) > 1 &&
                 gc_worst(an, 1 - GC_DAMAGE, num, n, NULL) > 1,
             "%s: d%s off by 0.5%% would pass unnoticed", c->name, what);
}

static inline void gc_run(gc_case *c)
{
    const int np = gc_np(c);
    float *r = malloc(sizeof(float) * c->ny), *y = malloc(sizeof(float) * c->ny);
    float *dx = malloc(sizeof(float) * (c->nx + 1)), *dx2 = malloc(sizeof(float) * (c->nx + 1));
    float *dp = malloc(sizeof(float) * (np + 1));
    double *rd = malloc(sizeof(double) * c->ny), *yd = malloc(sizeof(double) * c->ny);
    double *xd = malloc(sizeof(double) * (c->nx + 1)), *pd = malloc(sizeof(double) * (np + 1));
    double *gx = malloc(sizeof(double) * (c->nx + 1)), *gp = malloc(sizeof(double) * (np + 1));
    for (int i = 0; i < c->ny; i++)
        rd[i] = r[i] = gc_rand();
    for (int i = 0; i < c->nx; i++)
        xd[i] = c->x[i];
    for (int i = 0; i < np; i++)
        pd[i] = c->p[i];

    /* the reference is the layer the kernels compute */
    c->fwd(c, c->x, c->p, y);
    c->ref(c, xd, pd, yd);
    double ys = fmax(1.0, gc_max_abs(yd, c->ny));
    for (int i = 0; i < c->ny; i++)
        GC_CHECK(fabs(y[i] - yd[i]) <= 2e-5 * ys, "%s: forward y[%d] = %.8g, float64 %.8g",
                 c->name, i, y[i], yd[i]);

    c->bwd(c, c->x, c->p, y, r, dx, 0, dp);
    gc_numeric(c, xd, pd, xd, c->nx, rd, yd, "x", gx);
    gc_numeric(c, xd, pd, pd, np, rd, yd, "p", gp);
    gc_tensor(c, "x", dx, gx, c->nx);
    for (int k = 0, off = 0; k < c->nparts; off += c->np[k++])
        gc_tensor(c, c->pname[k] ? c->pname[k] : "p", dp + off, gp + off, c->np[k]);

    /* accum = 1 adds its result to what dx held */
    if (c->nx) {
        for (int i = 0; i < c->nx; i++)
            dx2[i] = (float)i;
        c->fwd(c, c->x, c->p, y);
        c->bwd(c, c->x, c->p, y, r, dx2, 1, dp);
        for (int i = 0; i < c->nx; i++)
            GC_CHECK(fabsf(dx2[i] - ((float)i + dx[i])) <= 1e-5f * (1 + i),
                     "%s: accum dx[%d] = %g, expected %g + %g", c->name, i, dx2[i],
                     (double)i, dx[i]);
    }
    free(r), free(y), free(dx), free(dx2), free(dp), free(rd), free(yd), free(xd), free(pd);
    free(gx), free(gp);
}

#endif
