/*
 * rt_progress.c - what a training run shows while it works: on a terminal a bar redrawn
 * in place (\r) with the epoch's running loss, accuracy and time left; in a log file or
 * pipe one plain line per epoch. Also the monotonic clock the display uses.
 */
#include "rt_train_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

double rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void rt_progress_init(rt_progress *p, FILE *f, int live, int quiet, int epochs)
{
    memset(p, 0, sizeof *p);
    p->f = f;
    p->live = live;
    p->quiet = quiet;
    p->epochs = epochs;
    p->t_epoch = rt_now();
    p->cols = 80;
    struct winsize ws;
    const char *env = getenv("COLUMNS");
    if (live && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        p->cols = ws.ws_col;
    else if (env && atoi(env) > 0)
        p->cols = atoi(env);
}

/* Prints line over the previous live line, blanking what is left of it. */
static void redraw(rt_progress *p, const char *line)
{
    int n = (int)strlen(line);
    fprintf(p->f, "\r%s", line);
    if (p->width > n)
        fprintf(p->f, "%*s\r%s", p->width - n, "", line);
    p->width = n;
}

/* Width of n in decimal, for aligned counters (at most 10 for an int). */
static int digits(int n)
{
    return n >= 1000000000 ? 10 : n >= 100000000 ? 9 : n >= 10000000 ? 8 : n >= 1000000 ? 7
           : n >= 100000 ? 6 : n >= 10000 ? 5 : n >= 1000 ? 4 : n >= 100 ? 3 : n >= 10 ? 2 : 1;
}

void rt_progress_batch(rt_progress *p, int epoch, int batch, int nbatches, double loss,
                       double acc)
{
    if (p->quiet || !p->live)
        return;
    double now = rt_now();
    if (batch > 0 && batch + 1 < nbatches && now - p->t_last < 0.1)
        return;
    p->t_last = now;

    double spent = now - p->t_epoch;
    char eta[32] = "";
    if (batch + 1 < nbatches) {
        char d[24];
        rt_fmt_duration(spent / (batch + 1) * (nbatches - batch - 1), d, sizeof d);
        snprintf(eta, sizeof eta, "  ETA %s", d);
    }
    char head[40], tail[120], line[240];
    snprintf(head, sizeof head, "epoch %*d/%d ", digits(p->epochs), epoch + 1, p->epochs);
    snprintf(tail, sizeof tail, " %*d/%d  loss %.4f  acc %6.2f%%%s", digits(nbatches),
             batch + 1, nbatches, loss, 100 * acc, eta);
    /* the bar takes what the terminal leaves, 24 at most; the line never wraps */
    int room = p->cols - 1 - (int)strlen(head) - (int)strlen(tail) - 2;
    int barw = room > 24 ? 24 : room;
    char bar[28] = "";
    if (barw >= 5) {
        int fill = (int)((double)(batch + 1) * barw / nbatches);
        bar[0] = '[';
        for (int i = 0; i < barw; i++)
            bar[1 + i] = i < fill ? '#' : '.';
        bar[barw + 1] = ']';
        bar[barw + 2] = 0;
    }
    snprintf(line, sizeof line, "%s%s%s", head, bar, tail);
    if (p->cols > 1 && (int)strlen(line) > p->cols - 1)
        line[p->cols - 1] = 0;
    redraw(p, line);
    fflush(p->f);
}

void rt_progress_epoch(rt_progress *p, const rt_history *h, int epoch, const char *note)
{
    p->t_epoch = rt_now();
    if (p->quiet)
        return;
    char line[280], val[64], t[24], lr[32] = "";
    if (h->has_val)
        snprintf(val, sizeof val, "val loss %.4f acc %6.2f%%", h->val_loss[epoch],
                 100 * h->val_acc[epoch]);
    else
        snprintf(val, sizeof val, "(no validation images)");
    rt_fmt_duration(h->secs[epoch], t, sizeof t);
    if (h->lr)  /* the rate this epoch trained with (a schedule changes it) */
        snprintf(lr, sizeof lr, "  lr %.3g", h->lr[epoch]);
    snprintf(line, sizeof line, "epoch %*d/%d  train loss %.4f acc %6.2f%%  %s  %6s%s%s%s",
             digits(p->epochs), epoch + 1, p->epochs, h->train_loss[epoch],
             100 * h->train_acc[epoch], val, t, lr, note ? "  " : "", note ? note : "");
    if (p->live)
        redraw(p, line);
    else
        fputs(line, p->f);
    fputc('\n', p->f);
    p->width = 0;
    fflush(p->f);
}
