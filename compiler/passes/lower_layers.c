/* lower_layers.c: the ordinary layer ops to kernel IR. */
#include "lower.h"

int lower_layer_op(lower_ctx *lc, const ir_op *op)
{
  return xy_fail(lc->err, XY_E_INTERNAL, "'%s': %s is not lowered yet", op->name,
                 ir_op_info_of(op->code)->name);
}
