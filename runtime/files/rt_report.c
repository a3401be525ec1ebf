/*
 * rt_report.c - the results a run prints and keeps: durations as "1m23s", the Markdown
 * results row (| Model | Val Loss | Val Acc | Test Loss | Test Acc | Runtime |), appending
 * it to a report file, and the confusion matrix with class names and per-class recall.
 */
#include "rt_train_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void rt_fmt_duration(double secs, char *buf, size_t n)
{
    if (!(secs > 0))        /* also NaN */
        secs = 0;
    if (secs < 9.95) {
        snprintf(buf, n, "%.1fs", secs);
        return;
    }
    long s = (long)(secs + 0.5);
    if (s < 60)
        snprintf(buf, n, "%lds", s);
    else if (s < 3600)
        snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, n, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60, s % 60);
}

const char *rt_report_header(void)
{
    return "| Model | Val Loss | Val Acc | Test Loss | Test Acc | Runtime |\n"
           "|-------|---------:|--------:|----------:|---------:|--------:|";
}

/* "0.1234 | 56.78%" or "- | -" for an empty split. */
static void pair(char *buf, size_t n, double loss, double acc)
{
    if (loss < 0)
        snprintf(buf, n, "- | -");
    else
        snprintf(buf, n, "%.4f | %.2f%%", loss, 100 * acc);
}

void rt_report_row(char *buf, size_t n, const char *model, double val_loss, double val_acc,
                   double test_loss, double test_acc, double secs)
{
    char name[128], v[64], t[64], d[32];
    size_t k = 0;
    /* a '|' in the name would split the cell */
    for (const char *p = model; *p && k + 2 < sizeof name; p++) {
        if (*p == '|')
            name[k++] = '\\';
        name[k++] = *p;
    }
    name[k] = 0;
    pair(v, sizeof v, val_loss, val_acc);
    pair(t, sizeof t, test_loss, test_acc);
    rt_fmt_duration(secs, d, sizeof d);
    snprintf(buf, n, "| %s | %s | %s | %s |", name, v, t, d);
}

int rt_report_append(const char *file, const char *row, char *err)
{
    /* Appended in one write to a file opened for appending: the rows already there are
     * never rewritten, and two runs finishing together each add their whole row. */
    struct stat st;
    int regular = stat(file, &st) == 0 && S_ISREG(st.st_mode);
    int fresh = !regular || st.st_size == 0, need_nl = 0;
    if (!fresh) {           /* keep the table intact if the file lacks a final newline */
        FILE *r = fopen(file, "rb");
        if (r) {
            if (fseek(r, -1, SEEK_END) == 0)
                need_nl = fgetc(r) != '\n';
            fclose(r);
        }
    }
    size_t n = strlen(row) + (fresh ? strlen(rt_report_header()) + 1 : 0) + 3;
    char *text = malloc(n);
    if (!text) {
        snprintf(err, RT_ERRLEN, "out of memory");
        return -1;
    }
    snprintf(text, n, "%s%s%s%s\n", need_nl ? "\n" : "", fresh ? rt_report_header() : "",
             fresh ? "\n" : "", row);
    FILE *f = fopen(file, "a");
    if (!f) {
        snprintf(err, RT_ERRLEN, "cannot write report %s: %s", file, strerror(errno));
        free(text);
        return -1;
    }
    size_t len = strlen(text);
    int bad = fwrite(text, 1, len, f) != len;
    bad |= fflush(f) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    free(text);
    if (bad) {
        snprintf(err, RT_ERRLEN, "cannot write report %s: %s", file, strerror(e ? e : EIO));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ confusion matrix */

static int ndigits(long v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

void rt_confusion_print(FILE *f, const int *conf, int k, char *const *names)
{
    static const char corner[] = "true \\ predicted";
    long maxc = 0;
    int maxname = 0;
    for (int i = 0; i < k * k; i++)
        if (conf[i] > maxc)
            maxc = conf[i];
    for (int i = 0; i < k; i++) {
        int l = names && names[i] ? (int)strlen(names[i]) : ndigits(i);
        if (l > maxname)
            maxname = l;
    }
    int cw = ndigits(maxc);
    /* class names as column heads when they fit in a line of ~100 characters */
    int named = names && maxname <= 16;
    if (named) {
        int w = maxname > cw ? maxname : cw;
        named = (int)sizeof corner + k * (w + 2) + 8 <= 100;
    }
    char label[24];
    int lw = (int)strlen(corner);
    int rl = named ? maxname : maxname + 3 + ndigits(k - 1);   /* "[i] name" */
    if (rl > lw)
        lw = rl;
    if (lw > 40)
        lw = 40;
    if (!named) {
        int hw = ndigits(k - 1) + 2;
        if (hw > cw)
            cw = hw;
    } else if (maxname > cw) {
        cw = maxname;
    }

    double sum_r = 0, sum_p = 0, sum_f = 0;
    int present = 0;
    fprintf(f, "%-*s", lw, corner);
    for (int j = 0; j < k; j++) {
        if (named)
            fprintf(f, "  %*s", cw, names[j]);
        else {
            snprintf(label, sizeof label, "[%d]", j);
            fprintf(f, "  %*s", cw, label);
        }
    }
    fprintf(f, "   recall  precision       F1\n");
    for (int i = 0; i < k; i++) {
        if (named)
            fprintf(f, "%-*.*s", lw, lw, names[i]);
        else if (names && names[i]) {
            char row[64];
            snprintf(row, sizeof row, "[%d] %s", i, names[i]);
            fprintf(f, "%-*.*s", lw, lw, row);
        } else {
            snprintf(label, sizeof label, "[%d]", i);
            fprintf(f, "%-*s", lw, label);
        }
        long tot = 0, col = 0;
        for (int j = 0; j < k; j++) {
            fprintf(f, "  %*d", cw, conf[(size_t)i * k + j]);
            tot += conf[(size_t)i * k + j];
            col += conf[(size_t)j * k + i];
        }
        /* recall: of class i's images, the share predicted i; precision: of the images
         * predicted i, the share that are i; F1 their harmonic mean */
        double tp = conf[(size_t)i * k + i];
        double r = tot ? tp / tot : 0, p = col ? tp / col : 0, f1 = r + p > 0 ? 2 * r * p / (r + p) : 0;
        if (tot) {
            fprintf(f, "  %6.1f%%", 100 * r);
            sum_r += r;
            sum_p += p;
            sum_f += f1;
            present++;
        } else {
            fprintf(f, "  %7s", "-");
        }
        if (col)
            fprintf(f, "  %9.1f%%", 100 * p);
        else
            fprintf(f, "  %10s", "-");
        if (tot || col)
            fprintf(f, "  %6.1f%%\n", 100 * f1);
        else
            fprintf(f, "  %7s\n", "-");
    }
    /* macro averages over the classes that have images (a class never predicted counts
     * precision 0, as scikit-learn's zero_division=0) */
    if (present)
        fprintf(f, "%-*s  %*s  %6.1f%%  %9.1f%%  %6.1f%%\n", lw, "macro average",
                k * (cw + 2) - 2, "", 100 * sum_r / present, 100 * sum_p / present,
                100 * sum_f / present);
}
