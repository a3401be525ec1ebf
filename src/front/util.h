/*
 * util.h - small helpers used across the compiler: allocation that never returns NULL
 * (out of memory ends the program with a message), and growable arrays.
 */
#ifndef CNN_UTIL_H
#define CNN_UTIL_H

#include <stddef.h>

void *cnn_xmalloc(size_t n);
void *cnn_xcalloc(size_t n, size_t size);
void *cnn_xrealloc(void *p, size_t n);
char *cnn_xstrdup(const char *s);
/* Grows *arr (of elements of size elem) so that index n fits; *cap tracks capacity. */
void cnn_grow(void **arr, int *cap, int n, size_t elem);
/* Reads a whole file; returns NULL and sets errno on failure. Adds a NUL after the data. */
char *cnn_read_file(const char *path, size_t *len);

#endif
