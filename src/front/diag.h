/*
 * diag.h - diagnostics: the one place that prints errors about a .cnn file, as
 * "file:line:col: error: message", the source line, a caret under the column, and an
 * optional hint. Errors are counted so a driver can report several and then stop.
 */
#ifndef CNN_DIAG_H
#define CNN_DIAG_H

#include <stdio.h>

typedef struct {
    int line, col;          /* 1-based; line 0 = no position */
    int last_line, last_col;/* inclusive end, for the ~~~ underline */
} cnn_loc;

/* One error with its notes and hint, kept until diag_finish prints all in file order. */
typedef struct {
    int line, col;
    int seq;                /* order of discovery, to keep the sort stable */
    char *text;
    size_t len;
} cnn_diag_msg;

typedef struct {
    const char *file;       /* name shown in messages */
    const char *text;       /* the whole source, for showing lines */
    size_t len;
    FILE *out;              /* where messages go (stderr) */
    int nerrors;
    int max_errors;         /* stop printing after this many (0 = 20) */
    int suppressed;
    cnn_diag_msg *msgs;     /* held messages, printed sorted by position in diag_finish */
    int nmsgs, capmsgs;
    FILE *cur;              /* memory stream of the message being written */
} cnn_diag;

void diag_init(cnn_diag *d, const char *file, const char *text, size_t len, FILE *out);
/* Prints an error at loc (and the line with a caret); hint may be NULL. */
void diag_error(cnn_diag *d, cnn_loc loc, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A note attached to the previous error, e.g. where a shape was last changed. */
void diag_note(cnn_diag *d, cnn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints the held messages in file order, then "N errors" lines; frees the messages. */
void diag_finish(cnn_diag *d);

/* The candidate closest to word by rt_edit_distance (NULL if none is close enough). */
const char *diag_nearest(const char *word, const char *const *cands, int n);

#endif
