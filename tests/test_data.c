/*
 * test_data.c - unit tests of libcnnrt's data loading: image folders, the Kaggle csv layout,
 * IDX files (plain and gzipped), the decode cache, the stratified split, batches and
 * rt_image_load. Every test writes its own tiny data under a mkdtemp folder, removed at the end;
 * expected values are worked out by hand in the comments.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <stb_image_write.h>

#include "cnnrt.h"

/* ------------------------------------------------------------------ scratch folders */

static char root[256]; /* made once per test case, before the forked tests run */

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                    continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
                rm_rf(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void setup_root(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/cnnc-test-data-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        abort();
    }
}

static void teardown_root(void)
{
    rm_rf(root);
}

/* root/<rel>, in one of a few rotating buffers (copy it to keep it). */
static const char *P(const char *fmt, ...)
{
    static char buf[8][1024];
    static int k;
    char rel[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    char *b = buf[k++ % 8];
    snprintf(b, 1024, "%s/%s", root, rel);
    return b;
}

static void mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0777);
            *p = '/';
        }
    mkdir(tmp, 0777);
}

static void write_text(const char *file, const char *text)
{
    FILE *f = fopen(file, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* A solid w x h image of colour col[0..comp), as png, bmp or jpg (quality 100). */
static void write_solid(const char *file, int w, int h, int comp, const unsigned char *col)
{
    unsigned char *px = malloc((size_t)w * h * comp);
    for (int i = 0; i < w * h; i++)
        memcpy(px + i * comp, col, (size_t)comp);
    const char *ext = strrchr(file, '.');
    int ok = !strcmp(ext, ".png")   ? stbi_write_png(file, w, h, comp, px, w * comp)
             : !strcmp(ext, ".bmp") ? stbi_write_bmp(file, w, h, comp, px)
                                    : stbi_write_jpg(file, w, h, comp, px, 100);
    free(px);
    ck_assert_msg(ok, "cannot write %s", file);
}

static long file_size(const char *file)
{
    struct stat st;
    return stat(file, &st) == 0 ? (long)st.st_size : -1;
}

/* ------------------------------------------------------------------ stderr capture */

static int saved_fd = -1;

static void capture_begin(void)
{
    fflush(stderr);
    int fd = open(P("stderr.txt"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    saved_fd = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Returns what was written to stderr since capture_begin (malloc'ed). */
static char *capture_end(void)
{
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    FILE *f = fopen(P("stderr.txt"), "rb");
    static char none[] = "";
    if (!f)
        return strdup(none);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ------------------------------------------------------------------ helpers on sets */

static rt_load_opts no_cache(void)
{
    rt_load_opts o;
    rt_load_opts_defaults(&o);
    o.use_cache = 0;
    o.threads = 2;
    return o;
}

/* Index of the image whose path ends in "/name", or -1. */
static int find_file(const rt_dataset *ds, const char *name)
{
    size_t ln = strlen(name);
    for (int i = 0; i < ds->n; i++) {
        size_t lf = strlen(ds->files[i]);
        if (lf > ln && ds->files[i][lf - ln - 1] == '/' && !strcmp(ds->files[i] + lf - ln, name))
            return i;
    }
    return -1;
}

/* All pixels of channel ch of image i equal v (within tol). */
static void check_plane(const rt_dataset *ds, int i, int ch, int v, int tol)
{
    size_t hw = (size_t)ds->h * ds->w;
    const uint8_t *p = ds->pix + ((size_t)i * ds->c + ch) * hw;
    for (size_t k = 0; k < hw; k++)
        ck_assert_msg(abs(p[k] - v) <= tol, "image %d (%s) channel %d pixel %zu: %d, expected %d",
                      i, ds->files ? ds->files[i] : "-", ch, k, p[k], v);
}

/* Three classes in names whose byte order differs from a case-blind order:
 * "Zebra" < "ant" < "bee" (capitals sort first). Each holds two 8x6 solid images. */
static const unsigned char COL[6][3] = {
    {200, 100, 50}, {10, 20, 30},     /* Zebra: z1.png, z2.png */
    {0, 255, 128},  {90, 90, 90},     /* ant:   a1.bmp, a2.bmp */
    {250, 5, 5},    {5, 5, 250},      /* bee:   b1.jpg, b2.jpg */
};
static const char *const NAME[6] = {"z1.png", "z2.png", "a1.bmp", "a2.bmp", "b1.jpg", "b2.jpg"};
static const char *const CLASSDIR[6] = {"Zebra", "Zebra", "ant", "ant", "bee", "bee"};
static const int LABEL[6] = {0, 0, 1, 1, 2, 2};

static void make_folder_set(const char *set)
{
    for (int i = 0; i < 6; i++) {
        mkdirs(P("%s/%s", set, CLASSDIR[i]));
        write_solid(P("%s/%s/%s", set, CLASSDIR[i], NAME[i]), 8, 6, 3, COL[i]);
    }
    /* Hidden files and folders are not images nor classes. */
    mkdirs(P("%s/.hidden", set));
    write_solid(P("%s/.hidden/x.png", set), 8, 6, 3, COL[0]);
    write_text(P("%s/ant/.DS_Store", set), "not an image");
    /* A file beside the classes is not a class. */
    write_text(P("%s/README", set), "notes");
}

/* ------------------------------------------------------------------ image folders */

START_TEST(test_folder_rgb)
{
    make_folder_set("set");
    rt_load_opts o = no_cache();
    rt_dataset ds;
    char err[RT_ERRLEN];
    rt_shape s = {3, 4, 5}; /* 8x6 -> 5x4: a resize */
    ck_assert_msg(rt_dataset_load(P("set"), s, &o, &ds, err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 6);
    ck_assert_int_eq(ds.c, 3);
    ck_assert_int_eq(ds.h, 4);
    ck_assert_int_eq(ds.w, 5);
    ck_assert_int_eq(ds.nclasses, 3);
    ck_assert_str_eq(ds.classnames[0], "Zebra");
    ck_assert_str_eq(ds.classnames[1], "ant");
    ck_assert_str_eq(ds.classnames[2], "bee");
    ck_assert_int_eq(ds.nskipped, 0);
    ck_assert_int_eq(ds.ntest_fixed, 0);
    ck_assert_int_eq(ds.cached, 0);
    for (int f = 0; f < 6; f++) {
        int i = find_file(&ds, NAME[f]);
        ck_assert_msg(i >= 0, "%s not loaded", NAME[f]);
        ck_assert_int_eq(ds.label[i], LABEL[f]);
        /* A resized solid colour keeps its colour: lossless formats exactly, JPEG (quality
         * 100, chroma subsampled) within a few levels. */
        int tol = strstr(NAME[f], ".jpg") ? 4 : 0;
        for (int ch = 0; ch < 3; ch++)
            check_plane(&ds, i, ch, COL[f][ch], tol);
    }
    rt_dataset_free(&ds);
    ck_assert_ptr_null(ds.pix);
}
END_TEST

START_TEST(test_folder_grey)
{
    make_folder_set("set");
    /* A grey png too: loaded into 3 channels it is replicated. */
    const unsigned char g = 77;
    write_solid(P("set/bee/b3.png"), 3, 3, 1, &g);
    rt_load_opts o = no_cache();
    rt_dataset ds;
    char err[RT_ERRLEN];
    ck_assert_msg(rt_dataset_load(P("set"), (rt_shape){1, 6, 8}, &o, &ds, err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 7);
    ck_assert_int_eq(ds.c, 1);
    /* Luma by ITU-R BT.601, 0.299 R + 0.587 G + 0.114 B; stb_image's integer version may
     * differ by one level. (200,100,50): 59.8+58.7+5.7 = 124.2; (10,20,30): 2.99+11.74+3.42
     * = 18.15; (0,255,128): 149.685+14.592 = 164.28; (90,90,90): 90. */
    static const int luma[4] = {124, 18, 164, 90};
    for (int f = 0; f < 4; f++) {
        int i = find_file(&ds, NAME[f]);
        ck_assert_int_ge(i, 0);
        check_plane(&ds, i, 0, luma[f], 1);
    }
    int i = find_file(&ds, "b3.png");
    ck_assert_int_ge(i, 0);
    check_plane(&ds, i, 0, 77, 0);
    rt_dataset_free(&ds);

    ck_assert_msg(rt_dataset_load(P("set"), (rt_shape){3, 2, 2}, &o, &ds, err) == 0, "%s", err);
    i = find_file(&ds, "b3.png");
    for (int ch = 0; ch < 3; ch++)
        check_plane(&ds, i, ch, 77, 0);
    rt_dataset_free(&ds);
}
END_TEST

/* Planar layout and orientation: an unresized 4x2 image whose pixel (x, y) is
 * (10x, 100y, 7 + x + y); and a left-dark/right-bright image stays so when resized. */
START_TEST(test_folder_layout)
{
    unsigned char px[2][4][3];
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 4; x++) {
            px[y][x][0] = (unsigned char)(10 * x);
            px[y][x][1] = (unsigned char)(100 * y);
            px[y][x][2] = (unsigned char)(7 + x + y);
        }
    mkdirs(P("lay/one"));
    ck_assert(stbi_write_png(P("lay/one/p.png"), 4, 2, 3, px, 4 * 3));
    unsigned char half[8][8];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            half[y][x] = x < 4 ? 0 : 255;
    mkdirs(P("half/one"));
    ck_assert(stbi_write_png(P("half/one/h.png"), 8, 8, 1, half, 8));

    rt_load_opts o = no_cache();
    rt_dataset ds;
    char err[RT_ERRLEN];
    ck_assert_msg(rt_dataset_load(P("lay"), (rt_shape){3, 2, 4}, &o, &ds, err) == 0, "%s", err);
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 4; x++)
                ck_assert_int_eq(ds.pix[(ch * 2 + y) * 4 + x], px[y][x][ch]);
    rt_dataset_free(&ds);

    ck_assert_msg(rt_dataset_load(P("half"), (rt_shape){1, 4, 4}, &o, &ds, err) == 0, "%s", err);
    for (int y = 0; y < 4; y++) {
        ck_assert_int_lt(ds.pix[y * 4 + 0], 30);
        ck_assert_int_gt(ds.pix[y * 4 + 3], 225);
    }
    rt_dataset_free(&ds);

    /* Integer-factor reductions are exact area means. 8x2 -> 4x1: rows 0,10,..,70 and
     * 100,..,170; block j = (20j + 20j+10 + 100+20j + 110+20j) / 4 = 55 + 20j.
     * 7x1 -> 3x1: blocks [0,2) [2,4) [4,7) of 0,10,..,60: 5, 25, 50. */
    unsigned char two[2][8], seven[7];
    for (int x = 0; x < 8; x++) {
        two[0][x] = (unsigned char)(10 * x);
        two[1][x] = (unsigned char)(100 + 10 * x);
    }
    for (int x = 0; x < 7; x++)
        seven[x] = (unsigned char)(10 * x);
    mkdirs(P("area/two"));
    mkdirs(P("area7/seven"));
    ck_assert(stbi_write_png(P("area/two/t.png"), 8, 2, 1, two, 8));
    ck_assert(stbi_write_png(P("area7/seven/s.png"), 7, 1, 1, seven, 7));
    ck_assert_msg(rt_dataset_load(P("area"), (rt_shape){1, 1, 4}, &o, &ds, err) == 0, "%s", err);
    for (int j = 0; j < 4; j++)
        ck_assert_int_eq(ds.pix[j], 55 + 20 * j);
    rt_dataset_free(&ds);
    ck_assert_msg(rt_dataset_load(P("area7"), (rt_shape){1, 1, 3}, &o, &ds, err) == 0, "%s", err);
    ck_assert_int_eq(ds.pix[0], 5);
    ck_assert_int_eq(ds.pix[1], 25);
    ck_assert_int_eq(ds.pix[2], 50);
    rt_dataset_free(&ds);
}
END_TEST

START_TEST(test_folder_corrupt)
{
    make_folder_set("set");
    write_text(P("set/ant/bad.png"), "this is not a png at all");
    write_text(P("set/bee/notes.txt"), "hello");
    /* A PNG cut in half: its image data ends early. */
    mkdirs(P("set/bee"));
    unsigned char big[32 * 32 * 3];
    for (size_t k = 0; k < sizeof big; k++)
        big[k] = (unsigned char)(k * 7919 % 251);
    ck_assert(stbi_write_png(P("full.png"), 32, 32, 3, big, 32 * 3));
    long sz = file_size(P("full.png"));
    ck_assert_int_gt(sz, 100);
    FILE *in = fopen(P("full.png"), "rb"), *out = fopen(P("set/bee/cut.png"), "wb");
    char *buf = malloc((size_t)sz);
    ck_assert_int_eq(fread(buf, 1, (size_t)sz, in), (size_t)sz);
    fwrite(buf, 1, (size_t)sz / 2, out);
    fclose(in);
    fclose(out);
    free(buf);

    rt_load_opts o = no_cache();
    rt_dataset ds;
    char err[RT_ERRLEN];
    capture_begin();
    int rc = rt_dataset_load(P("set"), (rt_shape){3, 4, 4}, &o, &ds, err);
    char *msg = capture_end();
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(ds.n, 6);
    ck_assert_int_eq(ds.nskipped, 3);
    ck_assert_msg(strstr(msg, "set/ant/bad.png") && strstr(msg, "set/bee/notes.txt")
                  && strstr(msg, "set/bee/cut.png") && strstr(msg, "warning"), "got: %s", msg);
    ck_assert_int_eq(count_lines(msg), 3);
    ck_assert_int_eq(find_file(&ds, "bad.png"), -1);
    /* The survivors keep their labels after the skipped ones are removed. */
    for (int f = 0; f < 6; f++)
        ck_assert_int_eq(ds.label[find_file(&ds, NAME[f])], LABEL[f]);
    free(msg);
    rt_dataset_free(&ds);

    /* quiet: the same, silently. */
    o.quiet = 1;
    capture_begin();
    rc = rt_dataset_load(P("set"), (rt_shape){3, 4, 4}, &o, &ds, err);
    msg = capture_end();
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ds.nskipped, 3);
    ck_assert_str_eq(msg, "");
    free(msg);
    rt_dataset_free(&ds);
}
END_TEST

START_TEST(test_folder_errors)
{
    rt_load_opts o = no_cache();
    o.quiet = 1;
    rt_dataset ds;
    char err[RT_ERRLEN];
    rt_shape s = {3, 4, 4};

    /* missing path */
    ck_assert_int_eq(rt_dataset_load(P("nowhere"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "nowhere") && strstr(err, "expected"), "%s", err);
    ck_assert_int_eq(rt_dataset_load("", s, &o, &ds, err), -1);

    /* an empty class folder */
    make_folder_set("set");
    mkdirs(P("set/cow"));
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "set/cow") && strstr(err, "empty"), "%s", err);
    /* a class folder holding only hidden files is empty too */
    write_text(P("set/cow/.keep"), "");
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "set/cow"), "%s", err);

    /* no class subfolders */
    mkdirs(P("flat"));
    write_solid(P("flat/a.png"), 2, 2, 3, COL[0]);
    ck_assert_int_eq(rt_dataset_load(P("flat"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "flat") && strstr(err, "no class subfolders"), "%s", err);
    mkdirs(P("void"));
    ck_assert_int_eq(rt_dataset_load(P("void"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "void") && strstr(err, "subfolder"), "%s", err);

    /* no readable image at all */
    mkdirs(P("junk/a"));
    write_text(P("junk/a/x.jpg"), "junk");
    ck_assert_int_eq(rt_dataset_load(P("junk"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "junk") && strstr(err, "no readable images"), "%s", err);

    /* a plain file that is not IDX */
    ck_assert_int_eq(rt_dataset_load(P("flat/a.png"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "not a folder"), "%s", err);

    /* shapes images cannot have */
    ck_assert_int_eq(rt_dataset_load(P("set"), (rt_shape){5, 4, 4}, &o, &ds, err), -1);
    ck_assert_int_eq(rt_dataset_load(P("set"), (rt_shape){3, 0, 4}, &o, &ds, err), -1);
    ck_assert_ptr_null(ds.pix);
}
END_TEST

/* Loading on one thread or several gives the same bytes. */
START_TEST(test_folder_threads)
{
    make_folder_set("set");
    for (int k = 0; k < 20; k++) {
        unsigned char c[3] = {(unsigned char)(k * 12), (unsigned char)(255 - k), 3};
        write_solid(P("set/ant/m%02d.jpg", k), 17 + k, 9 + k, 3, c);
    }
    rt_load_opts o = no_cache();
    rt_dataset a, b;
    char err[RT_ERRLEN];
    o.threads = 1;
    ck_assert_msg(rt_dataset_load(P("set"), (rt_shape){3, 7, 9}, &o, &a, err) == 0, "%s", err);
    o.threads = 5;
    ck_assert_msg(rt_dataset_load(P("set"), (rt_shape){3, 7, 9}, &o, &b, err) == 0, "%s", err);
    ck_assert_int_eq(a.n, 26);
    ck_assert_int_eq(b.n, 26);
    ck_assert(memcmp(a.pix, b.pix, (size_t)a.n * 3 * 7 * 9) == 0);
    ck_assert(memcmp(a.label, b.label, (size_t)a.n * sizeof(int)) == 0);
    for (int i = 0; i < a.n; i++)
        ck_assert_str_eq(a.files[i], b.files[i]);
    rt_dataset_free(&a);
    rt_dataset_free(&b);
}
END_TEST

/* ------------------------------------------------------------------ Kaggle layout */

/* The Tom & Jerry download in miniature. Labels (tom, jerry) -> class:
 * (0,1) jerry = 0, (1,0) tom = 1, (0,0) tom_jerry_0 = 2, (1,1) tom_jerry_1 = 3. */
static void make_kaggle(const char *dir)
{
    static const struct { const char *folder, *file; } img[] = {
        {"tom", "frame0.jpg"}, {"tom", "frame1.jpg"}, {"jerry", "frame2.jpg"},
        {"tom_jerry_0", "frame3.jpg"}, {"tom_jerry_1", "frame4.jpg"},
        {"tom_jerry_1", "frame5.jpg"},
        {"jerry", "frame6.jpg"},  /* not in the csv */
        {"tom", "frame8.jpg"},    /* the csv says jerry */
    };
    for (size_t k = 0; k < sizeof img / sizeof img[0]; k++) {
        unsigned char c[3] = {(unsigned char)(30 * k), 100, 200};
        mkdirs(P("%s/tom_and_jerry/tom_and_jerry/%s", dir, img[k].folder));
        write_solid(P("%s/tom_and_jerry/tom_and_jerry/%s/%s", dir, img[k].folder, img[k].file),
                    12, 8, 3, c);
    }
    /* Windows line ends, a missing file (frame7), a malformed row. */
    write_text(P("%s/ground_truth.csv", dir),
               "filename,tom,jerry\r\n"
               "frame0.jpg,1,0\r\nframe1.jpg,1,0\r\nframe2.jpg,0,1\r\nframe3.jpg,0,0\r\n"
               "frame4.jpg,1,1\r\nframe5.jpg,1,1\r\nframe7.jpg,1,0\r\nframe8.jpg,0,1\r\n"
               "frame9.jpg,yes,no\r\n");
}

START_TEST(test_kaggle)
{
    make_kaggle("kg");
    rt_load_opts o = no_cache();
    rt_dataset ds;
    char err[RT_ERRLEN];
    capture_begin();
    int rc = rt_dataset_load(P("kg"), (rt_shape){3, 4, 6}, &o, &ds, err);
    char *msg = capture_end();
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(ds.nclasses, 4);
    ck_assert_str_eq(ds.classnames[0], "jerry");
    ck_assert_str_eq(ds.classnames[1], "tom");
    ck_assert_str_eq(ds.classnames[2], "tom_jerry_0");
    ck_assert_str_eq(ds.classnames[3], "tom_jerry_1");
    ck_assert_int_eq(ds.n, 7);        /* frames 0-5 and 8 */
    ck_assert_int_eq(ds.nskipped, 1); /* frame6, not in the csv */
    static const struct { const char *file; int label; } want[] = {
        {"frame0.jpg", 1}, {"frame1.jpg", 1}, {"frame2.jpg", 0}, {"frame3.jpg", 2},
        {"frame4.jpg", 3}, {"frame5.jpg", 3}, {"frame8.jpg", 0},
    };
    for (int k = 0; k < 7; k++) {
        int i = find_file(&ds, want[k].file);
        ck_assert_msg(i >= 0, "%s missing", want[k].file);
        ck_assert_int_eq(ds.label[i], want[k].label);
    }
    ck_assert_int_eq(find_file(&ds, "frame6.jpg"), -1);
    ck_assert_msg(strstr(msg, "frame6.jpg") && strstr(msg, "frame7.jpg")
                  && strstr(msg, "ground_truth.csv:10") && strstr(msg, "disagrees"),
                  "got: %s", msg);
    free(msg);
    rt_dataset_free(&ds);

    /* The same frames without the csv are an ordinary folder set (labels from folders). */
    ck_assert(rename(P("kg/ground_truth.csv"), P("gt.csv")) == 0);
    o.quiet = 1;
    ck_assert_msg(rt_dataset_load(P("kg/tom_and_jerry/tom_and_jerry"), (rt_shape){3, 4, 6}, &o,
                                  &ds, err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 8);
    ck_assert_int_eq(ds.label[find_file(&ds, "frame8.jpg")], 1);
    rt_dataset_free(&ds);

    /* A csv without the expected header is an error naming it. */
    write_text(P("kg/ground_truth.csv"), "name,cat,mouse\nframe0.jpg,1,0\n");
    ck_assert_int_eq(rt_dataset_load(P("kg"), (rt_shape){3, 4, 6}, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "ground_truth.csv") && strstr(err, "filename,tom,jerry"), "%s",
                  err);
    /* A csv naming no present file: no images. */
    write_text(P("kg/ground_truth.csv"), "filename,tom,jerry\nnothing.jpg,1,0\n");
    ck_assert_int_eq(rt_dataset_load(P("kg"), (rt_shape){3, 4, 6}, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "no images"), "%s", err);
}
END_TEST

/* Quoted fields (each field may be in double quotes, blanks around are trimmed), a path in
 * the filename (only its last part counts) and duplicate rows (the first row of a name wins,
 * every later one is reported with both line numbers). */
START_TEST(test_kaggle_quotes_duplicates)
{
    make_kaggle("kg");
    write_text(P("kg/ground_truth.csv"),
               "\"filename\",\"tom\",\"jerry\"\n"            /* 1 */
               "\"frame0.jpg\",\"1\",\"0\"\n"                /* 2: tom */
               "  frame1.jpg , 1 ,\t0 \n"                    /* 3: tom */
               "frame2.jpg,0,1\n"                            /* 4: jerry */
               "frame3.jpg,\"0\",0\n"                        /* 5: neither */
               "\"tom_and_jerry/tom_jerry_1/frame4.jpg\",1,1\n" /* 6: both */
               "frame5.jpg,1,1\n"                            /* 7: both */
               "frame2.jpg,1,0\n"                            /* 8: again, ignored */
               "frame6.jpg,0,1\n"                            /* 9: jerry */
               "frame8.jpg,0,1\n"                            /* 10: jerry */
               "frame6.jpg,1,1\n");                          /* 11: again, ignored */
    rt_load_opts o = no_cache();
    rt_dataset ds;
    char err[RT_ERRLEN];
    capture_begin();
    int rc = rt_dataset_load(P("kg"), (rt_shape){3, 4, 6}, &o, &ds, err);
    char *msg = capture_end();
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(ds.nclasses, 4); /* jerry, tom, tom_jerry_0, tom_jerry_1 */
    ck_assert_int_eq(ds.n, 8);        /* frames 0-6 and 8 */
    ck_assert_int_eq(ds.nskipped, 0);
    static const struct { const char *file; int label; } want[] = {
        {"frame0.jpg", 1}, {"frame1.jpg", 1}, {"frame2.jpg", 0}, {"frame3.jpg", 2},
        {"frame4.jpg", 3}, {"frame5.jpg", 3}, {"frame6.jpg", 0}, {"frame8.jpg", 0},
    };
    for (int k = 0; k < 8; k++) {
        int i = find_file(&ds, want[k].file);
        ck_assert_msg(i >= 0, "%s missing", want[k].file);
        ck_assert_msg(ds.label[i] == want[k].label, "%s: label %d, expected %d", want[k].file,
                      ds.label[i], want[k].label);
    }
    ck_assert_msg(strstr(msg, "ground_truth.csv:8: frame2.jpg is listed again (first on line 4)")
                  && strstr(msg, "ground_truth.csv:11: frame6.jpg is listed again (first on "
                                 "line 9)")
                  && !strstr(msg, "malformed"),
                  "got: %s", msg);
    free(msg);
    rt_dataset_free(&ds);
}
END_TEST

/* A folder inside a class folder is neither an image nor a class: ignored with a warning
 * naming it, the rest of the set loads as without it. */
START_TEST(test_folder_nested)
{
    make_folder_set("set");
    mkdirs(P("set/ant/inner"));
    write_solid(P("set/ant/inner/deep.png"), 8, 6, 3, COL[0]);
    rt_load_opts o = no_cache();
    rt_dataset ds;
    char err[RT_ERRLEN];
    capture_begin();
    int rc = rt_dataset_load(P("set"), (rt_shape){3, 4, 5}, &o, &ds, err);
    char *msg = capture_end();
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(ds.n, 6);
    ck_assert_int_eq(ds.nclasses, 3);
    ck_assert_int_eq(find_file(&ds, "deep.png"), -1);
    for (int f = 0; f < 6; f++) {
        int i = find_file(&ds, NAME[f]);
        ck_assert_msg(i >= 0 && ds.label[i] == LABEL[f], "%s", NAME[f]);
    }
    ck_assert_msg(strstr(msg, "inner") && strstr(msg, "a folder inside class folder 'ant'"),
                  "got: %s", msg);
    free(msg);
    rt_dataset_free(&ds);
}
END_TEST

/* ------------------------------------------------------------------ IDX */

static void put32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes an IDX file (ndims 1 or 3) plainly or gzipped; cut drops that many final bytes. */
static void write_idx(const char *file, int ndims, const unsigned *dims, const unsigned char *data,
                      int gz, size_t cut)
{
    unsigned char buf[4096];
    size_t n = 1, len = 4 + 4 * (size_t)ndims;
    buf[0] = buf[1] = 0;
    buf[2] = 8;
    buf[3] = (unsigned char)ndims;
    for (int i = 0; i < ndims; i++) {
        put32(buf + 4 + 4 * i, dims[i]);
        n *= dims[i];
    }
    ck_assert_uint_lt(len + n, sizeof buf);
    memcpy(buf + len, data, n);
    len += n - cut;
    if (gz) {
        gzFile f = gzopen(file, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, buf, (unsigned)len), (int)len);
        gzclose(f);
    } else {
        FILE *f = fopen(file, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(buf, 1, len, f);
        fclose(f);
    }
}

/* 3 train images and 2 test images of 2x3 pixels; image k's pixel j is 10k + j, except
 * train image 2, a solid 200. Labels 0, 9, 4 / 1, 2. */
static unsigned char IDX_TR[3 * 6], IDX_TE[2 * 6];
static const unsigned char IDX_LTR[3] = {0, 9, 4}, IDX_LTE[2] = {1, 2};

static void make_idx(const char *dir, int gz)
{
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 6; j++)
            IDX_TR[k * 6 + j] = (unsigned char)(k == 2 ? 200 : 10 * k + j);
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 6; j++)
            IDX_TE[k * 6 + j] = (unsigned char)(10 * (k + 3) + j);
    const char *ext = gz ? ".gz" : "";
    mkdirs(P("%s", dir));
    write_idx(P("%s/train-images-idx3-ubyte%s", dir, ext), 3, (unsigned[]){3, 2, 3}, IDX_TR, gz,
              0);
    write_idx(P("%s/train-labels-idx1-ubyte%s", dir, ext), 1, (unsigned[]){3}, IDX_LTR, gz, 0);
    write_idx(P("%s/t10k-images-idx3-ubyte%s", dir, ext), 3, (unsigned[]){2, 2, 3}, IDX_TE, gz, 0);
    write_idx(P("%s/t10k-labels-idx1-ubyte%s", dir, ext), 1, (unsigned[]){2}, IDX_LTE, gz, 0);
}

static void check_idx_native(const rt_dataset *ds)
{
    ck_assert_int_eq(ds->n, 5);
    ck_assert_int_eq(ds->ntest_fixed, 2);
    ck_assert_int_eq(ds->nclasses, 10);
    ck_assert_ptr_null(ds->files);
    ck_assert_int_eq(ds->nskipped, 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ds->label[i], IDX_LTR[i]);
        for (int j = 0; j < 6; j++)
            ck_assert_int_eq(ds->pix[i * 6 + j], i == 2 ? 200 : 10 * i + j);
    }
    for (int i = 3; i < 5; i++) {
        ck_assert_int_eq(ds->label[i], IDX_LTE[i - 3]);
        for (int j = 0; j < 6; j++)
            ck_assert_int_eq(ds->pix[i * 6 + j], 10 * i + j);
    }
}

START_TEST(test_idx)
{
    make_idx("plain", 0);
    make_idx("zipped", 1);
    rt_load_opts o = no_cache();
    rt_dataset ds;
    char err[RT_ERRLEN];
    const rt_shape native = {1, 2, 3};
    ck_assert_msg(rt_dataset_load(P("plain"), native, &o, &ds, err) == 0, "%s", err);
    check_idx_native(&ds);
    ck_assert_str_eq(ds.classnames[0], "0");
    ck_assert_str_eq(ds.classnames[9], "9");
    rt_dataset_free(&ds);
    ck_assert_msg(rt_dataset_load(P("zipped"), native, &o, &ds, err) == 0, "%s", err);
    check_idx_native(&ds);
    rt_dataset_free(&ds);
    /* A path to one of the files names its folder's set. */
    ck_assert_msg(rt_dataset_load(P("zipped/t10k-labels-idx1-ubyte.gz"), native, &o, &ds, err)
                  == 0, "%s", err);
    check_idx_native(&ds);
    rt_dataset_free(&ds);

    /* Three channels: grey replicated, unresized. */
    ck_assert_msg(rt_dataset_load(P("plain"), (rt_shape){3, 2, 3}, &o, &ds, err) == 0, "%s", err);
    for (int i = 0; i < 5; i++)
        for (int ch = 0; ch < 3; ch++)
            for (int j = 0; j < 6; j++)
                ck_assert_int_eq(ds.pix[(i * 3 + ch) * 6 + j],
                                 i == 2 ? 200 : 10 * i + j);
    rt_dataset_free(&ds);
    /* Resized to 3x5x4: the solid image stays solid. */
    ck_assert_msg(rt_dataset_load(P("plain"), (rt_shape){3, 5, 4}, &o, &ds, err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 5);
    for (int ch = 0; ch < 3; ch++)
        check_plane(&ds, 2, ch, 200, 0);
    rt_dataset_free(&ds);

    /* A folder whose name says Fashion-MNIST gets its class names. */
    make_idx("my-Fashion-set", 1);
    ck_assert_msg(rt_dataset_load(P("my-Fashion-set"), native, &o, &ds, err) == 0, "%s", err);
    ck_assert_str_eq(ds.classnames[0], "T-shirt/top");
    ck_assert_str_eq(ds.classnames[9], "Ankle boot");
    rt_dataset_free(&ds);
}
END_TEST

START_TEST(test_idx_errors)
{
    rt_load_opts o = no_cache();
    o.quiet = 1;
    rt_dataset ds;
    char err[RT_ERRLEN];
    const rt_shape s = {1, 2, 3};

    /* a plain file one byte short */
    make_idx("cut", 0);
    write_idx(P("cut/train-images-idx3-ubyte"), 3, (unsigned[]){3, 2, 3}, IDX_TR, 0, 1);
    ck_assert_int_eq(rt_dataset_load(P("cut"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "train-images-idx3-ubyte") && strstr(err, "truncated"), "%s", err);
    /* a gzipped file whose data ends early */
    make_idx("cutgz", 1);
    write_idx(P("cutgz/t10k-images-idx3-ubyte.gz"), 3, (unsigned[]){2, 2, 3}, IDX_TE, 1, 5);
    ck_assert_int_eq(rt_dataset_load(P("cutgz"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "t10k-images-idx3-ubyte.gz") && strstr(err, "truncated"), "%s",
                  err);
    /* a gzip stream cut in the middle */
    make_idx("cutz", 1);
    long sz = file_size(P("cutz/train-images-idx3-ubyte.gz"));
    ck_assert(truncate(P("cutz/train-images-idx3-ubyte.gz"), sz - 12) == 0);
    ck_assert_int_eq(rt_dataset_load(P("cutz"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "train-images-idx3-ubyte.gz"), "%s", err);
    /* trailing bytes */
    make_idx("long", 0);
    FILE *f = fopen(P("long/train-labels-idx1-ubyte"), "ab");
    fputc(1, f);
    fclose(f);
    ck_assert_int_eq(rt_dataset_load(P("long"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "train-labels-idx1-ubyte") && strstr(err, "too long"), "%s", err);
    /* labels where images should be: bad magic */
    make_idx("magic", 0);
    write_idx(P("magic/train-images-idx3-ubyte"), 1, (unsigned[]){3}, IDX_LTR, 0, 0);
    ck_assert_int_eq(rt_dataset_load(P("magic"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "magic"), "%s", err);
    /* more labels than images */
    make_idx("count", 0);
    write_idx(P("count/t10k-labels-idx1-ubyte"), 1, (unsigned[]){3}, IDX_LTR, 0, 0);
    ck_assert_int_eq(rt_dataset_load(P("count"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "2 images") && strstr(err, "3 labels"), "%s", err);
    /* a missing file of the four */
    make_idx("three", 0);
    ck_assert(unlink(P("three/t10k-labels-idx1-ubyte")) == 0);
    ck_assert_int_eq(rt_dataset_load(P("three"), s, &o, &ds, err), -1);
    ck_assert_msg(strstr(err, "t10k-labels-idx1-ubyte"), "%s", err);
    ck_assert_ptr_null(ds.pix);
}
END_TEST

/* ------------------------------------------------------------------ cache */

static int count_cache_files(const char *dir, int *ntmp)
{
    DIR *d = opendir(dir);
    int n = 0;
    *ntmp = 0;
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        n += strstr(de->d_name, ".cache") && !strstr(de->d_name, ".tmp");
        *ntmp += strstr(de->d_name, ".tmp") != NULL;
    }
    closedir(d);
    return n;
}

static void assert_same_set(const rt_dataset *a, const rt_dataset *b)
{
    ck_assert_int_eq(a->n, b->n);
    ck_assert_int_eq(a->c, b->c);
    ck_assert_int_eq(a->h, b->h);
    ck_assert_int_eq(a->w, b->w);
    ck_assert_int_eq(a->nclasses, b->nclasses);
    ck_assert_int_eq(a->nskipped, b->nskipped);
    ck_assert_int_eq(a->ntest_fixed, b->ntest_fixed);
    for (int k = 0; k < a->nclasses; k++)
        ck_assert_str_eq(a->classnames[k], b->classnames[k]);
    ck_assert(memcmp(a->label, b->label, (size_t)a->n * sizeof(int)) == 0);
    ck_assert(memcmp(a->pix, b->pix, (size_t)a->n * a->c * a->h * a->w) == 0);
    ck_assert_int_eq(a->files == NULL, b->files == NULL);
    for (int i = 0; a->files && i < a->n; i++)
        ck_assert_str_eq(a->files[i], b->files[i]);
}

/* Sets file's modification time to t seconds. */
static void set_mtime(const char *file, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    ck_assert(utimensat(AT_FDCWD, file, ts, 0) == 0);
}

START_TEST(test_cache)
{
    make_folder_set("set");
    write_text(P("set/bee/broken.jpg"), "garbage"); /* skipped, and counted from the cache */
    rt_load_opts o;
    rt_load_opts_defaults(&o);
    char cdir[1024];
    snprintf(cdir, sizeof cdir, "%s", P("cache/sub")); /* created on demand */
    o.cache_dir = cdir;
    o.quiet = 1;
    const rt_shape s = {3, 4, 5};
    rt_dataset first, ds;
    char err[RT_ERRLEN];
    int ntmp;

    ck_assert_msg(rt_dataset_load(P("set"), s, &o, &first, err) == 0, "%s", err);
    ck_assert_int_eq(first.cached, 0);
    ck_assert_int_eq(first.nskipped, 1);
    ck_assert_int_eq(count_cache_files(P("cache/sub"), &ntmp), 1);
    ck_assert_int_eq(ntmp, 0);
    /* second load: from the cache, equal data; the skipped image is counted again */
    o.quiet = 0;
    capture_begin();
    int rc = rt_dataset_load(P("set"), s, &o, &ds, err);
    char *msg = capture_end();
    o.quiet = 1;
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(ds.cached, 1);
    assert_same_set(&first, &ds);
    ck_assert_msg(strstr(msg, "1 unreadable image was skipped"), "got: %s", msg);
    free(msg);
    rt_dataset_free(&ds);
    /* another shape is another cache file */
    ck_assert_int_eq(rt_dataset_load(P("set"), (rt_shape){1, 4, 5}, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 0);
    rt_dataset_free(&ds);
    ck_assert_int_eq(count_cache_files(P("cache/sub"), &ntmp), 2);

    /* touching a file invalidates the cache; the next load is cached again */
    set_mtime(P("set/ant/a1.bmp"), 1000000000);
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 0);
    assert_same_set(&first, &ds);
    rt_dataset_free(&ds);
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 1);
    rt_dataset_free(&ds);
    ck_assert_int_eq(count_cache_files(P("cache/sub"), &ntmp), 2); /* rewritten in place */

    /* changing a file's content (and so its mtime) gives its new pixels */
    const unsigned char white[3] = {255, 255, 255};
    write_solid(P("set/ant/a1.bmp"), 8, 6, 3, white);
    set_mtime(P("set/ant/a1.bmp"), 1000000100);
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 0);
    check_plane(&ds, find_file(&ds, "a1.bmp"), 1, 255, 0);
    rt_dataset_free(&ds);
    /* a file rewritten with another size but the same mtime (a copy keeping times) too */
    const unsigned char grey[3] = {128, 128, 128};
    write_solid(P("set/ant/a1.bmp"), 4, 4, 3, grey);
    set_mtime(P("set/ant/a1.bmp"), 1000000100);
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 0);
    check_plane(&ds, find_file(&ds, "a1.bmp"), 1, 128, 0);
    rt_dataset_free(&ds);
    /* a new file in a class also does */
    write_solid(P("set/ant/a3.png"), 3, 3, 3, white);
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 0);
    ck_assert_int_eq(ds.n, 7);
    rt_dataset_free(&ds);
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 1);
    rt_dataset_free(&ds);
    rt_dataset_free(&first);
}
END_TEST

/* The one cache file for shape s in dir. */
static const char *the_cache_file(const char *dir, rt_shape s)
{
    static char path[1024];
    char tail[64];
    snprintf(tail, sizeof tail, "-%dx%dx%d.cache", s.c, s.h, s.w);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    path[0] = 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), lt = strlen(tail);
        if (l > lt && !strcmp(de->d_name + l - lt, tail))
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    ck_assert_msg(path[0], "no cache file in %s", dir);
    return path;
}

START_TEST(test_cache_corrupt)
{
    make_folder_set("set");
    rt_load_opts o;
    rt_load_opts_defaults(&o);
    char cdir[1024];
    snprintf(cdir, sizeof cdir, "%s", P("cache"));
    o.cache_dir = cdir;
    const rt_shape s = {3, 4, 5};
    rt_dataset ref, ds;
    char err[RT_ERRLEN];
    o.quiet = 1;
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ref, err), 0);
    const char *cf = the_cache_file(P("cache"), s);
    long sz = file_size(cf);
    /* 64 header + names "Zebra ant bee" (16) + 6 paths + 6 labels + 6*60 pixels + 8 */
    ck_assert_int_gt(sz, 64 + 16 + 24 + 360 + 8);

    /* one flipped pixel byte: checksum mismatch, rebuilt with a warning, then cached */
    FILE *f = fopen(cf, "r+b");
    fseek(f, sz - 20, SEEK_SET);
    int c = fgetc(f);
    fseek(f, sz - 20, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
    o.quiet = 0;
    capture_begin();
    int rc = rt_dataset_load(P("set"), s, &o, &ds, err);
    char *msg = capture_end();
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ds.cached, 0);
    ck_assert_msg(strstr(msg, "checksum") && strstr(msg, cf), "got: %s", msg);
    free(msg);
    assert_same_set(&ref, &ds);
    rt_dataset_free(&ds);
    o.quiet = 1;
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 1);
    assert_same_set(&ref, &ds);
    rt_dataset_free(&ds);

    /* a truncated cache file */
    ck_assert(truncate(cf, sz - 100) == 0);
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 0);
    assert_same_set(&ref, &ds);
    rt_dataset_free(&ds);
    ck_assert_int_eq(file_size(cf), sz);

    /* garbage of the right size: bad magic */
    char *junk = calloc(1, (size_t)sz);
    f = fopen(cf, "wb");
    fwrite(junk, 1, (size_t)sz, f);
    fclose(f);
    free(junk);
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 0);
    assert_same_set(&ref, &ds);
    rt_dataset_free(&ds);
    /* an empty file */
    write_text(cf, "");
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 0);
    rt_dataset_free(&ds);
    ck_assert_int_eq(rt_dataset_load(P("set"), s, &o, &ds, err), 0);
    ck_assert_int_eq(ds.cached, 1);
    rt_dataset_free(&ds);

    /* a cache folder that cannot be made (under a plain file): a warning, data loaded */
    snprintf(cdir, sizeof cdir, "%s", P("set/README/cache"));
    o.quiet = 0;
    capture_begin();
    rc = rt_dataset_load(P("set"), s, &o, &ds, err);
    msg = capture_end();
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ds.cached, 0);
    assert_same_set(&ref, &ds);
    ck_assert_msg(strstr(msg, "cache") && strstr(msg, "warning"), "got: %s", msg);
    free(msg);
    rt_dataset_free(&ds);
    rt_dataset_free(&ref);
}
END_TEST

START_TEST(test_cache_idx_kaggle)
{
    rt_load_opts o;
    rt_load_opts_defaults(&o);
    char cdir[1024];
    snprintf(cdir, sizeof cdir, "%s", P("cache"));
    o.cache_dir = cdir;
    o.quiet = 1;
    rt_dataset a, b;
    char err[RT_ERRLEN];
    make_idx("idx", 1);
    ck_assert_int_eq(rt_dataset_load(P("idx"), (rt_shape){1, 2, 3}, &o, &a, err), 0);
    ck_assert_int_eq(rt_dataset_load(P("idx"), (rt_shape){1, 2, 3}, &o, &b, err), 0);
    ck_assert_int_eq(a.cached, 0);
    ck_assert_int_eq(b.cached, 1);
    check_idx_native(&b);
    assert_same_set(&a, &b);
    rt_dataset_free(&a);
    rt_dataset_free(&b);

    make_kaggle("kg");
    ck_assert_int_eq(rt_dataset_load(P("kg"), (rt_shape){3, 4, 4}, &o, &a, err), 0);
    ck_assert_int_eq(a.cached, 0);
    ck_assert_int_eq(rt_dataset_load(P("kg"), (rt_shape){3, 4, 4}, &o, &b, err), 0);
    ck_assert_int_eq(b.cached, 1);
    assert_same_set(&a, &b);
    rt_dataset_free(&b);
    /* relabelling a frame in the csv invalidates (frame0 becomes "both") */
    set_mtime(P("kg/ground_truth.csv"), 1000000000);
    write_text(P("kg/ground_truth.csv"), "filename,tom,jerry\nframe0.jpg,1,1\nframe1.jpg,1,0\n");
    ck_assert_int_eq(rt_dataset_load(P("kg"), (rt_shape){3, 4, 4}, &o, &b, err), 0);
    ck_assert_int_eq(b.cached, 0);
    ck_assert_int_eq(b.n, 2);
    ck_assert_int_eq(b.label[find_file(&b, "frame0.jpg")], 3);
    rt_dataset_free(&a);
    rt_dataset_free(&b);
}
END_TEST

/* ------------------------------------------------------------------ split */

/* A set without pixels: n0, n1, n2 images of classes 0, 1, 2, interleaved, then a fixed
 * test set of `fixed` images. */
static void fake_set(rt_dataset *ds, int n0, int n1, int n2, int fixed)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n0 + n1 + n2 + fixed;
    ds->nclasses = 3;
    ds->label = malloc((size_t)ds->n * sizeof(int));
    int c[3] = {n0, n1, n2}, i = 0;
    while (c[0] + c[1] + c[2] > 0)
        for (int k = 0; k < 3; k++)
            if (c[k] > 0) {
                ds->label[i++] = k;
                c[k]--;
            }
    for (int k = 0; k < fixed; k++)
        ds->label[i++] = k % 3;
    ds->ntest_fixed = fixed;
}

/* Counts of each class in a part. */
static void class_counts(const rt_dataset *ds, const int *idx, int n, int cnt[3])
{
    cnt[0] = cnt[1] = cnt[2] = 0;
    for (int i = 0; i < n; i++)
        cnt[ds->label[idx[i]]]++;
}

static void check_partition(const rt_dataset *ds, const rt_split *sp)
{
    int *seen = calloc((size_t)ds->n, sizeof(int));
    const int *parts[3] = {sp->train, sp->val, sp->test};
    const int np[3] = {sp->ntrain, sp->nval, sp->ntest};
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < np[p]; i++) {
            ck_assert_int_ge(parts[p][i], 0);
            ck_assert_int_lt(parts[p][i], ds->n);
            seen[parts[p][i]]++;
        }
    for (int i = 0; i < ds->n; i++)
        ck_assert_msg(seen[i] == 1, "image %d is in %d parts", i, seen[i]);
    free(seen);
}

START_TEST(test_split)
{
    rt_dataset ds;
    fake_set(&ds, 10, 20, 7, 0);
    rt_split a, b, c;
    char err[RT_ERRLEN];
    const int r721[3] = {7, 2, 1};
    ck_assert_msg(rt_split_make(&ds, r721, 1, &a, err) == 0, "%s", err);
    check_partition(&ds, &a);
    /* Per class, largest remainder: 10 -> 7,2,1; 20 -> 14,4,2; 7 -> 4.9,1.4,0.7 = floors
     * 4,1,0 with 2 left, to the largest remainders .9 (train) and .7 (test): 5,1,1. */
    int cnt[3];
    class_counts(&ds, a.train, a.ntrain, cnt);
    ck_assert_int_eq(cnt[0], 7);
    ck_assert_int_eq(cnt[1], 14);
    ck_assert_int_eq(cnt[2], 5);
    class_counts(&ds, a.val, a.nval, cnt);
    ck_assert_int_eq(cnt[0], 2);
    ck_assert_int_eq(cnt[1], 4);
    ck_assert_int_eq(cnt[2], 1);
    class_counts(&ds, a.test, a.ntest, cnt);
    ck_assert_int_eq(cnt[0], 1);
    ck_assert_int_eq(cnt[1], 2);
    ck_assert_int_eq(cnt[2], 1);
    ck_assert_int_eq(a.ntrain, 26);
    ck_assert_int_eq(a.nval, 7);
    ck_assert_int_eq(a.ntest, 4);

    /* the same seed, the same split; another seed, another one */
    ck_assert_int_eq(rt_split_make(&ds, r721, 1, &b, err), 0);
    ck_assert(memcmp(a.train, b.train, 26 * sizeof(int)) == 0);
    ck_assert(memcmp(a.val, b.val, 7 * sizeof(int)) == 0);
    ck_assert(memcmp(a.test, b.test, 4 * sizeof(int)) == 0);
    ck_assert_int_eq(rt_split_make(&ds, r721, 2, &c, err), 0);
    check_partition(&ds, &c);
    /* As sets: the chance that seed 2 picks the same val images as seed 1 is
     * 1 / (C(10,2) C(20,4) C(7,1)) ~ 1 / 1.5e6, and it is a fixed fact for these seeds. */
    int *inval = calloc((size_t)ds.n, sizeof(int)), same = 1;
    for (int i = 0; i < a.nval; i++)
        inval[a.val[i]] = 1;
    for (int i = 0; i < c.nval; i++)
        same &= inval[c.val[i]];
    ck_assert_msg(!same, "seeds 1 and 2 gave the same validation set");
    free(inval);
    rt_split_free(&a);
    rt_split_free(&b);
    rt_split_free(&c);
    ck_assert_ptr_null(a.train);

    /* 8:2:0 - no test part: 10 -> 8,2; 20 -> 16,4; 7 -> 5.6,1.4 = 5,1 + 1 to train: 6,1 */
    ck_assert_int_eq(rt_split_make(&ds, (int[]){8, 2, 0}, 3, &a, err), 0);
    check_partition(&ds, &a);
    ck_assert_int_eq(a.ntest, 0);
    class_counts(&ds, a.train, a.ntrain, cnt);
    ck_assert_int_eq(cnt[0], 8);
    ck_assert_int_eq(cnt[1], 16);
    ck_assert_int_eq(cnt[2], 6);
    ck_assert_int_eq(a.nval, 7);
    rt_split_free(&a);
    /* NULL ratios are 7:2:1 */
    ck_assert_int_eq(rt_split_make(&ds, NULL, 1, &a, err), 0);
    ck_assert_int_eq(a.ntrain, 26);
    rt_split_free(&a);

    /* bad ratios */
    ck_assert_int_eq(rt_split_make(&ds, (int[]){0, 1, 1}, 1, &a, err), -1);
    ck_assert_msg(strstr(err, "0:1:1"), "%s", err);
    ck_assert_int_eq(rt_split_make(&ds, (int[]){7, -2, 1}, 1, &a, err), -1);
    free(ds.label);

    /* Ties go to the earlier part. 1:1:1 of 4 images: 1,1,1 + 1 left, all remainders equal
     * -> 2,1,1; of 5: 1,1,1 + 2 left -> 2,2,1; an empty class gives nothing. */
    fake_set(&ds, 4, 5, 0, 0);
    ck_assert_int_eq(rt_split_make(&ds, (int[]){1, 1, 1}, 9, &a, err), 0);
    check_partition(&ds, &a);
    class_counts(&ds, a.train, a.ntrain, cnt);
    ck_assert_int_eq(cnt[0], 2);
    ck_assert_int_eq(cnt[1], 2);
    class_counts(&ds, a.val, a.nval, cnt);
    ck_assert_int_eq(cnt[0], 1);
    ck_assert_int_eq(cnt[1], 2);
    class_counts(&ds, a.test, a.ntest, cnt);
    ck_assert_int_eq(cnt[0], 1);
    ck_assert_int_eq(cnt[1], 1);
    rt_split_free(&a);
    free(ds.label);
}
END_TEST

START_TEST(test_split_idx)
{
    /* 9 + 11 + 0 pool images, then a fixed test set of 5. By 7:2 (the 1 is ignored):
     * 9 -> 7,2; 11 -> 77/9 = 8.56, 22/9 = 2.44 -> 8,2 + 1 to train (.56 > .44): 9,2. */
    rt_dataset ds;
    fake_set(&ds, 9, 11, 0, 5);
    rt_split sp;
    char err[RT_ERRLEN];
    ck_assert_msg(rt_split_make(&ds, (int[]){7, 2, 1}, 5, &sp, err) == 0, "%s", err);
    check_partition(&ds, &sp);
    ck_assert_int_eq(sp.ntest, 5);
    for (int i = 0; i < sp.ntest; i++)
        ck_assert_int_ge(sp.test[i], 20);
    ck_assert_int_eq(sp.ntrain, 16);
    ck_assert_int_eq(sp.nval, 4);
    int cnt[3];
    class_counts(&ds, sp.train, sp.ntrain, cnt);
    ck_assert_int_eq(cnt[0], 7);
    ck_assert_int_eq(cnt[1], 9);
    rt_split_free(&sp);
    free(ds.label);
}
END_TEST

/* ------------------------------------------------------------------ batches, one image */

START_TEST(test_batch)
{
    /* Two images of 2 channels x 2 rows x 3 columns. */
    static uint8_t pix[2 * 12] = {
        /* image 0 */ 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255,
        /* image 1, channel 0 */ 0, 51, 102, 153, 204, 255,
        /*          channel 1 */ 255, 0, 0, 0, 0, 51,
    };
    static int label[2] = {4, 7};
    rt_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = 2;
    ds.c = 2;
    ds.h = 2;
    ds.w = 3;
    ds.nclasses = 8;
    ds.pix = pix;
    ds.label = label;
    const int idx[3] = {1, 0, 1};
    const uint8_t flip[3] = {1, 0, 0};
    float x[3 * 12];
    int y[3];
    rt_dataset_batch(&ds, idx, 3, flip, x, y);
    /* image 1 mirrored: rows reversed left-right, /255 */
    static const float want0[12] = {0.4f, 0.2f, 0.0f, 1.0f, 0.8f, 0.6f,
                                    0.0f, 0.0f, 1.0f, 0.2f, 0.0f, 0.0f};
    static const float want2[12] = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f,
                                    1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.2f};
    for (int k = 0; k < 12; k++) {
        ck_assert_float_eq_tol(x[k], want0[k], 1e-6f);
        ck_assert_float_eq_tol(x[12 + k], k < 6 ? 0.0f : 1.0f, 1e-6f);
        ck_assert_float_eq_tol(x[24 + k], want2[k], 1e-6f);
    }
    ck_assert_int_eq(y[0], 7);
    ck_assert_int_eq(y[1], 4);
    ck_assert_int_eq(y[2], 7);
    /* no flips at all */
    rt_dataset_batch(&ds, idx, 1, NULL, x, y);
    for (int k = 0; k < 12; k++)
        ck_assert_float_eq_tol(x[k], want2[k], 1e-6f);
}
END_TEST

START_TEST(test_image_load)
{
    const unsigned char col[3] = {255, 0, 51};
    mkdirs(P("one/cls"));
    write_solid(P("one/cls/p.png"), 6, 6, 3, col);
    float x[3 * 2 * 2];
    char err[RT_ERRLEN];
    ck_assert_msg(rt_image_load(P("one/cls/p.png"), (rt_shape){3, 2, 2}, x, err) == 0, "%s", err);
    for (int k = 0; k < 4; k++) {
        ck_assert_float_eq_tol(x[k], 1.0f, 1e-6f);
        ck_assert_float_eq_tol(x[4 + k], 0.0f, 1e-6f);
        ck_assert_float_eq_tol(x[8 + k], 0.2f, 1e-6f);
    }
    /* The same numbers as the set's batch of that file. */
    rt_load_opts o = no_cache();
    rt_dataset ds;
    ck_assert_int_eq(rt_dataset_load(P("one"), (rt_shape){3, 2, 2}, &o, &ds, err), 0);
    float xb[12];
    int y;
    rt_dataset_batch(&ds, (int[]){0}, 1, NULL, xb, &y);
    ck_assert(memcmp(x, xb, sizeof xb) == 0);
    rt_dataset_free(&ds);

    ck_assert_int_eq(rt_image_load(P("one/none.png"), (rt_shape){3, 2, 2}, x, err), -1);
    ck_assert_msg(strstr(err, "none.png"), "%s", err);
    write_text(P("one/bad.png"), "not an image");
    ck_assert_int_eq(rt_image_load(P("one/bad.png"), (rt_shape){3, 2, 2}, x, err), -1);
    ck_assert_msg(strstr(err, "bad.png"), "%s", err);
    ck_assert_int_eq(rt_image_load(P("one/cls/p.png"), (rt_shape){9, 2, 2}, x, err), -1);
}
END_TEST

/* ------------------------------------------------------------------ suite */

/* ------------------------------------------------------------ augmentation (rt_augment.c) */

static void expect_floats(const float *got, const float *want, int n, float tol)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= tol, "value %d: %g, expected %g", i, got[i], want[i]);
}

/* Each transformation on a tiny image, worked by hand. */
START_TEST(augment_by_hand)
{
    float tmp[16];
    rt_augment_params p = {.scale = 1, .brightness = 1, .contrast = 1};
    /* crop: shift (dy 1, dx -1) in the zero padding: out[y][x] = in[y+1][x-1] */
    float a[9] = {.1f, .2f, .3f, .4f, .5f, .6f, .7f, .8f, .9f};
    p.dy = 1;
    p.dx = -1;
    rt_augment_apply(&p, a, 1, 3, 3, tmp);
    const float crop[9] = {0, .4f, .5f, 0, .7f, .8f, 0, 0, 0};
    expect_floats(a, crop, 9, 0);
    /* vertical flip */
    float b[4] = {.1f, .2f, .3f, .4f};
    p = (rt_augment_params){.vflip = 1, .scale = 1, .brightness = 1, .contrast = 1};
    rt_augment_apply(&p, b, 1, 2, 2, tmp);
    const float vf[4] = {.3f, .4f, .1f, .2f};
    expect_floats(b, vf, 4, 0);
    /* 90 degrees counter-clockwise: the top row 1 2 3 becomes the right column */
    float r[9] = {.1f, .2f, .3f, .4f, .5f, .6f, .7f, .8f, .9f};
    p = (rt_augment_params){.degrees = 90, .scale = 1, .brightness = 1, .contrast = 1};
    rt_augment_apply(&p, r, 1, 3, 3, tmp);
    const float rot[9] = {.3f, .6f, .9f, .2f, .5f, .8f, .1f, .4f, .7f};
    expect_floats(r, rot, 9, 1e-6f);
    /* zoom 2 about the centre of 5 pixels: output x samples 2 + (x - 2) / 2, bilinear */
    float z[5] = {0, .1f, .2f, .3f, .4f};
    p = (rt_augment_params){.scale = 2, .brightness = 1, .contrast = 1};
    rt_augment_apply(&p, z, 1, 1, 5, tmp);
    const float zoom[5] = {.1f, .15f, .2f, .25f, .3f};
    expect_floats(z, zoom, 5, 1e-6f);
    /* brightness 2 (clamped to 1), then contrast 0.5 about the mean 0.7 */
    float j[2] = {.2f, .6f};
    p = (rt_augment_params){.scale = 1, .brightness = 2, .contrast = .5f};
    rt_augment_apply(&p, j, 1, 1, 2, tmp);
    const float jit[2] = {.55f, .85f};
    expect_floats(j, jit, 2, 1e-6f);
}
END_TEST

/* The draws: deterministic for (seed, epoch, place), within their ranges, and a batch's
 * result does not depend on how the epoch is cut into batches. */
START_TEST(augment_draws)
{
    rt_augment_cfg a = {.vflip = 1, .crop = 3, .rotate = 15, .scale = .1f, .jitter = .2f};
    rt_augment_params p, q;
    int flips = 0, moved = 0;
    for (long pos = 0; pos < 1000; pos++) {
        rt_augment_draw(&a, 7, 2, pos, &p);
        rt_augment_draw(&a, 7, 2, pos, &q);
        ck_assert_int_eq(memcmp(&p, &q, sizeof p), 0);
        ck_assert(p.dy >= -3 && p.dy <= 3 && p.dx >= -3 && p.dx <= 3);
        ck_assert(p.degrees >= -15 && p.degrees <= 15);
        ck_assert(p.scale >= .9f && p.scale <= 1.1f);
        ck_assert(p.brightness >= .8f && p.brightness <= 1.2f && p.contrast >= .8f && p.contrast <= 1.2f);
        flips += p.vflip;
        moved += p.dy != 0 || p.dx != 0;
    }
    ck_assert_msg(flips > 400 && flips < 600, "%d flips of 1000", flips);
    ck_assert_msg(moved > 800, "%d shifts of 1000", moved);
    rt_augment_draw(&a, 7, 3, 5, &p);
    rt_augment_draw(&a, 7, 2, 5, &q);
    ck_assert_int_ne(memcmp(&p, &q, sizeof p), 0); /* another epoch, other draws */
    /* nothing enabled: nothing changes */
    rt_augment_cfg none = {0};
    ck_assert_int_eq(rt_augment_active(&none), 0);
    float img[2 * 48], whole[2 * 48], tmp[48];
    for (int i = 0; i < 96; i++)
        img[i] = whole[i] = (float)((i * 37) % 101) / 100.0f;
    rt_augment_batch(&a, 7, 1, 10, whole, 2, 3, 4, 4, tmp);
    rt_augment_batch(&a, 7, 1, 10, img, 1, 3, 4, 4, tmp);
    rt_augment_batch(&a, 7, 1, 11, img + 48, 1, 3, 4, 4, tmp);
    ck_assert_int_eq(memcmp(img, whole, sizeof img), 0);
    for (int i = 0; i < 96; i++)
        ck_assert(whole[i] >= 0.0f && whole[i] <= 1.0f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("data");
    struct { const char *name; const TTest *t; } tests[] = {
        {"folder_rgb", test_folder_rgb}, {"folder_grey", test_folder_grey},
        {"folder_layout", test_folder_layout}, {"folder_corrupt", test_folder_corrupt},
        {"folder_errors", test_folder_errors}, {"folder_threads", test_folder_threads},
        {"kaggle", test_kaggle}, {"kaggle_quotes_duplicates", test_kaggle_quotes_duplicates},
        {"folder_nested", test_folder_nested}, {"idx", test_idx}, {"idx_errors", test_idx_errors},
        {"cache", test_cache}, {"cache_corrupt", test_cache_corrupt},
        {"cache_idx_kaggle", test_cache_idx_kaggle}, {"split", test_split},
        {"split_idx", test_split_idx}, {"batch", test_batch}, {"image_load", test_image_load},
        {"augment_by_hand", augment_by_hand}, {"augment_draws", augment_draws},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        TCase *tc = tcase_create(tests[i].name);
        /* A fresh scratch folder per test, made and removed outside the forked test. */
        tcase_add_unchecked_fixture(tc, setup_root, teardown_root);
        tcase_add_test(tc, tests[i].t);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
