/*
 * graph_layer_ops.h: the ops the graph layers (plstm_graph, plstm_graph_edge) add around
 * their scan: graph_gather, concat and graph_pnorm (ops.def says what each computes), and
 * the index maps of a DAG that graph_gather and graph_pnorm read, shared by the shape
 * rules, the interpreter and the lowering.
 */
#ifndef XY_GRAPH_LAYER_OPS_H
#define XY_GRAPH_LAYER_OPS_H

#include "graph_ir.h"

/* ------------------------------------------------------------------ index maps */

/* What a gather map reads and writes: K output rows, R input rows, W slots per head. */
typedef struct gather_dims {
  int64_t K, R, W;
  int64_t H, F;      /* heads, features per (head, slot): x's last axis is H*W*F */
  int64_t C;         /* x's last axis */
} gather_dims;

const char *ir_gather_map_name(ir_gather_map map);
ir_gather_map ir_gather_map_from_name(const char *name); /* IR_GATHER_COUNT: unknown */
bool ir_gather_is_slot_map(ir_gather_map map);

/* The row and slot each output row k reads (row[k] < R, col[k] < W), into arrays of K
 * entries. Slot maps need the DAG's in_slot and out_slot. */
int ir_gather_index(const ir_dag *d, const ir_gather_attrs *a, int64_t *row, int64_t *col,
                    xy_error *err);

/* In-degree of every node (n_nodes entries). */
void ir_dag_in_degrees(const ir_dag *d, int64_t *indeg);

/* The op's DAG, or an error naming the op when op->graph is not a DAG of m. */
int ir_op_dag(const ir_module *m, const ir_op *op, const ir_dag **d, xy_error *err);

/* The dimensions of a graph_gather whose shapes were checked. */
int graph_gather_dims(const ir_module *m, const ir_op *op, gather_dims *g, xy_error *err);

/* ------------------------------------------------------------------ op rules */

int graph_gather_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int concat_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int graph_pnorm_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);

int interp_graph_gather(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_concat(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
int interp_graph_pnorm(const ir_module *m, const ir_op *op, double **vals, xy_error *err);

void graph_layer_print_attrs(const ir_op *op, xy_buf *out);

#endif /* XY_GRAPH_LAYER_OPS_H */
