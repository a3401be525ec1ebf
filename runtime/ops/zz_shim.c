/* TEMPORARY: replaced by the act branch's kernels */
#include "rt_op.h"
void rt_act_backward_xy_mt(rt_act act, float alpha, const float *x, const float *y, const float *dy, float *dx, size_t n, int accum, rt_threads *tp)
{ (void)x; rt_act_backward_mt(act, alpha, y, dy, dx, n, accum, tp); }
void rt_concat_forward_mt(const float *a, int ca, const float *b, int cb, int hw, float *y, int n, rt_threads *tp)
{ (void)tp; for (int i = 0; i < n; i++) { memcpy(y + (size_t)i*(ca+cb)*hw, a + (size_t)i*ca*hw, sizeof(float)*ca*hw); memcpy(y + (size_t)i*(ca+cb)*hw + (size_t)ca*hw, b + (size_t)i*cb*hw, sizeof(float)*cb*hw);} }
void rt_concat_backward_mt(const float *dy, int ca, int cb, int hw, float *da, int acc_a, float *db, int acc_b, int n, rt_threads *tp)
{ (void)tp; for (int i = 0; i < n; i++) { const float *d = dy + (size_t)i*(ca+cb)*hw;
  if (da) for (int k = 0; k < ca*hw; k++) da[(size_t)i*ca*hw+k] = (acc_a ? da[(size_t)i*ca*hw+k] : 0) + d[k];
  if (db) for (int k = 0; k < cb*hw; k++) db[(size_t)i*cb*hw+k] = (acc_b ? db[(size_t)i*cb*hw+k] : 0) + d[ca*hw+k]; } }
