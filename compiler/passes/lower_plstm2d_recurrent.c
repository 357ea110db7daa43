/* lower_plstm2d_recurrent.c: the anti-diagonal wavefront form of the 2D scans. */
#include "lower_plstm2d.h"

int lower_plstm2d_recurrent(lower_ctx *lc, const ir_op *op, const plstm2d_dims *d)
{
  (void)d;
  return xy_fail(lc->err, XY_E_INTERNAL, "'%s': the recurrent form of 2D scans is not lowered yet",
                 op->name);
}
