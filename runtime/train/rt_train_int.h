/*
 * rt_train_int.h - private helpers shared by the training, weights, progress and CLI
 * files of libcnnrt (not installed): the clock, the progress display, and the write hook
 * through which tests simulate a full disk honestly.
 */
#ifndef RT_TRAIN_INT_H
#define RT_TRAIN_INT_H

#include <stdio.h>
#include "cnnrt.h"

/* The history's per-epoch arrays in one list (train loss and accuracy, validation loss and
 * accuracy, seconds, lr), for whatever handles them all: allocation, freeing, checkpoints.
 * Adding an array to rt_history is one line there. */
#define RT_HISTORY_FIELDS 6
void rt_history_fields(rt_history *h, double **f[RT_HISTORY_FIELDS]);
/* Arrays of epochs entries (at least 1), zeroed; 0, or -1 when out of memory. */
int rt_history_alloc(rt_history *h, int epochs);

/* Seconds on a monotonic clock (for display only: nothing computed depends on it). */
double rt_now(void);

/* Every byte of a weights file goes through this function (fwrite's contract: returns
 * the count of items written, sets errno on failure). Tests point it at a function that
 * fails part-way with ENOSPC; NULL restores the default (fwrite). */
typedef size_t (*rt_write_fn)(const void *p, size_t size, size_t n, FILE *f);
void rt_weights_set_write_hook(rt_write_fn fn);
/* Reads a whole regular file into malloc'ed memory (*buf, *len); what names it in the
 * message ("cannot open weights file F: ..."). Returns 0, or -1 with err set. */
int rt_file_slurp(const char *file, const char *what, unsigned char **buf, size_t *len,
                  char *err);
/* The hook in force (checkpoints write through it too). */
rt_write_fn rt_weights_write_hook(void);

/* The per-batch and per-epoch display of a training run: a \r-updated bar with the
 * epoch's running loss/accuracy and ETA when live (a terminal), one plain line per epoch
 * otherwise, nothing when quiet. */
typedef struct {
    FILE *f;
    int live, quiet;
    int epochs;
    double t_epoch;         /* start of the current epoch */
    double t_last;          /* last redraw, to redraw at most ~10 times a second */
    int width;              /* length of the last live line, to blank it out */
    int cols;               /* terminal width: a live line must not wrap */
} rt_progress;

void rt_progress_init(rt_progress *p, FILE *f, int live, int quiet, int epochs);
void rt_progress_batch(rt_progress *p, int epoch, int batch, int nbatches, double loss,
                       double acc);
/* note: a short word after the line ("saved", ...), may be NULL */
void rt_progress_epoch(rt_progress *p, const rt_history *h, int epoch, const char *note);

#endif
