/*
 * shape.c - shape inference over the IR. For each layer in order: its input shape is
 * its producer's output; padding, output size, parameters and FLOPs follow from the
 * lecture's rule floor((n - k + p + s) / s). Errors say what the input was at that point
 * and which layer made it so small.
 *
 * FLOPs are the runtime's count (rt_layer_flops_of in cnnrt.h), the same rule --bench
 * divides by.
 */
#include "shape.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/cnn_op.h"
#include "rt_op.h"
#include "util.h"

int shape_out_size(int n, int k, int p_total, int s)
{
    long num = (long)n - k + p_total;
    if (num < 0) return 0;
    return (int)((num + s) / s);
}

void shape_same_pad(int n, int k, int s, int *before, int *after)
{
    int out = (n + s - 1) / s;
    long total = (long)(out - 1) * s + k - n;
    if (total < 0) total = 0;
    *before = (int)(total / 2);
    *after = (int)(total - total / 2);
}

static double elems(rt_shape s) { return (double)s.c * s.h * s.w; }

typedef struct {
    cnn_diag *diag;
    ir_net *net;
    int *shrunk_by;         /* per node: the last node that made the spatial size smaller */
} infer;

static void note_shrink(infer *in, int node_src)
{
    int k = node_src >= 0 ? in->shrunk_by[node_src] : -1;
    if (k > 0) {
        const ir_node *s = &in->net->nodes[k];
        diag_note(in->diag, s->loc, "the size became %dx%d here, at '%s'", s->L.out.h, s->L.out.w, s->text);
    }
}

/* Padding of a windowed layer (conv or pooling) from what the user asked for, with the
 * dilated extent d*(k-1)+1 for pad=same, and the errors the user can act on. */
static int window(infer *in, ir_node *n)
{
    rt_layer *L = &n->L;
    int dh = L->dh > 0 ? L->dh : 1, dw = L->dw > 0 ? L->dw : 1;
    int ext_h = dh * (L->kh - 1) + 1, ext_w = dw * (L->kw - 1) + 1;
    if (n->spec.pad_same) {
        shape_same_pad(L->in.h, ext_h, L->sh, &L->pt, &L->pb);
        shape_same_pad(L->in.w, ext_w, L->sw, &L->pl, &L->pr);
    } else {
        L->pt = L->pb = n->spec.ph;
        L->pl = L->pr = n->spec.pw;
    }
    int bad = 0;
    if (L->padmode == RT_PAD_REFLECT || L->padmode == RT_PAD_CIRCULAR) {
        int limit_h = L->padmode == RT_PAD_REFLECT ? L->in.h - 1 : L->in.h;
        int limit_w = L->padmode == RT_PAD_REFLECT ? L->in.w - 1 : L->in.w;
        int worst_h = L->pt > L->pb ? L->pt : L->pb, worst_w = L->pl > L->pr ? L->pl : L->pr;
        if (worst_h > limit_h || worst_w > limit_w) {
            diag_error(in->diag, n->loc,
                       L->padmode == RT_PAD_REFLECT ? "reflect padding must be smaller than the input size"
                                                    : "circular padding can be at most the input size",
                       "%s padding of %dx%d is too large for an input of %dx%d",
                       L->padmode == RT_PAD_REFLECT ? "reflect" : "circular", worst_h, worst_w, L->in.h, L->in.w);
            bad = 1;
        }
    }
    if (!(rt_op_of(L->kind)->flags & RT_OP_CONV) &&
        (L->pt > L->kh / 2 || L->pb > L->kh / 2 || L->pl > L->kw / 2 || L->pr > L->kw / 2)) {
        diag_error(in->diag, n->loc, "pooling padding can be at most half the window (as in PyTorch)",
                   "padding %dx%d is too large for a %dx%d window", L->pt > L->pb ? L->pt : L->pb,
                   L->pl > L->pr ? L->pl : L->pr, L->kh, L->kw);
        bad = 1;
    }
    if (L->in.h + L->pt + L->pb < ext_h || L->in.w + L->pl + L->pr < ext_w) {
        char hint[160];
        snprintf(hint, sizeof hint, "the input here is %dx%dx%d; use a smaller window, pad=same, or fewer "
                 "size-reducing layers before it", L->in.c, L->in.h, L->in.w);
        diag_error(in->diag, n->loc, hint, "the %dx%d window%s is larger than its %dx%d input%s", ext_h, ext_w,
                   dh > 1 || dw > 1 ? " (dilated)" : "", L->in.h, L->in.w,
                   (L->pt + L->pb + L->pl + L->pr) ? " (with padding)" : "");
        note_shrink(in, L->src);
        return -1;
    }
    return bad ? -1 : 0;
}

/* Largest parameter count of a network (see node_shape). */
#define CNN_MAX_PARAMS 1073741824.0

static int node_shape(infer *in, int i, size_t *poff, size_t *soff)
{
    ir_node *n = &in->net->nodes[i];
    rt_layer *L = &n->L;
    const rt_op *op = rt_op_of(L->kind);
    if (L->kind != RT_INPUT) L->in = in->net->nodes[L->src].L.out;
    rt_shape x = L->in, in2 = {0, 0, 0};
    if (op->flags & RT_OP_TWO_IN) in2 = in->net->nodes[L->src2].L.out;
    n->params = 0;
    if ((op->flags & RT_OP_WINDOW) && window(in, n)) return -1;
    if (n->spec.out > 0) L->out.c = n->spec.out; /* conv channels, dense units (concat: ignored) */
    char why[RT_ERRLEN];
    if (rt_layer_shape(L, in2, why) != 0) {
        const cnn_op *cop = cnn_op_of(L->kind);
        if (cop->explain) cop->explain(in->net, n, in->diag, in2, why);
        else diag_error(in->diag, n->loc, NULL, "%s", why);
        return -1;
    }
    n->flops = rt_layer_flops_of(L); /* the runtime's rule, so --summary and --bench agree */
    if (elems(L->out) > (double)INT_MAX / 4 || (double)L->w_len > (double)INT_MAX) {
        diag_error(in->diag, n->loc, "make the input, the channels or the units smaller",
                   "this layer is too large (%.0f outputs, %.0f weights)", elems(L->out), (double)L->w_len);
        return -1;
    }
    /* The whole network's parameters: training holds them four times (values, gradients,
     * Adam's two moments), so past 2^30 of them (4 GiB each) it would not fit in memory. */
    if ((double)*poff + (double)L->w_len + (double)L->b_len > CNN_MAX_PARAMS) {
        diag_error(in->diag, n->loc, "make the network smaller (fewer or narrower layers)",
                   "the network has too many parameters: %.0f up to this layer, more than the "
                   "limit of %.0f", (double)*poff + (double)L->w_len + (double)L->b_len,
                   CNN_MAX_PARAMS);
        return -1;
    }
    L->w_off = *poff;
    *poff += L->w_len;
    L->b_off = *poff;
    *poff += L->b_len;
    L->s_off = *soff;
    *soff += L->s_len;
    n->params = (long)(L->w_len + L->b_len);
    /* remember which layer last reduced the spatial size, for later messages */
    if (L->kind == RT_INPUT) in->shrunk_by[i] = -1;
    else if (L->out.h < x.h || L->out.w < x.w) in->shrunk_by[i] = i;
    else in->shrunk_by[i] = in->shrunk_by[L->src];
    return 0;
}

int shape_infer(ir_net *net, cnn_diag *diag)
{
    if (net->n == 0) return -1;
    infer in = {.diag = diag, .net = net, .shrunk_by = cnn_xcalloc((size_t)net->n, sizeof(int))};
    size_t poff = 0, soff = 0;
    int rc = 0;
    net->total_params = 0;
    net->total_flops = 0;
    net->act_bytes = 0;
    for (int i = 0; i < net->n && rc == 0; i++) {
        rc = node_shape(&in, i, &poff, &soff);
        if (rc != 0) ir_note_ctx(net, net->nodes[i].ctx, diag); /* which call, which pass */
        if (rc == 0) {
            net->total_params += net->nodes[i].params;
            net->total_flops += net->nodes[i].flops;
            net->act_bytes += 4.0 * elems(net->nodes[i].L.out);
        }
    }
    if (rc == 0) {
        for (int i = 0; i < net->n; i++) {
            const ir_node *n = &net->nodes[i];
            if (n->L.act == RT_ACT_SOFTMAX && i != net->n - 1) {
                diag_error(diag, n->loc, "softmax is folded into the cross-entropy loss; "
                           "use it only on the last layer, or leave it out",
                           "softmax is only allowed on the last layer");
                ir_note_ctx(net, n->ctx, diag);
                rc = -1;
            }
        }
        const ir_node *last = &net->nodes[net->n - 1];
        if (net->n == 1) {
            diag_error(diag, last->loc, "add layers after the input, ending in e.g. dense 10",
                       "the network has no layers after its input");
            rc = -1;
        } else if (last->L.out.h != 1 || last->L.out.w != 1) {
            char hint[160];
            snprintf(hint, sizeof hint, "end with a vector of class scores, e.g. add 'flatten' and "
                     "'dense K' for K classes, or 'globalavgpool'");
            diag_error(diag, last->loc, hint, "the network ends with a %dx%dx%d image, not a vector of "
                       "class scores", last->L.out.c, last->L.out.h, last->L.out.w);
            rc = -1;
        } else if (last->L.out.c < 2) {
            diag_error(diag, last->loc, "a classifier has at least 2 classes, e.g. dense 4",
                       "the network ends with %d output; at least 2 classes are needed", last->L.out.c);
            rc = -1;
        }
        if (net->n == 1 || last->L.out.h != 1 || last->L.out.w != 1 || last->L.out.c < 2)
            ir_note_ctx(net, last->ctx, diag);
    }
    free(in.shrunk_by);
    return rc;
}
