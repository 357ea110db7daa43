/*
 * lower_layers.h: what the lowerings of the ordinary layer ops share (lower_layers.c holds
 * the dispatch, the memory-bound ops and these helpers; lower_layer_linear.c the GEMM).
 */
#ifndef XY_LOWER_LAYERS_H
#define XY_LOWER_LAYERS_H

#include "lower.h"

/* a / b rounded up (a >= 0, b >= 1). */
int64_t layer_ceil_div(int64_t a, int64_t b);

/* The widest power of two <= want (1..16) that divides n. */
int layer_lanes(int want, int64_t n);

/* A launch over groups[0] x groups[1] work-groups; XY_E_NOMEM on failure. */
int layer_launch(lower_ctx *lc, int kernel, int64_t g0, int64_t g1, const kir_arg *args,
                 int n_args, double flops, double bytes);

/* Work-items per group: the --wg knob when given (capped by the device), else `auto_wg`. */
int layer_wg(const lower_ctx *lc, int auto_wg);

int lower_linear(lower_ctx *lc, const ir_op *op);

/* graph_gather, concat, graph_pnorm (lower_graph_layers.c). */
int lower_graph_layer_op(lower_ctx *lc, const ir_op *op);

#endif /* XY_LOWER_LAYERS_H */
