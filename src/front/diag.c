/*
 * diag.c - prints every diagnostic about a .cnn file in one format:
 *   file:line:col: error: message
 *      12 | conv 3x3 16 rleu
 *         |             ^~~~
 *   hint: did you mean 'relu'?
 * Non-printable bytes are shown as '?', and very long lines are cut around the column,
 * so that even a binary file gives a readable message. Messages are held and printed in
 * file order at the end, since the stages find errors in their own order.
 */
#include "diag.h"

#include "cnnrt.h"
#include "util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { SHOW_WIDTH = 100 };  /* characters of a source line shown around the column */

void diag_init(cnn_diag *d, const char *file, const char *text, size_t len, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->file = file;
    d->text = text;
    d->len = len;
    d->out = out ? out : stderr;
    d->max_errors = 20;
}

/* Finds the start and length of 1-based line number `line` in the source. */
static int find_line(const cnn_diag *d, int line, const char **start, size_t *len)
{
    if (!d->text || line < 1) return 0;
    const char *p = d->text, *end = d->text + d->len;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return 0;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *start = p;
    *len = (size_t)((nl ? nl : end) - p);
    if (*len && p[*len - 1] == '\r') (*len)--;
    return 1;
}

static void show_line(cnn_diag *d, FILE *out, cnn_loc loc)
{
    const char *s;
    size_t n;
    if (!find_line(d, loc.line, &s, &n)) return;
    size_t col = loc.col > 0 ? (size_t)loc.col - 1 : 0;
    if (col > n) col = n;
    size_t last = (loc.last_line == loc.line && loc.last_col >= loc.col) ? (size_t)loc.last_col - 1 : col;
    if (last >= n) last = n ? n - 1 : 0;
    if (last < col) last = col;
    /* window of SHOW_WIDTH characters that contains the column */
    size_t from = col > SHOW_WIDTH / 2 ? col - SHOW_WIDTH / 2 : 0;
    size_t to = from + SHOW_WIDTH < n ? from + SHOW_WIDTH : n;
    if (last >= to) last = to ? to - 1 : 0;
    const char *pre = from > 0 ? "..." : "";
    char num[16];
    int width = snprintf(num, sizeof num, "%d", loc.line);
    if (width < 5) width = 5;
    fprintf(out, "%*d | %s", width, loc.line, pre);
    for (size_t i = from; i < to; i++) {
        unsigned char c = (unsigned char)s[i];
        fputc(c == '\t' || (c >= 0x20 && c < 0x7f) ? c : '?', out);
    }
    fprintf(out, "%s\n%*s | %s", to < n ? "..." : "", width, "", pre);
    for (size_t i = from; i < col; i++) fputc(s[i] == '\t' ? '\t' : ' ', out);
    fputc('^', out);
    for (size_t i = col + 1; i <= last && i < to; i++) fputc('~', out);
    fputc('\n', out);
}

static void vreport(cnn_diag *d, FILE *out, cnn_loc loc, const char *kind, const char *fmt, va_list ap)
{
    if (loc.line > 0)
        fprintf(out, "%s:%d:%d: %s: ", d->file, loc.line, loc.col > 0 ? loc.col : 1, kind);
    else
        fprintf(out, "%s: %s: ", d->file, kind);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    show_line(d, out, loc);
}

/* Closes the message being written, if any, keeping its text. */
static void close_current(cnn_diag *d)
{
    if (!d->cur) return;
    fclose(d->cur);
    d->cur = NULL;
}

/* Starts holding a new message at loc; returns the stream to write it to. */
static FILE *open_message(cnn_diag *d, cnn_loc loc)
{
    close_current(d);
    cnn_grow((void **)&d->msgs, &d->capmsgs, d->nmsgs, sizeof *d->msgs);
    cnn_diag_msg *m = &d->msgs[d->nmsgs];
    *m = (cnn_diag_msg){.line = loc.line, .col = loc.col, .seq = d->nmsgs};
    d->cur = open_memstream(&m->text, &m->len);
    if (!d->cur) return d->out; /* cannot hold it: print it now */
    d->nmsgs++;
    return d->cur;
}

void diag_error(cnn_diag *d, cnn_loc loc, const char *hint, const char *fmt, ...)
{
    d->nerrors++;
    if (d->nerrors > d->max_errors) {
        d->suppressed++;
        close_current(d);
        return;
    }
    FILE *out = open_message(d, loc);
    va_list ap;
    va_start(ap, fmt);
    vreport(d, out, loc, "error", fmt, ap);
    va_end(ap);
    if (hint) fprintf(out, "hint: %s\n", hint);
}

void diag_note(cnn_diag *d, cnn_loc loc, const char *fmt, ...)
{
    if (d->nerrors > d->max_errors || !d->cur) return;
    va_list ap;
    va_start(ap, fmt);
    vreport(d, d->cur, loc, "note", fmt, ap);
    va_end(ap);
}

static int by_position(const void *a, const void *b)
{
    const cnn_diag_msg *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->col != y->col) return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void diag_finish(cnn_diag *d)
{
    close_current(d);
    if (d->nmsgs > 1) qsort(d->msgs, (size_t)d->nmsgs, sizeof *d->msgs, by_position);
    for (int i = 0; i < d->nmsgs; i++) {
        fwrite(d->msgs[i].text, 1, d->msgs[i].len, d->out);
        free(d->msgs[i].text);
    }
    free(d->msgs);
    d->msgs = NULL;
    d->nmsgs = d->capmsgs = 0;
    if (d->suppressed)
        fprintf(d->out, "%s: %d more errors not shown\n", d->file, d->suppressed);
    if (d->nerrors)
        fprintf(d->out, "%s: %d error%s\n", d->file, d->nerrors, d->nerrors == 1 ? "" : "s");
}

const char *diag_nearest(const char *word, const char *const *cands, int n)
{
    const char *best = NULL;
    int bestd = 1000;
    for (int i = 0; i < n; i++) {
        int dist = rt_edit_distance(word, cands[i]);
        if (dist < bestd) {
            bestd = dist;
            best = cands[i];
        }
    }
    size_t len = strlen(word);
    int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    return bestd <= limit ? best : NULL;
}
