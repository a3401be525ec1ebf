/*
 * rt_data_kaggle.c - scans the Kaggle "Tom and Jerry image classification" download:
 * DIR/ground_truth.csv (filename,tom,jerry) gives each frame's label, the frames live under
 * DIR/tom_and_jerry/tom_and_jerry/<folder>/frameK.jpg. The csv is the truth; the folder a
 * frame sits in is only checked against it.
 */
#include "rt_data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The four classes, named and ordered as the sorted folder names of the download. */
static const char *const KCLASS[4] = {"jerry", "tom", "tom_jerry_0", "tom_jerry_1"};
#define KAGGLE_MAXWARN 20 /* individual warnings per kind of csv mismatch, then a count */

static int kaggle_label(int tom, int jerry)
{
    return tom ? (jerry ? 3 : 1) : (jerry ? 0 : 2);
}

typedef struct {
    char *name;     /* file name (no folder) */
    int label, line, used;
} krow;

static int cmp_row_name(const void *a, const void *b)
{
    return strcmp(((const krow *)a)->name, ((const krow *)b)->name);
}

static int cmp_line(const void *a, const void *b)
{
    const krow *x = a, *y = b;
    return (x->line > y->line) - (x->line < y->line);
}

static int cmp_row(const void *a, const void *b)
{
    const krow *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Trims blanks and one pair of double quotes around a csv field, in place. */
static char *trim_field(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = 0;
        s++;
    }
    return s;
}

/* Splits line at commas into at most max fields; returns their count. */
static int split_fields(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *c = strchr(p, ',');
        if (c)
            *c = 0;
        f[n++] = trim_field(p);
        if (!c)
            break;
        p = c + 1;
    }
    return n;
}

static int parse_bit(const char *s, int *v)
{
    if ((s[0] == '0' || s[0] == '1') && s[1] == 0) {
        *v = s[0] - '0';
        return 0;
    }
    return -1;
}

static char *read_file(const char *file, size_t *len, char *err)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, RT_ERRLEN, "%s: cannot open: %s", file, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf(err, RT_ERRLEN, "%s: %s", file, bad ? "read error" : "out of memory");
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Reads the csv into rows sorted by name (duplicates after the first are dropped). */
static int read_csv(const char *csv, const rt_load_opts *opts, krow **rows, int *nrows,
                    char *err)
{
    size_t len;
    char *text = read_file(csv, &len, err);
    if (!text)
        return -1;
    if (strlen(text) != len) {
        snprintf(err, RT_ERRLEN, "%s: binary data (a NUL byte): expected a csv text file", csv);
        free(text);
        return -1;
    }
    krow *r = NULL;
    int n = 0, cap = 0, lineno = 0, col[3] = {-1, -1, -1}, ncols = 0, bad = 0;
    char *save = text;
    for (char *line = text; line; ) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        lineno++;
        char *f[16];
        char *cur = line;
        line = nl ? nl + 1 : NULL;
        if (cur[strspn(cur, " \t\r")] == 0)
            continue; /* blank line (tested without trim_field, which would take a quote
                       * opening the first field and one closing the last for a pair) */
        int nf = split_fields(cur, f, 16);
        if (ncols == 0) { /* the header */
            static const char *const want[3] = {"filename", "tom", "jerry"};
            for (int i = 0; i < nf; i++)
                for (int k = 0; k < 3; k++)
                    if (strcasecmp(f[i], want[k]) == 0 && col[k] < 0)
                        col[k] = i;
            if (col[0] < 0 || col[1] < 0 || col[2] < 0) {
                snprintf(err, RT_ERRLEN,
                         "%s:%d: expected the header 'filename,tom,jerry'", csv, lineno);
                goto fail;
            }
            ncols = nf;
            continue;
        }
        int tom, jerry;
        if (nf <= col[0] || nf <= col[1] || nf <= col[2] || !*f[col[0]]
            || parse_bit(f[col[1]], &tom) < 0 || parse_bit(f[col[2]], &jerry) < 0) {
            if (bad++ < KAGGLE_MAXWARN)
                rt_data_warn(opts, "%s:%d: malformed row (expected filename,0|1,0|1); skipped",
                             csv, lineno);
            continue;
        }
        if (n == cap) {
            int ncap = cap ? 2 * cap : 1024;
            krow *nr = realloc(r, (size_t)ncap * sizeof *nr);
            if (!nr)
                goto oom;
            r = nr;
            cap = ncap;
        }
        const char *name = strrchr(f[col[0]], '/');
        name = name ? name + 1 : f[col[0]];
        if (!(r[n].name = strdup(name)))
            goto oom;
        r[n].label = kaggle_label(tom, jerry);
        r[n].line = lineno;
        r[n].used = 0;
        n++;
    }
    if (bad > KAGGLE_MAXWARN)
        rt_data_warn(opts, "%s: %d more malformed rows skipped", csv, bad - KAGGLE_MAXWARN);
    if (ncols == 0) {
        snprintf(err, RT_ERRLEN, "%s: empty file: expected the header 'filename,tom,jerry' "
                 "and one row per image", csv);
        goto fail;
    }
    free(save);
    if (n > 1)
        qsort(r, (size_t)n, sizeof *r, cmp_row);
    /* Drop duplicate names, keeping the first row of the file. */
    int m = 0, dup = 0;
    for (int i = 0; i < n; i++) {
        if (m > 0 && strcmp(r[m - 1].name, r[i].name) == 0) {
            if (dup++ < KAGGLE_MAXWARN)
                rt_data_warn(opts, "%s:%d: %s is listed again (first on line %d); ignored",
                             csv, r[i].line, r[i].name, r[m - 1].line);
            free(r[i].name);
            continue;
        }
        r[m++] = r[i];
    }
    if (dup > KAGGLE_MAXWARN)
        rt_data_warn(opts, "%s: %d more duplicate rows ignored", csv, dup - KAGGLE_MAXWARN);
    *rows = r;
    *nrows = m;
    return 0;
oom:
    snprintf(err, RT_ERRLEN, "%s: out of memory", csv);
fail:
    for (int i = 0; i < n; i++)
        free(r[i].name);
    free(r);
    free(save);
    return -1;
}

/* The folder holding the class folders: tom_and_jerry/tom_and_jerry as in the download,
 * else tom_and_jerry, else DIR itself. */
static char *image_root(const char *dir)
{
    static const char *const tries[2] = {"tom_and_jerry/tom_and_jerry", "tom_and_jerry"};
    for (int i = 0; i < 2; i++) {
        char *p = rt_path_join(dir, tries[i]);
        struct stat st;
        if (!p || (stat(p, &st) == 0 && S_ISDIR(st.st_mode)))
            return p;
        free(p);
    }
    return strdup(dir);
}

typedef struct {
    int notincsv, dupfile, mismatch;
} kcounts;

/* Adds the files of one image folder that the csv labels. */
static int scan_folder(const char *fdir, const char *fname, krow *rows, int nrows,
                       const rt_load_opts *opts, rt_scan *out, kcounts *cnt, char *err)
{
    char **names;
    int n;
    if (rt_list_dir(fdir, &names, &n, err) < 0)
        return -1;
    int folder_label = -1;
    for (int k = 0; k < 4; k++)
        if (strcmp(fname, KCLASS[k]) == 0)
            folder_label = k;
    for (int i = 0; i < n; i++) {
        char *p = rt_path_join(fdir, names[i]);
        struct stat st;
        if (!p) {
            rt_free_names(names, n);
            snprintf(err, RT_ERRLEN, "%s: out of memory", fdir);
            return -1;
        }
        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        krow key = {names[i], 0, 0, 0};
        /* (no rows at all: bsearch may not be given a null array, fuzz_csv found) */
        krow *r = nrows > 0 ? bsearch(&key, rows, (size_t)nrows, sizeof *rows, cmp_row_name) : NULL;
        if (!r) {
            if (cnt->notincsv++ < KAGGLE_MAXWARN)
                rt_data_warn(opts, "%s: not listed in ground_truth.csv; skipped", p);
            out->nskipped++;
        } else if (r->used) {
            if (cnt->dupfile++ < KAGGLE_MAXWARN)
                rt_data_warn(opts, "%s: a second file named %s; skipped", p, names[i]);
            out->nskipped++;
        } else {
            r->used = 1;
            if (folder_label >= 0 && folder_label != r->label)
                cnt->mismatch++;
            if (rt_scan_add(out, p, r->label, &st) < 0) {
                free(p);
                rt_free_names(names, n);
                snprintf(err, RT_ERRLEN, "%s: out of memory", fdir);
                return -1;
            }
        }
        free(p);
    }
    rt_free_names(names, n);
    return 0;
}

int rt_scan_kaggle(const char *dir, const rt_load_opts *opts, rt_scan *out, char *err)
{
    memset(out, 0, sizeof *out);
    char *csv = rt_path_join(dir, "ground_truth.csv");
    char *root = image_root(dir);
    krow *rows = NULL;
    int nrows = 0, rc = -1;
    char **folders = NULL;
    int nf = 0;
    struct stat st;
    if (!csv || !root) {
        snprintf(err, RT_ERRLEN, "%s: out of memory", dir);
        goto done;
    }
    if (stat(csv, &st) < 0) {
        snprintf(err, RT_ERRLEN, "%s: %s", csv, strerror(errno));
        goto done;
    }
    rt_hash h;
    rt_hash_init(&h);
    rt_hash_u64(&h, (uint64_t)st.st_size);
    rt_hash_u64(&h, (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec);
    out->extra_key = h.h;
    if (read_csv(csv, opts, &rows, &nrows, err) < 0)
        goto done;
    out->nclasses = 4;
    if (!(out->classnames = calloc(4, sizeof *out->classnames)))
        goto oom;
    for (int k = 0; k < 4; k++)
        if (!(out->classnames[k] = strdup(KCLASS[k])))
            goto oom;
    if (rt_list_dir(root, &folders, &nf, err) < 0)
        goto done;
    kcounts cnt = {0, 0, 0};
    int nsub = 0;
    for (int i = 0; i < nf; i++) {
        char *fdir = rt_path_join(root, folders[i]);
        if (!fdir)
            goto oom;
        if (stat(fdir, &st) == 0 && S_ISDIR(st.st_mode)) {
            nsub++;
            if (scan_folder(fdir, folders[i], rows, nrows, opts, out, &cnt, err) < 0) {
                free(fdir);
                goto done;
            }
        }
        free(fdir);
    }
    if (nsub == 0) {
        snprintf(err, RT_ERRLEN, "%s: no image folders: expected the frames of the Kaggle "
                 "download under %s/tom_and_jerry/tom_and_jerry/<class>/", root, dir);
        goto done;
    }
    if (cnt.notincsv > KAGGLE_MAXWARN)
        rt_data_warn(opts, "%s: %d more images not listed in ground_truth.csv skipped", root,
                     cnt.notincsv - KAGGLE_MAXWARN);
    if (cnt.dupfile > KAGGLE_MAXWARN)
        rt_data_warn(opts, "%s: %d more images with a repeated file name skipped", root,
                     cnt.dupfile - KAGGLE_MAXWARN);
    /* Rows without an image, reported in file order. */
    int missing = 0;
    for (int i = 0; i < nrows; i++)
        if (!rows[i].used)
            rows[missing++] = rows[i]; /* names stay owned: the used ones are freed below */
        else
            free(rows[i].name);
    nrows = missing;
    if (missing > 1)
        qsort(rows, (size_t)missing, sizeof *rows, cmp_line);
    for (int i = 0; i < missing && i < KAGGLE_MAXWARN; i++)
        rt_data_warn(opts, "%s:%d: %s is not under %s; row skipped", csv, rows[i].line,
                     rows[i].name, root);
    if (missing > KAGGLE_MAXWARN)
        rt_data_warn(opts, "%s: %d more rows without an image skipped", csv,
                     missing - KAGGLE_MAXWARN);
    if (cnt.mismatch)
        rt_data_warn(opts, "%s: %d images lie in a folder that disagrees with their "
                     "ground_truth.csv label; the csv labels are used", root, cnt.mismatch);
    if (out->n == 0) {
        snprintf(err, RT_ERRLEN, "%s: no images: expected frames listed in %s under "
                 "%s/<class>/", dir, csv, root);
        goto done;
    }
    rc = 0;
    goto done;
oom:
    snprintf(err, RT_ERRLEN, "%s: out of memory", dir);
done:
    if (rc < 0)
        rt_scan_free(out);
    for (int i = 0; i < nrows; i++)
        free(rows[i].name);
    free(rows);
    rt_free_names(folders, nf);
    free(csv);
    free(root);
    return rc;
}
