/*
 * shape.h - shape inference, the one place that computes output sizes, padding for
 * `same`, parameter offsets and counts, and FLOPs. Everything else reads its results.
 */
#ifndef CNN_SHAPE_H
#define CNN_SHAPE_H

#include "diag.h"
#include "ir.h"

/* The lecture's output size rule: floor((n - k + p_total + s) / s), or 0 when k > n + p. */
int shape_out_size(int n, int k, int p_total, int s);
/* Padding that makes the output ceil(n / s) ("same"): total pixels, split before/after. */
void shape_same_pad(int n, int k, int s, int *before, int *after);
/* Resolves every node of net. Returns 0, or -1 after reporting to diag. */
int shape_infer(ir_net *net, cnn_diag *diag);

#endif
