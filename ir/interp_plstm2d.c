/* interp_plstm2d.c: the float64 meaning of plstm_scan2d and plstm_scan2d_fused. */
#include "interp.h"

int interp_plstm_scan2d(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)m;
  (void)vals;
  return xy_fail(err, XY_E_INTERNAL, "interpreter: plstm_scan2d '%s' not implemented yet", op->name);
}

int interp_plstm_scan2d_fused(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)m;
  (void)vals;
  return xy_fail(err, XY_E_INTERNAL, "interpreter: plstm_scan2d_fused '%s' not implemented yet",
                 op->name);
}
