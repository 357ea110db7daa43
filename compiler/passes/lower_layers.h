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

/* Elements of tensor t. */
int64_t layer_count_of(const lower_ctx *lc, int t);

/* kb_finish, and XY_E_NOMEM when the kernel could not be added (kid < 0). */
int layer_finish(kir_builder *b, lower_ctx *lc, int kid);

/* Opens `parfor lane < wg; item = group * wg + lane; if item < n` and returns item;
 * layer_close_items closes both. */
int layer_open_items(kir_builder *b, int wg, int64_t n);
void layer_close_items(kir_builder *b);

int lower_linear(lower_ctx *lc, const ir_op *op);

/* graph_gather, concat, graph_pnorm (lower_graph_layers.c). */
int lower_graph_layer_op(lower_ctx *lc, const ir_op *op);

#endif /* XY_LOWER_LAYERS_H */
