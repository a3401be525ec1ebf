/*
 * sa_conv.h - the standalone file's convolution and dense loops (sa_conv.c): what they
 * need to know of a layer, the scratch they use, and the weight layout they read.
 */
#ifndef CNN_SA_CONV_H
#define CNN_SA_CONV_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    int ic, ih, iw, oc, oh, ow;
    int kh, kw, sh, sw, dh, dw, groups;
    int pt, pb, pl, pr, padmode;    /* padmode: pad_index's number (0 zero ... 3 circular) */
    int flip;                       /* a true convolution: the kernel is stored flipped */
    size_t w_off, b_off;
    int has_bias;
    int act;                        /* rt_act's number; 0 (none) prints no act() call */
    float alpha;
    const char *in, *y;             /* expressions of the input and output buffers */
} sa_conv;

/* Floats of the padded copy of the input (0: the layer reads its input directly). */
long sa_conv_tmp_floats(const sa_conv *c);
/* Rearranges the layer's weights at params + c->w_off from the runtime's [oc][ic/g][kh][kw]
 * into the order the loops read (see sa_conv.c). */
void sa_conv_layout(const sa_conv *c, float *params);
/* Chooses the loops sa_conv_emit prints from now on: vec = 0 plain C (any compiler), or
 * 4, 8, 16 for GNU C vectors of that many floats (sa_v4, sa_v8, sa_v16, declared by the
 * file), blocked for 16 vector registers (4, 8) or 32 (16). */
void sa_conv_target(int vec);
/* The vector width sa_conv_target chose last (0: plain C), for the other ops' loops. */
int sa_conv_vector(void);
/* Prints the loops; tmp is the padded buffer's expression (when sa_conv_tmp_floats > 0). */
void sa_conv_emit(FILE *o, const sa_conv *c, const char *tmp);

#endif
