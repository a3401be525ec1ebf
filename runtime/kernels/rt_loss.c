/*
 * rt_loss.c - softmax and cross-entropy fused, the loss of every classifier here.
 *
 * log-sum-exp with the row maximum subtracted keeps exp() in range; sums are in double. The
 * gradient of the mean loss is (softmax - onehot) / n; with label smoothing e (PyTorch's
 * CrossEntropyLoss(label_smoothing=e)) the target onehot becomes (1-e) onehot + e/k.
 */
#include "cnnrt.h"

#include <math.h>

double rt_softmax_xent(const float *logits, const int *labels, int n, int k, float *probs,
                       float *dlogits, int *correct)
{
    return rt_softmax_xent_smooth(logits, labels, n, k, 0.0f, probs, dlogits, correct);
}

double rt_softmax_xent_smooth(const float *logits, const int *labels, int n, int k,
                              float smoothing, float *probs, float *dlogits, int *correct)
{
    const double e = smoothing, off = k > 0 ? e / k : 0.0;
    double total = 0.0;
    int right = 0;
    for (int s = 0; s < n; s++) {
        const float *l = logits + (size_t)s * k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (l[j] > l[best])
                best = j;
        double mx = l[best], sum = 0.0, lsum = 0.0;
        for (int j = 0; j < k; j++) {
            sum += exp((double)l[j] - mx);
            lsum += l[j];
        }
        double lse = mx + log(sum);
        int y = labels ? labels[s] : -1;
        if (y >= 0 && y < k) /* e 0: exactly lse - l_y */
            total += e == 0.0 ? lse - l[y] : (1.0 - e) * (lse - l[y]) + e * (lse - lsum / k);
        else
            total = NAN; /* a label outside [0, k) has no loss */
        if (best == y)
            right++;
        for (int j = 0; j < k; j++) {
            double pj = exp((double)l[j] - lse);
            if (probs)
                probs[(size_t)s * k + j] = (float)pj;
            if (dlogits)
                dlogits[(size_t)s * k + j] =
                    (float)((pj - (j == y ? 1.0 - e : 0.0) - off) / n);
        }
    }
    if (correct)
        *correct = right;
    return n > 0 ? total / n : 0.0;
}
