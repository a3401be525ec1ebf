/*
 * ast.h - the syntax tree of a .cnn file, exactly as written: statements with their
 * arguments and source positions. The parser builds it; expand.c turns it into the IR.
 * Nothing here knows what a layer means; that is the layer table's job (layers.c).
 */
#ifndef CNN_AST_H
#define CNN_AST_H

#include "diag.h"

typedef enum { VAL_INT, VAL_FLOAT, VAL_DIMS, VAL_WORD, VAL_RATIO, VAL_LIST } ast_valkind;

#define AST_MAXLIST 8

#define AST_MAXDIMS 4

/* A literal or a word: 16, 0.5, 3x3, 3x128x128, relu, 7:2:1. */
typedef struct {
    ast_valkind kind;
    cnn_loc loc;
    long i;                 /* VAL_INT */
    double f;               /* VAL_FLOAT (also set for VAL_INT) */
    int ndims;              /* VAL_DIMS, VAL_RATIO */
    long dims[AST_MAXDIMS];
    char *word;             /* VAL_WORD; also the literal text of every value */
    int nlist;              /* VAL_LIST: numbers separated by commas, key=A,B,C */
    double list[AST_MAXLIST];
} ast_value;

/* One argument: positional (key == NULL) or key=value. */
typedef struct {
    char *key;
    cnn_loc keyloc;
    ast_value val;
} ast_arg;

typedef enum {
    STMT_LAYER,     /* NAME args...           a layer, an activation, or a block call */
    STMT_CALL,      /* NAME(args) args...     a block call with parentheses */
    STMT_REPEAT,    /* repeat N { body }     */
    STMT_RESIDUAL,  /* residual { body } [shortcut { body2 }] */
    STMT_CONCAT,    /* concat { path { } path { } ... } */
    STMT_PATH,      /* path { body }, inside concat */
    STMT_BLOCK,     /* block NAME(params) { body } */
    STMT_TRAIN,     /* train { settings }    */
    STMT_NETWORK    /* network NAME          */
} ast_stmtkind;

typedef struct ast_stmt ast_stmt;
struct ast_stmt {
    ast_stmtkind kind;
    cnn_loc loc;            /* the whole statement's first token */
    char *name;             /* layer/block/network name */
    cnn_loc nameloc;
    ast_arg *args;          /* arguments after the name */
    int nargs, capargs;
    ast_value *callargs;    /* STMT_CALL: values inside the parentheses */
    int ncallargs, capcallargs;
    char **params;          /* STMT_BLOCK: parameter names */
    cnn_loc *paramlocs;
    int nparams, capparams;
    ast_value count;        /* STMT_REPEAT */
    ast_stmt *body;         /* REPEAT, RESIDUAL, CONCAT, PATH, BLOCK, TRAIN */
    ast_stmt *body2;        /* RESIDUAL: the shortcut's body (nameloc: the word shortcut) */
    int has_body2;          /* RESIDUAL: a shortcut was written (its body may be empty) */
    cnn_loc endloc;         /* the closing brace */
    int head_value;         /* written NAME=VALUE (as leakyrelu=0.2) */
    ast_stmt *next;
};

ast_stmt *ast_stmt_new(ast_stmtkind kind, cnn_loc loc);
void ast_stmt_add_arg(ast_stmt *s, const ast_arg *a);
/* Puts statement s (or nothing, for NULL) in front of the reversed list rev: building a
 * list reversed and reversing it once keeps parsing linear in the number of statements. */
ast_stmt *ast_push(ast_stmt *rev, ast_stmt *s);
ast_stmt *ast_reverse(ast_stmt *list);
/* Appends list b after list a; returns the head. */
ast_stmt *ast_append(ast_stmt *a, ast_stmt *b);
void ast_value_free(ast_value *v);
/* VAL_LIST values: the first two numbers, then one more (0 when the list is full); both
 * take over their arguments' memory. */
ast_value ast_list_start(ast_value *a, ast_value *b, cnn_loc loc);
int ast_list_add(ast_value *l, ast_value *b);
void ast_free(ast_stmt *s);
const char *ast_value_kind_name(ast_valkind k);

#endif
