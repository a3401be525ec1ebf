/*
 * rt_data_cache.c - the decode cache: a decoded set is written once to a file keyed by a hash
 * of its file list (paths, labels, sizes, mtimes), the target shape and the format version,
 * and later loads read it back. A stale, truncated or corrupt file (bad magic, size or CRC)
 * is never trusted: the set is decoded again and the file rewritten (rt_atomic_file:
 * temporary + rename).
 *
 * File layout (native byte order, guarded by an endianness word):
 *   "CNNCDS\0\1", u32 0x01020304, u32 version, u64 key,
 *   i32 n, c, h, w, nclasses, ntest_fixed, nskipped, has_files, u64 string bytes   (64 bytes)
 *   the class names then (has_files) the n file names, each NUL-terminated,
 *   i32 labels[n], u8 pixels[n][c][h][w], u32 CRC-32 of everything before, u32 0.
 */
#include "rt_data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static const char MAGIC[8] = {'C', 'N', 'N', 'C', 'D', 'S', 0, 1};
#define ENDIAN_WORD 0x01020304u
#define HEADER_BYTES 64
#define TRAILER_BYTES 8

typedef struct {
    char magic[8];
    uint32_t endian, version;
    uint64_t key;
    int32_t n, c, h, w, nclasses, ntest_fixed, nskipped, has_files;
    uint64_t strbytes;
} cache_header;
_Static_assert(sizeof(cache_header) == HEADER_BYTES, "the cache header is 64 bytes");

/* ------------------------------------------------------------------ hashing */

void rt_hash_init(rt_hash *h)
{
    h->h = 0xcbf29ce484222325ull;
}

void rt_hash_bytes(rt_hash *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t v = h->h;
    for (size_t i = 0; i < n; i++)
        v = (v ^ b[i]) * 0x100000001b3ull;
    h->h = v;
}

void rt_hash_u64(rt_hash *h, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    rt_hash_bytes(h, b, 8);
}

void rt_hash_str(rt_hash *h, const char *s)
{
    rt_hash_bytes(h, s, strlen(s) + 1);
}

uint64_t rt_scan_key(const rt_scan *s, int kind, rt_shape shape)
{
    rt_hash h;
    rt_hash_init(&h);
    rt_hash_u64(&h, RT_DATA_FORMAT_VERSION);
    rt_hash_u64(&h, (uint64_t)kind);
    rt_hash_u64(&h, (uint64_t)shape.c);
    rt_hash_u64(&h, (uint64_t)shape.h);
    rt_hash_u64(&h, (uint64_t)shape.w);
    rt_hash_u64(&h, s->extra_key);
    rt_hash_u64(&h, (uint64_t)s->nskipped);
    rt_hash_u64(&h, (uint64_t)s->nclasses);
    for (int k = 0; k < s->nclasses; k++)
        rt_hash_str(&h, s->classnames[k]);
    rt_hash_u64(&h, (uint64_t)s->n);
    for (int i = 0; i < s->n; i++) {
        rt_hash_str(&h, s->e[i].path);
        rt_hash_u64(&h, (uint64_t)s->e[i].label);
        rt_hash_u64(&h, (uint64_t)s->e[i].size);
        rt_hash_u64(&h, (uint64_t)s->e[i].mtime_ns);
    }
    return h.h;
}

/* ------------------------------------------------------------------ where */

/* mkdir -p; returns 0 or -1 with errno set. */
static int make_dirs(char *path)
{
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            int r = mkdir(path, 0777);
            int e = errno;
            *p = c;
            if (r < 0 && e != EEXIST) {
                errno = e;
                return -1;
            }
            if (c == 0)
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

char *rt_cache_file(const char *dataset_path, rt_shape shape, const rt_load_opts *opts)
{
    char *dir = NULL;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (opts && opts->cache_dir && *opts->cache_dir)
        dir = strdup(opts->cache_dir);
    else if (xdg && xdg[0] == '/')
        dir = rt_path_join(xdg, "cnnc");
    else if (home && home[0] == '/')
        dir = rt_path_join(home, ".cache/cnnc");
    else {
        rt_data_warn(opts, "no cache folder ($XDG_CACHE_HOME and $HOME unset); the decoded "
                     "images are not cached");
        return NULL;
    }
    if (!dir)
        return NULL;
    if (make_dirs(dir) < 0) {
        rt_data_warn(opts, "cannot create the cache folder %s (%s); the decoded images are "
                     "not cached", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    /* One file per set (its folder's device and inode, whatever path names it) and shape:
     * a changed set overwrites its own stale file. */
    struct stat st;
    rt_hash h;
    rt_hash_init(&h);
    if (stat(dataset_path, &st) == 0) {
        rt_hash_u64(&h, (uint64_t)st.st_dev);
        rt_hash_u64(&h, (uint64_t)st.st_ino);
    } else {
        rt_hash_str(&h, dataset_path);
    }
    char name[96];
    snprintf(name, sizeof name, "set-%016llx-%dx%dx%d.cache", (unsigned long long)h.h, shape.c,
             shape.h, shape.w);
    char *file = rt_path_join(dir, name);
    free(dir);
    return file;
}

/* ------------------------------------------------------------------ reading */

/* Reads n bytes into p, extending the CRC. Returns 0 or -1. */
static int read_crc(FILE *f, void *p, size_t n, uLong *crc)
{
    if (n && fread(p, 1, n, f) != n)
        return -1;
    *crc = crc32_z(*crc, p, n);
    return 0;
}

/* Splits the string section into names; returns 0 if it holds exactly count strings. */
static int split_strings(char *buf, size_t len, char **dst, size_t count)
{
    size_t pos = 0;
    for (size_t i = 0; i < count; i++) {
        char *end = memchr(buf + pos, 0, len - pos);
        if (!end)
            return -1;
        dst[i] = buf + pos;
        pos = (size_t)(end - buf) + 1;
    }
    return pos == len ? 0 : -1;
}

int rt_cache_read(const char *file, uint64_t key, rt_shape shape, const rt_load_opts *opts,
                  rt_dataset *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(file, "rb");
    if (!f)
        return 0; /* no cache yet */
    const char *why = NULL;
    char *strings = NULL, **names = NULL;
    cache_header hd;
    uLong crc = crc32_z(0, NULL, 0);
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || read_crc(f, &hd, sizeof hd, &crc) < 0) {
        why = "shorter than its header";
        goto bad;
    }
    if (memcmp(hd.magic, MAGIC, 8) != 0 || hd.endian != ENDIAN_WORD) {
        why = "bad magic number";
        goto bad;
    }
    if (hd.version != RT_DATA_FORMAT_VERSION || hd.key != key || hd.c != shape.c
        || hd.h != shape.h || hd.w != shape.w) {
        fclose(f); /* stale: another version, file list or shape; silently rebuilt */
        return 0;
    }
    const size_t chw = (size_t)shape.c * shape.h * shape.w;
    if (hd.n <= 0 || hd.nclasses <= 0 || hd.ntest_fixed < 0 || hd.ntest_fixed > hd.n
        || hd.nskipped < 0 || (hd.has_files != 0 && hd.has_files != 1)
        || (size_t)hd.n > ((size_t)st.st_size / (chw + 4))
        || hd.strbytes > (uint64_t)st.st_size
        || (uint64_t)hd.nclasses + (hd.has_files ? (uint64_t)hd.n : 0) > hd.strbytes) {
        why = "impossible counts in its header";
        goto bad;
    }
    const size_t n = (size_t)hd.n;
    if ((uint64_t)st.st_size
        != HEADER_BYTES + hd.strbytes + 4 * (uint64_t)n + n * chw + TRAILER_BYTES) {
        why = "wrong size (truncated?)";
        goto bad;
    }
    const size_t ncl = (size_t)hd.nclasses, nstr = ncl + (hd.has_files ? n : 0);
    strings = malloc(hd.strbytes ? hd.strbytes : 1);
    names = malloc(nstr * sizeof *names);
    out->label = malloc(n * sizeof *out->label);
    out->pix = malloc(n * chw);
    if (!strings || !names || !out->label || !out->pix) {
        why = "too large for memory";
        goto bad;
    }
    uint32_t trailer[2];
    if (read_crc(f, strings, hd.strbytes, &crc) < 0
        || read_crc(f, out->label, n * sizeof *out->label, &crc) < 0
        || read_crc(f, out->pix, n * chw, &crc) < 0
        || fread(trailer, sizeof trailer, 1, f) != 1) {
        why = "read error";
        goto bad;
    }
    if (trailer[0] != (uint32_t)crc || trailer[1] != 0) {
        why = "checksum mismatch";
        goto bad;
    }
    if (split_strings(strings, hd.strbytes, names, nstr) < 0) {
        why = "bad name table";
        goto bad;
    }
    for (size_t i = 0; i < n; i++)
        if (out->label[i] < 0 || out->label[i] >= hd.nclasses) {
            why = "label out of range";
            goto bad;
        }
    /* Accepted: copy the names out of the string block. */
    out->n = hd.n;
    out->c = hd.c;
    out->h = hd.h;
    out->w = hd.w;
    out->ntest_fixed = hd.ntest_fixed;
    out->nskipped = hd.nskipped;
    out->classnames = calloc((size_t)hd.nclasses, sizeof *out->classnames);
    out->files = hd.has_files ? calloc(n, sizeof *out->files) : NULL;
    if (!out->classnames || (hd.has_files && !out->files)) {
        why = "too large for memory";
        goto bad;
    }
    out->nclasses = hd.nclasses;
    for (size_t i = 0; i < nstr; i++) {
        char *s = strdup(names[i]);
        if (!s) {
            why = "too large for memory";
            goto bad;
        }
        if (i < ncl)
            out->classnames[i] = s;
        else
            out->files[i - ncl] = s;
    }
    free(strings);
    free(names);
    fclose(f);
    out->cached = 1;
    return 1;
bad:
    rt_data_warn(opts, "decode cache %s: %s; rebuilding it", file, why);
    free(strings);
    free(names);
    fclose(f);
    rt_dataset_free(out);
    return 0;
}

/* ------------------------------------------------------------------ writing */

static int write_crc(FILE *f, const void *p, size_t n, uLong *crc)
{
    *crc = crc32_z(*crc, p, n);
    return n && fwrite(p, 1, n, f) != n ? -1 : 0;
}

int rt_cache_write(const char *file, uint64_t key, const rt_dataset *ds,
                   const rt_load_opts *opts)
{
    const size_t n = (size_t)ds->n, chw = (size_t)ds->c * ds->h * ds->w;
    cache_header hd;
    memset(&hd, 0, sizeof hd);
    memcpy(hd.magic, MAGIC, 8);
    hd.endian = ENDIAN_WORD;
    hd.version = RT_DATA_FORMAT_VERSION;
    hd.key = key;
    hd.n = ds->n;
    hd.c = ds->c;
    hd.h = ds->h;
    hd.w = ds->w;
    hd.nclasses = ds->nclasses;
    hd.ntest_fixed = ds->ntest_fixed;
    hd.nskipped = ds->nskipped;
    hd.has_files = ds->files != NULL;
    for (int k = 0; k < ds->nclasses; k++)
        hd.strbytes += strlen(ds->classnames[k]) + 1;
    for (size_t i = 0; hd.has_files && i < n; i++)
        hd.strbytes += strlen(ds->files[i]) + 1;

    rt_atomic_file a;
    if (rt_atomic_open(&a, file) < 0) {
        rt_data_warn(opts, "cannot write the decode cache %s (%s); continuing without it", file,
                     strerror(errno));
        return -1;
    }
    FILE *f = a.f;
    uLong crc = crc32_z(0, NULL, 0);
    int bad = write_crc(f, &hd, sizeof hd, &crc);
    for (int k = 0; !bad && k < ds->nclasses; k++)
        bad = write_crc(f, ds->classnames[k], strlen(ds->classnames[k]) + 1, &crc);
    for (size_t i = 0; !bad && hd.has_files && i < n; i++)
        bad = write_crc(f, ds->files[i], strlen(ds->files[i]) + 1, &crc);
    if (!bad)
        bad = write_crc(f, ds->label, n * sizeof *ds->label, &crc);
    if (!bad)
        bad = write_crc(f, ds->pix, n * chw, &crc);
    uint32_t trailer[2] = {(uint32_t)crc, 0};
    if (!bad)
        bad = fwrite(trailer, sizeof trailer, 1, f) != 1;
    if (rt_atomic_close(&a, !bad, 0) < 0) {
        rt_data_warn(opts, "cannot write the decode cache %s (%s); continuing without it", file,
                     strerror(errno ? errno : EIO));
        return -1;
    }
    return 0;
}
