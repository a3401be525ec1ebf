/*
 * gen_nets.c - deterministic random inputs for the emitter tests (test_emit.sh,
 * test_standalone.sh): small valid .cnn networks that use every construct of the language,
 * and tiny image datasets (binary PGM/PPM) of a given shape to train them on.
 *   gen_nets nets DIR SEED COUNT            writes DIR/g000.cnn ... (one line each on stdout:
 *                                           FILE CxHxW CLASSES PARAMS FLOPS)
 *   gen_nets images DIR CxHxW K PER SEED    writes DIR/cK/iNNN.pgm|ppm, PER images a class
 * The generator keeps its own shapes (an independent check of cnnc's shape inference: the
 * test asserts `cnnc --check` accepts every file and that its parameter count agrees) and
 * stays within ~50k parameters and ~5 MFLOPs so that the tests are fast.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { MAX_PARAMS = 50000 };
#define MAX_FLOPS 5e6

/* splitmix64: small, seedable, the same everywhere */
typedef struct {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int rnd(rng *r, int n) { return (int)(next(r) % (uint64_t)n); } /* 0 .. n-1 */
static int between(rng *r, int lo, int hi) { return lo + rnd(r, hi - lo + 1); }
static int chance(rng *r, int percent) { return rnd(r, 100) < percent; }

/* A growing text buffer. */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) abort();
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
}

/* ---- statements: what they mean (for the shapes) and how they are written ---- */

enum { K_CONV, K_MAXPOOL, K_AVGPOOL, K_BN, K_DROPOUT, K_ACT, K_GAP, K_GMP, K_FLATTEN, K_DENSE };
enum { A_NONE, A_RELU, A_LEAKY, A_SIGMOID, A_TANH, A_SOFTMAX, A_RELU6, A_SILU, A_GELU, A_ELU };
enum { P_OMIT, P_VALID, P_ONE, P_TWO, P_SAME };           /* how pad= is written */
static const char *const PADMODES[] = {"zero", "reflect", "replicate", "circular"};

typedef struct {
    int kind;
    int kh, kw, ksquare;            /* ksquare: written as "3" instead of "3x3" */
    int sh, sw, stext;              /* stext: 0 omitted, 1 "S", 2 "SHxSW" */
    int padt, ph, pw;               /* P_*; ph, pw for P_ONE (ph) and P_TWO */
    int padmode, padmode_text;      /* padmode_text: write padding= even for zero */
    int flip, flip_text;
    int bias, bias_text;
    int act, alpha_milli, alpha_text, act_first; /* act_first: before the keys */
    int act_alias;                  /* silu written as swish */
    int groups, groups_text;        /* 0 or 1: not grouped; groups_text: write groups=1 */
    int dh, dw, dtext;              /* dilation (0 is 1); dtext: 0 omitted, 1 "D", 2 "DHxDW" */
    int n;                          /* channels or units */
    int p_pct;                      /* dropout probability, percent */
    int eps_text, mom_text;
    const char *kname, *nname;      /* block parameters written instead of the kernel, N */
    const char *gname, *sname, *dname; /* ... instead of groups, stride, dilation */
    const char *alias;              /* another name of the layer kind, or NULL */
} stmt;

typedef struct {
    int c, h, w, vec;               /* vec: a vector (after flatten, global pooling, dense) */
} shp;

/* Per-axis padding before and after, as cnnc's shape rule does. */
static void pads(const stmt *s, int n, int k, int st, int ph, int *a, int *b)
{
    if (s->padt == P_SAME) {
        int out = (n + st - 1) / st;
        int total = (out - 1) * st + k - n;
        if (total < 0) total = 0;
        *a = total / 2;
        *b = total - total / 2;
    } else if (s->padt == P_ONE || s->padt == P_TWO) {
        *a = *b = ph;
    } else {
        *a = *b = 0;
    }
}

/* Applies s to shape x; returns -1 when s is not valid there. Adds parameters and FLOPs. */
static int apply(const stmt *s, shp *x, long *params, double *flops)
{
    long in = (long)x->c * x->h * x->w;
    switch (s->kind) {
    case K_CONV: case K_MAXPOOL: case K_AVGPOOL: {
        if (x->vec) return -1;
        /* a dilated kernel spans d*(k-1)+1 pixels: the size rule and pad=same use that */
        int conv = s->kind == K_CONV, g = conv && s->groups > 1 ? s->groups : 1;
        int eh = conv && s->dh > 1 ? s->dh * (s->kh - 1) + 1 : s->kh;
        int ew = conv && s->dw > 1 ? s->dw * (s->kw - 1) + 1 : s->kw;
        int pt, pb, pl, pr;
        pads(s, x->h, eh, s->sh, s->ph, &pt, &pb);
        pads(s, x->w, ew, s->sw, s->padt == P_TWO ? s->pw : s->ph, &pl, &pr);
        if (x->h + pt + pb < eh || x->w + pl + pr < ew) return -1;
        if (conv && (x->c % g != 0 || s->n % g != 0)) return -1;
        if (s->kind == K_CONV && s->padmode == 1 && (pt > x->h - 1 || pb > x->h - 1 || pl > x->w - 1 || pr > x->w - 1))
            return -1;
        if (s->kind == K_CONV && s->padmode == 3 && (pt > x->h || pb > x->h || pl > x->w || pr > x->w)) return -1;
        if (s->kind != K_CONV && (pt > s->kh / 2 || pb > s->kh / 2 || pl > s->kw / 2 || pr > s->kw / 2)) return -1;
        int oh = (x->h + pt + pb - eh) / s->sh + 1, ow = (x->w + pl + pr - ew) / s->sw + 1;
        int oc = s->kind == K_CONV ? s->n : x->c;
        if (s->kind == K_CONV) { /* grouped: each output sees C/G input channels */
            *params += (long)s->kh * s->kw * (x->c / g) * oc + (s->bias ? oc : 0);
            *flops += 2.0 * s->kh * s->kw * (x->c / g) * oc * oh * ow + (double)oc * oh * ow * (1 + (s->act != A_NONE));
        } else {
            *flops += (double)s->kh * s->kw * oc * oh * ow;
        }
        x->c = oc;
        x->h = oh;
        x->w = ow;
        return 0;
    }
    case K_BN:
        *params += 2L * x->c;
        *flops += 2.0 * in;
        return 0;
    case K_DROPOUT: case K_ACT:
        *flops += (double)in;
        return 0;
    case K_GAP: case K_GMP:
        if (x->vec) return -1;
        *flops += (double)in;
        x->h = x->w = 1;
        x->vec = 1;
        return 0;
    case K_FLATTEN:
        x->c = (int)in;
        x->h = x->w = 1;
        x->vec = 1;
        return 0;
    case K_DENSE:
        *params += in * s->n + (s->bias ? s->n : 0);
        *flops += 2.0 * in * s->n + s->n * (double)(1 + (s->act != A_NONE));
        x->c = s->n;
        x->h = x->w = 1;
        x->vec = 1;
        return 0;
    }
    return -1;
}

static void put_act(sbuf *b, const stmt *s)
{
    static const char *const names[] = {"", "relu", "leakyrelu", "sigmoid", "tanh", "softmax",
                                        "relu6", "silu", "gelu", "elu"};
    put(b, "%s", s->act == A_SILU && s->act_alias ? "swish" : names[s->act]);
    if ((s->act == A_LEAKY || s->act == A_ELU) && s->alpha_text)
        put(b, "=%d.%03d", s->alpha_milli / 1000, s->alpha_milli % 1000);
}

static void put_size(sbuf *b, int a, int c, int square)
{
    if (square && a == c) put(b, "%d", a);
    else put(b, "%dx%d", a, c);
}

static void put_stmt(sbuf *b, const stmt *s)
{
    switch (s->kind) {
    case K_CONV: case K_MAXPOOL: case K_AVGPOOL:
        put(b, "%s ", s->alias ? s->alias : s->kind == K_CONV ? "conv" : s->kind == K_MAXPOOL ? "maxpool" : "avgpool");
        if (s->kname) put(b, "%s", s->kname);
        else put_size(b, s->kh, s->kw, s->ksquare);
        if (s->kind == K_CONV) {
            if (s->nname) put(b, " %s", s->nname);
            else put(b, " %d", s->n);
        }
        if (s->act != A_NONE && s->act_first) {
            put(b, " ");
            put_act(b, s);
        }
        if (s->sname) put(b, " stride=%s", s->sname);
        else if (s->stext == 1) put(b, " stride=%d", s->sh);
        else if (s->stext == 2) put(b, " stride=%dx%d", s->sh, s->sw);
        if (s->padt == P_VALID) put(b, " pad=valid");
        if (s->padt == P_ONE) put(b, " pad=%d", s->ph);
        if (s->padt == P_TWO) put(b, " pad=%dx%d", s->ph, s->pw);
        if (s->padt == P_SAME) put(b, " pad=same");
        if (s->kind == K_CONV) {
            if (s->padmode || s->padmode_text) put(b, " padding=%s", PADMODES[s->padmode]);
            if (s->flip || s->flip_text) put(b, " mode=%s", s->flip ? "convolution" : "correlation");
            if (!s->bias || s->bias_text) put(b, " bias=%s", s->bias ? "true" : "false");
            if (s->gname) put(b, " groups=%s", s->gname);
            else if (s->groups > 1 || s->groups_text) put(b, " groups=%d", s->groups > 1 ? s->groups : 1);
            if (s->dname) put(b, " dilation=%s", s->dname);
            else if (s->dtext == 1) put(b, " dilation=%d", s->dh > 1 ? s->dh : 1);
            else if (s->dtext == 2) put(b, " dilation=%dx%d", s->dh > 1 ? s->dh : 1, s->dw > 1 ? s->dw : 1);
        }
        if (s->act != A_NONE && !s->act_first) {
            put(b, " ");
            put_act(b, s);
        }
        break;
    case K_BN:
        put(b, "%s", s->alias ? s->alias : "batchnorm");
        if (s->eps_text) put(b, " eps=0.001");
        if (s->mom_text) put(b, " momentum=0.3");
        break;
    case K_DROPOUT:
        put(b, "dropout 0.%02d", s->p_pct);
        break;
    case K_ACT:
        put_act(b, s);
        break;
    case K_GAP:
        put(b, "%s", s->alias ? s->alias : "globalavgpool");
        break;
    case K_GMP:
        put(b, "%s", s->alias ? s->alias : "globalmaxpool");
        break;
    case K_FLATTEN:
        put(b, "flatten");
        break;
    case K_DENSE:
        put(b, "%s %d", s->alias ? s->alias : "dense", s->n);
        if (s->act != A_NONE) {
            put(b, " ");
            put_act(b, s);
        }
        if (!s->bias || s->bias_text) put(b, " bias=%s", s->bias ? "true" : "false");
        break;
    }
}

/* ---- random statements ---- */

/* An activation: none (none_pct percent), one of the first four (relu, leakyrelu, sigmoid,
 * tanh) or one of relu6, silu/swish, gelu, elu (about 45% of the rest). */
static int random_act(rng *r, int none_pct, stmt *s)
{
    s->act = chance(r, none_pct) ? A_NONE : chance(r, 55) ? between(r, A_RELU, A_TANH) : between(r, A_RELU6, A_ELU);
    s->alpha_text = (s->act == A_LEAKY || s->act == A_ELU) && chance(r, 60);
    s->alpha_milli = !s->alpha_text ? (s->act == A_ELU ? 1000 : 10)
                   : s->act == A_ELU ? between(r, 50, 2000) : between(r, 1, 300);
    s->act_alias = s->act == A_SILU && chance(r, 35);
    s->act_first = chance(r, 50);
    return s->act;
}

static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

/* A random divisor > 1 of n, or 1 when n has none. */
static int some_divisor(rng *r, int n)
{
    int d[16], nd = 0;
    for (int i = 2; i <= n && nd < 16; i++)
        if (n % i == 0) d[nd++] = i;
    return nd ? d[rnd(r, nd)] : 1;
}

/* A convolution for input x; same: pad=same and stride 1 (keeps the size). */
static stmt random_conv(rng *r, const shp *x, int same, int channels)
{
    stmt s = {0};
    s.kind = K_CONV;
    s.kh = between(r, 1, 5);
    s.kw = chance(r, 30) ? between(r, 1, 5) : s.kh;
    s.ksquare = chance(r, 40);
    s.sh = s.sw = 1;
    if (!same && chance(r, 35)) {
        s.sh = between(r, 1, 3);
        s.sw = chance(r, 40) ? between(r, 1, 3) : s.sh;
    }
    s.stext = s.sh != s.sw ? 2 : s.sh != 1 ? (chance(r, 50) ? 1 : 2) : (chance(r, 15) ? 1 : 0);
    /* dilation (a kernel of 1 has nothing to spread, but dilation=D is still valid there) */
    s.dh = s.dw = 1;
    if ((s.kh > 1 || s.kw > 1) && chance(r, 25)) {
        s.dh = between(r, 1, 3);
        s.dw = chance(r, 30) ? between(r, 1, 3) : s.dh;
        if (s.dh == 1 && s.dw == 1) s.dh = 2;
        s.dtext = s.dh != s.dw ? 2 : chance(r, 60) ? 1 : 2;
    } else if (chance(r, 4)) {
        s.dtext = 1;
    }
    int eh = s.dh * (s.kh - 1) + 1, ew = s.dw * (s.kw - 1) + 1;
    if (same) {
        s.padt = P_SAME;
    } else {
        int t = rnd(r, 5);
        s.padt = t;
        s.ph = between(r, 0, eh / 2 + 1);
        s.pw = t == P_TWO ? between(r, 0, ew / 2 + 1) : s.ph;
    }
    s.padmode = chance(r, 45) ? 0 : between(r, 1, 3);
    s.padmode_text = chance(r, 20);
    s.flip = chance(r, 30);
    s.flip_text = chance(r, 15);
    s.bias = !chance(r, 30);
    s.bias_text = chance(r, 15);
    random_act(r, 35, &s);
    s.n = channels > 0 ? channels : between(r, 1, 8);
    /* groups: depthwise (groups = input channels, output a multiple of them; the output
     * channels may be fixed by the caller), grouped (a divisor of both), or none */
    int gk = rnd(r, 100);
    if (gk < 14 && x->c > 1 && (channels <= 0 || channels % x->c == 0)) {
        s.groups = x->c;
        if (channels <= 0) s.n = x->c * between(r, 1, 2);
    } else if (gk < 28) {
        if (channels > 0) {
            s.groups = some_divisor(r, gcd(x->c, channels));
        } else {
            s.groups = some_divisor(r, x->c);
            s.n = s.groups * between(r, 1, s.groups > 4 ? 1 : 8 / s.groups);
        }
    }
    s.groups_text = s.groups <= 1 && chance(r, 4);
    s.alias = chance(r, 10) ? (chance(r, 50) ? "conv2d" : "convolution") : NULL;
    /* the window must fit and the padding mode be valid: fall back step by step (groups
     * stay valid as drawn) */
    shp t = *x;
    long p = 0;
    double f = 0;
    if (apply(&s, &t, &p, &f) == 0) return s;
    s.padmode = 2; /* replicate: any padding */
    t = *x;
    if (apply(&s, &t, &p, &f) == 0) return s;
    s.dh = s.dw = 1; /* no dilation */
    t = *x;
    if (apply(&s, &t, &p, &f) == 0) return s;
    s.kh = s.kh < x->h ? s.kh : x->h;
    s.kw = s.kw < x->w ? s.kw : x->w;
    return s;
}

static stmt random_pool(rng *r, const shp *x)
{
    stmt s = {0};
    s.kind = chance(r, 50) ? K_MAXPOOL : K_AVGPOOL;
    s.kh = between(r, 1, 3);
    s.kw = chance(r, 25) ? between(r, 1, 3) : s.kh;
    s.ksquare = chance(r, 50);
    s.sh = s.kh;
    s.sw = s.kw;
    s.stext = 0;
    if (chance(r, 40)) {
        s.sh = between(r, 1, 3);
        s.sw = chance(r, 30) ? between(r, 1, 3) : s.sh;
        s.stext = s.sh == s.sw && chance(r, 50) ? 1 : 2;
    }
    int t = rnd(r, 5);
    s.padt = t;
    s.ph = between(r, 0, s.kh / 2);
    s.pw = t == P_TWO ? between(r, 0, s.kw / 2) : s.ph;
    if (t == P_ONE && s.ph > s.kw / 2) s.ph = s.kw / 2;
    if (chance(r, 10))
        s.alias = s.kind == K_MAXPOOL ? (chance(r, 50) ? "maxpool2d" : "max_pool") : (chance(r, 50) ? "avgpool2d" : "avg_pool");
    shp c = *x;
    long p = 0;
    double f = 0;
    if (apply(&s, &c, &p, &f) != 0) s.padt = P_OMIT, s.kh = s.kw = s.sh = s.sw = 1, s.stext = 0;
    return s;
}

static stmt random_simple(rng *r, int kind)
{
    stmt s = {0};
    s.kind = kind;
    s.bias = 1;
    if (kind == K_BN) {
        s.eps_text = chance(r, 25);
        s.mom_text = chance(r, 25);
        s.alias = chance(r, 15) ? "bn" : NULL;
    } else if (kind == K_DROPOUT) {
        s.p_pct = between(r, 0, 60);
    } else if (kind == K_ACT) {
        random_act(r, 0, &s);
    }
    return s;
}

static stmt random_dense(rng *r, int units, int final)
{
    stmt s = {0};
    s.kind = K_DENSE;
    s.n = units;
    s.bias = !chance(r, 20);
    s.bias_text = chance(r, 15);
    if (final) s.act = chance(r, 20) ? A_SOFTMAX : A_NONE;
    else random_act(r, 30, &s);
    s.alias = chance(r, 10) ? (chance(r, 50) ? "linear" : "fc") : NULL;
    return s;
}

/* ---- networks ---- */

typedef struct {
    rng *r;
    sbuf defs, body;
    shp x;
    long params;
    double flops;
    int nblocks, depth;
} net;

static void indent(net *g) { put(&g->body, "%*s", 4 * g->depth, ""); }

/* Writes s on its own line and applies it. */
static int emit(net *g, const stmt *s)
{
    if (apply(s, &g->x, &g->params, &g->flops) != 0) return -1;
    indent(g);
    put_stmt(&g->body, s);
    put(&g->body, "\n");
    return 0;
}

/* A statement line in a path or a shortcut: s is known to be valid on g->x. */
static void emit_valid(net *g, const stmt *s)
{
    if (emit(g, s) != 0) abort(); /* the generator's own mistake */
}

/* A 1x1 convolution to n channels with stride sh x sw and no padding: ceil(size / stride),
 * valid on every image. */
static stmt conv1x1(rng *r, int n, int sh, int sw)
{
    stmt s = {0};
    s.kind = K_CONV;
    s.kh = s.kw = 1;
    s.ksquare = chance(r, 50);
    s.sh = sh;
    s.sw = sw;
    s.stext = sh != sw ? 2 : sh != 1 ? (chance(r, 50) ? 1 : 2) : 0;
    s.padt = chance(r, 20) ? P_VALID : P_OMIT;
    s.bias = chance(r, 40);
    s.n = n;
    return s;
}

static void concat(net *g, int st);

/* A residual unit. Without a shortcut: stride-1 same-padded convolutions (the last back to
 * the channels of its input), batchnorm, activations, a size-keeping pool, now and then a
 * concat. With one (proj): the body may stride (its first convolution) and change the
 * channels, and the shortcut brings the input to the body's shape: a strided 1x1
 * convolution (projection), or a same-padded convolution and batchnorm. */
static void residual(net *g)
{
    rng *r = g->r;
    shp x0 = g->x;
    int proj = chance(r, 45);
    int c = proj ? between(r, 1, 12) : g->x.c;
    int sh = 1, sw = 1;
    if (proj && chance(r, 60)) {
        sh = between(r, 1, 2);
        sw = chance(r, 30) ? between(r, 1, 2) : sh;
    }
    indent(g);
    put(&g->body, "residual {\n");
    g->depth++;
    int nconv = between(r, 1, 2);
    for (int i = 0; i < nconv; i++) {
        if (i == nconv - 1 && i > 0 && g->depth < 3 && chance(r, 15)) concat(g, 1);
        stmt s = random_conv(r, &g->x, 1, i == nconv - 1 ? c : between(r, 1, 8));
        if (i == 0 && (sh > 1 || sw > 1)) {
            s.sh = sh;
            s.sw = sw;
            s.stext = sh != sw ? 2 : chance(r, 50) ? 1 : 2;
        }
        s.act = chance(r, 50) ? s.act : A_NONE;
        if (emit(g, &s) != 0) { /* a window wider than a tiny image with reflect: make it 1x1 */
            s.kh = s.kw = 1;
            emit_valid(g, &s);
        }
        if (chance(r, 35)) {
            stmt b = random_simple(r, K_BN);
            emit(g, &b);
        }
        if (chance(r, 30)) {
            stmt a = random_simple(r, K_ACT);
            emit(g, &a);
        }
    }
    if (chance(r, 25)) {
        stmt p = {0};
        p.kind = chance(r, 50) ? K_MAXPOOL : K_AVGPOOL;
        p.kh = p.kw = 3;
        p.sh = p.sw = 1;
        p.stext = 1;
        p.padt = P_SAME;
        if (emit(g, &p) != 0) {
            p.padt = P_ONE;
            p.ph = 1;
            emit(g, &p);
        }
    }
    g->depth--;
    indent(g);
    if (!proj) {
        put(&g->body, "}\n");
        return;
    }
    /* the shortcut, on the block's input, to the body's output shape */
    shp body = g->x;
    put(&g->body, "} shortcut {\n");
    g->depth++;
    g->x = x0;
    stmt s[3];
    int n = 0;
    if (chance(r, 55)) {
        s[n] = conv1x1(r, c, sh, sw);
        if (chance(r, 25)) s[n].groups = some_divisor(r, gcd(x0.c, c));
        n++;
        if (chance(r, 50)) s[n++] = random_simple(r, K_BN);
    } else {
        s[n] = random_conv(r, &x0, 1, c);
        s[n].sh = sh;
        s[n].sw = sw;
        s[n].stext = sh != sw ? 2 : sh != 1 ? 1 : 0;
        n++;
        s[n++] = random_simple(r, K_BN);
        if (chance(r, 20)) s[n++] = random_simple(r, K_ACT);
    }
    shp t = x0;
    long p = 0;
    double f = 0;
    for (int i = 0; i < n; i++)
        if (apply(&s[i], &t, &p, &f) != 0) t.c = -1;
    if (t.c != body.c || t.h != body.h || t.w != body.w) { /* cannot happen: the projection */
        s[0] = conv1x1(r, c, sh, sw);
        n = 1;
    }
    for (int i = 0; i < n; i++)
        emit_valid(g, &s[i]);
    if (g->x.c != body.c || g->x.h != body.h || g->x.w != body.w) abort();
    g->depth--;
    indent(g);
    put(&g->body, "}\n");
}

/* concat { path { ... } ... }: 2-4 paths on the same input, each to ceil(size / st) (its
 * first statement has stride st, the rest keep the size): same-padded convolutions
 * (grouped, dilated), a 1x1 convolution before one, a pooling (and a 1x1 convolution), or
 * with st = 1 now and then the empty path (the identity). Written inline or one statement
 * a line. */
static void concat(net *g, int st)
{
    rng *r = g->r;
    shp x0 = g->x;
    int th = (x0.h + st - 1) / st, tw = (x0.w + st - 1) / st;
    int npaths = between(r, 2, 4);
    int ident = st == 1 && chance(r, 35) ? rnd(r, npaths) : -1;
    stmt ps[4][3];
    int pn[4];
    shp out = {0, th, tw, 0};
    for (int i = 0; i < npaths; i++) {
        stmt *s = ps[i];
        int n = 0;
        if (i == ident) {
            pn[i] = 0;
            out.c += x0.c;
            continue;
        }
        int what = rnd(r, 100);
        if (what < 45) {
            s[n] = random_conv(r, &x0, 1, 0);
            s[n].sh = s[n].sw = st;
            s[n].stext = st > 1 ? 1 : s[n].stext;
            n++;
            if (chance(r, 25)) s[n++] = random_simple(r, K_BN);
            if (chance(r, 25)) s[n++] = random_simple(r, K_ACT);
        } else if (what < 70) {
            s[n] = conv1x1(r, between(r, 1, 8), st, st);
            random_act(r, 40, &s[n]);
            n++;
            shp m = {s[0].n, th, tw, 0};
            s[n++] = random_conv(r, &m, 1, 0);
        } else {
            s[n] = (stmt){0};
            s[n].kind = chance(r, 50) ? K_MAXPOOL : K_AVGPOOL;
            s[n].kh = s[n].kw = 3;
            s[n].ksquare = chance(r, 50);
            s[n].sh = s[n].sw = st;
            s[n].stext = 1;
            s[n].padt = st == 1 && chance(r, 50) ? P_ONE : P_SAME;
            s[n].ph = 1;
            n++;
            if (chance(r, 60)) {
                s[n] = conv1x1(r, between(r, 1, 8), 1, 1);
                random_act(r, 40, &s[n]);
                n++;
            }
        }
        shp t = x0;
        long p = 0;
        double f = 0;
        for (int j = 0; j < n; j++)
            if (apply(&s[j], &t, &p, &f) != 0) t.c = -1;
        if (t.c < 0 || t.h != th || t.w != tw) { /* a window too wide for a tiny image */
            s[0] = conv1x1(r, between(r, 1, 8), st, st);
            n = 1;
            t = x0;
            apply(&s[0], &t, &p, &f);
        }
        pn[i] = n;
        out.c += t.c;
    }
    indent(g);
    put(&g->body, "concat {\n");
    g->depth++;
    for (int i = 0; i < npaths; i++) {
        g->x = x0;
        indent(g);
        if (pn[i] == 0) {
            put(&g->body, "path { }\n");
        } else if (chance(r, 60)) {
            put(&g->body, "path {");
            for (int j = 0; j < pn[i]; j++) {
                if (apply(&ps[i][j], &g->x, &g->params, &g->flops) != 0) abort();
                put(&g->body, "%s", j ? "; " : " ");
                put_stmt(&g->body, &ps[i][j]);
            }
            put(&g->body, " }\n");
        } else {
            put(&g->body, "path {\n");
            g->depth++;
            for (int j = 0; j < pn[i]; j++)
                emit_valid(g, &ps[i][j]);
            g->depth--;
            indent(g);
            put(&g->body, "}\n");
        }
    }
    g->depth--;
    indent(g);
    put(&g->body, "}\n");
    g->x = out;
}

/* repeat N { stride-1 same convolutions, batchnorm, activation }: valid every time. */
static void repeat(net *g)
{
    rng *r = g->r;
    int times = between(r, 2, 3);
    stmt body[3];
    int n = 0;
    body[n++] = random_conv(r, &g->x, 1, 0);
    if (chance(r, 40)) body[n++] = random_simple(r, K_BN);
    if (chance(r, 40)) body[n++] = random_simple(r, K_ACT);
    shp x = g->x;
    long p = g->params;
    double f = g->flops;
    for (int t = 0; t < times; t++)
        for (int i = 0; i < n; i++)
            if (apply(&body[i], &x, &p, &f) != 0) return; /* cannot: leave it out */
    g->x = x;
    g->params = p;
    g->flops = f;
    indent(g);
    put(&g->body, "repeat %d {", times);
    for (int i = 0; i < n; i++) {
        put(&g->body, "%s", i ? "; " : " ");
        put_stmt(&g->body, &body[i]);
    }
    put(&g->body, " }\n");
}

/* A depthwise separable block as MobileNet's, the channels, stride and dilation its
 * parameters: block dwsN(cin, cout, s, d) { conv KxK cin groups=cin stride=s dilation=d
 * pad=same; [batchnorm;] conv 1x1 cout }, called once or twice with cin the channels there. */
static void dws_block(net *g, int id)
{
    rng *r = g->r;
    stmt dw = random_conv(r, &g->x, 1, 0);
    dw.padmode = chance(r, 70) ? 0 : 2; /* any kernel, dilation and size */
    dw.groups = 2;                      /* written as the parameter */
    dw.nname = dw.gname = "cin";
    dw.sname = "s";
    dw.dname = "d";
    dw.dtext = 0;
    stmt pw = conv1x1(r, 1, 1, 1);
    pw.nname = "cout";
    random_act(r, 40, &pw);
    int with_bn = chance(r, 50);
    put(&g->defs, "block dws%d(cin, cout, s, d) {\n    ", id);
    put_stmt(&g->defs, &dw);
    if (with_bn) put(&g->defs, "\n    batchnorm");
    put(&g->defs, "\n    ");
    put_stmt(&g->defs, &pw);
    put(&g->defs, "\n}\n");
    int calls = between(r, 1, 2);
    for (int i = 0; i < calls; i++) {
        int cin = g->x.c, cout = between(r, 1, 8), st = between(r, 1, 2), d = between(r, 1, 2);
        stmt s[3];
        int n = 0;
        s[n] = dw, s[n].n = s[n].groups = cin, s[n].sh = s[n].sw = st, s[n].dh = s[n].dw = d, n++;
        if (with_bn) s[n++] = random_simple(r, K_BN);
        s[n] = pw, s[n].n = cout, n++;
        shp x = g->x;
        long p = g->params;
        double f = g->flops;
        int ok = 1;
        for (int j = 0; j < n && ok; j++)
            ok = apply(&s[j], &x, &p, &f) == 0;
        if (!ok) abort(); /* same padding, zero or replicate: valid everywhere */
        g->x = x;
        g->params = p;
        g->flops = f;
        indent(g);
        put(&g->body, "dws%d(%d, %d, %d, %d)\n", id, cin, cout, st, d);
    }
}

/* A block with parameters (channels c, kernel k) defined at the top and called with values
 * valid here; sometimes a second block calling the first. */
static void block(net *g)
{
    rng *r = g->r;
    int id = g->nblocks++;
    if (chance(r, 35)) {
        dws_block(g, id);
        return;
    }
    stmt conv = random_conv(r, &g->x, 1, 0);
    conv.groups = 1; /* the calls change the channels */
    conv.kname = "k";
    conv.nname = "c";
    int with_bn = chance(r, 50), nested = chance(r, 30);
    put(&g->defs, "block unit%d(c, k) {", id);
    put_stmt(&g->defs, &conv);
    if (with_bn) put(&g->defs, "; batchnorm");
    put(&g->defs, " }\n");
    if (nested) put(&g->defs, "block stage%d(ch) {\n    unit%d(ch, 1)\n    unit%d(ch, 3x1)\n}\n", id, id, id);
    int calls = between(r, 1, 2);
    for (int i = 0; i < calls; i++) {
        int ch = between(r, 1, 8);
        stmt s[4];
        int n = 0;
        if (nested) {
            s[n] = conv, s[n].kh = s[n].kw = 1, s[n].n = ch, n++;
            if (with_bn) s[n++] = random_simple(r, K_BN);
            s[n] = conv, s[n].kh = 3, s[n].kw = 1, s[n].n = ch, n++;
            if (with_bn) s[n++] = random_simple(r, K_BN);
        } else {
            s[n] = conv, s[n].kh = between(r, 1, 4), s[n].kw = chance(r, 30) ? between(r, 1, 4) : s[n].kh, s[n].n = ch, n++;
            if (with_bn) s[n++] = random_simple(r, K_BN);
        }
        shp x = g->x;
        long p = g->params;
        double f = g->flops;
        int ok = 1;
        for (int j = 0; j < n && ok; j++)
            ok = apply(&s[j], &x, &p, &f) == 0;
        if (!ok && !nested) { /* a 1x1 kernel is valid everywhere */
            s[0].kh = s[0].kw = 1;
            x = g->x, p = g->params, f = g->flops, ok = 1;
            for (int j = 0; j < n && ok; j++)
                ok = apply(&s[j], &x, &p, &f) == 0;
        }
        if (!ok) continue;
        g->x = x;
        g->params = p;
        g->flops = f;
        indent(g);
        if (nested) {
            put(&g->body, "stage%d(%d)\n", id, ch);
        } else {
            put(&g->body, "unit%d(%d, ", id, ch);
            put_size(&g->body, s[0].kh, s[0].kw, chance(r, 50));
            put(&g->body, ")\n");
        }
    }
}

/* One whole network; returns -1 when it came out too large (the caller draws again). */
static int network(rng *r, const char *name, sbuf *out, int *classes, shp *input)
{
    net g = {0};
    g.r = r;
    g.x.c = between(r, 1, 3);
    g.x.h = between(r, 5, 20);
    g.x.w = chance(r, 40) ? between(r, 5, 20) : g.x.h;
    *input = g.x;
    put(&g.body, "input %dx%dx%d\n", g.x.c, g.x.h, g.x.w);
    int nimg = between(r, 1, 6);
    for (int i = 0; i < nimg; i++) {
        int what = rnd(r, 100);
        if (what < 36) {
            stmt s = random_conv(r, &g.x, 0, 0);
            emit(&g, &s);
        } else if (what < 50) {
            stmt s = random_pool(r, &g.x);
            emit(&g, &s);
        } else if (what < 57) {
            stmt s = random_simple(r, K_BN);
            emit(&g, &s);
        } else if (what < 61) {
            stmt s = random_simple(r, K_DROPOUT);
            emit(&g, &s);
        } else if (what < 67) {
            stmt s = random_simple(r, K_ACT);
            emit(&g, &s);
        } else if (what < 78) {
            residual(&g);
        } else if (what < 86) {
            concat(&g, chance(r, 25) ? 2 : 1);
        } else if (what < 93) {
            repeat(&g);
        } else {
            block(&g);
        }
    }
    /* from image to vector: flatten, a global pooling, or dense's implicit flatten */
    int how = rnd(r, 4);
    if (how < 3) {
        stmt s = {0};
        s.kind = how == 0 ? K_FLATTEN : how == 1 ? K_GAP : K_GMP;
        if (s.kind == K_GAP && chance(r, 30)) s.alias = chance(r, 50) ? "gap" : "global_avg_pool";
        if (s.kind == K_GMP && chance(r, 30)) s.alias = chance(r, 50) ? "gmp" : "global_max_pool";
        emit(&g, &s);
    }
    int nvec = between(r, 0, 3);
    for (int i = 0; i < nvec; i++) {
        int what = rnd(r, 100);
        stmt s = what < 55 ? random_dense(r, between(r, 2, 24), 0)
               : what < 70 ? random_simple(r, K_BN)
               : what < 85 ? random_simple(r, K_DROPOUT) : random_simple(r, K_ACT);
        emit(&g, &s);
    }
    *classes = between(r, 2, 5);
    stmt last = random_dense(r, *classes, 1);
    int softmax_layer = last.act == A_NONE && chance(r, 15);
    emit(&g, &last);
    if (softmax_layer) put(&g.body, "softmax\n");
    if (g.params > MAX_PARAMS || g.flops > MAX_FLOPS || g.params == 0) {
        free(g.defs.p);
        free(g.body.p);
        return -1;
    }
    put(out, "# %s.cnn - generated by tests/gen_nets: %ld parameters, about %.0f FLOPs\nnetwork %s\n", name,
        g.params, g.flops, name);
    if (g.defs.len) put(out, "%s", g.defs.p);
    put(out, "%s", g.body.p);
    if (chance(r, 50)) { /* training defaults: the generated program must carry them too */
        int sgd = chance(r, 50);
        static const char *const splits[] = {"7:2:1", "8:1:1", "7:3:0"};
        put(out, "train {\n    optimizer %s lr=%s", sgd ? "sgd" : "adam", sgd ? "0.01" : "0.002");
        if (sgd && chance(r, 70)) put(out, " momentum=0.9");
        if (chance(r, 50)) put(out, " weight_decay=0.001");
        put(out, "\n    batch %d\n    epochs 3\n    split %s\n    seed %d\n", 4 << rnd(r, 3), splits[rnd(r, 3)],
            between(r, 1, 99));
        if (chance(r, 50)) put(out, "    augment hflip\n");
        put(out, "}\n");
    }
    free(g.defs.p);
    free(g.body.p);
    printf("%s.cnn %dx%dx%d %d %ld %.0f\n", name, input->c, input->h, input->w, *classes, g.params, g.flops);
    return 0;
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

static int make_nets(const char *dir, uint64_t seed, int count)
{
    rng r = {seed * 0x2545f4914f6cdd1dULL + 17};
    for (int i = 0; i < count; i++) {
        char name[16], path[4096];
        snprintf(name, sizeof name, "g%03d", i);
        snprintf(path, sizeof path, "%s/%s.cnn", dir, name);
        sbuf text = {0};
        int classes;
        shp in;
        while (network(&r, name, &text, &classes, &in) != 0)
            ;
        int rc = write_file(path, text.p, text.len);
        free(text.p);
        if (rc) return 1;
    }
    return 0;
}

/* Images of class k: a diagonal stripe pattern whose direction and frequency depend on k,
 * a brightness that depends on the channel, and noise; all from the seed. */
static int make_images(const char *dir, int c, int h, int w, int k, int per, uint64_t seed)
{
    rng r = {seed + 0x51ed2701ULL};
    static unsigned char px[3 * 256 * 256];
    if (c < 1 || c > 3 || h < 1 || w < 1 || h > 256 || w > 256) return 2;
    for (int cls = 0; cls < k; cls++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/c%d", dir, cls);
        if ((mkdir(dir, 0777) != 0 && errno != EEXIST) || (mkdir(path, 0777) != 0 && errno != EEXIST)) {
            perror(path);
            return 1;
        }
        int comp = c == 3 ? 3 : 1; /* a 2-channel network reads grey (+ opaque alpha) */
        for (int i = 0; i < per; i++) {
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int ch = 0; ch < comp; ch++) {
                        int stripe = ((x * (cls + 1) + y * (cls % 2 ? -1 : 1) * (cls + 2)) / 2) & 1;
                        int v = 40 + 150 * stripe + 20 * ch + rnd(&r, 50);
                        px[(y * w + x) * comp + ch] = (unsigned char)(v > 255 ? 255 : v);
                    }
            char file[4200], head[64];
            snprintf(file, sizeof file, "%s/i%03d.%s", path, i, comp == 3 ? "ppm" : "pgm");
            int hl = snprintf(head, sizeof head, "P%d\n%d %d\n255\n", comp == 3 ? 6 : 5, w, h);
            FILE *f = fopen(file, "wb");
            if (!f || fwrite(head, 1, (size_t)hl, f) != (size_t)hl ||
                fwrite(px, 1, (size_t)w * h * comp, f) != (size_t)w * h * comp || fclose(f) != 0) {
                perror(file);
                return 1;
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "nets") == 0) {
        int count = atoi(argv[4]);
        if (count < 1 || count > 1000) return 2;
        return make_nets(argv[2], strtoull(argv[3], NULL, 10), count);
    }
    int c, h, w;
    if (argc == 7 && strcmp(argv[1], "images") == 0 && sscanf(argv[3], "%dx%dx%d", &c, &h, &w) == 3)
        return make_images(argv[2], c, h, w, atoi(argv[4]), atoi(argv[5]), strtoull(argv[6], NULL, 10));
    fprintf(stderr, "usage: gen_nets nets DIR SEED COUNT | images DIR CxHxW CLASSES PER_CLASS SEED\n");
    return 2;
}
