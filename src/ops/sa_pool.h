/*
 * sa_pool.h - the standalone file's fast loops for a pooling whose windows all lie inside
 * its input (sa_pool.c); pool.c prints its general loops for the rest.
 */
#ifndef CNN_SA_POOL_H
#define CNN_SA_POOL_H

#include <stdio.h>

#include "rt_op.h"

/* Prints the loops of max/avg pooling L from buffer expression in to y when no window
 * reaches outside the input (no padding) and returns 1; returns 0 and prints nothing
 * otherwise. */
int sa_pool_emit_inside(FILE *o, const rt_layer *L, const char *in, const char *y);

#endif
