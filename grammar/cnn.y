/*
 * cnn.y - the grammar of the .cnn language. A file is a list of statements; a statement
 * is a word followed by arguments (numbers, sizes, words, key=value), a block call
 * NAME(args), or one of the structures repeat/residual [shortcut]/concat {path}/block/train. The grammar builds
 * the AST and knows no layer names: what a statement means is checked later, so that
 * errors about meaning can name the valid choices.
 */
%code top {
#include "config.h"
}

%code requires {
#include "parse_ctx.h"
typedef void *yyscan_t;
}

%define api.pure full
%define api.prefix {cnnyy}
%define api.location.type {cnn_loc}
%define parse.error custom
%define parse.lac full
%locations
%param {yyscan_t scanner}
%parse-param {cnn_parse_ctx *ctx}

%code {
#include <stdlib.h>
#include <string.h>
#define YYSTYPE CNNYYSTYPE
#define YYLTYPE CNNYYLTYPE
#include "cnn_lex.h"

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                  \
    do {                                                             \
        if (N) {                                                     \
            (Cur).line = YYRHSLOC(Rhs, 1).line;                      \
            (Cur).col = YYRHSLOC(Rhs, 1).col;                        \
            (Cur).last_line = YYRHSLOC(Rhs, N).last_line;            \
            (Cur).last_col = YYRHSLOC(Rhs, N).last_col;              \
        } else {                                                     \
            (Cur).line = (Cur).last_line = YYRHSLOC(Rhs, 0).last_line; \
            (Cur).col = (Cur).last_col = YYRHSLOC(Rhs, 0).last_col;  \
        }                                                            \
    } while (0)

#define YYMAXDEPTH 2000

static void cnnyyerror(cnn_loc *loc, yyscan_t scanner, cnn_parse_ctx *ctx, const char *msg);

static void ast_pending_param(cnn_parse_ctx *ctx, char *name, cnn_loc loc)
{
    int cap = ctx->cap_pending_params;
    cnn_grow((void **)&ctx->pending_params, &cap, ctx->npending_params, sizeof(char *));
    cap = ctx->cap_pending_params;
    cnn_grow((void **)&ctx->pending_paramlocs, &cap, ctx->npending_params, sizeof(cnn_loc));
    ctx->cap_pending_params = cap;
    ctx->pending_paramlocs[ctx->npending_params] = loc;
    ctx->pending_params[ctx->npending_params++] = name;
}

static void ast_pending_callarg(cnn_parse_ctx *ctx, const ast_value *v)
{
    cnn_grow((void **)&ctx->pending_callargs, &ctx->cap_pending_callargs, ctx->npending_callargs,
             sizeof(ast_value));
    ctx->pending_callargs[ctx->npending_callargs++] = *v;
}

/* After a syntax error, lists that were being collected belong to no statement. */
static void ast_pending_reset(cnn_parse_ctx *ctx)
{
    for (int i = 0; i < ctx->npending_params; i++) free(ctx->pending_params[i]);
    for (int i = 0; i < ctx->npending_callargs; i++) ast_value_free(&ctx->pending_callargs[i]);
    free(ctx->pending_params);
    free(ctx->pending_paramlocs);
    free(ctx->pending_callargs);
    ctx->pending_params = NULL;
    ctx->pending_paramlocs = NULL;
    ctx->pending_callargs = NULL;
    ctx->npending_params = ctx->cap_pending_params = 0;
    ctx->npending_callargs = ctx->cap_pending_callargs = 0;
}
}

%union {
    ast_value val;
    char *str;
    ast_stmt *stmt;
    ast_arg arg;
}

%token <val> T_INT "number" T_FLOAT "decimal number" T_DIMS "size" T_RATIO "ratio"
%token <str> T_IDENT "word"
%token T_SEP "end of statement"
%token T_REPEAT "repeat" T_RESIDUAL "residual" T_BLOCK "block" T_TRAIN "train" T_NETWORK "network"
%token T_SHORTCUT "shortcut" T_CONCAT "concat" T_PATH "path"
%token END 0 "end of file"

%type <stmt> lines line stmt opt_stmt body head simple
%type <val> value numlist number
%type <arg> arg

%destructor { ast_value_free(&$$); } <val>
%destructor { free($$); } <str>
%destructor { ast_free($$); } <stmt>
%destructor { free($$.key); ast_value_free(&$$.val); } <arg>

%%

program
    : lines opt_stmt            { ctx->program = ast_append(ast_reverse($1), $2); }
    ;

lines
    : %empty                    { $$ = NULL; }
    | lines line                { $$ = ast_push($1, $2); } /* reversed: see ast_push */
    ;

line
    : T_SEP                     { $$ = NULL; }
    | stmt T_SEP                { $$ = $1; }
    | error T_SEP               { $$ = NULL; ast_pending_reset(ctx); yyerrok; }
    ;

opt_stmt
    : %empty                    { $$ = NULL; }
    | stmt                      { $$ = $1; }
    ;

stmt
    : simple                    { $$ = $1; }
    | T_REPEAT value body       { $$ = ast_stmt_new(STMT_REPEAT, @1); $$->count = $2; $$->body = $3;
                                  $$->endloc = @3; $$->endloc.line = @3.last_line; $$->endloc.col = @3.last_col; }
    | T_RESIDUAL body           { $$ = ast_stmt_new(STMT_RESIDUAL, @1); $$->body = $2; }
    | T_RESIDUAL body T_SHORTCUT body
                                { $$ = ast_stmt_new(STMT_RESIDUAL, @1); $$->body = $2; $$->body2 = $4;
                                  $$->has_body2 = 1; $$->nameloc = @3; }
    | T_CONCAT body             { $$ = ast_stmt_new(STMT_CONCAT, @1); $$->body = $2; }
    | T_PATH body               { $$ = ast_stmt_new(STMT_PATH, @1); $$->body = $2; }
    | T_TRAIN body              { $$ = ast_stmt_new(STMT_TRAIN, @1); $$->body = $2; }
    | T_BLOCK T_IDENT '(' params ')' body
                                { $$ = ast_stmt_new(STMT_BLOCK, @1); $$->name = $2; $$->nameloc = @2;
                                  $$->params = ctx->pending_params; $$->paramlocs = ctx->pending_paramlocs;
                                  $$->nparams = ctx->npending_params;
                                  ctx->pending_params = NULL; ctx->pending_paramlocs = NULL;
                                  ctx->npending_params = ctx->cap_pending_params = 0;
                                  $$->body = $6; }
    | T_NETWORK T_IDENT         { $$ = ast_stmt_new(STMT_NETWORK, @1); $$->name = $2; $$->nameloc = @2; }
    ;

body
    : '{' { if (++ctx->depth > 64) { diag_error(ctx->diag, @1, NULL, "blocks are nested more than 64 deep"); YYABORT; } }
      lines opt_stmt '}'        { ctx->depth--; $$ = ast_append(ast_reverse($3), $4); }
    ;

params
    : %empty
    | paramlist
    ;

paramlist
    : T_IDENT                   { ast_pending_param(ctx, $1, @1); }
    | paramlist ',' T_IDENT     { ast_pending_param(ctx, $3, @3); }
    ;

simple
    : head                      { $$ = $1; }
    | simple arg                { $$ = $1; ast_stmt_add_arg($$, &$2); }
    ;

head
    : T_IDENT                   { $$ = ast_stmt_new(STMT_LAYER, @1); $$->name = $1; $$->nameloc = @1; }
    | T_IDENT '=' value         { $$ = ast_stmt_new(STMT_LAYER, @1); $$->name = $1; $$->nameloc = @1;
                                  $$->head_value = 1;
                                  ast_arg a = {.key = NULL, .keyloc = @3, .val = $3}; ast_stmt_add_arg($$, &a); }
    | T_IDENT '(' ')'           { $$ = ast_stmt_new(STMT_CALL, @1); $$->name = $1; $$->nameloc = @1; }
    | T_IDENT '(' callargs ')'  { $$ = ast_stmt_new(STMT_CALL, @1); $$->name = $1; $$->nameloc = @1;
                                  $$->callargs = ctx->pending_callargs; $$->ncallargs = ctx->npending_callargs;
                                  ctx->pending_callargs = NULL; ctx->npending_callargs = ctx->cap_pending_callargs = 0; }
    ;

callargs
    : value                     { ast_pending_callarg(ctx, &$1); }
    | callargs ',' value        { ast_pending_callarg(ctx, &$3); }
    ;

arg
    : value                     { $$ = (ast_arg){.key = NULL, .keyloc = @1, .val = $1}; }
    | T_IDENT '=' value         { $$ = (ast_arg){.key = $1, .keyloc = @1, .val = $3}; }
    | T_IDENT '=' numlist       { $$ = (ast_arg){.key = $1, .keyloc = @1, .val = $3}; }
    ;

/* key=A,B,C: numbers for one key (mean=0.485,0.456,0.406, betas=0.9,0.999) */
numlist
    : number ',' number         { $$ = ast_list_start(&$1, &$3, @$); }
    | numlist ',' number        { $$ = $1; if (!ast_list_add(&$$, &$3)) { diag_error(ctx->diag, @3, "a key takes at most 8 numbers", "too many numbers after '='"); } }
    ;

number
    : T_INT                     { $$ = $1; }
    | T_FLOAT                   { $$ = $1; }
    ;

value
    : T_INT                     { $$ = $1; }
    | T_FLOAT                   { $$ = $1; }
    | T_DIMS                    { $$ = $1; }
    | T_RATIO                   { $$ = $1; }
    | T_IDENT                   { $$ = (ast_value){.kind = VAL_WORD, .loc = @1, .word = $1}; }
    ;

%%

/* Syntax errors name what was found and what the grammar would have accepted there. */
static int yyreport_syntax_error(const yypcontext_t *pctx, yyscan_t scanner, cnn_parse_ctx *ctx)
{
    (void)scanner;
    enum { NEXP = 24 };
    yysymbol_kind_t expected[NEXP];
    int n = yypcontext_expected_tokens(pctx, expected, NEXP);
    /* the lexer ends every file with a separator, so "end of file" is never what is missing */
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (expected[i] != YYSYMBOL_YYEOF || n == 1) expected[kept++] = expected[i];
    n = kept;
    yysymbol_kind_t got = yypcontext_token(pctx);
    const cnn_loc *loc = yypcontext_location(pctx);
    char hint[512] = "";
    if (n > 0) {
        size_t len = 0;
        len += (size_t)snprintf(hint + len, sizeof hint - len, "expected ");
        for (int i = 0; i < n && len < sizeof hint; i++)
            len += (size_t)snprintf(hint + len, sizeof hint - len, "%s%s",
                                    i == 0 ? "" : i == n - 1 ? " or " : ", ", yysymbol_name(expected[i]));
    }
    const char *extra = NULL;
    if (got == YYSYMBOL_YYEOF && ctx->depth > 0) extra = "a '{' was never closed with '}'";
    if (got == YYSYMBOL_YYEOF && ctx->depth == 0 && n > 0) extra = "the statement is incomplete";
    if (strcmp(yysymbol_name(got), "'}'") == 0 && ctx->depth == 0) extra = "this '}' closes no '{'";
    if (got == YYSYMBOL_YYEOF)
        diag_error(ctx->diag, *loc, extra ? extra : (n > 0 ? hint : NULL), "unexpected end of file");
    else
        diag_error(ctx->diag, *loc, extra ? extra : n > 0 ? hint : NULL, "unexpected %s", yysymbol_name(got));
    return 0;
}

static void cnnyyerror(cnn_loc *loc, yyscan_t scanner, cnn_parse_ctx *ctx, const char *msg)
{
    (void)scanner;
    if (strstr(msg, "exhausted"))
        diag_error(ctx->diag, *loc, NULL, "the file is nested too deeply to parse");
    else
        diag_error(ctx->diag, *loc, NULL, "%s", msg);
}

int cnn_parse(cnn_parse_ctx *ctx, const char *text, size_t len)
{
    struct cnn_lexstate st = {.diag = ctx->diag, .line = 1, .col = 1, .last_was_sep = 1};
    yyscan_t scanner;
    if (cnnyylex_init_extra(&st, &scanner)) return -1;
    YY_BUFFER_STATE buf = cnnyy_scan_bytes(text, (int)len, scanner);
    ctx->scanner = scanner;
    int rc = cnnyyparse(scanner, ctx);
    cnnyy_delete_buffer(buf, scanner);
    cnnyylex_destroy(scanner);
    ast_pending_reset(ctx);
    return rc == 0 && ctx->diag->nerrors == 0 ? 0 : -1;
}
