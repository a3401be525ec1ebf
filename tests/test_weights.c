/*
 * test_weights.c - weights files: bit-exact round trip, the documented layout read back by
 * an independent parser, and every refusal (wrong magic, newer version, truncation,
 * corruption, another network), plus saves that fail (missing folder, full disk simulated
 * through the write hook) leaving the previous file untouched.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cnnrt.h"
#include "rt_train_int.h"

/* A three-layer network: conv 1x4x4 -> 2x2x2 (3x3, bias), batchnorm(2), dense 8 -> 3.
 * Parameters: conv w [0,18) b [18,20), bn gamma [20,22) beta [22,24), dense w [24,48)
 * b [48,51); state: bn running mean [0,2), running variance [2,4). */
typedef struct {
    rt_layer L[4];
    rt_netdesc d;
    rt_model m;
} net3;

static void net3_init(net3 *n, uint64_t hash, uint32_t seed)
{
    memset(n, 0, sizeof *n);
    rt_layer *L = n->L;
    L[0] = (rt_layer){.kind = RT_INPUT, .src = -1, .src2 = -1, .in = {1, 4, 4}, .out = {1, 4, 4}};
    L[1] = (rt_layer){.kind = RT_CONV, .src = 0, .src2 = -1, .in = {1, 4, 4}, .out = {2, 2, 2},
                      .kh = 3, .kw = 3, .sh = 1, .sw = 1, .bias = 1, .w_off = 0, .w_len = 18,
                      .b_off = 18, .b_len = 2};
    L[2] = (rt_layer){.kind = RT_BATCHNORM, .src = 1, .src2 = -1, .in = {2, 2, 2},
                      .out = {2, 2, 2}, .eps = 1e-5f, .momentum = 0.1f, .w_off = 20, .w_len = 2,
                      .b_off = 22, .b_len = 2, .s_off = 0, .s_len = 4};
    L[3] = (rt_layer){.kind = RT_DENSE, .src = 2, .src2 = -1, .in = {2, 2, 2}, .out = {3, 1, 1},
                      .bias = 1, .w_off = 24, .w_len = 24, .b_off = 48, .b_len = 3};
    snprintf(n->d.name, sizeof n->d.name, "tiny3");
    n->d.nlayers = 4;
    n->d.layers = L;
    n->d.nparams = 51;
    n->d.nstate = 4;
    n->d.hash = hash;
    n->m.desc = &n->d;
    n->m.nparams = 51;
    n->m.nstate = 4;
    n->m.params = calloc(51, sizeof(float));
    n->m.grads = calloc(51, sizeof(float));
    n->m.state = calloc(4, sizeof(float));
    uint32_t r = seed;
    for (int i = 0; i < 51; i++) {
        r = r * 1664525u + 1013904223u;
        n->m.params[i] = (float)((int32_t)r) / 1e9f;
    }
    /* values whose bits must survive: -0, a denormal, infinity, the largest float */
    n->m.params[3] = -0.0f;
    n->m.params[4] = 1e-40f;
    n->m.params[5] = INFINITY;
    n->m.params[6] = 3.4028235e38f;
    for (int i = 0; i < 4; i++)
        n->m.state[i] = 0.25f * (float)(i + 1);
}

static void net3_free(net3 *n)
{
    free(n->m.params);
    free(n->m.grads);
    free(n->m.state);
}

static char dir[64];
static char path[128];

static void setup(void)
{
    strcpy(dir, "/tmp/cnnc-wtest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/net.weights", dir);
    rt_weights_set_write_hook(NULL);
}

static void teardown(void)
{
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *de;
        char p[400];
        while ((de = readdir(dp)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                unlink(p);
            }
        closedir(dp);
    }
    rmdir(dir);
}

static unsigned char *read_all(const char *file, size_t *n)
{
    FILE *f = fopen(file, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void write_all(const char *file, const unsigned char *b, size_t n)
{
    FILE *f = fopen(file, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Counts the entries of dir whose name contains ".tmp-" (left-over temporary files). */
static int temp_files(void)
{
    DIR *dp = opendir(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dp)))
        n += strstr(de->d_name, ".tmp-") != NULL;
    closedir(dp);
    return n;
}

static char *names3[] = {"cat", "dog", "tom & jerry"};

START_TEST(roundtrip_bit_exact)
{
    net3 a, b;
    char err[RT_ERRLEN];
    net3_init(&a, 0xabcdef0123456789ull, 1);
    net3_init(&b, 0xabcdef0123456789ull, 2);
    ck_assert_int_ne(memcmp(a.m.params, b.m.params, 51 * sizeof(float)), 0);
    ck_assert_int_eq(rt_weights_save_named(path, &a.m, names3, 3, err), 0);
    memset(b.m.state, 0, 4 * sizeof(float));
    char **names;
    int nn;
    ck_assert_int_eq(rt_weights_load_named(path, &b.m, &names, &nn, err), 0);
    ck_assert_int_eq(memcmp(a.m.params, b.m.params, 51 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.m.state, b.m.state, 4 * sizeof(float)), 0);
    ck_assert_int_eq(nn, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(names[i], names3[i]);
    rt_names_free(names, nn);
    ck_assert_int_eq(temp_files(), 0);

    /* without class names; the plain load ignores them */
    ck_assert_int_eq(rt_weights_save(path, &a.m, err), 0);
    ck_assert_int_eq(rt_weights_load_named(path, &b.m, &names, &nn, err), 0);
    ck_assert_ptr_null(names);
    ck_assert_int_eq(nn, 0);
    ck_assert_int_eq(rt_weights_load(path, &b.m, err), 0);
    ck_assert_int_eq(memcmp(a.m.params, b.m.params, 51 * sizeof(float)), 0);

    /* an ordinary file mode: 0666 less the umask */
    mode_t mask = umask(022);
    ck_assert_int_eq(rt_weights_save(path, &a.m, err), 0);
    umask(mask);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    net3_free(&a);
    net3_free(&b);
}
END_TEST

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads the file back with the layout of doc/weights-format.md, written out here again. */
START_TEST(layout_as_documented)
{
    net3 a;
    char err[RT_ERRLEN];
    net3_init(&a, 0x0102030405060708ull, 3);
    ck_assert_int_eq(rt_weights_save_named(path, &a.m, names3, 3, err), 0);
    size_t n;
    unsigned char *b = read_all(path, &n);
    ck_assert_int_eq(memcmp(b, "CNNW", 4), 0);
    ck_assert_uint_eq(le32(b + 4), 1);
    ck_assert_uint_eq(le32(b + 8), 0x05060708u);
    ck_assert_uint_eq(le32(b + 12), 0x01020304u);
    size_t body = le32(b + 16) | (size_t)le32(b + 20) << 32;
    ck_assert_uint_eq(n, 32 + body + 8);
    /* tensors: conv w, conv b, bn gamma, bn beta, bn mean, bn var, dense w, dense b */
    ck_assert_uint_eq(le32(b + 24), 8);
    ck_assert_uint_eq(le32(b + 28), 3);
    /* body length by hand: name 4+5; classes 4+3, 4+3, 4+11; tensor records 12+4*ndim +
     * 4*values: conv w (4 dims, 18), conv b (1, 2), gamma, beta, mean, var (1, 2 each),
     * dense w (2 dims, 24), dense b (1, 3) */
    size_t want = 9 + 7 + 7 + 15 + (12 + 16 + 72) + 5 * (12 + 4 + 8) + (12 + 8 + 96) +
                  (12 + 4 + 12);
    ck_assert_uint_eq(body, want);
    ck_assert_uint_eq(le32(b + 32), 5);
    ck_assert_int_eq(memcmp(b + 36, "tiny3", 5), 0);
    ck_assert_uint_eq(le32(b + 41), 3);
    ck_assert_int_eq(memcmp(b + 45, "cat", 3), 0);
    const unsigned char *t = b + 32 + 9 + 7 + 7 + 15;
    ck_assert_uint_eq(le32(t), 1);          /* layer 1 */
    ck_assert_uint_eq(le32(t + 4), 0);      /* weights */
    ck_assert_uint_eq(le32(t + 8), 4);      /* [2][1][3][3] */
    ck_assert_uint_eq(le32(t + 12), 2);
    ck_assert_uint_eq(le32(t + 16), 1);
    ck_assert_uint_eq(le32(t + 20), 3);
    ck_assert_uint_eq(le32(t + 24), 3);
    for (int i = 0; i < 18; i++) {
        uint32_t u;
        memcpy(&u, &a.m.params[i], 4);
        ck_assert_uint_eq(le32(t + 28 + 4 * i), u);
    }
    /* the running variance record: after conv w, conv b, gamma, beta, mean */
    const unsigned char *v = t + (12 + 16 + 72) + 4 * (12 + 4 + 8);
    ck_assert_uint_eq(le32(v), 2);
    ck_assert_uint_eq(le32(v + 4), 3);
    ck_assert_uint_eq(le32(v + 12), 2);
    float f;
    uint32_t u = le32(v + 16 + 4);
    memcpy(&f, &u, 4);
    ck_assert(f == 1.0f);                   /* state[3] = 0.25 * 4 */
    /* trailer: zlib's CRC-32 of header and body, then the end mark */
    ck_assert_uint_eq(le32(b + n - 8), (uint32_t)crc32(0L, b, (uInt)(n - 8)));
    ck_assert_int_eq(memcmp(b + n - 4, "WNNC", 4), 0);
    free(b);
    net3_free(&a);
}
END_TEST

/* Loads file into a model filled with a sentinel; expects failure naming what and the
 * model untouched. */
static void expect_refused(const char *file, uint64_t hash, const char *what)
{
    net3 b;
    char err[RT_ERRLEN] = "";
    net3_init(&b, hash, 9);
    float keep[51];
    memcpy(keep, b.m.params, sizeof keep);
    ck_assert_int_eq(rt_weights_load(file, &b.m, err), -1);
    ck_assert_msg(strstr(err, what) != NULL, "error '%s' does not say '%s'", err, what);
    ck_assert_msg(strstr(err, file) != NULL, "error '%s' does not name the file", err);
    ck_assert_int_eq(memcmp(keep, b.m.params, sizeof keep), 0);
    net3_free(&b);
}

START_TEST(truncated_files_refused)
{
    net3 a;
    char err[RT_ERRLEN], cut[160];
    net3_init(&a, 77, 4);
    ck_assert_int_eq(rt_weights_save_named(path, &a.m, names3, 3, err), 0);
    size_t n;
    unsigned char *b = read_all(path, &n);
    snprintf(cut, sizeof cut, "%s/cut.weights", dir);
    size_t offs[] = {4, 20, 31, 32, 40, 100, n / 2, n - 8, n - 5, n - 1};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        write_all(cut, b, offs[i]);
        expect_refused(cut, 77, "truncated");
    }
    write_all(cut, b, 0);
    expect_refused(cut, 77, "not a cnnc weights file");
    write_all(cut, b, 2);
    expect_refused(cut, 77, "not a cnnc weights file");
    /* one byte too many */
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    write_all(cut, longer, n + 1);
    expect_refused(cut, 77, "unexpected bytes");
    free(longer);
    free(b);
    net3_free(&a);
}
END_TEST

START_TEST(corruption_refused)
{
    net3 a;
    char err[RT_ERRLEN];
    net3_init(&a, 77, 5);
    ck_assert_int_eq(rt_weights_save_named(path, &a.m, names3, 3, err), 0);
    size_t n;
    unsigned char *b = read_all(path, &n);
    /* the hash field, the name, a value in the middle, the last value, the checksum */
    size_t at[] = {9, 36, n / 2, n - 9, n - 7};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        b[at[i]] ^= 0x10;
        write_all(path, b, n);
        expect_refused(path, 77, "checksum");
        b[at[i]] ^= 0x10;
    }
    /* a different magic */
    memcpy(b, "PK\003\004", 4);
    write_all(path, b, n);
    expect_refused(path, 77, "not a cnnc weights file");
    /* a newer version (checked before the checksum, so none to fix) */
    memcpy(b, "CNNW", 4);
    b[4] = 2;
    write_all(path, b, n);
    expect_refused(path, 77, "version 2");
    free(b);
    net3_free(&a);
}
END_TEST

START_TEST(other_network_refused)
{
    net3 a;
    char err[RT_ERRLEN];
    net3_init(&a, 1111, 6);
    ck_assert_int_eq(rt_weights_save(path, &a.m, err), 0);
    expect_refused(path, 2222, "weights are for network 'tiny3' with a different structure");
    /* same hash but another layout (a hash collision or a wrong hash): the tensor check */
    net3 c;
    net3_init(&c, 1111, 7);
    c.L[1].kh = c.L[1].kw = 1;      /* conv 1x1 would have 2 weights ... */
    c.L[1].w_len = 2;
    c.L[1].b_off = 2;               /* ... so move everything after it: 35 parameters */
    for (int i = 2; i <= 3; i++) {
        c.L[i].w_off -= 16;
        c.L[i].b_off -= 16;
    }
    c.d.nparams = c.m.nparams = 35;
    ck_assert_int_eq(rt_weights_load(path, &c.m, err), -1);
    ck_assert_msg(strstr(err, "expects layer 1's weights [2x1x1x1]") != NULL, "%s", err);
    net3_free(&a);
    net3_free(&c);
}
END_TEST

START_TEST(missing_directory)
{
    net3 a;
    char err[RT_ERRLEN], bad[200];
    net3_init(&a, 1, 1);
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.weights", dir);
    ck_assert_int_eq(rt_weights_save(bad, &a.m, err), -1);
    ck_assert_msg(strstr(err, bad) && strstr(err, strerror(ENOENT)), "%s", err);
    /* loading a missing file names it and why */
    ck_assert_int_eq(rt_weights_load(bad, &a.m, err), -1);
    ck_assert_msg(strstr(err, bad) && strstr(err, strerror(ENOENT)), "%s", err);
    /* the target is a directory: refused, nothing is left behind */
    char sub[200];
    snprintf(sub, sizeof sub, "%s/adir", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(rt_weights_save(sub, &a.m, err), -1);
    ck_assert_msg(strstr(err, sub) != NULL, "%s", err);
    ck_assert_int_eq(temp_files(), 0);
    rmdir(sub);
    /* a symbolic link stays a link: the file it names gets the weights */
    char real[200], link[200];
    snprintf(real, sizeof real, "%s/real.weights", dir);
    snprintf(link, sizeof link, "%s/link.weights", dir);
    ck_assert_int_eq(rt_weights_save(real, &a.m, err), 0);
    ck_assert_int_eq(symlink("real.weights", link), 0);
    a.m.params[0] += 1.0f;
    float want = a.m.params[0];
    ck_assert_int_eq(rt_weights_save(link, &a.m, err), 0);
    struct stat ls;
    ck_assert_int_eq(lstat(link, &ls), 0);
    ck_assert(S_ISLNK(ls.st_mode));
    a.m.params[0] = 0.0f;
    ck_assert_int_eq(rt_weights_load(real, &a.m, err), 0);
    ck_assert(a.m.params[0] == want);
    ck_assert_int_eq(temp_files(), 0);
    unlink(link);
    unlink(real);
    /* a device is written in place, never replaced by a renamed file */
    struct stat st;
    ck_assert_int_eq(rt_weights_save("/dev/null", &a.m, err), 0);
    ck_assert_int_eq(stat("/dev/null", &st), 0);
    ck_assert(S_ISCHR(st.st_mode));
    net3_free(&a);
}
END_TEST

/* A disk that holds only `budget` more bytes. */
static size_t budget;
static size_t full_disk_write(const void *p, size_t size, size_t n, FILE *f)
{
    size_t bytes = size * n;
    if (bytes <= budget) {
        budget -= bytes;
        return fwrite(p, size, n, f);
    }
    size_t k = budget / size;
    if (k)
        fwrite(p, size, k, f);
    budget = 0;
    errno = ENOSPC;
    return k;
}

START_TEST(full_disk_keeps_old_file)
{
    net3 a, b;
    char err[RT_ERRLEN];
    net3_init(&a, 42, 1);
    net3_init(&b, 42, 2);
    ck_assert_int_eq(rt_weights_save(path, &a.m, err), 0);
    size_t n0;
    unsigned char *before = read_all(path, &n0);
    size_t budgets[] = {0, 10, 200, n0 - 1};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        budget = budgets[i];
        rt_weights_set_write_hook(full_disk_write);
        ck_assert_int_eq(rt_weights_save(path, &b.m, err), -1);
        rt_weights_set_write_hook(NULL);
        ck_assert_msg(strstr(err, path) && strstr(err, strerror(ENOSPC)), "%s", err);
        size_t n1;
        unsigned char *after = read_all(path, &n1);
        ck_assert_uint_eq(n0, n1);
        ck_assert_int_eq(memcmp(before, after, n0), 0);
        free(after);
        ck_assert_int_eq(temp_files(), 0);
    }
    /* with exactly enough room the save succeeds and replaces the file */
    budget = n0;
    rt_weights_set_write_hook(full_disk_write);
    ck_assert_int_eq(rt_weights_save(path, &b.m, err), 0);
    rt_weights_set_write_hook(NULL);
    ck_assert_int_eq(rt_weights_load(path, &a.m, err), 0);
    ck_assert_int_eq(memcmp(a.m.params, b.m.params, 51 * sizeof(float)), 0);
    free(before);
    net3_free(&a);
    net3_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("weights");
    TCase *tc = tcase_create("weights");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, roundtrip_bit_exact);
    tcase_add_test(tc, layout_as_documented);
    tcase_add_test(tc, truncated_files_refused);
    tcase_add_test(tc, corruption_refused);
    tcase_add_test(tc, other_network_refused);
    tcase_add_test(tc, missing_directory);
    tcase_add_test(tc, full_disk_keeps_old_file);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
