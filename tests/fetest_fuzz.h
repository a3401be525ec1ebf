/*
 * fetest_fuzz.h - deterministic random inputs for the front end's robustness tests: raw
 * bytes, printable text, and "token soup" made of the language's own words, so that random
 * input reaches the parser and the expansion, not only the lexer. Header-only, shared by
 * tests/test_frontend.c (in-process) and tests/fetest_garbage.c (files for cnnc).
 */
#ifndef FETEST_FUZZ_H
#define FETEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* xorshift64*: a fixed seed gives the same input on every machine. */
static inline uint64_t fetest_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static const char *const FETEST_VOCAB[] = {
    "input", "3x8x8", "1x4x4", "conv", "3x3", "1x1", "16", "4", "2", "0", "relu", "tanh", "softmax",
    "leakyrelu=0.2", "maxpool", "avgpool", "2x2", "stride=2", "pad=same", "pad=1", "padding=reflect",
    "bias=false", "flatten", "dense", "dropout", "0.5", "batchnorm", "gap", "globalmaxpool",
    "repeat", "residual", "block", "b", "b(4)", "b()", "c", "(", ")", "{", "}", ",", "=", ";",
    "\n", "\n", "\n", "train", "optimizer", "adam", "sgd", "lr=0.1", "batch", "epochs", "split",
    "7:2:1", "seed", "network", "x", "#", "1.5e3", "99999999999", "3x", "@", "\t",
};
enum { FETEST_NVOCAB = sizeof FETEST_VOCAB / sizeof FETEST_VOCAB[0] };

/* Statement heads and arguments for mode 3, which writes mostly well-formed lines. */
static const char *const FETEST_HEADS[] = {
    "conv", "conv", "maxpool", "avgpool", "dense", "flatten", "dropout", "batchnorm", "relu",
    "leakyrelu", "softmax", "gap", "gmp", "b(2)", "b(c)", "b()", "repeat 2 {", "repeat c {",
    "residual {", "}", "}", "block b(c) {", "input 2x9x9", "network n", "train {", "batch 4",
};
static const char *const FETEST_ARGS[] = {
    "3x3", "1x1", "5", "2x2", "3", "8", "c", "0.5", "relu", "tanh", "softmax", "stride=2",
    "stride=1x2", "pad=same", "pad=1", "pad=2x0", "padding=reflect", "padding=circular",
    "bias=false", "mode=convolution", "eps=0.1", "momentum=0.5", "leakyrelu=0.1", "0", "x",
};
enum { FETEST_NHEADS = sizeof FETEST_HEADS / sizeof FETEST_HEADS[0],
       FETEST_NARGS = sizeof FETEST_ARGS / sizeof FETEST_ARGS[0] };

/* Fills buf (capacity cap >= 1) with a NUL-terminated input of one of four modes:
 * 0 raw bytes (may contain NULs; the length is returned), 1 printable ASCII and newlines,
 * 2 language tokens separated by spaces, 3 lines of a layer word or structure and up to
 * three arguments after `input 3x16x16`. Returns the length. */
static inline size_t fetest_make(int mode, uint64_t seed, char *buf, size_t cap)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t n = 0;
    if (cap == 0) return 0;
    while (n + 1 < cap) {
        uint64_t r = fetest_rand(&s);
        if (mode == 0) {
            buf[n++] = (char)(r >> 56);
        } else if (mode == 1) {
            int c = (int)(r % 100);
            buf[n++] = c < 5 ? '\n' : (char)(' ' + c - 5);
        } else if (mode == 3) {
            char line[128];
            const char *head = n == 0 ? "input 3x16x16" : FETEST_HEADS[r % FETEST_NHEADS];
            int nargs = n == 0 ? 0 : (int)((r >> 20) % 4);
            size_t len = (size_t)snprintf(line, sizeof line, "%s", head);
            for (int i = 0; i < nargs; i++)
                len += (size_t)snprintf(line + len, sizeof line - len, " %s",
                                        FETEST_ARGS[(r >> (24 + 8 * i)) % FETEST_NARGS]);
            if (n + len + 2 > cap) break;
            memcpy(buf + n, line, len);
            n += len;
            buf[n++] = '\n';
        } else {
            const char *w = FETEST_VOCAB[r % FETEST_NVOCAB];
            size_t len = strlen(w);
            if (n + len + 2 > cap) break;
            memcpy(buf + n, w, len);
            n += len;
            buf[n++] = ' ';
        }
    }
    buf[n] = '\0';
    return n;
}

/* Writes a mutant of the text src (len bytes) to out (capacity cap): a few random edits,
 * each one of: drop a line, duplicate a line, swap two lines, change a digit, append an
 * argument to a line. Mutants of valid networks are often valid or fail late (in shape
 * inference), which random text rarely reaches. Returns the length. */
static inline size_t fetest_mutate(const char *src, size_t len, uint64_t seed, char *out, size_t cap)
{
    enum { MAXL = 256 };
    const char *ls[MAXL];
    size_t ll[MAXL];
    char extra[MAXL][32];
    int nl = 0;
    for (size_t i = 0; i < len && nl < MAXL;) {
        size_t j = i;
        while (j < len && src[j] != '\n') j++;
        ls[nl] = src + i;
        ll[nl] = j - i;
        extra[nl][0] = '\0';
        nl++;
        i = j + 1;
    }
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    char digits[MAXL];              /* per line: index+1 of a digit to change, 0 none */
    char newdigit[MAXL];
    memset(digits, 0, sizeof digits);
    memset(newdigit, 0, sizeof newdigit);
    int edits = 1 + (int)(fetest_rand(&s) % 3);
    for (int e = 0; e < edits && nl > 0; e++) {
        uint64_t r = fetest_rand(&s);
        int a = (int)((r >> 8) % (uint64_t)nl), b = (int)((r >> 24) % (uint64_t)nl);
        switch (r % 5) {
        case 0: /* drop line a */
            for (int k = a; k + 1 < nl; k++) {
                ls[k] = ls[k + 1], ll[k] = ll[k + 1];
                memcpy(extra[k], extra[k + 1], sizeof extra[k]);
                digits[k] = digits[k + 1], newdigit[k] = newdigit[k + 1];
            }
            nl--;
            break;
        case 1: /* duplicate line a after itself */
            if (nl < MAXL) {
                for (int k = nl; k > a; k--) {
                    ls[k] = ls[k - 1], ll[k] = ll[k - 1];
                    memcpy(extra[k], extra[k - 1], sizeof extra[k]);
                    digits[k] = digits[k - 1], newdigit[k] = newdigit[k - 1];
                }
                nl++;
            }
            break;
        case 2: { /* swap lines a and b */
            const char *tl = ls[a];
            size_t tn = ll[a];
            ls[a] = ls[b], ll[a] = ll[b];
            ls[b] = tl, ll[b] = tn;
            break;
        }
        case 3: /* change one digit of line a */
            for (size_t k = 0; k < ll[a] && k < 127; k++)
                if (ls[a][k] >= '0' && ls[a][k] <= '9') {
                    digits[a] = (char)(k + 1);
                    newdigit[a] = (char)('0' + (r >> 40) % 10);
                    break;
                }
            break;
        default: /* append an argument to line a */
            snprintf(extra[a], sizeof extra[a], " %s", FETEST_ARGS[(r >> 40) % FETEST_NARGS]);
            break;
        }
    }
    size_t n = 0;
    for (int k = 0; k < nl; k++) {
        size_t el = strlen(extra[k]);
        if (n + ll[k] + el + 2 > cap) break;
        memcpy(out + n, ls[k], ll[k]);
        if (digits[k]) out[n + (size_t)digits[k] - 1] = newdigit[k];
        n += ll[k];
        memcpy(out + n, extra[k], el);
        n += el;
        out[n++] = '\n';
    }
    if (cap) out[n < cap ? n : cap - 1] = '\0';
    return n;
}

#endif
