/*
 * frontend.c - reads a .cnn file and runs the front end's stages in order: parse
 * (grammar/), expand (expand.c), shape inference (shape.c). Each stage runs only when
 * the one before it succeeded, so that one mistake gives one message, not a cascade.
 */
#include "frontend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "diag.h"
#include "expand.h"
#include "parse_ctx.h"
#include "shape.h"
#include "util.h"

enum { MAX_SOURCE = 16 << 20 }; /* a network description is a few KB; refuse absurd files */

/* The file name without folders and extension, made into a C identifier. */
static void default_name(const char *path, char *out, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strcspn(base, ".");
    if (len >= n) len = n - 1;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        char c = base[i];
        int ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        out[j++] = ok ? c : '_';
    }
    out[j] = '\0';
    if (j == 0 || (out[0] >= '0' && out[0] <= '9')) {
        memmove(out + 1, out, j + 1 < n - 1 ? j + 1 : n - 2);
        out[0] = 'n';
        out[n - 1] = '\0';
    }
}

int cnn_compile(const char *path, const char *text, size_t len, ir_net *net, FILE *errout)
{
    char *owned = NULL;
    ir_init(net); /* usable (and freeable) on every return */
    if (!text) {
        struct stat st;
        if (stat(path, &st) != 0) {
            fprintf(errout, "%s: error: cannot open: %s\n", path, strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            fprintf(errout, "%s: error: is a folder, not a .cnn file\n", path);
            return 1;
        }
        if (st.st_size > MAX_SOURCE) {
            fprintf(errout, "%s: error: file is %lld bytes; a .cnn file is at most %d bytes\n", path,
                    (long long)st.st_size, MAX_SOURCE);
            return 1;
        }
        owned = cnn_read_file(path, &len);
        if (!owned) {
            fprintf(errout, "%s: error: cannot read: %s\n", path, strerror(errno));
            return 1;
        }
        text = owned;
    }
    cnn_diag diag;
    diag_init(&diag, path, text, len, errout);
    cnn_parse_ctx ctx = {.diag = &diag};
    char name[64];
    default_name(path, name, sizeof name);
    if (cnn_parse(&ctx, text, len) == 0 && cnn_expand(ctx.program, name, net, &diag) == 0)
        shape_infer(net, &diag);
    ast_free(ctx.program);
    if (diag.nerrors == 0 && ctx.program == NULL && net->n == 0) diag.nerrors = 1;
    diag_finish(&diag);
    free(owned);
    return diag.nerrors;
}
