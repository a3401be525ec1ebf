/*
 * util.c - allocation that never returns NULL, growable arrays, and whole-file reads:
 * the few services every stage of the compiler uses.
 */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n)
{
    fprintf(stderr, "cnnc: out of memory (asked for %zu bytes)\n", n);
    exit(1);
}

void *cnn_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) out_of_memory(n);
    return p;
}

void *cnn_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) out_of_memory(n * size);
    return p;
}

void *cnn_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) out_of_memory(n);
    return q;
}

char *cnn_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(cnn_xmalloc(n), s, n);
}

void cnn_grow(void **arr, int *cap, int n, size_t elem)
{
    if (n < *cap) return;
    int c = *cap ? *cap : 4;
    while (c <= n) c *= 2;
    *arr = cnn_xrealloc(*arr, (size_t)c * elem);
    *cap = c;
}

char *cnn_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = cnn_xmalloc(cap + 1);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        cap *= 2;
        buf = cnn_xrealloc(buf, cap + 1);
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
