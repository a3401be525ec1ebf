/* rt_dist_train.h - the hooks data-parallel training adds to the training loop and to
 * evaluation (rt_dist_train.c); with one rank each leaves the numbers untouched. */
#ifndef RT_DIST_TRAIN_H
#define RT_DIST_TRAIN_H

#include "cnnrt.h"

/* Before training: refuses what cannot run on several ranks yet, gives every rank rank 0's
 * weights. 0, or -1 with err. */
int rt_dist_train_check(const rt_model *m, char *err);
/* This rank's part [lo, lo + n) of a global batch (or evaluation set) of nb items. */
void rt_dist_train_slice(int nb, int *lo, int *n);
/* Scales this rank's loss gradient (n rows of k) so that the sum over ranks is the mean over
 * the global batch of global_n. */
void rt_dist_train_scale(float *dlogits, int n, int k, int global_n);
/* Before a training step's forward: this rank holds images [lo, lo + n) of a global batch
 * of total. Sets the shard (sync batchnorm, dropout draws) and has backward start the
 * gradient sum as layers finish. 0, or -1 when out of memory. */
int rt_dist_train_begin(rt_model *m, int lo, int n, int total);
/* After backward: ends the shard and completes the gradient summed over ranks (n: this
 * rank's rows, 0 zeroes it). */
int rt_dist_train_grads(rt_model *m, int n);
/* After training (also after a failure): frees what begin made. */
void rt_dist_train_end(rt_model *m);
/* Sums of loss*rows, correct answers and rows over ranks; *stop (may be NULL) becomes 1
 * on every rank when it was 1 on any (an interrupt reaches the ranks at different times). */
int rt_dist_train_stats(double *loss_sum, long *correct, long *seen, int *stop);
/* Evaluation: loss sum, correct answers and the k*k confusion matrix (may be NULL) summed. */
int rt_dist_eval_sum(double *loss_sum, long *correct, int *confusion, int k);

#endif
