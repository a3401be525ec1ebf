/*
 * layers.h - from one statement to one IR node: looks the word up in the compiler's op
 * registry (ops/cnn_op.h), matches the statement's positional arguments, keys and trailing
 * activation against that kind's rules, and says what would be valid when they do not fit.
 */
#ifndef CNN_LAYERS_H
#define CNN_LAYERS_H

#include "ast.h"
#include "ir.h"
#include "ops/cnn_op.h"

/* The entry for a word (canonical or alias), or NULL. */
const cnn_layer_info *layers_find(const char *word);
/* All canonical names and aliases, for "did you mean" (NULL-terminated static array). */
const char *const *layers_all_words(int *n);
/* Checks one statement's (already substituted) arguments and fills node's kind,
 * hyper-parameters and spec. Returns 0, or -1 after reporting errors to sink. */
int layers_build(const cnn_layer_info *li, const ast_stmt *st, const ast_arg *args, int nargs,
                 ir_node *node, cnn_errsink *sink);
/* An activation word (relu, leakyrelu, ..., elu) or RT_ACT_NONE. */
rt_act layers_act_word(const char *word);

#endif
