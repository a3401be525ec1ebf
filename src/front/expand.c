/*
 * expand.c - from the syntax tree to the flat IR. Blocks are macros with parameters:
 * a call substitutes its values for the parameter words and expands the body in place;
 * repeat expands its body N times; residual expands its body and adds an RT_ADD node
 * joining the body's output with the residual's input. Errors inside a block name the
 * call sites, and an error repeated by expansion is reported once.
 */
#include "expand.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "rt_kernels.h"
#include "train_section.h"
#include "util.h"

typedef struct frame {
    const ast_stmt *block;      /* the definition being expanded (NULL for repeat/residual) */
    const ast_stmt *call;       /* the statement that called it */
    const ast_value *values;    /* call values, one per parameter */
    struct frame *up;
} frame;

/* A block call or the current pass of a repeat, on the stack while its body expands. It
 * enters ir_net.ctxs only when a layer or an error needs it (ctx_of), so that nested
 * repeats whose passes add nothing cost no memory. */
typedef struct cframe {
    cnn_loc loc;
    char text[64];              /* "down(5)", "repeat 5" */
    int pass;                   /* repeat: 1-based pass; 0: a block call */
    int ctx;                    /* its number in ir_net.ctxs once entered (0: not yet) */
    struct cframe *up;
} cframe;

typedef struct {
    cnn_errsink sink;           /* first: the layer table reports through it */
    cnn_diag *diag;
    ir_net *net;
    const ast_stmt **blocks;
    int nblocks, capblocks;
    frame *top;
    cframe *cf;                 /* the innermost block call or repeat pass (NULL: top level) */
    int depth;
    int too_many;               /* CNN_MAX_LAYERS reached (reported once) */
    int tip;                    /* the node whose output the next layer reads (-1: none yet) */
    uint64_t *seen;             /* hashes of reported errors, to report each once */
    long raised;                /* errors found, reported or not (a repeat's later passes find
                                   its first pass's errors again, and report none) */
    int nseen, capseen;
} expander;

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The ir_net.ctxs number of frame f, entering it and the frames around it as needed. */
static int ctx_of(ir_net *net, cframe *f)
{
    if (!f) return 0;
    if (!f->ctx) {
        int up = ctx_of(net, f->up);
        f->ctx = ir_add_ctx(net, f->loc, f->text, f->pass, up);
    }
    return f->ctx;
}

static void ex_verror(expander *ex, cnn_loc loc, const char *hint, const char *fmt, va_list ap)
{
    ex->raised++;
    if (ex->diag->nerrors >= ex->diag->max_errors) {
        ex->diag->nerrors++; /* past what is printed, only the count matters */
        ex->diag->suppressed++;
        return;
    }
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    uint64_t h = hash_str(0xcbf29ce484222325ull, msg);
    h = (h ^ (uint64_t)loc.line) * 0x100000001b3ull;
    h = (h ^ (uint64_t)loc.col) * 0x100000001b3ull;
    for (int i = 0; i < ex->nseen; i++)
        if (ex->seen[i] == h) return; /* already reported and counted */
    cnn_grow((void **)&ex->seen, &ex->capseen, ex->nseen, sizeof *ex->seen);
    ex->seen[ex->nseen++] = h;
    diag_error(ex->diag, loc, hint, "%s", msg);
    ir_note_ctx(ex->net, ctx_of(ex->net, ex->cf), ex->diag);
}

static void ex_error(expander *ex, cnn_loc loc, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ex_error(expander *ex, cnn_loc loc, const char *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ex_verror(ex, loc, hint, fmt, ap);
    va_end(ap);
}

static void sink_error(cnn_errsink *s, cnn_loc loc, const char *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ex_verror((expander *)s, loc, hint, fmt, ap);
    va_end(ap);
}

static const ast_stmt *find_block(const expander *ex, const char *name)
{
    for (int i = 0; i < ex->nblocks; i++)
        if (strcmp(ex->blocks[i]->name, name) == 0) return ex->blocks[i];
    return NULL;
}

/* A parameter word of the innermost block call is replaced by the call's value. */
static ast_value subst(const expander *ex, const ast_value *v)
{
    if (v->kind == VAL_WORD && ex->top) {
        for (const frame *f = ex->top; f; f = f->up) {
            if (!f->block) continue;
            for (int i = 0; i < f->block->nparams; i++)
                if (strcmp(f->block->params[i], v->word) == 0) {
                    ast_value r = f->values[i];
                    r.loc = v->loc;
                    return r;
                }
            break; /* only the innermost block's parameters are visible */
        }
    }
    return *v;
}

static void expand_list(expander *ex, const ast_stmt *s);

static void unknown_word(expander *ex, const ast_stmt *s)
{
    int n;
    const char *const *words = layers_all_words(&n);
    const char *cands[256];
    int nc = 0;
    for (int i = 0; i < n && nc < 200; i++) cands[nc++] = words[i];
    for (int i = 0; i < ex->nblocks && nc < 256; i++) cands[nc++] = ex->blocks[i]->name;
    const char *near = diag_nearest(s->name, cands, nc);
    char hint[256];
    if (train_section_is_setting(s->name))
        snprintf(hint, sizeof hint, "'%s' is a training setting: put it inside train { }", s->name);
    else if (near)
        snprintf(hint, sizeof hint, "did you mean '%s'?", near);
    else {
        size_t len = (size_t)snprintf(hint, sizeof hint, "layers are:");
        for (int i = 0; i < n && len < sizeof hint; i++)
            if (layers_find(words[i]) && strcmp(layers_find(words[i])->name, words[i]) == 0)
                len += (size_t)snprintf(hint + len, sizeof hint - len, " %s", words[i]);
    }
    ex_error(ex, s->nameloc, hint, "unknown layer '%.64s%s'", s->name, strlen(s->name) > 64 ? "..." : "");
}

static void call_block(expander *ex, const ast_stmt *s, const ast_stmt *b)
{
    if (s->kind == STMT_LAYER && s->nargs > 0) {
        ex_error(ex, s->args[0].val.loc, "write a block call with parentheses, e.g. vgg(16)",
                 "arguments of block '%s' go in parentheses", b->name);
        return;
    }
    if (s->ncallargs != b->nparams) {
        char hint[160];
        snprintf(hint, sizeof hint, "block '%s' is defined at line %d with %d parameter%s", b->name,
                 b->loc.line, b->nparams, b->nparams == 1 ? "" : "s");
        ex_error(ex, s->nameloc, hint, "block '%s' takes %d argument%s, got %d", b->name, b->nparams,
                 b->nparams == 1 ? "" : "s", s->ncallargs);
        return;
    }
    for (frame *f = ex->top; f; f = f->up)
        if (f->block == b) {
            ex_error(ex, s->nameloc, "a block cannot call itself, directly or through another block",
                     "block '%s' calls itself", b->name);
            return;
        }
    ast_value *vals = cnn_xcalloc((size_t)(s->ncallargs ? s->ncallargs : 1), sizeof *vals);
    for (int i = 0; i < s->ncallargs; i++) vals[i] = subst(ex, &s->callargs[i]);
    /* the call as written, for the notes on errors inside it: down(5) */
    cframe cf = {.loc = s->nameloc, .up = ex->cf};
    size_t len = (size_t)snprintf(cf.text, sizeof cf.text, "%s%s", s->name, s->kind == STMT_CALL ? "(" : "");
    for (int i = 0; i < s->ncallargs && len < sizeof cf.text; i++)
        len += (size_t)snprintf(cf.text + len, sizeof cf.text - len, "%s%s", i ? ", " : "",
                                s->callargs[i].word ? s->callargs[i].word : "?");
    if (s->kind == STMT_CALL && len < sizeof cf.text) snprintf(cf.text + len, sizeof cf.text - len, ")");
    frame f = {.block = b, .call = s, .values = vals, .up = ex->top};
    ex->top = &f;
    ex->cf = &cf;
    expand_list(ex, b->body);
    ex->top = f.up;
    ex->cf = cf.up;
    free(vals);
}

static void layer_stmt(expander *ex, const ast_stmt *s)
{
    const cnn_layer_info *li = layers_find(s->name);
    const ast_stmt *b = find_block(ex, s->name);
    if (s->kind == STMT_CALL || (!li && b)) {
        if (!b) {
            if (li) {
                ex_error(ex, s->nameloc, "layers take no parentheses: write e.g. conv 3x3 16",
                         "'%s' is a layer, not a block", s->name);
                return;
            }
            const char *cands[256];
            int nc = 0;
            for (int i = 0; i < ex->nblocks && nc < 256; i++) cands[nc++] = ex->blocks[i]->name;
            const char *near = diag_nearest(s->name, cands, nc);
            char hint[160];
            if (near) snprintf(hint, sizeof hint, "did you mean '%s'?", near);
            else snprintf(hint, sizeof hint, "no block named '%.64s' is defined", s->name);
            ex_error(ex, s->nameloc, hint, "unknown block '%.64s'", s->name);
            return;
        }
        call_block(ex, s, b);
        return;
    }
    if (!li) {
        unknown_word(ex, s);
        return;
    }
    if (s->head_value && !(li->kind == RT_ACTIVATION && li->npos > 0)) {
        char hint[160];
        if (li->npos == 0)
            snprintf(hint, sizeof hint, "'%s' takes no value: write just '%s' (only leakyrelu=A and elu=A take one)",
                     s->name, s->name);
        else
            snprintf(hint, sizeof hint, "write '%s %s' without '=' (only leakyrelu=A and elu=A take one)", s->name,
                     s->args[0].val.word ? s->args[0].val.word : "");
        ex_error(ex, s->nameloc, hint, "'%s' takes no '=' value", s->name);
        return;
    }
    if (ex->net->n >= CNN_MAX_LAYERS) {
        if (!ex->too_many)
            ex_error(ex, s->loc, "use fewer or smaller repeats", "the network has more than %d layers",
                     CNN_MAX_LAYERS);
        ex->too_many = 1;
        return;
    }
    ast_arg *args = cnn_xcalloc((size_t)(s->nargs ? s->nargs : 1), sizeof *args);
    for (int i = 0; i < s->nargs; i++) {
        args[i] = s->args[i];
        args[i].val = subst(ex, &s->args[i].val);
    }
    ir_node tmp;
    memset(&tmp, 0, sizeof tmp);
    int first = ex->net->n == 0;
    if (li->kind == RT_INPUT && !first) {
        ex_error(ex, s->nameloc, "a network has one input, as its first layer", "a second input");
    } else if (li->kind != RT_INPUT && first) {
        ex_error(ex, s->nameloc, "start the network with e.g. input 3x128x128",
                 "the first layer must be 'input CxHxW', not '%s'", s->name);
    } else {
        ir_node *n = ir_add(ex->net);
        int src = ex->tip;
        layers_build(li, s, args, s->nargs, n, &ex->sink); /* errors are counted in diag */
        n->L.src = src;
        n->L.src2 = -1;
        n->loc = s->nameloc;
        n->L.line = s->loc.line;
        n->ctx = ctx_of(ex->net, ex->cf);
        if (rt_act_needs_input(n->L.act) && li->kind != RT_ACTIVATION) {
            /* its gradient needs its input: it runs as a layer of its own after this one */
            ir_node *a = ir_add(ex->net);
            ir_node *prev = &ex->net->nodes[ex->net->n - 2];
            a->L.src = ex->net->n - 2;
            a->L.kind = RT_ACTIVATION;
            a->L.act = prev->L.act;
            a->L.alpha = prev->L.alpha;
            a->loc = prev->loc;
            a->ctx = prev->ctx;
            a->L.line = prev->L.line;
            snprintf(a->text, sizeof a->text, "%s", rt_act_name(prev->L.act));
            prev->L.act = RT_ACT_NONE;
            prev->L.alpha = 0.0f;
        }
        ex->tip = ex->net->n - 1;
    }
    free(args);
}

static void repeat_stmt(expander *ex, const ast_stmt *s)
{
    ast_value v = subst(ex, &s->count);
    if (v.kind != VAL_INT || v.i < 1 || v.i > CNN_MAX_LAYERS) {
        char hint[96];
        snprintf(hint, sizeof hint, "repeat takes a whole number from 1 to %d, e.g. repeat 3 { ... }",
                 CNN_MAX_LAYERS);
        ex_error(ex, v.loc, hint, v.kind == VAL_INT && v.i > CNN_MAX_LAYERS ? "repeat count '%s' is too large"
                 : "invalid repeat count '%s'", v.word ? v.word : "");
        return;
    }
    if (!s->body) {
        ex_error(ex, s->loc, "put layers inside the braces", "empty repeat body");
        return;
    }
    frame f = {.block = NULL, .call = s, .up = ex->top};
    ex->top = &f;
    int before = ex->net->n;
    long errors = ex->raised;
    cframe cf = {.loc = s->loc, .up = ex->cf};
    snprintf(cf.text, sizeof cf.text, "repeat %ld", v.i);
    ex->cf = &cf;
    /* Once a pass has errors the next ones would only repeat them (each is reported once),
     * at the cost of a spelling suggestion per word per pass: stop there (fuzz_cnn found
     * `repeat 100000 { misspelt }` taking seconds). */
    for (long i = 0; i < v.i && !ex->too_many && ex->raised == errors; i++) {
        cf.pass = (int)i + 1;
        cf.ctx = 0; /* a new pass: a new context if anything in it needs one */
        expand_list(ex, s->body);
    }
    ex->cf = cf.up;
    ex->top = f.up;
    if (ex->net->n == before && ex->raised == errors)
        ex_error(ex, s->loc, "put layers inside the braces", "the repeat body adds no layers");
}

/* Expands body as a branch reading node `from`; returns the node that ends it (`from`
 * itself for an empty body, the identity) and leaves ex->tip there. */
static int branch(expander *ex, const ast_stmt *s, const ast_stmt *body, int from)
{
    frame f = {.block = NULL, .call = s, .up = ex->top};
    ex->top = &f;
    ex->tip = from;
    expand_list(ex, body);
    ex->top = f.up;
    return ex->tip;
}

/* A node joining two branches (an add or a concatenation), reading a and b. */
static ir_node *join(expander *ex, const ast_stmt *s, rt_kind kind, int a, int b)
{
    ir_node *n = ir_add(ex->net);
    n->L.kind = kind;
    n->L.src = a;
    n->L.src2 = b;
    n->loc = s->loc;
    n->L.line = s->loc.line;
    n->ctx = ctx_of(ex->net, ex->cf);
    ex->tip = ex->net->n - 1;
    return n;
}

static void residual_stmt(expander *ex, const ast_stmt *s)
{
    if (ex->tip < 0) {
        ex_error(ex, s->loc, "start the network with e.g. input 3x128x128",
                 "the first layer must be 'input CxHxW', not a residual");
        return;
    }
    int before = ex->tip;
    if (!s->body) {
        ex_error(ex, s->loc, "put layers inside the braces: residual { conv 3x3 16 pad=same }",
                 "empty residual body");
        return;
    }
    long errors = ex->raised;
    int n0 = ex->net->n;
    int body = branch(ex, s, s->body, before);
    if (ex->net->n == n0 && ex->raised == errors)
        ex_error(ex, s->loc, "put layers inside the braces: residual { conv 3x3 16 pad=same }",
                 "the residual body adds no layers");
    if (body == before || ex->too_many) return;
    int shortcut = s->has_body2 ? branch(ex, s, s->body2, before) : before;
    if (ex->too_many) return;
    ir_node *n = join(ex, s, RT_ADD, body, shortcut);
    snprintf(n->text, sizeof n->text, "%s", s->has_body2 && shortcut != before ? "residual add (with shortcut)"
                                                                             : "residual add");
}

static void concat_stmt(expander *ex, const ast_stmt *s)
{
    if (ex->tip < 0) {
        ex_error(ex, s->loc, "start the network with e.g. input 3x128x128",
                 "the first layer must be 'input CxHxW', not a concat");
        return;
    }
    int from = ex->tip, out = -1, npaths = 0, strays = 0;
    for (const ast_stmt *p = s->body; p; p = p->next) {
        if (p->kind != STMT_PATH) {
            strays++;
            ex_error(ex, p->loc, "write each branch as path { ... }: concat { path { conv 1x1 8 } path { conv 3x3 8 pad=same } }",
                     "only path { } blocks go inside concat");
            continue;
        }
        int end = branch(ex, p, p->body, from);
        if (ex->too_many) return;
        npaths++;
        if (out < 0) {
            out = end;
        } else {
            ir_node *n = join(ex, p, RT_CONCAT, out, end);
            n->spec.out = npaths; /* for messages: this joins path npaths to those before it */
            snprintf(n->text, sizeof n->text, "concat (paths 1-%d)", npaths);
            out = ex->tip;
        }
    }
    if (npaths < 2 && !strays) {
        ex_error(ex, s->loc, "concatenate two paths or more: concat { path { ... } path { ... } }",
                 "concat needs at least two paths, got %d", npaths);
        ex->tip = npaths ? out : from;
        return;
    }
    ex->tip = out >= 0 ? out : from;
}

static void expand_list(expander *ex, const ast_stmt *s)
{
    if (++ex->depth > 64) {
        ex_error(ex, s ? s->loc : (cnn_loc){0}, NULL, "blocks and repeats are nested more than 64 deep");
        ex->depth--;
        return;
    }
    for (; s; s = s->next) {
        switch (s->kind) {
        case STMT_LAYER: case STMT_CALL: layer_stmt(ex, s); break;
        case STMT_REPEAT: repeat_stmt(ex, s); break;
        case STMT_RESIDUAL: residual_stmt(ex, s); break;
        case STMT_CONCAT: concat_stmt(ex, s); break;
        case STMT_PATH:
            ex_error(ex, s->loc, "path { } stands inside concat { }", "a path outside concat");
            break;
        case STMT_BLOCK:
            if (ex->top) ex_error(ex, s->loc, "define blocks at the top level of the file",
                                  "block '%s' is defined inside another construct", s->name);
            break;
        case STMT_TRAIN:
            if (ex->top) ex_error(ex, s->loc, "the train { } section stands at the top level",
                                  "train section inside another construct");
            break;
        case STMT_NETWORK:
            if (ex->top) ex_error(ex, s->loc, "name the network at the top level", "network inside another construct");
            break;
        }
        if (ex->too_many) break;
    }
    ex->depth--;
}

static int valid_c_name(const char *s)
{
    if (!*s || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) return 0;
    for (; *s; s++)
        if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

int cnn_expand(const ast_stmt *program, const char *default_name, ir_net *net, cnn_diag *diag)
{
    expander ex = {.sink = {.error = sink_error}, .diag = diag, .net = net, .tip = -1};
    int errors_before = diag->nerrors;
    const ast_stmt *named = NULL, *trained = NULL;
    snprintf(net->name, sizeof net->name, "%s", default_name);
    for (const ast_stmt *s = program; s; s = s->next) {
        if (s->kind == STMT_BLOCK) {
            const ast_stmt *old = find_block(&ex, s->name);
            if (old) {
                char hint[96];
                snprintf(hint, sizeof hint, "'%s' was first defined at line %d", s->name, old->loc.line);
                ex_error(&ex, s->nameloc, hint, "block '%s' is defined twice", s->name);
            } else if (layers_find(s->name)) {
                ex_error(&ex, s->nameloc, "choose another name for the block",
                         "block name '%s' is already a layer", s->name);
            } else {
                if (!s->body)
                    ex_error(&ex, s->nameloc, "put layers inside the braces", "block '%s' has an empty body", s->name);
                for (int i = 0; i < s->nparams; i++)
                    for (int j = 0; j < i; j++)
                        if (strcmp(s->params[i], s->params[j]) == 0)
                            ex_error(&ex, s->paramlocs[i], NULL, "parameter '%s' appears twice", s->params[i]);
                cnn_grow((void **)&ex.blocks, &ex.capblocks, ex.nblocks, sizeof *ex.blocks);
                ex.blocks[ex.nblocks++] = s;
            }
        } else if (s->kind == STMT_NETWORK) {
            if (named) {
                ex_error(&ex, s->loc, NULL, "the network is named twice (first at line %d)", named->loc.line);
            } else if (!valid_c_name(s->name) || strlen(s->name) >= sizeof net->name) {
                ex_error(&ex, s->nameloc, "a network name is a word of letters, digits and _ (at most 63)",
                         "invalid network name '%s'", s->name);
            } else {
                snprintf(net->name, sizeof net->name, "%s", s->name);
            }
            named = s;
        }
    }
    expand_list(&ex, program);
    /* the train section after the layers, so that errors come out in file order mostly */
    for (const ast_stmt *s = program; s; s = s->next) {
        if (s->kind != STMT_TRAIN) continue;
        if (trained)
            ex_error(&ex, s->loc, NULL, "a second train section (the first is at line %d)", trained->loc.line);
        else
            train_section_read(s, &net->train, &ex.sink);
        trained = s;
        net->has_train = 1;
    }
    if (net->n == 0 && !ex.too_many && diag->nerrors == errors_before)
        ex_error(&ex, (cnn_loc){0}, "a network starts with e.g. input 3x128x128", "the file defines no layers");
    free(ex.blocks);
    free(ex.seen);
    return diag->nerrors > errors_before ? -1 : 0;
}
