/*
 * emit.h - the C generator: writes one readable C11 file for a network, with every
 * shape a constant, buffers static, and calls to the runtime's kernels (training
 * program), or a dependency-free inference file with the weights baked in (standalone).
 */
#ifndef CNN_EMIT_H
#define CNN_EMIT_H

#include <stdio.h>

#include "ir.h"

typedef struct {
    const char *source;     /* the .cnn file, named in comments */
    int max_batch;          /* static buffers hold this many images (0: the train batch) */
    const char *header;     /* standalone: the header file the .c includes (NULL: none, the
                               interface is printed in the .c) */
} emit_opts;

/* The comment that opens every generated file. */
void emit_header_comment(const ir_net *net, const emit_opts *o, FILE *out, const char *fname, const char *what,
                         const char *build);
/* The training/evaluation program linking libcnnrt. Returns 0, or -1 on a write error. */
int emit_program(const ir_net *net, const emit_opts *o, FILE *out);
/* Inference only, depending on libc and libm alone; params/state as trained. */
int emit_standalone(const ir_net *net, const emit_opts *o, const float *params,
                    const float *state, char *const *classnames, FILE *out);
/* The standalone file's header: sizes, the context type and the functions, documented. */
int emit_standalone_header(const ir_net *net, const emit_opts *o, const char *hname, FILE *out);
/* Floats of the standalone context (the inference memory plan's arena) for one image, and
 * in *naive (may be NULL) what every buffer of its own would take; -1 on failure. */
long emit_standalone_arena(const ir_net *net, long *naive);

#endif
