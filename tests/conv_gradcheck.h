/*
 * conv_gradcheck.h - the gradient check of one 2-D convolution with bias and relu, through
 * rt_conv2d_forward and rt_conv2d_backward, against a float64 reference written here (any
 * kernel size, stride and zero padding; no dilation, groups or flip). The tests of each
 * convolution route (implicit GEMM, direct, Winograd) run it on the shapes their route
 * takes. Header-only, after gradcheck.h.
 */
#ifndef CNN_TESTS_CONV_GRADCHECK_H
#define CNN_TESTS_CONV_GRADCHECK_H

#include "gradcheck.h"
#include "rt_kernels.h"

typedef struct {
    rt_conv_geom g;
    int n;
} gc_conv;

static void gc_conv_fwd(gc_case *c, const float *x, const float *p, float *y)
{
    gc_conv *k = c->ctx;
    size_t nw = rt_conv2d_weight_count(&k->g);
    ck_assert_int_eq(rt_conv2d_forward(&k->g, x, p, p + nw, RT_ACT_RELU, 0, y, k->n, NULL), 0);
}

static void gc_conv_bwd(gc_case *c, const float *x, const float *p, const float *y,
                        const float *dy, float *dx, int accum, float *dp)
{
    gc_conv *k = c->ctx;
    size_t nw = rt_conv2d_weight_count(&k->g);
    float *dz = malloc(sizeof(float) * c->ny);
    for (int i = 0; i < c->ny; i++) /* through the relu */
        dz[i] = y[i] > 0 ? dy[i] : 0.0f;
    ck_assert_int_eq(rt_conv2d_backward(&k->g, x, p, dz, dx, accum, dp, dp + nw, k->n, NULL),
                     0);
    free(dz);
}

static uint64_t gc_conv_ref(gc_case *c, const double *x, const double *p, double *y)
{
    gc_conv *k = c->ctx;
    const rt_conv_geom *g = &k->g;
    const size_t nw = rt_conv2d_weight_count(g);
    uint64_t h = 1469598103934665603ULL;
    for (int s = 0; s < k->n; s++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    double acc = p[nw + o];
                    for (int ci = 0; ci < g->c; ci++)
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int iy = oy * g->sh + ky - g->pt, ix = ox * g->sw + kx - g->pl;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                acc += p[((o * g->c + ci) * g->kh + ky) * g->kw + kx] *
                                       x[((s * g->c + ci) * g->h + iy) * g->w + ix];
                            }
                    size_t yi = (((size_t)s * g->oc + o) * g->oh + oy) * g->ow + ox;
                    y[yi] = acc > 0 ? acc : 0;
                    h = (h ^ (uint64_t)(acc > 0)) * 1099511628211ULL;
                }
    return h;
}

/* Runs the gradient check of the convolution g (sh, sw >= 1; dh = dw = groups = 1; no flip)
 * over n images with random inputs and parameters. */
static inline void gc_conv_check(const char *name, rt_conv_geom g, int n)
{
    gc_conv k = {g, n};
    int nx = n * g.c * g.h * g.w, ny = n * g.oc * g.oh * g.ow;
    int nw = (int)rt_conv2d_weight_count(&g);
    gc_case c = {name, nx, ny, 2, {nw, g.oc}, {"w", "b"}, gc_conv_fwd, gc_conv_bwd, gc_conv_ref,
                 1, &k, NULL, NULL};
    c.x = gc_rand_array(c.nx, -1, 1);
    c.p = gc_rand_array(gc_np(&c), -0.5f, 0.5f);
    gc_run(&c);
    free(c.x), free(c.p);
}

#endif
