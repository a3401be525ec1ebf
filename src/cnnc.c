/*
 * cnnc.c - the compiler driver: checks a .cnn file and shows what the network is
 * (summary table, Graphviz drawing). Exit codes: 0 ok, 1 input error, 2 usage error.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "frontend.h"
#include "report.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cnnc FILE.cnn [--summary | --check | --dot] [-o OUT]\n"
            "\n"
            "Checks a .cnn network description and shows what it is.\n"
            "\n"
            "  --summary     print a table of layers: source line, output shape, parameters,\n"
            "                MFLOPs, and totals (the default)\n"
            "  --check       only check the file; print nothing when it is valid\n"
            "  --dot         print the network as a Graphviz graph (cnnc net.cnn --dot | dot -Tpng -o net.png)\n"
            "  -o OUT        write the output of --summary or --dot to OUT instead of standard output\n"
            "  -h, --help    show this help\n"
            "  --version     show the version\n"
            "\n"
            "Exit status: 0 valid, 1 errors in the file (each shown as file:line:col with the\n"
            "line and a caret), 2 wrong command line.\n"
            "The language is described in doc/language.md; train networks with cnnrun(1).\n");
}

int main(int argc, char **argv)
{
    const char *file = NULL, *outpath = NULL;
    enum { SUMMARY, CHECK, DOT } mode = SUMMARY;
    int nmodes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("cnnc %s\n", PACKAGE_VERSION);
            return 0;
        } else if (strcmp(a, "--summary") == 0) {
            mode = SUMMARY, nmodes++;
        } else if (strcmp(a, "--check") == 0) {
            mode = CHECK, nmodes++;
        } else if (strcmp(a, "--dot") == 0) {
            mode = DOT, nmodes++;
        } else if (strcmp(a, "-o") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cnnc: -o needs a file name\n");
                return 2;
            }
            outpath = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "cnnc: unknown option '%s' (see cnnc --help)\n", a);
            return 2;
        } else if (file) {
            fprintf(stderr, "cnnc: more than one input file ('%s' and '%s')\n", file, a);
            return 2;
        } else {
            file = a;
        }
    }
    if (!file) {
        fprintf(stderr, "cnnc: no input file\nusage: cnnc FILE.cnn [--summary | --check | --dot] [-o OUT]\n");
        return 2;
    }
    if (nmodes > 1) {
        fprintf(stderr, "cnnc: choose one of --summary, --check and --dot\n");
        return 2;
    }
    ir_net net;
    if (cnn_compile(file, NULL, 0, &net, stderr) != 0) {
        ir_free(&net);
        return 1;
    }
    FILE *out = stdout;
    if (outpath && mode != CHECK) {
        out = fopen(outpath, "w");
        if (!out) {
            perror(outpath);
            ir_free(&net);
            return 1;
        }
    }
    if (mode == SUMMARY) report_summary(&net, file, out);
    else if (mode == DOT) report_dot(&net, out);
    int rc = 0;
    if (out != stdout && fclose(out) != 0) {
        perror(outpath);
        rc = 1;
    } else if (out == stdout && fflush(stdout) != 0) {
        perror("cnnc: standard output");
        rc = 1;
    }
    ir_free(&net);
    return rc;
}
