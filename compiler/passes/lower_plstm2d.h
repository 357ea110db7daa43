/*
 * lower_plstm2d.h: the forms of the 2D scans (plstm_scan2d, plstm_scan2d_fused). The entry,
 * lower_plstm2d (lower.h), reads the op's dims and schedule and calls one of these.
 */
#ifndef XY_LOWER_PLSTM2D_H
#define XY_LOWER_PLSTM2D_H

#include "lower.h"

/* Anti-diagonal wavefront over cells (IR_FORM_RECURRENT). */
int lower_plstm2d_recurrent(lower_ctx *lc, const ir_op *op, const plstm2d_dims *d);

/* chunk x chunk tiles, in-tile gating matrices, border states tile to tile (IR_FORM_TILED). */
int lower_plstm2d_tiled(lower_ctx *lc, const ir_op *op, const plstm2d_dims *d);

/* The whole grid one tile, applied like attention (IR_FORM_SINGLE). */
int lower_plstm2d_single(lower_ctx *lc, const ir_op *op, const plstm2d_dims *d);

#endif /* XY_LOWER_PLSTM2D_H */
