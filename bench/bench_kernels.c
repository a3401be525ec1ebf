/*
 * bench_kernels.c - times the kernels on the layers of the reference network (batch 32,
 * input 3x128x128: conv 3->16, maxpool, conv 16->32, maxpool, conv 32->64, maxpool,
 * dense 12544->128, dense 128->4) with 1 and 2 threads, and prints GFLOP/s.
 *
 * Then conv variants outside that network (depthwise, grouped, dilated) with 1 and 2 threads.
 *
 * Then it times whole training steps of that network through the interpreter (forward,
 * softmax cross-entropy, backward, Adam): the number to compare with PyTorch.
 *
 * Usage: bench_kernels [repeats]   (RT_GEMM_ISA=avx512|avx2|generic picks the micro-kernel)
 * Not part of make check: numbers depend on the machine and its load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *buf(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

enum { N = 32 };

typedef struct {
    const char *name;
    int kind; /* 0 conv, 1 maxpool, 2 dense */
    rt_conv_geom g;
    rt_pool_geom pg;
    int in, out;
    int need_dx;
} layer;

/* Best of reps runs of the forward and the backward, in seconds. */
static void time_layer(const layer *L, rt_threads *tp, int reps, double *tf, double *tb)
{
    size_t nx, ny, nw = 0;
    if (L->kind == 0) {
        nx = (size_t)N * L->g.c * L->g.h * L->g.w;
        ny = (size_t)N * L->g.oc * L->g.oh * L->g.ow;
        nw = rt_conv2d_weight_count(&L->g);
    } else if (L->kind == 1) {
        nx = (size_t)N * L->pg.c * L->pg.h * L->pg.w;
        ny = (size_t)N * L->pg.c * L->pg.oh * L->pg.ow;
    } else {
        nx = (size_t)N * L->in;
        ny = (size_t)N * L->out;
        nw = (size_t)L->in * L->out;
    }
    float *x = buf(nx), *y = buf(ny), *dy = buf(ny), *dx = buf(nx);
    float *w = buf(nw + 1), *b = buf(1024), *dw = buf(nw + 1), *db = buf(1024);
    *tf = *tb = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        int rc = 0;
        if (L->kind == 0)
            rc = rt_conv2d_forward(&L->g, x, w, b, RT_ACT_RELU, 0, y, N, tp);
        else if (L->kind == 1)
            rt_maxpool_forward(&L->pg, x, y, N, tp);
        else
            rc = rt_dense_forward(x, w, b, RT_ACT_RELU, 0, y, N, L->in, L->out, tp);
        double t1 = now();
        if (L->kind == 0)
            rc |= rt_conv2d_backward(&L->g, x, w, dy, L->need_dx ? dx : NULL, 0, dw, db, N, tp);
        else if (L->kind == 1)
            rt_maxpool_backward(&L->pg, x, dy, dx, 0, N, tp);
        else
            rc |= rt_dense_backward(x, w, dy, dx, 0, dw, db, N, L->in, L->out, tp);
        double t2 = now();
        if (rc) {
            fprintf(stderr, "bench_kernels: out of memory in a kernel\n");
            exit(1);
        }
        *tf = t1 - t0 < *tf ? t1 - t0 : *tf;
        *tb = t2 - t1 < *tb ? t2 - t1 : *tb;
    }
    free(x), free(y), free(dy), free(dx), free(w), free(b), free(dw), free(db);
}

static double flops(const layer *L)
{
    if (L->kind == 0)
        return 2.0 * N * L->g.oc * L->g.oh * L->g.ow * (double)rt_conv2d_weight_count(&L->g) /
               L->g.oc;
    if (L->kind == 2)
        return 2.0 * N * L->in * L->out;
    return 0;
}

/* The reference network as an rt_netdesc, built by hand. */
static rt_layer L_[10];
static rt_netdesc net_desc(void)
{
    static const int ch[4] = {3, 16, 32, 64};
    int h = 128, i = 0;
    size_t off = 0;
    memset(L_, 0, sizeof L_);
    L_[0].kind = RT_INPUT;
    L_[0].src = L_[0].src2 = -1;
    L_[0].out = (rt_shape){3, 128, 128};
    for (int b = 0; b < 3; b++) {
        rt_layer *c = &L_[++i], *p = &L_[i + 1];
        c->kind = RT_CONV;
        c->src = i - 1;
        c->src2 = -1;
        c->in = L_[i - 1].out;
        c->out = (rt_shape){ch[b + 1], h - 2, h - 2};
        c->kh = c->kw = 3;
        c->sh = c->sw = 1;
        c->bias = 1;
        c->act = RT_ACT_RELU;
        c->w_off = off, c->w_len = (size_t)ch[b + 1] * ch[b] * 9, off += c->w_len;
        c->b_off = off, c->b_len = (size_t)ch[b + 1], off += c->b_len;
        h = (h - 2) / 2;
        i++;
        p->kind = RT_MAXPOOL;
        p->src = i - 1;
        p->src2 = -1;
        p->in = c->out;
        p->out = (rt_shape){ch[b + 1], h, h};
        p->kh = p->kw = p->sh = p->sw = 2;
    }
    static const int outs[2] = {128, 4};
    for (int d = 0; d < 2; d++) {
        rt_layer *f = &L_[++i];
        f->kind = RT_DENSE;
        f->src = i - 1;
        f->src2 = -1;
        f->in = L_[i - 1].out;
        f->out = (rt_shape){outs[d], 1, 1};
        f->bias = 1;
        f->act = d == 0 ? RT_ACT_RELU : RT_ACT_SOFTMAX;
        size_t in = (size_t)f->in.c * f->in.h * f->in.w;
        f->w_off = off, f->w_len = in * outs[d], off += f->w_len;
        f->b_off = off, f->b_len = (size_t)outs[d], off += f->b_len;
    }
    rt_netdesc d;
    memset(&d, 0, sizeof d);
    strcpy(d.name, "bench");
    d.nlayers = i + 1;
    d.layers = L_;
    d.nparams = off;
    d.hash = rt_netdesc_hash(&d);
    return d;
}

/* Best and mean of reps training steps at batch N; returns 0 or -1. */
static int time_steps(const rt_netdesc *d, int threads, int reps, double *best, double *mean)
{
    char err[RT_ERRLEN];
    rt_model *m = rt_net_create(d, N, threads, err);
    if (!m) {
        fprintf(stderr, "bench_kernels: %s\n", err);
        return -1;
    }
    rt_opt_cfg oc = {RT_OPT_ADAM, 1e-3f, 0, 0, 0.9f, 0.999f, 1e-8f, 0};
    rt_opt *o = rt_opt_create(&oc, m->nparams);
    float *x = buf((size_t)N * 3 * 128 * 128), logits[N * 4], dl[N * 4];
    int y[N];
    for (int i = 0; i < N; i++)
        y[i] = i % 4;
    *best = 1e30;
    *mean = 0;
    for (int r = -1; r < reps; r++) { /* one warm-up step */
        double t0 = now();
        if (m->forward(m->self, x, N, 1, logits) != 0) {
            fprintf(stderr, "bench_kernels: %s\n", m->err);
            return -1;
        }
        rt_softmax_xent(logits, y, N, 4, NULL, dl, NULL);
        if (m->backward(m->self, dl, N) != 0) {
            fprintf(stderr, "bench_kernels: %s\n", m->err);
            return -1;
        }
        rt_opt_step(o, m->params, m->grads);
        double t = now() - t0;
        if (r >= 0) {
            *best = t < *best ? t : *best;
            *mean += t / reps;
        }
    }
    free(x);
    rt_opt_destroy(o);
    rt_model_destroy(m);
    return 0;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1)
        reps = 1;
#define CONV3(c, h, oc) {c, h, h, oc, h - 2, h - 2, 3, 3, 1, 1, 0, 0, 0, 0, RT_PAD_ZERO, 0, 1, 1, 1}
/* 3x3, zero padding d (the size kept), dilation d, groups G */
#define CONV3G(c, h, oc, d, G) {c, h, h, oc, h, h, 3, 3, 1, 1, d, d, d, d, RT_PAD_ZERO, 0, d, d, G}
#define POOL2(c, h) {c, h, h, h / 2, h / 2, 2, 2, 2, 2, 0, 0, 0, 0}
    layer Ls[] = {
        {"conv 3->16 128->126", 0, CONV3(3, 128, 16), {0}, 0, 0, 0},
        {"maxpool 16x126 -> 63", 1, {0}, POOL2(16, 126), 0, 0, 1},
        {"conv 16->32 63->61", 0, CONV3(16, 63, 32), {0}, 0, 0, 1},
        {"maxpool 32x61 -> 30", 1, {0}, POOL2(32, 61), 0, 0, 1},
        {"conv 32->64 30->28", 0, CONV3(32, 30, 64), {0}, 0, 0, 1},
        {"maxpool 64x28 -> 14", 1, {0}, POOL2(64, 28), 0, 0, 1},
        {"dense 12544->128", 2, {0}, {0}, 12544, 128, 1},
        {"dense 128->4", 2, {0}, {0}, 128, 4, 1},
    };
    int nl = (int)(sizeof Ls / sizeof Ls[0]);
    layer Vs[] = {
        {"depthwise 32 32x32", 0, CONV3G(32, 32, 32, 1, 32), {0}, 0, 0, 1},
        {"depthwise 32->64 32x32", 0, CONV3G(32, 32, 64, 1, 32), {0}, 0, 0, 1},
        {"groups 4 64->64 30x30", 0, CONV3G(64, 30, 64, 1, 4), {0}, 0, 0, 1},
        {"dilation 2 32->64 30", 0, CONV3G(32, 30, 64, 2, 1), {0}, 0, 0, 1},
    };
    int nv = (int)(sizeof Vs / sizeof Vs[0]);
    printf("GEMM micro-kernel: %s, best of %d\n", rt_gemm_isa(), reps);
    /* a big square GEMM, the yardstick of the micro-kernel */
    {
        const int sz = 1024;
        float *a = buf((size_t)sz * sz), *b = buf((size_t)sz * sz), *c = buf((size_t)sz * sz);
        for (int threads = 1; threads <= 2; threads++) {
            rt_threads *tp = rt_threads_create(threads, NULL);
            double best = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                if (rt_sgemm_mt(tp, 0, 0, sz, sz, sz, 1.0f, a, sz, b, sz, 0.0f, c, sz) != 0)
                    return 1;
                double t = now() - t0;
                best = t < best ? t : best;
            }
            printf("sgemm %dx%dx%d, %d thread%s: %.2f ms, %.1f GFLOP/s\n", sz, sz, sz, threads,
                   threads > 1 ? "s" : "", best * 1e3, 2.0 * sz * sz * sz / best * 1e-9);
            rt_threads_destroy(tp);
        }
        free(a), free(b), free(c);
    }
    printf("\nlayers of the reference network at batch %d:\n", N);
    for (int threads = 1; threads <= 2; threads++) {
        rt_threads *tp = rt_threads_create(threads, NULL);
        if (!tp)
            return 1;
        double tot_f = 0, tot_b = 0;
        printf("\n%d thread%s          forward ms  GFLOP/s   backward ms  GFLOP/s\n", threads,
               threads > 1 ? "s" : " ");
        for (int i = 0; i < nl; i++) {
            double tf, tb, f = flops(&Ls[i]);
            time_layer(&Ls[i], tp, reps, &tf, &tb);
            tot_f += tf;
            tot_b += tb;
            /* backward: dW and, when needed, dX each cost as much as the forward */
            double fb = f * (Ls[i].need_dx ? 2 : 1);
            if (f > 0)
                printf("%-22s %9.2f %8.1f   %11.2f %8.1f\n", Ls[i].name, tf * 1e3,
                       f / tf * 1e-9, tb * 1e3, fb / tb * 1e-9);
            else
                printf("%-22s %9.2f %8s   %11.2f %8s\n", Ls[i].name, tf * 1e3, "-", tb * 1e3,
                       "-");
        }
        printf("%-22s %9.2f %8s   %11.2f   (step: %.2f ms)\n", "total", tot_f * 1e3, "",
               tot_b * 1e3, (tot_f + tot_b) * 1e3);
        rt_threads_destroy(tp);
    }
    printf("\nconv variants at batch %d:\n", N);
    for (int threads = 1; threads <= 2; threads++) {
        rt_threads *tp = rt_threads_create(threads, NULL);
        if (!tp)
            return 1;
        printf("\n%d thread%s          forward ms  GFLOP/s   backward ms  GFLOP/s\n", threads,
               threads > 1 ? "s" : " ");
        for (int i = 0; i < nv; i++) {
            double tf, tb, f = flops(&Vs[i]);
            time_layer(&Vs[i], tp, reps, &tf, &tb);
            printf("%-22s %9.2f %8.1f   %11.2f %8.1f\n", Vs[i].name, tf * 1e3, f / tf * 1e-9,
                   tb * 1e3, 2 * f / tb * 1e-9);
        }
        rt_threads_destroy(tp);
    }
    rt_netdesc d = net_desc();
    printf("\nwhole training step through the interpreter (forward, loss, backward, Adam):\n");
    for (int threads = 1; threads <= 2; threads++) {
        double best, mean;
        if (time_steps(&d, threads, reps, &best, &mean) != 0)
            return 1;
        printf("%d thread%s: best %.1f ms, mean %.1f ms per step of %d images (%.0f images/s)\n",
               threads, threads > 1 ? "s" : " ", best * 1e3, mean * 1e3, N, N / best);
    }
    return 0;
}
