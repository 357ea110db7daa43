/*
 * passes.h: the compiler's passes, each one file with one entry function. The pipeline
 * (compiler/pipeline.c) runs them in order and verifies the IR after each.
 */
#ifndef XY_PASSES_H
#define XY_PASSES_H

#include "graph_ir.h"
#include "kernel_ir.h"

typedef struct pass_state {
  ir_module *m;                    /* graph IR, owned by the pipeline */
  kir_module *k;                   /* kernel IR, once lowered */
  const xy_compile_options *opt;
  const char *name;                /* package name */
} pass_state;

/* DAGs: levels, topological order, CSR of in/out edges and in-arcs (ir_dag_prep). */
int pass_prepare_graphs(pass_state *ps, xy_error *err);

/* Chooses each scan's form, chunk and work-group size (cost model, or the options). */
int pass_parallelize_scans(pass_state *ps, xy_error *err);

/* The schedule of one 2D scan (form, tile, lanes, rows, work-group size); forced is the
 * form the options ask for, or IR_FORM_AUTO. Called by parallelize_scans. */
int schedule_plstm2d(const pass_state *ps, ir_op *op, ir_form forced, xy_error *err);

/* Graph IR to kernel IR: buffers for tensors, kernels and launches for ops. */
int pass_lower_kernels(pass_state *ps, xy_error *err);

#endif /* XY_PASSES_H */
