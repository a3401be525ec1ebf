/*
 * rt_memplan.h - the static memory plans (rt_memplan.c) of inference and of training: one
 * arena, each buffer at an offset, its place reused once nothing reads it any more.
 */
#ifndef RT_MEMPLAN_H
#define RT_MEMPLAN_H

#include "rt_plan.h"

typedef struct {
    int *buf;           /* per layer: the layer whose storage holds its output (0: the input) */
    long *out_off;      /* per layer: its storage's offset in floats, -1 when it has none */
    long *tmp_off;      /* per layer: its scratch's offset, -1 when it has none (inference) */
    long *grad_off;     /* per layer: its gradient storage's offset, -1 when none (training) */
    long total;         /* floats of the arena, for one image */
    long naive;         /* floats without reuse (every output and scratch of its own) */
} rt_memplan;

/* Plans one image's inference of d under plan p; tmp_floats[i] (may be NULL) is layer i's
 * scratch. Returns 0, or -1 with err set (out of memory). */
int rt_memplan_infer(const rt_netdesc *d, const rt_plan *p, const long *tmp_floats, rt_memplan *m, char *err);
/* Plans training (forward, loss, backward) of d under p: out_off for every layer that owns
 * an output (p->own), grad_off for every one that owns a gradient buffer (p->own_grad), in
 * floats per image (multiply by the batch); buf[i] is the layer whose storage holds layer
 * i's output while training (-1: the network's input). Returns 0, or -1 with err set. */
int rt_memplan_train(const rt_netdesc *d, const rt_plan *p, rt_memplan *m, char *err);
void rt_memplan_free(rt_memplan *m);

#endif
