/*
 * rt_memplan.c - the static memory plan of inference: every layer's output (and scratch)
 * gets an offset in one arena, reused once nothing reads it any more. Buffers are placed in
 * the plan's order, each at the lowest offset that no buffer alive at the same time
 * overlaps (first fit); flatten and eval-mode dropout read their input's buffer and need
 * none. The standalone file's context is this arena; cnnc --summary reports its size.
 */
#include "rt_memplan.h"

#include <stdlib.h>
#include <string.h>

/* Sizes are rounded up to 16 floats so that every buffer starts 64-byte aligned. */
static long round16(long n) { return (n + 15) / 16 * 16; }

typedef struct { long off, size; int from, to; } block;

/* Lowest offset for a block of size alive [from, to] among the placed blocks. */
static long first_fit(const block *b, int nb, long size, int from, int to)
{
    long off = 0;
    for (int moved = 1; moved;) {
        moved = 0;
        for (int k = 0; k < nb; k++)
            if (b[k].from <= to && from <= b[k].to && b[k].off < off + size && off < b[k].off + b[k].size) {
                off = b[k].off + b[k].size;
                moved = 1;
            }
    }
    return off;
}

int rt_memplan_infer(const rt_netdesc *d, const rt_plan *p, const long *tmp_floats, rt_memplan *m, char *err)
{
    const int n = d->nlayers;
    memset(m, 0, sizeof *m);
    m->buf = malloc(sizeof(int) * (size_t)n);
    m->out_off = malloc(sizeof(long) * (size_t)n);
    m->tmp_off = malloc(sizeof(long) * (size_t)n);
    int *last = malloc(sizeof(int) * (size_t)n);
    block *b = malloc(sizeof(block) * (size_t)(2 * n));
    if (!m->buf || !m->out_off || !m->tmp_off || !last || !b) {
        free(last);
        free(b);
        rt_memplan_free(m);
        snprintf(err, RT_ERRLEN, "out of memory");
        return -1;
    }
    /* which layer's storage holds each output, and the last step that reads it */
    for (int i = 0; i < n; i++) {
        const rt_layer *L = &d->layers[i];
        m->buf[i] = i > 0 && rt_plan_step(p, i)->alias != RT_ALIAS_NONE ? m->buf[L->src] : i;
        last[i] = i;
        m->out_off[i] = m->tmp_off[i] = -1;
    }
    for (int i = 1; i < n; i++) {
        const rt_layer *L = &d->layers[i];
        if (last[m->buf[L->src]] < i) last[m->buf[L->src]] = i;
        if (L->src2 >= 0 && last[m->buf[L->src2]] < i) last[m->buf[L->src2]] = i;
    }
    last[m->buf[n - 1]] = n; /* the result is read after the last step */
    int nb = 0;
    for (int i = 1; i < n; i++) {
        const rt_layer *L = &d->layers[i];
        long size = (long)L->out.c * L->out.h * L->out.w;
        if (m->buf[i] == i) {
            m->naive += round16(size);
            long off = first_fit(b, nb, round16(size), i, last[i]);
            b[nb++] = (block){off, round16(size), i, last[i]};
            m->out_off[i] = off;
        }
        long t = tmp_floats ? tmp_floats[i] : 0;
        if (t > 0) {
            m->naive += round16(t);
            long off = first_fit(b, nb, round16(t), i, i);
            b[nb++] = (block){off, round16(t), i, i};
            m->tmp_off[i] = off;
        }
    }
    for (int k = 0; k < nb; k++)
        if (b[k].off + b[k].size > m->total) m->total = b[k].off + b[k].size;
    free(last);
    free(b);
    return 0;
}

void rt_memplan_free(rt_memplan *m)
{
    free(m->buf);
    free(m->out_off);
    free(m->tmp_off);
    memset(m, 0, sizeof *m);
}
