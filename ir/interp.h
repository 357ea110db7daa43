/*
 * interp.h: the float64 reference interpreter. It defines what every op computes; each
 * kernel, form and target is tested against it.
 */
#ifndef XY_INTERP_H
#define XY_INTERP_H

#include "graph_ir.h"

/* vals has one entry per tensor of m. The caller fills the entries of input and weight
 * tensors; the interpreter allocates and fills every tensor an op produces. Release those
 * with ir_interp_release (inputs are left alone). */
int ir_interpret(const ir_module *m, double **vals, xy_error *err);
void ir_interp_release(const ir_module *m, double **vals);

/* The interpreters of the ops (one file per family), listed in op_rules.c. */
int interp_plstm_scan(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_plstm_scan2d(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_plstm_scan2d_fused(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_linear(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_activation(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_binary(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_rmsnorm_heads(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_conv_causal(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_transpose(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_transition_exp(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_reshape(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_memory_scan(const ir_module *m, const ir_op *op, double **vals, xy_error *err);

#endif /* XY_INTERP_H */
