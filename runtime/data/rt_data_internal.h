/*
 * rt_data_internal.h - private declarations shared by the data-loading files of libcnnrt
 * (rt_data*.c, rt_image.c): the scanned list of image files, the thread pool that decodes
 * them, the decode cache, the one warning function and small path helpers. Not installed.
 */
#ifndef RT_DATA_INTERNAL_H
#define RT_DATA_INTERNAL_H

#include "cnnrt.h"

#include <stdarg.h>
#include <sys/stat.h>

/* Bumped whenever decoding changes what a set's pixels are (resize filter, colour
 * conversion, file layout), so that old cache files are rebuilt, never trusted. */
#define RT_DATA_FORMAT_VERSION 3u /* 2: PGM/PPM scaled by maxval, 16-bit read right;
                                     3: resized by rt_resize_impl.h */

/* Largest accepted network input side and channel count (stbi's req_comp is 1..4). */
#define RT_IMAGE_MAX_SIDE 16384
#define RT_IMAGE_MAX_C 4

/* ------------------------------------------------------------------ warnings, paths */

/* Prints "cnnrt: warning: ..." and a newline on stderr unless opts->quiet (opts may be NULL).
 * The only place the data code prints. */
void rt_data_warn(const rt_load_opts *opts, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* malloc'ed "a/b" (no doubled slash); NULL when out of memory. */
char *rt_path_join(const char *a, const char *b);
/* PATH/train with PATH/val (valid, validation) and/or PATH/test, each with class folders
 * (rt_data_parts.c): 0 loaded, 1 not this layout (out untouched), -1 failed (err set). */
int rt_dataset_load_parts(const char *path, rt_shape shape, const rt_load_opts *opts,
                          rt_dataset *out, char *err);

/* The non-hidden entries (names not starting with '.') of a directory, sorted by strcmp
 * (byte order), malloc'ed; *n their count. Returns 0, or -1 with err set. */
int rt_list_dir(const char *dir, char ***names, int *n, char *err);
void rt_free_names(char **names, int n);

/* Checks the network input shape for image decoding. Returns 0, or -1 with err set. */
int rt_shape_check(rt_shape shape, char *err);

/* ------------------------------------------------------------------ scanned file lists */

/* One image file to decode, with what the cache key needs to know about it. */
typedef struct {
    char *path;             /* full path, as built from the set's folder */
    int label;
    long long size;         /* bytes */
    long long mtime_ns;     /* modification time, nanoseconds since the epoch */
} rt_entry;

/* What a folder scan (image folders, Kaggle csv) found, before any decoding. */
typedef struct {
    int n, cap;
    rt_entry *e;
    int nclasses;
    char **classnames;      /* nclasses malloc'ed names */
    int nskipped;           /* images already skipped while scanning (Kaggle: not in the csv) */
    uint64_t extra_key;     /* other inputs that decide the set (Kaggle: the csv's stat) */
} rt_scan;

/* Appends a file (path is copied); st gives its size and mtime. Returns 0 or -1 (memory). */
int rt_scan_add(rt_scan *s, const char *path, int label, const struct stat *st);
void rt_scan_free(rt_scan *s);

/* DIR/<class>/<image>: one subfolder per class, classes in byte order of their names. */
int rt_scan_folder(const char *dir, const rt_load_opts *opts, rt_scan *out, char *err);
/* The Kaggle Tom & Jerry download: DIR/ground_truth.csv + DIR/tom_and_jerry/tom_and_jerry/ */
int rt_scan_kaggle(const char *dir, const rt_load_opts *opts, rt_scan *out, char *err);

/* Decodes every entry of s in parallel into out (n, pix, label, files, classnames,
 * nskipped); unreadable images are skipped with a warning each. Entries' paths and the
 * class names move into out. Returns 0, or -1 with err set (memory, no image decoded). */
int rt_decode_scan(rt_scan *s, const char *dir, rt_shape shape, const rt_load_opts *opts,
                   rt_dataset *out, char *err);

/* ------------------------------------------------------------------ IDX */

/* Resolves PATH (a folder, or one of its IDX files) to the four IDX files: train images,
 * train labels, test images, test labels (malloc'ed paths). Returns 1 when PATH is an IDX
 * set, 0 when it is not (nothing allocated), -1 with err set when it is one but broken. */
int rt_idx_find(const char *path, char *files[4], char *err);
/* Reads the four files found by rt_idx_find into out at the shape. */
int rt_idx_read(char *const files[4], rt_shape shape, const rt_load_opts *opts,
                rt_dataset *out, char *err);

/* ------------------------------------------------------------------ decoding */

/* Number of threads for opts (threads <= 0: all online cores), never above jobs or 64. */
int rt_data_threads(const rt_load_opts *opts, int jobs);
/* Runs job(ctx, i) for i in [0, n) on nthreads threads (the caller's among them), on a
 * pool of rt_threads.h with dynamic scheduling. */
void rt_pool_run(int n, int nthreads, void (*job)(void *ctx, int i), void *ctx);

/* Converts interleaved pixels (w x h, comp channels) to planar uint8 [c][h][w] at the
 * shape: grey input (comp 1) is replicated into colour channels (alpha, if any, 255),
 * otherwise comp must equal shape.c; the size is changed by rt_resize_impl.h's rule (an
 * exact area average by an integer factor when the source is 2 or more times larger along a
 * side, then an antialiased tent filter in integer arithmetic), which standalone files
 * print verbatim; the aspect ratio is not kept. Returns 0, or -1 with err set (memory). */
int rt_pixels_to_planar(const uint8_t *in, int w, int h, int comp, rt_shape shape,
                        uint8_t *out, char *err);
/* Decodes one image file (checked first, see rt_image_int.h) straight to planar uint8 at
 * the shape. */
int rt_image_decode(const char *file, rt_shape shape, uint8_t *out, char *err);

/* ------------------------------------------------------------------ the decode cache */

/* An incremental FNV-1a 64-bit hash for cache keys and cache file names. */
typedef struct { uint64_t h; } rt_hash;
void rt_hash_init(rt_hash *h);
void rt_hash_bytes(rt_hash *h, const void *p, size_t n);
void rt_hash_u64(rt_hash *h, uint64_t v);
void rt_hash_str(rt_hash *h, const char *s);       /* includes the terminating NUL */

/* The key of a scanned set: format version, kind, shape, every file's path, label, size
 * and mtime, and extra_key. */
uint64_t rt_scan_key(const rt_scan *s, int kind, rt_shape shape);

/* The cache file of the set at dataset_path (by device and inode) and shape, in
 * opts->cache_dir or the default one, which is created. NULL (after a warning) when there
 * is none. */
char *rt_cache_file(const char *dataset_path, rt_shape shape, const rt_load_opts *opts);
/* Reads a cache file written for key and shape into out. Returns 1 on a hit, 0 when the
 * file is missing, stale or corrupt (a corrupt one is reported with a warning). */
int rt_cache_read(const char *file, uint64_t key, rt_shape shape, const rt_load_opts *opts,
                  rt_dataset *out);
/* Writes ds as the cache file for key, to a temporary file renamed over file. A failure
 * is a warning: the set is loaded anyway. Returns 0 or -1. */
int rt_cache_write(const char *file, uint64_t key, const rt_dataset *ds,
                   const rt_load_opts *opts);

#endif
