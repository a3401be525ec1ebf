/*
 * test_frontend.c - Check tests of the cnnc front end through its API (cnn_compile and
 * the stage functions): every layer word and key, the train section, block/repeat/residual
 * expansion, shape inference, and parameter/FLOP counts of the example networks. Every
 * expected number below is worked out by hand in the comments, never copied from cnnc.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetest_fuzz.h"
#include "frontend.h"
#include "ir.h"
#include "layers.h"
#include "shape.h"
#include "emit.h"
#include "rt_memplan.h"

#ifndef CNN_TEST_SRCDIR
#define CNN_TEST_SRCDIR "."
#endif

/* ------------------------------------------------------------------ helpers */

static char errtext[1 << 16]; /* the diagnostics of the last compile */

/* Compiles text under the file name `name`; diagnostics are kept in errtext. */
static int compile_named(const char *name, const char *text, ir_net *net)
{
    FILE *err = tmpfile();
    ck_assert_ptr_nonnull(err);
    int rc = cnn_compile(name, text, strlen(text), net, err);
    rewind(err);
    size_t n = fread(errtext, 1, sizeof errtext - 1, err);
    errtext[n] = '\0';
    fclose(err);
    return rc;
}

static int compile(const char *text, ir_net *net) { return compile_named("t.cnn", text, net); }

/* Compiles text that must be valid. */
static void ok(const char *text, ir_net *net)
{
    int rc = compile(text, net);
    ck_assert_msg(rc == 0, "expected a valid network, got %d errors:\n%s\nfor:\n%s", rc, errtext, text);
    ck_assert_str_eq(errtext, "");
}

/* Compiles text that must fail with a message containing `want`. */
static void bad(const char *text, const char *want)
{
    ir_net net;
    int rc = compile(text, &net);
    ck_assert_msg(rc > 0, "expected errors for:\n%s", text);
    ck_assert_msg(strstr(errtext, want) != NULL, "expected '%s' in:\n%s", want, errtext);
    ir_free(&net);
}

static void example_path(const char *file, char *buf, size_t n)
{
    const char *top = getenv("top_srcdir");
    snprintf(buf, n, "%s/examples/%s", top && *top ? top : CNN_TEST_SRCDIR, file);
}

#define SHAPE_EQ(s, C, H, W)                                                                   \
    do {                                                                                       \
        rt_shape s_ = (s);                                                                     \
        ck_assert_msg(s_.c == (C) && s_.h == (H) && s_.w == (W), "shape %dx%dx%d, want %dx%dx%d", \
                      s_.c, s_.h, s_.w, (C), (H), (W));                                        \
    } while (0)

/* ------------------------------------------------------------------ layer words */

typedef struct {
    const char *word;   /* a layer word or alias */
    const char *args;   /* its arguments */
    rt_kind kind;
    rt_act act;
} word_case;

static const word_case WORDS[] = {
    {"conv", "3x3 4", RT_CONV, RT_ACT_NONE},
    {"conv2d", "3x3 4", RT_CONV, RT_ACT_NONE},
    {"convolution", "3x3 4", RT_CONV, RT_ACT_NONE},
    {"maxpool", "2x2", RT_MAXPOOL, RT_ACT_NONE},
    {"maxpool2d", "2x2", RT_MAXPOOL, RT_ACT_NONE},
    {"max_pool", "2x2", RT_MAXPOOL, RT_ACT_NONE},
    {"avgpool", "2x2", RT_AVGPOOL, RT_ACT_NONE},
    {"avgpool2d", "2x2", RT_AVGPOOL, RT_ACT_NONE},
    {"avg_pool", "2x2", RT_AVGPOOL, RT_ACT_NONE},
    {"globalavgpool", "", RT_GLOBALAVGPOOL, RT_ACT_NONE},
    {"gap", "", RT_GLOBALAVGPOOL, RT_ACT_NONE},
    {"global_avg_pool", "", RT_GLOBALAVGPOOL, RT_ACT_NONE},
    {"globalaveragepool", "", RT_GLOBALAVGPOOL, RT_ACT_NONE},
    {"globalmaxpool", "", RT_GLOBALMAXPOOL, RT_ACT_NONE},
    {"gmp", "", RT_GLOBALMAXPOOL, RT_ACT_NONE},
    {"global_max_pool", "", RT_GLOBALMAXPOOL, RT_ACT_NONE},
    {"flatten", "", RT_FLATTEN, RT_ACT_NONE},
    {"dropout", "0.5", RT_DROPOUT, RT_ACT_NONE},
    {"dense", "5", RT_DENSE, RT_ACT_NONE},
    {"linear", "5", RT_DENSE, RT_ACT_NONE},
    {"fc", "5", RT_DENSE, RT_ACT_NONE},
    {"batchnorm", "", RT_BATCHNORM, RT_ACT_NONE},
    {"bn", "", RT_BATCHNORM, RT_ACT_NONE},
    {"batchnorm2d", "", RT_BATCHNORM, RT_ACT_NONE},
    {"batchnorm1d", "", RT_BATCHNORM, RT_ACT_NONE},
    {"relu", "", RT_ACTIVATION, RT_ACT_RELU},
    {"leakyrelu", "", RT_ACTIVATION, RT_ACT_LEAKYRELU},
    {"leaky_relu", "", RT_ACTIVATION, RT_ACT_LEAKYRELU},
    {"sigmoid", "", RT_ACTIVATION, RT_ACT_SIGMOID},
    {"tanh", "", RT_ACTIVATION, RT_ACT_TANH},
    {"softmax", "", RT_ACTIVATION, RT_ACT_SOFTMAX},
};
enum { NWORDS = sizeof WORDS / sizeof WORDS[0] };

/* Each word compiles to its kind, in the middle of a network (softmax: at its end). */
START_TEST(t_layer_word)
{
    const word_case *w = &WORDS[_i];
    char text[256];
    int at = 1;
    if (w->act == RT_ACT_SOFTMAX) {
        snprintf(text, sizeof text, "input 2x6x6\nflatten\ndense 3\n%s %s\n", w->word, w->args);
        at = 3;
    } else {
        snprintf(text, sizeof text, "input 2x6x6\n%s %s\nflatten\ndense 3\n", w->word, w->args);
    }
    ir_net net;
    ok(text, &net);
    ck_assert_int_eq(net.nodes[at].L.kind, w->kind);
    ck_assert_int_eq(net.nodes[at].L.act, w->act);
    ck_assert_int_eq(net.nodes[at].L.line, at + 1);
    const cnn_layer_info *li = layers_find(w->word);
    ck_assert_ptr_nonnull(li);
    ck_assert_int_eq(li->kind, w->kind);
    ir_free(&net);
}
END_TEST

START_TEST(t_flatten_only)
{
    /* input 2x6x6; flatten -> a vector of 2*6*6 = 72 scores: a valid (if odd) classifier */
    ir_net net;
    ok("input 2x6x6\nflatten\n", &net);
    ck_assert_int_eq(net.n, 2);
    ck_assert_int_eq(net.nodes[0].L.kind, RT_INPUT);
    ck_assert_int_eq(net.nodes[1].L.kind, RT_FLATTEN);
    SHAPE_EQ(net.nodes[1].L.out, 72, 1, 1);
    ir_free(&net);
}
END_TEST

START_TEST(t_unknown_words)
{
    ck_assert_ptr_null(layers_find("conv3d"));
    ck_assert_ptr_null(layers_find("Conv"));      /* words are case-sensitive */
    ck_assert_ptr_null(layers_find(""));
    ck_assert_ptr_null(layers_find("conv2"));     /* no prefix matching of aliases */
    ck_assert_int_eq(layers_act_word("relu"), RT_ACT_RELU);
    ck_assert_int_eq(layers_act_word("leaky_relu"), RT_ACT_LEAKYRELU);
    ck_assert_int_eq(layers_act_word("conv"), RT_ACT_NONE);
    ck_assert_int_eq(layers_act_word("rleu"), RT_ACT_NONE);
    int n;
    const char *const *all = layers_all_words(&n);
    /* 19 canonical names + 18 aliases (the words of src/ops/): the lecture's 15 and 17,
     * then relu6, silu (alias swish), gelu and elu */
    ck_assert_int_eq(n, 37);
    ck_assert_int_eq(layers_act_word("swish"), RT_ACT_SILU);
    ck_assert_int_eq(layers_act_word("gelu"), RT_ACT_GELU);
    ck_assert_ptr_null(all[n]);
    for (int i = 0; i < n; i++) ck_assert_ptr_nonnull(layers_find(all[i]));
}
END_TEST

/* ------------------------------------------------------------------ lexical structure */

START_TEST(t_separators_comments)
{
    ir_net net;
    /* ';' separators, runs of them, comments after statements, blank lines, tabs, CRLF,
     * and no newline at the end of the file (after a comment, too) */
    ok("# a comment line\n\n\n  input 3x8x8 # trailing comment\n;;\n"
       "\tconv\t3x3\t4\trelu ; maxpool 2x2;\r\n"
       "   \n#\nflatten;dense 4 # no final newline", &net);
    ck_assert_int_eq(net.n, 5);
    ck_assert_int_eq(net.nodes[1].L.kind, RT_CONV);
    ck_assert_int_eq(net.nodes[1].L.act, RT_ACT_RELU);
    ck_assert_int_eq(net.nodes[2].L.kind, RT_MAXPOOL);
    ck_assert_int_eq(net.nodes[3].L.kind, RT_FLATTEN);
    ck_assert_int_eq(net.nodes[4].L.kind, RT_DENSE);
    /* source lines are recorded: input on line 4, conv and maxpool on 6, dense on 9 */
    ck_assert_int_eq(net.nodes[0].L.line, 4);
    ck_assert_int_eq(net.nodes[1].L.line, 6);
    ck_assert_int_eq(net.nodes[2].L.line, 6);
    ck_assert_int_eq(net.nodes[4].L.line, 9);
    /* conv 3x3 on 8x8 -> 6x6; maxpool 2x2 -> 3x3; 4*3*3 = 36 */
    SHAPE_EQ(net.nodes[3].L.out, 36, 1, 1);
    ir_free(&net);

    ok("input 3x8x8\nflatten\ndense 4", &net); /* no final newline, no comment */
    ck_assert_int_eq(net.n, 3);
    ir_free(&net);
    ok("input 3x8x8;flatten;dense 4;", &net); /* all on one line */
    ck_assert_int_eq(net.n, 3);
    ir_free(&net);
}
END_TEST

START_TEST(t_numbers)
{
    ir_net net;
    /* 0.5, .5, 5e-1 and 50e-2 are the same dropout probability; 0 is allowed */
    const char *ps[] = {"0.5", ".5", "5e-1", "50E-2", "0.5e0", "0", "0.0", "0.99"};
    const float want[] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.0f, 0.0f, 0.99f};
    for (int i = 0; i < 8; i++) {
        char text[128];
        snprintf(text, sizeof text, "input 1x4x4\nflatten\ndropout %s\ndense 2\n", ps[i]);
        ok(text, &net);
        ck_assert_int_eq(net.nodes[2].L.kind, RT_DROPOUT);
        ck_assert_float_eq_tol(net.nodes[2].L.p, want[i], 1e-6f);
        ir_free(&net);
    }
    /* leading zeros are decimal: 010 is ten */
    ok("input 1x4x4\nflatten\ndense 010\n", &net);
    SHAPE_EQ(net.nodes[2].L.out, 10, 1, 1);
    ir_free(&net);
}
END_TEST

START_TEST(t_network_name)
{
    ir_net net;
    ok("network my_net2\ninput 1x4x4\nflatten\n", &net);
    ck_assert_str_eq(net.name, "my_net2");
    ir_free(&net);
    /* the name can come after the layers */
    ok("input 1x4x4\nflatten\nnetwork late\n", &net);
    ck_assert_str_eq(net.name, "late");
    ir_free(&net);
    /* default: the file name's stem up to the first '.', as a C identifier */
    ck_assert_int_eq(compile_named("some/dir/fashion.cnn", "input 1x4x4\nflatten\n", &net), 0);
    ck_assert_str_eq(net.name, "fashion");
    ir_free(&net);
    ck_assert_int_eq(compile_named("a.b/my-net.v2.cnn", "input 1x4x4\nflatten\n", &net), 0);
    ck_assert_str_eq(net.name, "my_net");
    ir_free(&net);
    ck_assert_int_eq(compile_named("3d.cnn", "input 1x4x4\nflatten\n", &net), 0);
    ck_assert_str_eq(net.name, "n3d");
    ir_free(&net);
    ck_assert_int_eq(compile_named("dir/.cnn", "input 1x4x4\nflatten\n", &net), 0);
    ck_assert_str_eq(net.name, "n");
    ir_free(&net);
    /* 63 characters is the longest name */
    char text[160], name[64];
    memset(name, 'a', 63);
    name[63] = '\0';
    snprintf(text, sizeof text, "network %s\ninput 1x4x4\nflatten\n", name);
    ok(text, &net);
    ck_assert_str_eq(net.name, name);
    ir_free(&net);
    snprintf(text, sizeof text, "network %sa\ninput 1x4x4\nflatten\n", name);
    bad(text, "invalid network name");
    bad("network a\nnetwork b\ninput 1x4x4\nflatten\n", "named twice");
}
END_TEST

/* ------------------------------------------------------------------ activations */

START_TEST(t_trailing_activations)
{
    ir_net net;
    struct { const char *act; rt_act want; float alpha; } cases[] = {
        {"", RT_ACT_NONE, 0.0f},
        {"relu", RT_ACT_RELU, 0.0f},
        {"leakyrelu", RT_ACT_LEAKYRELU, 0.01f},        /* default slope */
        {"leaky_relu", RT_ACT_LEAKYRELU, 0.01f},
        {"leakyrelu=0.2", RT_ACT_LEAKYRELU, 0.2f},
        {"sigmoid", RT_ACT_SIGMOID, 0.0f},
        {"tanh", RT_ACT_TANH, 0.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[200];
        /* on a conv, on a hidden dense and (with keys around it) on the last dense */
        snprintf(text, sizeof text,
                 "input 1x5x5\nconv 3x3 2 %s\nflatten\ndense 6 %s\ndense 3 bias=false %s\n",
                 cases[i].act, cases[i].act, cases[i].act);
        ok(text, &net);
        ck_assert_int_eq(net.n, 5);
        for (int k = 1; k < 5; k += (k == 1 ? 2 : 1)) {
            ck_assert_int_eq(net.nodes[k].L.act, cases[i].want);
            ck_assert_float_eq_tol(net.nodes[k].L.alpha, cases[i].alpha, 1e-7f);
        }
        ir_free(&net);
    }
    /* softmax is allowed on the last dense, and as the last stand-alone layer */
    ok("input 1x5x5\nflatten\ndense 3 softmax\n", &net);
    ck_assert_int_eq(net.nodes[2].L.act, RT_ACT_SOFTMAX);
    ir_free(&net);
    ok("input 1x5x5\nflatten\ndense 3\nsoftmax\n", &net);
    ck_assert_int_eq(net.nodes[3].L.kind, RT_ACTIVATION);
    ck_assert_int_eq(net.nodes[3].L.act, RT_ACT_SOFTMAX);
    ir_free(&net);
    /* the activation may come before keys */
    ok("input 1x5x5\nconv 3x3 2 relu stride=2\nflatten\ndense 3\n", &net);
    ck_assert_int_eq(net.nodes[1].L.act, RT_ACT_RELU);
    ck_assert_int_eq(net.nodes[1].L.sh, 2);
    ir_free(&net);
}
END_TEST

START_TEST(t_standalone_activations)
{
    ir_net net;
    ok("input 1x4x4\nrelu\nleakyrelu\nleakyrelu=0.3\nleaky_relu 0.25\nsigmoid\ntanh\nflatten\n", &net);
    ck_assert_int_eq(net.n, 8);
    rt_act acts[] = {RT_ACT_RELU, RT_ACT_LEAKYRELU, RT_ACT_LEAKYRELU, RT_ACT_LEAKYRELU, RT_ACT_SIGMOID, RT_ACT_TANH};
    float alphas[] = {0.0f, 0.01f, 0.3f, 0.25f, 0.0f, 0.0f};
    for (int i = 0; i < 6; i++) {
        const rt_layer *L = &net.nodes[1 + i].L;
        ck_assert_int_eq(L->kind, RT_ACTIVATION);
        ck_assert_int_eq(L->act, acts[i]);
        ck_assert_float_eq_tol(L->alpha, alphas[i], 1e-7f);
        SHAPE_EQ(L->out, 1, 4, 4);
        ck_assert_int_eq(net.nodes[1 + i].params, 0);
        ck_assert(net.nodes[1 + i].flops == 16.0); /* one per element of 1x4x4 */
    }
    ir_free(&net);
}
END_TEST

/* ------------------------------------------------------------------ keys */

START_TEST(t_conv_keys)
{
    ir_net net;
    /* defaults: stride 1, no padding, zero padding mode, bias, correlation */
    ok("input 2x9x9\nconv 3x3 4\nflatten\n", &net);
    const rt_layer *L = &net.nodes[1].L;
    ck_assert_int_eq(L->kh, 3);
    ck_assert_int_eq(L->kw, 3);
    ck_assert_int_eq(L->sh, 1);
    ck_assert_int_eq(L->sw, 1);
    ck_assert_int_eq(L->pt + L->pb + L->pl + L->pr, 0);
    ck_assert_int_eq(L->padmode, RT_PAD_ZERO);
    ck_assert_int_eq(L->bias, 1);
    ck_assert_int_eq(L->flip, 0);
    SHAPE_EQ(L->out, 4, 7, 7);
    ir_free(&net);

    /* a square kernel given as one number; stride as one number and as SHxSW */
    ok("input 2x9x9\nconv 3 4 stride=2\nconv 1x3 4 stride=1x2\nflatten\n", &net);
    L = &net.nodes[1].L;
    ck_assert_int_eq(L->kh, 3);
    ck_assert_int_eq(L->kw, 3);
    ck_assert_int_eq(L->sh, 2);
    ck_assert_int_eq(L->sw, 2);
    SHAPE_EQ(L->out, 4, 4, 4);          /* floor((9-3)/2)+1 = 4 */
    L = &net.nodes[2].L;
    ck_assert_int_eq(L->kh, 1);
    ck_assert_int_eq(L->kw, 3);
    ck_assert_int_eq(L->sh, 1);
    ck_assert_int_eq(L->sw, 2);
    SHAPE_EQ(L->out, 4, 4, 1);          /* h: 4-1+1 = 4; w: floor((4-3)/2)+1 = 1 */
    ir_free(&net);

    /* pad=P, pad=PHxPW, pad=valid, pad=same */
    ok("input 1x6x6\nconv 3x3 1 pad=2\nconv 3x3 1 pad=1x0\nconv 3x3 1 pad=valid\nconv 3x3 1 pad=same\nflatten\n",
       &net);
    L = &net.nodes[1].L;
    ck_assert(L->pt == 2 && L->pb == 2 && L->pl == 2 && L->pr == 2);
    SHAPE_EQ(L->out, 1, 8, 8);          /* 6+4-3+1 = 8 */
    L = &net.nodes[2].L;
    ck_assert(L->pt == 1 && L->pb == 1 && L->pl == 0 && L->pr == 0);
    SHAPE_EQ(L->out, 1, 8, 6);          /* h: 8+2-3+1 = 8; w: 8-3+1 = 6 */
    L = &net.nodes[3].L;
    ck_assert_int_eq(L->pt + L->pb + L->pl + L->pr, 0);
    SHAPE_EQ(L->out, 1, 6, 4);
    L = &net.nodes[4].L;
    ck_assert(L->pt == 1 && L->pb == 1 && L->pl == 1 && L->pr == 1);
    SHAPE_EQ(L->out, 1, 6, 4);
    ir_free(&net);

    /* padding modes */
    const char *modes[] = {"zero", "reflect", "replicate", "circular"};
    rt_padmode pm[] = {RT_PAD_ZERO, RT_PAD_REFLECT, RT_PAD_REPLICATE, RT_PAD_CIRCULAR};
    for (int i = 0; i < 4; i++) {
        char text[128];
        snprintf(text, sizeof text, "input 1x6x6\nconv 3x3 2 pad=1 padding=%s\nflatten\n", modes[i]);
        ok(text, &net);
        ck_assert_int_eq(net.nodes[1].L.padmode, pm[i]);
        SHAPE_EQ(net.nodes[1].L.out, 2, 6, 6);
        ir_free(&net);
    }

    /* bias and mode */
    ok("input 1x6x6\nconv 3x3 2 bias=false mode=convolution\nconv 3x3 2 bias=true mode=correlation\nflatten\n",
       &net);
    ck_assert_int_eq(net.nodes[1].L.bias, 0);
    ck_assert_int_eq(net.nodes[1].L.flip, 1);
    ck_assert_int_eq(net.nodes[1].L.b_len, 0);
    ck_assert_int_eq(net.nodes[1].params, 18);      /* 2*1*3*3, no bias */
    ck_assert_int_eq(net.nodes[2].L.bias, 1);
    ck_assert_int_eq(net.nodes[2].L.flip, 0);
    ck_assert_int_eq(net.nodes[2].params, 38);      /* 2*2*3*3 + 2 */
    ir_free(&net);
}
END_TEST

START_TEST(t_pool_keys)
{
    ir_net net;
    /* default stride = window, also for a non-square window: 3x2 on 9x8 -> 3x4 */
    ok("input 2x9x8\nmaxpool 3x2\nflatten\n", &net);
    const rt_layer *L = &net.nodes[1].L;
    ck_assert_int_eq(L->sh, 3);
    ck_assert_int_eq(L->sw, 2);
    SHAPE_EQ(L->out, 2, 3, 4);
    ck_assert_int_eq(L->bias, 0);
    ck_assert_int_eq(net.nodes[1].params, 0);
    ir_free(&net);

    /* explicit stride, overlapping windows: 3x3 stride 2 on 9x9 -> 4x4 */
    ok("input 2x9x9\navgpool 3 stride=2\nflatten\n", &net);
    L = &net.nodes[1].L;
    ck_assert_int_eq(L->kind, RT_AVGPOOL);
    ck_assert(L->kh == 3 && L->kw == 3 && L->sh == 2 && L->sw == 2);
    SHAPE_EQ(L->out, 2, 4, 4);
    ir_free(&net);

    /* stride=1x2, pad=1, pad=1x0, pad=same, pad=valid */
    ok("input 1x8x8\nmaxpool 3x3 stride=1x2 pad=1\nflatten\n", &net);
    L = &net.nodes[1].L;
    ck_assert(L->sh == 1 && L->sw == 2 && L->pt == 1 && L->pl == 1);
    SHAPE_EQ(L->out, 1, 8, 4);          /* h: 8+2-3+1 = 8; w: floor((8+2-3)/2)+1 = 4 */
    ir_free(&net);
    ok("input 1x8x8\navgpool 2x2 pad=1x0\nflatten\n", &net);
    L = &net.nodes[1].L;
    ck_assert(L->pt == 1 && L->pb == 1 && L->pl == 0 && L->pr == 0);
    SHAPE_EQ(L->out, 1, 5, 4);          /* h: floor((8+2-2)/2)+1 = 5; w: 4 */
    ir_free(&net);
    ok("input 1x7x7\nmaxpool 2x2 pad=same\nflatten\n", &net);
    L = &net.nodes[1].L;
    /* ceil(7/2) = 4; total padding (4-1)*2+2-7 = 1: 0 before, 1 after */
    ck_assert(L->pt == 0 && L->pb == 1 && L->pl == 0 && L->pr == 1);
    SHAPE_EQ(L->out, 1, 4, 4);
    ir_free(&net);
    ok("input 1x7x7\nmaxpool 2x2 pad=valid\nflatten\n", &net);
    SHAPE_EQ(net.nodes[1].L.out, 1, 3, 3); /* floor(7/2) */
    ir_free(&net);
}
END_TEST

START_TEST(t_batchnorm_keys)
{
    ir_net net;
    ok("input 3x4x4\nbatchnorm\nbn eps=0.001 momentum=0.5\nbatchnorm momentum=1\nflatten\n", &net);
    const rt_layer *L = &net.nodes[1].L;
    ck_assert_float_eq_tol(L->eps, 1e-5f, 1e-10f);          /* PyTorch's defaults */
    ck_assert_float_eq_tol(L->momentum, 0.1f, 1e-7f);
    ck_assert_int_eq(L->w_len, 3);                         /* gamma */
    ck_assert_int_eq(L->b_len, 3);                         /* beta */
    ck_assert_int_eq(L->s_len, 6);                         /* running mean and variance */
    ck_assert_int_eq(net.nodes[1].params, 6);
    ck_assert(net.nodes[1].flops == 2.0 * 48);              /* scale and shift per element */
    SHAPE_EQ(L->out, 3, 4, 4);
    L = &net.nodes[2].L;
    ck_assert_float_eq_tol(L->eps, 1e-3f, 1e-9f);
    ck_assert_float_eq_tol(L->momentum, 0.5f, 1e-7f);
    ck_assert_float_eq_tol(net.nodes[3].L.momentum, 1.0f, 1e-7f);
    /* state offsets follow each other: 0, 6, 12 */
    ck_assert_int_eq(net.nodes[1].L.s_off, 0);
    ck_assert_int_eq(net.nodes[2].L.s_off, 6);
    ck_assert_int_eq(net.nodes[3].L.s_off, 12);
    ir_free(&net);
    /* batchnorm1d after a dense: one channel per unit */
    ok("input 3x4x4\nflatten\ndense 5\nbatchnorm1d\n", &net);
    ck_assert_int_eq(net.nodes[3].params, 10);
    ir_free(&net);
}
END_TEST

START_TEST(t_dense_dropout)
{
    ir_net net;
    ok("input 2x3x4\ndense 5 bias=false\ndense 3 bias=true\ndropout 0.25\n", &net);
    /* dense on a 2x3x4 input flattens it implicitly: 24 inputs */
    ck_assert_int_eq(net.nodes[1].L.w_len, 5 * 24);
    ck_assert_int_eq(net.nodes[1].L.b_len, 0);
    ck_assert_int_eq(net.nodes[1].params, 120);
    ck_assert(net.nodes[1].flops == 2.0 * 24 * 5);
    ck_assert_int_eq(net.nodes[2].params, 5 * 3 + 3);
    ck_assert(net.nodes[2].flops == 2.0 * 5 * 3 + 3);
    ck_assert_int_eq(net.nodes[3].L.kind, RT_DROPOUT);
    ck_assert_float_eq_tol(net.nodes[3].L.p, 0.25f, 1e-7f);
    ck_assert_int_eq(net.nodes[3].params, 0);
    ck_assert(net.nodes[3].flops == 0.0);
    SHAPE_EQ(net.nodes[3].L.out, 3, 1, 1);
    ir_free(&net);
}
END_TEST

/* ------------------------------------------------------------------ train section */

START_TEST(t_train_defaults)
{
    ir_net net;
    /* no train section: the defaults documented in cnnrt.h */
    ok("input 1x4x4\nflatten\n", &net);
    ck_assert_int_eq(net.has_train, 0);
    ck_assert_int_eq(net.train.opt.kind, RT_OPT_ADAM);
    ck_assert_float_eq_tol(net.train.opt.lr, 1e-3f, 1e-9f);
    ck_assert_int_eq(net.train.batch, 32);
    ck_assert_int_eq(net.train.epochs, 10);
    ck_assert(net.train.split[0] == 7 && net.train.split[1] == 2 && net.train.split[2] == 1);
    ck_assert(net.train.seed == 1);
    ir_free(&net);
}
END_TEST

START_TEST(t_train_settings)
{
    ir_net net;
    ok("input 1x4x4\nflatten\n"
       "train {\n"
       "  optimizer sgd lr=0.05 momentum=0.9 weight_decay=0.0005\n"
       "  batch 16; epochs 3\n"
       "  split 8:1:0\n"
       "  seed 42\n"
       "  augment hflip\n"
       "  loss cross_entropy\n"
       "  threads 2\n"
       "}\n", &net);
    ck_assert_int_eq(net.has_train, 1);
    ck_assert_int_eq(net.train.opt.kind, RT_OPT_SGD);
    ck_assert_float_eq_tol(net.train.opt.lr, 0.05f, 1e-7f);
    ck_assert_float_eq_tol(net.train.opt.momentum, 0.9f, 1e-7f);
    ck_assert_float_eq_tol(net.train.opt.weight_decay, 0.0005f, 1e-9f);
    ck_assert_int_eq(net.train.batch, 16);
    ck_assert_int_eq(net.train.epochs, 3);
    ck_assert(net.train.split[0] == 8 && net.train.split[1] == 1 && net.train.split[2] == 0);
    ck_assert(net.train.seed == 42);
    ck_assert_int_eq(net.train.augment.hflip, 1);
    ck_assert_int_eq(net.train.threads, 2);
    ir_free(&net);

    /* adam; augment none; the section may come first and be on one line; seed 0 */
    ok("train { optimizer adam lr=0.01; augment none; seed 0 }\ninput 1x4x4\nflatten\n", &net);
    ck_assert_int_eq(net.train.opt.kind, RT_OPT_ADAM);
    ck_assert_float_eq_tol(net.train.opt.lr, 0.01f, 1e-8f);
    ck_assert_int_eq(net.train.augment.hflip, 0);
    ck_assert(net.train.seed == 0);
    ck_assert_int_eq(net.train.batch, 32);  /* untouched settings keep their defaults */
    ir_free(&net);

    /* the words shared with the command line (rt_train_words.c) */
    ok("input 1x4x4\nflatten\ntrain {\n"
       "  optimizer adamw lr=0.002 beta1=0.8 beta2=0.99\n"
       "  schedule step every=3 gamma=0.5 warmup=2\n"
       "  stop patience=4\n  clip norm=2.5\n  loss cross_entropy smoothing=0.1\n"
       "  augment hflip vflip crop=4 rotate=10 scale=0.1 jitter=0.2\n}\n", &net);
    ck_assert_int_eq(net.train.opt.kind, RT_OPT_ADAMW);
    ck_assert_float_eq_tol(net.train.opt.weight_decay, 0.01f, 1e-9f); /* adamw's default */
    ck_assert_float_eq_tol(net.train.opt.beta1, 0.8f, 1e-9f);
    ck_assert_float_eq_tol(net.train.opt.beta2, 0.99f, 1e-9f);
    ck_assert_int_eq(net.train.schedule.kind, RT_SCHED_STEP);
    ck_assert_int_eq(net.train.schedule.every, 3);
    ck_assert_float_eq_tol(net.train.schedule.gamma, 0.5f, 1e-9f);
    ck_assert_int_eq(net.train.schedule.warmup, 2);
    ck_assert_int_eq(net.train.stop_patience, 4);
    ck_assert_float_eq_tol(net.train.clip_norm, 2.5f, 1e-9f);
    ck_assert_float_eq_tol(net.train.label_smoothing, 0.1f, 1e-9f);
    ck_assert(net.train.augment.hflip && net.train.augment.vflip && net.train.augment.crop == 4);
    ck_assert_float_eq_tol(net.train.augment.rotate, 10.0f, 1e-9f);
    ck_assert_float_eq_tol(net.train.augment.scale, 0.1f, 1e-9f);
    ck_assert_float_eq_tol(net.train.augment.jitter, 0.2f, 1e-9f);
    ir_free(&net);
    ok("input 1x4x4\nflatten\ntrain {\n  optimizer sgd momentum=0.9 nesterov weight_decay=0\n"
       "  schedule plateau patience=2 factor=0.5\n}\n", &net);
    ck_assert_int_eq(net.train.opt.nesterov, 1);
    ck_assert_float_eq_tol(net.train.opt.weight_decay, 0.0f, 1e-9f);
    ck_assert_int_eq(net.train.schedule.kind, RT_SCHED_PLATEAU);
    ck_assert_int_eq(net.train.schedule.patience, 2);
    ck_assert_float_eq_tol(net.train.schedule.factor, 0.5f, 1e-9f);
    ir_free(&net);
    ok("input 1x4x4\nflatten\ntrain { optimizer adamw weight_decay=0.05; schedule cosine }\n", &net);
    ck_assert_float_eq_tol(net.train.opt.weight_decay, 0.05f, 1e-9f);
    ck_assert_int_eq(net.train.schedule.kind, RT_SCHED_COSINE);
    ir_free(&net);

    /* an empty section is allowed */
    ok("input 1x4x4\nflatten\ntrain {\n}\n", &net);
    ck_assert_int_eq(net.has_train, 1);
    ir_free(&net);

    bad("input 1x4x4\nflatten\ntrain { epoch 3 }\n", "did you mean 'epochs'?");
    bad("input 1x4x4\nflatten\ntrain { optimizer rmsprop }\n", "optimizer: 'rmsprop' is not valid; "
        "expected sgd, adam or adamw");
    bad("input 1x4x4\nflatten\ntrain { split 7:2 }\n", "invalid split '7:2'");
    bad("input 1x4x4\nflatten\ntrain { batch 0 }\n", "from 1 to 65536");
    bad("input 1x4x4\nflatten\ntrain { batch 2 }\ntrain { batch 4 }\n", "a second train section");
}
END_TEST

/* ------------------------------------------------------------------ expansion */

START_TEST(t_block_params)
{
    ir_net net;
    /* vgg(c): two same-padded 3x3 convolutions with c channels and a 2x2 max pool */
    ok("block vgg(c) {\n"
       "  conv 3x3 c relu pad=same\n"
       "  conv 3x3 c relu pad=same\n"
       "  maxpool 2x2\n"
       "}\n"
       "input 3x32x32\n"
       "vgg(16)\n"
       "vgg(32)\n"
       "globalavgpool\n"
       "dense 10\n", &net);
    ck_assert_int_eq(net.n, 1 + 3 + 3 + 2);
    rt_kind kinds[] = {RT_INPUT, RT_CONV, RT_CONV, RT_MAXPOOL, RT_CONV, RT_CONV, RT_MAXPOOL,
                       RT_GLOBALAVGPOOL, RT_DENSE};
    int chans[] = {3, 16, 16, 16, 32, 32, 32, 32, 10};
    int sizes[] = {32, 32, 32, 16, 16, 16, 8, 1, 1};
    for (int i = 0; i < net.n; i++) {
        ck_assert_int_eq(net.nodes[i].L.kind, kinds[i]);
        SHAPE_EQ(net.nodes[i].L.out, chans[i], sizes[i], sizes[i]);
        ck_assert_int_eq(net.nodes[i].L.src, i - 1);
    }
    /* parameters: 3*16*9+16 = 448; 16*16*9+16 = 2320; 16*32*9+32 = 4640; 32*32*9+32 = 9248;
     * dense 32*10+10 = 330; total 16986 */
    long params[] = {0, 448, 2320, 0, 4640, 9248, 0, 0, 330};
    for (int i = 0; i < net.n; i++) ck_assert_int_eq(net.nodes[i].params, params[i]);
    ck_assert_int_eq(net.total_params, 16986);
    /* the layers know the source line they came from (the block body) */
    ck_assert_int_eq(net.nodes[1].L.line, 2);
    ck_assert_int_eq(net.nodes[3].L.line, 4);
    ck_assert_int_eq(net.nodes[4].L.line, 2);
    ir_free(&net);

    /* several parameters of different kinds: a size, a count, an activation word */
    ok("block c(k, n, a) { conv k n a pad=same }\ninput 1x8x8\nc(5x5, 7, tanh)\nc(3, 2, relu)\nflatten\n",
       &net);
    ck_assert_int_eq(net.n, 4);
    ck_assert(net.nodes[1].L.kh == 5 && net.nodes[1].L.kw == 5);
    ck_assert_int_eq(net.nodes[1].L.act, RT_ACT_TANH);
    SHAPE_EQ(net.nodes[1].L.out, 7, 8, 8);
    ck_assert(net.nodes[2].L.kh == 3 && net.nodes[2].L.kw == 3);
    ck_assert_int_eq(net.nodes[2].L.act, RT_ACT_RELU);
    SHAPE_EQ(net.nodes[2].L.out, 2, 8, 8);
    ir_free(&net);
}
END_TEST

START_TEST(t_block_zero_and_order)
{
    ir_net net;
    /* a block with no parameters, called with and without parentheses, used before it is
     * defined; a block calling another block with its own parameter */
    ok("input 1x8x8\n"
       "stem()\n"
       "stem\n"
       "pair(3)\n"
       "flatten\n"
       "block stem() { relu; tanh }\n"
       "block one(c) { conv 1x1 c }\n"
       "block pair(c) { one(c); one(c) }\n", &net);
    rt_kind kinds[] = {RT_INPUT, RT_ACTIVATION, RT_ACTIVATION, RT_ACTIVATION, RT_ACTIVATION,
                       RT_CONV, RT_CONV, RT_FLATTEN};
    ck_assert_int_eq(net.n, 8);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(net.nodes[i].L.kind, kinds[i]);
    ck_assert_int_eq(net.nodes[1].L.act, RT_ACT_RELU);
    ck_assert_int_eq(net.nodes[2].L.act, RT_ACT_TANH);
    SHAPE_EQ(net.nodes[5].L.out, 3, 8, 8);
    SHAPE_EQ(net.nodes[6].L.out, 3, 8, 8);
    SHAPE_EQ(net.nodes[7].L.out, 192, 1, 1);
    /* 1x1 conv 1->3: 3+3 = 6; 3->3: 9+3 = 12 */
    ck_assert_int_eq(net.total_params, 18);
    ir_free(&net);

    /* parameters of an outer block are not visible in a block it calls */
    bad("block outer(c) { inner() }\nblock inner() { conv 3x3 c }\ninput 1x8x8\nouter(4)\nflatten\n",
        "must be a whole number");
}
END_TEST

START_TEST(t_repeat)
{
    ir_net net;
    ok("input 2x8x8\nrepeat 3 { conv 3x3 2 pad=same relu }\nflatten\n", &net);
    ck_assert_int_eq(net.n, 5);
    for (int i = 1; i <= 3; i++) {
        ck_assert_int_eq(net.nodes[i].L.kind, RT_CONV);
        ck_assert_int_eq(net.nodes[i].L.src, i - 1);
        SHAPE_EQ(net.nodes[i].L.out, 2, 8, 8);
        ck_assert_int_eq(net.nodes[i].params, 2 * 2 * 9 + 2);
    }
    ir_free(&net);

    /* repeat 1, and nested repeats: 2 * (1 + 3) = 8 layers */
    ok("input 1x4x4\nrepeat 1 { relu }\nrepeat 2 { tanh; repeat 3 { sigmoid } }\nflatten\n", &net);
    ck_assert_int_eq(net.n, 1 + 1 + 8 + 1);
    rt_act acts[] = {RT_ACT_RELU, RT_ACT_TANH, RT_ACT_SIGMOID, RT_ACT_SIGMOID, RT_ACT_SIGMOID,
                     RT_ACT_TANH, RT_ACT_SIGMOID, RT_ACT_SIGMOID, RT_ACT_SIGMOID};
    for (int i = 0; i < 9; i++) ck_assert_int_eq(net.nodes[1 + i].L.act, acts[i]);
    ir_free(&net);

    /* a repeat inside a block, with the count a block parameter, nested in another repeat */
    ok("block b(c, n) { repeat n { conv 1x1 c } }\ninput 1x4x4\nrepeat 2 { b(5, 2) }\nb(6, 1)\nflatten\n",
       &net);
    ck_assert_int_eq(net.n, 1 + 4 + 1 + 1);
    int chans[] = {1, 5, 5, 5, 5, 6, 96};
    for (int i = 0; i < net.n; i++) ck_assert_int_eq(net.nodes[i].L.out.c, chans[i]);
    /* 1->5: 5+5 = 10; 5->5: 25+5 = 30 (three of them); 5->6: 30+6 = 36; total 136 */
    ck_assert_int_eq(net.total_params, 136);
    ir_free(&net);
}
END_TEST

START_TEST(t_residual)
{
    ir_net net;
    ok("input 4x8x8\n"
       "conv 3x3 4 pad=same\n"
       "residual {\n"
       "  conv 3x3 4 pad=same relu\n"
       "  conv 3x3 4 pad=same\n"
       "}\n"
       "relu\n"
       "flatten\n", &net);
    ck_assert_int_eq(net.n, 7);
    const rt_layer *add = &net.nodes[4].L;
    ck_assert_int_eq(add->kind, RT_ADD);
    ck_assert_int_eq(add->src2, 1);     /* the node before the residual */
    ck_assert_int_eq(add->src, 3);      /* the body's last node */
    ck_assert_int_eq(net.nodes[2].L.src, 1);
    SHAPE_EQ(add->out, 4, 8, 8);
    ck_assert_int_eq(net.nodes[4].params, 0);
    ck_assert(net.nodes[4].flops == 256.0);        /* one add per element of 4x8x8 */
    ck_assert_int_eq(add->line, 3);
    ck_assert_int_eq(net.nodes[5].L.src, 4);
    for (int i = 0; i < net.n; i++)
        if (i != 4) ck_assert_int_eq(net.nodes[i].L.src2, -1);
    ir_free(&net);

    /* residual directly after the input, nested residuals, residual in a repeated block */
    ok("block unit(c) { residual { conv 1x1 c; residual { relu } } }\n"
       "input 2x4x4\n"
       "residual { tanh }\n"
       "repeat 2 { unit(2) }\n"
       "flatten\n", &net);
    /* 0 input, 1 tanh, 2 add(1,0), then per unit: conv, relu, add(relu, conv), add(inner, before) */
    ck_assert_int_eq(net.n, 3 + 4 + 4 + 1);
    ck_assert_int_eq(net.nodes[2].L.kind, RT_ADD);
    ck_assert(net.nodes[2].L.src == 1 && net.nodes[2].L.src2 == 0);
    for (int u = 0; u < 2; u++) {
        int b = 3 + 4 * u;   /* first node of unit u; the node before it is b - 1 */
        ck_assert_int_eq(net.nodes[b].L.kind, RT_CONV);
        ck_assert_int_eq(net.nodes[b + 1].L.kind, RT_ACTIVATION);
        ck_assert_int_eq(net.nodes[b + 2].L.kind, RT_ADD);
        ck_assert(net.nodes[b + 2].L.src == b + 1 && net.nodes[b + 2].L.src2 == b);
        ck_assert_int_eq(net.nodes[b + 3].L.kind, RT_ADD);
        ck_assert(net.nodes[b + 3].L.src == b + 2 && net.nodes[b + 3].L.src2 == b - 1);
    }
    ir_free(&net);

    bad("input 3x8x8\nresidual { conv 3x3 8 }\nflatten\n",
        "residual body turns 3x8x8 into 8x6x6");
}
END_TEST

START_TEST(t_resnet_tiny)
{
    /* examples/resnet_tiny.cnn: stem, unit(16), stage(32), stage(64), head */
    char path[1024];
    example_path("resnet_tiny.cnn", path, sizeof path);
    ir_net net;
    int rc = cnn_compile(path, NULL, 0, &net, stderr);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(net.name, "resnet_tiny");
    /* layers: input 1, stem 3, unit 7, stage = 3 + 2 units * 7 = 17 (twice), head 4: 49 */
    ck_assert_int_eq(net.n, 49);
    ck_assert_int_eq(net.nodes[1].L.padmode, RT_PAD_REFLECT);
    ck_assert_int_eq(net.nodes[4].L.padmode, RT_PAD_REPLICATE);
    ck_assert_int_eq(net.nodes[9].L.kind, RT_ADD);
    ck_assert_int_eq(net.nodes[9].L.src2, 3);
    ck_assert_int_eq(net.nodes[13].L.act, RT_ACT_LEAKYRELU);
    ck_assert_float_eq_tol(net.nodes[13].L.alpha, 0.1f, 1e-7f);
    /* parameters (convolutions have no bias):
     *   stem conv 16*3*9 = 432, bn 2*16 = 32
     *   unit(16): 2 * (16*16*9 + 32) = 4672
     *   stage(32): 32*16*9 + 64 = 4672; 2 units * 2 * (32*32*9 + 64) = 37120
     *   stage(64): 64*32*9 + 128 = 18560; 2 units * 2 * (64*64*9 + 128) = 147968
     *   dense 64*4 + 4 = 260
     *   total 432+32+4672+4672+37120+18560+147968+260 = 213716 */
    ck_assert_int_eq(net.total_params, 213716);
    /* FLOPs:
     *   stem: conv 2*27*16*64*64 = 3538944, bn 2*65536, relu 65536
     *   unit(16) at 16x64x64 (65536 elements): 2 convs 2*144*65536 = 18874368 each,
     *     2 bn 131072 each, relu + add + relu 3*65536: 38207488
     *   stage(32) at 32x32x32 (32768): conv stride 2: 2*144*32768 = 9437184, bn 65536,
     *     leakyrelu 32768; 2 units of 2*18874368 + 2*65536 + 3*32768 = 37978112: 85491712
     *   stage(64) at 64x16x16 (16384): conv 2*288*16384 = 9437184, bn 32768, leaky 16384;
     *     2 units of 2*(2*576*16384) + 2*32768 + 3*16384 = 37863424: 85213184
     *   avgpool 2x2 -> 64x8x8: 4*4096 = 16384; globalmaxpool 64*64 = 4096; dense 2*64*4+4 = 516
     *   total 3538944+131072+65536+38207488+85491712+85213184+16384+4096+516 = 212668932 */
    ck_assert(net.total_flops == 212668932.0);
    ir_free(&net);
}
END_TEST

/* ------------------------------------------------------------------ shape rules */

START_TEST(t_shape_functions)
{
    /* the lecture: 3x3 input, 2x2 kernel -> 2x2 */
    ck_assert_int_eq(shape_out_size(3, 2, 0, 1), 2);
    /* one pixel of padding on each side (total 2) -> 4x4 */
    ck_assert_int_eq(shape_out_size(3, 2, 2, 1), 4);
    /* with stride 3 (rows) and 2 (columns): floor((3-2+2+3)/3) = 2, floor((3-2+2+2)/2) = 2 */
    ck_assert_int_eq(shape_out_size(3, 2, 2, 3), 2);
    ck_assert_int_eq(shape_out_size(3, 2, 2, 2), 2);
    /* floor rounding: maxpool 2 on 63 -> 31; conv 3 stride 2 on 8 -> floor(5/2)+1 = 3 */
    ck_assert_int_eq(shape_out_size(63, 2, 0, 2), 31);
    ck_assert_int_eq(shape_out_size(8, 3, 0, 2), 3);
    ck_assert_int_eq(shape_out_size(128, 3, 0, 1), 126);
    /* kernel = input -> 1; larger -> 0 */
    ck_assert_int_eq(shape_out_size(5, 5, 0, 1), 1);
    ck_assert_int_eq(shape_out_size(4, 5, 0, 1), 0);

    /* same: output ceil(n/s); total padding (out-1)*s + k - n, the odd pixel after */
    int b, a;
    shape_same_pad(8, 4, 1, &b, &a);    /* out 8, total 7+4-8 = 3 */
    ck_assert(b == 1 && a == 2);
    shape_same_pad(7, 3, 2, &b, &a);    /* out 4, total 6+3-7 = 2 */
    ck_assert(b == 1 && a == 1);
    shape_same_pad(8, 3, 2, &b, &a);    /* out 4, total 6+3-8 = 1 */
    ck_assert(b == 0 && a == 1);
    shape_same_pad(28, 3, 1, &b, &a);   /* total 2 */
    ck_assert(b == 1 && a == 1);
    shape_same_pad(8, 1, 2, &b, &a);    /* out 4, total 6+1-8 < 0 -> 0 */
    ck_assert(b == 0 && a == 0);
    shape_same_pad(5, 5, 1, &b, &a);    /* total 4 */
    ck_assert(b == 2 && a == 2);
}
END_TEST

START_TEST(t_shape_lecture)
{
    ir_net net;
    ok("input 1x3x3\nconv 2x2 1\nflatten\n", &net);
    SHAPE_EQ(net.nodes[1].L.out, 1, 2, 2);
    ir_free(&net);
    ok("input 1x3x3\nconv 2x2 1 pad=1\nflatten\n", &net);
    SHAPE_EQ(net.nodes[1].L.out, 1, 4, 4);
    ir_free(&net);
    ok("input 1x3x3\nconv 2x2 1 pad=1 stride=3x2\nflatten\n", &net);
    SHAPE_EQ(net.nodes[1].L.out, 1, 2, 2);
    ck_assert(net.nodes[1].L.sh == 3 && net.nodes[1].L.sw == 2);
    ir_free(&net);
}
END_TEST

START_TEST(t_shape_same)
{
    ir_net net;
    /* n=8, k=4, s=1: out 8, padding 1 before, 2 after; n=7, k=3, s=2 -> 4 with 1/1 */
    ok("input 1x8x7\nconv 4x3 2 pad=same stride=1x2\nflatten\n", &net);
    const rt_layer *L = &net.nodes[1].L;
    ck_assert_int_eq(L->pt, 1);
    ck_assert_int_eq(L->pb, 2);
    ck_assert_int_eq(L->pl, 1);
    ck_assert_int_eq(L->pr, 1);
    SHAPE_EQ(L->out, 2, 8, 4);
    ir_free(&net);
    /* n=8, k=3, s=2: out 4, 0 before, 1 after (both directions) */
    ok("input 1x8x8\nconv 3x3 1 stride=2 pad=same\nflatten\n", &net);
    L = &net.nodes[1].L;
    ck_assert(L->pt == 0 && L->pb == 1 && L->pl == 0 && L->pr == 1);
    SHAPE_EQ(L->out, 1, 4, 4);
    ir_free(&net);
    /* a kernel larger than the input is fine with same padding: 5x5 on 3x3 pads 2/2 */
    ok("input 1x3x3\nconv 5x5 1 pad=same\nflatten\n", &net);
    L = &net.nodes[1].L;
    ck_assert(L->pt == 2 && L->pb == 2);
    SHAPE_EQ(L->out, 1, 3, 3);
    ir_free(&net);
}
END_TEST

START_TEST(t_shape_floor)
{
    ir_net net;
    /* maxpool 2x2 on 63 -> 31; conv 3x3 stride 2 on 8 -> 3; global pools -> Cx1x1 */
    ok("input 2x63x8\nmaxpool 2x2\nconv 3x3 3 stride=2\nglobalmaxpool\n", &net);
    SHAPE_EQ(net.nodes[1].L.out, 2, 31, 4);
    /* h: floor((31-3)/2)+1 = 15; w: 4-3 = 1 -> floor(1/2)+1 = 1 */
    SHAPE_EQ(net.nodes[2].L.out, 3, 15, 1);
    SHAPE_EQ(net.nodes[3].L.out, 3, 1, 1);
    ck_assert(net.nodes[3].flops == 45.0); /* one per input element: 3*15*1 */
    ir_free(&net);
    /* PHxPW padding: 3x3 kernel with pad=2x0 on 5x5: h 5+4-3+1 = 7, w 5-3+1 = 3 */
    ok("input 1x5x5\nconv 3x3 1 pad=2x0\nflatten\n", &net);
    SHAPE_EQ(net.nodes[1].L.out, 1, 7, 3);
    ck_assert(net.nodes[1].L.pt == 2 && net.nodes[1].L.pb == 2 && net.nodes[1].L.pl == 0 && net.nodes[1].L.pr == 0);
    ir_free(&net);
    /* kernel equal to its input gives 1x1 and ends the network as a vector */
    ok("input 3x5x5\nconv 5x5 4\n", &net);
    SHAPE_EQ(net.nodes[1].L.out, 4, 1, 1);
    ir_free(&net);
    /* the input layer's in and out are the input shape */
    ok("input 3x5x7\nflatten\n", &net);
    SHAPE_EQ(net.nodes[0].L.in, 3, 5, 7);
    SHAPE_EQ(net.nodes[0].L.out, 3, 5, 7);
    SHAPE_EQ(net.nodes[1].L.in, 3, 5, 7);
    SHAPE_EQ(net.nodes[1].L.out, 105, 1, 1);
    ir_free(&net);
}
END_TEST

START_TEST(t_shape_errors)
{
    bad("input 3x8x8\nconv 9x9 16\nflatten\n", "the 9x9 window is larger than its 8x8 input");
    /* the note names the layer that shrank the input */
    bad("input 3x16x16\nmaxpool 2x2\nmaxpool 2x2\nconv 5x5 8\nflatten\n", "the size became 4x4 here");
    bad("input 1x4x4\nconv 3x3 1 pad=4 padding=reflect\nflatten\n", "reflect padding of 4x4 is too large");
    bad("input 1x4x4\nconv 3x3 1 pad=5 padding=circular\nflatten\n", "circular padding of 5x5 is too large");
    bad("input 1x8x8\nmaxpool 2x2 pad=2\nflatten\n", "padding 2x2 is too large for a 2x2 window");
    bad("input 1x8x8\nconv 3x3 4\n", "ends with a 4x6x6 image");
    bad("input 1x8x8\nflatten\ndense 1\n", "at least 2 classes");
    bad("input 1x8x8\nflatten\ndense 4 softmax\ndense 2\n", "softmax is only allowed on the last layer");
    ir_net net;
    /* the limits themselves are valid: reflect pad = n-1, circular pad = n */
    ok("input 1x4x4\nconv 3x3 1 pad=3 padding=reflect\nflatten\n", &net);
    SHAPE_EQ(net.nodes[1].L.out, 1, 8, 8);
    ir_free(&net);
    ok("input 1x4x4\nconv 3x3 1 pad=4 padding=circular\nflatten\n", &net);
    ir_free(&net);
    ok("input 1x8x8\nmaxpool 2x2 pad=1\nflatten\n", &net);
    SHAPE_EQ(net.nodes[1].L.out, 1, 5, 5);
    ir_free(&net);
}
END_TEST

START_TEST(t_offsets)
{
    ir_net net;
    /* parameters are laid out in order: weights then bias of each layer */
    ok("input 2x4x4\nconv 3x3 3\nbatchnorm\nflatten\ndense 2\n", &net);
    /* conv: w 3*2*9 = 54 at 0, b 3 at 54; bn: gamma 3 at 57, beta 3 at 60; dense: 2*12 at 63, 2 at 87 */
    ck_assert_int_eq(net.nodes[1].L.w_off, 0);
    ck_assert_int_eq(net.nodes[1].L.w_len, 54);
    ck_assert_int_eq(net.nodes[1].L.b_off, 54);
    ck_assert_int_eq(net.nodes[2].L.w_off, 57);
    ck_assert_int_eq(net.nodes[2].L.b_off, 60);
    ck_assert_int_eq(net.nodes[4].L.w_off, 63);
    ck_assert_int_eq(net.nodes[4].L.w_len, 24);
    ck_assert_int_eq(net.nodes[4].L.b_off, 87);
    ck_assert_int_eq(net.total_params, 89);
    ir_free(&net);
}
END_TEST

/* ------------------------------------------------------------------ example networks */

typedef struct {
    rt_kind kind;
    int c, h, w;
    long params;
    double flops;
} layer_want;

/* Compiles examples/FILE and checks every layer's kind, shape, parameters and FLOPs, and the
 * totals, against hand-worked numbers; returns the network (ir_free it). */
static ir_net check_counts(const char *file, const char *name, const layer_want *want, int n,
                           long total_params, double total_flops)
{
    char path[1024];
    example_path(file, path, sizeof path);
    ir_net net;
    int rc = cnn_compile(path, NULL, 0, &net, stderr);
    ck_assert_msg(rc == 0, "%s does not compile", path);
    ck_assert_str_eq(net.name, name);
    ck_assert_int_eq(net.n, n);
    long sp = 0;
    double sf = 0;
    for (int i = 0; i < n; i++) {
        const ir_node *nd = &net.nodes[i];
        ck_assert_msg(nd->L.kind == want[i].kind, "%s layer %d: kind %d, want %d", file, i, nd->L.kind,
                      want[i].kind);
        SHAPE_EQ(nd->L.out, want[i].c, want[i].h, want[i].w);
        ck_assert_msg(nd->params == want[i].params, "%s layer %d: %ld params, want %ld", file, i, nd->params,
                      want[i].params);
        ck_assert_msg(nd->flops == want[i].flops, "%s layer %d: %.0f FLOPs, want %.0f", file, i, nd->flops,
                      want[i].flops);
        sp += want[i].params;
        sf += want[i].flops;
    }
    /* the hand totals agree with the sum of the hand rows, and with the program */
    ck_assert_int_eq(sp, total_params);
    ck_assert(sf == total_flops);
    ck_assert_int_eq(net.total_params, total_params);
    ck_assert_msg(net.total_flops == total_flops, "%s: %.0f FLOPs, want %.0f", file, net.total_flops,
                  total_flops);
    return net;
}

static void check_example(const char *file, const char *name, const layer_want *want, int n,
                          long total_params, double total_flops)
{
    ir_net net = check_counts(file, name, want, n, total_params, total_flops);
    /* the lecture's networks all train with adam lr 0.001, batch 32 (fashion: 64) */
    ck_assert_int_eq(net.has_train, 1);
    ck_assert_int_eq(net.train.opt.kind, RT_OPT_ADAM);
    ck_assert_float_eq_tol(net.train.opt.lr, 0.001f, 1e-9f);
    ir_free(&net);
}

/* The convolutional part shared by CNN1, CNN3 and CNN4 (input 3x128x128):
 *   conv 3x3 16 relu: 16x126x126 = 254016 outputs; params 16*3*9 + 16 = 448;
 *       FLOPs 2*27*254016 = 13716864 (MACs) + 254016 (bias) + 254016 (relu) = 14224896
 *   maxpool 2x2: 16x63x63 = 63504 outputs * 4 = 254016
 *   conv 3x3 32 relu: 32x61x61 = 119072; params 32*16*9 + 32 = 4640;
 *       FLOPs 2*144*119072 = 34292736 + 2*119072 = 34530880
 *   maxpool 2x2: floor(61/2) = 30: 32x30x30 = 28800 * 4 = 115200
 *   conv 3x3 64 relu: 64x28x28 = 50176; params 64*32*9 + 64 = 18496;
 *       FLOPs 2*288*50176 = 28901376 + 2*50176 = 29001728
 *   maxpool 2x2: 64x14x14 = 12544 * 4 = 50176 */
#define CNN_STEM                                                        \
    {RT_INPUT, 3, 128, 128, 0, 0},                                      \
    {RT_CONV, 16, 126, 126, 448, 14224896},                             \
    {RT_MAXPOOL, 16, 63, 63, 0, 254016},                                \
    {RT_CONV, 32, 61, 61, 4640, 34530880},                              \
    {RT_MAXPOOL, 32, 30, 30, 0, 115200},                                \
    {RT_CONV, 64, 28, 28, 18496, 29001728},                             \
    {RT_MAXPOOL, 64, 14, 14, 0, 50176}

START_TEST(t_example_mlp)
{
    /* flatten 3*128*128 = 49152
     * dense 512 relu: 49152*512 + 512 = 25166336 params; 2*49152*512 + 512 + 512 = 50332672
     * dense 128 relu: 512*128 + 128 = 65664; 2*512*128 + 128 + 128 = 131328
     * dense 4: 128*4 + 4 = 516; 2*128*4 + 4 = 1028
     * dropout: no parameters, no FLOPs
     * total params 25166336 + 65664 + 516 = 25232516; FLOPs 50332672 + 131328 + 1028 = 50465028 */
    static const layer_want w[] = {
        {RT_INPUT, 3, 128, 128, 0, 0},      {RT_FLATTEN, 49152, 1, 1, 0, 0},
        {RT_DENSE, 512, 1, 1, 25166336, 50332672}, {RT_DROPOUT, 512, 1, 1, 0, 0},
        {RT_DENSE, 128, 1, 1, 65664, 131328}, {RT_DROPOUT, 128, 1, 1, 0, 0},
        {RT_DENSE, 4, 1, 1, 516, 1028},
    };
    check_example("mlp.cnn", "mlp", w, 7, 25232516, 50465028);
}
END_TEST

START_TEST(t_example_cnn1)
{
    /* CNN_STEM, then flatten 64*14*14 = 12544;
     * dense 128 relu: 12544*128 + 128 = 1605760; 2*12544*128 + 128 + 128 = 3211520
     * dense 4: 516; 1028
     * params 448 + 4640 + 18496 + 1605760 + 516 = 1629860
     * FLOPs 14224896 + 254016 + 34530880 + 115200 + 29001728 + 50176 + 3211520 + 1028 = 81389444 */
    static const layer_want w[] = {
        CNN_STEM,
        {RT_FLATTEN, 12544, 1, 1, 0, 0},
        {RT_DENSE, 128, 1, 1, 1605760, 3211520},
        {RT_DENSE, 4, 1, 1, 516, 1028},
    };
    check_example("cnn1.cnn", "cnn1", w, 10, 1629860, 81389444);
}
END_TEST

START_TEST(t_example_cnn2)
{
    /* conv 3x3 16 relu: 16x126x126 (254016); 448; 14224896
     * conv 3x3 16 relu: 16x124x124 = 246016; 16*16*9 + 16 = 2320;
     *     2*144*246016 = 70852608 + 2*246016 = 71344640
     * maxpool 2x2: 16x62x62 = 61504 * 4 = 246016
     * conv 3x3 32 relu: 32x60x60 = 115200; 4640; 2*144*115200 = 33177600 + 230400 = 33408000
     * conv 3x3 32 relu: 32x58x58 = 107648; 32*32*9 + 32 = 9248;
     *     2*288*107648 = 62005248 + 215296 = 62220544
     * maxpool 2x2: 32x29x29 = 26912 * 4 = 107648
     * flatten 26912; dense 128 relu: 26912*128 + 128 = 3444864; 2*26912*128 + 256 = 6889728
     * dense 4: 516; 1028
     * params 448 + 2320 + 4640 + 9248 + 3444864 + 516 = 3462036
     * FLOPs 14224896 + 71344640 + 246016 + 33408000 + 62220544 + 107648 + 6889728 + 1028 = 188442500 */
    static const layer_want w[] = {
        {RT_INPUT, 3, 128, 128, 0, 0},
        {RT_CONV, 16, 126, 126, 448, 14224896},
        {RT_CONV, 16, 124, 124, 2320, 71344640},
        {RT_MAXPOOL, 16, 62, 62, 0, 246016},
        {RT_CONV, 32, 60, 60, 4640, 33408000},
        {RT_CONV, 32, 58, 58, 9248, 62220544},
        {RT_MAXPOOL, 32, 29, 29, 0, 107648},
        {RT_FLATTEN, 26912, 1, 1, 0, 0},
        {RT_DENSE, 128, 1, 1, 3444864, 6889728},
        {RT_DENSE, 4, 1, 1, 516, 1028},
    };
    check_example("cnn2.cnn", "cnn2", w, 10, 3462036, 188442500);
}
END_TEST

START_TEST(t_example_cnn3)
{
    /* CNN_STEM, then globalavgpool: 64x1x1, one FLOP per input element 64*14*14 = 12544
     * flatten 64; dense 4: 64*4 + 4 = 260; 2*64*4 + 4 = 516
     * params 448 + 4640 + 18496 + 260 = 23844
     * FLOPs 14224896 + 254016 + 34530880 + 115200 + 29001728 + 50176 + 12544 + 516 = 78189956 */
    static const layer_want w[] = {
        CNN_STEM,
        {RT_GLOBALAVGPOOL, 64, 1, 1, 0, 12544},
        {RT_FLATTEN, 64, 1, 1, 0, 0},
        {RT_DENSE, 4, 1, 1, 260, 516},
    };
    check_example("cnn3.cnn", "cnn3", w, 10, 23844, 78189956);
}
END_TEST

START_TEST(t_example_cnn4)
{
    /* CNN1 with two dropouts (no parameters, no FLOPs): the same totals as CNN1 */
    static const layer_want w[] = {
        CNN_STEM,
        {RT_FLATTEN, 12544, 1, 1, 0, 0},
        {RT_DROPOUT, 12544, 1, 1, 0, 0},
        {RT_DENSE, 128, 1, 1, 1605760, 3211520},
        {RT_DROPOUT, 128, 1, 1, 0, 0},
        {RT_DENSE, 4, 1, 1, 516, 1028},
    };
    check_example("cnn4.cnn", "cnn4", w, 12, 1629860, 81389444);
}
END_TEST

START_TEST(t_example_fashion)
{
    /* input 1x28x28
     * conv 3x3 16 relu pad=same: 16x28x28 = 12544; 16*1*9 + 16 = 160; 2*9*12544 = 225792 + 2*12544 = 250880
     * maxpool 2x2: 16x14x14 = 3136 * 4 = 12544
     * conv 3x3 32 relu pad=same: 32x14x14 = 6272; 32*16*9 + 32 = 4640; 2*144*6272 = 1806336 + 12544 = 1818880
     * maxpool 2x2: 32x7x7 = 1568 * 4 = 6272
     * flatten 1568; dense 64 relu: 1568*64 + 64 = 100416; 2*1568*64 + 128 = 200832
     * dense 10: 64*10 + 10 = 650; 2*64*10 + 10 = 1290
     * params 160 + 4640 + 100416 + 650 = 105866
     * FLOPs 250880 + 12544 + 1818880 + 6272 + 200832 + 1290 = 2290698 */
    static const layer_want w[] = {
        {RT_INPUT, 1, 28, 28, 0, 0},
        {RT_CONV, 16, 28, 28, 160, 250880},
        {RT_MAXPOOL, 16, 14, 14, 0, 12544},
        {RT_CONV, 32, 14, 14, 4640, 1818880},
        {RT_MAXPOOL, 32, 7, 7, 0, 6272},
        {RT_FLATTEN, 1568, 1, 1, 0, 0},
        {RT_DENSE, 64, 1, 1, 100416, 200832},
        {RT_DENSE, 10, 1, 1, 650, 1290},
    };
    check_example("fashion.cnn", "fashion", w, 8, 105866, 2290698);
}
END_TEST

START_TEST(t_example_train_sections)
{
    char path[1024];
    ir_net net;
    example_path("fashion.cnn", path, sizeof path);
    ck_assert_int_eq(cnn_compile(path, NULL, 0, &net, stderr), 0);
    ck_assert_int_eq(net.train.batch, 64);
    ck_assert_int_eq(net.train.epochs, 2);
    ck_assert(net.train.split[0] == 9 && net.train.split[1] == 1 && net.train.split[2] == 0);
    ck_assert(net.train.seed == 1);
    ir_free(&net);
    example_path("cnn2.cnn", path, sizeof path);
    ck_assert_int_eq(cnn_compile(path, NULL, 0, &net, stderr), 0);
    ck_assert_int_eq(net.train.batch, 32);
    ck_assert_int_eq(net.train.epochs, 20);
    ck_assert(net.train.split[0] == 7 && net.train.split[1] == 2 && net.train.split[2] == 1);
    ir_free(&net);
}
END_TEST

/* ------------------------------------------------------------------ errors through the API */

START_TEST(t_error_counts)
{
    ir_net net;
    /* cnn_compile returns the number of errors; each is positioned */
    int rc = compile("input 3x8x8\nconv 3x3 16 strid=2\nflatten\n", &net);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(errtext, "t.cnn:2:13: error: unknown key 'strid' for conv\n"));
    ck_assert_ptr_nonnull(strstr(errtext, "hint: did you mean 'stride'?"));
    ck_assert_ptr_nonnull(strstr(errtext, "t.cnn: 1 error\n"));
    ir_free(&net);
    /* two independent mistakes in one statement list are both reported */
    rc = compile("input 3x8x8\nconv 3x3 16 strid=2\nmaxpool 2x2 pad=valdi\nflatten\n", &net);
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_nonnull(strstr(errtext, "t.cnn: 2 errors\n"));
    ir_free(&net);
    /* an error inside a block is reported once, with a note for the call */
    rc = compile("block b() { conv 3x3 }\ninput 3x8x8\nb()\nb()\nflatten\n", &net);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(errtext, "t.cnn:1:21: error: conv needs 2 arguments, got 1\n"));
    ck_assert_ptr_nonnull(strstr(errtext, "t.cnn:3:1: note: in call `b()` at line 3\n"));
    ir_free(&net);
    /* diagnostics come in file order, and a note stays right after its error even when
     * it points to an earlier line */
    rc = compile("network a\nblock b() { relu }\ninput 3x16x16\nbogus\nblock b() { tanh }\nnetwork b\n", &net);
    ck_assert_int_eq(rc, 3);
    const char *e1 = strstr(errtext, "t.cnn:4:1: error: unknown layer 'bogus'\n");
    const char *e2 = strstr(errtext, "t.cnn:5:7: error: block 'b' is defined twice\n");
    const char *e3 = strstr(errtext, "t.cnn:6:1: error: the network is named twice (first at line 1)\n");
    ck_assert_msg(e1 && e2 && e3, "missing diagnostics:\n%s", errtext);
    ck_assert_msg(e1 < e2 && e2 < e3, "diagnostics out of file order:\n%s", errtext);
    ir_free(&net);
    rc = compile("input 3x16x16\nmaxpool 2x2\nmaxpool 2x2\nconv 5x5 8\nflatten\n", &net);
    ck_assert_int_eq(rc, 1);
    e1 = strstr(errtext, "t.cnn:4:1: error: the 5x5 window is larger than its 4x4 input\n");
    const char *n1 = strstr(errtext, "t.cnn:3:1: note: the size became 4x4 here, at 'maxpool 2x2'\n");
    ck_assert_msg(e1 && n1 && e1 < n1, "the note does not follow its error:\n%s", errtext);
    ir_free(&net);
    /* more than 20 errors: only 20 are shown */
    char text[4096] = "input 1x4x4\n";
    for (int i = 0; i < 30; i++) strcat(text, "bogus\n");
    strcat(text, "flatten\n");
    rc = compile(text, &net);
    ck_assert_int_eq(rc, 30);
    ck_assert_ptr_nonnull(strstr(errtext, "t.cnn: 10 more errors not shown\n"));
    ck_assert_ptr_nonnull(strstr(errtext, "t.cnn: 30 errors\n"));
    ir_free(&net);
    /* a missing file or a folder: an error, and still a net the caller may ir_free (the
     * drivers do); garbage in net beforehand must not survive */
    const char *paths[] = {"/nonexistent/dir/x.cnn", "/"};
    for (int i = 0; i < 2; i++) {
        FILE *devnull = fopen("/dev/null", "w");
        memset(&net, 0xA5, sizeof net);
        rc = cnn_compile(paths[i], NULL, 0, &net, devnull);
        fclose(devnull);
        ck_assert_int_gt(rc, 0);
        ck_assert_msg(net.n == 0 && net.nodes == NULL, "%s: net left uninitialised", paths[i]);
        ir_free(&net);
    }
}
END_TEST

/* Channels last is caught only where no channels-first image could mean it: the first
 * size above 4 (the runtime's images have 1 to 4 channels) and the last 1, 3 or 4. */
START_TEST(t_input_channels_last)
{
    static const char *const ok[] = {"3x32x32", "1x28x28", "4x8x8", "3x32x3", "1x5x1", "8x8x8", "16x7x7"};
    static const char *const bad[][2] = {{"32x32x3", "3x32x32"}, {"28x20x1", "1x28x20"}, {"5x6x4", "4x5x6"}};
    ir_net net;
    char text[128];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(text, sizeof text, "input %s\nflatten\ndense 2\n", ok[i]);
        ck_assert_msg(compile(text, &net) == 0, "input %s: %s", ok[i], errtext);
        ir_free(&net);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "input %s\nflatten\ndense 2\n", bad[i][0]);
        ck_assert_int_eq(compile(text, &net), 1);
        char want[96];
        snprintf(want, sizeof want, "hint: channels come first: did you mean `input %s`?\n", bad[i][1]);
        ck_assert_msg(strstr(errtext, want) != NULL, "input %s: %s", bad[i][0], errtext);
        ir_free(&net);
    }
}
END_TEST

/* Weights of another network name the first layer that differs. The networks differ
 * from "base" in one place each; the expected layer numbers count from the input (0), as
 * --summary does, and the lines are those of the texts below. */
START_TEST(t_weights_other_network)
{
    static const char *base = "network w\ninput 1x8x8\nconv 3x3 16 relu\nmaxpool 2x2\nconv 3x3 32 relu\n"
                              "flatten\ndense 3\n";
    static const char *const cases[][2] = {
        /* second conv with 16 filters, not 32: layer 3 (input, conv, maxpool, conv) on line 5 */
        {"network w\ninput 1x8x8\nconv 3x3 16 relu\nmaxpool 2x2\nconv 3x3 16 relu\nflatten\ndense 3\n",
         "layer 3 (conv 3x3 16, line 5): the file has 32 filters, the network 16"},
        /* 3 input channels: the first conv's filters read 3, the file's 1 */
        {"network w\ninput 3x8x8\nconv 3x3 16 relu\nmaxpool 2x2\nconv 3x3 32 relu\nflatten\ndense 3\n",
         "layer 1 (conv 3x3 16, line 3): the file's filters read 1 input channels, the network's 3"},
        /* a 5x5 kernel (pad=same keeps every size as in base) */
        {"network w\ninput 1x8x8\nconv 5x5 16 relu pad=same\nmaxpool 2x2\nconv 3x3 32 relu\nflatten\ndense 3\n",
         "layer 1 (conv 5x5 16, line 3): the file has 3x3 kernels, the network 5x5"},
        /* 4 classes: the dense layer 5 on line 7 */
        {"network w\ninput 1x8x8\nconv 3x3 16 relu\nmaxpool 2x2\nconv 3x3 32 relu\nflatten\ndense 4\n",
         "layer 5 (dense 4, line 7): the file has 3 units, the network 4"},
        /* the bias of the second conv left out: the network's next tensor is the dense's weights */
        {"network w\ninput 1x8x8\nconv 3x3 16 relu\nmaxpool 2x2\nconv 3x3 32 relu bias=false\nflatten\ndense 3\n",
         "layer 5 (dense 3, line 7): the network expects its weights here, the file has layer 3's bias [32]"},
        /* one more dense layer at the end: the file ends before its weights */
        {"network w\ninput 1x8x8\nconv 3x3 16 relu\nmaxpool 2x2\nconv 3x3 32 relu\nflatten\ndense 3\ndense 2\n",
         "layer 6 (dense 2, line 8): the file has no weights for it (it ends before)"},
        /* avgpool for maxpool: no tensor differs, the hash does */
        {"network w\ninput 1x8x8\nconv 3x3 16 relu\navgpool 2x2\nconv 3x3 32 relu\nflatten\ndense 3\n",
         "every layer with weights matches; a layer without weights differs"},
    };
    char file[] = "/tmp/cnnc-wdiff-XXXXXX", err[RT_ERRLEN];
    int fd = mkstemp(file);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ir_net net;
    rt_netdesc d;
    ok(base, &net);
    ir_to_desc(&net, &d);
    rt_model *m = rt_net_create(&d, 1, 1, err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_msg(rt_weights_save(file, m, err) == 0, "%s", err);
    rt_model_destroy(m);
    ir_desc_free(&d);
    ir_free(&net);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ok(cases[i][0], &net);
        ir_to_desc(&net, &d);
        float *params = calloc(d.nparams + 1, sizeof *params), *state = calloc(d.nstate + 1, sizeof *state);
        err[0] = '\0';
        ck_assert_int_ne(rt_weights_read(file, &d, params, state, NULL, NULL, err), 0);
        ck_assert_msg(strstr(err, cases[i][1]) != NULL, "case %zu: %s", i, err);
        ck_assert_msg(strstr(err, "weights are for network 'w' with a different structure") != NULL, "%s", err);
        ck_assert_msg(strstr(err, "structure hash") != NULL, "%s", err); /* the final guard stays */
        free(params);
        free(state);
        ir_desc_free(&d);
        ir_free(&net);
    }
    unlink(file);
}
END_TEST

/* Contexts (block calls, repeat passes) enter the IR only for the layers and errors that
 * need them: 90000 passes that add nothing leave 2 (the error's outer and inner pass);
 * 3 passes of a block call with one layer each leave 3 passes + 3 calls. */
START_TEST(t_context_count)
{
    ir_net net;
    ck_assert_int_eq(compile("input 1x8x8\nrepeat 300 { repeat 300 { bogus } }\nflatten\ndense 2\n", &net), 1);
    ck_assert_int_eq(net.nctx, 2);
    ck_assert_ptr_nonnull(strstr(errtext, "note: in pass 1 of `repeat 300` at line 2\n"));
    ir_free(&net);
    ok("block b(c) { conv 1x1 c }\ninput 1x8x8\nrepeat 3 { b(4) }\nflatten\ndense 2\n", &net);
    ck_assert_int_eq(net.nctx, 6);
    /* the conv of pass 2: node 2 (input 0, pass 1's conv 1); its call, then pass 2 */
    const ir_ctx *c = &net.ctxs[net.nodes[2].ctx - 1];
    ck_assert_str_eq(c->text, "b(4)");
    ck_assert_int_eq(c->pass, 0);
    c = &net.ctxs[c->up - 1];
    ck_assert_str_eq(c->text, "repeat 3");
    ck_assert_int_eq(c->pass, 2);
    ck_assert_int_eq(c->up, 0);
    ir_free(&net);
}
END_TEST

START_TEST(t_large_expansion)
{
    ir_net net;
    /* 99997 relus + input + flatten + dense = 100000 layers: the limit is fine */
    ok("input 1x2x2\nrepeat 99997 { relu }\nflatten\ndense 2\n", &net);
    ck_assert_int_eq(net.n, 100000);
    ir_free(&net);
    bad("input 1x2x2\nrepeat 99998 { relu }\nflatten\ndense 2\n", "more than 100000 layers");
    bad("input 1x2x2\nrepeat 1000 { repeat 1000 { relu } }\nflatten\n", "more than 100000 layers");
}
END_TEST

/* ------------------------------------------------------------------ robustness */

/* The first line of errtext is "t.cnn:LINE:COL: error: ..." or "t.cnn: error: ...". */
static int first_line_ok(void)
{
    const char *p = errtext;
    if (strncmp(p, "t.cnn", 5) != 0) return 0;
    p += 5;
    if (*p == ':' && p[1] >= '0' && p[1] <= '9') {
        p++;
        while (*p >= '0' && *p <= '9') p++;
        if (*p++ != ':' || !(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    return strncmp(p, ": error: ", 9) == 0;
}

/* What any valid IR must satisfy: an input first, producers before consumers with the
 * same shape, positive sizes, contiguous parameters, a vector of >= 2 scores at the end. */
static void check_ir(const ir_net *net, const char *text)
{
    ck_assert_msg(net->n >= 2, "valid net with %d layers:\n%s", net->n, text);
    ck_assert_int_eq(net->nodes[0].L.kind, RT_INPUT);
    size_t off = 0;
    long params = 0;
    for (int i = 0; i < net->n; i++) {
        const rt_layer *L = &net->nodes[i].L;
        ck_assert_msg(L->out.c >= 1 && L->out.h >= 1 && L->out.w >= 1, "layer %d shape:\n%s", i, text);
        if (i > 0) {
            ck_assert_msg(L->src >= 0 && L->src < i, "layer %d src %d:\n%s", i, L->src, text);
            rt_shape in = net->nodes[L->src].L.out;
            ck_assert(in.c == L->in.c && in.h == L->in.h && in.w == L->in.w);
            ck_assert_int_ne(L->kind, RT_INPUT);
        }
        if (L->kind == RT_ADD) {
            ck_assert(L->src2 >= 0 && L->src2 < i);
            rt_shape sk = net->nodes[L->src2].L.out;
            ck_assert(sk.c == L->out.c && sk.h == L->out.h && sk.w == L->out.w);
        } else if (L->kind == RT_CONCAT) {
            ck_assert(L->src2 >= 0 && L->src2 < i);
            rt_shape sk = net->nodes[L->src2].L.out;
            ck_assert(sk.c + L->in.c == L->out.c && sk.h == L->out.h && sk.w == L->out.w);
        } else {
            ck_assert_int_eq(L->src2, -1);
        }
        if (L->act == RT_ACT_SOFTMAX) ck_assert_int_eq(i, net->n - 1);
        ck_assert_int_eq(L->w_off, off);
        off += L->w_len;
        ck_assert_int_eq(L->b_off, off);
        off += L->b_len;
        ck_assert_int_eq(net->nodes[i].params, (long)(L->w_len + L->b_len));
        ck_assert(net->nodes[i].flops >= 0);
        params += net->nodes[i].params;
    }
    ck_assert_int_eq(params, net->total_params);
    rt_shape last = net->nodes[net->n - 1].L.out;
    ck_assert(last.h == 1 && last.w == 1 && last.c >= 2);
}

/* Compiles any text: it is either valid (and a sound IR) or rejected with a proper first line. */
static void robust(const char *text, size_t len)
{
    ir_net net;
    FILE *err = tmpfile();
    ck_assert_ptr_nonnull(err);
    int rc = cnn_compile("t.cnn", text, len, &net, err);
    rewind(err);
    size_t n = fread(errtext, 1, sizeof errtext - 1, err);
    errtext[n] = '\0';
    fclose(err);
    ck_assert_int_ge(rc, 0);
    if (rc == 0) {
        ck_assert_str_eq(errtext, "");
        check_ir(&net, text);
    } else {
        ck_assert_msg(first_line_ok(), "bad first line for:\n%s\n---\n%s", text, errtext);
    }
    ir_free(&net);
}

/* ---------------------------------------------------------------- the new kinds' examples
 * Each count below is worked out by hand from the rule in cnnrt.h (a multiply-add 2 FLOPs;
 * bias, activation, pooling window element, add and batchnorm scale/shift 1 per output). */

START_TEST(t_example_mobilenet_tiny)
{
    /* stem conv 3x3 16 stride 2 same, no bias: 16x16x16 (4096); 16*3*9 = 432; 2*27*4096 = 221184
     * bn 16: 32 params, 2*4096 = 8192; relu6: 4096
     * dws(16,32,1): dw 3x3 groups 16: 16*1*9 = 144, 2*9*4096 = 73728; bn 32, 8192; relu6 4096;
     *   pw 1x1 32: 32x16x16 (8192), 32*16 = 512, 2*16*8192 = 262144; bn 64, 16384; relu6 8192
     * dws(32,64,2): dw stride 2: 32x8x8 (2048), 288, 2*9*2048 = 36864; bn 64, 4096; relu6 2048;
     *   pw 1x1 64: 64x8x8 (4096), 2048, 2*32*4096 = 262144; bn 128, 8192; relu6 4096
     * dws(64,64,1): dw: 576, 2*9*4096 = 73728; bn 128, 8192; relu6 4096;
     *   pw: 4096, 2*64*4096 = 524288; bn 128, 8192; relu6 4096
     * gap 4096; dropout 0; dense 10: 650, 2*64*10 + 10 = 1290
     * params 464 + 752 + 2528 + 4928 + 650 = 9322
     * FLOPs 233472 + 372736 + 317440 + 622592 + 5386 = 1551626 */
    static const layer_want w[] = {
        {RT_INPUT, 3, 32, 32, 0, 0},
        {RT_CONV, 16, 16, 16, 432, 221184}, {RT_BATCHNORM, 16, 16, 16, 32, 8192}, {RT_ACTIVATION, 16, 16, 16, 0, 4096},
        {RT_CONV, 16, 16, 16, 144, 73728}, {RT_BATCHNORM, 16, 16, 16, 32, 8192}, {RT_ACTIVATION, 16, 16, 16, 0, 4096},
        {RT_CONV, 32, 16, 16, 512, 262144}, {RT_BATCHNORM, 32, 16, 16, 64, 16384}, {RT_ACTIVATION, 32, 16, 16, 0, 8192},
        {RT_CONV, 32, 8, 8, 288, 36864}, {RT_BATCHNORM, 32, 8, 8, 64, 4096}, {RT_ACTIVATION, 32, 8, 8, 0, 2048},
        {RT_CONV, 64, 8, 8, 2048, 262144}, {RT_BATCHNORM, 64, 8, 8, 128, 8192}, {RT_ACTIVATION, 64, 8, 8, 0, 4096},
        {RT_CONV, 64, 8, 8, 576, 73728}, {RT_BATCHNORM, 64, 8, 8, 128, 8192}, {RT_ACTIVATION, 64, 8, 8, 0, 4096},
        {RT_CONV, 64, 8, 8, 4096, 524288}, {RT_BATCHNORM, 64, 8, 8, 128, 8192}, {RT_ACTIVATION, 64, 8, 8, 0, 4096},
        {RT_GLOBALAVGPOOL, 64, 1, 1, 0, 4096}, {RT_DROPOUT, 64, 1, 1, 0, 0}, {RT_DENSE, 10, 1, 1, 650, 1290},
    };
    ir_net net = check_counts("mobilenet_tiny.cnn", "mobilenet_tiny", w, 25, 9322, 1551626);
    ck_assert_int_eq(net.nodes[4].L.groups, 16);   /* depthwise */
    ck_assert_int_eq(net.nodes[1].L.pt, 0);        /* same, stride 2 on 32: 1 pixel, after */
    ck_assert_int_eq(net.nodes[1].L.pb, 1);
    ir_free(&net);
}
END_TEST

START_TEST(t_example_dilated)
{
    /* conv 3x3 16 same relu: 16x28x28 (12544); 160; 2*9*12544 + 12544 + 12544 = 250880
     * conv 3x3 16 dilation 2 same relu: extent 5, pad 2 each side; 2320; 2*144*12544 + 2*12544 = 3637760
     * conv 3x3 32 dilation 4 same (gelu split off): extent 9, pad 4; 32x28x28 (25088); 4640;
     *   2*144*25088 + 25088 = 7250432; gelu 25088
     * maxpool 2x2: 32x14x14 (6272) * 4 = 25088
     * conv 3x3 32 dilation 2 elu, no pad: 14 - 5 + 1 = 10: 32x10x10 (3200); 9248; 2*288*3200 + 2*3200 = 1849600
     * gap 3200; dense 10: 330, 650
     * params 160 + 2320 + 4640 + 9248 + 330 = 16698
     * FLOPs 250880 + 3637760 + 7250432 + 25088 + 25088 + 1849600 + 3200 + 650 = 13042698 */
    static const layer_want w[] = {
        {RT_INPUT, 1, 28, 28, 0, 0},         {RT_CONV, 16, 28, 28, 160, 250880},
        {RT_CONV, 16, 28, 28, 2320, 3637760}, {RT_CONV, 32, 28, 28, 4640, 7250432},
        {RT_ACTIVATION, 32, 28, 28, 0, 25088}, {RT_MAXPOOL, 32, 14, 14, 0, 25088},
        {RT_CONV, 32, 10, 10, 9248, 1849600}, {RT_GLOBALAVGPOOL, 32, 1, 1, 0, 3200},
        {RT_DENSE, 10, 1, 1, 330, 650},
    };
    ir_net net = check_counts("dilated.cnn", "dilated", w, 9, 16698, 13042698);
    ck_assert_int_eq(net.nodes[3].L.dh, 4);
    ck_assert_int_eq(net.nodes[3].L.pt, 4);
    ck_assert_int_eq(net.nodes[3].L.act, RT_ACT_NONE);
    ck_assert_int_eq(net.nodes[4].L.act, RT_ACT_GELU);
    ck_assert_int_eq(net.nodes[6].L.act, RT_ACT_ELU);
    ck_assert_float_eq(net.nodes[6].L.alpha, 1.0f);
    ir_free(&net);
}
END_TEST

START_TEST(t_example_resnet_proj)
{
    /* stem conv 3x3 16 same no bias: 16x32x32 (16384); 432; 2*27*16384 = 884736; bn 32, 32768; relu 16384
     * down(32): body conv 3x3 32 s2: 32x16x16 (8192), 4608, 2*144*8192 = 2359296; bn 64, 16384; relu 8192;
     *   conv 3x3 32: 9216, 2*288*8192 = 4718592; bn 64, 16384;
     *   shortcut conv 1x1 32 s2: (32-1)/2+1 = 16: 512, 2*16*8192 = 262144; bn 64, 16384; add 8192; relu 8192
     * down(64): conv 3x3 64 s2: 64x8x8 (4096), 18432, 2*288*4096 = 2359296; bn 128, 8192; relu 4096;
     *   conv 3x3 64: 36864, 2*576*4096 = 4718592; bn 128, 8192;
     *   shortcut 1x1 64 s2: 2048, 2*32*4096 = 262144; bn 128, 8192; add 4096; relu 4096
     * gap 4096; dense 10: 650, 1290
     * params 464 + 14528 + 57728 + 650 = 73370
     * FLOPs 933888 + 7413760 + 7376896 + 5386 = 15729930 */
    static const layer_want w[] = {
        {RT_INPUT, 3, 32, 32, 0, 0},
        {RT_CONV, 16, 32, 32, 432, 884736}, {RT_BATCHNORM, 16, 32, 32, 32, 32768}, {RT_ACTIVATION, 16, 32, 32, 0, 16384},
        {RT_CONV, 32, 16, 16, 4608, 2359296}, {RT_BATCHNORM, 32, 16, 16, 64, 16384}, {RT_ACTIVATION, 32, 16, 16, 0, 8192},
        {RT_CONV, 32, 16, 16, 9216, 4718592}, {RT_BATCHNORM, 32, 16, 16, 64, 16384},
        {RT_CONV, 32, 16, 16, 512, 262144}, {RT_BATCHNORM, 32, 16, 16, 64, 16384},
        {RT_ADD, 32, 16, 16, 0, 8192}, {RT_ACTIVATION, 32, 16, 16, 0, 8192},
        {RT_CONV, 64, 8, 8, 18432, 2359296}, {RT_BATCHNORM, 64, 8, 8, 128, 8192}, {RT_ACTIVATION, 64, 8, 8, 0, 4096},
        {RT_CONV, 64, 8, 8, 36864, 4718592}, {RT_BATCHNORM, 64, 8, 8, 128, 8192},
        {RT_CONV, 64, 8, 8, 2048, 262144}, {RT_BATCHNORM, 64, 8, 8, 128, 8192},
        {RT_ADD, 64, 8, 8, 0, 4096}, {RT_ACTIVATION, 64, 8, 8, 0, 4096},
        {RT_GLOBALAVGPOOL, 64, 1, 1, 0, 4096}, {RT_DENSE, 10, 1, 1, 650, 1290},
    };
    ir_net net = check_counts("resnet_proj.cnn", "resnet_proj", w, 24, 73370, 15729930);
    /* the adds read the body's end and the shortcut's end; the shortcut reads the block's input */
    ck_assert_int_eq(net.nodes[11].L.src, 8);
    ck_assert_int_eq(net.nodes[11].L.src2, 10);
    ck_assert_int_eq(net.nodes[9].L.src, 3);
    ck_assert_int_eq(net.nodes[18].L.src, 12);
    ir_free(&net);
}
END_TEST

START_TEST(t_example_inception_tiny)
{
    /* stem conv 3x3 32 same relu: 32x32x32 (32768); 896; 2*27*32768 + 2*32768 = 1835008
     * maxpool 2x2: 32x16x16 (8192) * 4 = 32768
     * inception(16,24,8,8) on 32x16x16 (hw 256):
     *   1x1 16 relu: 528, 2*32*4096 + 2*4096 = 270336
     *   1x1 16 relu: 528, 270336; 3x3 24 relu: 3480, 2*144*6144 + 2*6144 = 1781760; concat 16+24
     *   1x1 8 relu: 264, 2*32*2048 + 2*2048 = 135168; 5x5 8 relu: 1608, 2*200*2048 + 2*2048 = 823296; concat 48
     *   maxpool 3x3 s1 p1: 32x16x16 * 9 = 73728; 1x1 8 relu: 264, 135168; concat 56
     * maxpool 2x2: 56x8x8 (3584) * 4 = 14336
     * inception(32,32,16,16) on 56x8x8 (hw 64):
     *   1x1 32: 1824, 2*56*2048 + 2*2048 = 233472
     *   1x1 16: 912, 2*56*1024 + 2*1024 = 116736; 3x3 32: 4640, 2*144*2048 + 2*2048 = 593920; concat 64
     *   1x1 8: 456, 2*56*512 + 2*512 = 58368; 5x5 16: 3216, 2*200*1024 + 2*1024 = 411648; concat 80
     *   maxpool 3x3: 56x8x8 * 9 = 32256; 1x1 16: 912, 116736; concat 96
     * gap 96*64 = 6144; dropout; dense 10: 970, 2*96*10 + 10 = 1930
     * params 896 + 6672 + 11960 + 970 = 20498
     * FLOPs 1835008 + 32768 + 3489792 + 14336 + 1563136 + 6144 + 1930 = 6943114 */
    static const layer_want w[] = {
        {RT_INPUT, 3, 32, 32, 0, 0}, {RT_CONV, 32, 32, 32, 896, 1835008}, {RT_MAXPOOL, 32, 16, 16, 0, 32768},
        {RT_CONV, 16, 16, 16, 528, 270336},
        {RT_CONV, 16, 16, 16, 528, 270336}, {RT_CONV, 24, 16, 16, 3480, 1781760}, {RT_CONCAT, 40, 16, 16, 0, 0},
        {RT_CONV, 8, 16, 16, 264, 135168}, {RT_CONV, 8, 16, 16, 1608, 823296}, {RT_CONCAT, 48, 16, 16, 0, 0},
        {RT_MAXPOOL, 32, 16, 16, 0, 73728}, {RT_CONV, 8, 16, 16, 264, 135168}, {RT_CONCAT, 56, 16, 16, 0, 0},
        {RT_MAXPOOL, 56, 8, 8, 0, 14336},
        {RT_CONV, 32, 8, 8, 1824, 233472},
        {RT_CONV, 16, 8, 8, 912, 116736}, {RT_CONV, 32, 8, 8, 4640, 593920}, {RT_CONCAT, 64, 8, 8, 0, 0},
        {RT_CONV, 8, 8, 8, 456, 58368}, {RT_CONV, 16, 8, 8, 3216, 411648}, {RT_CONCAT, 80, 8, 8, 0, 0},
        {RT_MAXPOOL, 56, 8, 8, 0, 32256}, {RT_CONV, 16, 8, 8, 912, 116736}, {RT_CONCAT, 96, 8, 8, 0, 0},
        {RT_GLOBALAVGPOOL, 96, 1, 1, 0, 6144}, {RT_DROPOUT, 96, 1, 1, 0, 0}, {RT_DENSE, 10, 1, 1, 970, 1930},
    };
    ir_net net = check_counts("inception_tiny.cnn", "inception_tiny", w, 27, 20498, 6943114);
    /* every path reads the module's input; the concatenations chain the paths in order */
    ck_assert_int_eq(net.nodes[3].L.src, 2);
    ck_assert_int_eq(net.nodes[4].L.src, 2);
    ck_assert_int_eq(net.nodes[7].L.src, 2);
    ck_assert_int_eq(net.nodes[10].L.src, 2);
    ck_assert_int_eq(net.nodes[6].L.src, 3);
    ck_assert_int_eq(net.nodes[6].L.src2, 5);
    ck_assert_int_eq(net.nodes[9].L.src, 6);
    ck_assert_int_eq(net.nodes[9].L.src2, 8);
    ck_assert_int_eq(net.nodes[12].L.src2, 11);
    ir_free(&net);
}
END_TEST

static const char *const EXAMPLES[] = {"mlp.cnn", "cnn1.cnn", "cnn2.cnn", "cnn3.cnn", "cnn4.cnn",
                                       "fashion.cnn", "resnet_tiny.cnn", "mobilenet_tiny.cnn",
                                       "dilated.cnn", "resnet_proj.cnn", "inception_tiny.cnn"};
enum { NEXAMPLES = sizeof EXAMPLES / sizeof EXAMPLES[0] };

static char *read_example(const char *file, size_t *len)
{
    char path[1024];
    example_path(file, path, sizeof path);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = '\0';
    fclose(f);
    ck_assert_uint_gt(*len, 100);
    char *copy = malloc(*len + 1);
    memcpy(copy, buf, *len + 1);
    return copy;
}

/* Every prefix of every example, byte by byte (the lexer sees a NUL-free buffer of that length). */
START_TEST(t_truncations)
{
    size_t len;
    char *src = read_example(EXAMPLES[_i], &len);
    char *buf = malloc(len + 1);
    int valid = 0;
    for (size_t k = 0; k <= len; k++) {
        memcpy(buf, src, k);
        buf[k] = '\0';
        robust(buf, k);
        valid += errtext[0] == '\0';
    }
    /* the whole file is valid, and so is every prefix that ends after the last layer */
    ck_assert_int_ge(valid, 1);
    free(buf);
    free(src);
}
END_TEST

/* Random bytes, printable text, token soup and random statement lines (fixed seeds). */
START_TEST(t_fuzz)
{
    static char buf[4096];
    int mode = _i;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        size_t cap = 16 + (size_t)(seed * 37 % (sizeof buf - 16));
        size_t len = fetest_make(mode, seed, buf, cap);
        robust(buf, len);
    }
}
END_TEST

/* Random edits of the examples: many stay valid, others fail late in shape inference. */
START_TEST(t_mutations)
{
    size_t len;
    char *src = read_example(EXAMPLES[_i], &len);
    static char out[1 << 17];
    int valid = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        size_t n = fetest_mutate(src, len, seed, out, sizeof out);
        robust(out, n);
        valid += errtext[0] == '\0';
    }
    ck_assert_int_gt(valid, 0);     /* the check of valid IRs did run */
    free(src);
}
END_TEST

/* The inference memory plan (runtime/net/rt_memplan.c) of a chain worked by hand, as the
 * standalone file plans it (its plan unfolded: every layer runs apart): the conv's output
 * (32 floats) at 0 and its padded copy (36, rounded to 48) beside it; the pooling (8 -> 16)
 * cannot reuse 0, which the conv's output holds while it is read, so 32; flatten owns
 * nothing; the dense layer (3 -> 16) reuses 0 once the conv's output is dead. With the
 * conv running the pooling (the interpreter's plan), the pooling's output is written at the
 * conv's step: it still goes beside the conv's output, never over it. */
START_TEST(t_memory_plan)
{
    ir_net net;
    ok("network m\ninput 1x4x4\nconv 3x3 2 pad=1\nmaxpool 2x2\nflatten\ndense 3\n", &net);
    rt_netdesc d;
    ir_to_desc(&net, &d);
    rt_plan p;
    char err[RT_ERRLEN];
    ck_assert_int_eq(rt_plan_build(&d, &p, err), 0);
    ck_assert_int_eq(rt_plan_step(&p, 1)->pool_layer, 2);
    rt_memplan m;
    ck_assert_int_eq(rt_memplan_infer(&d, &p, NULL, &m, err), 0);
    ck_assert_int_eq(m.out_off[1], 0);
    ck_assert_int_eq(m.out_off[2], 32);
    ck_assert_int_eq(m.out_off[4], 0);
    rt_memplan_free(&m);
    rt_plan_unfold(&p);
    long tmp[5] = {0, 36, 0, 0, 0};
    ck_assert_int_eq(rt_memplan_infer(&d, &p, tmp, &m, err), 0);
    const long want_out[5] = {-1, 0, 32, -1, 0};
    for (int i = 0; i < 5; i++) ck_assert_int_eq(m.out_off[i], want_out[i]);
    ck_assert_int_eq(m.tmp_off[1], 32);
    ck_assert_int_eq(m.buf[3], 2);
    ck_assert_int_eq(m.buf[4], 4);
    ck_assert_int_eq(m.total, 80);
    ck_assert_int_eq(m.naive, 32 + 48 + 16 + 16);
    /* the standalone file's arena: the conv's own scratch rule gives the same 36 floats */
    long naive = 0;
    ck_assert_int_eq(emit_standalone_arena(&net, &naive), 80);
    ck_assert_int_eq(naive, 112);
    rt_memplan_free(&m);
    /* training, times 1-4 forward, 5 the loss, 10 - i layer i's backward: out1 [1,9] at 0,
     * out2 [2,8] at 32, out4 [4,6] at 48, then the gradients: dense's [5,6] at 64, the
     * pooling's (flatten passes its own to it) [6,8] at 80, and the conv's [8,9] (32 floats)
     * fits at 48, where the dense output and gradient are used up */
    ck_assert_int_eq(rt_memplan_train(&d, &p, &m, err), 0);
    ck_assert_int_eq(m.out_off[1], 0);
    ck_assert_int_eq(m.out_off[2], 32);
    ck_assert_int_eq(m.out_off[3], -1);
    ck_assert_int_eq(m.out_off[4], 48);
    ck_assert_int_eq(m.grad_off[4], 64);
    ck_assert_int_eq(m.grad_off[3], -1);
    ck_assert_int_eq(m.grad_off[2], 80);
    ck_assert_int_eq(m.grad_off[1], 48);
    ck_assert_int_eq(m.buf[3], 2);
    ck_assert_int_eq(m.total, 96);
    ck_assert_int_eq(m.naive, 128);
    rt_memplan_free(&m);
    rt_plan_free(&p);
    ir_desc_free(&d);
    ir_free(&net);
}
END_TEST

/* The input normalisation: one number for every channel or one per channel, the presets,
 * and the structure hash (weights trained with one normalisation do not load into a
 * network with another; a network without one keeps its hash). */
START_TEST(t_input_normalisation)
{
    ir_net a, b, c, d;
    ok("network n\ninput 3x8x8 mean=0.5 std=0.25,0.5,1\nflatten\ndense 2\n", &a);
    const rt_layer *L = &a.nodes[0].L;
    ck_assert_int_eq(L->norm, 1);
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq(L->mean[i], 0.5f);
    ck_assert_float_eq(L->std[0], 0.25f);
    ck_assert_float_eq(L->std[1], 0.5f);
    ck_assert_float_eq(L->std[2], 1.0f);
    ok("network n\ninput 3x8x8 norm=imagenet\nflatten\ndense 2\n", &b);
    ck_assert_float_eq(b.nodes[0].L.mean[1], 0.456f);
    ck_assert_float_eq(b.nodes[0].L.std[2], 0.225f);
    ok("network n\ninput 3x8x8\nflatten\ndense 2\n", &c);
    ck_assert_int_eq(c.nodes[0].L.norm, 0);
    ok("network n\ninput 3x8x8 norm=none\nflatten\ndense 2\n", &d);
    rt_netdesc da, db, dc, dd;
    ir_to_desc(&a, &da);
    ir_to_desc(&b, &db);
    ir_to_desc(&c, &dc);
    ir_to_desc(&d, &dd);
    ck_assert(da.hash != db.hash && da.hash != dc.hash && db.hash != dc.hash);
    ck_assert(dc.hash == dd.hash);
    /* the runtime's rule: (x - mean) / std per channel */
    float x[3 * 64], y[3 * 64];
    for (int i = 0; i < 3 * 64; i++)
        x[i] = 1.0f;
    rt_input_normalize(L, x, y, 1);
    ck_assert_float_eq(y[0], 2.0f);
    ck_assert_float_eq(y[64], 1.0f);
    ck_assert_float_eq(y[128], 0.5f);
    bad("network n\ninput 3x8x8 mean=1,2\nflatten\ndense 2\n", "mean has 2 numbers for 3 channels");
    bad("network n\ninput 1x8x8 std=0\nflatten\ndense 2\n", "std '0' is not valid");
    ir_desc_free(&da);
    ir_desc_free(&db);
    ir_desc_free(&dc);
    ir_desc_free(&dd);
    ir_free(&a);
    ir_free(&b);
    ir_free(&c);
    ir_free(&d);
}
END_TEST

static Suite *frontend_suite(void)
{
    Suite *s = suite_create("frontend");
    TCase *tc = tcase_create("syntax");
    tcase_add_loop_test(tc, t_layer_word, 0, NWORDS);
    tcase_add_test(tc, t_flatten_only);
    tcase_add_test(tc, t_unknown_words);
    tcase_add_test(tc, t_separators_comments);
    tcase_add_test(tc, t_numbers);
    tcase_add_test(tc, t_network_name);
    tcase_add_test(tc, t_trailing_activations);
    tcase_add_test(tc, t_standalone_activations);
    tcase_add_test(tc, t_conv_keys);
    tcase_add_test(tc, t_pool_keys);
    tcase_add_test(tc, t_batchnorm_keys);
    tcase_add_test(tc, t_dense_dropout);
    tcase_add_test(tc, t_train_defaults);
    tcase_add_test(tc, t_train_settings);
    tcase_add_test(tc, t_memory_plan);
    tcase_add_test(tc, t_input_normalisation);
    tcase_add_test(tc, t_error_counts);
    tcase_add_test(tc, t_input_channels_last);
    tcase_add_test(tc, t_weights_other_network);
    suite_add_tcase(s, tc);

    tc = tcase_create("expansion");
    tcase_add_test(tc, t_block_params);
    tcase_add_test(tc, t_block_zero_and_order);
    tcase_add_test(tc, t_repeat);
    tcase_add_test(tc, t_residual);
    tcase_add_test(tc, t_resnet_tiny);
    tcase_add_test(tc, t_large_expansion);
    tcase_add_test(tc, t_context_count);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("shapes");
    tcase_add_test(tc, t_shape_functions);
    tcase_add_test(tc, t_shape_lecture);
    tcase_add_test(tc, t_shape_same);
    tcase_add_test(tc, t_shape_floor);
    tcase_add_test(tc, t_shape_errors);
    tcase_add_test(tc, t_offsets);
    suite_add_tcase(s, tc);

    tc = tcase_create("examples");
    tcase_add_test(tc, t_example_mlp);
    tcase_add_test(tc, t_example_mobilenet_tiny);
    tcase_add_test(tc, t_example_dilated);
    tcase_add_test(tc, t_example_resnet_proj);
    tcase_add_test(tc, t_example_inception_tiny);
    tcase_add_test(tc, t_example_cnn1);
    tcase_add_test(tc, t_example_cnn2);
    tcase_add_test(tc, t_example_cnn3);
    tcase_add_test(tc, t_example_cnn4);
    tcase_add_test(tc, t_example_fashion);
    tcase_add_test(tc, t_example_train_sections);
    suite_add_tcase(s, tc);

    tc = tcase_create("robustness");
    tcase_add_loop_test(tc, t_truncations, 0, NEXAMPLES);
    tcase_add_loop_test(tc, t_fuzz, 0, 4);
    tcase_add_loop_test(tc, t_mutations, 0, NEXAMPLES);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(frontend_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
