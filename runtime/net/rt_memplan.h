/*
 * rt_memplan.h - the static memory plan of inference (rt_memplan.c): one arena, each
 * layer's output and scratch at an offset, reused once nothing reads it.
 */
#ifndef RT_MEMPLAN_H
#define RT_MEMPLAN_H

#include "rt_plan.h"

typedef struct {
    int *buf;           /* per layer: the layer whose storage holds its output (0: the input) */
    long *out_off;      /* per layer: its storage's offset in floats, -1 when it has none */
    long *tmp_off;      /* per layer: its scratch's offset, -1 when it has none */
    long total;         /* floats of the arena, for one image */
    long naive;         /* floats without reuse (every output and scratch of its own) */
} rt_memplan;

/* Plans one image's inference of d under plan p; tmp_floats[i] (may be NULL) is layer i's
 * scratch. Returns 0, or -1 with err set (out of memory). */
int rt_memplan_infer(const rt_netdesc *d, const rt_plan *p, const long *tmp_floats, rt_memplan *m, char *err);
void rt_memplan_free(rt_memplan *m);

#endif
