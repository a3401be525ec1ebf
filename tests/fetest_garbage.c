/*
 * fetest_garbage.c - writes a deterministic random input for cnnc to standard output, for
 * tests/test_robust.sh (which has no portable way to make random bytes from a fixed seed).
 *   fetest_garbage bytes|text|tokens|lines SEED SIZE
 *   fetest_garbage mutate SEED FILE       (a few random edits of FILE)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetest_fuzz.h"

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "mutate") == 0) {
        static char src[1 << 16], out[1 << 17];
        FILE *f = fopen(argv[3], "rb");
        if (!f) {
            perror(argv[3]);
            return 1;
        }
        size_t len = fread(src, 1, sizeof src, f);
        fclose(f);
        size_t n = fetest_mutate(src, len, strtoull(argv[2], NULL, 10), out, sizeof out);
        return fwrite(out, 1, n, stdout) == n ? 0 : 1;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: fetest_garbage bytes|text|tokens|lines SEED SIZE | mutate SEED FILE\n");
        return 2;
    }
    int mode = strcmp(argv[1], "bytes") == 0 ? 0 : strcmp(argv[1], "text") == 0 ? 1
             : strcmp(argv[1], "tokens") == 0 ? 2 : strcmp(argv[1], "lines") == 0 ? 3 : -1;
    unsigned long long seed = strtoull(argv[2], NULL, 10);
    long size = strtol(argv[3], NULL, 10);
    if (mode < 0 || size < 1 || size > (64L << 20)) {
        fprintf(stderr, "fetest_garbage: bad arguments\n");
        return 2;
    }
    char *buf = malloc((size_t)size + 1);
    if (!buf) return 1;
    size_t n = fetest_make(mode, seed, buf, (size_t)size + 1);
    int rc = fwrite(buf, 1, n, stdout) == n ? 0 : 1;
    free(buf);
    return rc;
}
