/*
 * buildline.h - the command cnnc prints after -o to build the generated program, made to
 * work as printed from wherever this cnnc runs: a build tree, an install, a staged copy.
 */
#ifndef CNNC_BUILDLINE_H
#define CNNC_BUILDLINE_H

#include <stddef.h>

/* Writes into buf the shell command that compiles the C file cfile (as the user named it)
 * into the program prog against libcnnrt. Returns 0, or -1 if buf is too small. */
int cnnc_build_line(char *buf, size_t size, const char *cfile, const char *prog);

#endif
