/* schedule_plstm2d.c: the form, tile and work-group size of 2D scans. */
#include "lower.h"
#include "passes.h"

int schedule_plstm2d(const pass_state *ps, ir_op *op, ir_form forced, xy_error *err)
{
  (void)ps;
  (void)forced;
  return xy_fail(err, XY_E_INTERNAL, "'%s': 2D scans are not scheduled yet", op->name);
}
