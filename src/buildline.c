/*
 * buildline.c - where libcnnrt is, for the build line cnnc prints. The rule:
 *  - cnnc runs from its build tree (its binary is in CNNC_BUILDDIR or its .libs): the
 *    build's own header and library, with an rpath, since nothing is installed;
 *  - cnnc runs from where it was installed (CNNC_BINDIR) and libdir is a system folder
 *    (/usr/lib, /usr/local/lib, /usr/lib/TRIPLET): `pkg-config --cflags --libs cnnrt`,
 *    which finds cnnrt.pc there;
 *  - otherwise (another prefix, or a copy staged with DESTDIR): the configured include
 *    and lib folders under the root cnnc runs from (ROOT/BINDIR/cnnc: ROOT/INCLUDEDIR and
 *    ROOT/LIBDIR; a moved install: BIN/../include and BIN/../lib), with an rpath, so
 *    that neither PKG_CONFIG_PATH nor LD_LIBRARY_PATH is needed.
 * Paths are quoted for the shell when they hold anything but plain characters.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "buildline.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CNNC_BUILDDIR
#define CNNC_BUILDDIR ""
#endif
#ifndef CNNC_SRCDIR
#define CNNC_SRCDIR ""
#endif
#ifndef CNNC_LIBDIR
#define CNNC_LIBDIR "/usr/local/lib"
#endif
#ifndef CNNC_BINDIR
#define CNNC_BINDIR "/usr/local/bin"
#endif
#ifndef CNNC_INCLUDEDIR
#define CNNC_INCLUDEDIR "/usr/local/include"
#endif

/* The folder of the running binary ("" if unknown). */
static void exe_dir(char *out, size_t size)
{
    char path[PATH_MAX];
    out[0] = '\0';
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(out, size, "%s", path);
}

/* s, quoted for a POSIX shell if it needs it. */
static const char *shq(const char *s, char *buf, size_t size)
{
    if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./+-=,:@%") == strlen(s) && *s)
        return s;
    size_t j = 0;
    if (j + 1 < size) buf[j++] = '\'';
    for (; *s && j + 5 < size; s++) {
        if (*s == '\'') {
            memcpy(buf + j, "'\\''", 4);
            j += 4;
        } else {
            buf[j++] = *s;
        }
    }
    if (j + 1 < size) buf[j++] = '\'';
    buf[j] = '\0';
    return buf;
}

static int system_libdir(const char *d)
{
    if (strcmp(d, "/usr/lib") == 0 || strcmp(d, "/usr/local/lib") == 0 || strcmp(d, "/usr/lib64") == 0) return 1;
    return strncmp(d, "/usr/lib/", 9) == 0 && strchr(d + 9, '/') == NULL; /* /usr/lib/x86_64-linux-gnu */
}

int cnnc_build_line(char *buf, size_t size, const char *cfile, const char *prog)
{
    char dir[PATH_MAX], libs[PATH_MAX + 16], inc[PATH_MAX * 2], lib[PATH_MAX * 2];
    static char q1[PATH_MAX * 5], q2[PATH_MAX * 5], q3[PATH_MAX * 5], q4[PATH_MAX * 5], q5[PATH_MAX * 5];
    exe_dir(dir, sizeof dir);
    int n;
    if (*CNNC_BUILDDIR && *dir &&
        (strcmp(dir, CNNC_BUILDDIR) == 0 || (snprintf(libs, sizeof libs, "%s/.libs", CNNC_BUILDDIR) > 0 &&
                                             strcmp(dir, libs) == 0))) {
        snprintf(inc, sizeof inc, "%s/runtime/include", CNNC_SRCDIR);
        snprintf(lib, sizeof lib, "%s/.libs", CNNC_BUILDDIR);
    } else if (!*dir || (strcmp(dir, CNNC_BINDIR) == 0 && system_libdir(CNNC_LIBDIR))) {
        n = snprintf(buf, size, "cc -O2 %s $(pkg-config --cflags --libs cnnrt) -o %s", shq(cfile, q1, sizeof q1),
                     shq(prog, q2, sizeof q2));
        return n < 0 || (size_t)n >= size ? -1 : 0;
    } else {
        size_t dl = strlen(dir), bl = strlen(CNNC_BINDIR);
        if (dl >= bl && strcmp(dir + dl - bl, CNNC_BINDIR) == 0) { /* DESTDIR + bindir */
            snprintf(inc, sizeof inc, "%.*s%s", (int)(dl - bl), dir, CNNC_INCLUDEDIR);
            snprintf(lib, sizeof lib, "%.*s%s", (int)(dl - bl), dir, CNNC_LIBDIR);
        } else { /* a moved install: PREFIX/bin beside PREFIX/include and PREFIX/lib */
            snprintf(inc, sizeof inc, "%s/../include", dir);
            snprintf(lib, sizeof lib, "%s/../lib", dir);
        }
    }
    char real[PATH_MAX]; /* tidy: /build/../runtime becomes /runtime */
    if (realpath(inc, real)) snprintf(inc, sizeof inc, "%s", real);
    if (realpath(lib, real)) snprintf(lib, sizeof lib, "%s", real);
    n = snprintf(buf, size, "cc -O2 %s -I%s -L%s -Wl,-rpath,%s -lcnnrt -lm -o %s", shq(cfile, q1, sizeof q1),
                 shq(inc, q2, sizeof q2), shq(lib, q3, sizeof q3), shq(lib, q4, sizeof q4), shq(prog, q5, sizeof q5));
    return n < 0 || (size_t)n >= size ? -1 : 0;
}
