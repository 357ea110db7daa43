/* plstm2d_shapes.c: the shape rules of plstm_scan2d and plstm_scan2d_fused (ops.def). */
#include "graph_ir.h"

int plstm2d_dims_of(const ir_module *m, const ir_op *op, plstm2d_dims *d, xy_error *err)
{
  (void)m;
  (void)d;
  return xy_fail(err, XY_E_SPEC, "%s '%s': not implemented yet", ir_op_info_of(op->code)->name,
                 op->name);
}

int plstm_scan2d_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  (void)outs;
  plstm2d_dims d;
  return plstm2d_dims_of(m, op, &d, err);
}

int plstm_scan2d_fused_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  (void)outs;
  plstm2d_dims d;
  return plstm2d_dims_of(m, op, &d, err);
}
