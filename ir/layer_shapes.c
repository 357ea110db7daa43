/* layer_shapes.c: the shape rules of the ordinary layer ops (ops.def). */
#include "graph_ir.h"

int linear_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  (void)m;
  (void)outs;
  return xy_fail(err, XY_E_SPEC, "linear '%s': not implemented yet", op->name);
}

int activation_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  (void)m;
  (void)outs;
  return xy_fail(err, XY_E_SPEC, "activation '%s': not implemented yet", op->name);
}

int binary_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  (void)m;
  (void)outs;
  return xy_fail(err, XY_E_SPEC, "binary '%s': not implemented yet", op->name);
}

int rmsnorm_heads_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  (void)m;
  (void)outs;
  return xy_fail(err, XY_E_SPEC, "rmsnorm_heads '%s': not implemented yet", op->name);
}

int conv_causal_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  (void)m;
  (void)outs;
  return xy_fail(err, XY_E_SPEC, "conv_causal '%s': not implemented yet", op->name);
}

int transpose_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  (void)m;
  (void)outs;
  return xy_fail(err, XY_E_SPEC, "transpose '%s': not implemented yet", op->name);
}

int transition_exp_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  (void)m;
  (void)outs;
  return xy_fail(err, XY_E_SPEC, "transition_exp '%s': not implemented yet", op->name);
}

void layer_op_print_attrs(const ir_op *op, xy_buf *out)
{
  (void)op;
  (void)out;
}
