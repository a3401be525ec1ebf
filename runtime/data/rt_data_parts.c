/*
 * rt_data_parts.c - data sets that come already split: the torchvision/Keras layout
 * DIR/train, DIR/val (or valid, validation) and DIR/test, each holding one folder per
 * class, and the --val DIR / --test DIR folders of the command line. The parts are loaded
 * as image folders (each with its own decode cache) and joined into one set whose last
 * images are its fixed validation and test parts (rt_split_make keeps them as they are).
 */
#include "rt_data_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1 when dir holds at least one sub-folder (a class folder). */
static int has_subfolder(const char *dir)
{
    char **names, err[RT_ERRLEN];
    int n, found = 0;
    if (rt_list_dir(dir, &names, &n, err) < 0)
        return 0;
    for (int i = 0; i < n && !found; i++) {
        char *p = rt_path_join(dir, names[i]);
        found = p && is_dir(p);
        free(p);
    }
    rt_free_names(names, n);
    return found;
}

static int append(rt_dataset *a, rt_dataset *b, const char *what, char *err);

int rt_dataset_append(rt_dataset *a, rt_dataset *b, const char *what, char *err)
{
    int rc = append(a, b, what, err);
    rt_dataset_free(b); /* in any case: the caller is done with it */
    return rc;
}

static int append(rt_dataset *a, rt_dataset *b, const char *what, char *err)
{
    int *map = malloc(sizeof(int) * (size_t)(b->nclasses ? b->nclasses : 1));
    if (!map) {
        snprintf(err, RT_ERRLEN, "out of memory");
        return -1;
    }
    for (int k = 0; k < b->nclasses; k++) { /* b's classes by name among a's */
        map[k] = -1;
        for (int j = 0; j < a->nclasses && map[k] < 0; j++)
            if (strcmp(a->classnames[j], b->classnames[k]) == 0)
                map[k] = j;
        if (map[k] < 0) {
            snprintf(err, RT_ERRLEN, "%s has a class '%s' that the training images do not have",
                     what, b->classnames[k]);
            free(map);
            return -1;
        }
    }
    if (a->c != b->c || a->h != b->h || a->w != b->w) {
        snprintf(err, RT_ERRLEN, "%s: images of another shape", what);
        free(map);
        return -1;
    }
    size_t isz = (size_t)a->c * a->h * a->w, n = (size_t)a->n + b->n;
    size_t bytes = n * isz;
    uint8_t *pix = realloc(a->pix, bytes > 0 ? bytes : 1);
    if (pix)
        a->pix = pix;
    int *label = pix ? realloc(a->label, sizeof(int) * (n ? n : 1)) : NULL;
    if (label)
        a->label = label;
    char **files = label && (a->files || b->files) ? realloc(a->files, sizeof(char *) * (n ? n : 1)) : NULL;
    if (files) {
        if (!a->files)
            memset(files, 0, sizeof(char *) * (size_t)a->n);
        a->files = files;
    }
    if (!pix || !label || ((a->files || b->files) && !files)) {
        snprintf(err, RT_ERRLEN, "out of memory joining %s", what);
        free(map);
        return -1;
    }
    memcpy(a->pix + (size_t)a->n * isz, b->pix, (size_t)b->n * isz);
    for (int i = 0; i < b->n; i++) {
        a->label[a->n + i] = map[b->label[i]];
        if (a->files) {
            a->files[a->n + i] = b->files ? b->files[i] : NULL;
            if (b->files)
                b->files[i] = NULL;
        }
    }
    a->n += b->n;
    a->nskipped += b->nskipped;
    a->cached = a->cached && b->cached;
    free(map);
    return 0;
}

int rt_dataset_load_parts(const char *path, rt_shape shape, const rt_load_opts *opts,
                          rt_dataset *out, char *err)
{
    static const char *const VAL[] = {"val", "valid", "validation"};
    char *train = rt_path_join(path, "train");
    char *test = rt_path_join(path, "test");
    char *val = NULL;
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (!train || !test || !is_dir(train) || !has_subfolder(train)) {
        rc = 1; /* not this layout */
        goto done;
    }
    for (int i = 0; i < 3 && !val; i++) {
        char *v = rt_path_join(path, VAL[i]);
        if (v && is_dir(v) && has_subfolder(v))
            val = v;
        else
            free(v);
    }
    int has_test = is_dir(test) && has_subfolder(test);
    if (!val && !has_test) {
        rc = 1;
        goto done;
    }
    if (rt_dataset_load(train, shape, opts, out, err) < 0) {
        rc = -1;
        goto done;
    }
    rt_dataset part;
    if (val) {
        int before = out->n;
        if (rt_dataset_load(val, shape, opts, &part, err) < 0 ||
            rt_dataset_append(out, &part, val, err) < 0) {
            rc = -1;
            goto done;
        }
        out->nval_fixed = out->n - before;
    }
    if (has_test) {
        int before = out->n;
        if (rt_dataset_load(test, shape, opts, &part, err) < 0 ||
            rt_dataset_append(out, &part, test, err) < 0) {
            rc = -1;
            goto done;
        }
        out->ntest_fixed = out->n - before;
    }
    snprintf(out->parts, sizeof out->parts, "train/%s%s%s%s folders", val ? ", " : "",
             val ? strrchr(val, '/') + 1 : "", val ? "/" : "", has_test ? " and test/" : "");
done:
    if (rc < 0)
        rt_dataset_free(out);
    free(train);
    free(test);
    free(val);
    return rc;
}
