/*
 * report.c - the summary table and the Graphviz (dot) drawing of a network, both read
 * straight from the IR: layer, source line, output shape, parameters, MFLOPs, totals.
 */
#include "report.h"
#include "emit.h"
#include "rt_memplan.h"

#include "rt_plan.h"

#include <string.h>

void report_thousands(long v, char *buf, size_t n)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%ld", v < 0 ? -v : v);
    size_t j = 0;
    if (v < 0 && j + 1 < n) buf[j++] = '-';
    for (int i = 0; i < len && j + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[j++] = ',';
        buf[j++] = tmp[i];
    }
    buf[j] = '\0';
}

static void shape_text(rt_shape s, char *buf, size_t n)
{
    if (s.h == 1 && s.w == 1) snprintf(buf, n, "%d", s.c);
    else snprintf(buf, n, "%dx%dx%d", s.c, s.h, s.w);
}

static void bytes_text(double b, char *buf, size_t n)
{
    if (b >= 1024.0 * 1024.0) snprintf(buf, n, "%.2f MiB", b / (1024.0 * 1024.0));
    else if (b >= 1024.0) snprintf(buf, n, "%.1f KiB", b / 1024.0);
    else snprintf(buf, n, "%.0f B", b);
}

void report_summary(const ir_net *net, const char *file, FILE *out)
{
    fprintf(out, "Network %s (%s): %d layers, %d classes\n\n", net->name, file, net->n,
            net->nodes[net->n - 1].L.out.c);
    fprintf(out, "%3s  %-36s %5s  %-14s %12s %10s\n", "#", "Layer", "Line", "Output shape", "Params", "MFLOPs");
    char rule[90];
    memset(rule, '-', sizeof rule - 1);
    rule[sizeof rule - 1] = '\0';
    fprintf(out, "%s\n", rule);
    for (int i = 0; i < net->n; i++) {
        const ir_node *n = &net->nodes[i];
        char shape[48], params[32], text[40];
        shape_text(n->L.out, shape, sizeof shape);
        report_thousands(n->params, params, sizeof params);
        if (strlen(n->text) > 36) snprintf(text, sizeof text, "%.33s...", n->text);
        else snprintf(text, sizeof text, "%.39s", n->text);
        fprintf(out, "%3d  %-36s %5d  %-14s %12s %10.2f\n", i, text, n->L.line, shape, params, n->flops / 1e6);
    }
    fprintf(out, "%s\n", rule);
    char total[32], act[32], pmem[32];
    report_thousands(net->total_params, total, sizeof total);
    bytes_text(net->act_bytes, act, sizeof act);
    bytes_text(4.0 * (double)net->total_params, pmem, sizeof pmem);
    fprintf(out, "Total parameters:          %s (%s as float32)\n", total, pmem);
    fprintf(out, "Forward FLOPs per image:   %.2f MFLOPs\n", net->total_flops / 1e6);
    fprintf(out, "Activation memory:         %s per image (forward, float32)\n", act);
    long naive = 0, arena = emit_standalone_arena(net, &naive);
    if (arena >= 0) {
        char planned[32], all[32];
        bytes_text(4.0 * (double)arena, planned, sizeof planned);
        bytes_text(4.0 * (double)naive, all, sizeof all);
        fprintf(out, "Inference memory plan:     %s per image (buffers reused once read; %s without reuse)\n",
                planned, all);
    }
    rt_netdesc d;
    ir_to_desc(net, &d);
    rt_plan p;
    rt_memplan m;
    char err[RT_ERRLEN];
    if (rt_plan_build(&d, &p, err) == 0) {
        if (rt_memplan_train(&d, &p, &m, err) == 0) {
            char planned[32], all[32], batch[32];
            int b = net->train.batch > 0 ? net->train.batch : 32;
            bytes_text(4.0 * (double)m.total, planned, sizeof planned);
            bytes_text(4.0 * (double)m.naive, all, sizeof all);
            bytes_text(4.0 * (double)m.total * b, batch, sizeof batch);
            fprintf(out, "Training memory plan:      %s per image, %s at batch %d (outputs and gradients;\n"
                         "                           %s per image without reuse)\n", planned, batch, b, all);
            rt_memplan_free(&m);
        }
        rt_plan_free(&p);
    }
    ir_desc_free(&d);
}

void report_dot(const ir_net *net, FILE *out)
{
    fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", "
                 "fillcolor=\"#eef3fb\", fontname=\"Helvetica\"];\n", net->name);
    for (int i = 0; i < net->n; i++) {
        const ir_node *n = &net->nodes[i];
        char shape[48];
        shape_text(n->L.out, shape, sizeof shape);
        fprintf(out, "  n%d [label=\"", i);
        for (const char *p = n->text; *p; p++) {
            if (*p == '"' || *p == '\\') fputc('\\', out);
            fputc(*p, out);
        }
        fprintf(out, "\\n%s", shape);
        if (n->params) fprintf(out, " | %ld params", n->params);
        fprintf(out, "\"%s];\n", n->L.kind == RT_INPUT ? ", fillcolor=\"#dff0d8\"" :
                                  n->L.kind == RT_ADD ? ", shape=circle, label=\"+\"" : "");
        if (n->L.kind != RT_INPUT) fprintf(out, "  n%d -> n%d;\n", n->L.src, i);
        if (n->L.src2 >= 0) /* the second input of an add (the skip or shortcut) or a concat */
            fprintf(out, "  n%d -> n%d [style=dashed%s];\n", n->L.src2, i,
                    n->L.kind == RT_ADD ? (strstr(n->text, "shortcut") ? ", label=\"shortcut\"" : ", label=\"skip\"") : "");
    }
    fprintf(out, "}\n");
}

void report_ir(const ir_net *net, FILE *out)
{
    fprintf(out, "# cnnc IR v3: network %s, %d layers\n", net->name, net->n);
    fprintf(out, "# i kind src src2 in_c in_h in_w out_c out_h out_w kh kw sh sw pt pb pl pr padmode flip "
                 "dh dw groups bias act alpha p eps momentum w_off w_len b_off b_len s_off s_len line "
                 "norm mean std\n");
    for (int i = 0; i < net->n; i++) {
        const rt_layer *L = &net->nodes[i].L;
        fprintf(out, "%d %s %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %s %d %d %d %d %d %s %.9g %.9g %.9g %.9g "
                     "%zu %zu %zu %zu %zu %zu %d ",
                i, ir_kind_name(L->kind), L->src, L->src2, L->in.c, L->in.h, L->in.w, L->out.c, L->out.h,
                L->out.w, L->kh, L->kw, L->sh, L->sw, L->pt, L->pb, L->pl, L->pr, rt_pad_name(L->padmode), L->flip,
                L->dh > 0 ? L->dh : 1, L->dw > 0 ? L->dw : 1, L->groups > 0 ? L->groups : 1, L->bias, L->act == RT_ACT_NONE ? "none" : ir_act_name(L->act), L->alpha, L->p, L->eps,
                L->momentum, L->w_off, L->w_len, L->b_off, L->b_len, L->s_off, L->s_len, L->line);
        /* v3: the input normalisation, one mean and std per channel ("-" when none) */
        if (L->norm) {
            fprintf(out, "1 ");
            for (int k = 0; k < L->out.c; k++)
                fprintf(out, "%s%.9g", k ? "," : "", L->mean[k < 4 ? k : 3]); /* rt_input_normalize */
            fputc(' ', out);
            for (int k = 0; k < L->out.c; k++)
                fprintf(out, "%s%.9g", k ? "," : "", L->std[k < 4 ? k : 3]);
            fputc('\n', out);
        } else {
            fprintf(out, "0 - -\n");
        }
    }
}

int report_plan(const ir_net *net, FILE *out)
{
    rt_netdesc d;
    rt_plan p;
    char err[RT_ERRLEN];
    ir_to_desc(net, &d);
    int rc = rt_plan_build(&d, &p, err);
    if (rc == 0) {
        fprintf(out, "Execution plan of %s (y<i>: the output buffer of layer i; dy<i>: its gradient)\n", net->name);
        rt_plan_print(&p, &d, out);
        rt_plan_free(&p);
    }
    ir_desc_free(&d);
    return rc;
}
