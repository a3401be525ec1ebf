/*
 * rt_data_batch.c - assembles a minibatch: the chosen images' 8-bit pixels to floats in
 * [0, 1] (the same v / 255 as rt_image_load), each optionally mirrored left-right as
 * augmentation, and their labels.
 */
#include "rt_data_internal.h"

void rt_dataset_batch(const rt_dataset *ds, const int *idx, int n, const uint8_t *flip,
                      float *x, int *y)
{
    const int W = ds->w;
    const size_t rows = (size_t)ds->c * ds->h, chw = rows * W;
    for (int b = 0; b < n; b++) {
        const uint8_t *src = ds->pix + (size_t)idx[b] * chw;
        float *dst = x + (size_t)b * chw;
        if (flip && flip[b]) {
            for (size_t r = 0; r < rows; r++)
                for (int j = 0; j < W; j++)
                    dst[r * W + j] = src[r * W + (W - 1 - j)] / 255.0f;
        } else {
            for (size_t i = 0; i < chw; i++)
                dst[i] = src[i] / 255.0f;
        }
        if (y)
            y[b] = ds->label[idx[b]];
    }
}
