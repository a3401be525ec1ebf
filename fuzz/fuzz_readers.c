/*
 * fuzz_readers.c - libFuzzer targets for every reader of files a user did not write (issue
 * 12), one per build (-DTARGET_...): the .cnn front end (source to IR), weights files
 * (rt_weights_read), checkpoints (rt_checkpoint_args and rt_checkpoint_read), IDX image
 * files (plain or gzip), the Kaggle ground_truth.csv and the decode cache. Each gets the
 * fuzzer's bytes as its file (written to a memory file, /proc/self/fd/N) and must refuse
 * bad input with a message, never crash. Built by fuzz/build.sh with ASan and UBSan.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cnnrt.h"
#include "frontend.h"
#include "ir.h"
#include "rt_data_internal.h"

/* A small network with every kind of tensor a file holds: conv, batchnorm, dense. */
static const char NET[] = "network f\ninput 1x6x6\nconv 3x3 2 relu\nbatchnorm\nmaxpool 2x2\n"
                          "flatten\ndense 3\n";

static rt_netdesc desc;
static rt_model *model;
static char dir[64];

/* Writes data to path (the whole file). */
static void put(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size)
        fwrite(data, 1, size, f);
    fclose(f);
}

static void write_seed(void);

static void setup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    ir_net net;
    FILE *devnull = fopen("/dev/null", "w");
    if (cnn_compile("f.cnn", NET, strlen(NET), &net, devnull) != 0)
        abort();
    fclose(devnull);
    ir_to_desc(&net, &desc);
    ir_free(&net);
    char err[RT_ERRLEN];
    model = rt_net_create(&desc, 2, 1, err);
    if (!model)
        abort();
    snprintf(dir, sizeof dir, "/tmp/cnnc-fuzz-%d", (int)getpid());
    mkdir(dir, 0700);
    write_seed();
}

/* FUZZ_WRITE_SEED=DIR: writes a valid file of this target's kind to DIR/seed and exits
 * (build.sh makes the seed corpora so). */
static void write_seed(void)
{
    const char *out = getenv("FUZZ_WRITE_SEED");
    if (!out)
        return;
    char path[512], err[RT_ERRLEN];
    snprintf(path, sizeof path, "%s/seed", out);
    int rc = 0;
#if defined(TARGET_WEIGHTS)
    rc = rt_weights_save(path, model, err);
#elif defined(TARGET_CHECKPOINT)
    int order[3] = {2, 0, 1};
    float opt[256] = {0}, bp[256] = {0}, bs[16] = {0};
    double v[2] = {0.5, 0.25};
    rt_history h = {.epochs = 2, .train_loss = v, .train_acc = v, .val_loss = v, .val_acc = v,
                    .secs = v, .lr = v, .best_epoch = 1, .has_val = 1};
    rt_train_state st = {.epoch = 2, .ntrain = 3, .order = order, .opt_step = 4,
                         .opt_floats = desc.nparams, .opt_state = opt, .best = 0.25,
                         .best_epoch = 1, .best_params = bp, .best_state = bs};
    rt_rng_seed(&st.rng, 1);
    char *args[2] = {"--train", "data"};
    rc = rt_checkpoint_write(path, model, &st, &h, 2, args, err);
#elif defined(TARGET_IDX)
    static const uint8_t img[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8};
    put(path, img, sizeof img);
#elif defined(TARGET_CSV)
    static const char csv[] = "filename,tom,jerry\ntom/frame0.pgm,1,0\njerry/frame1.pgm,0,1\n"
                              "tom_jerry_0/frame2.pgm,0,0\ntom_jerry_1/frame3.pgm,1,1\n";
    put(path, (const uint8_t *)csv, sizeof csv - 1);
#elif defined(TARGET_CACHE)
    uint8_t pix[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int label[2] = {0, 1};
    char *names[2] = {"a", "b"};
    rt_dataset ds = {.n = 2, .c = 1, .h = 2, .w = 2, .nclasses = 2, .classnames = names,
                     .pix = pix, .label = label};
    rt_load_opts o = {1, 1, out, 1};
    rc = rt_cache_write(path, 0, &ds, &o);
#endif
    (void)err;
    _exit(rc == 0 ? 0 : 1); /* not exit(): libFuzzer reports that as a finding */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    char err[RT_ERRLEN], path[128];
#if defined(TARGET_CNN)
    ir_net net;
    FILE *sink = fopen("/dev/null", "w");
    cnn_compile("fuzz.cnn", (const char *)data, size, &net, sink);
    ir_free(&net); /* the caller frees the net, compiled or not (as cnnc does) */
    fclose(sink);
#elif defined(TARGET_WEIGHTS)
    snprintf(path, sizeof path, "%s/w", dir);
    put(path, data, size);
    float p[256], s[16];
    char **names = NULL;
    int nn = 0;
    if (desc.nparams > 256 || desc.nstate > 16)
        abort();
    if (rt_weights_read(path, &desc, p, s, &names, &nn, err) == 0)
        rt_names_free(names, nn);
#elif defined(TARGET_CHECKPOINT)
    snprintf(path, sizeof path, "%s/c", dir);
    put(path, data, size);
    int na;
    char **args;
    if (rt_checkpoint_args(path, &desc, &na, &args, err) == 0)
        rt_names_free(args, na);
    rt_train_state st;
    rt_history h;
    if (rt_checkpoint_read(path, model, &st, &h, err) == 0) {
        rt_train_state_free(&st);
        rt_history_free(&h);
    }
#elif defined(TARGET_IDX)
    /* the bytes are the training images (plain or gzip: the reader tells by the magic);
     * the labels and the test set are small valid files */
    static const uint8_t labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 2};
    static const uint8_t t10k_img[] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4};
    static const uint8_t t10k_lab[] = {0, 0, 8, 1, 0, 0, 0, 1, 0};
    char *files[4];
    static const char *const names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        files[i] = malloc(160);
        snprintf(files[i], 160, "%s/%s", dir, names[i]);
    }
    put(files[0], data, size);
    put(files[1], labels, sizeof labels);
    put(files[2], t10k_img, sizeof t10k_img);
    put(files[3], t10k_lab, sizeof t10k_lab);
    rt_load_opts o = {1, 0, NULL, 1};
    rt_dataset ds;
    if (rt_idx_read(files, (rt_shape){1, 2, 2}, &o, &ds, err) == 0)
        rt_dataset_free(&ds);
    for (int i = 0; i < 4; i++)
        free(files[i]);
#elif defined(TARGET_CSV)
    /* a Kaggle download: the bytes are ground_truth.csv, beside four tiny images */
    static int made;
    char csv[160];
    snprintf(csv, sizeof csv, "%s/ground_truth.csv", dir);
    if (!made) {
        static const char *const cls[4] = {"tom", "jerry", "tom_jerry_0", "tom_jerry_1"};
        made = 1;
        for (int k = 0; k < 4; k++) {
            char d2[160], f[200];
            snprintf(d2, sizeof d2, "%s/%s", dir, cls[k]);
            mkdir(d2, 0700);
            snprintf(f, sizeof f, "%s/frame%d.pgm", d2, k);
            static const uint8_t pgm[] = "P5 1 1 255\n\x80";
            put(f, pgm, sizeof pgm - 1);
        }
    }
    put(csv, data, size);
    rt_load_opts o = {1, 0, NULL, 1};
    rt_scan scan;
    if (rt_scan_kaggle(dir, &o, &scan, err) == 0)
        rt_scan_free(&scan);
#elif defined(TARGET_CACHE)
    snprintf(path, sizeof path, "%s/cache", dir);
    put(path, data, size);
    rt_load_opts o = {1, 1, dir, 1};
    rt_dataset ds;
    /* key 0 and the fuzzer's own: a header that matches gets as far as the body */
    uint64_t key = 0;
    for (int i = 0; size >= 24 && i < 8; i++)
        key |= (uint64_t)data[16 + i] << (8 * i);
    if (rt_cache_read(path, key, (rt_shape){1, 2, 2}, &o, &ds))
        rt_dataset_free(&ds);
#else
#error "define one TARGET_"
#endif
    (void)err;
    (void)path;
    return 0;
}
