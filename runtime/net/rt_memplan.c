/*
 * rt_memplan.c - the static memory plan of inference: every layer's output (and scratch)
 * gets an offset in one arena, reused once nothing reads it any more. Buffers are placed in
 * the plan's order, each at the lowest offset that no buffer alive at the same time
 * overlaps (first fit); flatten and eval-mode dropout read their input's buffer and need
 * none. The standalone file's context is this arena; cnnc --summary reports its size. The
 * interpreter and the compiled program lay the outputs of an inference-only forward
 * (RT_INFER, no backward follows) out by it too, inside their training arena, so that a
 * layer writes into a place whose data is still in cache instead of a buffer of its own.
 *
 * Training has a plan of its own (rt_memplan_train): every output the backward pass reads
 * stays until then, but a gradient buffer lives only from its first write to the backward
 * step that consumes it, so gradients take the place of outputs already used up. The
 * interpreter and the compiled program both lay their buffers out by it.
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
            /* a pooling run by the conv before it (rt_step.pool_by_src) is written then */
            int from = rt_plan_step(p, i)->pool_by_src ? L->src : i;
            m->naive += round16(size);
            long off = first_fit(b, nb, round16(size), from, last[i]);
            b[nb++] = (block){off, round16(size), from, last[i]};
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

/* Widens block b's lifetime to time t. */
static void touch(int *from, int *to, int b, int t)
{
    if (b < 0)
        return;
    if (t < from[b])
        from[b] = t;
    if (t > to[b])
        to[b] = t;
}

int rt_memplan_train(const rt_netdesc *d, const rt_plan *p, rt_memplan *m, char *err)
{
    const int n = d->nlayers, nb = 2 * n; /* block i: layer i's output; n + i: its gradient */
    memset(m, 0, sizeof *m);
    m->out_off = malloc(sizeof(long) * (size_t)n);
    m->grad_off = malloc(sizeof(long) * (size_t)n);
    m->buf = malloc(sizeof(int) * (size_t)n);
    int *from = malloc(sizeof(int) * (size_t)nb), *to = malloc(sizeof(int) * (size_t)nb);
    int *order = malloc(sizeof(int) * (size_t)nb);
    block *b = malloc(sizeof(block) * (size_t)nb);
    if (!m->out_off || !m->grad_off || !m->buf || !from || !to || !order || !b) {
        free(from);
        free(to);
        free(order);
        free(b);
        rt_memplan_free(m);
        snprintf(err, RT_ERRLEN, "out of memory");
        return -1;
    }
    /* the storage holding each layer's output while training (-1: the network's input) */
    m->buf[0] = -1;
    for (int i = 1; i < n; i++)
        m->buf[i] = p->own[i] ? i : m->buf[d->layers[i].src];
    for (int k = 0; k < nb; k++) {
        from[k] = 1 << 30;
        to[k] = -1;
    }
    /* time i: layer i's forward; n: the loss; 2n - i: layer i's backward */
    for (int i = 1; i < n; i++) {
        const rt_layer *L = &d->layers[i];
        touch(from, to, m->buf[i], i);
        if (rt_plan_step(p, i)->pool_layer) /* written by this conv too */
            touch(from, to, m->buf[rt_plan_step(p, i)->pool_layer], i);
        touch(from, to, m->buf[L->src], i);
        if (L->src2 >= 0)
            touch(from, to, m->buf[L->src2], i);
    }
    touch(from, to, m->buf[n - 1], n);
    touch(from, to, n + rt_plan_step(p, n - 1)->dybuf, n);
    for (int i = n - 1; i >= 1; i--) {
        const rt_step *s = rt_plan_step(p, i);
        const rt_layer *L = &d->layers[i];
        const int t = 2 * n - i;
        if (!s->grad)
            continue;
        touch(from, to, n + s->dybuf, t);
        if (s->pool_bwd) /* the pooling's gradient, read by this conv (rt_step.pool_bwd) */
            touch(from, to, n + rt_plan_step(p, s->pool_bwd)->dybuf, t);
        if (s->dxbuf >= 0)
            touch(from, to, n + s->dxbuf, t);
        if (s->dx2buf >= 0)
            touch(from, to, n + s->dx2buf, t);
        touch(from, to, m->buf[i], t);
        touch(from, to, m->buf[L->src], t);
        if (L->src2 >= 0)
            touch(from, to, m->buf[L->src2], t);
    }
    /* place the blocks in the order they come alive (insertion sort: a few hundred) */
    int no = 0;
    for (int k = 0; k < nb; k++) {
        int owner = k % n;
        int owned = k < n ? owner > 0 && p->own[owner] : owner > 0 && p->own_grad[owner];
        if (!owned || to[k] < 0)
            continue;
        int j = no++;
        while (j > 0 && from[order[j - 1]] > from[k]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
    for (int i = 0; i < n; i++)
        m->out_off[i] = m->grad_off[i] = -1;
    int placed = 0;
    for (int j = 0; j < no; j++) {
        int k = order[j], owner = k % n;
        const rt_layer *L = &d->layers[owner];
        long size = round16((long)L->out.c * L->out.h * L->out.w);
        long off = first_fit(b, placed, size, from[k], to[k]);
        b[placed++] = (block){off, size, from[k], to[k]};
        m->naive += size;
        if (off + size > m->total)
            m->total = off + size;
        if (k < n)
            m->out_off[owner] = off;
        else
            m->grad_off[owner] = off;
    }
    /* buffers nothing touches (a gradient no layer needs) still get a valid place */
    for (int i = 1; i < n; i++) {
        if (p->own[i] && m->out_off[i] < 0)
            m->out_off[i] = 0;
        if (p->own_grad[i] && m->grad_off[i] < 0)
            m->grad_off[i] = 0;
    }
    free(from);
    free(to);
    free(order);
    free(b);
    return 0;
}

void rt_memplan_free(rt_memplan *m)
{
    free(m->grad_off);
    free(m->buf);
    free(m->out_off);
    free(m->tmp_off);
    memset(m, 0, sizeof *m);
}
