/*
 * registry.c - the compiler's table of kinds (kind -> entry) and the word lookups built on
 * it. Adding a kind: its runtime entry, its file here under src/ops/, and its line below.
 */
#include "cnn_op.h"

#include <string.h>

static const cnn_op *const TABLE[RT_NKINDS] = {
    [RT_INPUT] = &cnn_op_input,
    [RT_CONV] = &cnn_op_conv,
    [RT_MAXPOOL] = &cnn_op_maxpool,
    [RT_AVGPOOL] = &cnn_op_avgpool,
    [RT_GLOBALAVGPOOL] = &cnn_op_globalavgpool,
    [RT_GLOBALMAXPOOL] = &cnn_op_globalmaxpool,
    [RT_FLATTEN] = &cnn_op_flatten,
    [RT_DROPOUT] = &cnn_op_dropout,
    [RT_DENSE] = &cnn_op_dense,
    [RT_BATCHNORM] = &cnn_op_batchnorm,
    [RT_ACTIVATION] = &cnn_op_activation,
    [RT_ADD] = &cnn_op_add,
    [RT_CONCAT] = &cnn_op_concat,
};

const cnn_op *cnn_op_of(rt_kind k)
{
    return (unsigned)k < RT_NKINDS ? TABLE[k] : NULL;
}

const cnn_layer_info *cnn_word_find(const char *word)
{
    for (int k = 0; k < RT_NKINDS; k++)
        for (int i = 0; TABLE[k] && i < TABLE[k]->nwords; i++) {
            const cnn_layer_info *li = &TABLE[k]->words[i];
            if (strcmp(li->name, word) == 0 || cnn_word_in_list(word, li->aliases)) return li;
        }
    return NULL;
}

const char *const *cnn_words_all(int *n)
{
    static const char *words[256];
    static char buf[2048];
    static int count;
    if (!count) {
        size_t used = 0;
        for (int k = 0; k < RT_NKINDS; k++)
            for (int i = 0; TABLE[k] && i < TABLE[k]->nwords && count < 255; i++) {
                const cnn_layer_info *li = &TABLE[k]->words[i];
                words[count++] = li->name;
                for (const char *p = li->aliases; *p;) {
                    while (*p == ' ') p++;
                    const char *e = p;
                    while (*e && *e != ' ') e++;
                    if (e > p && used + (size_t)(e - p) + 1 < sizeof buf && count < 255) {
                        memcpy(buf + used, p, (size_t)(e - p));
                        buf[used + (size_t)(e - p)] = '\0';
                        words[count++] = buf + used;
                        used += (size_t)(e - p) + 1;
                    }
                    p = e;
                }
            }
        words[count] = NULL;
    }
    *n = count;
    return words;
}
