/*
 * frontend.h - the whole front end in one call: read a .cnn file, parse it, expand it
 * and infer its shapes. Drivers and tests start here.
 */
#ifndef CNN_FRONTEND_H
#define CNN_FRONTEND_H

#include <stdio.h>

#include "ir.h"

/* Compiles path (or, when text is not NULL, the given text under the name path) into
 * net. Diagnostics go to errout. Returns 0, or the number of errors (> 0). */
int cnn_compile(const char *path, const char *text, size_t len, ir_net *net, FILE *errout);

#endif
