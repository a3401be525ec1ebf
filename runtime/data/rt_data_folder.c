/*
 * rt_data_folder.c - scans an image-folder set: DIR/<class>/<image>, one subfolder per class,
 * classes numbered in byte order of their names. Only lists and stats files; decoding is
 * rt_data_decode.c's job, so that the cache can be consulted before any image is opened.
 */
#include "rt_data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adds the files of one class folder; subfolders inside it are ignored with a warning. */
static int scan_class(const char *cdir, const char *cname, int label, const rt_load_opts *opts,
                      rt_scan *out, char *err)
{
    char **names;
    int n, found = 0;
    if (rt_list_dir(cdir, &names, &n, err) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char *p = rt_path_join(cdir, names[i]);
        struct stat st;
        if (!p) {
            rt_free_names(names, n);
            snprintf(err, RT_ERRLEN, "%s: out of memory", cdir);
            return -1;
        }
        if (stat(p, &st) < 0) {
            rt_data_warn(opts, "%s: cannot read (%s); skipped", p, strerror(errno));
            out->nskipped++;
        } else if (S_ISDIR(st.st_mode)) {
            rt_data_warn(opts, "%s: a folder inside class folder '%s'; ignored", p, cname);
        } else if (S_ISREG(st.st_mode)) {
            if (rt_scan_add(out, p, label, &st) < 0) {
                free(p);
                rt_free_names(names, n);
                snprintf(err, RT_ERRLEN, "%s: out of memory", cdir);
                return -1;
            }
            found++;
        }
        free(p);
    }
    rt_free_names(names, n);
    if (found == 0) {
        snprintf(err, RT_ERRLEN,
                 "%s: empty class folder: expected the images of class '%s' in it", cdir, cname);
        return -1;
    }
    return 0;
}

int rt_scan_folder(const char *dir, const rt_load_opts *opts, rt_scan *out, char *err)
{
    memset(out, 0, sizeof *out);
    char **names;
    int n;
    if (rt_list_dir(dir, &names, &n, err) < 0)
        return -1;
    /* Keep the subfolders, in the (sorted) listing order: they are the classes. */
    int nc = 0;
    for (int i = 0; i < n; i++) {
        char *p = rt_path_join(dir, names[i]);
        struct stat st;
        int isdir = p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
        free(p);
        if (isdir) {
            names[nc++] = names[i];
            if (nc - 1 != i)
                names[i] = NULL;
        } else {
            free(names[i]);
            names[i] = NULL;
        }
    }
    if (nc == 0) {
        free(names);
        snprintf(err, RT_ERRLEN,
                 "%s: no class subfolders: expected an image folder with one subfolder per "
                 "class (e.g. %s/cat/1.jpg), a Kaggle Tom & Jerry download (ground_truth.csv) "
                 "or IDX files (train-images-idx3-ubyte[.gz])", dir, dir);
        return -1;
    }
    out->nclasses = nc;
    out->classnames = names;
    for (int k = 0; k < nc; k++) {
        char *cdir = rt_path_join(dir, names[k]);
        if (!cdir) {
            snprintf(err, RT_ERRLEN, "%s: out of memory", dir);
            rt_scan_free(out);
            return -1;
        }
        int rc = scan_class(cdir, names[k], k, opts, out, err);
        free(cdir);
        if (rc < 0) {
            rt_scan_free(out);
            return -1;
        }
    }
    return 0;
}
