/*
 * cnnc.c - the compiler driver: checks a .cnn file, shows what the network is (summary
 * table, Graphviz drawing, resolved layers), and generates C: a training program that
 * links libcnnrt, or with --standalone an inference file with the weights baked in.
 * Exit codes: 0 ok, 1 input error, 2 usage error.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildline.h"
#include "emit.h"
#include "util.h"
#include "frontend.h"
#include "report.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cnnc FILE.cnn [--summary | --check | --dot | --ir | --plan] [-o OUT]\n"
            "       cnnc FILE.cnn... --check\n"
            "       cnnc FILE.cnn -o NET.c [--max-batch N]\n"
            "       cnnc FILE.cnn --standalone --weights MODEL -o NET.c\n"
            "\n"
            "Checks a .cnn network description, shows what it is, or compiles it to C.\n"
            "\n"
            "  --summary       print a table of layers: source line, output shape, parameters,\n"
            "                  MFLOPs, and totals (the default without -o)\n"
            "  --check         only check the file; print nothing when it is valid. Several files\n"
            "                  may be given: each is checked, and the exit status is 1 if any fails\n"
            "  --dot           print the network as a Graphviz graph\n"
            "                  (cnnc net.cnn --dot | dot -Tpng -o net.png)\n"
            "  --ir            print the resolved layers, one line each with every field (for scripts)\n"
            "  --plan          print the execution plan that cnnrun runs and -o compiles: which\n"
            "                  layers copy nothing (aliases), which gradients add or overwrite,\n"
            "                  and the fusions\n"
            "  -o OUT          write the output to OUT; without --summary/--dot/--ir this writes\n"
            "                  the network as a C program with the same command line as cnnrun\n"
            "                  (--train, --eval, --predict, --bench, --dump), and print the line\n"
            "                  that builds it (installed: cc -O2 NET.c $(pkg-config --cflags\n"
            "                  --libs cnnrt) -o NET; from a build tree, its own -I, -L and rpath)\n"
            "  --max-batch N   images per batch the program's static buffers hold\n"
            "                  (default: the batch of the train section, or 32)\n"
            "  --standalone    with --weights: inference only, weights baked in, needs only libc\n"
            "                  and libm; exposes int NAME_predict(const float *in, float *probs)\n"
            "                  and, built with -DNAME_MAIN, a main that classifies .pgm/.ppm files\n"
            "  --weights MODEL the trained weights for --standalone\n"
            "  -h, --help      show this help\n"
            "  --version       show the version\n"
            "\n"
            "Exit status: 0 success, 1 errors in the file (each shown as file:line:col with the\n"
            "line and a caret) or a file that cannot be read or written, 2 wrong command line.\n"
            "The language is described in doc/language.md; train networks with cnnrun(1).\n");
}

typedef enum { M_DEFAULT, M_SUMMARY, M_CHECK, M_DOT, M_IR, M_PLAN } mode_t_;

/* Writes with fn into a temporary file beside path, then renames it over path, so that
 * a failure never leaves a half-written file under the final name (rt_atomic_file). */
static int write_atomic(const char *path, int (*fn)(void *ctx, FILE *f), void *ctx)
{
    rt_atomic_file a;
    if (rt_atomic_open(&a, path) < 0) {
        fprintf(stderr, "cnnc: cannot write '%s': %s\n", path, strerror(errno));
        return 1;
    }
    errno = 0;
    if (rt_atomic_close(&a, fn(ctx, a.f) == 0, 0) < 0) {
        fprintf(stderr, "cnnc: cannot write '%s': %s\n", path, errno ? strerror(errno) : "write error");
        return 1;
    }
    return 0;
}

typedef struct {
    const ir_net *net;
    mode_t_ mode;
    const char *file;
    emit_opts eo;
    const float *params, *state;
    char **classnames;
} job;

static int run_job(void *ctx, FILE *out)
{
    job *j = ctx;
    switch (j->mode) {
    case M_SUMMARY: report_summary(j->net, j->file, out); return 0;
    case M_DOT: report_dot(j->net, out); return 0;
    case M_IR: report_ir(j->net, out); return 0;
    case M_PLAN: return report_plan(j->net, out);
    default:
        if (j->params) return emit_standalone(j->net, &j->eo, j->params, j->state, j->classnames, out);
        return emit_program(j->net, &j->eo, out);
    }
}

static int run_header(void *ctx, FILE *out)
{
    job *j = ctx;
    return emit_standalone_header(j->net, &j->eo, j->eo.header, out);
}

static int parse_count(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 1 || v > 65536) return -1;
    *out = (int)v;
    return 0;
}

/* Reads trained weights into arrays laid out as the network's description says. */
static int load_weights(const ir_net *net, const char *wfile, rt_netdesc *d, float **params,
                        float **state, char ***names, int *nnames)
{
    char err[RT_ERRLEN] = "";
    ir_to_desc(net, d);
    *params = calloc(d->nparams ? d->nparams : 1, sizeof(float));
    *state = calloc(d->nstate ? d->nstate : 1, sizeof(float));
    if (!*params || !*state) {
        fprintf(stderr, "cnnc: out of memory\n");
        return 1;
    }
    if (rt_weights_read(wfile, d, *params, *state, names, nnames, err) != 0) {
        fprintf(stderr, "cnnc: %s\n", err);
        return 1;
    }
    return 0;
}

/* cnnc A.cnn B.cnn --check: every file checked (all their errors shown), then a line that
 * names those with errors when there were several files; 1 if any failed. */
static int check_files(char **files, int nfiles)
{
    int failed = 0;
    for (int i = 0; i < nfiles; i++) {
        ir_net net;
        if (cnn_compile(files[i], NULL, 0, &net, stderr) != 0) {
            files[failed++] = files[i]; /* keep the failed ones at the front, in order */
        }
        ir_free(&net);
    }
    if (failed && nfiles > 1) {
        fprintf(stderr, "cnnc: %d of %d files have errors:", failed, nfiles);
        for (int i = 0; i < failed; i++) fprintf(stderr, " %s", files[i]);
        fputc('\n', stderr);
    }
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *outpath = NULL, *weights = NULL;
    /* every FILE argument, for --check, gathered at the front of argv (slot nfiles is
     * always behind the argument being read, so nothing unread is overwritten) */
    char **files = argv;
    int nfiles = 0;
    mode_t_ mode = M_DEFAULT;
    int nmodes = 0, standalone = 0, max_batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("cnnc %s\n", PACKAGE_VERSION);
            return 0;
        } else if (strcmp(a, "--summary") == 0) {
            mode = M_SUMMARY, nmodes++;
        } else if (strcmp(a, "--check") == 0) {
            mode = M_CHECK, nmodes++;
        } else if (strcmp(a, "--dot") == 0) {
            mode = M_DOT, nmodes++;
        } else if (strcmp(a, "--ir") == 0) {
            mode = M_IR, nmodes++;
        } else if (strcmp(a, "--plan") == 0) {
            mode = M_PLAN, nmodes++;
        } else if (strcmp(a, "--standalone") == 0) {
            standalone = 1;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--weights") == 0 || strcmp(a, "--max-batch") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cnnc: %s needs a value (see cnnc --help)\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (a[1] == 'o') outpath = v;
            else if (a[2] == 'w') weights = v;
            else if (parse_count(v, &max_batch) != 0) {
                fprintf(stderr, "cnnc: --max-batch takes a whole number from 1 to 65536, not '%s'\n", v);
                return 2;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "cnnc: unknown option '%s' (see cnnc --help)\n", a);
            return 2;
        } else {
            if (!file) file = a;
            files[nfiles++] = argv[i];
        }
    }
    if (nfiles > 1 && mode != M_CHECK) {
        fprintf(stderr, "cnnc: more than one input file ('%s' and '%s'); several files go only with --check\n",
                files[0], files[1]);
        return 2;
    }
    if (!file) {
        fprintf(stderr, "cnnc: no input file\nusage: cnnc FILE.cnn [--summary | --check | --dot | --ir | --plan] [-o OUT]\n");
        return 2;
    }
    if (nmodes > 1) {
        fprintf(stderr, "cnnc: choose one of --summary, --check, --dot, --ir and --plan\n");
        return 2;
    }
    if (standalone && (nmodes || !weights || !outpath)) {
        fprintf(stderr, "cnnc: --standalone needs --weights MODEL and -o NET.c (and no --summary/--dot/--ir/--plan)\n");
        return 2;
    }
    if (weights && !standalone) {
        fprintf(stderr, "cnnc: --weights goes with --standalone\n");
        return 2;
    }
    if (max_batch && (nmodes || standalone || !outpath)) {
        fprintf(stderr, "cnnc: --max-batch goes with -o NET.c (the training program)\n");
        return 2;
    }
    if (mode == M_DEFAULT && !outpath) mode = M_SUMMARY;
    if (mode == M_CHECK && !standalone && !max_batch) {
        return check_files(files, nfiles);
    }

    ir_net net;
    if (cnn_compile(file, NULL, 0, &net, stderr) != 0) {
        ir_free(&net);
        return 1;
    }
    job j = {.net = &net, .mode = mode, .file = file, .eo = {.source = file, .max_batch = max_batch}};
    rt_netdesc d = {0};
    float *params = NULL, *state = NULL;
    char **names = NULL;
    int nnames = 0, rc = 0;
    if (standalone) {
        rc = load_weights(&net, weights, &d, &params, &state, &names, &nnames);
        if (rc == 0) {
            j.params = params;
            j.state = state;
            j.classnames = nnames == net.nodes[net.n - 1].L.out.c ? names : NULL;
        }
    }
    if (rc == 0 && mode != M_CHECK) {
        char *hpath = NULL;
        if (outpath && standalone) {
            /* NET.c gets NET.h beside it, written first: the .c includes it */
            size_t len = strlen(outpath);
            hpath = cnn_xcalloc(len + 3, 1);
            memcpy(hpath, outpath, len);
            if (len > 2 && strcmp(outpath + len - 2, ".c") == 0) hpath[len - 1] = 'h';
            else memcpy(hpath + len, ".h", 2);
            const char *hb = strrchr(hpath, '/');
            j.eo.header = hb ? hb + 1 : hpath;
            rc = write_atomic(hpath, run_header, &j);
        }
        if (outpath) {
            if (rc == 0) rc = write_atomic(outpath, run_job, &j);
        } else {
            rc = run_job(&j, stdout);
            if (fflush(stdout) != 0 || ferror(stdout)) {
                perror("cnnc: standard output");
                rc = 1;
            }
        }
        if (rc == 0 && mode == M_DEFAULT) {
            if (standalone)
                fprintf(stderr, "cnnc: wrote %s and %s; compile it with: cc -O2 -c %s (needs only libc and libm;\n"
                                "      -D%s_MAIN -lm builds a classifier of .pgm/.ppm images)\n",
                        outpath, hpath, outpath, net.name);
            else {
                /* the program beside its C file, named as the file without .c; the line
                 * names the file as given, so it works from the folder cnnc ran in */
                char prog[4096], line[16384];
                snprintf(prog, sizeof prog, "%s", outpath);
                size_t plen = strlen(prog);
                if (plen > 2 && strcmp(prog + plen - 2, ".c") == 0) prog[plen - 2] = '\0';
                else snprintf(prog, sizeof prog, "%s.out", outpath); /* never the C file itself */
                if (cnnc_build_line(line, sizeof line, outpath, prog) == 0)
                    fprintf(stderr, "cnnc: wrote %s; build it with: %s\n", outpath, line);
                else
                    fprintf(stderr, "cnnc: wrote %s\n", outpath);
            }
        }
        free(hpath);
    }
    if (names) rt_names_free(names, nnames);
    free(params);
    free(state);
    if (d.layers) ir_desc_free(&d);
    ir_free(&net);
    return rc;
}
