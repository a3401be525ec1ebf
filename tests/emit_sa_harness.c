/*
 * emit_sa_harness.c - runs a standalone file's NAME_predict (cnnc --standalone) on the
 * input images of a `--dump` made by cnnrun with the same weights (eval mode), and compares
 * its probabilities with the softmax of the dump's logits, at full precision: the CLI
 * comparison in test_standalone.sh only sees cnnrun's two printed decimals. Built by the test:
 *   cc -DSA_FILE='"net_sa.c"' -DSA_NAME=net emit_sa_harness.c -lm
 *   ./harness DUMP TOLERANCE          exit 0: every probability within TOLERANCE (absolute)
 *                                     and the same class for every image; 1: not; 2: bad input
 * It also holds the interface of NAME.h to its word: NAME_predict_batch over all the images
 * and NAME_predict_ctx with two contexts taking turns give NAME_predict's bits exactly.
 */
#include SA_FILE

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define PREDICT CAT(SA_NAME, _predict)
#define PREDICT_CTX CAT(SA_NAME, _predict_ctx)
#define PREDICT_BATCH CAT(SA_NAME, _predict_batch)
#define CTX CAT(SA_NAME, _ctx)
#define IN_C CAT(SA_NAME, _INPUT_C)
#define IN_H CAT(SA_NAME, _INPUT_H)
#define IN_W CAT(SA_NAME, _INPUT_W)
#define CLASSES CAT(SA_NAME, _CLASSES)

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static float f32(const unsigned char *p)
{
    uint32_t u = (uint32_t)le(p, 4);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: harness DUMP TOLERANCE\n");
        return 2;
    }
    double tol = atof(argv[2]);
    FILE *f = fopen(argv[1], "rb");
    static unsigned char head[48];
    if (!f || fread(head, 1, 48, f) != 48 || memcmp(head, "CNND", 4) != 0 || le(head + 4, 4) != 1) {
        fprintf(stderr, "harness: %s is not a version 1 dump\n", argv[1]);
        return 2;
    }
    long n = (long)le(head + 8, 4), k = (long)le(head + 24, 4);
    if (le(head + 12, 4) != IN_C || le(head + 16, 4) != IN_H || le(head + 20, 4) != IN_W || k != CLASSES ||
        le(head + 28, 4) != 0 || n < 1 || n > 4096) {
        fprintf(stderr, "harness: the dump is not of this network in eval mode\n");
        return 2;
    }
    size_t isz = (size_t)IN_C * IN_H * IN_W, nx = (size_t)n * isz;
    unsigned char *raw = malloc(4 * (nx + (size_t)n + (size_t)n * k));
    float *x = malloc(sizeof(float) * nx);
    if (!raw || !x || fread(raw, 4, nx + (size_t)n + (size_t)n * k, f) != nx + (size_t)n + (size_t)n * k) {
        fprintf(stderr, "harness: %s is truncated\n", argv[1]);
        return 2;
    }
    fclose(f);
    for (size_t i = 0; i < nx; i++)
        x[i] = f32(raw + 4 * i);
    const unsigned char *logits = raw + 4 * (nx + (size_t)n);
    double worst = 0;
    int bad = 0;
    for (long i = 0; i < n; i++) {
        float probs[CLASSES];
        int got = PREDICT(x + (size_t)i * isz, probs);
        /* the reference: softmax of cnnrun's logits in double */
        double z[CLASSES], m = -1e300, sum = 0;
        int best = 0;
        for (int j = 0; j < CLASSES; j++) {
            z[j] = f32(logits + 4 * ((size_t)i * k + j));
            if (z[j] > m) {
                m = z[j];
                best = j;
            }
        }
        for (int j = 0; j < CLASSES; j++)
            sum += exp(z[j] - m);
        for (int j = 0; j < CLASSES; j++) {
            double p = exp(z[j] - m) / sum, e = fabs(p - (double)probs[j]);
            if (!(e <= worst)) worst = e;
        }
        if (got != best) {
            /* only a near tie may go either way */
            double pg = exp(z[got] - m) / sum, pb = 1 / sum;
            if (!(pb - pg <= tol)) {
                printf("image %ld: class %d, cnnrun's logits say %d (%.6f vs %.6f)\n", i, got, best, pg, pb);
                bad = 1;
            }
        }
    }
    printf("%ld images, worst probability difference %.3g\n", n, worst);
    /* the batch entry point and two contexts in turns: the same bits as NAME_predict */
    float *pb = malloc(sizeof(float) * (size_t)n * CLASSES);
    int *cb = malloc(sizeof(int) * (size_t)n);
    CTX *two = malloc(2 * sizeof(CTX));
    if (!pb || !cb || !two) {
        fprintf(stderr, "harness: out of memory\n");
        return 2;
    }
    PREDICT_BATCH(&two[0], x, (int)n, pb, cb);
    for (long i = 0; i < n; i++) {
        float p1[CLASSES], p2[CLASSES];
        int k1 = PREDICT(x + (size_t)i * isz, p1);
        int k2 = PREDICT_CTX(&two[i % 2], x + (size_t)i * isz, p2);
        if (k1 != cb[i] || k2 != k1 || memcmp(p1, pb + (size_t)i * CLASSES, sizeof p1) != 0 ||
            memcmp(p1, p2, sizeof p1) != 0) {
            printf("image %ld: _predict_batch or _predict_ctx differs from _predict\n", i);
            bad = 1;
        }
    }
    free(pb);
    free(cb);
    free(two);
    free(raw);
    free(x);
    return bad || !(worst <= tol);
}
