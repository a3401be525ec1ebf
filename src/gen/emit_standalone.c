/*
 * emit_standalone.c - writes a network's inference as one C file that needs nothing but
 * libc and libm: the trained weights as static const arrays, each layer as plain loops
 * with literal bounds, and NET_predict(input, probs). This is the deployment target
 * (a small device has no libcnnrt), so it cannot call the runtime's kernels; its loops
 * follow the kernels' definitions (runtime/include/rt_kernels.h) and the tests hold the two to
 * the same predictions.
 */
#include "emit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cnn_op.h"
#include "ops/sa_conv.h"
#include "rt_op.h"
#include "rt_memplan.h"
#include "util.h"


static void emit_array(FILE *out, const char *name, const float *v, size_t n)
{
    fprintf(out, "static const float %s[%zu] = {", name, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) fprintf(out, "\n   ");
        float f = v[i];
        if (isnan(f) || isinf(f)) f = 0.0f; /* cannot come from a finished training; keep the C valid */
        fprintf(out, " %.9g%s,", f, (f == (float)(long)f && fabsf(f) < 1e7f) ? ".0f" : "f");
    }
    if (n == 0) fprintf(out, "0.0f");
    fprintf(out, "\n};\n");
}

/* The source index for padded coordinate i of an axis of n, as rt_pad_index does (printed
 * only for a network with a padded convolution: an unused static function is a warning). */
static const char *PAD_HELPER =
    "/* Source index of coordinate i on an axis of n pixels, or -1 for a zero cell:\n"
    " * mode 0 zero, 1 reflect (no edge repeat), 2 replicate, 3 circular. */\n"
    "static int pad_index(int i, int n, int mode)\n{\n"
    "    if (i >= 0 && i < n)\n        return i;\n"
    "    switch (mode) {\n"
    "    case 1:\n        if (n == 1)\n            return 0;\n"
    "        while (i < 0 || i >= n)\n            i = i < 0 ? -i : 2 * (n - 1) - i;\n        return i;\n"
    "    case 2:\n        return i < 0 ? 0 : n - 1;\n"
    "    case 3:\n        i %= n;\n        return i < 0 ? i + n : i;\n"
    "    default:\n        return -1;\n    }\n}\n\n";

/* The activations (printed only for a network with a layer that calls act()). */
static const char *ACT_HELPER =
    "/* The activations by their number in the runtime's rt_act (cnnrt.h). (The vector loops\n"
    " * do a relu themselves: some networks call act() only in their plain C loops.) */\n"
    "#ifdef __GNUC__\n__attribute__((unused))\n#endif\n"
    "static float act(int kind, float alpha, float v)\n{\n"
    "    switch (kind) {\n"
    "    case @RELU@: return v > 0.0f ? v : 0.0f;\n"
    "    case @LEAKYRELU@: return v > 0.0f ? v : alpha * v;\n"
    "    case @SIGMOID@: return 1.0f / (1.0f + expf(-v));\n"
    "    case @TANH@: return tanhf(v);\n"
    "    case @RELU6@: return v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;\n"
    "    case @SILU@: return v / (1.0f + expf(-v));\n"
    "    case @GELU@: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));\n"
    "    case @ELU@: return v > 0.0f ? v : alpha * expm1f(v);\n"
    "    default: return v;\n    }\n}\n\n";

/* The helpers the network's loops call: PAD_HELPER for convolutions, ACT_HELPER (its
 * @NAME@ place-holders replaced by the numbers of rt_act) for activations. */
static void emit_helpers(FILE *out, const ir_net *net)
{
    int conv = 0, acts = 0;
    for (int i = 1; i < net->n; i++) {
        const rt_layer *L = &net->nodes[i].L;
        const cnn_op *op = cnn_op_of(L->kind);   /* the padded copies call pad_index() */
        conv |= op->standalone_tmp && op->standalone_tmp(L) > 0;
        unsigned f = rt_op_of(L->kind)->flags;   /* the loops that call act() */
        acts |= (f & RT_OP_IS_ACT) || ((f & RT_OP_ACT) && rt_layer_act(L) != RT_ACT_NONE);
    }
    if (conv) fputs(PAD_HELPER, out);
    if (!acts) return;
    static const struct { const char *tag; rt_act a; } ACTS[] = {
        {"@RELU@", RT_ACT_RELU}, {"@LEAKYRELU@", RT_ACT_LEAKYRELU}, {"@SIGMOID@", RT_ACT_SIGMOID},
        {"@TANH@", RT_ACT_TANH}, {"@RELU6@", RT_ACT_RELU6}, {"@SILU@", RT_ACT_SILU},
        {"@GELU@", RT_ACT_GELU}, {"@ELU@", RT_ACT_ELU},
    };
    for (const char *p = ACT_HELPER; *p; p++) {
        int done = 0;
        for (size_t k = 0; *p == '@' && k < sizeof ACTS / sizeof ACTS[0] && !done; k++)
            if (strncmp(p, ACTS[k].tag, strlen(ACTS[k].tag)) == 0) {
                fprintf(out, "%d", (int)ACTS[k].a);
                p += strlen(ACTS[k].tag) - 1;
                done = 1;
            }
        if (!done) fputc(*p, out);
    }
}

/* One layer of the standalone file: its op's loops, on the plan's buffers (flatten and
 * dropout read their input's as it is). */
static void layer_code(FILE *o, const ir_net *net, const rt_plan *plan, char (*y)[40], char (*tmp)[40], int i)
{
    const rt_layer *L = &net->nodes[i].L;
    const rt_step *s = rt_plan_step(plan, i);
    if (s->alias != RT_ALIAS_NONE) memmove(y[i], y[L->src], sizeof y[i]); /* its source's name (src < i) */
    fprintf(o, "    /* line %d: %s -> %dx%dx%d */\n", L->line, net->nodes[i].text, L->out.c, L->out.h, L->out.w);
    if (s->alias != RT_ALIAS_NONE) {
        fprintf(o, "    /* (reads %s as it is: no copy) */\n", y[i]);
        return;
    }
    emit_ctx e = {.net = net, .step = s, .i = i, .in = y[L->src], .in2 = L->src2 >= 0 ? y[L->src2] : "", .y = y[i], .tmp = tmp[i], .out = o};
    cnn_op_of(L->kind)->emit_standalone(&e);
}

/* The vector types and the choice of copies, after the includes ("@N@": the network's
 * name). GCC and clang get the loops on GNU C vectors; on x86-64 with glibc the file holds
 * AVX-512 and AVX2 copies too, one picked by an ifunc resolver when the program is loaded
 * (cpuid and xgetbv read inline: no libgcc, unlike target_clones). */
static const char *const VECTOR_PREAMBLE =
    "#if defined(__GNUC__) && !defined(@N@_NO_VECTORS)\n"
    "#define @N@_SA_VECTORS 1\n"
    "typedef float sa_v4 __attribute__((vector_size(16)));\n"
    "typedef int sa_i4 __attribute__((vector_size(16)));\n"
    "#if defined(__x86_64__) && defined(__ELF__) && defined(__GLIBC__) && !defined(@N@_NO_CLONES)\n"
    "#define @N@_SA_CLONES 1\n"
    "#include <cpuid.h>\n"
    "typedef float sa_v8 __attribute__((vector_size(32)));\n"
    "typedef float sa_v16 __attribute__((vector_size(64)));\n"
    "typedef int sa_i8 __attribute__((vector_size(32)));\n"
    "typedef int sa_i16 __attribute__((vector_size(64)));\n"
    "#endif\n"
    /* the left and the right cells of n pairs held in two vectors (sa_pool.c) */
    "#if defined(__clang__) || __GNUC__ >= 12\n"
    "#define sa_even4(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)\n"
    "#define sa_odd4(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)\n"
    "#define sa_even8(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)\n"
    "#define sa_odd8(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)\n"
    "#define sa_even16(a, b) \\\n"
    "    __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)\n"
    "#define sa_odd16(a, b) \\\n"
    "    __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)\n"
    "#else\n"
    "#define sa_even4(a, b) __builtin_shuffle(a, b, (sa_i4){0, 2, 4, 6})\n"
    "#define sa_odd4(a, b) __builtin_shuffle(a, b, (sa_i4){1, 3, 5, 7})\n"
    "#define sa_even8(a, b) __builtin_shuffle(a, b, (sa_i8){0, 2, 4, 6, 8, 10, 12, 14})\n"
    "#define sa_odd8(a, b) __builtin_shuffle(a, b, (sa_i8){1, 3, 5, 7, 9, 11, 13, 15})\n"
    "#define sa_even16(a, b) \\\n"
    "    __builtin_shuffle(a, b, (sa_i16){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})\n"
    "#define sa_odd16(a, b) \\\n"
    "    __builtin_shuffle(a, b, (sa_i16){1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31})\n"
    "#endif\n"
    "#endif\n\n";

/* The ifunc resolver of @N@_layers: AVX-512 when the CPU has it and the OS saves its
 * registers (xgetbv bits 1, 2, 5-7), else AVX2 with FMA, else the 4-float copy. */
static const char *const VECTOR_PICK =
    "#if @N@_SA_CLONES\n"
    "__attribute__((used)) static void (*@N@_pick(void))(float *, const float *, const float *)\n{\n"
    "    unsigned a, b, c, d, lo, hi;\n"
    "#ifdef @N@_ONLY_AVX2 /* for tests on an AVX-512 machine */\n"
    "    return @N@_layers_v8;\n"
    "#endif\n"
    "    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & 1u << 27) || !(c & 1u << 12)) /* OSXSAVE, FMA */\n"
    "        return @N@_layers_v4;\n"
    "    __asm__(\"xgetbv\" : \"=a\"(lo), \"=d\"(hi) : \"c\"(0));\n"
    "    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || (lo & 6) != 6)\n"
    "        return @N@_layers_v4;\n"
    "    if ((lo & 0xe6) == 0xe6 && (b & 1u << 16)) /* AVX512F */\n"
    "        return @N@_layers_v16;\n"
    "    return b & 1u << 5 ? @N@_layers_v8 : @N@_layers_v4; /* AVX2 */\n"
    "}\n"
    "static void @N@_layers(float *m, const float *x, const float *W) __attribute__((ifunc(\"@N@_pick\")));\n"
    "#else\n"
    "static void @N@_layers(float *m, const float *x, const float *W)\n{\n    @N@_layers_v4(m, x, W);\n}\n"
    "#endif\n";

/* The optional main of a standalone file: reads binary PGM/PPM images (P5/P6, 8 or 16 bit),
 * converts them to the network's channels (grey as stb_image does), resizes them exactly as
 * cnnrun does (the runtime's rt_resize_impl.h, printed as it is), and prints the class of each. "@N@" stands
 * for the network's name. */
static const char *const STANDALONE_MAIN =
    "\n#ifdef @N@_MAIN\n"
    "#include <stdio.h>\n#include <stdlib.h>\n\n"
    "@RESIZE@\n"
    "/* One header field of a binary PGM/PPM: white space or '#' comments before it (at\n"
    " * least one), then 1 to 9 digits followed by white space or a comment. */\n"
    "static long pnm_field(FILE *f)\n{\n"
    "    int c = fgetc(f), sep = 0;\n"
    "    while (c == ' ' || c == '\\t' || c == '\\n' || c == '\\v' || c == '\\f' || c == '\\r' || c == '#') {\n"
    "        if (c == '#')\n            while (c != '\\n' && c != '\\r' && c != EOF)\n                c = fgetc(f);\n"
    "        c = fgetc(f);\n        sep = 1;\n    }\n"
    "    long v = 0;\n    int digits = 0;\n"
    "    for (; c >= '0' && c <= '9' && digits < 10; c = fgetc(f), digits++)\n        v = v * 10 + (c - '0');\n"
    "    if (!sep || digits < 1 || digits > 9 || !(c == ' ' || c == '\\t' || c == '\\n' || c == '\\v' || c == '\\f' || c == '\\r' || c == '#'))\n"
    "        return -1;\n"
    "    ungetc(c, f);\n    return v;\n}\n\n"
    "/* Reads a binary PGM (P5) or PPM (P6) with maxval 1..65535 (two big-endian bytes a sample\n"
    " * above 255), at most 16384 pixels a side and 2^25 in all, every sample present; samples\n"
    " * are scaled to 0..255 by 255 / maxval, rounded, as cnnrun does. Returns pixels\n"
    " * [h][w][ch] or NULL with *why set. */\n"
    "static unsigned char *read_pnm(const char *file, int *w, int *h, int *ch, const char **why)\n{\n"
    "    FILE *f = fopen(file, \"rb\");\n"
    "    *why = \"cannot open\";\n"
    "    if (!f)\n        return NULL;\n"
    "    int m0 = fgetc(f), m1 = fgetc(f);\n"
    "    long v[3] = {-1, -1, -1};\n"
    "    *why = \"not a binary PGM/PPM (P5/P6)\";\n"
    "    if (m0 == 'P' && (m1 == '5' || m1 == '6')) {\n"
    "        *why = \"bad PGM/PPM header\";\n"
    "        for (int k = 0; k < 3 && (k == 0 || v[k - 1] >= 0); k++)\n            v[k] = pnm_field(f);\n"
    "    }\n"
    "    int c = v[2] >= 0 ? fgetc(f) : EOF; /* the one white space before the pixels */\n"
    "    if (v[2] >= 0 && !(c == ' ' || c == '\\t' || c == '\\n' || c == '\\v' || c == '\\f' || c == '\\r'))\n"
    "        v[2] = -1;\n"
    "    if (v[2] >= 0 && (v[2] < 1 || v[2] > 65535)) {\n        *why = \"maxval not in 1..65535\";\n        v[2] = -1;\n    }\n"
    "    if (v[2] >= 0 && (v[0] < 1 || v[1] < 1 || v[0] > 16384 || v[1] > 16384 || v[0] * v[1] > 1L << 25)) {\n"
    "        *why = \"size not 1..16384 pixels a side, 2^25 in all\";\n        v[2] = -1;\n    }\n"
    "    if (v[2] < 0) {\n        fclose(f);\n        return NULL;\n    }\n"
    "    *w = (int)v[0];\n    *h = (int)v[1];\n    *ch = m1 == '6' ? 3 : 1;\n"
    "    const unsigned long maxv = (unsigned long)v[2];\n    const int bps = maxv > 255 ? 2 : 1;\n"
    "    size_t n = (size_t)*w * *h * *ch;\n"
    "    unsigned char *raw = malloc(n * bps), *px = malloc(n);\n"
    "    *why = \"truncated: fewer samples than the header announces\";\n"
    "    if (!raw || !px || fread(raw, 1, n * bps, f) != n * bps) {\n"
    "        if (!raw || !px)\n            *why = \"out of memory\";\n"
    "        free(raw);\n        free(px);\n        fclose(f);\n        return NULL;\n    }\n"
    "    fclose(f);\n"
    "    for (size_t i = 0; i < n; i++) {\n"
    "        unsigned long s = bps == 2 ? (unsigned long)raw[2 * i] << 8 | raw[2 * i + 1] : raw[i];\n"
    "        px[i] = (unsigned char)(((s > maxv ? maxv : s) * 255 + maxv / 2) / maxv);\n"
    "    }\n"
    "    free(raw);\n    return px;\n}\n\n"
    "int main(int argc, char **argv)\n{\n"
    "    if (argc < 2) {\n"
    "        fprintf(stderr, \"usage: %s IMAGE.pgm|IMAGE.ppm...\\n\", argv[0]);\n        return 2;\n    }\n"
    "    static float x[@N@_INPUT_C * @N@_INPUT_H * @N@_INPUT_W];\n"
    "    float probs[@N@_CLASSES];\n    int status = 0;\n"
    "    for (int a = 1; a < argc; a++) {\n"
    "        int w, h, ch;\n"
    "        const char *why;\n"
    "        unsigned char *px = read_pnm(argv[a], &w, &h, &ch, &why);\n"
    "        if (!px) {\n"
    "            fprintf(stderr, \"%s: not a readable image (%s)\\n\", argv[a], why);\n"
    "            status = 1;\n            continue;\n        }\n"
    "        /* the channels cnnrun resizes: grey (a grey network, or a grey image for a colour one,\n"
    "         * copied into every colour channel after) or RGB; grey from RGB as stb_image makes it */\n"
    "        const int comp = @N@_INPUT_C <= 2 || ch == 1 ? 1 : 3;\n"
    "        unsigned char *src = malloc((size_t)w * h * comp), *rs = malloc((size_t)@N@_INPUT_W * @N@_INPUT_H * comp);\n"
    "        if (src)\n"
    "            for (size_t i = 0; i < (size_t)w * h; i++) {\n"
    "                const unsigned char *p = px + i * ch;\n"
    "                if (comp == 3)\n                    memcpy(src + 3 * i, p, 3);\n"
    "                else\n                    src[i] = (unsigned char)(ch == 1 ? p[0] : (p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8);\n"
    "            }\n"
    "        if (!src || !rs || rt_resize_u8(src, w, h, comp, rs, @N@_INPUT_W, @N@_INPUT_H) != 0) {\n"
    "            fprintf(stderr, \"%s: out of memory\\n\", argv[a]);\n"
    "            free(src);\n            free(rs);\n            free(px);\n            return 1;\n        }\n"
    "        const size_t plane = (size_t)@N@_INPUT_H * @N@_INPUT_W;\n"
    "        for (int c = 0; c < @N@_INPUT_C; c++)\n"
    "            for (size_t i = 0; i < plane; i++) {\n"
    "                /* a second (grey+alpha) or fourth (RGBA) channel is opaque alpha */\n"
    "                int v = (@N@_INPUT_C == 2 && c == 1) || c == 3 ? 255 : comp == 1 ? rs[i] : rs[i * 3 + c];\n"
    "                x[c * plane + i] = (float)v / 255.0f;\n"
    "            }\n"
    "        free(src);\n        free(rs);\n"
    "        free(px);\n"
    "        int k = @N@_predict(x, probs);\n"
    "        printf(\"%s: %s %.4f\\n\", argv[a], @N@_class_names[k], probs[k]);\n"
    "    }\n"
    "    return status;\n}\n#endif\n";

/* rt_resize_impl.h as text (generated from the runtime's file at build time). */
static const char RESIZE_TEXT[] =
#include "resize_text.h"
    ;

static void emit_template(FILE *out, const char *t, const char *name)
{
    for (const char *p = t; *p; p++) {
        if (strncmp(p, "@RESIZE@", 8) == 0) {
            fputs(RESIZE_TEXT, out);
            p += 7;
        } else if (strncmp(p, "@N@", 3) == 0) {
            fputs(name, out);
            p += 2;
        } else {
            fputc(*p, out);
        }
    }
}

/* The context type's name, the functions' prefix and the header's guard come from the
 * network's name. The header documents the interface; the .c file includes it. */
static void emit_api(FILE *out, const ir_net *net, long arena)
{
    const rt_layer *in = &net->nodes[0].L;
    const char *n = net->name;
    int classes = net->nodes[net->n - 1].L.out.c;
    fprintf(out, "#define %s_INPUT_C %d\n#define %s_INPUT_H %d\n#define %s_INPUT_W %d\n#define %s_CLASSES %d\n",
            n, in->out.c, n, in->out.h, n, in->out.w, n, classes);
    fprintf(out, "/* Floats of one prediction's working memory (every layer's output, reused once read). */\n"
                 "#define %s_CTX_FLOATS %ld\n\n", n, arena > 0 ? arena : 1);
    fprintf(out, "/* How the .c computes: compiled by GCC or clang (__GNUC__), its loops run on the compiler's\n"
                 " * vector types (any architecture; plain -O2 is enough). On x86-64 with glibc it also holds\n"
                 " * AVX2 and AVX-512 copies of them, and an ifunc resolver picks the widest the CPU and OS\n"
                 " * support when the program is loaded (cpuid read inline: still nothing but libc and libm).\n"
                 " * Define %s_NO_CLONES to keep only the portable vector loops, %s_NO_VECTORS for plain C\n"
                 " * loops (what other compilers get), %s_ONLY_AVX2 to force the AVX2 copy (for tests).\n"
                 " * Every copy sums each output in the same order; they differ only in the last bits where\n"
                 " * one fuses multiply-adds (gcc does in its default GNU C mode, not with -std=c11). */\n",
            n, n, n);
    fprintf(out, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    fprintf(out, "/* Class names, in the order of the probabilities. */\n"
                 "extern const char *const %s_class_names[%s_CLASSES];\n\n", n, n);
    fprintf(out, "/* The working memory of one prediction at a time: give each thread its own to predict\n"
                 " * in parallel (%ld bytes; allocate it with malloc if that is large for a stack). */\n"
                 "typedef struct {\n    float arena[%s_CTX_FLOATS];\n", (arena > 0 ? arena : 1) * 4, n);
    if (in->norm)
        fprintf(out, "    float input[%s_INPUT_C * %s_INPUT_H * %s_INPUT_W]; /* normalised */\n", n, n, n);
    fprintf(out, "} %s_ctx;\n\n", n);
    fprintf(out, "/* input: one image of %s_INPUT_C x %s_INPUT_H x %s_INPUT_W floats, planar [c][h][w] (channel\n"
                 " * planes one after the other, rows top to bottom), each pixel value / 255 (0 black, 1\n"
                 " * white), channels as the training images had them (1 grey, 3 RGB)%s. probs: %s_CLASSES\n"
                 " * floats, the softmax of the network's output. Returns the most probable class. */\n"
                 "int %s_predict_ctx(%s_ctx *ctx, const float *input, float *probs);\n"
                 "/* As %s_predict_ctx with one context of its own: not for two threads at once. */\n"
                 "int %s_predict(const float *input, float *probs);\n"
                 "/* n images one after the other in inputs; probs gets n rows of %s_CLASSES (may be NULL),\n"
                 " * classes the n predicted classes (may be NULL). */\n"
                 "void %s_predict_batch(%s_ctx *ctx, const float *inputs, int n, float *probs, int *classes);\n\n",
            n, n, n, in->norm ? "; the input layer's mean and std are applied here" : "", n, n, n, n, n, n, n, n);
    fprintf(out, "#ifdef __cplusplus\n}\n#endif\n");
}

/* The upper-case guard of a header name: FASHION_H for fashion.h. */
static void guard_of(const char *name, char *g, size_t len)
{
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < len; p++, k++)
        g[k] = (*p >= 'a' && *p <= 'z') ? (char)(*p - 32) : ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) ? *p : '_';
    g[k] = 0;
}

/* The per-layer scratch of the standalone loops and the memory plan over it. */
static int plan_memory(const ir_net *net, const rt_netdesc *d, const rt_plan *plan, rt_memplan *m)
{
    long *tmp = cnn_xcalloc((size_t)net->n, sizeof *tmp);
    for (int i = 1; i < net->n; i++) {
        const cnn_op *op = cnn_op_of(net->nodes[i].L.kind);
        if (op->standalone_tmp) tmp[i] = op->standalone_tmp(&net->nodes[i].L);
    }
    char err[RT_ERRLEN];
    int rc = rt_memplan_infer(d, plan, tmp, m, err);
    free(tmp);
    return rc;
}

long emit_standalone_arena(const ir_net *net, long *naive)
{
    rt_netdesc d;
    ir_to_desc(net, &d);
    rt_plan plan;
    rt_memplan m;
    char err[RT_ERRLEN];
    long total = -1;
    if (rt_plan_build(&d, &plan, err) == 0) {
        rt_plan_unfold(&plan); /* the standalone loops run every layer themselves */
        if (plan_memory(net, &d, &plan, &m) == 0) {
            total = m.total;
            if (naive) *naive = m.naive;
            rt_memplan_free(&m);
        }
        rt_plan_free(&plan);
    }
    ir_desc_free(&d);
    return total;
}

int emit_standalone_header(const ir_net *net, const emit_opts *o, const char *hname, FILE *out)
{
    char guard[128];
    guard_of(hname, guard, sizeof guard);
    char what[160];
    snprintf(what, sizeof what, "the interface of %s_predict (standalone inference)", net->name);
    emit_header_comment(net, o, out, hname, what, "include it; compile and link the .c beside it");
    fprintf(out, "#ifndef %s\n#define %s\n\n", guard, guard);
    long arena = emit_standalone_arena(net, NULL);
    if (arena < 0) return -1;
    emit_api(out, net, arena);
    fprintf(out, "\n#endif\n");
    return ferror(out) ? -1 : 0;
}

int emit_standalone(const ir_net *net, const emit_opts *o, const float *params, const float *state,
                    char *const *classnames, FILE *out)
{
    const rt_layer *last = &net->nodes[net->n - 1].L;
    const char *nm = net->name;
    int classes = last->out.c;
    char build[512];
    snprintf(build, sizeof build, "cc -O2 -c %s.c  (or with -D%s_MAIN for a classifier of .pgm/.ppm files: "
             "cc -O2 -D%s_MAIN %s.c -lm -o %s)", nm, nm, nm, nm, nm);
    char cname[256] = "";
    if (o->header && strlen(o->header) < sizeof cname) { /* NET.h is the .c's name with .h */
        strcpy(cname, o->header);
        size_t len = strlen(cname);
        if (len > 2 && strcmp(cname + len - 2, ".h") == 0) cname[len - 1] = 'c';
    }
    emit_header_comment(net, o, out, cname[0] ? cname : NULL, "standalone inference with trained weights", build);
    fprintf(out, "#include <math.h>\n#include <stddef.h>\n#include <string.h>\n\n");
    if (o->header) fprintf(out, "#include \"%s\"\n\n", o->header);
    emit_template(out, VECTOR_PREAMBLE, nm);
    rt_netdesc d;
    ir_to_desc(net, &d);
    rt_plan plan;
    rt_memplan m;
    char perr[RT_ERRLEN];
    if (rt_plan_build(&d, &plan, perr) != 0) {
        ir_desc_free(&d);
        return -1;
    }
    rt_plan_unfold(&plan); /* the standalone loops run every layer themselves */
    if (plan_memory(net, &d, &plan, &m) != 0) {
        rt_plan_free(&plan);
        ir_desc_free(&d);
        return -1;
    }
    if (!o->header) emit_api(out, net, m.total); /* one file: the interface comes first */
    fprintf(out, "\nconst char *const %s_class_names[%s_CLASSES] = {", nm, nm);
    for (int k = 0; k < classes; k++) {
        fputc('"', out);
        const char *cn = classnames && classnames[k] ? classnames[k] : NULL;
        if (cn) {
            for (const char *p = cn; *p; p++) {
                if (*p == '"' || *p == '\\') fputc('\\', out);
                if ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f) fputc(*p, out);
            }
        } else {
            fprintf(out, "%d", k);
        }
        fprintf(out, "\"%s", k + 1 < classes ? ", " : "");
    }
    fprintf(out, "};\n\n");
    /* the weights in the order the loops read them */
    float *w = cnn_xcalloc(d.nparams ? d.nparams : 1, sizeof *w);
    memcpy(w, params, d.nparams * sizeof *w);
    for (int i = 1; i < net->n; i++) {
        const cnn_op *op = cnn_op_of(net->nodes[i].L.kind);
        if (op->standalone_layout) op->standalone_layout(&net->nodes[i].L, w);
    }
    fprintf(out, "/* Trained parameters (convolution and dense weights in the order their loops read them:\n"
                 " * [group][block of up to 32 outputs][input][ky][kx][output in block]; biases, batchnorm\n"
                 " * gamma/beta) and batchnorm running statistics. */\n");
    emit_array(out, "W", w, d.nparams);
    free(w);
    if (d.nstate) emit_array(out, "ST", state, d.nstate);
    fputc('\n', out);
    emit_helpers(out, net);
    char (*y)[40] = cnn_xcalloc((size_t)net->n, sizeof *y);
    char (*tmp)[40] = cnn_xcalloc((size_t)net->n, sizeof *tmp);
    snprintf(y[0], sizeof y[0], "x");
    for (int i = 1; i < net->n; i++) {
        if (m.out_off[i] >= 0) snprintf(y[i], sizeof y[i], "(m + %ld)", m.out_off[i]);
        if (m.tmp_off[i] >= 0) snprintf(tmp[i], sizeof tmp[i], "(m + %ld)", m.tmp_off[i]);
    }
    /* the layers, once per vector variant (sa_conv_target), every copy the same sums; W
     * comes in as a parameter (it shadows the array) so that gcc does not try to fold loads
     * from the big constant array, which made compiling a network take minutes */
    static const struct { int vec; const char *cond, *attr; } VARIANTS[] = {
        {16, "#if %s_SA_VECTORS && %s_SA_CLONES\n", "__attribute__((target(\"avx512f,avx2,fma\"))) "},
        {8, "", "__attribute__((target(\"avx2,fma\"))) "},
        {4, "#endif\n#if %s_SA_VECTORS\n", ""},
    };
    for (size_t v = 0; v < sizeof VARIANTS / sizeof VARIANTS[0]; v++) {
        fprintf(out, VARIANTS[v].cond, nm, nm);
        sa_conv_target(VARIANTS[v].vec);
        fprintf(out, "/* The layers on %d-float vectors. */\n%sstatic void %s_layers_v%d(float *const m, const float *x, const float *W)\n{\n",
                VARIANTS[v].vec, VARIANTS[v].attr, nm, VARIANTS[v].vec);
        for (int i = 1; i < net->n; i++) layer_code(out, net, &plan, y, tmp, i);
        fprintf(out, "    (void)m;\n    (void)x;\n}\n");
        if (VARIANTS[v].vec == 4) emit_template(out, VECTOR_PICK, nm);
    }
    fprintf(out, "#endif\n\n");
    sa_conv_target(0);
    fprintf(out, "int %s_predict_ctx(%s_ctx *ctx, const float *input, float *probs)\n{\n"
                 "    float *const m = ctx->arena; /* the memory plan: each layer's output at its offset */\n"
                 "    const float *x = input;\n", nm, nm);
    const rt_layer *L0 = &net->nodes[0].L;
    if (L0->norm) { /* as the runtime's rt_input_normalize: (x - mean) / std per channel */
        fprintf(out, "    static const float mean[%d] = {", L0->out.c);
        for (int c = 0; c < L0->out.c; c++) fprintf(out, "%s%s", c ? ", " : "", emit_f(L0->mean[c < 4 ? c : 3]));
        fprintf(out, "}, sd[%d] = {", L0->out.c);
        for (int c = 0; c < L0->out.c; c++) fprintf(out, "%s%s", c ? ", " : "", emit_f(L0->std[c < 4 ? c : 3]));
        fprintf(out, "};\n"
                     "    for (int c = 0; c < %d; c++)\n"
                     "        for (int k = 0; k < %d; k++)\n"
                     "            ctx->input[c * %d + k] = (input[c * %d + k] - mean[c]) / sd[c];\n"
                     "    x = ctx->input;\n",
                L0->out.c, L0->out.h * L0->out.w, L0->out.h * L0->out.w, L0->out.h * L0->out.w);
    }
    /* the plain C copy stays in this function, on the arena itself: as a function of its
     * own taking pointers, gcc -O2 packed its statements into vectors far worse (cnn3 415 ->
     * 360 images/s, resnet_tiny 145 -> 96) */
    fprintf(out, "#if %s_SA_VECTORS\n    %s_layers(m, x, W);\n#else\n", nm, nm);
    for (int i = 1; i < net->n; i++) layer_code(out, net, &plan, y, tmp, i);
    fprintf(out, "#endif\n");
    fprintf(out, "    (void)m;\n    /* softmax */\n"
                 "    float mx = %s[0];\n    int best = 0;\n"
                 "    for (int k = 1; k < %d; k++)\n        if (%s[k] > mx) {\n            mx = %s[k];\n            best = k;\n        }\n"
                 "    float sum = 0.0f;\n"
                 "    for (int k = 0; k < %d; k++) {\n        probs[k] = expf(%s[k] - mx);\n        sum += probs[k];\n    }\n"
                 "    for (int k = 0; k < %d; k++)\n        probs[k] /= sum;\n"
                 "    return best;\n}\n\n",
            y[net->n - 1], classes, y[net->n - 1], y[net->n - 1], classes, y[net->n - 1], classes);
    fprintf(out, "int %s_predict(const float *input, float *probs)\n{\n"
                 "    static %s_ctx ctx;\n    return %s_predict_ctx(&ctx, input, probs);\n}\n\n", nm, nm, nm);
    fprintf(out, "void %s_predict_batch(%s_ctx *ctx, const float *inputs, int n, float *probs, int *classes)\n{\n"
                 "    float p[%s_CLASSES];\n"
                 "    for (int i = 0; i < n; i++) {\n"
                 "        float *pi = probs ? probs + (size_t)i * %s_CLASSES : p;\n"
                 "        int k = %s_predict_ctx(ctx, inputs + (size_t)i * %s_INPUT_C * %s_INPUT_H * %s_INPUT_W, pi);\n"
                 "        if (classes)\n            classes[i] = k;\n    }\n}\n",
            nm, nm, nm, nm, nm, nm, nm, nm);
    emit_template(out, STANDALONE_MAIN, nm);
    free(y);
    free(tmp);
    rt_memplan_free(&m);
    rt_plan_free(&plan);
    ir_desc_free(&d);
    return ferror(out) ? -1 : 0;
}
