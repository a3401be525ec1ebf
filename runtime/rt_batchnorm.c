/*
 * rt_batchnorm.c - per-channel batch normalisation (BatchNorm2d/1d), forward and backward.
 *
 * Statistics are summed in double, in a fixed order, over the n*hw values of each channel.
 * Training mode normalises with the batch's biased variance and moves the running
 * statistics with PyTorch's rule (unbiased variance); evaluation mode uses the running ones.
 */
#include "rt_kernels.h"

void rt_batchnorm_forward_train(const float *x, const float *gamma, const float *beta,
                                float *run_mean, float *run_var, float momentum, float eps,
                                float *y, float *save_mean, float *save_invstd, int n, int c,
                                int hw)
{
    const double cnt = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0, sq = 0.0;
        for (int s = 0; s < n; s++) {
            const float *xp = x + ((size_t)s * c + ch) * hw;
            for (int i = 0; i < hw; i++)
                sum += xp[i];
        }
        double mean = sum / cnt;
        for (int s = 0; s < n; s++) {
            const float *xp = x + ((size_t)s * c + ch) * hw;
            for (int i = 0; i < hw; i++) {
                double d = xp[i] - mean;
                sq += d * d;
            }
        }
        double var = sq / cnt;
        double invstd = 1.0 / sqrt(var + eps);
        float a = (float)(gamma[ch] * invstd), bb = (float)(beta[ch] - mean * gamma[ch] * invstd);
        for (int s = 0; s < n; s++) {
            const float *xp = x + ((size_t)s * c + ch) * hw;
            float *yp = y + ((size_t)s * c + ch) * hw;
            for (int i = 0; i < hw; i++)
                yp[i] = a * xp[i] + bb;
        }
        double unbiased = cnt > 1.0 ? var * cnt / (cnt - 1.0) : var;
        run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + momentum * mean);
        run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + momentum * unbiased);
        save_mean[ch] = (float)mean;
        save_invstd[ch] = (float)invstd;
    }
}

void rt_batchnorm_forward_eval(const float *x, const float *gamma, const float *beta,
                               const float *run_mean, const float *run_var, float eps,
                               float *y, int n, int c, int hw)
{
    for (int ch = 0; ch < c; ch++) {
        double invstd = 1.0 / sqrt((double)run_var[ch] + eps);
        float a = (float)(gamma[ch] * invstd);
        float bb = (float)(beta[ch] - run_mean[ch] * gamma[ch] * invstd);
        for (int s = 0; s < n; s++) {
            const float *xp = x + ((size_t)s * c + ch) * hw;
            float *yp = y + ((size_t)s * c + ch) * hw;
            for (int i = 0; i < hw; i++)
                yp[i] = a * xp[i] + bb;
        }
    }
}

/* Sums of dy and dy * xhat over one channel, xhat = (x - mean) * invstd. */
static void channel_sums(const float *x, const float *dy, double mean, double invstd, int n,
                         int c, int ch, int hw, double *sdy, double *sdyx)
{
    double a = 0.0, b = 0.0;
    for (int s = 0; s < n; s++) {
        const float *xp = x + ((size_t)s * c + ch) * hw, *dp = dy + ((size_t)s * c + ch) * hw;
        for (int i = 0; i < hw; i++) {
            a += dp[i];
            b += dp[i] * ((xp[i] - mean) * invstd);
        }
    }
    *sdy = a;
    *sdyx = b;
}

void rt_batchnorm_backward_train(const float *x, const float *gamma, const float *save_mean,
                                 const float *save_invstd, const float *dy, float *dx,
                                 int accum, float *dgamma, float *dbeta, int n, int c, int hw)
{
    const double cnt = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double mean = save_mean[ch], invstd = save_invstd[ch], sdy, sdyx;
        channel_sums(x, dy, mean, invstd, n, c, ch, hw, &sdy, &sdyx);
        dgamma[ch] = (float)sdyx;
        dbeta[ch] = (float)sdy;
        if (!dx)
            continue;
        /* dx = gamma * invstd / N * (N dy - sum dy - xhat * sum(dy xhat)) */
        double k = gamma[ch] * invstd;
        double mdy = sdy / cnt, mdyx = sdyx / cnt;
        for (int s = 0; s < n; s++) {
            const float *xp = x + ((size_t)s * c + ch) * hw, *dp = dy + ((size_t)s * c + ch) * hw;
            float *op = dx + ((size_t)s * c + ch) * hw;
            for (int i = 0; i < hw; i++) {
                double xhat = (xp[i] - mean) * invstd;
                float d = (float)(k * (dp[i] - mdy - xhat * mdyx));
                op[i] = accum ? op[i] + d : d;
            }
        }
    }
}

void rt_batchnorm_backward_eval(const float *x, const float *gamma, const float *run_mean,
                                const float *run_var, float eps, const float *dy, float *dx,
                                int accum, float *dgamma, float *dbeta, int n, int c, int hw)
{
    for (int ch = 0; ch < c; ch++) {
        double invstd = 1.0 / sqrt((double)run_var[ch] + eps), sdy, sdyx;
        channel_sums(x, dy, run_mean[ch], invstd, n, c, ch, hw, &sdy, &sdyx);
        dgamma[ch] = (float)sdyx;
        dbeta[ch] = (float)sdy;
        if (!dx)
            continue;
        float k = (float)(gamma[ch] * invstd);
        for (int s = 0; s < n; s++) {
            const float *dp = dy + ((size_t)s * c + ch) * hw;
            float *op = dx + ((size_t)s * c + ch) * hw;
            for (int i = 0; i < hw; i++)
                op[i] = accum ? op[i] + k * dp[i] : k * dp[i];
        }
    }
}
