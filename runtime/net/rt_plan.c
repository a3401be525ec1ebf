/*
 * rt_plan.c - builds the execution plan of a network description (see rt_plan.h): output
 * aliases, gradient buffers and their accumulate flags, and the fusions, in one pass forward
 * and one backward, so that the interpreter and the C generator read the same decisions.
 */
#include "rt_op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Number of layers reading the output of layer s (any src2 counts, even of a kind that
 * reads none: a conservative answer, as in rt_netdesc_pool_takes_relu). */
static int readers(const rt_netdesc *d, int s)
{
    int k = 0;
    for (int j = 1; j < d->nlayers; j++)
        k += (d->layers[j].src == s) + (d->layers[j].src2 == s);
    return k;
}

/* The activation layer that layer i's pass can run: its only reader, an activation computed
 * from its output (not one that needs its input, such as silu); 0 when there is none. */
static int fusable_act(const rt_netdesc *d, int i, rt_act *act, float *alpha)
{
    if (readers(d, i) != 1)
        return 0;
    for (int j = i + 1; j < d->nlayers; j++) {
        const rt_layer *A = &d->layers[j];
        if (A->src != i && A->src2 != i)
            continue;
        *act = rt_layer_act(A);
        *alpha = A->alpha;
        return A->src == i && (rt_op_of(A->kind)->flags & RT_OP_IS_ACT) &&
                       *act != RT_ACT_NONE && !rt_act_needs_input(*act)
                   ? j
                   : 0;
    }
    return 0;
}

/* The conv that ends the body of residual add a (its src): the src itself, or the conv
 * before a batchnorm folded into it with no activation; 0 when there is none. */
static int body_conv(const rt_netdesc *d, const rt_plan *p, int a)
{
    const int c = d->layers[a].src;
    if (c < 1)
        return 0;
    const rt_layer *C = &d->layers[c];
    if (C->kind == RT_BATCHNORM && C->src > 0 && p->steps[C->src - 1].bn_fold == c &&
        p->steps[C->src - 1].fold_act == RT_ACT_NONE)
        return C->src;
    return C->kind == RT_CONV && rt_layer_act(C) == RT_ACT_NONE ? c : 0;
}

int rt_plan_build(const rt_netdesc *d, rt_plan *p, char *err)
{
    memset(p, 0, sizeof *p);
    int nl = d->nlayers;
    p->nlayers = nl;
    p->nsteps = nl - 1;
    p->steps = calloc((size_t)nl, sizeof *p->steps);
    p->own = calloc((size_t)nl, sizeof *p->own);
    p->own_grad = calloc((size_t)nl, sizeof *p->own_grad);
    int *ginit = calloc((size_t)nl, sizeof *ginit);
    if (!p->steps || !p->own || !p->own_grad || !ginit) {
        free(ginit);
        rt_plan_free(p);
        if (err)
            snprintf(err, RT_ERRLEN, "out of memory building the execution plan");
        return -1;
    }
    /* fusion: a batchnorm, or a residual add, whose only reader is an activation computed
     * from its output (relu, leaky relu, sigmoid, tanh...) runs it in its own pass, forward
     * and backward; the activation layer becomes an alias of its output (below) */
    for (int i = 1; i < nl; i++) {
        rt_kind k = d->layers[i].kind;
        rt_act act;
        float alpha;
        int j = (k == RT_BATCHNORM || k == RT_ADD) ? fusable_act(d, i, &act, &alpha) : 0;
        if (!j)
            continue;
        rt_step *s = &p->steps[i - 1];
        if (k == RT_BATCHNORM)
            s->bn_act_layer = j, s->bn_act = act, s->bn_alpha = alpha;
        else
            s->add_act_layer = j, s->add_act = act, s->add_alpha = alpha;
        p->steps[j - 1].act_fused = 1;
    }
    /* fusion, inference only: a conv without activation whose only reader is a batchnorm
     * gets that batchnorm's evaluation transform folded into its weights and bias, and runs
     * the activation the batchnorm fused (none, or one the conv's epilogue computes from
     * its output as the batchnorm would); the batchnorm then copies nothing */
    for (int i = 1; i < nl; i++) {
        const rt_layer *B = &d->layers[i];
        if (B->kind != RT_BATCHNORM || B->src < 1)
            continue;
        const rt_layer *C = &d->layers[B->src];
        if (C->kind != RT_CONV || rt_layer_act(C) != RT_ACT_NONE || readers(d, B->src) != 1)
            continue;
        rt_step *cs = &p->steps[B->src - 1];
        cs->bn_fold = i;
        cs->fold_act = p->steps[i - 1].bn_act_layer ? p->steps[i - 1].bn_act : RT_ACT_NONE;
        cs->fold_alpha = p->steps[i - 1].bn_alpha;
    }
    /* fusion, inference only: a residual add whose summand from the body is a conv with
     * no activation (or the batchnorm folded into one, with none), read by the add alone,
     * and whose other summand is made before that conv, is computed by the conv: the
     * conv's epilogue adds the other summand and applies the add's activation (one the
     * epilogue computes), or a pass after the conv does where its tiles cannot
     * (rt_conv2d_forward_res); same bits as the conv, then the add */
    for (int i = 1; i < nl; i++) {
        const rt_layer *A = &d->layers[i];
        if (A->kind != RT_ADD || A->src < 1 || A->src2 < 0 || readers(d, A->src) != 1)
            continue;
        const int c = body_conv(d, p, i);
        rt_act act = p->steps[i - 1].add_act_layer ? p->steps[i - 1].add_act : RT_ACT_NONE;
        if (!c || A->src2 >= c || !rt_act_in_epilogue(act))
            continue;
        p->steps[c - 1].res_add = i;
        p->steps[c - 1].res_act = act;
        p->steps[c - 1].res_alpha = p->steps[i - 1].add_alpha;
    }
    /* fusion: a conv whose only reader is a pooling over windows runs that pooling's
     * forward itself, on each run of images as soon as it has computed it (the pooling
     * then reads the conv's output from cache, not memory); same bits */
    for (int i = 1; i < nl; i++) {
        const rt_layer *Q = &d->layers[i];
        if ((Q->kind != RT_MAXPOOL && Q->kind != RT_AVGPOOL) || Q->src < 1 ||
            d->layers[Q->src].kind != RT_CONV || readers(d, Q->src) != 1)
            continue;
        p->steps[Q->src - 1].pool_layer = i;
        p->steps[i - 1].pool_by_src = 1;
    }
    /* forward: where each output lives */
    for (int i = 1; i < nl; i++) {
        const rt_layer *L = &d->layers[i];
        rt_step *s = &p->steps[i - 1];
        const int bc = L->kind == RT_ADD ? body_conv(d, p, i) : 0;
        s->layer = i;
        s->ybuf = i;
        if (L->kind == RT_FLATTEN || (L->kind == RT_DROPOUT && !(L->p > 0.0f)) ||
            s->act_fused)
            s->alias = RT_ALIAS_ALWAYS;
        else if (L->kind == RT_DROPOUT)
            s->alias = RT_ALIAS_EVAL;
        else if ((L->kind == RT_BATCHNORM && L->src > 0 &&
                  p->steps[L->src - 1].bn_fold == i) ||
                 (bc && p->steps[bc - 1].res_add == i)) /* (an add the conv computes) */
            s->alias = RT_ALIAS_INFER;
        if (s->alias == RT_ALIAS_ALWAYS)
            s->ybuf = L->src == 0 ? 0 : p->steps[L->src - 1].ybuf;
        p->own[i] = s->alias != RT_ALIAS_ALWAYS;
        s->pool_with_relu = rt_netdesc_pool_takes_relu(d, i);
        if (s->pool_with_relu)
            p->steps[L->src - 1].relu_by_pool = 1;
    }
    /* fusion, backward: a conv that reads the network's input (it makes no dx) and runs
     * the max pooling after it (pool_layer) that applies its relu's backward makes that
     * pooling's gradient itself, a block of channels of one image at a time, right before
     * its weight gradient reads it (rt_conv2d_backward_pool); same bits */
    for (int i = 1; i < nl; i++) {
        rt_step *s = &p->steps[i - 1];
        int q = s->pool_layer;
        if (q && d->layers[i].src == 0 && d->layers[q].kind == RT_MAXPOOL &&
            p->steps[q - 1].pool_with_relu) {
            s->pool_bwd = q;
            p->steps[q - 1].bwd_by_src = 1;
        }
    }
    /* gradient buffers: a pure pass (flatten, dropout with p = 0) that is its source's only
     * reader hands its gradient buffer to the source, so it has nothing to do */
    for (int i = 1; i < nl; i++) {
        const rt_layer *L = &d->layers[i];
        rt_step *s = &p->steps[i - 1];
        s->pass = s->alias == RT_ALIAS_ALWAYS && L->src > 0 && readers(d, L->src) == 1;
        s->dybuf = s->pass ? p->steps[L->src - 1].dybuf : i;
        p->own_grad[i] = !s->pass;
    }
    /* backward, in reverse order: which outputs get a gradient, which writes add */
    p->steps[nl - 2].grad = 1;
    ginit[p->steps[nl - 2].dybuf] = 1;
    for (int i = nl - 1; i >= 1; i--) {
        rt_step *s = &p->steps[i - 1];
        const rt_layer *L = &d->layers[i];
        const rt_op *op = rt_op_of(L->kind);
        s->dxbuf = s->dx2buf = -1;
        if (!s->grad)
            continue;
        if (L->src > 0) {
            rt_step *src = &p->steps[L->src - 1];
            s->dxbuf = src->dybuf;
            s->acc = s->pass ? 0 : ginit[s->dxbuf];
            ginit[s->dxbuf] = 1;
            src->grad = 1;
        }
        if ((op->flags & RT_OP_TWO_IN) && L->src2 > 0) {
            rt_step *src2 = &p->steps[L->src2 - 1];
            s->dx2buf = src2->dybuf;
            s->acc2 = ginit[s->dx2buf];
            ginit[s->dx2buf] = 1;
            src2->grad = 1;
        }
    }
    free(ginit);
    return 0;
}

void rt_plan_free(rt_plan *p)
{
    free(p->steps);
    free(p->own);
    free(p->own_grad);
    memset(p, 0, sizeof *p);
}

void rt_plan_unfold(rt_plan *p)
{
    for (int k = 0; k < p->nsteps; k++) {
        rt_step *s = &p->steps[k];
        s->bn_fold = s->res_add = 0;
        s->fold_act = s->res_act = RT_ACT_NONE;
        s->res_alpha = 0.0f;
        s->pool_layer = s->pool_by_src = s->pool_bwd = s->bwd_by_src = 0;
        if (s->alias == RT_ALIAS_INFER)
            s->alias = RT_ALIAS_NONE; /* own[] already gives it its buffer */
    }
}

const rt_step *rt_plan_step(const rt_plan *p, int i)
{
    return i >= 1 && i < p->nlayers ? &p->steps[i - 1] : NULL;
}

void rt_plan_print(const rt_plan *p, const rt_netdesc *d, FILE *f)
{
    static const char *const ALIAS[] = {"", " (alias of its input: no copy)",
                                        " (alias of its input when not training)",
                                        " (inference: computed by the conv before it, no copy)"};
    fprintf(f, "forward (x0: the network's input)\n");
    for (int k = 0; k < p->nsteps; k++) {
        const rt_step *s = &p->steps[k];
        const rt_layer *L = &d->layers[s->layer];
        const rt_op *op = rt_op_of(L->kind);
        int in = L->src > 0 ? p->steps[L->src - 1].ybuf : 0;
        fprintf(f, "  %3d %-13s line %-4d y%d <- %s%d", s->layer, rt_kind_name(L->kind), L->line,
                s->ybuf, in ? "y" : "x", in);
        if (op->flags & RT_OP_TWO_IN) {
            int in2 = L->src2 > 0 ? p->steps[L->src2 - 1].ybuf : 0;
            fprintf(f, ", %s%d", in2 ? "y" : "x", in2);
        }
        fprintf(f, "%s%s", ALIAS[s->alias],
                s->act_fused ? " (computed by the layer before it, in the same pass)" : "");
        if (s->bn_act_layer || s->add_act_layer)
            fprintf(f, " (with layer %d's activation in the same pass)",
                    s->bn_act_layer ? s->bn_act_layer : s->add_act_layer);
        if (s->bn_fold)
            fprintf(f, " (inference: with layer %d's batchnorm folded into its weights%s)",
                    s->bn_fold, s->fold_act != RT_ACT_NONE ? " and its activation" : "");
        if (s->res_add)
            fprintf(f, " (inference: with layer %d's residual add%s, in its epilogue or a "
                       "pass after it)",
                    s->res_add, s->res_act != RT_ACT_NONE ? " and its activation" : "");
        if (s->pool_layer)
            fprintf(f, " (then layer %d's pooling, run of images by run of images)",
                    s->pool_layer);
        if (s->pool_by_src)
            fprintf(f, " (computed by the conv before it)");
        fputc('\n', f);
    }
    fprintf(f, "backward\n");
    for (int k = p->nsteps - 1; k >= 0; k--) {
        const rt_step *s = &p->steps[k];
        const rt_layer *L = &d->layers[s->layer];
        fprintf(f, "  %3d %-13s line %-4d ", s->layer, rt_kind_name(L->kind), L->line);
        if (!s->grad) {
            fprintf(f, "no gradient: its parameter gradients are zero\n");
            continue;
        }
        fprintf(f, "dy%d", s->dybuf);
        if (s->bwd_by_src) {
            fprintf(f, " (done by the conv before it, with its source's relu backward)\n");
            continue;
        }
        if (s->pass)
            fprintf(f, " (its input's gradient buffer: nothing to do)");
        if (s->dxbuf >= 0 && !s->pass)
            fprintf(f, " -> dy%d %s", s->dxbuf, s->acc ? "+=" : "=");
        if (s->dx2buf >= 0)
            fprintf(f, ", dy%d %s", s->dx2buf, s->acc2 ? "+=" : "=");
        if (s->pool_bwd)
            fprintf(f, " (with layer %d's max pooling and relu backward, image by image)",
                    s->pool_bwd);
        else if (s->relu_by_pool)
            fprintf(f, " (relu backward done by the max pooling after it)");
        if (s->pool_with_relu)
            fprintf(f, " (with its source's relu backward)");
        if (s->bn_act_layer || s->add_act_layer)
            fprintf(f, " (after layer %d's activation backward, in the same pass)",
                    s->bn_act_layer ? s->bn_act_layer : s->add_act_layer);
        fputc('\n', f);
    }
}
