/* lower_plstm2d.c: plstm_scan2d and plstm_scan2d_fused to kernel IR. */
#include "lower.h"

int lower_plstm2d(lower_ctx *lc, const ir_op *op)
{
  return xy_fail(lc->err, XY_E_INTERNAL, "'%s': 2D scans are not lowered yet", op->name);
}
