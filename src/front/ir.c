/*
 * ir.c - the IR's list operations and its conversion to the runtime's network
 * description, which the interpreter executes.
 */
#include "ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void ir_init(ir_net *net)
{
    memset(net, 0, sizeof *net);
    rt_train_cfg_defaults(&net->train);
}

ir_node *ir_add(ir_net *net)
{
    cnn_grow((void **)&net->nodes, &net->cap, net->n, sizeof *net->nodes);
    ir_node *n = &net->nodes[net->n++];
    memset(n, 0, sizeof *n);
    n->L.src = net->n - 2;
    n->L.src2 = -1;
    n->L.sh = n->L.sw = 1;
    n->L.kh = n->L.kw = 1;
    return n;
}

void ir_free(ir_net *net)
{
    free(net->nodes);
    net->nodes = NULL;
    net->n = net->cap = 0;
    free(net->ctxs);
    net->ctxs = NULL;
    net->nctx = net->capctx = 0;
}

int ir_add_ctx(ir_net *net, cnn_loc loc, const char *text, int pass, int up)
{
    cnn_grow((void **)&net->ctxs, &net->capctx, net->nctx, sizeof *net->ctxs);
    ir_ctx *c = &net->ctxs[net->nctx++];
    memset(c, 0, sizeof *c);
    c->loc = loc;
    snprintf(c->text, sizeof c->text, "%s", text);
    c->pass = pass;
    c->up = up;
    return net->nctx;
}

void ir_note_ctx(const ir_net *net, int ctx, cnn_diag *diag)
{
    for (int guard = 0; ctx > 0 && ctx <= net->nctx && guard < 128; guard++) {
        const ir_ctx *c = &net->ctxs[ctx - 1];
        if (c->pass > 0)
            diag_note(diag, c->loc, "in pass %d of `%s` at line %d", c->pass, c->text, c->loc.line);
        else
            diag_note(diag, c->loc, "in call `%s` at line %d", c->text, c->loc.line);
        ctx = c->up;
    }
}

int ir_to_desc(const ir_net *net, rt_netdesc *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", net->name);
    d->nlayers = net->n;
    d->layers = cnn_xcalloc((size_t)net->n, sizeof *d->layers);
    for (int i = 0; i < net->n; i++) {
        d->layers[i] = net->nodes[i].L;
        const rt_layer *L = &d->layers[i];
        if (L->w_off + L->w_len > d->nparams) d->nparams = L->w_off + L->w_len;
        if (L->b_off + L->b_len > d->nparams) d->nparams = L->b_off + L->b_len;
        if (L->s_off + L->s_len > d->nstate) d->nstate = L->s_off + L->s_len;
    }
    d->hash = rt_netdesc_hash(d);
    return 0;
}

void ir_desc_free(rt_netdesc *d)
{
    free(d->layers);
    d->layers = NULL;
}

const char *ir_kind_name(rt_kind k)
{
    const char *n = rt_kind_name(k);
    return n ? n : "?";
}

const char *ir_act_name(rt_act a)
{
    const char *n = a == RT_ACT_NONE ? "" : rt_act_name(a);
    return n ? n : "?";
}
