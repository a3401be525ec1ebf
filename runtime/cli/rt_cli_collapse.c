/*
 * rt_cli_collapse.c - the "collapsed to one class" note after training, printed only when
 * the evidence supports it, with advice that fits the network that was trained.
 *
 * The rule (all must hold):
 *  1. every test image is predicted as one class, and the test images hold at least two
 *     classes (otherwise one prediction for all can be right);
 *  2. the run was long enough to judge: at least RT_COLLAPSE_MIN_EPOCHS epochs (a network
 *     after 3 epochs may simply not have separated the classes yet);
 *  3. the network did not learn: the last epoch's training loss is still at least
 *     RT_COLLAPSE_LOSS_FRAC x ln K, the loss of a uniform guess over the K classes (a
 *     network that outputs one answer for every image cannot get below the entropy of the
 *     class frequencies, which is ln K for balanced classes).
 * The advice then names only what applies: dead units for a network with relu layers,
 * "add batchnorm" only for a network without batchnorm, a smaller --lr and another --seed
 * always.
 */
#include "rt_cli_int.h"

#include <math.h>

int rt_collapse_only_class(const int *conf, int k)
{
    int only = -1, classes = 0;
    for (int t = 0; t < k; t++) {
        int seen = 0;
        for (int p = 0; p < k; p++)
            if (conf[t * k + p] > 0) {
                if (only >= 0 && only != p)
                    return -1;
                only = p;
                seen = 1;
            }
        classes += seen;
    }
    return classes >= 2 ? only : -1;
}

int rt_collapse_judge(const int *conf, int k, int ntest, const rt_history *h)
{
    int only = rt_collapse_only_class(conf, k);
    if (only < 0 || ntest < 2 || k < 2 || !h || h->epochs < RT_COLLAPSE_MIN_EPOCHS)
        return -1;
    double last = h->train_loss[h->epochs - 1];
    if (!(last >= RT_COLLAPSE_LOSS_FRAC * log((double)k)))
        return -1; /* it learned something (or the loss is not finite): not a collapse */
    return only;
}

void rt_collapse_note(FILE *out, const rt_netdesc *d, const int *conf, int k, int ntest,
                      const rt_history *h, char **classnames)
{
    int only = rt_collapse_judge(conf, k, ntest, h);
    if (only < 0)
        return;
    int relu = 0, bn = 0;
    for (int i = 0; i < d->nlayers; i++) {
        relu |= d->layers[i].act == RT_ACT_RELU;
        bn |= d->layers[i].kind == RT_BATCHNORM;
    }
    fprintf(out, "\nnote: the network predicts '%s' for all %d test images: it has collapsed to one "
            "class\n(after %d epochs its training loss %.4f is still that of a guess, ln %d = %.4f).\n",
            classnames ? classnames[only] : "?", ntest, h->epochs, h->train_loss[h->epochs - 1], k,
            log((double)k));
    if (relu)
        fprintf(out, "With relu layers this usually means their units died early (an update pushed "
                "them below\nzero for every image) and cannot recover. ");
    fprintf(out, "It depends on the initial weights and on rounding:\ntry another --seed, a smaller --lr%s.\n",
            bn ? "" : ", or batchnorm after the convolutions");
}
