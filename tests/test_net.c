/*
 * test_net.c - the interpreter (rt_net) on networks built by hand as rt_netdesc: forward
 * against naive float64 references written here, whole-network gradients against finite
 * differences of those references, determinism (same seed and threads: same bits; 1 vs 2
 * threads: same forward), training a tiny separable problem with Adam, rejected
 * descriptions, parameter initialisation and the structure hash.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "rt_kernels.h"
#include "rt_plan.h"
#include "rt_memplan.h"

/* ck_assert writes a record for every check that passes (fork mode): checks inside loops over
 * many values go through CHECK, which reports only a failure. */
#define CHECK(cond, ...)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

static uint64_t lcg = 555;
static double drand(void) /* [-1, 1) */
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (lcg >> 11) / 4503599627370496.0 - 1.0;
}

static rt_layer layer(rt_kind kind, int src, rt_shape in, rt_shape out)
{
    rt_layer L;
    memset(&L, 0, sizeof L);
    L.kind = kind;
    L.src = src;
    L.src2 = -1;
    L.in = in;
    L.out = out;
    L.kh = L.kw = L.sh = L.sw = 1;
    L.eps = 1e-5f;
    L.momentum = 0.1f;
    return L;
}

static rt_layer conv_layer(int src, rt_shape in, int oc, int k, int pad, rt_padmode mode,
                           int bias, rt_act act, size_t *off)
{
    rt_shape out = {oc, in.h + 2 * pad - k + 1, in.w + 2 * pad - k + 1};
    rt_layer L = layer(RT_CONV, src, in, out);
    L.kh = L.kw = k;
    L.pt = L.pb = L.pl = L.pr = pad;
    L.padmode = mode;
    L.bias = bias;
    L.act = act;
    L.w_off = *off;
    L.w_len = (size_t)oc * in.c * k * k;
    *off += L.w_len;
    L.b_off = *off;
    L.b_len = bias ? (size_t)oc : 0;
    *off += L.b_len;
    return L;
}

static rt_layer dense_layer(int src, rt_shape in, int out, rt_act act, size_t *off)
{
    rt_layer L = layer(RT_DENSE, src, in, (rt_shape){out, 1, 1});
    L.bias = 1;
    L.act = act;
    L.w_off = *off;
    L.w_len = (size_t)out * in.c * in.h * in.w;
    *off += L.w_len;
    L.b_off = *off;
    L.b_len = (size_t)out;
    *off += L.b_len;
    return L;
}

/* ------------------------------------------------------------------ net A */

/* input 1x6x6 -> conv 2@3x3 pad 1 + relu -> maxpool 2x2/2 -> flatten -> dense 18->K with a
 * softmax activation, which the forward must NOT apply (the logits go to the loss). */
typedef struct {
    rt_layer L[5];
    rt_netdesc d;
} net_a;

static void make_net_a(net_a *n, int classes)
{
    size_t off = 0;
    rt_shape in = {1, 6, 6}, c1 = {2, 6, 6}, p1 = {2, 3, 3}, f = {18, 1, 1};
    n->L[0] = layer(RT_INPUT, -1, in, in);
    n->L[1] = conv_layer(0, in, 2, 3, 1, RT_PAD_ZERO, 1, RT_ACT_RELU, &off);
    n->L[2] = layer(RT_MAXPOOL, 1, c1, p1);
    n->L[2].kh = n->L[2].kw = n->L[2].sh = n->L[2].sw = 2;
    n->L[3] = layer(RT_FLATTEN, 2, p1, f);
    n->L[4] = dense_layer(3, f, classes, RT_ACT_SOFTMAX, &off);
    memset(&n->d, 0, sizeof n->d);
    strcpy(n->d.name, "net_a");
    n->d.nlayers = 5;
    n->d.layers = n->L;
    n->d.nparams = off;
    n->d.nstate = 0;
    n->d.hash = rt_netdesc_hash(&n->d);
}

/* Naive float64 forward of net A for n images; parameters in the layout above. */
static void ref_a(const double *x, const double *p, int n, int classes, double *logits)
{
    for (int s = 0; s < n; s++) {
        double c[2][6][6], m[18];
        for (int o = 0; o < 2; o++)
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    double acc = p[18 + o];
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int yy = i + ky - 1, xx = j + kx - 1;
                            if (yy >= 0 && yy < 6 && xx >= 0 && xx < 6)
                                acc += p[o * 9 + ky * 3 + kx] * x[s * 36 + yy * 6 + xx];
                        }
                    c[o][i][j] = acc > 0 ? acc : 0;
                }
        for (int o = 0; o < 2; o++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    m[o * 9 + i * 3 + j] = fmax(fmax(c[o][2 * i][2 * j], c[o][2 * i][2 * j + 1]),
                                                fmax(c[o][2 * i + 1][2 * j],
                                                     c[o][2 * i + 1][2 * j + 1]));
        for (int k = 0; k < classes; k++) {
            double acc = p[20 + classes * 18 + k];
            for (int i = 0; i < 18; i++)
                acc += p[20 + k * 18 + i] * m[i];
            logits[s * classes + k] = acc;
        }
    }
}

/* ------------------------------------------------------------------ net B */

/* input 2x4x4 -> conv 2@3x3 reflect pad 1 + bias (1) -> batchnorm (2) -> tanh (3)
 * -> conv 2@3x3 zero pad 1, no bias (4) -> add (4) + (1) (5) -> dropout p (6)
 * -> global average pool (7) -> dense 2->3 (8). Layer 1 feeds two consumers. */
typedef struct {
    rt_layer L[9];
    rt_netdesc d;
} net_b;

static void make_net_b(net_b *n, float p)
{
    size_t off = 0;
    rt_shape in = {2, 4, 4}, g = {2, 1, 1};
    n->L[0] = layer(RT_INPUT, -1, in, in);
    n->L[1] = conv_layer(0, in, 2, 3, 1, RT_PAD_REFLECT, 1, RT_ACT_NONE, &off);
    n->L[2] = layer(RT_BATCHNORM, 1, in, in);
    n->L[2].w_off = off, n->L[2].w_len = 2, off += 2;
    n->L[2].b_off = off, n->L[2].b_len = 2, off += 2;
    n->L[2].s_off = 0, n->L[2].s_len = 4;
    n->L[3] = layer(RT_ACTIVATION, 2, in, in);
    n->L[3].act = RT_ACT_TANH;
    n->L[4] = conv_layer(3, in, 2, 3, 1, RT_PAD_ZERO, 0, RT_ACT_NONE, &off);
    n->L[5] = layer(RT_ADD, 4, in, in);
    n->L[5].src2 = 1;
    n->L[6] = layer(RT_DROPOUT, 5, in, in);
    n->L[6].p = p;
    n->L[7] = layer(RT_GLOBALAVGPOOL, 6, in, g);
    n->L[8] = dense_layer(7, g, 3, RT_ACT_NONE, &off);
    memset(&n->d, 0, sizeof n->d);
    strcpy(n->d.name, "net_b");
    n->d.nlayers = 9;
    n->d.layers = n->L;
    n->d.nparams = off;
    n->d.nstate = 4;
    n->d.hash = rt_netdesc_hash(&n->d);
}

/* 3x3 conv on 2 channels of 4x4 with padding 1, reflect or zero, written out plainly. */
static void ref_conv3(const double *x, const double *w, const double *b, int reflect,
                      double *y)
{
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                double acc = b ? b[o] : 0;
                for (int c = 0; c < 2; c++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int yy = i + ky - 1, xx = j + kx - 1;
                            if (reflect) { /* -1 -> 1, 4 -> 2 */
                                yy = yy < 0 ? 1 : yy > 3 ? 2 : yy;
                                xx = xx < 0 ? 1 : xx > 3 ? 2 : xx;
                            } else if (yy < 0 || yy > 3 || xx < 0 || xx > 3) {
                                continue;
                            }
                            acc += w[((o * 2 + c) * 3 + ky) * 3 + kx] * x[(c * 4 + yy) * 4 + xx];
                        }
                y[(o * 4 + i) * 4 + j] = acc;
            }
}

/* Naive float64 forward of net B without dropout; batchnorm from batch statistics when
 * train, else from state (mean[2], var[2]). */
static void ref_b(const double *x, const double *p, const double *state, int n, int train,
                  double *logits)
{
    double *c1 = malloc(sizeof(double) * n * 32), *t = malloc(sizeof(double) * n * 32);
    for (int s = 0; s < n; s++)
        ref_conv3(x + s * 32, p, p + 36, 1, c1 + s * 32);
    for (int ch = 0; ch < 2; ch++) {
        double mean = 0, var = 0;
        if (train) {
            for (int s = 0; s < n; s++)
                for (int i = 0; i < 16; i++)
                    mean += c1[s * 32 + ch * 16 + i];
            mean /= 16.0 * n;
            for (int s = 0; s < n; s++)
                for (int i = 0; i < 16; i++)
                    var += pow(c1[s * 32 + ch * 16 + i] - mean, 2);
            var /= 16.0 * n;
        } else {
            mean = state[ch];
            var = state[2 + ch];
        }
        for (int s = 0; s < n; s++)
            for (int i = 0; i < 16; i++) {
                double v = c1[s * 32 + ch * 16 + i];
                t[s * 32 + ch * 16 + i] = tanh(p[38 + ch] * (v - mean) / sqrt(var + 1e-5) +
                                               p[40 + ch]);
            }
    }
    for (int s = 0; s < n; s++) {
        double c2[32], g[2];
        ref_conv3(t + s * 32, p + 42, NULL, 0, c2);
        for (int ch = 0; ch < 2; ch++) {
            g[ch] = 0;
            for (int i = 0; i < 16; i++)
                g[ch] += c2[ch * 16 + i] + c1[s * 32 + ch * 16 + i];
            g[ch] /= 16;
        }
        for (int k = 0; k < 3; k++)
            logits[s * 3 + k] = p[84 + k] + p[78 + k * 2] * g[0] + p[78 + k * 2 + 1] * g[1];
    }
    free(c1), free(t);
}

/* ------------------------------------------------------------------ helpers */

typedef void (*ref_fn)(const double *x, const double *p, const double *state, int n,
                       double *logits, void *ctx);

static void ref_a_fn(const double *x, const double *p, const double *state, int n,
                     double *logits, void *ctx)
{
    (void)state;
    ref_a(x, p, n, *(int *)ctx, logits);
}

static void ref_b_fn(const double *x, const double *p, const double *state, int n,
                     double *logits, void *ctx)
{
    ref_b(x, p, state, n, *(int *)ctx, logits);
}

static float *rand_input(int count)
{
    float *x = malloc(sizeof(float) * count);
    for (int i = 0; i < count; i++)
        x[i] = (float)drand();
    return x;
}

/* Forward equals the reference; backward equals finite differences of the reference in
 * float64 (step 1e-6: kinks of relu and max are almost surely not crossed). */
static void check_against_reference(rt_model *m, ref_fn ref, void *ctx, int n, int in_size,
                                    int train)
{
    const rt_netdesc *d = m->desc;
    int k = rt_netdesc_classes(d);
    size_t np = d->nparams;
    float *x = rand_input(n * in_size), *logits = malloc(sizeof(float) * n * k);
    float *r = rand_input(n * k);
    double *xd = malloc(sizeof(double) * n * in_size), *pd = malloc(sizeof(double) * np);
    double *sd = malloc(sizeof(double) * (d->nstate + 1)), *ld = malloc(sizeof(double) * n * k);
    double *l2 = malloc(sizeof(double) * n * k);
    for (int i = 0; i < n * in_size; i++)
        xd[i] = x[i];
    for (size_t i = 0; i < np; i++)
        pd[i] = m->params[i];
    for (size_t i = 0; i < d->nstate; i++)
        sd[i] = m->state[i];

    ck_assert_int_eq(m->forward(m->self, x, n, train, logits), 0);
    ref(xd, pd, sd, n, ld, ctx);
    for (int i = 0; i < n * k; i++)
        CHECK(fabs(logits[i] - ld[i]) < 1e-4 * (1 + fabs(ld[i])),
                      "%s: logit %d is %.7g, reference %.7g", d->name, i, logits[i], ld[i]);
    ck_assert_int_eq(m->backward(m->self, r, n), 0);
    for (size_t j = 0; j < np; j++) {
        double keep = pd[j], h = 1e-6, lp = 0, lm = 0;
        pd[j] = keep + h;
        ref(xd, pd, sd, n, ld, ctx);
        pd[j] = keep - h;
        ref(xd, pd, sd, n, l2, ctx);
        pd[j] = keep;
        for (int i = 0; i < n * k; i++) {
            lp += r[i] * ld[i];
            lm += r[i] * l2[i];
        }
        double num = (lp - lm) / (2 * h), an = m->grads[j];
        CHECK(fabs(an - num) <= 1e-3 + 1e-3 * fabs(num),
                      "%s: grad of parameter %zu is %.7g, finite differences %.7g", d->name, j,
                      an, num);
    }
    free(x), free(logits), free(r), free(xd), free(pd), free(sd), free(ld), free(l2);
}

/* ------------------------------------------------------------------ tests */

START_TEST(net_a_reference)
{
    net_a a;
    int classes = 3;
    make_net_a(&a, classes);
    ck_assert_int_eq(rt_netdesc_classes(&a.d), 3);
    for (int threads = 1; threads <= 2; threads++) {
        char err[RT_ERRLEN];
        rt_model *m = rt_net_create(&a.d, 5, threads, err);
        CHECK(m != NULL, "%s", err);
        ck_assert_int_eq((int)m->nparams, 77);
        check_against_reference(m, ref_a_fn, &classes, 5, 36, 1);
        check_against_reference(m, ref_a_fn, &classes, 2, 36, 0); /* n < max_batch */
        rt_model_destroy(m);
    }
}
END_TEST

START_TEST(net_b_reference)
{
    net_b b;
    make_net_b(&b, 0.0f);
    for (int threads = 1; threads <= 2; threads++) {
        char err[RT_ERRLEN];
        rt_model *m = rt_net_create(&b.d, 4, threads, err);
        CHECK(m != NULL, "%s", err);
        /* initial state: running mean 0, variance 1; perturb gamma and beta away from 1, 0 */
        ck_assert_float_eq(m->state[0], 0);
        ck_assert_float_eq(m->state[3], 1);
        for (int i = 38; i < 42; i++)
            m->params[i] += (float)(0.3 * drand());
        int train = 1;
        check_against_reference(m, ref_b_fn, &train, 4, 32, 1);
        /* the training forward moved the running statistics: evaluate with them */
        ck_assert_float_ne(m->state[0], 0);
        train = 0;
        check_against_reference(m, ref_b_fn, &train, 3, 32, 0);
        rt_model_destroy(m);
    }
}
END_TEST

START_TEST(net_b_dropout_gradient)
{
    /* With dropout active the reference cannot know the mask, so the model's own forward
     * (re-seeded before each evaluation, so the mask is fixed) gives the finite differences. */
    net_b b;
    make_net_b(&b, 0.3f);
    char err[RT_ERRLEN];
    rt_model *m = rt_net_create(&b.d, 3, 2, err);
    CHECK(m != NULL, "%s", err);
    const int n = 3, k = 3;
    float *x = rand_input(n * 32), *r = rand_input(n * k), logits[9], l2[9];
    float *g = malloc(sizeof(float) * m->nparams);
    m->seed_dropout(m->self, 11);
    ck_assert_int_eq(m->forward(m->self, x, n, 1, logits), 0);
    ck_assert_int_eq(m->backward(m->self, r, n), 0);
    memcpy(g, m->grads, sizeof(float) * m->nparams);
    int masked = 0;
    /* the dropout output holds zeros where the mask dropped */
    m->seed_dropout(m->self, 12);
    ck_assert_int_eq(m->forward(m->self, x, n, 1, l2), 0);
    for (int i = 0; i < n * k; i++)
        masked |= l2[i] != logits[i];
    CHECK(masked, "another dropout seed changed nothing");
    for (size_t j = 0; j < m->nparams; j++) {
        float keep = m->params[j], h = 1e-2f;
        double lp = 0, lm = 0;
        m->params[j] = keep + h;
        m->seed_dropout(m->self, 11);
        m->forward(m->self, x, n, 1, logits);
        for (int i = 0; i < n * k; i++)
            lp += (double)r[i] * logits[i];
        m->params[j] = keep - h;
        m->seed_dropout(m->self, 11);
        m->forward(m->self, x, n, 1, logits);
        for (int i = 0; i < n * k; i++)
            lm += (double)r[i] * logits[i];
        m->params[j] = keep;
        double num = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
        CHECK(fabs(g[j] - num) <= 2e-3 + 1e-2 * fabs(num),
                      "parameter %zu: %.6g vs finite differences %.6g", j, g[j], num);
    }
    /* evaluation ignores dropout: two evaluations agree whatever the seed */
    m->seed_dropout(m->self, 1);
    m->forward(m->self, x, n, 0, logits);
    m->seed_dropout(m->self, 2);
    m->forward(m->self, x, n, 0, l2);
    ck_assert_int_eq(memcmp(logits, l2, sizeof logits), 0);
    free(x), free(r), free(g);
    rt_model_destroy(m);
}
END_TEST

/* Runs one training forward and backward; returns logits and grads. */
static void one_step(const rt_netdesc *d, int threads, uint64_t seed, const float *x, int n,
                     const float *dl, float *logits, float *grads)
{
    char err[RT_ERRLEN];
    rt_model *m = rt_net_create(d, n, threads, err);
    CHECK(m != NULL, "%s", err);
    rt_init_params(d, m->params, m->state, seed);
    m->seed_dropout(m->self, seed);
    ck_assert_int_eq(m->forward(m->self, x, n, 1, logits), 0);
    ck_assert_int_eq(m->backward(m->self, dl, n), 0);
    memcpy(grads, m->grads, sizeof(float) * d->nparams);
    /* backward overwrites: a second identical step gives the same gradients */
    m->seed_dropout(m->self, seed);
    ck_assert_int_eq(m->forward(m->self, x, n, 1, logits), 0);
    ck_assert_int_eq(m->backward(m->self, dl, n), 0);
    ck_assert_int_eq(memcmp(grads, m->grads, sizeof(float) * d->nparams), 0);
    rt_model_destroy(m);
}

/* A training step of da and of db (3 classes, inputs of in_floats, nparams parameters) on the
 * same 5 random images, on 1 and 2 threads: the same logits and gradients, bit for bit. */
static void same_steps(const rt_netdesc *da, const rt_netdesc *db, int in_floats,
                       size_t nparams)
{
    const int n = 5;
    float *x = rand_input(n * in_floats), *dl = rand_input(n * 3);
    float la[15], lb[15];
    float *ga = malloc(4 * nparams), *gb = malloc(4 * nparams);
    for (int threads = 1; threads <= 2; threads++) {
        one_step(da, threads, 4, x, n, dl, la, ga);
        one_step(db, threads, 4, x, n, dl, lb, gb);
        ck_assert_int_eq(memcmp(la, lb, sizeof la), 0);
        ck_assert_int_eq(memcmp(ga, gb, 4 * nparams), 0);
    }
    free(x), free(dl), free(ga), free(gb);
}

START_TEST(determinism)
{
    /* big enough that the batch really splits and the elementwise steps (over 65536 values)
     * run on the pool: 3x40x40 -> conv 8@3x3 + leaky relu -> dropout -> maxpool -> dense */
    size_t off = 0;
    rt_shape in = {3, 40, 40}, c1 = {8, 40, 40}, p1 = {8, 20, 20};
    rt_layer L[5];
    L[0] = layer(RT_INPUT, -1, in, in);
    L[1] = conv_layer(0, in, 8, 3, 1, RT_PAD_REPLICATE, 1, RT_ACT_LEAKYRELU, &off);
    L[1].alpha = 0.1f;
    L[2] = layer(RT_DROPOUT, 1, c1, c1);
    L[2].p = 0.25f;
    L[3] = layer(RT_MAXPOOL, 2, c1, p1);
    L[3].kh = L[3].kw = L[3].sh = L[3].sw = 2;
    L[4] = dense_layer(3, p1, 5, RT_ACT_NONE, &off);
    rt_netdesc d = {"det", 5, L, off, 0, 0};
    const int n = 7, k = 5;
    float *x = rand_input(n * 4800), *dl = rand_input(n * k);
    float l1[35], l2[35], l3[35];
    float *g1 = malloc(4 * off), *g2 = malloc(4 * off), *g3 = malloc(4 * off);
    one_step(&d, 2, 9, x, n, dl, l1, g1);
    one_step(&d, 2, 9, x, n, dl, l2, g2);
    /* same seed and thread count: the same bits */
    ck_assert_int_eq(memcmp(l1, l2, sizeof l1), 0);
    ck_assert_int_eq(memcmp(g1, g2, 4 * off), 0);
    /* one thread: the forward does not depend on the split, the dense gradients neither;
     * conv dW and db add per-thread partials, so they agree to rounding */
    one_step(&d, 1, 9, x, n, dl, l3, g3);
    ck_assert_int_eq(memcmp(l1, l3, sizeof l1), 0);
    for (size_t i = L[4].w_off; i < off; i++)
        CHECK(g1[i] == g3[i], "dense gradient %zu differs between 1 and 2 threads", i);
    for (size_t i = 0; i < L[4].w_off; i++)
        CHECK(fabsf(g1[i] - g3[i]) <= 1e-5f * (1 + fabsf(g3[i])), "conv gradient %zu: %g vs %g",
              i, g1[i], g3[i]);
    /* another seed: other parameters and masks */
    one_step(&d, 2, 10, x, n, dl, l3, g3);
    ck_assert_int_ne(memcmp(l1, l3, sizeof l1), 0);
    free(x), free(dl), free(g1), free(g2), free(g3);
}
END_TEST

/* A max pooling that is the only reader of a conv's relu output applies the relu's backward
 * itself (rt_maxpool_backward_relu) and the conv skips its own pass: the same network with
 * the relu as a separate layer (not fused) must give the same bits. */
START_TEST(relu_pool_fusion)
{
    size_t off1 = 0, off2 = 0;
    rt_shape in = {3, 12, 12}, c1 = {4, 12, 12}, p1 = {4, 6, 6};
    rt_layer A[4], B[5];
    A[0] = layer(RT_INPUT, -1, in, in);
    A[1] = conv_layer(0, in, 4, 3, 1, RT_PAD_ZERO, 1, RT_ACT_RELU, &off1);
    A[2] = layer(RT_MAXPOOL, 1, c1, p1);
    A[2].kh = A[2].kw = A[2].sh = A[2].sw = 2;
    A[3] = dense_layer(2, p1, 3, RT_ACT_NONE, &off1);
    B[0] = A[0];
    B[1] = conv_layer(0, in, 4, 3, 1, RT_PAD_ZERO, 1, RT_ACT_NONE, &off2);
    B[2] = layer(RT_ACTIVATION, 1, c1, c1);
    B[2].act = RT_ACT_RELU;
    B[3] = A[2];
    B[3].src = 2;
    B[4] = dense_layer(3, p1, 3, RT_ACT_NONE, &off2);
    ck_assert_uint_eq(off1, off2);
    rt_netdesc da = {"fused", 4, A, off1, 0, 0}, db = {"unfused", 5, B, off2, 0, 0};
    ck_assert_int_eq(rt_netdesc_pool_takes_relu(&da, 2), 1);
    ck_assert_int_eq(rt_netdesc_pool_takes_relu(&da, 1), 0);  /* not a pooling */
    ck_assert_int_eq(rt_netdesc_pool_takes_relu(&db, 3), 0);  /* reads an activation layer */
    A[1].act = RT_ACT_LEAKYRELU;
    ck_assert_int_eq(rt_netdesc_pool_takes_relu(&da, 2), 0);  /* only relu */
    A[1].act = RT_ACT_RELU;
    A[3].src2 = 1; /* a second reader of the conv's output (as a residual add would be) */
    ck_assert_int_eq(rt_netdesc_pool_takes_relu(&da, 2), 0);
    A[3].src2 = -1;

    same_steps(&da, &db, 432, off1);
}
END_TEST

/* Batchnorm + activation: the plan fuses an activation computed from its output into the
 * batchnorm before it (one pass forward and backward, the activation an alias); the same
 * network with a p = 0 dropout between them (the activation then reads the dropout, so no
 * fusion) gives the same bits: logits and gradients after a training step, for relu,
 * leaky relu and sigmoid, on 1 and 2 threads. silu reads its input: never fused. */
START_TEST(bn_act_fusion)
{
    static const rt_act acts[] = {RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_SIGMOID};
    rt_shape in = {3, 6, 6}, c1 = {4, 6, 6};
    for (int k = 0; k < 3; k++) {
        size_t off1 = 0, off2 = 0;
        rt_layer A[5], B[6];
        A[0] = layer(RT_INPUT, -1, in, in);
        A[1] = conv_layer(0, in, 4, 3, 1, RT_PAD_ZERO, 1, RT_ACT_NONE, &off1);
        A[2] = layer(RT_BATCHNORM, 1, c1, c1);
        A[2].eps = 1e-5f, A[2].momentum = 0.1f;
        A[2].w_off = off1, A[2].w_len = 4, off1 += 4;
        A[2].b_off = off1, A[2].b_len = 4, off1 += 4;
        A[2].s_off = 0, A[2].s_len = 8;
        A[3] = layer(RT_ACTIVATION, 2, c1, c1);
        A[3].act = acts[k], A[3].alpha = 0.1f;
        A[4] = dense_layer(3, c1, 3, RT_ACT_NONE, &off1);
        B[0] = A[0], B[1] = A[1], B[2] = A[2];
        B[3] = layer(RT_DROPOUT, 2, c1, c1);
        B[3].p = 0.0f;
        B[4] = A[3], B[4].src = 3;
        B[5] = A[4], B[5].src = 4;
        off2 = off1;
        rt_netdesc da, db;
        memset(&da, 0, sizeof da), memset(&db, 0, sizeof db);
        strcpy(da.name, "fused"), strcpy(db.name, "unfused");
        da.nlayers = 5, da.layers = A, da.nparams = off1, da.nstate = 8;
        db.nlayers = 6, db.layers = B, db.nparams = off2, db.nstate = 8;
        rt_plan pa, pb;
        ck_assert_int_eq(rt_plan_build(&da, &pa, NULL), 0);
        ck_assert_int_eq(rt_plan_build(&db, &pb, NULL), 0);
        CHECK(rt_plan_step(&pa, 2)->bn_act_layer == 3 && rt_plan_step(&pa, 3)->act_fused &&
                  rt_plan_step(&pa, 3)->alias == RT_ALIAS_ALWAYS,
              "act %d: batchnorm + activation not fused", k);
        CHECK(rt_plan_step(&pb, 2)->bn_act_layer == 0, "fused through a dropout");
        rt_plan_free(&pb);
        A[3].act = RT_ACT_SILU; /* computed from its input: not fusable */
        rt_plan_free(&pa);
        ck_assert_int_eq(rt_plan_build(&da, &pa, NULL), 0);
        CHECK(rt_plan_step(&pa, 2)->bn_act_layer == 0, "silu fused");
        rt_plan_free(&pa);
        A[3].act = acts[k];

        same_steps(&da, &db, 108, off1);
    }
}
END_TEST

/* A residual add whose only reader is a relu (or leaky relu) runs it in the same pass,
 * forward and backward: a training step gives the bits of the same network with a dropout of
 * p = 0 between the two (which keeps them apart), on maps large enough (16x40x40, 5 images)
 * that the elementwise pass splits over 2 threads and runs several blocks. */
START_TEST(add_act_fusion)
{
    static const rt_act acts[] = {RT_ACT_RELU, RT_ACT_LEAKYRELU};
    rt_shape in = {3, 40, 40}, c1 = {16, 40, 40};
    for (int k = 0; k < 2; k++) {
        size_t off = 0;
        rt_layer A[6], B[7];
        A[0] = layer(RT_INPUT, -1, in, in);
        A[1] = conv_layer(0, in, 16, 3, 1, RT_PAD_ZERO, 1, RT_ACT_NONE, &off);
        A[2] = conv_layer(1, c1, 16, 3, 1, RT_PAD_ZERO, 1, RT_ACT_NONE, &off);
        A[3] = layer(RT_ADD, 2, c1, c1);
        A[3].src2 = 1;
        A[4] = layer(RT_ACTIVATION, 3, c1, c1);
        A[4].act = acts[k], A[4].alpha = 0.1f;
        A[5] = dense_layer(4, c1, 3, RT_ACT_NONE, &off);
        for (int i = 0; i < 4; i++)
            B[i] = A[i];
        B[4] = layer(RT_DROPOUT, 3, c1, c1);
        B[4].p = 0.0f;
        B[5] = A[4], B[5].src = 4;
        B[6] = A[5], B[6].src = 5;
        rt_netdesc da, db;
        memset(&da, 0, sizeof da), memset(&db, 0, sizeof db);
        strcpy(da.name, "fused"), strcpy(db.name, "unfused");
        da.nlayers = 6, da.layers = A, da.nparams = off;
        db.nlayers = 7, db.layers = B, db.nparams = off;
        rt_plan pa, pb;
        ck_assert_int_eq(rt_plan_build(&da, &pa, NULL), 0);
        ck_assert_int_eq(rt_plan_build(&db, &pb, NULL), 0);
        CHECK(rt_plan_step(&pa, 3)->add_act_layer == 4 && rt_plan_step(&pa, 4)->act_fused &&
                  rt_plan_step(&pa, 4)->alias == RT_ALIAS_ALWAYS,
              "act %d: add + activation not fused", k);
        CHECK(rt_plan_step(&pb, 3)->add_act_layer == 0, "fused through a dropout");
        rt_plan_free(&pa);
        rt_plan_free(&pb);
        same_steps(&da, &db, 3 * 40 * 40, off);
    }
}
END_TEST

/* In inference (RT_INFER) a conv without activation whose only reader is a batchnorm runs
 * with that batchnorm folded into its weights and bias, and with the activation the
 * batchnorm fused: the logits agree with the evaluation mode's (RT_EVAL, unfused) to 1e-5
 * of their size, on a plain conv with bias followed by batchnorm + relu, and a depthwise
 * conv without bias followed by a batchnorm alone; a conv with its own relu is left alone.
 * A backward after an inference-only forward fails and poisons the gradients. */
START_TEST(bn_fold_inference)
{
    rt_shape in = {3, 6, 6}, c1 = {4, 6, 6};
    size_t off = 0;
    rt_layer A[7];
    A[0] = layer(RT_INPUT, -1, in, in);
    A[1] = conv_layer(0, in, 4, 3, 1, RT_PAD_ZERO, 1, RT_ACT_NONE, &off);
    A[2] = layer(RT_BATCHNORM, 1, c1, c1);
    A[2].w_off = off, A[2].w_len = 4, off += 4;
    A[2].b_off = off, A[2].b_len = 4, off += 4;
    A[2].s_off = 0, A[2].s_len = 8;
    A[3] = layer(RT_ACTIVATION, 2, c1, c1);
    A[3].act = RT_ACT_RELU;
    A[4] = conv_layer(3, c1, 4, 3, 1, RT_PAD_ZERO, 0, RT_ACT_NONE, &off);
    A[4].groups = 4; /* depthwise: 4 x 1 x 3 x 3 weights */
    off -= A[4].w_len;
    A[4].w_len = 4 * 9;
    off += A[4].w_len;
    A[4].b_off = off;
    A[5] = layer(RT_BATCHNORM, 4, c1, c1);
    A[5].eps = 1e-3f;
    A[5].w_off = off, A[5].w_len = 4, off += 4;
    A[5].b_off = off, A[5].b_len = 4, off += 4;
    A[5].s_off = 8, A[5].s_len = 8;
    A[6] = dense_layer(5, c1, 3, RT_ACT_NONE, &off);
    rt_netdesc d;
    memset(&d, 0, sizeof d);
    strcpy(d.name, "fold");
    d.nlayers = 7, d.layers = A, d.nparams = off, d.nstate = 16;
    rt_plan p;
    ck_assert_int_eq(rt_plan_build(&d, &p, NULL), 0);
    CHECK(rt_plan_step(&p, 1)->bn_fold == 2 && rt_plan_step(&p, 1)->fold_act == RT_ACT_RELU &&
              rt_plan_step(&p, 2)->alias == RT_ALIAS_INFER,
          "conv + batchnorm + relu not folded");
    CHECK(rt_plan_step(&p, 4)->bn_fold == 5 && rt_plan_step(&p, 4)->fold_act == RT_ACT_NONE &&
              rt_plan_step(&p, 5)->alias == RT_ALIAS_INFER,
          "depthwise conv + batchnorm not folded");
    rt_plan_free(&p);
    A[1].act = RT_ACT_RELU; /* conv, relu, then batchnorm: the batchnorm cannot fold */
    ck_assert_int_eq(rt_plan_build(&d, &p, NULL), 0);
    CHECK(rt_plan_step(&p, 1)->bn_fold == 0 && rt_plan_step(&p, 2)->alias == RT_ALIAS_NONE,
          "batchnorm folded into a conv with its own relu");
    rt_plan_free(&p);
    A[1].act = RT_ACT_NONE;
    /* a batchnorm straight after the input has no conv to fold into */
    rt_layer I[3] = {A[0], layer(RT_BATCHNORM, 0, in, in), dense_layer(1, in, 3, RT_ACT_NONE, &(size_t){6})};
    I[1].w_off = 0, I[1].w_len = 3, I[1].b_off = 3, I[1].b_len = 3, I[1].s_off = 0, I[1].s_len = 6;
    rt_netdesc di;
    memset(&di, 0, sizeof di);
    strcpy(di.name, "input_bn");
    di.nlayers = 3, di.layers = I, di.nparams = 6 + 3 * 108 + 3, di.nstate = 6;
    ck_assert_int_eq(rt_plan_build(&di, &p, NULL), 0);
    CHECK(rt_plan_step(&p, 1)->alias == RT_ALIAS_NONE, "a batchnorm on the input folded");
    rt_plan_free(&p);

    const int n = 5, isz = 3 * 6 * 6;
    float *x = rand_input(n * isz), eval[15], inf[2][15];
    for (int threads = 1; threads <= 2; threads++) {
        char err[RT_ERRLEN];
        rt_model *m = rt_net_create(&d, n, threads, err);
        ck_assert_msg(m != NULL, "%s", err);
        lcg = 99;
        for (size_t k = 0; k < m->nparams; k++)
            m->params[k] = (float)drand();
        for (int c = 0; c < 8; c++) { /* running means about 0, variances in [0.5, 1.5] */
            m->state[(c / 4) * 8 + c % 4] = (float)(0.5 * drand());
            m->state[(c / 4) * 8 + 4 + c % 4] = (float)(1.0 + 0.5 * drand());
        }
        ck_assert_int_eq(m->forward(m->self, x, n, RT_EVAL, eval), 0);
        ck_assert_int_eq(m->forward(m->self, x, n, RT_INFER, inf[threads - 1]), 0);
        for (int i = 0; i < n * 3; i++)
            CHECK(fabsf(inf[threads - 1][i] - eval[i]) <= 1e-5f * (1.0f + fabsf(eval[i])),
                  "%d threads: logit %d %.9g folded vs %.9g", threads, i, inf[threads - 1][i],
                  eval[i]);
        float dl[15] = {0};
        dl[0] = 1.0f;
        CHECK(m->backward(m->self, dl, n) == -1, "backward after RT_INFER did not return -1");
        CHECK(isnan(m->grads[0]) && strstr(m->err, "inference-only"),
              "backward after RT_INFER: grads[0] %g, err '%s'", m->grads[0], m->err);
        ck_assert_int_eq(m->forward(m->self, x, n, RT_EVAL, eval), 0);
        CHECK(m->backward(m->self, dl, n) == 0, "backward after RT_EVAL failed: %s", m->err);
        CHECK(isfinite(m->grads[0]), "backward after RT_EVAL: grads[0] %g", m->grads[0]);
        m->destroy(m->self);
    }
    CHECK(memcmp(inf[0], inf[1], sizeof inf[0]) == 0, "folded logits differ with 1 and 2 threads");
    free(x);
}
END_TEST

/* The logits of one forward of d in mode (RT_INFER, RT_EVAL) on a new model with parameters
 * and statistics from seed 5 (running statistics moved by 0.25 so that a folded batchnorm
 * does something). */
static void infer_logits(const rt_netdesc *d, int threads, const float *x, int n, int mode,
                         float *logits)
{
    char err[RT_ERRLEN];
    rt_model *m = rt_net_create(d, n, threads, err);
    ck_assert_msg(m != NULL, "%s", err);
    rt_init_params(d, m->params, m->state, 5);
    for (size_t k = 0; k < m->nstate; k++)
        m->state[k] += 0.25f;
    ck_assert_int_eq(m->forward(m->self, x, n, mode, logits), 0);
    rt_model_destroy(m);
}

/* In inference a residual add whose body ends in a conv without activation (or in a
 * batchnorm folded into one) is computed by that conv, with the add's relu or leaky relu:
 * the logits are the bits of the same network with a dropout of p = 0 before the add (which
 * keeps them apart), on 16x40x40 maps (rows of two and a half AVX-512 vectors), 5 images,
 * 1 and 2 threads; without a batchnorm they are also RT_EVAL's bits. The plan refuses an
 * add whose other summand is made after the conv, and an activation the conv's epilogue
 * does not compute (sigmoid). */
START_TEST(residual_add_in_conv)
{
    static const rt_act acts[] = {RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_NONE};
    rt_shape in = {3, 40, 40}, c1 = {16, 40, 40};
    const int n = 5;
    float *x = rand_input(n * 3 * 40 * 40), la[15], lb[15];
    for (int k = 0; k < 3; k++)
        for (int bn = 0; bn < 2; bn++) {
            size_t off = 0;
            rt_layer A[8], B[9];
            int j = 0;
            A[j++] = layer(RT_INPUT, -1, in, in);
            A[j++] = conv_layer(0, in, 16, 3, 1, RT_PAD_ZERO, 1, RT_ACT_RELU, &off);
            A[j++] = conv_layer(1, c1, 16, 3, 1, RT_PAD_ZERO, !bn, RT_ACT_NONE, &off);
            if (bn) {
                A[j] = layer(RT_BATCHNORM, 2, c1, c1);
                A[j].w_off = off, A[j].w_len = 16, off += 16;
                A[j].b_off = off, A[j].b_len = 16, off += 16;
                A[j].s_off = 0, A[j].s_len = 32;
                j++;
            }
            const int add = j;
            A[j] = layer(RT_ADD, add - 1, c1, c1);
            A[j++].src2 = 1;
            if (acts[k] != RT_ACT_NONE) {
                A[j] = layer(RT_ACTIVATION, j - 1, c1, c1);
                A[j].act = acts[k], A[j++].alpha = 0.1f;
            }
            A[j] = dense_layer(j - 1, c1, 3, RT_ACT_NONE, &off);
            j++;
            /* B: A with a dropout of p = 0 before the add */
            for (int i = 0; i < add; i++)
                B[i] = A[i];
            B[add] = layer(RT_DROPOUT, add - 1, c1, c1);
            B[add].p = 0.0f;
            for (int i = add; i < j; i++) {
                B[i + 1] = A[i];
                B[i + 1].src = A[i].src + (A[i].src >= add - 1 && i > add ? 1 : 0);
            }
            B[add + 1].src = add;
            rt_netdesc da, db;
            memset(&da, 0, sizeof da), memset(&db, 0, sizeof db);
            strcpy(da.name, "fused"), strcpy(db.name, "unfused");
            da.nlayers = j, da.layers = A, da.nparams = off, da.nstate = bn ? 32 : 0;
            db.nlayers = j + 1, db.layers = B, db.nparams = off, db.nstate = da.nstate;
            rt_plan pa, pb;
            ck_assert_int_eq(rt_plan_build(&da, &pa, NULL), 0);
            ck_assert_int_eq(rt_plan_build(&db, &pb, NULL), 0);
            CHECK(rt_plan_step(&pa, 2)->res_add == add &&
                      rt_plan_step(&pa, 2)->res_act == acts[k] &&
                      rt_plan_step(&pa, add)->alias == RT_ALIAS_INFER,
                  "act %d, batchnorm %d: the add is not in the conv", k, bn);
            CHECK(rt_plan_step(&pb, 2)->res_add == 0 &&
                      rt_plan_step(&pb, add + 1)->alias == RT_ALIAS_NONE,
                  "fused through a dropout");
            rt_plan_free(&pa);
            rt_plan_free(&pb);
            for (int threads = 1; threads <= 2; threads++) {
                infer_logits(&da, threads, x, n, RT_INFER, la);
                infer_logits(&db, threads, x, n, RT_INFER, lb);
                CHECK(memcmp(la, lb, sizeof la) == 0,
                      "act %d, batchnorm %d, %d threads: logits differ", k, bn, threads);
                if (!bn) {
                    infer_logits(&da, threads, x, n, RT_EVAL, lb);
                    CHECK(memcmp(la, lb, sizeof la) == 0,
                          "act %d, %d threads: RT_INFER and RT_EVAL differ", k, threads);
                }
            }
            if (k > 0 || bn)
                continue;
            A[4].act = RT_ACT_SIGMOID; /* fused into the add, but not in a GEMM's epilogue */
            ck_assert_int_eq(rt_plan_build(&da, &pa, NULL), 0);
            CHECK(rt_plan_step(&pa, 3)->add_act_layer == 4 && rt_plan_step(&pa, 2)->res_add == 0,
                  "sigmoid in the conv's epilogue");
            rt_plan_free(&pa);
            A[4].act = acts[k];
            /* an add whose other summand (layer 2) is made after the conv that ends its body
             * (layer 1) */
            A[2].src = 0;
            A[3].src = 1, A[3].src2 = 2;
            A[1].act = RT_ACT_NONE;
            A[1].in = in, A[2].in = in;
            ck_assert_int_eq(rt_plan_build(&da, &pa, NULL), 0);
            CHECK(rt_plan_step(&pa, 1)->res_add == 0 && rt_plan_step(&pa, 2)->res_add == 0,
                  "the conv computes an add whose other summand comes later");
            rt_plan_free(&pa);
        }
    free(x);
}
END_TEST

/* A conv whose only reader is a pooling over windows runs that pooling itself, run of
 * images by run of images (rt_conv2d_forward_pool): a training step and an inference-only
 * forward give the bits of the same network with a dropout of p = 0 between the two (which
 * keeps them apart), for max and average pooling, on maps large enough (16x72x72, 7 images)
 * that the batch is cut into several runs, on 1 and 2 threads. */
START_TEST(conv_pool_fusion)
{
    rt_shape in = {3, 72, 72}, c1 = {16, 72, 72}, p1 = {16, 36, 36}, c2 = {8, 34, 34};
    rt_shape p2 = {8, 17, 17};
    size_t off = 0;
    rt_layer A[6], B[8];
    A[0] = layer(RT_INPUT, -1, in, in);
    A[1] = conv_layer(0, in, 16, 3, 1, RT_PAD_ZERO, 1, RT_ACT_RELU, &off);
    A[2] = layer(RT_MAXPOOL, 1, c1, p1);
    A[2].kh = A[2].kw = A[2].sh = A[2].sw = 2;
    A[3] = conv_layer(2, p1, 8, 3, 0, RT_PAD_ZERO, 1, RT_ACT_NONE, &off);
    A[4] = layer(RT_AVGPOOL, 3, c2, p2);
    A[4].kh = A[4].kw = A[4].sh = A[4].sw = 2;
    A[5] = dense_layer(4, p2, 3, RT_ACT_NONE, &off);
    B[0] = A[0], B[1] = A[1];
    B[2] = layer(RT_DROPOUT, 1, c1, c1);
    B[3] = A[2], B[3].src = 2;
    B[4] = A[3], B[4].src = 3;
    B[5] = layer(RT_DROPOUT, 4, c2, c2);
    B[6] = A[4], B[6].src = 5;
    B[7] = A[5], B[7].src = 6;
    B[2].p = B[5].p = 0.0f;
    rt_netdesc da, db;
    memset(&da, 0, sizeof da), memset(&db, 0, sizeof db);
    strcpy(da.name, "fused"), strcpy(db.name, "unfused");
    da.nlayers = 6, da.layers = A, da.nparams = off;
    db.nlayers = 8, db.layers = B, db.nparams = off;
    rt_plan pa, pb;
    ck_assert_int_eq(rt_plan_build(&da, &pa, NULL), 0);
    ck_assert_int_eq(rt_plan_build(&db, &pb, NULL), 0);
    CHECK(rt_plan_step(&pa, 1)->pool_layer == 2 && rt_plan_step(&pa, 2)->pool_by_src &&
              rt_plan_step(&pa, 3)->pool_layer == 4 && rt_plan_step(&pa, 4)->pool_by_src,
          "conv + pooling not fused");
    CHECK(rt_plan_step(&pb, 1)->pool_layer == 0 && rt_plan_step(&pb, 4)->pool_layer == 0,
          "fused through a dropout");
    /* backward: the first conv (it reads the input) runs its max pooling's backward; the
     * second reads a pooling and is followed by an average one: neither condition holds */
    CHECK(rt_plan_step(&pa, 1)->pool_bwd == 2 && rt_plan_step(&pa, 2)->bwd_by_src &&
              rt_plan_step(&pa, 3)->pool_bwd == 0 && !rt_plan_step(&pa, 4)->bwd_by_src,
          "the first conv's backward does not run the max pooling's, or the second's does");
    CHECK(rt_plan_step(&pb, 1)->pool_bwd == 0 && !rt_plan_step(&pb, 3)->bwd_by_src,
          "backward fused through a dropout");
    rt_plan_free(&pa);
    rt_plan_free(&pb);
    A[1].act = RT_ACT_NONE; /* no relu for the pooling to apply: the pair stays apart */
    ck_assert_int_eq(rt_plan_build(&da, &pa, NULL), 0);
    CHECK(rt_plan_step(&pa, 1)->pool_layer == 2 && rt_plan_step(&pa, 1)->pool_bwd == 0,
          "a conv without relu runs its max pooling's backward");
    rt_plan_free(&pa);
    A[1].act = RT_ACT_RELU;

    const int n = 7, isz = 3 * 72 * 72;
    float *x = rand_input(n * isz), *dl = rand_input(n * 3), la[21], lb[21];
    float *ga = malloc(4 * off), *gb = malloc(4 * off);
    ck_assert(ga && gb);
    for (int threads = 1; threads <= 2; threads++) {
        one_step(&da, threads, 4, x, n, dl, la, ga);
        one_step(&db, threads, 4, x, n, dl, lb, gb);
        CHECK(memcmp(la, lb, sizeof la) == 0, "%d threads: training logits differ", threads);
        CHECK(memcmp(ga, gb, 4 * off) == 0, "%d threads: gradients differ", threads);
        infer_logits(&da, threads, x, n, RT_INFER, la);
        infer_logits(&db, threads, x, n, RT_INFER, lb);
        CHECK(memcmp(la, lb, sizeof la) == 0, "%d threads: inference logits differ", threads);
        infer_logits(&da, threads, x, n, RT_EVAL, lb);
        CHECK(memcmp(la, lb, sizeof la) == 0, "%d threads: RT_INFER and RT_EVAL differ", threads);
    }
    free(x), free(dl), free(ga), free(gb);
}
END_TEST

/* An inference-only forward (RT_INFER) lays its outputs out by the inference memory plan,
 * in the training arena, each in the place of an output no longer read: on a network whose
 * residual add reads an output from three layers back (which must outlive the layers
 * between), the logits are RT_EVAL's bit for bit on 1 and 2 threads, the plan does reuse
 * places, and a training step after it gives the gradients of one without it. */
START_TEST(infer_memory_plan)
{
    rt_shape in = {3, 8, 8}, c1 = {6, 8, 8};
    size_t off = 0;
    rt_layer A[8];
    A[0] = layer(RT_INPUT, -1, in, in);
    A[1] = conv_layer(0, in, 6, 3, 1, RT_PAD_ZERO, 1, RT_ACT_RELU, &off);
    A[2] = conv_layer(1, c1, 6, 3, 1, RT_PAD_ZERO, 1, RT_ACT_RELU, &off);
    A[3] = conv_layer(2, c1, 6, 3, 1, RT_PAD_ZERO, 1, RT_ACT_NONE, &off);
    A[4] = conv_layer(3, c1, 6, 3, 1, RT_PAD_ZERO, 1, RT_ACT_NONE, &off);
    A[5] = layer(RT_ADD, 4, c1, c1);
    A[5].src2 = 1;
    A[6] = conv_layer(5, c1, 6, 3, 1, RT_PAD_ZERO, 1, RT_ACT_RELU, &off);
    A[7] = dense_layer(6, c1, 3, RT_ACT_NONE, &off);
    rt_netdesc d;
    memset(&d, 0, sizeof d);
    strcpy(d.name, "skip");
    d.nlayers = 8, d.layers = A, d.nparams = off;
    rt_plan p;
    rt_memplan mi;
    char err[RT_ERRLEN];
    ck_assert_int_eq(rt_plan_build(&d, &p, NULL), 0);
    ck_assert_int_eq(rt_memplan_infer(&d, &p, NULL, &mi, err), 0);
    CHECK(mi.total < mi.naive, "no output shares a place: %ld of %ld floats", mi.total,
          mi.naive);
    CHECK(mi.out_off[1] != mi.out_off[2] && mi.out_off[1] != mi.out_off[3] &&
              mi.out_off[1] != mi.out_off[4],
          "the add's skip input shares a place with a layer before the add");
    rt_memplan_free(&mi);
    rt_plan_free(&p);

    const int n = 3, isz = 3 * 8 * 8;
    float *x = rand_input(n * isz), eval[9], inf[2][9], dl[9] = {1, -1, 0.5f};
    for (int threads = 1; threads <= 2; threads++) {
        rt_model *m = rt_net_create(&d, n, threads, err);
        ck_assert_msg(m != NULL, "%s", err);
        lcg = 7;
        for (size_t k = 0; k < m->nparams; k++)
            m->params[k] = (float)drand();
        float *g1 = malloc(m->nparams * sizeof *g1);
        ck_assert(g1 != NULL);
        ck_assert_int_eq(m->forward(m->self, x, n, RT_TRAIN, eval), 0);
        ck_assert_int_eq(m->backward(m->self, dl, n), 0);
        memcpy(g1, m->grads, m->nparams * sizeof *g1);
        ck_assert_int_eq(m->forward(m->self, x, n, RT_EVAL, eval), 0);
        ck_assert_int_eq(m->forward(m->self, x, n, RT_INFER, inf[threads - 1]), 0);
        CHECK(memcmp(inf[threads - 1], eval, sizeof eval) == 0,
              "%d threads: RT_INFER logits differ from RT_EVAL's", threads);
        ck_assert_int_eq(m->forward(m->self, x, n, RT_TRAIN, eval), 0);
        ck_assert_int_eq(m->backward(m->self, dl, n), 0);
        CHECK(memcmp(g1, m->grads, m->nparams * sizeof *g1) == 0,
              "%d threads: gradients after an RT_INFER forward differ", threads);
        free(g1);
        m->destroy(m->self);
    }
    free(x);
}
END_TEST

START_TEST(train_separable)
{
    /* Two classes of 6x6 images: a bright vertical bar in the left half (class 0) or in the
     * right half (class 1), on noise. Adam on net A must drive the loss down. */
    net_a a;
    make_net_a(&a, 2);
    char err[RT_ERRLEN];
    enum { N = 32 };
    rt_model *m = rt_net_create(&a.d, N, 2, err);
    CHECK(m != NULL, "%s", err);
    float x[N * 36], logits[N * 2], dl[N * 2];
    int y[N];
    for (int s = 0; s < N; s++) {
        y[s] = s % 2;
        int col = (y[s] ? 3 : 0) + (s / 2) % 3;
        for (int i = 0; i < 36; i++)
            x[s * 36 + i] = (float)(0.2 * (drand() + 1)) + (i % 6 == col ? 1.0f : 0.0f);
    }
    rt_opt_cfg cfg = {RT_OPT_ADAM, 0.01f, 0, 0, 0.9f, 0.999f, 1e-8f, 0};
    rt_opt *o = rt_opt_create(&cfg, m->nparams);
    ck_assert_ptr_nonnull(o);
    double first = 0, loss = 0;
    int correct = 0;
    for (int step = 0; step < 80; step++) {
        ck_assert_int_eq(m->forward(m->self, x, N, 1, logits), 0);
        loss = rt_softmax_xent(logits, y, N, 2, NULL, dl, &correct);
        if (step == 0)
            first = loss;
        ck_assert_int_eq(m->backward(m->self, dl, N), 0);
        rt_opt_step(o, m->params, m->grads);
    }
    CHECK(loss < 0.2 * first && loss < 0.1, "loss went from %g to %g", first, loss);
    ck_assert_int_eq(correct, N);
    rt_opt_destroy(o);
    rt_model_destroy(m);
}
END_TEST

START_TEST(rejected_descriptions)
{
    net_a a;
    char err[RT_ERRLEN];
    make_net_a(&a, 3);
    rt_model *m = rt_net_create(&a.d, 4, 1, err);
    ck_assert_ptr_nonnull(m);
    float x[5 * 36] = {0}, logits[15];
    ck_assert_int_eq(m->forward(m->self, x, 5, 0, logits), -1); /* more than max_batch */
    ck_assert_ptr_nonnull(strstr(m->err, "batch"));
    rt_model_destroy(m);
    rt_model_destroy(NULL);

    make_net_a(&a, 3);
    a.L[4].w_len--; /* wrong parameter count */
    ck_assert_ptr_null(rt_net_create(&a.d, 4, 1, err));
    ck_assert_ptr_nonnull(strstr(err, "weights"));

    make_net_a(&a, 3);
    a.L[2].src = 3; /* not an earlier layer */
    ck_assert_ptr_null(rt_net_create(&a.d, 4, 1, err));
    ck_assert_ptr_nonnull(strstr(err, "source"));

    make_net_a(&a, 3);
    a.L[1].act = RT_ACT_SOFTMAX; /* softmax before the end */
    ck_assert_ptr_null(rt_net_create(&a.d, 4, 1, err));
    ck_assert_ptr_nonnull(strstr(err, "softmax"));

    make_net_a(&a, 3);
    a.L[2].in.c = 3; /* does not match its source */
    ck_assert_ptr_null(rt_net_create(&a.d, 4, 1, err));
    ck_assert_ptr_nonnull(strstr(err, "match"));

    make_net_a(&a, 3);
    a.L[1].out.h = 7; /* conv output larger than the padded input allows */
    a.L[2].in.h = 7;
    ck_assert_ptr_null(rt_net_create(&a.d, 4, 1, err));
    ck_assert_ptr_nonnull(strstr(err, "outside"));

    make_net_a(&a, 3);
    a.d.nparams = 50; /* parameters beyond the array */
    ck_assert_ptr_null(rt_net_create(&a.d, 4, 1, err));
    ck_assert_ptr_nonnull(strstr(err, "outside"));

    make_net_a(&a, 3);
    ck_assert_ptr_null(rt_net_create(&a.d, 0, 1, err));
}
END_TEST

START_TEST(init_params)
{
    /* conv 3->4 3x3: fan_in 27, bound 1/sqrt(27); dense 4*6*6 = 144 -> 10: bound
     * 1/sqrt(144) = 1/12; batchnorm: gamma 1, beta 0, running mean 0, running variance 1. */
    size_t off = 0;
    rt_shape in = {3, 8, 8}, c1 = {4, 6, 6};
    rt_layer L[4];
    L[0] = layer(RT_INPUT, -1, in, in);
    L[1] = conv_layer(0, in, 4, 3, 0, RT_PAD_ZERO, 1, RT_ACT_NONE, &off);
    L[2] = layer(RT_BATCHNORM, 1, c1, c1);
    L[2].w_off = off, L[2].w_len = 4, off += 4;
    L[2].b_off = off, L[2].b_len = 4, off += 4;
    L[2].s_off = 0, L[2].s_len = 8;
    L[3] = dense_layer(2, c1, 10, RT_ACT_NONE, &off);
    rt_netdesc d = {"init", 4, L, off, 8, 0};
    float *p = malloc(4 * off), *p2 = malloc(4 * off), s[8];
    rt_init_params(&d, p, s, 3);
    double bc = 1 / sqrt(27.0), bd = 1 / 12.0, mc = 0, md = 0;
    for (size_t i = L[1].w_off; i < L[1].b_off + L[1].b_len; i++) {
        CHECK(fabs(p[i]) <= bc, "conv parameter %zu = %g", i, p[i]);
        mc = fmax(mc, fabs(p[i]));
    }
    for (size_t i = L[3].w_off; i < L[3].b_off + L[3].b_len; i++) {
        CHECK(fabs(p[i]) <= bd, "dense parameter %zu = %g", i, p[i]);
        md = fmax(md, fabs(p[i]));
    }
    ck_assert(mc > 0.9 * bc && md > 0.9 * bd); /* the range is used, not a smaller one */
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq(p[L[2].w_off + i], 1);
        ck_assert_float_eq(p[L[2].b_off + i], 0);
        ck_assert_float_eq(s[i], 0);
        ck_assert_float_eq(s[4 + i], 1);
    }
    rt_init_params(&d, p2, s, 3);
    ck_assert_int_eq(memcmp(p, p2, 4 * off), 0);
    rt_init_params(&d, p2, s, 4);
    ck_assert_int_ne(memcmp(p, p2, 4 * off), 0);
    free(p), free(p2);
}
END_TEST

START_TEST(netdesc_hash)
{
    net_a a;
    make_net_a(&a, 3);
    uint64_t h = rt_netdesc_hash(&a.d);
    a.L[1].line = 42; /* where a layer came from does not matter */
    strcpy(a.d.name, "renamed");
    a.L[4].kh = 7; /* nor fields a dense layer does not use */
    ck_assert_uint_eq(rt_netdesc_hash(&a.d), h);
    a.L[1].padmode = RT_PAD_CIRCULAR; /* the computation does */
    ck_assert_uint_ne(rt_netdesc_hash(&a.d), h);
    make_net_a(&a, 3);
    a.L[2].kh = 3;
    ck_assert_uint_ne(rt_netdesc_hash(&a.d), h);
    make_net_a(&a, 4);
    ck_assert_uint_ne(rt_netdesc_hash(&a.d), h);
    ck_assert_int_eq(rt_netdesc_classes(&a.d), 4);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("net");
    TCase *t = tcase_create("executor");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, net_a_reference);
    tcase_add_test(t, net_b_reference);
    tcase_add_test(t, net_b_dropout_gradient);
    tcase_add_test(t, determinism);
    tcase_add_test(t, relu_pool_fusion);
    tcase_add_test(t, bn_act_fusion);
    tcase_add_test(t, bn_fold_inference);
    tcase_add_test(t, residual_add_in_conv);
    tcase_add_test(t, infer_memory_plan);
    tcase_add_test(t, conv_pool_fusion);
    tcase_add_test(t, add_act_fusion);
    tcase_add_test(t, train_separable);
    tcase_add_test(t, rejected_descriptions);
    tcase_add_test(t, init_params);
    tcase_add_test(t, netdesc_hash);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
