/* lower_plstm2d_tiled.c: the tiled form of the 2D scans (lower_plstm2d.h). */
#include "lower_plstm2d.h"

int lower_plstm2d_tiled(lower_ctx *lc, const ir_op *op, const plstm2d_dims *d)
{
  (void)d;
  return xy_fail(lc->err, XY_E_INTERNAL, "'%s': the tiled form of 2D scans is not lowered yet",
                 op->name);
}
