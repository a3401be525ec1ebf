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

/* Padding, then the output size of a windowed layer (conv or pooling). */
static int window(infer *in, ir_node *n)
{
    rt_layer *L = &n->L;
    if (n->spec.pad_same) {
        shape_same_pad(L->in.h, L->kh, L->sh, &L->pt, &L->pb);
        shape_same_pad(L->in.w, L->kw, L->sw, &L->pl, &L->pr);
    } else {
        L->pt = L->pb = n->spec.ph;
        L->pl = L->pr = n->spec.pw;
    }
    int bad = 0;
    if (L->kind == RT_CONV && (L->padmode == RT_PAD_REFLECT || L->padmode == RT_PAD_CIRCULAR)) {
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
    if ((L->kind == RT_MAXPOOL || L->kind == RT_AVGPOOL) &&
        (L->pt > L->kh / 2 || L->pb > L->kh / 2 || L->pl > L->kw / 2 || L->pr > L->kw / 2)) {
        diag_error(in->diag, n->loc, "pooling padding can be at most half the window (as in PyTorch)",
                   "padding %dx%d is too large for a %dx%d window", L->pt > L->pb ? L->pt : L->pb,
                   L->pl > L->pr ? L->pl : L->pr, L->kh, L->kw);
        bad = 1;
    }
    if (L->in.h + L->pt + L->pb < L->kh || L->in.w + L->pl + L->pr < L->kw) {
        char hint[160];
        snprintf(hint, sizeof hint, "the input here is %dx%dx%d; use a smaller window, pad=same, or fewer "
                 "size-reducing layers before it", L->in.c, L->in.h, L->in.w);
        diag_error(in->diag, n->loc, hint, "the %dx%d window is larger than its %dx%d input%s", L->kh, L->kw,
                   L->in.h, L->in.w, (L->pt + L->pb + L->pl + L->pr) ? " (with padding)" : "");
        note_shrink(in, L->src);
        return -1;
    }
    if (bad) return -1;
    L->out.h = shape_out_size(L->in.h, L->kh, L->pt + L->pb, L->sh);
    L->out.w = shape_out_size(L->in.w, L->kw, L->pl + L->pr, L->sw);
    return 0;
}

static int node_shape(infer *in, int i, size_t *poff, size_t *soff)
{
    ir_node *n = &in->net->nodes[i];
    rt_layer *L = &n->L;
    if (L->kind != RT_INPUT) L->in = in->net->nodes[L->src].L.out;
    rt_shape x = L->in;
    double nin = elems(x);
    n->params = 0;
    switch (L->kind) {
    case RT_INPUT:
        L->in = L->out;
        break;
    case RT_CONV:
        if (window(in, n)) return -1;
        L->out.c = n->spec.out;
        L->w_len = (size_t)L->out.c * x.c * L->kh * L->kw;
        L->b_len = L->bias ? (size_t)L->out.c : 0;
        break;
    case RT_MAXPOOL: case RT_AVGPOOL:
        if (window(in, n)) return -1;
        L->out.c = x.c;
        break;
    case RT_GLOBALAVGPOOL: case RT_GLOBALMAXPOOL:
        L->out = (rt_shape){x.c, 1, 1};
        break;
    case RT_FLATTEN:
        L->out = (rt_shape){x.c * x.h * x.w, 1, 1};
        break;
    case RT_DENSE:
        L->out = (rt_shape){n->spec.out, 1, 1};
        L->w_len = (size_t)n->spec.out * (size_t)nin;
        L->b_len = L->bias ? (size_t)n->spec.out : 0;
        break;
    case RT_BATCHNORM:
        L->out = x;
        L->w_len = L->b_len = (size_t)x.c;
        L->s_len = 2 * (size_t)x.c;
        break;
    case RT_DROPOUT:
        L->out = x;
        break;
    case RT_ACTIVATION:
        L->out = x;
        break;
    case RT_ADD: {
        rt_shape skip = in->net->nodes[L->src2].L.out;
        if (skip.c != x.c || skip.h != x.h || skip.w != x.w) {
            diag_error(in->diag, n->loc, "a residual body must keep the shape: use pad=same, stride 1 and "
                       "the same number of channels as its input",
                       "residual body turns %dx%dx%d into %dx%dx%d; output = input + body needs equal shapes",
                       skip.c, skip.h, skip.w, x.c, x.h, x.w);
            return -1;
        }
        L->out = x;
        break;
    }
    default:
        break;
    }
    n->flops = rt_layer_flops_of(L); /* the runtime's rule, so --summary and --bench agree */
    if (elems(L->out) > (double)INT_MAX / 4 || (double)L->w_len > (double)INT_MAX) {
        diag_error(in->diag, n->loc, "make the input, the channels or the units smaller",
                   "this layer is too large (%.0f outputs, %.0f weights)", elems(L->out), (double)L->w_len);
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
    }
    free(in.shrunk_by);
    return rc;
}
