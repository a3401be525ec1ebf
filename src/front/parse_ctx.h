/*
 * parse_ctx.h - state shared by the lexer and the parser of one .cnn file: the
 * diagnostics sink, the current position, and the statement list being built.
 */
#ifndef CNN_PARSE_CTX_H
#define CNN_PARSE_CTX_H

#include "ast.h"
#include "diag.h"
#include "util.h"

struct cnn_lexstate {
    cnn_diag *diag;
    int line, col;          /* position of the next character */
    int last_was_sep;       /* fold runs of separators into one token */
};

typedef struct {
    cnn_diag *diag;
    void *scanner;          /* yyscan_t */
    ast_stmt *program;      /* the parsed statements */
    int depth;              /* brace nesting, to stop absurd inputs */
    /* lists being collected for the statement under construction */
    char **pending_params;
    cnn_loc *pending_paramlocs;
    int npending_params, cap_pending_params;
    ast_value *pending_callargs;
    int npending_callargs, cap_pending_callargs;
} cnn_parse_ctx;

/* Parses the text of one file into ctx->program; errors go to ctx->diag. */
int cnn_parse(cnn_parse_ctx *ctx, const char *text, size_t len);

#endif
