/*
 * emit_layers.h - one emitter per layer kind (as onnx2c has one per operator): each
 * writes the forward and the backward code of its layer as calls to the runtime's
 * kernels with constant arguments. emit.c arranges buffers and the order of layers.
 */
#ifndef CNN_EMIT_LAYERS_H
#define CNN_EMIT_LAYERS_H

#include <stdio.h>

#include "ir.h"

/* What a layer's emitter knows about where its data lives. */
typedef struct {
    const ir_net *net;
    const rt_netdesc *desc; /* the same network as the runtime sees it (backward) */
    int i;                  /* this layer's index */
    const char *in;         /* expression of the input buffer */
    const char *in2;        /* RT_ADD: the skip input */
    char dx[32];            /* gradient buffer of the input, or "" when it needs none */
    int acc;                /* 1: add into dx, 0: overwrite it */
    char dx2[32];           /* RT_ADD: gradient buffer of the skip input, or "" */
    int acc2;
    FILE *out;
} emit_ctx;

/* Number of floats of one image's tensor of shape s. */
static inline long emit_size(rt_shape s) { return (long)s.c * s.h * s.w; }

/* Declarations of file-level constants a layer needs (geometry structs). */
void emit_layer_decls(const emit_ctx *e);
/* Forward code: reads e->in, writes out<i>, uses n, training, P, S, tp. */
void emit_layer_forward(const emit_ctx *e);
/* Backward code: reads dout<i>, writes e->dx (if any) and G. */
void emit_layer_backward(const emit_ctx *e);
/* Extra static buffers a layer owns (dropout masks, batchnorm statistics). */
void emit_layer_buffers(const emit_ctx *e, const char *maxb);
/* A float as a C literal that reads back to the same value ("0.0f", "0.5f", "1e-05f");
 * the text lives in one of a few rotating buffers, enough for one printf call. */
const char *emit_f(float v);
/* The C spelling of runtime enum values. */
const char *emit_act_name(rt_act a);
const char *emit_pad_name(rt_padmode m);

#endif
