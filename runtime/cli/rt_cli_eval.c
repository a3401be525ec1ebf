/*
 * rt_cli_eval.c - `--eval DIR` (trained weights on every image of a folder, its own test
 * part (DIR/test, an IDX test set) or with --split a split's test part: loss, accuracy,
 * confusion matrix with precision, recall and F1) and `--predict IMAGE|FOLDER...` (each
 * image's top classes with their probabilities, as text, CSV or JSON).
 */
#include "rt_cli_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ --eval */

int rt_cli_eval(const rt_cli_env *e, const rt_cli_args *c)
{
    char err[RT_ERRLEN];
    const rt_netdesc *d = e->d;
    const rt_train_cfg *g = &c->cfg;
    int k = rt_netdesc_classes(d);
    const char *wfile = c->weights ? c->weights : e->default_weights;
    rt_dataset ds;
    rt_split sp = {0};
    int *idx = NULL, n = 0, rc = RT_EXIT_OK;
    int *conf = NULL;
    char **wn = NULL;
    int nw = 0;
    rt_model *m = rt_cli_make(e, g->batch, g->threads, err);
    if (!m)
        return RT_EXIT_RUN;
    /* the weights first: a wrong file fails before a long data load */
    if (rt_weights_load_named(wfile, m, &wn, &nw, err) < 0) {
        rt_cli_error(e, "%s", err);
        rt_model_destroy(m);
        return RT_EXIT_RUN;
    }
    if (rt_cli_load_data(e, c, &ds, err) < 0) {
        rt_names_free(wn, nw);
        rt_model_destroy(m);
        return RT_EXIT_RUN;
    }
    rt_cli_check_names(e, wn, nw, &ds, wfile);
    char split[40];
    rt_cli_fmt_split(split, sizeof split, g->split);
    /* every image of a folder that is not split; the set's own test part if it has one;
     * a --split's test part when one is given */
    int all = c->all || (!c->given[RT_O_SPLIT] && ds.ntest_fixed == 0);
    if (all) {
        idx = malloc(sizeof *idx * (size_t)ds.n);
        if (!idx) {
            rt_cli_error(e, "out of memory");
            rc = RT_EXIT_RUN;
            goto out;
        }
        for (int i = 0; i < ds.n; i++)
            idx[i] = i;
        n = ds.n;
    } else {
        if (rt_split_make(&ds, g->split, g->seed, &sp, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = RT_EXIT_RUN;
            goto out;
        }
        if (sp.ntest == 0) {
            rt_cli_error(e, "the split %s leaves no test images; use --all or another --split",
                         split);
            rc = RT_EXIT_RUN;
            goto out;
        }
        n = sp.ntest;
    }
    conf = calloc((size_t)k * k, sizeof *conf);
    if (!conf) {
        rt_cli_error(e, "out of memory");
        rc = RT_EXIT_RUN;
        goto out;
    }
    double loss, acc;
    if (rt_evaluate(m, &ds, all ? idx : sp.test, n, &loss, &acc, conf, err) < 0) {
        rt_cli_error(e, "%s", err);
        rc = RT_EXIT_RUN;
        goto out;
    }
    long correct = 0;
    for (int i = 0; i < k; i++)
        correct += conf[(size_t)i * k + i];
    if (all)
        printf("%s on %s: all %d images\n", wfile, c->dir, n);
    else if (!c->given[RT_O_SPLIT])
        printf("%s on %s: its %d test images (%s)\n", wfile, c->dir, n,
               ds.parts[0] ? ds.parts : "the set's own test set");
    else
        printf("%s on %s: the %d test images of split %s, seed %llu\n", wfile, c->dir, n, split,
               (unsigned long long)g->seed);
    printf("loss %.4f, accuracy %.2f%% (%ld of %d correct)\n\n", loss, 100 * acc, correct, n);
    printf("Confusion matrix (rows: true class, columns: predicted):\n");
    rt_confusion_print(stdout, conf, k, ds.classnames);
out:
    free(conf);
    free(idx);
    rt_names_free(wn, nw);
    rt_split_free(&sp);
    rt_dataset_free(&ds);
    rt_model_destroy(m);
    return rc;
}

/* ------------------------------------------------------------ --predict */

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

/* A JSON string (quotes, backslashes and control characters escaped). */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

int rt_cli_predict(const rt_cli_env *e, const rt_cli_args *c)
{
    char err[RT_ERRLEN];
    const rt_netdesc *d = e->d;
    int k = rt_netdesc_classes(d);
    rt_shape in = d->layers[0].out;
    const char *wfile = c->weights ? c->weights : e->default_weights;
    char **wn = NULL;
    int nw = 0, rc = RT_EXIT_OK, printed = 0;
    char **files = NULL;
    int nfiles = 0;
    rt_model *m = rt_cli_make(e, 1, c->cfg.threads, err);
    if (!m)
        return RT_EXIT_RUN;
    if (rt_weights_load_named(wfile, m, &wn, &nw, err) < 0) {
        rt_cli_error(e, "%s", err);
        rt_model_destroy(m);
        return RT_EXIT_RUN;
    }
    if (wn && nw != k) {
        fflush(stdout);
        fprintf(stderr, "%s: warning: %s names %d classes, the network has %d; using numbers\n",
                e->prog, wfile, nw, k);
        rt_names_free(wn, nw);
        wn = NULL;
        nw = 0;
    }
    /* the files: each argument, a folder walked in name order */
    for (int i = 0; i < c->nimages; i++) {
        struct stat st;
        const char *a = c->images[i];
        if (stat(a, &st) < 0) {
            rt_cli_error(e, "cannot open %s: %s", a, strerror(errno));
            rc = RT_EXIT_RUN;
            continue;
        }
        int before = nfiles;
        if (rt_image_files(a, &files, &nfiles, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = RT_EXIT_RUN;
            continue;
        }
        if (S_ISDIR(st.st_mode) && nfiles == before) {
            rt_cli_error(e, "%s holds no images (.jpg, .jpeg, .png, .bmp, .pgm, .ppm or "
                         ".pnm, in it or its sub-folders)", a);
            rc = RT_EXIT_RUN;
        }
    }
    float *x = malloc(sizeof(float) * (size_t)in.c * in.h * in.w);
    float *logits = malloc(sizeof(float) * (size_t)k);
    float *probs = malloc(sizeof(float) * (size_t)k);
    int *order = malloc(sizeof(int) * (size_t)k);
    char (*names)[32] = malloc(sizeof *names * (size_t)k);
    if (!x || !logits || !probs || !order || !names) {
        rt_cli_error(e, "out of memory");
        rc = RT_EXIT_RUN;
        goto done;
    }
    for (int j = 0; j < k; j++)
        snprintf(names[j], sizeof names[j], "class %d", j);
    if (c->format == 1) {
        printf("file,class,probability");
        for (int j = 0; j < k; j++) {
            putchar(',');
            csv_field(wn ? wn[j] : names[j]);
        }
        putchar('\n');
    } else if (c->format == 2) {
        printf("[");
    }
    int top = k < 3 ? k : 3;
    for (int i = 0; i < nfiles; i++) {
        const char *file = files[i];
        if (rt_image_load(file, in, x, err) < 0) {
            rt_cli_error(e, "%s", err);
            rc = RT_EXIT_RUN;
            continue;
        }
        if (m->forward(m->self, x, 1, RT_INFER, logits) != 0) {
            rt_cli_error(e, "%s: forward pass failed", file);
            rc = RT_EXIT_RUN;
            continue;
        }
        int label = 0, correct;
        rt_softmax_xent(logits, &label, 1, k, probs, NULL, &correct);
        for (int j = 0; j < k; j++)
            order[j] = j;
        for (int a = 0; a < top; a++)       /* partial selection sort: the top classes */
            for (int j = a + 1; j < k; j++)
                if (probs[order[j]] > probs[order[a]]) {
                    int t = order[a];
                    order[a] = order[j];
                    order[j] = t;
                }
        if (c->format == 1) {
            csv_field(file);
            putchar(',');
            csv_field(wn ? wn[order[0]] : names[order[0]]);
            printf(",%.6f", probs[order[0]]);
            for (int j = 0; j < k; j++)
                printf(",%.6f", probs[j]);
            putchar('\n');
        } else if (c->format == 2) {
            printf("%s\n  {\"file\": ", printed ? "," : "");
            json_string(file);
            printf(", \"class\": ");
            json_string(wn ? wn[order[0]] : names[order[0]]);
            printf(", \"probability\": %.6f, \"probabilities\": {", probs[order[0]]);
            for (int j = 0; j < k; j++) {
                printf("%s", j ? ", " : "");
                json_string(wn ? wn[j] : names[j]);
                printf(": %.6f", probs[j]);
            }
            printf("}}");
        } else {
            for (int a = 0; a < top; a++) {
                const char *cn = wn ? wn[order[a]] : names[order[a]];
                if (a == 0)
                    printf("%s: %s %.2f%%", file, cn, 100.0 * probs[order[a]]);
                else
                    printf("%s%s %.2f%%", a == 1 ? "  (then " : ", ", cn, 100.0 * probs[order[a]]);
            }
            printf("%s\n", top > 1 ? ")" : "");
        }
        printed++;
        fflush(stdout);
    }
    if (c->format == 2)
        printf("%s]\n", printed ? "\n" : "");
done:
    free(x);
    free(logits);
    free(probs);
    free(order);
    free(names);
    rt_names_free(files, nfiles);
    rt_names_free(wn, nw);
    rt_model_destroy(m);
    return rc;
}
