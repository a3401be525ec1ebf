/*
 * rt_data_util.c - small helpers of the data loaders: the one warning printer, path joining,
 * sorted directory listings, the input shape check, the growing list of scanned files and
 * freeing a data set (here, not in rt_data.c, so that the loaders never call up into it).
 */
#include "rt_data_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

void rt_data_warn(const rt_load_opts *opts, const char *fmt, ...)
{
    if (opts && opts->quiet)
        return;
    /* One fprintf per line so that lines of concurrent writers do not interleave. */
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "cnnrt: warning: %s\n", line);
}

char *rt_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int slash = la > 0 && a[la - 1] != '/';
    char *p = malloc(la + slash + lb + 1);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    if (slash)
        p[la] = '/';
    memcpy(p + la + slash, b, lb + 1);
    return p;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void rt_free_names(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int rt_list_dir(const char *dir, char ***names, int *n, char *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, RT_ERRLEN, "%s: cannot open folder: %s", dir, strerror(errno));
        return -1;
    }
    char **v = NULL;
    int cnt = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue; /* ".", "..", and hidden files such as .DS_Store */
        if (cnt == cap) {
            int ncap = cap ? 2 * cap : 64;
            char **nv = realloc(v, (size_t)ncap * sizeof *nv);
            if (!nv)
                goto oom;
            v = nv;
            cap = ncap;
        }
        if (!(v[cnt] = strdup(de->d_name)))
            goto oom;
        cnt++;
    }
    closedir(d);
    if (cnt > 1)
        qsort(v, (size_t)cnt, sizeof *v, cmp_names);
    *names = v;
    *n = cnt;
    return 0;
oom:
    closedir(d);
    rt_free_names(v, cnt);
    snprintf(err, RT_ERRLEN, "%s: out of memory while listing the folder", dir);
    return -1;
}

int rt_shape_check(rt_shape shape, char *err)
{
    if (shape.c < 1 || shape.c > RT_IMAGE_MAX_C || shape.h < 1 || shape.h > RT_IMAGE_MAX_SIDE
        || shape.w < 1 || shape.w > RT_IMAGE_MAX_SIDE) {
        snprintf(err, RT_ERRLEN,
                 "input shape %dx%dx%d cannot hold images: expected 1 to %d channels "
                 "(1 grey, 3 RGB) and sides of 1 to %d pixels",
                 shape.c, shape.h, shape.w, RT_IMAGE_MAX_C, RT_IMAGE_MAX_SIDE);
        return -1;
    }
    return 0;
}

int rt_scan_add(rt_scan *s, const char *path, int label, const struct stat *st)
{
    if (s->n == s->cap) {
        int ncap = s->cap ? 2 * s->cap : 256;
        rt_entry *ne = realloc(s->e, (size_t)ncap * sizeof *ne);
        if (!ne)
            return -1;
        s->e = ne;
        s->cap = ncap;
    }
    rt_entry *e = &s->e[s->n];
    if (!(e->path = strdup(path)))
        return -1;
    e->label = label;
    e->size = (long long)st->st_size;
    e->mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    s->n++;
    return 0;
}

void rt_scan_free(rt_scan *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->e[i].path);
    free(s->e);
    rt_free_names(s->classnames, s->nclasses);
    memset(s, 0, sizeof *s);
}

void rt_dataset_free(rt_dataset *ds)
{
    if (!ds)
        return;
    if (ds->classnames)
        for (int k = 0; k < ds->nclasses; k++)
            free(ds->classnames[k]);
    if (ds->files)
        for (int i = 0; i < ds->n; i++)
            free(ds->files[i]);
    free(ds->classnames);
    free(ds->files);
    free(ds->pix);
    free(ds->label);
    memset(ds, 0, sizeof *ds);
}

/* 1 when the file name ends in an image extension the loaders know (any case). */
static int image_name(const char *path)
{
    static const char *const EXT[] = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".pnm"};
    const char *base = strrchr(path, '/'), *dot = strrchr(path, '.');
    for (size_t k = 0; dot && (!base || dot > base) && k < sizeof EXT / sizeof EXT[0]; k++)
        if (strcasecmp(dot, EXT[k]) == 0)
            return 1;
    return 0;
}

static int add_file(char ***files, int *n, const char *path, char *err)
{
    char **v = realloc(*files, sizeof(char *) * (size_t)(*n + 1));
    if (v)
        *files = v;
    if (!v || !(v[*n] = strdup(path))) {
        snprintf(err, RT_ERRLEN, "out of memory listing %s", path);
        return -1;
    }
    (*n)++;
    return 0;
}

/* path itself when it is not a folder (at depth 0 whatever its name: the user named it);
 * in a folder, its image files and sub-folders in name order, depth <= 16 so that a
 * symbolic-link loop ends. */
static int image_files(const char *path, int depth, char ***files, int *n, char *err)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return depth == 0 || image_name(path) ? add_file(files, n, path, err) : 0;
    if (depth > 16)
        return 0;
    char **names;
    int nn;
    if (rt_list_dir(path, &names, &nn, err) < 0)
        return depth > 0 ? 0 : -1; /* an unreadable sub-folder is left out */
    int rc = 0;
    for (int i = 0; i < nn && rc == 0; i++) {
        char *p = rt_path_join(path, names[i]);
        if (!p)
            snprintf(err, RT_ERRLEN, "out of memory listing %s", path);
        rc = p ? image_files(p, depth + 1, files, n, err) : -1;
        free(p);
    }
    rt_free_names(names, nn);
    return rc;
}

int rt_image_files(const char *path, char ***files, int *n, char *err)
{
    return image_files(path, 0, files, n, err);
}
