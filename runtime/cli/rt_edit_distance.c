/*
 * rt_edit_distance.c - the Levenshtein distance behind every "did you mean" hint: the
 * command line's for a mistyped option, cnnc's for a mistyped word in a .cnn file.
 */
#include "cnnrt.h"

#include <string.h>

enum { MAXLEN = 64 };   /* longer words are never a typo of a short keyword */

int rt_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAXLEN || lb > MAXLEN)
        return 1000;
    int row[MAXLEN + 1];    /* one row of the table, updated in place */
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int v = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < v)
                v = up + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v;
            diag = up;
        }
    }
    return row[lb];
}
