/*
 * faultshim.c - an LD_PRELOAD library for the fault-injection sweep (test_faults.sh): it
 * counts the calls a program makes to write files through stdio and the file system
 * (fopen/fdopen for writing, mkstemp, fwrite, fputs, fflush, fsync, fclose of a written
 * file, rename) and makes the one numbered FAULT_AT fail with errno FAULT_ERRNO (ENOSPC,
 * EIO or EINTR), as a full disk, a bad sector or a signal would. Reads, standard output and
 * standard error are left alone. At exit it appends the count to $FAULT_COUNT_FILE, so the
 * sweep knows how many places to try. Only for tests: it is never linked into anything.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long calls, fail_at = -1;
static int fail_errno = ENOSPC;
static FILE *written[64]; /* the FILEs opened for writing, to leave the others alone */

static void init(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    const char *a = getenv("FAULT_AT"), *e = getenv("FAULT_ERRNO");
    fail_at = a ? atol(a) : -1;
    if (e && !strcmp(e, "EIO"))
        fail_errno = EIO;
    else if (e && !strcmp(e, "EINTR"))
        fail_errno = EINTR;
}

/* 1 when this call is the one to fail (errno set). */
static int fault(void)
{
    init();
    if (++calls == fail_at) {
        errno = fail_errno;
        return 1;
    }
    return 0;
}

static int is_written(FILE *f)
{
    for (int i = 0; i < 64; i++)
        if (f && written[i] == f)
            return 1;
    return 0;
}

static void remember(FILE *f, int on)
{
    for (int i = 0; i < 64; i++)
        if (on ? !written[i] : written[i] == f) {
            written[i] = on ? f : NULL;
            return;
        }
}

/* A failed write leaves the stream's error indicator set, as a real one does (glibc's
 * flag: the test runs on glibc), so ferror() tells the program. */
static void set_error(FILE *f)
{
    f->_flags |= 0x20; /* _IO_ERR_SEEN */
}

static int writing(const char *mode)
{
    return mode && (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'));
}

/* The next definition of fn (libc's), looked up once. */
#define REAL(fn) static __typeof__(&fn) real; if (!real) real = (__typeof__(&fn))dlsym(RTLD_NEXT, #fn)

FILE *fopen(const char *path, const char *mode)
{
    REAL(fopen);
    if (writing(mode) && fault())
        return NULL;
    FILE *f = real(path, mode);
    if (f && writing(mode))
        remember(f, 1);
    return f;
}

FILE *fopen64(const char *path, const char *mode)
{
    return fopen(path, mode);
}

FILE *fdopen(int fd, const char *mode)
{
    REAL(fdopen);
    if (writing(mode) && fault())
        return NULL;
    FILE *f = real(fd, mode);
    if (f && writing(mode))
        remember(f, 1);
    return f;
}

int mkstemp(char *tmpl)
{
    REAL(mkstemp);
    if (fault())
        return -1;
    return real(tmpl);
}

int mkstemp64(char *tmpl)
{
    return mkstemp(tmpl);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    REAL(fwrite);
    if (is_written(f) && n && size && fault()) {
        set_error(f);
        return 0;
    }
    return real(p, size, n, f);
}

int fputs(const char *s, FILE *f)
{
    REAL(fputs);
    if (is_written(f) && fault()) {
        set_error(f);
        return EOF;
    }
    return real(s, f);
}

int fflush(FILE *f)
{
    REAL(fflush);
    if (is_written(f) && fault()) {
        set_error(f);
        return EOF;
    }
    return real(f);
}

int fsync(int fd)
{
    REAL(fsync);
    if (fault())
        return -1;
    return real(fd);
}

int fclose(FILE *f)
{
    REAL(fclose);
    int w = is_written(f);
    if (w)
        remember(f, 0);
    int rc = real(f);
    if (w && fault())
        return EOF; /* the data did not all reach the disk */
    return rc;
}

int rename(const char *from, const char *to)
{
    REAL(rename);
    if (fault())
        return -1;
    return real(from, to);
}

__attribute__((destructor)) static void report(void)
{
    const char *file = getenv("FAULT_COUNT_FILE");
    if (!file)
        return;
    FILE *(*op)(const char *, const char *) = (FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT, "fopen");
    int (*cl)(FILE *) = (int (*)(FILE *))dlsym(RTLD_NEXT, "fclose");
    FILE *f = op ? op(file, "a") : NULL;
    if (f) {
        fprintf(f, "%ld\n", calls);
        cl(f);
    }
}
