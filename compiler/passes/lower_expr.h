/*
 * lower_expr.h: shorthand for building kernel-IR expressions inside lowering functions,
 * where the builder is always the local `b`. Index arithmetic reads like the formula it
 * implements: LD(q, ADD(MUL(t, I(DK)), d)).
 */
#ifndef XY_LOWER_EXPR_H
#define XY_LOWER_EXPR_H

#include "kernel_ir.h"

#define I(v) kx_int(b, (int64_t)(v))
#define F(v) kx_flt(b, (double)(v))
#define V(id) kx_var(b, (id))
#define LD(arr, idx) kx_load(b, (arr), (idx))
#define ADD(x, y) kx_add(b, (x), (y))
#define SUB(x, y) kx_sub(b, (x), (y))
#define MUL(x, y) kx_mul(b, (x), (y))
#define DIV(x, y) kx_div(b, (x), (y))
#define REM(x, y) kx_rem(b, (x), (y))
#define MIN(x, y) kx_min(b, (x), (y))
#define LT(x, y) kx_lt(b, (x), (y))
#define MAD(x, s, y) kx_mad(b, (x), (int64_t)(s), (y))   /* x*s + y with constant s */
#define SEL(c, x, y) kx_sel(b, (c), (x), (y))
#define GID(axis) kx_group(b, (axis))

#endif /* XY_LOWER_EXPR_H */
