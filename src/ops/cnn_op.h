/*
 * cnn_op.h - what the compiler knows of each layer kind, one file per kind under src/ops/
 * (as onnx2c has one class per operator): the words that write it and their arguments, and
 * the code it prints into the training program and into the standalone file. Its shape,
 * parameters, FLOPs and arithmetic come from the runtime's registry entry (rt_op.h); which
 * buffers and flags it uses come from the execution plan (rt_plan.h).
 */
#ifndef CNN_OP_H
#define CNN_OP_H

#include <stdio.h>

#include "ast.h"
#include "diag.h"
#include "ir.h"
#include "rt_plan.h"

/* ------------------------------------------------------------------ syntax */

/* Reports an error in the context of the current expansion (block calls are noted). */
typedef struct cnn_errsink {
    void (*error)(struct cnn_errsink *s, cnn_loc loc, const char *hint, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
} cnn_errsink;

struct cnn_op;

/* One word of the language: a layer kind, or one activation of the activation kind. */
typedef struct {
    const char *name;       /* the canonical word */
    const char *aliases;    /* space-separated other words, or "" */
    const char *usage;      /* e.g. "conv KHxKW N [ACT] [stride=S] ..." */
    const char *keys;       /* space-separated valid keys, or "" */
    rt_kind kind;
    rt_act act;             /* for activation words */
    int npos;               /* positional arguments it takes (besides a trailing activation) */
    int required;           /* of which this many are required */
} cnn_layer_info;

/* The state of checking one statement's arguments. */
typedef struct {
    const cnn_layer_info *li;
    const ast_stmt *st;
    cnn_errsink *sink;
    int bad;
} cnn_chk;

#define CNN_FAIL(c, loc, hint, ...) \
    ((c)->bad = 1, (c)->sink->error((c)->sink, (loc), (hint), __VA_ARGS__))

/* Argument checks shared by the kinds (src/ops/args.c); each reports and returns 0 on a
 * bad value, 1 on a good one. */
int cnn_want_int(cnn_chk *c, const ast_value *v, long min, long max, const char *what);
int cnn_want_pair(cnn_chk *c, const ast_value *v, int min, const char *what, int *h, int *w);
int cnn_want_positive_float(cnn_chk *c, const ast_value *v, const char *what, float *out);
int cnn_want_word(cnn_chk *c, const ast_value *v, const char *key, const char *choices);
int cnn_word_in_list(const char *word, const char *list);
/* pad=P|PHxPW|same|valid and stride=S|SHxSW, for the kinds with windows */
void cnn_key_pad(cnn_chk *c, const ast_value *v, ir_node *n);
int cnn_key_window(cnn_chk *c, const ast_arg *a, ir_node *n);

/* ------------------------------------------------------------------ code */

/* What a layer's emitter knows about where its data lives. */
typedef struct {
    const ir_net *net;
    const rt_step *step;    /* the plan's decisions for this layer */
    int i;                  /* this layer's index */
    const char *in, *in2;   /* expressions of the input buffers (in2: two-input kinds) */
    const char *y;          /* expression of the output buffer */
    const char *pool_y;     /* a conv that runs the pooling after it (step->pool_layer): that
                               pooling's output buffer */
    const char *res;        /* a conv that computes the residual add after it in inference
                               (step->res_add): that add's other summand */
    const char *tmp;        /* standalone: the layer's scratch (standalone_tmp floats) */
    char dy[32];            /* gradient of the output */
    char pool_dy[32];       /* a conv that runs the max pooling's backward too
                               (step->pool_bwd): that pooling's output gradient */
    char dx[32], dx2[32];   /* gradients of the inputs, or "" when none is needed */
    FILE *out;
} emit_ctx;

/* Number of floats of one image's tensor of shape s. */
static inline long emit_size(rt_shape s) { return (long)s.c * s.h * s.w; }
/* A float as a C literal that reads back to the same value ("0.0f", "0.5f", "1e-05f");
 * the text lives in one of a few rotating buffers, enough for one printf call. */
const char *emit_f(float v);
/* "P + 12" or "NULL" for a layer's bias in array arr. */
void emit_bias_ptr(FILE *o, const char *arr, const rt_layer *L);
/* Conv and dense: the fused activation's backward on the output gradient in place, unless
 * the plan gave it to the max pooling that reads the layer. */
void emit_act_backward_inplace(const emit_ctx *e);
/* The input-gradient argument: e->dx or NULL. */
const char *emit_dx(const emit_ctx *e);

typedef struct cnn_op {
    rt_kind kind;
    const cnn_layer_info *words;
    int nwords;
    int trailing_act;       /* takes an activation word after its arguments (conv, dense) */
    /* fills the layer from positional argument idx, or from a key=value */
    void (*positional)(cnn_chk *c, int idx, const ast_value *v, ir_node *n);
    void (*keyword)(cnn_chk *c, const ast_arg *a, ir_node *n);
    /* defaults before the arguments, and what follows from them after */
    void (*defaults)(ir_node *n);
    void (*finish)(cnn_chk *c, ir_node *n);
    /* says why the runtime's shape rule refused the node, in the user's terms, given the
     * rule's own message why (optional: that message is reported as it is otherwise) */
    void (*explain)(const ir_net *net, const ir_node *n, cnn_diag *diag, rt_shape in2, const char *why);
    /* the training program: file-level declarations, static buffers, forward, backward */
    void (*emit_decls)(const emit_ctx *e);
    void (*emit_buffers)(const emit_ctx *e, const char *maxb);
    void (*emit_forward)(const emit_ctx *e);
    void (*emit_backward)(const emit_ctx *e);
    /* raises `scratch` (bytes per worker) to what the layer's kernels ask for, at run time */
    void (*emit_scratch)(const emit_ctx *e);
    /* the standalone file: one image, plain loops (W: parameters, ST: state) */
    void (*emit_standalone)(const emit_ctx *e);
    /* optional: the floats of scratch its loops use (e->tmp), and the order they read the
     * layer's weights in (rearranged in place from the runtime's order) */
    long (*standalone_tmp)(const rt_layer *L);
    void (*standalone_layout)(const rt_layer *L, float *params);
} cnn_op;

/* The compiler's entry of kind k. */
const cnn_op *cnn_op_of(rt_kind k);
/* The word (canonical or alias), or NULL. */
const cnn_layer_info *cnn_word_find(const char *word);
/* All canonical names and aliases, for "did you mean" (NULL-terminated). */
const char *const *cnn_words_all(int *n);

extern const cnn_op cnn_op_input, cnn_op_conv, cnn_op_maxpool, cnn_op_avgpool,
    cnn_op_globalavgpool, cnn_op_globalmaxpool, cnn_op_flatten, cnn_op_dropout, cnn_op_dense,
    cnn_op_batchnorm, cnn_op_activation, cnn_op_add, cnn_op_concat;

#endif
