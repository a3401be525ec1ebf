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

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens the target itself (no temporary file); 0 or -1 with errno set. */
static int in_place(rt_atomic_file *a)
{
    a->f = fopen(a->path, "wb");
    if (a->f)
        return 0;
    int e = errno;
    free(a->target);
    a->target = NULL;
    errno = e;
    return -1;
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
    if (!a->tmp) {
        free(a->target);
        a->target = NULL;
        errno = ENOMEM;
        return -1;
    }
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
        free(a->target);
        a->target = NULL;
        errno = e;
        return -1;
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
        free(a->tmp);
        a->tmp = NULL;
        free(a->target);
        a->target = NULL;
        errno = e;
        return -1;
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
    int e = 0;
    if (!a->f)
        return -1;
    if (ok && (ferror(a->f) || fflush(a->f) != 0))
        ok = 0, e = errno ? errno : EIO;
    if (ok && durable && a->tmp && fsync(fileno(a->f)) != 0)
        ok = 0, e = errno;
    if (fclose(a->f) != 0 && ok)
        ok = 0, e = errno;
    a->f = NULL;
    if (!a->tmp) { /* written in place */
        free(a->target);
        a->target = NULL;
        errno = e;
        return ok ? 0 : -1;
    }
    const char *t = a->target ? a->target : a->path;
    if (ok && rename(a->tmp, t) != 0)
        ok = 0, e = errno;
    if (ok && durable)
        sync_dir(t);
    if (!ok)
        unlink(a->tmp);
    free(a->tmp);
    a->tmp = NULL;
    free(a->target);
    a->target = NULL;
    if (!ok) {
        errno = e;
        return -1;
    }
    return 0;
}
