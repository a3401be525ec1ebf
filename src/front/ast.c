/*
 * ast.c - construction and destruction of the syntax tree (ast.h).
 */
#include "ast.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

ast_stmt *ast_stmt_new(ast_stmtkind kind, cnn_loc loc)
{
    ast_stmt *s = cnn_xcalloc(1, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    s->nameloc = loc;
    return s;
}

void ast_stmt_add_arg(ast_stmt *s, const ast_arg *a)
{
    cnn_grow((void **)&s->args, &s->capargs, s->nargs, sizeof *s->args); /* doubling: linear */
    s->args[s->nargs++] = *a;
}

ast_stmt *ast_push(ast_stmt *rev, ast_stmt *s)
{
    if (!s) return rev;
    s->next = rev;
    return s;
}

ast_stmt *ast_reverse(ast_stmt *list)
{
    ast_stmt *out = NULL;
    while (list) {
        ast_stmt *next = list->next;
        list->next = out;
        out = list;
        list = next;
    }
    return out;
}

ast_stmt *ast_append(ast_stmt *a, ast_stmt *b)
{
    if (!a) return b;
    ast_stmt *t = a;
    while (t->next) t = t->next;
    t->next = b;
    return a;
}

ast_value ast_list_start(ast_value *a, ast_value *b, cnn_loc loc)
{
    ast_value v = {.kind = VAL_LIST, .loc = loc, .nlist = 2, .list = {a->f, b->f}};
    size_t n = strlen(a->word) + strlen(b->word) + 2;
    v.word = cnn_xcalloc(n, 1);
    snprintf(v.word, n, "%s,%s", a->word, b->word);
    ast_value_free(a);
    ast_value_free(b);
    return v;
}

int ast_list_add(ast_value *l, ast_value *b)
{
    int ok = l->nlist < AST_MAXLIST;
    if (ok)
        l->list[l->nlist++] = b->f;
    size_t n = strlen(l->word) + strlen(b->word) + 2;
    char *w = cnn_xcalloc(n, 1);
    snprintf(w, n, "%s,%s", l->word, b->word);
    free(l->word);
    l->word = w;
    ast_value_free(b);
    return ok;
}

void ast_value_free(ast_value *v)
{
    free(v->word);
    v->word = NULL;
}

void ast_free(ast_stmt *s)
{
    while (s) {
        ast_stmt *next = s->next;
        free(s->name);
        for (int i = 0; i < s->nargs; i++) {
            free(s->args[i].key);
            ast_value_free(&s->args[i].val);
        }
        free(s->args);
        for (int i = 0; i < s->ncallargs; i++) ast_value_free(&s->callargs[i]);
        free(s->callargs);
        for (int i = 0; i < s->nparams; i++) free(s->params[i]);
        free(s->params);
        free(s->paramlocs);
        ast_value_free(&s->count);
        ast_free(s->body);
        ast_free(s->body2);
        free(s);
        s = next;
    }
}

const char *ast_value_kind_name(ast_valkind k)
{
    switch (k) {
    case VAL_INT: return "a whole number";
    case VAL_FLOAT: return "a decimal number";
    case VAL_DIMS: return "a size";
    case VAL_WORD: return "a word";
    case VAL_RATIO: return "a ratio";
    case VAL_LIST: return "a list of numbers";
    }
    return "a value";
}
