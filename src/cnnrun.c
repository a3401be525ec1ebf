/*
 * cnnrun.c - the interpreter driver: compiles a .cnn file with the front end, hands the
 * network description to the runtime's interpreter and its shared command line
 * (train, evaluate, predict). Exit codes: 0 ok, 1 input or run error, 2 usage error.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cnnrun NET.cnn --train DIR [options]\n"
            "       cnnrun NET.cnn --eval DIR --weights MODEL [options]\n"
            "       cnnrun NET.cnn --predict IMAGE... --weights MODEL\n"
            "\n"
            "Trains, evaluates or applies the network described in NET.cnn (see doc/language.md).\n"
            "DIR is a folder with one subfolder of images per class, a Kaggle Tom & Jerry\n"
            "download (with ground_truth.csv), or a folder of IDX files such as\n"
            "/usr/share/datasets/fashion-mnist. 'cnnrun NET.cnn --help' lists every option\n"
            "with the defaults of that network's train { } section.\n"
            "\n"
            "Exit status: 0 ok, 1 error in the network, the data or a file, 2 wrong command line.\n");
}

/* The runtime builds interpreter models through this, for any batch size and threads. */
static rt_model *make_interpreter(void *ctx, int max_batch, int threads, char *err)
{
    return rt_net_create((const rt_netdesc *)ctx, max_batch, threads, err);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("cnnrun %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "cnnrun: the first argument is the network file, not '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    const char *file = argv[1];
    ir_net net;
    if (cnn_compile(file, NULL, 0, &net, stderr) != 0) {
        ir_free(&net);
        return 1;
    }
    rt_netdesc desc;
    ir_to_desc(&net, &desc);
    size_t plen = strlen(file) + 16;
    char *prog = malloc(plen);
    if (!prog) {
        fprintf(stderr, "cnnrun: out of memory\n");
        return 1;
    }
    snprintf(prog, plen, "cnnrun %s", file);
    /* argv[1] (the file) stands where a program name would */
    int rc = rt_cli_main(argc - 1, argv + 1, prog, &desc, &net.train, make_interpreter, &desc);
    free(prog);
    ir_desc_free(&desc);
    ir_free(&net);
    return rc;
}
