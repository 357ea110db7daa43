/* interp_layers.c: the float64 meaning of the ordinary layer ops. */
#include "interp.h"

int interp_linear(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)m;
  (void)vals;
  return xy_fail(err, XY_E_INTERNAL, "interpreter: linear '%s' not implemented yet", op->name);
}

int interp_activation(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)m;
  (void)vals;
  return xy_fail(err, XY_E_INTERNAL, "interpreter: activation '%s' not implemented yet", op->name);
}

int interp_binary(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)m;
  (void)vals;
  return xy_fail(err, XY_E_INTERNAL, "interpreter: binary '%s' not implemented yet", op->name);
}

int interp_rmsnorm_heads(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)m;
  (void)vals;
  return xy_fail(err, XY_E_INTERNAL, "interpreter: rmsnorm_heads '%s' not implemented yet", op->name);
}

int interp_conv_causal(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)m;
  (void)vals;
  return xy_fail(err, XY_E_INTERNAL, "interpreter: conv_causal '%s' not implemented yet", op->name);
}

int interp_transpose(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)m;
  (void)vals;
  return xy_fail(err, XY_E_INTERNAL, "interpreter: transpose '%s' not implemented yet", op->name);
}

int interp_transition_exp(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)m;
  (void)vals;
  return xy_fail(err, XY_E_INTERNAL, "interpreter: transition_exp '%s' not implemented yet", op->name);
}
