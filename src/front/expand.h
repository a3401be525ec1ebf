/*
 * expand.h - turns the syntax tree into the IR: block definitions are collected, calls,
 * repeats and residuals expanded, each layer statement checked by the layer table, and
 * the train { } section read. Shapes are left to shape.c.
 */
#ifndef CNN_EXPAND_H
#define CNN_EXPAND_H

#include "ast.h"
#include "ir.h"

/* Upper bound on expanded layers, so that `repeat 1000000000 { ... }` is an error. */
#define CNN_MAX_LAYERS 100000

/* default_name: the network name when the file has no `network` statement.
 * Returns 0, or -1 when errors were reported to diag. */
int cnn_expand(const ast_stmt *program, const char *default_name, ir_net *net, cnn_diag *diag);

#endif
