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
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RT_VERSION "0.1.0"
#define RT_ERRLEN 512 /* size of the error buffers that functions fill */

/* ------------------------------------------------------------------ network description */

typedef enum {
    RT_INPUT,            /* the network's input; no computation */
    RT_CONV,             /* 2-D cross-correlation (or convolution, flip=1), optional bias and act */
    RT_MAXPOOL,          /* window max; padded cells never win (PyTorch's -inf padding) */
    RT_AVGPOOL,          /* window mean; zero padding counted (PyTorch's count_include_pad) */
    RT_GLOBALAVGPOOL,    /* CxHxW -> Cx1x1 mean */
    RT_GLOBALMAXPOOL,    /* CxHxW -> Cx1x1 max */
    RT_FLATTEN,          /* CxHxW -> (C*H*W)x1x1, C-major order as PyTorch's flatten */
    RT_DROPOUT,          /* inverted dropout with probability p while training */
    RT_DENSE,            /* fully connected, optional bias and act; flattens its input */
    RT_BATCHNORM,        /* per-channel batch normalisation (BatchNorm2d / BatchNorm1d) */
    RT_ACTIVATION,       /* a stand-alone activation layer (act, alpha) */
    RT_ADD,              /* residual: output = output of src + output of src2 */
    RT_NKINDS
} rt_kind;

typedef enum {
    RT_ACT_NONE,
    RT_ACT_RELU,
    RT_ACT_LEAKYRELU,    /* slope alpha for x < 0 */
    RT_ACT_SIGMOID,
    RT_ACT_TANH,
    RT_ACT_SOFTMAX       /* only on the last layer: folded into the cross-entropy loss */
} rt_act;

typedef enum { RT_PAD_ZERO, RT_PAD_REFLECT, RT_PAD_REPLICATE, RT_PAD_CIRCULAR } rt_padmode;

typedef struct { int c, h, w; } rt_shape;

/* One layer of a network, every size resolved. Parameters live in the network's one flat
 * parameter array at [w_off, w_off + w_len) and [b_off, b_off + b_len):
 *   conv:      weights [out_c][in_c][kh][kw] (PyTorch's layout), bias [out_c]
 *   dense:     weights [out][in] with in in flatten order, bias [out]
 *   batchnorm: gamma at w_off, beta at b_off (c each); running mean then running variance
 *              live in the state array at [s_off, s_off + 2c).
 * Layers are in topological order; src (and src2 for RT_ADD) index earlier layers. */
typedef struct {
    rt_kind kind;
    int src, src2;          /* producers; -1 for the input layer; src2 only for RT_ADD */
    rt_shape in, out;       /* in == layers[src].out */
    int line;               /* .cnn source line it came from (0 when unknown) */
    int kh, kw;             /* window (conv, pooling) */
    int sh, sw;             /* stride */
    int pt, pb, pl, pr;     /* padding: top, bottom, left, right, in pixels */
    rt_padmode padmode;     /* how conv padding is filled */
    int flip;               /* conv: 1 = true convolution (kernel flipped), 0 = correlation */
    int bias;               /* conv, dense: has a bias */
    rt_act act;             /* activation applied after conv/dense, or of RT_ACTIVATION */
    float alpha;            /* leaky relu slope */
    float p;                /* dropout probability */
    float eps, momentum;    /* batchnorm (PyTorch defaults 1e-5, 0.1) */
    size_t w_off, w_len, b_off, b_len, s_off, s_len;
} rt_layer;

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

/* What a training loop needs of a network. The interpreter (rt_net) and the C that cnnc
 * generates both provide one, so data, training, weights and the command line are shared. */
typedef struct rt_model {
    void *self;
    const rt_netdesc *desc;
    float *params, *grads, *state;
    size_t nparams, nstate;
    int max_batch;
    /* x: n images [n][c][h][w]; writes logits [n][classes]. training selects batch
     * statistics and dropout. Returns 0, or -1 with a message in err. */
    int (*forward)(void *self, const float *x, int n, int training, float *logits);
    /* dlogits: [n][classes], d(loss)/d(logits); accumulates nothing: overwrites grads. */
    void (*backward)(void *self, const float *dlogits, int n);
    void (*seed_dropout)(void *self, uint64_t seed);
    void (*destroy)(void *self);
} rt_model;

/* The interpreter: executes any rt_netdesc with kernels taking shapes as arguments.
 * The description must outlive the model. threads <= 0 means all cores. */
rt_model *rt_net_create(const rt_netdesc *d, int max_batch, int threads, char *err);
void rt_model_destroy(rt_model *m);

/* Softmax + cross-entropy fused (log-sum-exp) over a batch: returns the mean loss, writes
 * probabilities (if probs) and d(mean loss)/d(logits) (if dlogits), counts correct argmax. */
double rt_softmax_xent(const float *logits, const int *labels, int n, int k,
                       float *probs, float *dlogits, int *correct);

/* ------------------------------------------------------------------ optimizers */

typedef enum { RT_OPT_SGD, RT_OPT_ADAM } rt_opt_kind;
typedef struct {
    rt_opt_kind kind;
    float lr, momentum, weight_decay;   /* sgd: PyTorch's SGD; adam: momentum unused */
    float beta1, beta2, eps;            /* adam: PyTorch's defaults 0.9, 0.999, 1e-8 */
} rt_opt_cfg;
typedef struct rt_opt rt_opt;
rt_opt *rt_opt_create(const rt_opt_cfg *cfg, size_t n);
void rt_opt_step(rt_opt *o, float *params, const float *grads);
void rt_opt_destroy(rt_opt *o);

/* ------------------------------------------------------------------ data */

/* A labelled image set decoded to 8-bit pixels at the network's input shape. */
typedef struct {
    int n, c, h, w;
    int nclasses;
    char **classnames;      /* nclasses names, sorted (folder names, or IDX's 0..9) */
    uint8_t *pix;           /* n * c * h * w, planar [n][c][h][w] */
    int *label;             /* n labels in [0, nclasses) */
    char **files;           /* n source names, for messages (may be NULL for IDX) */
    int ntest_fixed;        /* IDX: the last ntest_fixed images are the set's own test set */
    int nskipped;           /* unreadable images skipped with a warning */
} rt_dataset;

typedef struct {
    int threads;            /* decoding threads, <= 0: all cores */
    int use_cache;          /* decode once into a cache file beside... see rt_data.c */
    const char *cache_dir;  /* NULL: $XDG_CACHE_HOME/cnnc or ~/.cache/cnnc */
    int quiet;
} rt_load_opts;

/* Loads DIR as an image-folder set, a Kaggle Tom & Jerry download (ground_truth.csv), or
 * an IDX set (a folder or file with *-idx3-ubyte[.gz]). Returns 0, or -1 with err set. */
int rt_dataset_load(const char *path, rt_shape shape, const rt_load_opts *opts,
                    rt_dataset *out, char *err);
void rt_dataset_free(rt_dataset *ds);

/* Stratified split by ratios (e.g. 7,2,1) deterministic for seed. An IDX set keeps its own
 * test set and splits the rest by train:val. Index arrays are malloc'ed. */
typedef struct { int *train, *val, *test; int ntrain, nval, ntest; } rt_split;
int rt_split_make(const rt_dataset *ds, const int ratio[3], uint64_t seed, rt_split *out,
                  char *err);
void rt_split_free(rt_split *s);

/* Copies images idx[0..n) to floats in [0,1] (x: [n][c][h][w]) and their labels to y;
 * flip[i] != 0 mirrors image i horizontally (augmentation); flip may be NULL. */
void rt_dataset_batch(const rt_dataset *ds, const int *idx, int n, const uint8_t *flip,
                      float *x, int *y);

/* Decodes one image file to the shape (for --predict). Returns 0, or -1 with err set. */
int rt_image_load(const char *file, rt_shape shape, float *x, char *err);

/* ------------------------------------------------------------------ weights files */

/* Writes params and state with the structure hash, to FILE.tmp then renamed over FILE. */
int rt_weights_save(const char *file, const rt_model *m, char *err);
/* Refuses files of another network, truncated or corrupted files, with a clear message. */
int rt_weights_load(const char *file, rt_model *m, char *err);

/* ------------------------------------------------------------------ training and the CLI */

typedef struct {
    rt_opt_cfg opt;
    int batch, epochs;
    int split[3];
    uint64_t seed;
    int augment_hflip;
    int threads;
} rt_train_cfg;

/* PyTorch-like defaults: adam lr 1e-3, batch 32, 10 epochs, split 7:2:1, seed 1. */
void rt_train_cfg_defaults(rt_train_cfg *c);

/* The command line shared by cnnrun and every generated program: --train, --eval,
 * --predict and their options. make_model builds a model for a batch size and thread
 * count. prog is the program name for messages; defaults come from the .cnn train section.
 * Returns the process exit code (0 ok, 1 input or run error, 2 usage error). */
typedef rt_model *(*rt_model_factory)(void *ctx, int max_batch, int threads, char *err);
int rt_cli_main(int argc, char **argv, const char *prog, const rt_netdesc *d,
                const rt_train_cfg *defaults, rt_model_factory make_model, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
