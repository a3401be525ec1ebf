/*
 * sa_bench.c - times a standalone file's NAME_predict (cnnc --standalone) one image at a
 * time on one thread, the way a deployed classifier runs it: built by
 * bench/standalone_bench.sh as
 *   cc -O2 -DSA_FILE='"net_sa.c"' -DSA_NAME=net sa_bench.c -lm
 *   ./sa_bench IMAGES      prints "sa images/s R" (the best of 5 passes over IMAGES images)
 */
#define _POSIX_C_SOURCE 200809L
#include SA_FILE

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define PREDICT CAT(SA_NAME, _predict)
#define ISZ (CAT(SA_NAME, _INPUT_C) * CAT(SA_NAME, _INPUT_H) * CAT(SA_NAME, _INPUT_W))
#define CLASSES CAT(SA_NAME, _CLASSES)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    if (n < 1) n = 1;
    float *x = malloc(sizeof(float) * ISZ * 8);
    if (!x) return 2;
    unsigned s = 12345;
    for (long i = 0; i < (long)ISZ * 8; i++) { /* 8 distinct pseudo-random images in [0, 1] */
        s = s * 1103515245u + 12345u;
        x[i] = (float)((s >> 8) & 0xffff) / 65535.0f;
    }
    float probs[CLASSES];
    double best = 1e30;
    long sum = 0;
    for (int pass = 0; pass < 5; pass++) {
        double t = now();
        for (int i = 0; i < n; i++)
            sum += PREDICT(x + (size_t)(i % 8) * ISZ, probs);
        t = now() - t;
        if (t < best) best = t;
    }
    printf("sa images/s %.1f (classes sum %ld)\n", n / best, sum);
    free(x);
    return 0;
}
