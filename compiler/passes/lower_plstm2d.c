/* lower_plstm2d.c: plstm_scan2d and plstm_scan2d_fused to kernel IR: plans the op (its dims
 * and sizes, lower_plstm2d.h) and hands it to the form its schedule names. */
#include "lower_plstm2d.h"

int lower_plstm2d(lower_ctx *lc, const ir_op *op)
{
  p2d_plan p;
  int rc = p2d_plan_init(lc, op, &p);
  if (rc)
    return rc;
  switch (op->sched.form) {
  case IR_FORM_RECURRENT:
    return lower_plstm2d_recurrent(lc, op, &p);
  case IR_FORM_TILED:
    return lower_plstm2d_tiled(lc, op, &p);
  case IR_FORM_SINGLE:
    return lower_plstm2d_single(lc, op, &p);
  default:
    break;
  }
  return xy_fail(lc->err, XY_E_INTERNAL, "'%s': form '%s' is not a form of 2D scans", op->name,
                 ir_form_name(op->sched.form));
}
