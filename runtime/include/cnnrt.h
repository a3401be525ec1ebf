/*
 * cnnrt.h - the public interface of libcnnrt, the cnnc runtime.
 *
 * It holds the seam between the compiler and the runtime: a plain-C description of a
 * network (rt_layer, rt_netdesc) that the interpreter executes, the model interface
 * (rt_model) that both the interpreter and generated C implement so that one training
 * loop serves both, and the data, training, weights and command-line services.
 * Nothing here knows about the .cnn language; the runtime never includes src/.
 */
#ifndef CNNRT_H
#define CNNRT_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RT_VERSION "0.1.0"
#define RT_ERRLEN 512 /* size of the error buffers that functions fill */

/* ------------------------------------------------------------------ network description */

/* Every layer kind, activation and padding mode exists once, here: each list makes its enum
 * (RT_CONV, ...) and its names (rt_kind_name, ...), and the op registry (rt_op.h) holds one
 * entry per kind with everything else the runtime knows of it. X(ENUM, "name", comment). */
#define RT_KIND_LIST(X)                                                                      \
    X(RT_INPUT, "input")                 /* the network's input; no computation */          \
    X(RT_CONV, "conv")                   /* 2-D cross-correlation (flip=1: convolution),     \
                                            optional bias and activation, groups, dilation */\
    X(RT_MAXPOOL, "maxpool")             /* window max; padded cells never win */           \
    X(RT_AVGPOOL, "avgpool")             /* window mean; zero padding counted */            \
    X(RT_GLOBALAVGPOOL, "globalavgpool") /* CxHxW -> Cx1x1 mean */                          \
    X(RT_GLOBALMAXPOOL, "globalmaxpool") /* CxHxW -> Cx1x1 max */                           \
    X(RT_FLATTEN, "flatten")             /* CxHxW -> (C*H*W)x1x1 in C-major order */        \
    X(RT_DROPOUT, "dropout")             /* inverted dropout with probability p */          \
    X(RT_DENSE, "dense")                 /* fully connected; flattens its input */          \
    X(RT_BATCHNORM, "batchnorm")         /* per-channel batch normalisation */              \
    X(RT_ACTIVATION, "activation")       /* a stand-alone activation (act, alpha) */        \
    X(RT_ADD, "add")                     /* output of src + output of src2 */               \
    X(RT_CONCAT, "concat")               /* channels of src, then channels of src2 */

/* Activations; softmax only on the last layer, where it is folded into the loss. An
 * activation that needs its input for the gradient (rt_act_needs_input in rt_kernels.h) runs as its own
 * layer, never fused into conv or dense. */
#define RT_ACT_LIST(X)                                                                       \
    X(RT_ACT_NONE, "none")                                                                   \
    X(RT_ACT_RELU, "relu")                                                                   \
    X(RT_ACT_LEAKYRELU, "leakyrelu")     /* slope alpha for x < 0 */                        \
    X(RT_ACT_SIGMOID, "sigmoid")                                                             \
    X(RT_ACT_TANH, "tanh")                                                                   \
    X(RT_ACT_SOFTMAX, "softmax")                                                             \
    X(RT_ACT_RELU6, "relu6")             /* min(max(x, 0), 6) */                            \
    X(RT_ACT_SILU, "silu")               /* x * sigmoid(x) (swish) */                       \
    X(RT_ACT_GELU, "gelu")               /* x * Phi(x), the exact erf form */               \
    X(RT_ACT_ELU, "elu")                 /* x > 0 ? x : alpha * (exp(x) - 1) */

#define RT_PAD_LIST(X)                                                                       \
    X(RT_PAD_ZERO, "zero")                                                                   \
    X(RT_PAD_REFLECT, "reflect")         /* mirror without repeating the edge */            \
    X(RT_PAD_REPLICATE, "replicate")     /* repeat the edge */                              \
    X(RT_PAD_CIRCULAR, "circular")       /* wrap around */

#define RT_ENUM_ITEM_(e, name) e,
typedef enum { RT_KIND_LIST(RT_ENUM_ITEM_) RT_NKINDS } rt_kind;
typedef enum { RT_ACT_LIST(RT_ENUM_ITEM_) RT_NACTS } rt_act;
typedef enum { RT_PAD_LIST(RT_ENUM_ITEM_) RT_NPADS } rt_padmode;
#undef RT_ENUM_ITEM_

/* "conv", "relu", "reflect" (NULL when out of range) and the C spelling of the enum value,
 * "RT_CONV", for generated code; *_from_name gives -1 for an unknown word. */
const char *rt_kind_name(rt_kind k);
const char *rt_kind_cname(rt_kind k);
const char *rt_act_name(rt_act a);
const char *rt_act_cname(rt_act a);
int rt_act_from_name(const char *word);
const char *rt_pad_name(rt_padmode m);
const char *rt_pad_cname(rt_padmode m);
int rt_pad_from_name(const char *word);

typedef struct { int c, h, w; } rt_shape;

/* One layer of a network, every size resolved. Parameters live in the network's one flat
 * parameter array at [w_off, w_off + w_len) and [b_off, b_off + b_len):
 *   conv:      weights [out_c][in_c][kh][kw] (PyTorch's layout), bias [out_c]
 *   dense:     weights [out][in] with in in flatten order, bias [out]
 *   batchnorm: gamma at w_off, beta at b_off (c each); running mean then running variance
 *              live in the state array at [s_off, s_off + 2c).
 * Layers are in topological order; src (and src2 for RT_ADD and RT_CONCAT) index earlier
 * layers. */
typedef struct {
    rt_kind kind;
    int src, src2;          /* producers; -1 for the input layer; src2 for RT_ADD, RT_CONCAT */
    rt_shape in, out;       /* in == layers[src].out */
    int line;               /* .cnn source line it came from (0 when unknown) */
    int kh, kw;             /* window (conv, pooling) */
    int sh, sw;             /* stride */
    int pt, pb, pl, pr;     /* padding: top, bottom, left, right, in pixels */
    rt_padmode padmode;     /* how conv padding is filled */
    int flip;               /* conv: 1 = true convolution (kernel flipped), 0 = correlation */
    int dh, dw;             /* conv: dilation (>= 1; 0 is read as 1) */
    int groups;             /* conv: channel groups (>= 1; 0 is read as 1); weights
                               [out_c][in_c / groups][kh][kw] as PyTorch's */
    int bias;               /* conv, dense: has a bias */
    rt_act act;             /* activation applied after conv/dense, or of RT_ACTIVATION */
    float alpha;            /* leaky relu slope */
    float p;                /* dropout probability */
    float eps, momentum;    /* batchnorm (PyTorch defaults 1e-5, 0.1) */
    size_t w_off, w_len, b_off, b_len, s_off, s_len;
    int norm;               /* input: 1 when the pixels (in [0, 1]) are normalised to
                               (x - mean[c]) / std[c] before the first layer */
    float mean[4], std[4];
} rt_layer;

/* The input normalisation of layer L (an RT_INPUT with norm set): y = (x - mean) / std for
 * n images of L->out, channel by channel (y may be x). */
void rt_input_normalize(const rt_layer *L, const float *x, float *y, int n);

typedef struct {
    char name[64];
    int nlayers;
    rt_layer *layers;       /* layers[0] is RT_INPUT; the last layer's output is the logits */
    size_t nparams;         /* length of the parameter (and gradient) array */
    size_t nstate;          /* length of the state array (batchnorm running statistics) */
    uint64_t hash;          /* rt_netdesc_hash(): identifies the structure in weights files */
} rt_netdesc;

/* Number of classes = the last layer's output size c*h*w. */
int rt_netdesc_classes(const rt_netdesc *d);
/* A hash of everything that determines the parameter layout (kinds, shapes, sizes). */
uint64_t rt_netdesc_hash(const rt_netdesc *d);
/* 1 when layer i is a max pooling that reads the relu output of a conv or dense layer and
 * is that output's only reader: its backward may then apply the relu's backward as well
 * (rt_maxpool_backward_relu), and the conv or dense layer skips its own. The interpreter
 * and generated programs both decide by this, so they run the same kernels. */
int rt_netdesc_pool_takes_relu(const rt_netdesc *d, int i);

/* ------------------------------------------------------------------ random numbers */

/* splitmix64-seeded xoshiro256**: every random draw of a run comes from generators
 * seeded from the one user seed, so a seed and a thread count fix the whole run. */
typedef struct { uint64_t s[4]; } rt_rng;
void rt_rng_seed(rt_rng *r, uint64_t seed);
uint64_t rt_rng_next(rt_rng *r);
float rt_rng_uniform(rt_rng *r);              /* [0, 1) */
/* Weights and biases uniform in +-1/sqrt(fan_in) (PyTorch's default for Conv2d and Linear);
 * batchnorm gamma 1, beta 0, running mean 0, running variance 1. */
void rt_init_params(const rt_netdesc *d, float *params, float *state, uint64_t seed);

/* ------------------------------------------------------------------ the model interface */

/* The modes of rt_model.forward. */
enum { RT_EVAL = 0, RT_TRAIN = 1, RT_INFER = 2 };

/* What a training loop needs of a network. The interpreter (rt_net) and the C that cnnc
 * generates both provide one, so data, training, weights and the command line are shared. */
typedef struct rt_model {
    void *self;
    const rt_netdesc *desc;
    float *params, *grads, *state;
    size_t nparams, nstate;
    int max_batch;
    /* x: n images [n][c][h][w], 1 <= n <= max_batch; writes logits [n][classes]. training
     * is RT_TRAIN (batch statistics, moving the running ones, and dropout), RT_EVAL
     * (evaluation mode) or RT_INFER (evaluation mode with no backward to follow: the plan's
     * inference fusions run, such as a batchnorm folded into the conv before it, and a
     * backward after it fails). A softmax on the last layer is NOT applied: the logits go
     * to the loss (rt_softmax_xent). Returns 0, or -1 with a message in err (below). */
    int (*forward)(void *self, const float *x, int n, int training, float *logits);
    /* dlogits: [n][classes], d(loss)/d(logits), n as in the last forward (whose mode,
     * training or not, it differentiates); accumulates nothing: overwrites grads. Returns 0,
     * or -1 with a message in err and every gradient NaN (no half-made gradient can pass
     * for one). */
    int (*backward)(void *self, const float *dlogits, int n);
    void (*seed_dropout)(void *self, uint64_t seed);
    /* When set, backward calls it each time grads[from..nparams) have their final values
     * (after each layer with parameters, from the last layer down), so that data-parallel
     * training can start summing them over the ranks while backward goes on. */
    void (*grads_ready)(void *ctx, size_t from);
    void *grads_ready_ctx;
    /* frees everything, this rt_model included */
    void (*destroy)(void *self);
    char err[RT_ERRLEN];    /* the message of the last failure of forward or backward */
} rt_model;

/* The interpreter: executes any rt_netdesc with kernels taking shapes as arguments.
 * The description must outlive the model. threads <= 0 means all cores. Parameters are
 * initialised with rt_init_params(d, params, state, 1) and dropout seeded with 1. Returns
 * NULL with a message in err for an inconsistent description or when out of memory. */
rt_model *rt_net_create(const rt_netdesc *d, int max_batch, int threads, char *err);
/* m->destroy(m->self); NULL is ignored. */
void rt_model_destroy(rt_model *m);
/* Dropout draws come from a generator seeded with (seed ^ RT_DROPOUT_SEED_MIX), which
 * decorrelates them from the initialisation draws; every model uses this one rule. */
#define RT_DROPOUT_SEED_MIX 0x6a09e667f3bcc909ULL

/* Softmax + cross-entropy fused (log-sum-exp) over a batch: returns the mean loss, writes
 * probabilities (if probs) and d(mean loss)/d(logits) = (softmax - onehot) / n (if dlogits),
 * and sets *correct (if not NULL) to the number of rows whose first maximum is the label.
 * A label outside [0, k) makes the loss NaN. */
double rt_softmax_xent(const float *logits, const int *labels, int n, int k,
                       float *probs, float *dlogits, int *correct);

/* ------------------------------------------------------------------ optimizers */

typedef enum { RT_OPT_SGD, RT_OPT_ADAM, RT_OPT_ADAMW } rt_opt_kind;
typedef struct {
    rt_opt_kind kind;
    float lr, momentum, weight_decay;   /* sgd: PyTorch's SGD; adam: momentum unused */
    float beta1, beta2, eps;            /* adam: PyTorch's defaults 0.9, 0.999, 1e-8 */
    int nesterov;                       /* sgd: torch.optim.SGD(nesterov=True) */
} rt_opt_cfg;
typedef struct rt_opt rt_opt;
rt_opt *rt_opt_create(const rt_opt_cfg *cfg, size_t n);
void rt_opt_step(rt_opt *o, float *params, const float *grads);
void rt_opt_destroy(rt_opt *o);
/* Changes the learning rate of the following steps (a schedule); the state is kept. */
void rt_opt_set_lr(rt_opt *o, float lr);
/* The optimizer's state for checkpoints: its moment buffers (SGD with momentum: one of n
 * floats; Adam/AdamW: two; else none) and the steps taken. export copies
 * rt_opt_state_floats(o) floats to buf; import sets them and the step count back. */
size_t rt_opt_state_floats(const rt_opt *o);
long rt_opt_export(const rt_opt *o, float *buf);
void rt_opt_import(rt_opt *o, long steps, const float *buf);
/* torch.nn.utils.clip_grad_norm_: scales g[0..n) by max_norm / (||g||_2 + 1e-6) when that
 * is below 1 (max_norm <= 0: never). Returns the norm before clipping. */
double rt_clip_grad_norm(float *g, size_t n, float max_norm);
/* rt_softmax_xent with torch's CrossEntropyLoss(label_smoothing=e): the target is
 * (1-e) onehot + e/k, so the loss of a row is (1-e) (lse - l_y) + e mean_j (lse - l_j) and
 * d(mean loss)/d(logits) = (softmax - (1-e) onehot - e/k) / n. *correct as there. */
double rt_softmax_xent_smooth(const float *logits, const int *labels, int n, int k,
                              float smoothing, float *probs, float *dlogits, int *correct);

/* ------------------------------------------------------------------ data */

/* A labelled image set decoded to 8-bit pixels at the network's input shape. */
typedef struct {
    int n, c, h, w;
    int nclasses;
    char **classnames;      /* nclasses names, sorted (folder names, or IDX's 0..9) */
    uint8_t *pix;           /* n * c * h * w, planar [n][c][h][w] */
    int *label;             /* n labels in [0, nclasses) */
    char **files;           /* n source names, for messages (may be NULL for IDX) */
    int ntest_fixed;        /* the last ntest_fixed images are the set's own test set (IDX,
                               DIR/test, --test DIR) */
    int nval_fixed;         /* the nval_fixed images before them its own validation set
                               (DIR/val, --val DIR) */
    char parts[64];         /* how it came split, e.g. "train/, val/ and test/ folders" */
    int nskipped;           /* images skipped with a warning: unreadable, or (Kaggle) not
                               labelled by ground_truth.csv */
    int cached;             /* 1: the pixels were read from the decode cache */
} rt_dataset;

/* How to load. A zeroed struct is valid but does not cache; rt_load_opts_defaults() gives
 * the usual settings, and a NULL opts means those defaults. */
typedef struct {
    int threads;            /* decoding threads, <= 0: all online cores */
    int use_cache;          /* 1: read the decoded set from the decode cache when it matches
                               the files (paths, sizes, mtimes) and the shape, else decode and
                               write it there; a stale or corrupt cache file is rebuilt */
    const char *cache_dir;  /* NULL: $XDG_CACHE_HOME/cnnc, else $HOME/.cache/cnnc (created) */
    int quiet;              /* 1: no warnings on stderr (skipped images, cache problems) */
} rt_load_opts;

/* threads 0 (all cores), use_cache 1, cache_dir NULL (the default folder), quiet 0. */
void rt_load_opts_defaults(rt_load_opts *o);

/* Loads PATH as an image-folder set (PATH/<class>/<image>, classes in byte order of their
 * names; JPEG, PNG, BMP or binary PGM/PPM, see cnnrun(1)), a Kaggle Tom & Jerry download (PATH/ground_truth.csv:
 * classes jerry, tom, tom_jerry_0 (neither), tom_jerry_1 (both)), an IDX set (a folder or
 * file with train-/t10k- images-idx3-ubyte and labels-idx1-ubyte, each maybe .gz), or a set
 * split in folders: PATH/train and PATH/test and/or PATH/val (or valid, validation), each
 * with one folder per class (the validation and test parts become the set's fixed ones:
 * nval_fixed, ntest_fixed; parts says so). Images are
 * converted to shape.c channels (1 grey, 3 RGB; 2 and 4 add alpha) and resized to shape.h x
 * shape.w (aspect not kept). Unreadable images are skipped with a warning. Returns 0, or -1
 * with err set (missing path, no classes, an empty class, no images, a broken IDX file). */
int rt_dataset_load(const char *path, rt_shape shape, const rt_load_opts *opts,
                    rt_dataset *out, char *err);
void rt_dataset_free(rt_dataset *ds);       /* frees the arrays; ds itself may be reused */
/* Appends b's images to a (labels matched by class name: b's classes must all be a's)
 * and frees b, also on failure; what names b in messages. Returns 0, or -1 with err set. */
int rt_dataset_append(rt_dataset *a, rt_dataset *b, const char *what, char *err);

/* Stratified split by ratios (e.g. 7,2,1) deterministic for seed. An IDX set keeps its own
 * test set and splits the rest by train:val. Index arrays are malloc'ed.
 * Per class, its indices are shuffled and cut into parts of sizes n_c * ratio_k / sum
 * rounded by largest remainder (each part gets the floor; the leftover images go one each
 * to the parts with the largest fractional parts, ties to the earlier part). Each part's
 * indices come out in a shuffled order. ratio NULL means 7:2:1; parts may be 0 except train.
 * Returns 0, or -1 with err set (bad ratios, empty set). */
typedef struct { int *train, *val, *test; int ntrain, nval, ntest; } rt_split;
int rt_split_make(const rt_dataset *ds, const int ratio[3], uint64_t seed, rt_split *out,
                  char *err);
void rt_split_free(rt_split *s);

/* Copies images idx[0..n) to floats in [0,1] (x: [n][c][h][w]) and their labels to y;
 * flip[i] != 0 mirrors image i horizontally (augmentation); flip may be NULL. */
void rt_dataset_batch(const rt_dataset *ds, const int *idx, int n, const uint8_t *flip,
                      float *x, int *y);

/* Appends to files[0..*n) (malloc'ed; rt_names_free) path itself when it is not a folder,
 * or the image files in it (.jpg .jpeg .png .bmp .pgm .ppm .pnm, any case) and in its
 * sub-folders, in name order. Returns 0, or -1 with err set (path an unreadable folder). */
int rt_image_files(const char *path, char ***files, int *n, char *err);

/* Decodes one image file to the shape (for --predict). Returns 0, or -1 with err set. */
int rt_image_load(const char *file, rt_shape shape, float *x, char *err);

/* ------------------------------------------------------------------ weights files */

/* Writes params and state with the structure hash, to FILE.tmp then renamed over FILE. */
int rt_weights_save(const char *file, const rt_model *m, char *err);
/* Refuses files of another network, truncated or corrupted files, with a clear message. */
int rt_weights_load(const char *file, rt_model *m, char *err);
/* The format is described in rt_weights.c and doc/weights-format.md. */
#define RT_WEIGHTS_VERSION 1
/* As rt_weights_save, also storing the class names (names[0..nclasses), may be 0 / NULL)
 * so that a program can name its predictions without the data set. */
int rt_weights_save_named(const char *file, const rt_model *m, char *const *names,
                          int nclasses, char *err);
/* As rt_weights_load; if names is not NULL, *names gets the stored class names (malloc'ed,
 * free with rt_names_free; NULL when the file holds none) and *nclasses their count. The
 * model is untouched unless the whole file checks out. */
int rt_weights_load_named(const char *file, rt_model *m, char ***names, int *nclasses,
                          char *err);
/* As rt_weights_load_named, without a model: reads the weights of network d into
 * params[d->nparams] and state[d->nstate] (for a program that only needs the values, such
 * as cnnc --standalone). The same checks and messages: structure hash, truncation,
 * checksum, every tensor's layer, role and shape. The arrays are untouched unless the
 * whole file checks out. names and nclasses as in rt_weights_load_named (names may be
 * NULL). Returns 0, or -1 with err set. */
int rt_weights_read(const char *file, const rt_netdesc *d, float *params, float *state,
                    char ***names, int *nclasses, char *err);
void rt_names_free(char **names, int n);

/* ------------------------------------------------------------------ training and the CLI */

/* The learning rate of each epoch: constant, cosine to 0 over the run, times gamma every
 * `every` epochs, or times factor after `patience` epochs without a better validation loss;
 * each optionally after a linear warmup of `warmup` epochs. */
typedef enum { RT_SCHED_CONSTANT, RT_SCHED_COSINE, RT_SCHED_STEP, RT_SCHED_PLATEAU } rt_sched_kind;
typedef struct {
    rt_sched_kind kind;
    int warmup;             /* epochs of linear warmup (0: none) */
    int every;              /* step: epochs between decays */
    float gamma;            /* step: the decay factor */
    int patience;           /* plateau: epochs without improvement before a decay */
    float factor;           /* plateau: the decay factor */
} rt_sched_cfg;

/* Random transformations of training images, deterministic for the run's seed. */
typedef struct {
    int hflip, vflip;       /* mirror with probability 1/2 */
    int crop;               /* pad by crop pixels, then cut a random window (0: off) */
    float rotate;           /* rotate by a uniform angle in [-rotate, rotate] degrees */
    float scale;            /* zoom by a uniform factor in [1-scale, 1+scale] */
    float jitter;           /* brightness and contrast by uniform factors in [1-j, 1+j] */
} rt_augment_cfg;

/* One image's draw of the transformations (rt_augment.c): a crop shift (dy, dx) within the
 * padding, a vertical flip, rotation in degrees, zoom factor, brightness and contrast. */
typedef struct {
    int dy, dx, vflip;
    float degrees, scale, brightness, contrast;
} rt_augment_params;
/* 1 when a has a transformation besides hflip (which rt_dataset_batch does). */
int rt_augment_active(const rt_augment_cfg *a);
/* Image pos of epoch's draw for the run's seed: the same whatever the batch or threads. */
void rt_augment_draw(const rt_augment_cfg *a, uint64_t seed, int epoch, long pos,
                     rt_augment_params *p);
/* Applies p to one image x[c][h][w] in [0, 1]; tmp holds c*h*w floats. */
void rt_augment_apply(const rt_augment_params *p, float *x, int c, int h, int w, float *tmp);
/* Draws and applies for n images whose places in the epoch are first, first + 1, ... */
void rt_augment_batch(const rt_augment_cfg *a, uint64_t seed, int epoch, long first, float *x,
                      int n, int c, int h, int w, float *tmp);

typedef struct {
    rt_opt_cfg opt;
    int batch, epochs;
    int split[3];
    uint64_t seed;
    rt_augment_cfg augment;
    int threads;
    rt_sched_cfg schedule;
    int stop_patience;      /* early stopping after this many epochs without improvement (0: off) */
    float label_smoothing;  /* PyTorch's CrossEntropyLoss(label_smoothing=) */
    float clip_norm;        /* clip the gradient's global L2 norm to this (0: off) */
} rt_train_cfg;

/* PyTorch-like defaults: adam lr 1e-3, batch 32, 10 epochs, split 7:2:1, seed 1. */
void rt_train_cfg_defaults(rt_train_cfg *c);

/* The settings the .cnn train { } section and the command line share (rt_train_words.c),
 * so that both accept and refuse the same: one word each (file: `optimizer adamw lr=X
 * betas=B1,B2 weight_decay=W`, `optimizer sgd momentum=M nesterov`, `schedule cosine|step|
 * plateau|constant warmup=N every=N gamma=G patience=N factor=F`, `stop patience=N`,
 * `clip norm=X`, `loss cross_entropy smoothing=E`; command line: --optimizer, --lr, ...). */
typedef enum {
    RT_W_OPTIMIZER, RT_W_LR, RT_W_MOMENTUM, RT_W_WD, RT_W_BETAS, RT_W_BETA1, RT_W_BETA2,
    RT_W_NESTEROV, RT_W_SCHEDULE, RT_W_WARMUP, RT_W_EVERY, RT_W_GAMMA, RT_W_PATIENCE,
    RT_W_FACTOR, RT_W_STOP, RT_W_CLIP, RT_W_SMOOTHING, RT_NWORDS
} rt_train_word;
/* Parses value (the text as written; NULL for the flag nesterov) into c. Returns 0, or -1
 * with err saying what is valid. */
int rt_train_word_set(rt_train_cfg *c, rt_train_word w, const char *value, char *err);
/* One augmentation: hflip, vflip, crop=P, rotate=DEG, scale=F, jitter=F, or none (clears
 * all). Returns 0, or -1 with err. */
int rt_train_augment_item(rt_augment_cfg *a, const char *item, char *err);
/* The rules between settings, after all are read: given[w] says which words the user
 * wrote (in this file or on this command line). Momentum only for sgd, betas only for adam
 * and adamw, nesterov only for sgd with momentum > 0, every/gamma only for the step
 * schedule (which needs every), patience/factor only for plateau, a warmup shorter than
 * the epochs. Choosing adamw without weight_decay sets torch's 0.01. Returns -1 when all
 * hold, else the word at fault with err set. */
int rt_train_words_check(rt_train_cfg *c, const unsigned char given[RT_NWORDS], char *err);
/* "sgd", "adam", "adamw"; "constant", "cosine", "step", "plateau". */
const char *rt_opt_kind_name(rt_opt_kind k);
const char *rt_sched_kind_name(rt_sched_kind k);
/* One line: "adamw lr 0.001 weight decay 0.01, schedule cosine warmup 1, augment hflip". */
void rt_train_describe(const rt_train_cfg *c, char *buf, size_t n);

/* The command line shared by cnnrun and every generated program: --train, --eval,
 * --predict and their options. make_model builds a model for a batch size and thread
 * count. prog is the program name for messages; defaults come from the .cnn train section.
 * Returns the process exit code (0 ok, 1 input or run error, 2 usage error). */
typedef rt_model *(*rt_model_factory)(void *ctx, int max_batch, int threads, char *err);
/* argv[0] is skipped (the program or, for cnnrun, the last word before the options); prog
 * is what messages and the usage text call the program, e.g. "cnnrun net.cnn". The model
 * is initialised by rt_init_params from the run's seed before training. */
int rt_cli_main(int argc, char **argv, const char *prog, const rt_netdesc *d,
                const rt_train_cfg *defaults, rt_model_factory make_model, void *ctx);

/* rt_cli_main also offers `--bench STEPS` (training and inference speed on a random batch,
 * "bench ..." lines) and `--dump FILE` (one forward and backward pass written for
 * equivalence tests; layout in rt_cli_dump.c and bench/README.md). Their GFLOP/s, and
 * cnnc --summary's MFLOPs, come from one rule: a multiply-add is 2 FLOPs; a bias add, an
 * activation, a pooling window element, a residual add and a batchnorm scale or shift are
 * 1 each per output element. Forward FLOPs of one image through a layer whose shapes and
 * parameter lengths are set, through layer i of d (0 when i is out of range), and through
 * the whole network. */
double rt_layer_flops_of(const rt_layer *L);
double rt_layer_flops(const rt_netdesc *d, int i);
double rt_netdesc_flops(const rt_netdesc *d);

/* The Levenshtein distance between a and b (insertions, deletions, substitutions), for
 * "did you mean" hints; a string longer than 64 bytes gives 1000. */
int rt_edit_distance(const char *a, const char *b);

/* ------------------------------------------------------------------ files */

/* A file written beside its target and renamed over it when complete, so that a failure
 * (a full disk, a crash) never leaves a half-written file or destroys the previous one. */
typedef struct {
    FILE *f;                /* write here */
    char *tmp;              /* the temporary file, PATH.tmp-XXXXXX (NULL: in place) */
    const char *path;       /* the target (not copied: keep it alive until closed) */
    char *target;           /* path was a symbolic link: the file it names */
} rt_atomic_file;
/* Creates the temporary file beside the target (beside the file a symbolic link names).
 * A target that exists and is not a regular file (/dev/null, a pipe), or a writable file
 * in a folder where no file can be created, is opened and written in place instead (tmp
 * NULL). Returns 0, or -1 with errno set. */
int rt_atomic_open(rt_atomic_file *a, const char *path);
/* When ok (and no write to a->f failed): flushes, with durable also fsyncs the file and,
 * after the rename, its folder, closes and renames it over the target. Otherwise, or when
 * any of that fails, closes and removes the temporary file. Returns 0, or -1 with errno
 * set (for ok == 0, to errno as it was at the call: the caller's failure); the target is
 * then untouched. */
int rt_atomic_close(rt_atomic_file *a, int ok, int durable);

/* What a training run measured, one entry per epoch (malloc'ed; rt_history_free).
 * Accuracies are fractions in [0, 1]. */
typedef struct {
    int epochs;             /* epochs completed */
    double *train_loss, *train_acc;   /* running means over each epoch's minibatches */
    double *val_loss, *val_acc;       /* eval mode after each epoch; 0 when !has_val */
    double *secs;           /* wall time of each epoch (display only, never steers) */
    double *lr;             /* the learning rate each epoch trained with */
    int best_epoch;         /* 0-based epoch whose weights were kept; -1 before the first */
    int has_val;            /* 0: no validation images, the best is chosen by train loss */
} rt_history;
void rt_history_free(rt_history *h);

/* The learning rate of epoch `epoch` (0-based), a pure function of the settings and of the
 * history of the epochs before it (h may be NULL except for plateau), so that a resumed
 * run gets the same rates. With base = c->opt.lr and W = schedule.warmup:
 *   epoch < W (warmup):  base * (epoch + 1) / (W + 1)
 *   then with e = epoch - W:
 *   constant: base;  cosine: base * (1 + cos(pi e / (epochs - W))) / 2 (torch's
 *   CosineAnnealingLR, eta_min 0);  step: base * gamma^floor(e / every) (StepLR);
 *   plateau: torch's ReduceLROnPlateau (mode min, threshold 1e-4 relative, cooldown 0)
 *   replayed over the validation loss (training loss without validation) of epochs W to
 *   epoch - 1, starting from base. */
double rt_sched_lr(const rt_train_cfg *c, int epoch, const rt_history *h);
/* Early stopping: 1 when stop_patience > 0 and the last stop_patience epochs of h all
 * failed to beat the lowest criterion (validation loss, else training loss) before them. */
int rt_sched_stop(const rt_train_cfg *c, const rt_history *h);

/* Where a training run stands after an epoch: with the model's parameters, state and the
 * history, all that continuing it bit for bit needs. Arrays are the run's own (read only)
 * in a checkpoint hook, malloc'ed by rt_checkpoint_read (rt_train_state_free). */
typedef struct rt_train_state {
    int epoch;              /* epochs completed */
    rt_rng rng;             /* the shuffling (and flipping) generator after them */
    int ntrain;
    int *order;             /* the training order after the last shuffle */
    long opt_step;          /* optimizer steps taken */
    size_t opt_floats;      /* its moment buffers' floats (rt_opt_state_floats) */
    float *opt_state;
    double best;            /* the lowest criterion so far (INFINITY: none) */
    int best_epoch;         /* its epoch, 0-based; -1: none */
    float *best_params, *best_state;
} rt_train_state;
void rt_train_state_free(rt_train_state *s);

/* Checkpoint files (rt_checkpoint.c, doc/checkpoint-format.md): the model's parameters and
 * state, s, the history's first s->epoch epochs and the run's arguments args[0..nargs),
 * written atomically with fsync (the previous file stays whole on any failure). */
int rt_checkpoint_write(const char *file, const rt_model *m, const rt_train_state *s,
                        const rt_history *h, int nargs, char *const *args, char *err);
/* Reads a checkpoint of m's network: m's parameters and state, s and h (malloc'ed:
 * rt_train_state_free, rt_history_free). m is untouched unless the whole file checks out
 * (mark, version, length, checksum, structure hash, contents). Returns 0, or -1 with err. */
int rt_checkpoint_read(const char *file, rt_model *m, rt_train_state *s, rt_history *h,
                       char *err);
/* Only the stored arguments (malloc'ed: rt_names_free(*args, *nargs)), for network d. */
int rt_checkpoint_args(const char *file, const rt_netdesc *d, int *nargs, char ***args,
                       char *err);
#define RT_TRAIN_INTERRUPTED (-2)

/* Optional callbacks of rt_train_run (any may be NULL): progress and saving live there. */
typedef struct {
    void *ctx;
    /* after each minibatch, with this epoch's running mean loss and accuracy so far */
    void (*batch_done)(void *ctx, int epoch, int batch, int nbatches, double loss, double acc);
    /* after each epoch; improved: the model now holds the new best weights. Returning
     * nonzero (with err set) stops training with that error. */
    int (*epoch_done)(void *ctx, const rt_history *h, int epoch, int improved,
                      const rt_model *m, char *err);
    /* after epoch_done, with where the run stands (a checkpoint's contents besides m's
     * parameters and state, which are the current, not the best, ones). Returning nonzero
     * (with err set) stops training with that error. */
    int (*checkpoint)(void *ctx, const rt_train_state *s, const rt_history *h,
                      const rt_model *m, char *err);
    /* a run to continue (rt_checkpoint_read's state and history; m already holds the
     * parameters and state it saved), or NULL for a new run */
    const rt_train_state *resume;
    const rt_history *resume_history;
    /* set nonzero (by a signal handler) to stop after the current minibatch: rt_train_run
     * then returns RT_TRAIN_INTERRUPTED */
    const volatile sig_atomic_t *interrupt;
} rt_train_hooks;



/* Trains m on sp->train (minibatches of cfg->batch, reshuffled each epoch by an rng
 * seeded from cfg->seed; optional horizontal flips), evaluates sp->val after each epoch,
 * and leaves m holding the weights of the epoch with the lowest validation loss (train
 * loss if there are no validation images). m->max_batch must be >= cfg->batch. The
 * parameters are not initialised here. Returns 0, or -1 with err set. */
int rt_train_run(rt_model *m, const rt_dataset *ds, const rt_split *sp,
                 const rt_train_cfg *cfg, const rt_train_hooks *hooks, rt_history *h,
                 char *err);
/* Evaluates images idx[0..n) of ds in eval mode, m->max_batch at a time: mean loss,
 * accuracy (fraction), and if confusion is not NULL the k*k counts [true][predicted]
 * with k the network's classes. n == 0 gives loss and accuracy 0. Returns 0 or -1. */
int rt_evaluate(rt_model *m, const rt_dataset *ds, const int *idx, int n, double *loss,
                double *acc, int *confusion, char *err);

/* ------------------------------------------------------------------ reports and plots */

/* "1m23s" style: "4.2s" under 10 s, "42s", "1m23s", "2h05m07s". */
void rt_fmt_duration(double secs, char *buf, size_t n);
/* The two header lines of the results table (no trailing newline after the second). */
const char *rt_report_header(void);
/* "| model | val loss | val acc | test loss | test acc | runtime |"; a negative loss
 * means the split was empty and prints "-" for both of its columns. */
void rt_report_row(char *buf, size_t n, const char *model, double val_loss, double val_acc,
                   double test_loss, double test_acc, double secs);
/* Appends row (and a newline) to a Markdown file, writing the header first when the file
 * is new or empty. Returns 0, or -1 with err set. */
int rt_report_append(const char *file, const char *row, char *err);
/* Writes the history as CSV (epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds; the
 * validation columns empty without validation images), atomically. 0, or -1 with err. */
int rt_log_write(const char *file, const rt_history *h, char *err);
/* Prints a k*k confusion matrix [true][predicted] with class names (NULL: numbers) and
 * each class's recall. */
void rt_confusion_print(FILE *f, const int *conf, int k, char *const *names);
/* Train/val loss and accuracy curves per epoch: SVG if file ends in .svg, else PNG. */
int rt_plot_write(const char *file, const rt_history *h, const char *title, char *err);

#ifdef __cplusplus
}
#endif
#endif
