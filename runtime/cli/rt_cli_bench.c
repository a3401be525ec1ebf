/*
 * rt_cli_bench.c - `--bench STEPS [--profile]`: the speed of a model on a seeded random
 * batch (no data set needed), as machine-readable "bench ..." lines, and the FLOP count
 * that turns times into GFLOP/s. --profile times every layer alone on the interpreter, so
 * it needs no hook inside the executor.
 */
#include "rt_cli_int.h"
#include "rt_dist.h"
#include "rt_dist_train.h"
#include "rt_op.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ FLOPs */

static double elems(rt_shape s)
{
    return (double)s.c * s.h * s.w;
}

/* ------------------------------------------------------------ --bench */

typedef struct {
    rt_model *m;
    rt_opt *opt;
    rt_threads *tp;         /* the optimizer's workers, as in rt_train_run */
    const float *x;
    const int *labels;
    float *logits, *dlogits;
    int n, k;
    double loss;
} bench_run;

/* One training step as rt_train_run takes it; 0 or -1 (the model's message in m->err). */
static int train_step(bench_run *r)
{
    /* MPI: as in training, each rank holds a shard of a global batch of n * ranks */
    int ranks = rt_dist_size();
    if (rt_dist_train_begin(r->m, rt_dist_rank() * r->n, r->n, r->n * ranks) != 0)
        return -1;
    if (r->m->forward(r->m->self, r->x, r->n, RT_TRAIN, r->logits) != 0)
        return -1;
    r->loss = rt_softmax_xent(r->logits, r->labels, r->n, r->k, NULL, r->dlogits, NULL);
    rt_dist_train_scale(r->dlogits, r->n, r->k, r->n * ranks);
    if (r->m->backward(r->m->self, r->dlogits, r->n) != 0)
        return -1;
    if (rt_dist_train_grads(r->m, r->n) != 0)
        return -1;
    rt_opt_step_mt(r->opt, r->m->params, r->m->grads, r->tp);
    return 0;
}

/* The median of v[0..n) (sorts v): one step slowed by another process on the machine
 * does not move it, where it would move a mean. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Seconds of the fastest of reps copies of count floats. */
static double copy_time(float *dst, const float *src, size_t count, int reps)
{
    double best = -1;
    for (int r = 0; r < reps; r++) {
        double t0 = rt_now();
        memcpy(dst, src, count * sizeof *dst);
        double t = rt_now() - t0;
        if (best < 0 || t < best)
            best = t;
    }
    return best;
}

/* Layer i of d alone, as a three-layer network: an input of layer i's input shape, a
 * dropout with p = 0 (an alias of the input in the plan: no copy, but a producer that layer
 * i sends its input gradient to, as in the whole network), and layer i reading it (both
 * sources of a two-input layer). A layer that reads the network's input, which needs no
 * gradient, follows the input directly (two layers). Shapes, hyper-parameters and
 * parameter offsets stay those of d. Returns the index of layer i's copy, or -1 for a
 * layer whose two inputs differ in shape (a concatenation), which one input cannot feed. */
static int isolate(const rt_netdesc *d, int i, rt_layer L[3], rt_netdesc *p)
{
    memset(L, 0, 3 * sizeof *L);
    unsigned flags = rt_op_of(d->layers[i].kind)->flags;
    const rt_layer *o = &d->layers[i];
    if ((flags & RT_OP_TWO_IN) && (d->layers[o->src].out.c != d->layers[o->src2].out.c ||
                                   d->layers[o->src].out.h != d->layers[o->src2].out.h ||
                                   d->layers[o->src].out.w != d->layers[o->src2].out.w))
        return -1;
    rt_shape in = flags & RT_OP_FLAT_IN ? d->layers[d->layers[i].src].out : d->layers[i].in;
    L[0].kind = RT_INPUT;
    L[0].src = L[0].src2 = -1;
    L[0].in = L[0].out = in;
    L[1].kind = RT_DROPOUT;
    L[1].src = 0;
    L[1].src2 = -1;
    L[1].in = L[1].out = in;
    L[1].p = 0.0f;
    L[2] = d->layers[i];
    L[2].src = 1;
    L[2].src2 = flags & RT_OP_TWO_IN ? 1 : -1;
    *p = *d;
    p->nlayers = 3;
    p->layers = L;
    if (o->src == 0 && (!(flags & RT_OP_TWO_IN) || o->src2 == 0)) {
        L[1] = L[2];
        L[1].src = 0;
        L[1].src2 = flags & RT_OP_TWO_IN ? 0 : -1;
        p->nlayers = 2;
    }
    return p->nlayers - 1;
}

/* GFLOP/s of a 1024^3 SGEMM (rt_sgemm_mt) on a pool of `threads`, best of 3 after a
 * warm-up; -1 if memory or the pool is missing. */
static double gemm_rate(int threads)
{
    const int sz = 1024;
    const size_t nn = (size_t)sz * sz;
    float *a = malloc(nn * sizeof *a), *bm = malloc(nn * sizeof *bm);
    float *c = malloc(nn * sizeof *c);
    rt_threads *tp = rt_threads_create(threads, NULL);
    double best = -1;
    if (a && bm && c && tp) {
        for (size_t i = 0; i < nn; i++) {
            a[i] = (float)(i % 7) * 0.125f - 0.375f;
            bm[i] = (float)(i % 5) * 0.25f - 0.5f;
        }
        for (int r = 0; r <= 3; r++) {
            double t0 = rt_now();
            if (rt_sgemm_mt(tp, 0, 0, sz, sz, sz, 1.0f, a, sz, bm, sz, 0.0f, c, sz) != 0)
                break;
            double t = rt_now() - t0;
            if (r > 0 && (best < 0 || t < best))
                best = t;
        }
    }
    rt_threads_destroy(tp);
    free(a);
    free(bm);
    free(c);
    return best > 0 ? 2.0 * sz * sz * sz / best * 1e-9 : -1;
}

/* --profile: each layer is timed alone (see isolate) on the interpreter, on the training
 * path: forward in training mode, then backward; the fastest of a few runs of each, less
 * the copies around it that the whole network does not make (the forward's copy of the
 * output to the logits, the backward's copy of the output gradient in). A timing hook inside the interpreter would be exact and see the
 * caches as they are in the whole network; rt_net.c has none (yet). */
static int profile(const rt_cli_env *e, const rt_bench_cfg *b, double opt_ms)
{
    const rt_netdesc *d = e->d;
    int nl = d->nlayers, n = b->batch, reps = 5;
    size_t maxsz = 0;
    for (int i = 0; i < nl; i++) {
        size_t a = (size_t)elems(d->layers[i].in), o = (size_t)elems(d->layers[i].out);
        maxsz = a > maxsz ? a : maxsz;
        maxsz = o > maxsz ? o : maxsz;
    }
    float *x = malloc(sizeof(float) * (size_t)n * maxsz);
    float *out = malloc(sizeof(float) * (size_t)n * maxsz);
    float *dout = malloc(sizeof(float) * (size_t)n * maxsz);
    double *tf = calloc((size_t)nl, sizeof *tf), *tb = calloc((size_t)nl, sizeof *tb);
    char err[RT_ERRLEN];
    int rc = RT_EXIT_OK;
    if (!x || !out || !dout || !tf || !tb) {
        rt_cli_error(e, "out of memory");
        rc = RT_EXIT_RUN;
        goto done;
    }
    rt_rng r;
    rt_rng_seed(&r, b->seed);
    for (size_t i = 0; i < (size_t)n * maxsz; i++) {
        x[i] = rt_rng_uniform(&r) - 0.25f;              /* some negative, for relu */
        dout[i] = 1e-3f * (rt_rng_uniform(&r) - 0.5f);  /* a plausible loss gradient */
    }
    double sf = 0, sb = 0;
    for (int i = 1; i < nl; i++) {
        rt_layer L[3];
        rt_netdesc p;
        int last = isolate(d, i, L, &p);
        if (last < 0)
            continue; /* reported as 0 ms, with a note */
        err[0] = 0;
        rt_model *m = rt_net_create(&p, n, b->threads, err);
        if (!m) {
            rt_cli_error(e, "--profile: cannot build layer %d alone: %s", i, err);
            rc = RT_EXIT_RUN;
            goto done;
        }
        rt_init_params(&p, m->params, m->state, b->seed);
        m->seed_dropout(m->self, b->seed);
        double bf = -1, bb = -1;
        for (int rep = 0; rep <= reps; rep++) {      /* the first run only warms up */
            double t0 = rt_now();
            if (m->forward(m->self, x, n, RT_TRAIN, out) != 0) {
                rt_cli_error(e, "--profile: layer %d: %s", i, m->err);
                rt_model_destroy(m);
                rc = RT_EXIT_RUN;
                goto done;
            }
            double t1 = rt_now();
            if (m->backward(m->self, dout, n) != 0) {
                rt_cli_error(e, "--profile: layer %d: %s", i, m->err);
                rt_model_destroy(m);
                rc = RT_EXIT_RUN;
                goto done;
            }
            double t2 = rt_now();
            if (rep > 0 && (bf < 0 || t1 - t0 < bf))
                bf = t1 - t0;
            if (rep > 0 && (bb < 0 || t2 - t1 < bb))
                bb = t2 - t1;
        }
        rt_model_destroy(m);
        size_t nout = (size_t)n * (size_t)elems(L[last].out);
        double cout = copy_time(out, dout, nout, reps);
        tf[i] = bf - cout;
        tb[i] = bb - cout;
        tf[i] = tf[i] > 0 ? tf[i] : 0;
        tb[i] = tb[i] > 0 ? tb[i] : 0;
        sf += tf[i];
        sb += tb[i];
    }
    /* the yardstick: our own 1024^3 SGEMM on the same threads, so that each layer's rate
     * can be read as a share of what the GEMM reaches on this machine right now */
    double gemm = gemm_rate(b->threads);
    if (gemm < 0) {
        rt_cli_error(e, "--profile: out of memory for the GEMM yardstick");
        rc = RT_EXIT_RUN;
        goto done;
    }
    printf("bench gemm 1024 gflops %.2f (our SGEMM, %d threads, best of 3)\n", gemm,
           b->threads);
    printf("# each layer alone on the interpreter, batch %d: forward (training mode) and "
           "backward ms, mflops per batch; backward counted as 2x the forward FLOPs (input and "
           "weight gradients), 1x for a layer reading the network's input; gemm-pct: GFLOP/s "
           "as a share of the GEMM's\n", n);
    for (int i = 1; i < nl; i++) {
        const rt_layer *L = &d->layers[i];
        double fl = rt_layer_flops(d, i) * n, f = 1e3 * tf[i], bw = 1e3 * tb[i];
        double share = sf + sb > 0 ? 100.0 * (tf[i] + tb[i]) / (sf + sb) : 0;
        double bfl = fl * (L->src == 0 ? 1 : 2);
        double fg = f > 0 ? 1e-6 * fl / f : 0, bg = bw > 0 ? 1e-6 * bfl / bw : 0;
        printf("bench layer %d %s %dx%dx%d line %d mflops %.3f fwd-ms %.3f bwd-ms %.3f "
               "fwd-gflops %.2f share %.1f%% bwd-gflops %.2f fwd-gemm-pct %.1f "
               "bwd-gemm-pct %.1f%s\n", i, rt_kind_name(L->kind), L->out.c, L->out.h,
               L->out.w, L->line, 1e-6 * fl, f, bw, fg, share, bg, 100.0 * fg / gemm,
               100.0 * bg / gemm,
               isolate(d, i, (rt_layer[3]){0}, &(rt_netdesc){0}) < 0
                   ? " (not timed alone: its inputs differ in shape)" : "");
    }
    printf("bench profile fwd-ms %.3f bwd-ms %.3f optimizer-ms %.3f\n", 1e3 * sf, 1e3 * sb,
           opt_ms);
done:
    free(x);
    free(out);
    free(dout);
    free(tf);
    free(tb);
    return rc;
}

int rt_cli_bench(const rt_cli_env *e, const rt_bench_cfg *b)
{
    const rt_netdesc *d = e->d;
    char err[RT_ERRLEN];
    int n = b->batch, k = rt_netdesc_classes(d), rc = RT_EXIT_OK;
    rt_shape in = d->layers[0].out;
    size_t isz = (size_t)in.c * in.h * in.w;
    bench_run r = {0};
    float *x = malloc(sizeof(float) * (size_t)n * isz);
    int *labels = malloc(sizeof(int) * (size_t)n);
    r.logits = malloc(sizeof(float) * (size_t)n * k);
    r.dlogits = malloc(sizeof(float) * (size_t)n * k);
    double *times = malloc(sizeof(double) * (size_t)(b->steps > 0 ? b->steps : 1));
    if (!x || !labels || !r.logits || !r.dlogits || !times) {
        rt_cli_error(e, "out of memory");
        rc = RT_EXIT_RUN;
        goto done;
    }
    r.m = rt_cli_make(e, n, b->threads, err);
    if (!r.m) {
        rc = RT_EXIT_RUN;
        goto done;
    }
    r.opt = rt_opt_create(&b->opt, r.m->nparams);
    r.tp = rt_threads_create(b->threads, err);
    if (!r.tp) {
        rt_cli_error(e, "%s", err);
        rc = RT_EXIT_RUN;
        goto done;
    }
    if (!r.opt) {
        rt_cli_error(e, "out of memory");
        rc = RT_EXIT_RUN;
        goto done;
    }
    rt_init_params(d, r.m->params, r.m->state, b->seed);
    if (r.m->seed_dropout)
        r.m->seed_dropout(r.m->self, b->seed);
    rt_cli_random_batch(x, labels, n, isz, k, b->seed);
    r.x = x;
    r.labels = labels;
    r.n = n;
    r.k = k;
    double flops = rt_netdesc_flops(d);
    printf("bench net %s params %zu input %dx%dx%d classes %d flops-per-image %.0f batch %d "
           "threads %d steps %d", d->name, d->nparams, in.c, in.h, in.w, k, flops, n,
           b->threads, b->steps);
    if (rt_dist_size() > 1) /* MPI: batch and threads are per rank */
        printf(" ranks %d", rt_dist_size());
    printf("\n");
    fflush(stdout);

    for (int s = 0; s < 2; s++)     /* warm-up: first-touch pages, caches, threads */
        if (train_step(&r) != 0)
            goto failed;
    double comm0 = rt_dist_comm_seconds(), tall = 0;
    for (int s = 0; s < b->steps; s++) {
        double t0 = rt_now();
        if (train_step(&r) != 0)
            goto failed;
        times[s] = rt_now() - t0;
        tall += times[s];
    }
    double comm = rt_dist_comm_seconds() - comm0;
    double ttrain = median(times, b->steps);
    printf("bench train images/s %.1f gflops %.3f ms-per-step %.6g loss %.4f "
           "(median step; a training step counted as 3x the forward FLOPs)\n", n / ttrain,
           3.0 * flops * n / ttrain * 1e-9, 1e3 * ttrain, r.loss);
    if (rt_dist_size() > 1) /* MPI: every rank ran a batch of n; rank 0's share of time summing */
        printf("bench job images/s %.1f (%d ranks x batch %d) communication %.1f%% of the "
               "step time\n", n * rt_dist_size() / ttrain, rt_dist_size(), n,
               tall > 0 ? 100.0 * comm / tall : 0.0);
    fflush(stdout);

    if (r.m->forward(r.m->self, x, n, RT_INFER, r.logits) != 0)   /* warm-up of eval mode */
        goto failed;
    for (int s = 0; s < b->steps; s++) {
        double t0 = rt_now();
        if (r.m->forward(r.m->self, x, n, RT_INFER, r.logits) != 0)
            goto failed;
        times[s] = rt_now() - t0;
    }
    double tinfer = median(times, b->steps);
    printf("bench infer images/s %.1f gflops %.3f ms-per-batch %.6g (median batch)\n",
           n / tinfer, flops * n / tinfer * 1e-9, 1e3 * tinfer);
    fflush(stdout);

    if (b->profile) {
        int reps = 5;
        double best = -1;
        for (int s = 0; s < reps; s++) {
            double t = rt_now();
            rt_opt_step_mt(r.opt, r.m->params, r.m->grads, r.tp);
            t = rt_now() - t;
            best = best < 0 || t < best ? t : best;
        }
        rc = profile(e, b, 1e3 * best);
    }
    goto done;
failed:
    rt_cli_error(e, "%s", r.m->err[0] ? r.m->err : "the forward pass failed");
    rc = RT_EXIT_RUN;
done:
    rt_dist_train_end(r.m);
    rt_opt_destroy(r.opt);
    rt_threads_destroy(r.tp);
    rt_model_destroy(r.m);
    free(x);
    free(labels);
    free(r.logits);
    free(r.dlogits);
    free(times);
    return rc;
}
