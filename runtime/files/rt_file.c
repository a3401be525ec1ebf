/*
 * rt_file.c - writing a file so that nobody ever sees it half-written: the bytes go to a
 * new temporary file beside the target, which is renamed over the target only when every
 * write, flush (and, for files worth it, fsync) succeeded. A full disk or a crash leaves
 * the previous file as it was. Weights files, decode caches, plots, dumps and cnnc's outputs
 * use it. A symbolic link stays a link (the file it names is replaced); a target that is
 * not a regular file (/dev/null, a pipe), or a writable file in a folder where no file can
 * be created, is written in place.
 */
#define _XOPEN_SOURCE 700 /* realpath */

#include "cnnrt.h"
#include "rt_train_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Frees the names rt_atomic_open kept; returns -1 with errno e, for the failure paths. */
static int release(rt_atomic_file *a, int e)
{
    free(a->tmp);
    free(a->target);
    a->tmp = a->target = NULL;
    errno = e;
    return -1;
}

/* Opens the target itself (no temporary file); 0 or -1 with errno set. */
static int in_place(rt_atomic_file *a)
{
    a->f = fopen(a->path, "wb");
    return a->f ? 0 : release(a, errno);
}

int rt_atomic_open(rt_atomic_file *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->path = path;
    struct stat st;
    int exists = lstat(path, &st) == 0;
    if (exists && S_ISLNK(st.st_mode)) {
        /* a link: the file it names is replaced, so that the link stays a link */
        a->target = realpath(path, NULL);
        if (!a->target) /* a dangling link: written through */
            return in_place(a);
        exists = stat(a->target, &st) == 0;
    }
    /* a device or a pipe (/dev/null): renaming a file over it would replace the device */
    if (exists && !S_ISREG(st.st_mode))
        return in_place(a);
    const char *t = a->target ? a->target : path;
    size_t n = strlen(t);
    a->tmp = malloc(n + 12);
    if (!a->tmp)
        return release(a, ENOMEM);
    memcpy(a->tmp, t, n);
    memcpy(a->tmp + n, ".tmp-XXXXXX", 12);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int e = errno;
        free(a->tmp);
        a->tmp = NULL;
        /* a file we may write in a folder where we may not create one: in place */
        if (exists && (e == EACCES || e == EPERM || e == EROFS) && access(t, W_OK) == 0)
            return in_place(a);
        return release(a, e);
    }
    /* mkstemp makes the file 0600; give it the mode an ordinary new file gets */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        return release(a, e);
    }
    return 0;
}

/* Makes a rename durable: fsync of the folder holding file (best effort). */
static void sync_dir(const char *file)
{
    const char *slash = strrchr(file, '/');
    char dir[PATH_MAX];
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == file) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - file);
        if (n >= sizeof dir)
            return;
        memcpy(dir, file, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int rt_atomic_close(rt_atomic_file *a, int ok, int durable)
{
    int e = ok ? 0 : errno; /* the caller's failure, as it saw it */
    if (!a->f)
        return -1;
    if (ok && (ferror(a->f) || fflush(a->f) != 0))
        ok = 0, e = errno ? errno : EIO;
    if (ok && durable && a->tmp && fsync(fileno(a->f)) != 0)
        ok = 0, e = errno;
    if (fclose(a->f) != 0 && ok)
        ok = 0, e = errno;
    a->f = NULL;
    if (a->tmp) {
        const char *t = a->target ? a->target : a->path;
        if (ok && rename(a->tmp, t) != 0)
            ok = 0, e = errno;
        if (ok && durable)
            sync_dir(t);
        if (!ok)
            unlink(a->tmp);
    }
    release(a, e);
    return ok ? 0 : -1;
}

int rt_file_slurp(const char *file, const char *what, unsigned char **buf, size_t *len, char *err)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, RT_ERRLEN, "cannot open %s %s: %s", what, file, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, RT_ERRLEN, "%s is not a regular file", file);
        fclose(f);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = malloc(n ? n : 1);
    if (!b) {
        snprintf(err, RT_ERRLEN, "%s: out of memory reading %zu bytes", file, n);
        fclose(f);
        return -1;
    }
    size_t got = fread(b, 1, n, f);
    if (got != n && ferror(f)) {
        snprintf(err, RT_ERRLEN, "cannot read %s: %s", file, strerror(errno));
        free(b);
        fclose(f);
        return -1;
    }
    fclose(f);
    *buf = b;
    *len = got;
    return 0;
}
