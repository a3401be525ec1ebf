/*
 * ir.h - the typed intermediate representation: a flat list of layers in execution
 * order (a DAG through the src/src2 indices of residual adds), blocks and repeats
 * expanded, every shape, parameter count and FLOP count resolved by shape.c.
 * Each node embeds the runtime's rt_layer, so the interpreter runs the IR as is and
 * the C emitter reads the same numbers: one source of truth for every size.
 */
#ifndef CNN_IR_H
#define CNN_IR_H

#include "cnnrt.h"
#include "diag.h"

/* What the user asked for, before shape inference turns it into pixels. */
typedef struct {
    int pad_same;           /* pad=same */
    int ph, pw;             /* pad=P / PHxPW: pixels on each side */
    int has_stride;         /* stride given (pooling defaults to the window) */
    int has_norm;           /* input: mean= or std= given (the other defaults to no change) */
    int out;                /* conv channels, dense units; concat: the number of the path it
                               joins to those before it (for messages) */
} ir_spec;

typedef struct {
    rt_layer L;             /* kind, hyper-parameters; shapes and offsets after shape.c */
    ir_spec spec;
    cnn_loc loc;            /* the statement that made this layer */
    int ctx;                /* 1 + index in ir_net.ctxs of the innermost block call or repeat
                               pass it came from (0: written at the top level) */
    char text[128];         /* how the layer reads, for reports: "conv 3x3 16 relu" */
    long params;            /* trainable parameters */
    double flops;           /* forward FLOPs per image (see doc/language.md for the rule) */
} ir_node;

/* Where a layer came from when blocks and repeats expanded it: one block call or one pass
 * of a repeat, chained to the construct around it, so an error can name every level. */
typedef struct {
    cnn_loc loc;            /* the call (its name) or the repeat statement */
    char text[64];          /* the call as written, "down(5)"; "repeat 5" */
    int pass;               /* repeat: 1-based pass (0 for a block call) */
    int up;                 /* 1 + index of the enclosing context (0: top level) */
} ir_ctx;

typedef struct {
    char name[64];
    ir_node *nodes;
    int n, cap;
    ir_ctx *ctxs;           /* the contexts nodes refer to */
    int nctx, capctx;
    rt_train_cfg train;     /* defaults, overridden by the train { } section */
    int has_train;
    long total_params;
    double total_flops;
    double act_bytes;       /* forward activation memory per image, in bytes */
} ir_net;

void ir_init(ir_net *net);
ir_node *ir_add(ir_net *net);
void ir_free(ir_net *net);
/* Adds a context under `up` (0: top level); returns its number for ir_node.ctx. */
int ir_add_ctx(ir_net *net, cnn_loc loc, const char *text, int pass, int up);
/* Notes, after the error just reported, every call and repeat pass that led to context
 * ctx, innermost first: "in call `down(5)` at line 9", "in pass 3 of `repeat 5` at line 8". */
void ir_note_ctx(const ir_net *net, int ctx, cnn_diag *diag);
/* A runtime description of the network (shares nothing with net; free with ir_desc_free). */
int ir_to_desc(const ir_net *net, rt_netdesc *d);
void ir_desc_free(rt_netdesc *d);
const char *ir_kind_name(rt_kind k);
const char *ir_act_name(rt_act a);

#endif
