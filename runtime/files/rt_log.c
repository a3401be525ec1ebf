/*
 * rt_log.c - `--log FILE.csv`: the run's history as one CSV line per epoch (epoch, lr,
 * losses, accuracies, seconds), rewritten whole and atomically after every epoch, so that a
 * crash leaves the last complete log and a resumed run's log holds every epoch.
 */
#include "rt_train_int.h"

#include <errno.h>
#include <string.h>

int rt_log_write(const char *file, const rt_history *h, char *err)
{
    rt_atomic_file a;
    if (rt_atomic_open(&a, file) < 0) {
        snprintf(err, RT_ERRLEN, "cannot write log %s: %s", file, strerror(errno));
        return -1;
    }
    fprintf(a.f, "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n");
    for (int e = 0; e < h->epochs; e++) {
        fprintf(a.f, "%d,%.9g,%.9g,%.9g,", e + 1, h->lr[e], h->train_loss[e], h->train_acc[e]);
        if (h->has_val)
            fprintf(a.f, "%.9g,%.9g,", h->val_loss[e], h->val_acc[e]);
        else
            fprintf(a.f, ",,");
        fprintf(a.f, "%.3f\n", h->secs[e]);
    }
    int ok = !ferror(a.f);
    if (rt_atomic_close(&a, ok, 0) < 0) {
        snprintf(err, RT_ERRLEN, "cannot write log %s: %s (the previous log is unchanged)", file,
                 strerror(errno ? errno : EIO));
        return -1;
    }
    return 0;
}
