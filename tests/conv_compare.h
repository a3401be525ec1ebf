/*
 * conv_compare.h - how the tests of the convolution routes compare a result: its largest
 * error relative to a float64 reference, and whether two float results differ in any bit (a
 * route taken or not, the same bits on another pool). Header-only.
 */
#ifndef CNN_TESTS_CONV_COMPARE_H
#define CNN_TESTS_CONV_COMPARE_H

#include <math.h>
#include <stddef.h>
#include <string.h>

/* max|a - r| / max|r| */
static inline double rel_err(const float *a, const double *r, size_t n)
{
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(a[i] - r[i]));
        m = fmax(m, fabs(r[i]));
    }
    return e / m;
}

static inline int differs(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) != 0;
}

#endif
