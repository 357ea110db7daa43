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

/* One plstm_scan, exposed for tests that drive it directly. */
int interp_plstm_scan(const ir_module *m, const ir_op *op, double **vals, xy_error *err);

#endif /* XY_INTERP_H */
