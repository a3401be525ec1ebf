/*
 * rt_file.c - writing a file so that nobody ever sees it half-written: the bytes go to a
 * new temporary file beside the target, which is renamed over the target only when every
 * write, flush (and, for files worth it, fsync) succeeded. A full disk or a crash leaves
 * the previous file as it was. Weights files, decode caches and cnnc's outputs use it. A
 * target that exists and is not a regular file (/dev/null, a pipe) is written in place.
 */
#include "cnnrt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rt_atomic_open(rt_atomic_file *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->path = path;
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a device or a pipe (/dev/null, /dev/stdout): written in place; renaming a file
         * over it would replace the device itself */
        a->f = fopen(path, "wb");
        return a->f ? 0 : -1;
    }
    size_t n = strlen(path);
    a->tmp = malloc(n + 12);
    if (!a->tmp) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(a->tmp, path, n);
    memcpy(a->tmp + n, ".tmp-XXXXXX", 12);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int e = errno;
        free(a->tmp);
        a->tmp = NULL;
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
        errno = e;
        return ok ? 0 : -1;
    }
    if (ok && rename(a->tmp, a->path) != 0)
        ok = 0, e = errno;
    if (ok && durable)
        sync_dir(a->path);
    if (!ok)
        unlink(a->tmp);
    free(a->tmp);
    a->tmp = NULL;
    if (!ok) {
        errno = e;
        return -1;
    }
    return 0;
}
