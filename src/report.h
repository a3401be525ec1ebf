/*
 * report.h - what cnnc shows users about a network: the summary table (as Keras'
 * model.summary()) and a Graphviz drawing.
 */
#ifndef CNN_REPORT_H
#define CNN_REPORT_H

#include <stdio.h>

#include "ir.h"

void report_summary(const ir_net *net, const char *file, FILE *out);
void report_dot(const ir_net *net, FILE *out);
/* One line per layer with every field of its rt_layer, for tools and scripts. */
void report_ir(const ir_net *net, FILE *out);
/* 1234567 -> "1,234,567" */
void report_thousands(long v, char *buf, size_t n);

/* The execution plan of the network (rt_plan_print). Returns 0, or -1 when out of memory. */
int report_plan(const ir_net *net, FILE *out);

#endif
