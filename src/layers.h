/*
 * layers.h - the layer table: every layer word of the language, its aliases, its
 * arguments and keys with their defaults, and the check that turns one statement's
 * arguments into an IR node. Adding a layer kind starts here.
 */
#ifndef CNN_LAYERS_H
#define CNN_LAYERS_H

#include "ast.h"
#include "ir.h"

/* Reports an error in the context of the current expansion (block calls are noted). */
typedef struct cnn_errsink {
    void (*error)(struct cnn_errsink *s, cnn_loc loc, const char *hint, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
} cnn_errsink;

typedef struct {
    const char *name;       /* the canonical word */
    const char *aliases;    /* space-separated other words, or "" */
    const char *usage;      /* e.g. "conv KHxKW N [ACT] [stride=S] ..." */
    const char *keys;       /* space-separated valid keys, or "" */
    rt_kind kind;
    rt_act act;             /* for activation layers */
} cnn_layer_info;

/* The entry for a word (canonical or alias), or NULL. */
const cnn_layer_info *layers_find(const char *word);
/* All canonical names and aliases, for "did you mean" (NULL-terminated static array). */
const char *const *layers_all_words(int *n);
/* Checks one statement's (already substituted) arguments and fills node's kind,
 * hyper-parameters and spec. Returns 0, or -1 after reporting errors to sink. */
int layers_build(const cnn_layer_info *li, const ast_stmt *st, const ast_arg *args, int nargs,
                 ir_node *node, cnn_errsink *sink);
/* An activation word (relu, leakyrelu, sigmoid, tanh, softmax) or RT_ACT_NONE. */
rt_act layers_act_word(const char *word);

#endif
